// Package storetest is the conformance suite every store.Store backend must
// pass in full, and the list of backends available to tests (Backends).
//
// A backend's test calls Run with a function that opens a fresh, empty
// store; the suite covers CRUD of every entity, pagination, unique
// constraints, not-found paths, compare-and-swap under concurrency, group
// commit isolation, time handling, orphan derivation, the audit chain
// (order under concurrency, rollback with the state change, queries,
// checkpoints and keys), and the OAuth records: signing keys, leases,
// client credentials, one-time identifiers and revocations, with leases and
// one-time identifiers raced by concurrent callers, and the record of issued
// SVIDs (filters, keyset pages, collection, concurrent records of a serial),
// and the bundles of federated trust domains and the trust domains an agent
// federates with, the workload selectors of agents, and nodes and their
// single-use join tokens (consumption raced by concurrent callers), and
// the policy versions, policy head and action classes of decisions (the
// head's compare-and-swap raced), and delegation grants (revocation raced)
// with the exchanged tokens issued under them (counts by grant, agent and
// ancestor), and attested instances (creation of one key raced, refreshes
// raced) with the attestation rules of agents, and the Shared Signals
// streams (compare-and-swap raced) and their outbox.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// Run runs the conformance suite. open must return a fresh, empty store
// each time it is called and arrange for it to be closed when t ends
// (t.Cleanup); the suite may close it earlier, so Close must tolerate a
// second call. Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"AgentCRUD", testAgentCRUD},
		{"AgentImmutableFields", testAgentImmutable},
		{"AgentUnique", testAgentUnique},
		{"AgentOwnersInvalid", testAgentOwnersInvalid},
		{"AgentFilters", testAgentFilters},
		{"AgentExternalID", testAgentExternalID},
		{"AgentSCIMFilters", testAgentSCIMFilters},
		{"OwnerCRUD", testOwnerCRUD},
		{"OwnerUnique", testOwnerUnique},
		{"OwnerUserNameFolds", testOwnerUserNameFolds},
		{"OwnerFilters", testOwnerFilters},
		{"OwnerUserNameKeys", testOwnerUserNameKeys},
		{"OwnerUserNameKeyRace", testOwnerUserNameKeyRace},
		{"AdminTokenCRUD", testAdminTokenCRUD},
		{"AdminTokenUnique", testAdminTokenUnique},
		{"NotFound", testNotFound},
		{"Pagination", testPagination},
		{"BadPageToken", testBadPageToken},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"ConcurrentCAS", testConcurrentCAS},
		{"FnErrorRollsBackOnlyThatFn", testFnErrorIsolation},
		{"FnErrorReturnedUnchanged", testFnErrorUnchanged},
		{"TxUsableAfterFailedWrite", testTxUsableAfterFailedWrite},
		{"TxReadsOwnWrites", testTxReadsOwnWrites},
		{"TxNotUsableAfterFn", testTxAfterFn},
		{"UpdateCancelledContext", testUpdateCancelled},
		{"UpdatePanic", testUpdatePanic},
		{"PingAndClose", testPingClose},
		{"AuditEmpty", testAuditEmpty},
		{"AuditConcurrentAppend", testAuditConcurrentAppend},
		{"AuditRollsBackWithAgent", testAuditRollback},
		{"AuditSealChecks", testAuditSealChecks},
		{"AuditBatchedAppends", testAuditBatchedAppends},
		{"AuditQueries", testAuditQueries},
		{"AuditScanBatches", testAuditScanBatches},
		{"AuditPrune", testAuditPrune},
		{"NodeScope", testNodeScope},
		{"Checkpoints", testCheckpoints},
		{"AuditKeys", testAuditKeys},
		{"SigningKeys", testSigningKeys},
		{"SigningKeyConcurrentCAS", testSigningKeyConcurrentCAS},
		{"Leases", testLeases},
		{"LeaseRace", testLeaseRace},
		{"ClientKeys", testClientKeys},
		{"ClientSecrets", testClientSecrets},
		{"UseOnce", testUseOnce},
		{"UseOnceRace", testUseOnceRace},
		{"Revocations", testRevocations},
		{"AgentOAuthFields", testAgentOAuthFields},
		{"Credentials", testCredentials},
		{"CredentialPagination", testCredentialPagination},
		{"CollectCredentials", testCollectCredentials},
		{"RecordCredentialRace", testRecordCredentialRace},
		{"FederatedBundles", testFederatedBundles},
		{"FederatedBundleConcurrentCAS", testFederatedBundleConcurrentCAS},
		{"AgentFederatesWith", testAgentFederatesWith},
		{"AgentSelectors", testAgentSelectors},
		{"JoinTokens", testJoinTokens},
		{"JoinTokenRace", testJoinTokenRace},
		{"JoinTokenList", testJoinTokenList},
		{"Nodes", testNodes},
		{"NodeList", testNodeList},
		{"NodeConcurrentCAS", testNodeConcurrentCAS},
		{"PolicyVersions", testPolicyVersions},
		{"ActionClasses", testActionClasses},
		{"PolicyHeadRace", testPolicyHeadRace},
		{"Grants", testGrants},
		{"GrantConcurrentRevoke", testGrantConcurrentRevoke},
		{"ExchangedTokens", testExchangedTokens},
		{"Approvals", testApprovals},
		{"ApprovalConcurrentDecide", testApprovalConcurrentDecide},
		{"Instances", testInstances},
		{"InstanceCreateRace", testInstanceCreateRace},
		{"InstanceConcurrentCAS", testInstanceConcurrentCAS},
		{"AgentAttestationRules", testAgentAttestationRules},
		{"SSFStreams", testSSFStreams},
		{"SSFStreamConcurrentCAS", testSSFStreamConcurrentCAS},
		{"SSFEvents", testSSFEvents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// base is a fixed instant with sub-microsecond digits, in a non-UTC zone.
func base() time.Time {
	return time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("IST", 5*3600+1800))
}

