package storetest_test

import (
	"testing"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) store.Store {
				s, _ := b.Open(t)
				return s
			})
		})
	}
}

func TestReplicas(t *testing.T) {
	for _, set := range storetest.Replicas(t, 3) {
		t.Run(set.Name, func(t *testing.T) {
			t.Parallel()
			storetest.RunReplicas(t, set.Open)
		})
	}
}
