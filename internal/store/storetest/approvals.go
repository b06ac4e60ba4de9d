package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func approvalID(i int) string { return fmt.Sprintf("apr_%04d", i) }

// newApproval is pending approval i of agent a for scope key, expiring a
// day after base().
func newApproval(i, agent int, scope string) store.Approval {
	return store.Approval{
		ID: approvalID(i), State: store.ApprovalPending, ScopeKey: scope,
		AgentID: agentID(agent), AgentName: fmt.Sprintf("agent-%d", agent), Person: "alice",
		Action: "invoice.pay", ActionClass: "payments", RiskTier: "high",
		ResourceType: "invoice", ResourceID: fmt.Sprint(i),
		Obligations: []string{"approval"}, Limits: map[string]string{"amount": "100.50"},
		PolicyVersion: 3, PolicyIDs: []string{"payments-need-approval"}, Reason: "payments need a human",
		RequestedBy: "agt_gateway", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		CreatedAt: base(), ExpiresAt: base().Add(24 * time.Hour),
	}
}

// storedApproval is a as the store returns it after creation.
func storedApproval(a store.Approval) store.Approval {
	a.CreatedAt, a.ExpiresAt, a.DecidedAt = stored(a.CreatedAt), stored(a.ExpiresAt), stored(a.DecidedAt)
	if a.Version == 0 {
		a.Version = 1
	}
	return a
}

func createApprovals(t *testing.T, s store.Store, as ...store.Approval) {
	t.Helper()
	createAll(t, s, store.Tx.CreateApproval, as...)
}

func updateApproval(s store.Store, id string, fn func(store.Approval) (store.Approval, error)) (store.Approval, error) {
	return inUpdate(s, func(ctx context.Context, tx store.Tx) (store.Approval, error) { return tx.UpdateApproval(ctx, id, fn) })
}

func listApprovalIDs(t *testing.T, s store.Store, f store.ApprovalFilter, size int) []string {
	t.Helper()
	return walkItems(t, fmt.Sprintf("ListApprovals(%+v)", f), size, func(p store.Page) ([]store.Approval, string, error) {
		return s.ListApprovals(context.Background(), f, p)
	}, approvalKey)
}