// stored is t as the store must return it: UTC, truncated to microseconds.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// inUpdate runs op in its own Update and returns what op returned.
func inUpdate[T any](s store.Store, op func(ctx context.Context, tx store.Tx) (T, error)) (T, error) {
	var out T
	err := s.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		var err error
		out, err = op(ctx, tx)
		return err
	})
	return out, err
}

// createAll creates items in one Update with create, a store.Tx method
// such as store.Tx.CreateOwner, failing the test on an error.
func createAll[T any](t *testing.T, s store.Store, create func(store.Tx, context.Context, T) (T, error), items ...T) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, item := range items {
			if _, err := create(tx, ctx, item); err != nil {
				return err
			}
		}
		return nil
	})
}

func ownerID(i int) string { return fmt.Sprintf("own_%04d", i) }
func agentID(i int) string { return fmt.Sprintf("agt_%04d", i) }

func newOwner(i int) store.Owner {
	return store.Owner{
		ID:      ownerID(i),
		Kind:    store.OwnerPerson,
		Email:   fmt.Sprintf("owner%d@example.org", i),
		Subject: fmt.Sprintf("sub-%d", i),
		// SubjectIssuer is set on odd owners only, so that both shapes
		// round-trip.
		SubjectIssuer: map[bool]string{true: "https://idp.example.org"}[i%2 == 1],
		DisplayName:   fmt.Sprintf("Owner %d", i),
		UserName:      fmt.Sprintf("Owner%d@Example.org", i),
		ExternalID:    fmt.Sprintf("ext-%d", i),
		State:         store.OwnerActive,
		CreatedAt:     base(),
		UpdatedAt:     base(),
	}
}

func newAgent(i int, owners ...string) store.Agent {
	return store.Agent{
		ID:            agentID(i),
		Name:          fmt.Sprintf("agent-%d", i),
		SPIFFEID:      fmt.Sprintf("spiffe://example.org/agent/agent-%d", i),
		Owners:        owners,
		Purpose:       "tests",
		ActionClasses: []string{"read"},
		Audiences:     []string{"https://api.example.org"},
		MaxTTL:        15 * time.Minute,
		Labels:        map[string]string{"team": "qa"},
		State:         store.AgentActive,
		CreatedBy:     "adm_test",
		CreatedAt:     base(),
		UpdatedAt:     base(),
	}
}

func createOwners(t *testing.T, s store.Store, os ...store.Owner) {
	t.Helper()
	createAll(t, s, store.Tx.CreateOwner, os...)
}

func createAgents(t *testing.T, s store.Store, as ...store.Agent) {
	t.Helper()
	createAll(t, s, store.Tx.CreateAgent, as...)
}

// wantErr fails unless err wraps every target.
func wantErr(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got nil error, want %v", what, targets)
		return
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: got %v, want an error wrapping %v", what, err, target)
		}
	}
}

// sealer returns a seal function that chains with SHA-256 over prevHash and
// body, filling the record from r.
func sealer(r store.AuditRecord) func(seq int64, prev []byte) (store.AuditRecord, error) {
	return func(seq int64, prev []byte) (store.AuditRecord, error) {
		r.Seq, r.PrevHash = seq, prev
		if r.ID == "" {
			r.ID = fmt.Sprintf("evt_%08d", seq)
		}
		if r.Time.IsZero() {
			r.Time = base()
		}
		if r.Body == nil {
			r.Body = fmt.Appendf(nil, `{"seq_hint":%d}`, seq)
		}
		h := sha256.New()
		h.Write(prev)
		h.Write(r.Body)
		r.Hash = h.Sum(nil)
		return r, nil
	}
}

func appendAudit(t *testing.T, s store.Store, rs ...store.AuditRecord) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, r := range rs {
			if _, err := tx.AppendAudit(ctx, sealer(r)); err != nil {
				return err
			}
		}
		return nil
	})
}
