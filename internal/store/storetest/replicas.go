package storetest

import (
	"testing"

	"github.com/agentid/agentid/internal/store"
)

// RunReplicas runs the part of the suite that concerns several processes
// sharing one database. open must return n ≥ 2 fresh stores on one empty
// database (see Replicas). It checks that one-time identifiers, leases and
// join tokens hold across them, and that the policy head's
// compare-and-swap does: callers racing on every replica at once get exactly one
// success.
func RunReplicas(t *testing.T, open func(t *testing.T) []store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, replicas []store.Store)
	}{
		{"UseOnceRace", func(t *testing.T, replicas []store.Store) {
			if n := raceUseOnce(t, replicas, 48); n != 1 {
				t.Errorf("%d of 48 uses of one id on %d replicas succeeded, want exactly 1", n, len(replicas))
			}
		}},
		{"LeaseRace", func(t *testing.T, replicas []store.Store) {
			if n := raceLease(t, replicas, 48); n != 1 {
				t.Errorf("%d of 48 holders on %d replicas got the lease, want exactly 1", n, len(replicas))
			}
		}},
		{"PolicyHeadRace", func(t *testing.T, replicas []store.Store) { racePolicyHead(t, replicas, 48) }},
		{"JoinTokenRace", func(t *testing.T, replicas []store.Store) {
			if n := raceJoinToken(t, replicas, 48); n != 1 {
				t.Errorf("%d of 48 consumptions of one join token on %d replicas succeeded, want exactly 1", n, len(replicas))
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}