func testApprovals(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)), newAgent(2, ownerID(1)))

	a1 := newApproval(1, 1, "scope-a")
	a1.Person, a1.Limits, a1.PolicyIDs, a1.TraceID = "", nil, nil, ""
	a2 := newApproval(2, 2, "scope-b")
	a3 := newApproval(3, 1, "scope-a")
	a3.ExpiresAt = base().Add(time.Hour)
	createApprovals(t, s, a3, a1, a2) // not in id order: lists sort

	got, err := s.GetApproval(ctx, a2.ID)
	if err != nil {
		t.Fatalf("GetApproval: %v", err)
	}
	if diff := cmp.Diff(storedApproval(a2), got); diff != "" {
		t.Errorf("GetApproval (-want +got):\n%s", diff)
	}
	if got.ExpiresAt.Location() != time.UTC {
		t.Errorf("approval expiry = %v; want UTC", got.ExpiresAt)
	}
	if got, err := s.GetApproval(ctx, a1.ID); err != nil || got.Limits != nil || got.PolicyIDs != nil {
		t.Errorf("GetApproval of an approval without limits = %+v, %v; want nil limits and policy ids", got, err)
	}
	_, err = s.GetApproval(ctx, approvalID(9))
	wantErr(t, "GetApproval of a missing approval", err, store.ErrNotFound)

	// Approve a1: only the state, expiry and decision fields change.
	approved, err := updateApproval(s, a1.ID, func(a store.Approval) (store.Approval, error) {
		a.State, a.ExpiresAt = store.ApprovalApproved, base().Add(2*time.Hour)
		a.DecidedAt, a.DeciderType, a.Decider, a.DecideReason = base().Add(time.Minute), "person", "bob", "ok"
		a.AgentID, a.ResourceID, a.Limits = agentID(2), "other", map[string]string{"amount": "1e9"} // ignored
		return a, nil
	})
	if err != nil {
		t.Fatalf("UpdateApproval: %v", err)
	}
	want := storedApproval(a1)
	want.State, want.ExpiresAt, want.Version = store.ApprovalApproved, stored(base().Add(2*time.Hour)), 2
	want.DecidedAt, want.DeciderType, want.Decider, want.DecideReason = stored(base().Add(time.Minute)), "person", "bob", "ok"
	if diff := cmp.Diff(want, approved); diff != "" {
		t.Errorf("UpdateApproval (-want +got):\n%s", diff)
	}

	for name, tc := range map[string]struct {
		f    store.ApprovalFilter
		want []string
	}{
		"all":             {store.ApprovalFilter{}, []string{a1.ID, a2.ID, a3.ID}},
		"pending":         {store.ApprovalFilter{State: store.ApprovalPending}, []string{a2.ID, a3.ID}},
		"approved":        {store.ApprovalFilter{State: store.ApprovalApproved}, []string{a1.ID}},
		"agent 1":         {store.ApprovalFilter{AgentID: agentID(1)}, []string{a1.ID, a3.ID}},
		"scope a":         {store.ApprovalFilter{ScopeKey: "scope-a"}, []string{a1.ID, a3.ID}},
		"scope a pending": {store.ApprovalFilter{ScopeKey: "scope-a", State: store.ApprovalPending}, []string{a3.ID}},
		"due at base":     {store.ApprovalFilter{DueAt: base()}, nil},
		"due at +1h":      {store.ApprovalFilter{DueAt: base().Add(time.Hour)}, []string{a3.ID}}, // expiry not after: due
		"due at +2d":      {store.ApprovalFilter{DueAt: base().Add(48 * time.Hour)}, []string{a1.ID, a2.ID, a3.ID}},
	} {
		for _, size := range []int{1, 2, 10} {
			if diff := cmp.Diff(tc.want, listApprovalIDs(t, s, tc.f, size)); diff != "" {
				t.Errorf("ListApprovals %s, page size %d (-want +got):\n%s", name, size, diff)
			}
		}
	}
	// Final states are not due.
	if _, err := updateApproval(s, a2.ID, func(a store.Approval) (store.Approval, error) {
		a.State = store.ApprovalDenied
		return a, nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{a1.ID, a3.ID}, listApprovalIDs(t, s, store.ApprovalFilter{DueAt: base().Add(48 * time.Hour)}, 10)); diff != "" {
		t.Errorf("ListApprovals due after a denial (-want +got):\n%s", diff)
	}
	_, _, err = s.ListApprovals(ctx, store.ApprovalFilter{}, store.Page{PageToken: "bm9kZXM6eA"}) //nolint:gosec // G101: a page token, not a credential
	wantErr(t, "ListApprovals with another list's token", err, store.ErrInvalid, store.ErrBadPageToken)

	create := func(a store.Approval) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateApproval(ctx, a)
			return err
		})
	}
	wantErr(t, "CreateApproval of a taken id", create(newApproval(2, 1, "x")), store.ErrAlreadyExists)
	for name, edit := range map[string]func(*store.Approval){
		"no id":          func(a *store.Approval) { a.ID = "" },
		"no state":       func(a *store.Approval) { a.State = "" },
		"bad state":      func(a *store.Approval) { a.State = "maybe" },
		"no scope":       func(a *store.Approval) { a.ScopeKey = "" },
		"no agent":       func(a *store.Approval) { a.AgentID = "" },
		"agent and user": func(a *store.Approval) { a.User = "carol" },
		"no action":      func(a *store.Approval) { a.Action = "" },
		"no resource":    func(a *store.Approval) { a.ResourceID = "" },
		"no expiry":      func(a *store.Approval) { a.ExpiresAt = time.Time{} },
		"no time":        func(a *store.Approval) { a.CreatedAt = time.Time{} },
		"unknown agent":  func(a *store.Approval) { a.AgentID = agentID(9) },
	} {
		a := newApproval(7, 1, "x")
		edit(&a)
		wantErr(t, "CreateApproval "+name, create(a), store.ErrInvalid)
	}
	_, err = updateApproval(s, approvalID(9), func(a store.Approval) (store.Approval, error) { return a, nil })
	wantErr(t, "UpdateApproval of a missing approval", err, store.ErrNotFound)
	_, err = updateApproval(s, a3.ID, func(a store.Approval) (store.Approval, error) {
		a.State = "maybe"
		return a, nil
	})
	wantErr(t, "UpdateApproval to an unknown state", err, store.ErrInvalid)
	boom := errors.New("boom")
	_, err = updateApproval(s, a3.ID, func(a store.Approval) (store.Approval, error) { return a, boom })
	if !errors.Is(err, boom) {
		t.Errorf("UpdateApproval with a failing fn = %v; want boom", err)
	}
	if got, err := s.GetApproval(ctx, a3.ID); err != nil || got.Version != 1 {
		t.Errorf("approval after failed updates = %+v, %v; want version 1", got, err)
	}
	testUserApprovals(t, s)
}

// newUserApproval is pending approval i of user subject user (ADR 0020):
// no agent.
func newUserApproval(i int, user, scope string) store.Approval {
	a := newApproval(i, 0, scope)
	a.AgentID, a.AgentName, a.Person, a.User = "", "", "", user
	return a
}

// testUserApprovals checks approvals of user subjects next to those of
// agents (s holds testApprovals' approvals 1 to 3, of agents 1 and 2).
func testUserApprovals(t *testing.T, s store.Store) {
	ctx := context.Background()
	u1 := newUserApproval(11, "carol", "scope-u")
	u2 := newUserApproval(12, "dave", "scope-u2")
	u3 := newUserApproval(13, "carol", "scope-u")
	u3.Limits, u3.Obligations = nil, []string{"approval", "mfa"}
	createApprovals(t, s, u1, u2, u3)
	got, err := s.GetApproval(ctx, u1.ID)
	if err != nil {
		t.Fatalf("GetApproval of a user approval: %v", err)
	}
	if diff := cmp.Diff(storedApproval(u1), got); diff != "" {
		t.Errorf("GetApproval of a user approval (-want +got):\n%s", diff)
	}
	if got, err := s.GetApproval(ctx, approvalID(1)); err != nil || got.User != "" || got.AgentID != agentID(1) {
		t.Errorf("GetApproval of an agent approval = %+v, %v; want agent %s and no user", got, err, agentID(1))
	}
	for name, tc := range map[string]struct {
		f    store.ApprovalFilter
		want []string
	}{
		"user carol":         {store.ApprovalFilter{User: "carol"}, []string{u1.ID, u3.ID}},
		"user dave":          {store.ApprovalFilter{User: "dave"}, []string{u2.ID}},
		"user nobody":        {store.ApprovalFilter{User: "nobody"}, nil},
		"user, agent":        {store.ApprovalFilter{User: "carol", AgentID: agentID(1)}, nil},
		"agent 1":            {store.ApprovalFilter{AgentID: agentID(1)}, []string{approvalID(1), approvalID(3)}},
		"scope u pending":    {store.ApprovalFilter{ScopeKey: "scope-u", State: store.ApprovalPending}, []string{u1.ID, u3.ID}},
		"user carol pending": {store.ApprovalFilter{User: "carol", State: store.ApprovalPending}, []string{u1.ID, u3.ID}},
	} {
		for _, size := range []int{1, 10} {
			if diff := cmp.Diff(tc.want, listApprovalIDs(t, s, tc.f, size)); diff != "" {
				t.Errorf("ListApprovals %s, page size %d (-want +got):\n%s", name, size, diff)
			}
		}
	}

	// Approve u1: the user stays, changes to it are ignored.
	approved, err := updateApproval(s, u1.ID, func(a store.Approval) (store.Approval, error) {
		a.State, a.ExpiresAt = store.ApprovalApproved, base().Add(2*time.Hour)
		a.DecidedAt, a.DeciderType, a.Decider, a.DecideReason = base().Add(time.Minute), "admin", "adm_1", "ok"
		a.User, a.AgentID = "mallory", agentID(1) // ignored
		return a, nil
	})
	if err != nil {
		t.Fatalf("UpdateApproval of a user approval: %v", err)
	}
	want := storedApproval(u1)
	want.State, want.ExpiresAt, want.Version = store.ApprovalApproved, stored(base().Add(2*time.Hour)), 2
	want.DecidedAt, want.DeciderType, want.Decider, want.DecideReason = stored(base().Add(time.Minute)), "admin", "adm_1", "ok"
	if diff := cmp.Diff(want, approved); diff != "" {
		t.Errorf("UpdateApproval of a user approval (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{u1.ID}, listApprovalIDs(t, s, store.ApprovalFilter{User: "carol", State: store.ApprovalApproved}, 10)); diff != "" {
		t.Errorf("ListApprovals of carol's approved (-want +got):\n%s", diff)
	}
	due := listApprovalIDs(t, s, store.ApprovalFilter{DueAt: base().Add(48 * time.Hour)}, 10)
	for _, id := range []string{u1.ID, u2.ID, u3.ID} {
		if !slices.Contains(due, id) {
			t.Errorf("ListApprovals due in two days = %v; want user approval %s", due, id)
		}
	}
	create := func(a store.Approval) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateApproval(ctx, a)
			return err
		})
	}
	noSubject := newUserApproval(14, "", "x")
	wantErr(t, "CreateApproval without agent or user", create(noSubject), store.ErrInvalid)
}

// testApprovalConcurrentDecide races approvers: every racer checks that
// the approval is still pending, so exactly one decides it.
func testApprovalConcurrentDecide(t *testing.T, s store.Store) {
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)))
	createApprovals(t, s, newApproval(1, 1, "scope"))
	errDecided := errors.New("already decided")
	const n = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for i := range n {
		wg.Go(func() {
			by := fmt.Sprintf("person-%d", i)
			_, err := updateApproval(s, approvalID(1), func(a store.Approval) (store.Approval, error) {
				if a.State != store.ApprovalPending {
					return a, errDecided
				}
				a.State, a.Decider, a.DeciderType, a.DecidedAt = store.ApprovalApproved, by, "person", base().Add(time.Minute)
				if i%2 == 1 {
					a.State = store.ApprovalDenied
				}
				return a, nil
			})
			switch {
			case err == nil:
				mu.Lock()
				wins = append(wins, by)
				mu.Unlock()
			case !errors.Is(err, errDecided):
				t.Errorf("UpdateApproval %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetApproval(context.Background(), approvalID(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(wins) != 1 || got.Decider != wins[0] || got.Version != 2 {
		t.Errorf("%d of %d decisions won (%v); approval decided by %q at version %d; want one winner, version 2", len(wins), n, wins, got.Decider, got.Version)
	}
}
