package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// policyVersion returns version n of a policy set.
func policyVersion(n int64) store.PolicyVersion {
	text := fmt.Sprintf("@id(\"p%d\")\npermit (principal, action, resource);\n", n)
	sum := sha256.Sum256([]byte(text))
	return store.PolicyVersion{
		Version: n, Text: text, SHA256: sum[:], PolicyIDs: []string{fmt.Sprintf("p%d", n)},
		Author: "adm_test", Comment: fmt.Sprintf("version %d", n), CreatedAt: base().Add(time.Duration(n) * time.Minute),
	}
}

func storedPolicyVersion(v store.PolicyVersion) store.PolicyVersion {
	v.CreatedAt = stored(v.CreatedAt)
	return v
}

// applyPolicy creates version v and activates it against the head's
// generation, as the policy package does, in one Update.
func applyPolicy(s store.Store, v store.PolicyVersion) (store.PolicyHead, error) {
	var out store.PolicyHead
	err := s.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		h, err := tx.GetPolicyHead(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.CreatePolicyVersion(ctx, v); err != nil {
			return err
		}
		out, err = tx.SetPolicyHead(ctx, h.Generation, store.PolicyHead{
			ActiveVersion: v.Version, UpdatedAt: v.CreatedAt, UpdatedBy: v.Author})
		return err
	})
	return out, err
}

func testPolicyVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	h, err := s.GetPolicyHead(ctx)
	if err != nil || h != (store.PolicyHead{}) {
		t.Fatalf("GetPolicyHead of a new store = %+v, %v; want the zero head", h, err)
	}
	for n := int64(1); n <= 3; n++ {
		got, err := applyPolicy(s, policyVersion(n))
		if err != nil {
			t.Fatalf("apply version %d: %v", n, err)
		}
		want := store.PolicyHead{ActiveVersion: n, LatestVersion: n, Generation: n,
			UpdatedAt: stored(policyVersion(n).CreatedAt), UpdatedBy: "adm_test"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("head after applying %d (-want +got):\n%s", n, diff)
		}
	}
	got, err := s.GetPolicyVersion(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(storedPolicyVersion(policyVersion(2)), got); diff != "" {
		t.Errorf("GetPolicyVersion(2) (-want +got):\n%s", diff)
	}
	_, err = s.GetPolicyVersion(ctx, 9)
	wantErr(t, "GetPolicyVersion of an unknown version", err, store.ErrNotFound)

	// Newest first, in pages.
	var versions []int64
	page := store.Page{PageSize: 2}
	for {
		vs, next, err := s.ListPolicyVersions(ctx, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			versions = append(versions, v.Version)
		}
		if next == "" {
			break
		}
		page.PageToken = next
	}
	if diff := cmp.Diff([]int64{3, 2, 1}, versions); diff != "" {
		t.Errorf("ListPolicyVersions (-want +got):\n%s", diff)
	}
	_, _, err = s.ListPolicyVersions(ctx, store.Page{PageToken: "bm9kZXM6bm9kXzE"}) //nolint:gosec // G101: another list's page token, not a credential
	wantErr(t, "ListPolicyVersions with another list's token", err, store.ErrInvalid, store.ErrBadPageToken)

	// Rollback: the head points at an old version; the latest stays.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.SetPolicyHead(ctx, 3, store.PolicyHead{ActiveVersion: 1, UpdatedAt: base(), UpdatedBy: "adm_other"})
		return err
	})
	h, err = s.GetPolicyHead(ctx)
	if err != nil || h.ActiveVersion != 1 || h.LatestVersion != 3 || h.Generation != 4 || h.UpdatedBy != "adm_other" {
		t.Errorf("head after rollback = %+v, %v; want active 1, latest 3, generation 4", h, err)
	}

	// Refusals change nothing.
	set := func(expect int64, hd store.PolicyHead) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.SetPolicyHead(ctx, expect, hd)
			return err
		})
	}
	wantErr(t, "SetPolicyHead with a stale generation", set(3, store.PolicyHead{ActiveVersion: 2, UpdatedAt: base()}), store.ErrConflict)
	wantErr(t, "SetPolicyHead to an unknown version", set(4, store.PolicyHead{ActiveVersion: 7, UpdatedAt: base()}), store.ErrInvalid)
	wantErr(t, "SetPolicyHead without a time", set(4, store.PolicyHead{ActiveVersion: 2}), store.ErrInvalid)
	create := func(v store.PolicyVersion) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreatePolicyVersion(ctx, v)
			return err
		})
	}
	wantErr(t, "CreatePolicyVersion with a taken number", create(policyVersion(2)), store.ErrAlreadyExists)
	for name, edit := range map[string]func(*store.PolicyVersion){
		"number 0":    func(v *store.PolicyVersion) { v.Version = 0 },
		"no text":     func(v *store.PolicyVersion) { v.Text = "" },
		"no SHA-256":  func(v *store.PolicyVersion) { v.SHA256 = nil },
		"no author":   func(v *store.PolicyVersion) { v.Author = "" },
		"no creation": func(v *store.PolicyVersion) { v.CreatedAt = time.Time{} },
	} {
		v := policyVersion(4)
		edit(&v)
		wantErr(t, "CreatePolicyVersion with "+name, create(v), store.ErrInvalid)
	}
	if h2, err := s.GetPolicyHead(ctx); err != nil || h2 != h {
		t.Errorf("head after refusals = %+v, %v; want %+v", h2, err, h)
	}

	// A version created in a failed transaction is not kept.
	boom := errors.New("boom")
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.CreatePolicyVersion(ctx, policyVersion(4)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	_, err = s.GetPolicyVersion(ctx, 4)
	wantErr(t, "GetPolicyVersion of a rolled-back version", err, store.ErrNotFound)
}

func testActionClasses(t *testing.T, s store.Store) {
	ctx := context.Background()
	cs, err := s.ListActionClasses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var defaults []string
	for _, c := range cs {
		defaults = append(defaults, c.Name+":"+c.RiskTier)
		if c.Version != 1 || c.Actions != nil || c.Description == "" {
			t.Errorf("default class %+v: want version 1, no actions, a description", c)
		}
	}
	want := []string{"admin:high", "delete:high", "external-comms:high", "payments:high", "read:low", "write:medium"}
	if diff := cmp.Diff(want, defaults); diff != "" {
		t.Errorf("default action classes (-want +got):\n%s", diff)
	}

	put := func(expect int64, c store.ActionClass) (store.ActionClass, error) {
		var out store.ActionClass
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			var err error
			out, err = tx.PutActionClass(ctx, expect, c)
			return err
		})
		return out, err
	}
	created, err := put(0, store.ActionClass{Name: "deploy", RiskTier: "medium", Description: "Ships code",
		Actions: []string{"deploy_prod", "deploy_staging"}, UpdatedAt: base(), UpdatedBy: "adm_test"})
	if err != nil {
		t.Fatalf("PutActionClass new: %v", err)
	}
	wantClass := store.ActionClass{Name: "deploy", RiskTier: "medium", Description: "Ships code",
		Actions: []string{"deploy_prod", "deploy_staging"}, UpdatedAt: stored(base()), UpdatedBy: "adm_test", Version: 1}
	if diff := cmp.Diff(wantClass, created); diff != "" {
		t.Errorf("PutActionClass new (-want +got):\n%s", diff)
	}
	changed, err := put(1, store.ActionClass{Name: "read", RiskTier: "medium", UpdatedAt: base().Add(time.Hour), UpdatedBy: "adm_2"})
	if err != nil {
		t.Fatalf("PutActionClass existing: %v", err)
	}
	if changed.Version != 2 || changed.RiskTier != "medium" || changed.Description != "" || changed.UpdatedBy != "adm_2" {
		t.Errorf("PutActionClass existing = %+v, want version 2, tier medium", changed)
	}
	h, err := s.GetPolicyHead(ctx)
	if err != nil || h.Generation != 2 || h.ActiveVersion != 0 || h.UpdatedBy != "adm_2" || !h.UpdatedAt.Equal(stored(base().Add(time.Hour))) {
		t.Errorf("head after two class changes = %+v, %v; want generation 2, no active version", h, err)
	}
	_, err = put(1, store.ActionClass{Name: "write", RiskTier: "high", UpdatedAt: base()})
	wantErr(t, "PutActionClass with a stale generation", err, store.ErrConflict)
	for name, c := range map[string]store.ActionClass{
		"no name": {RiskTier: "low", UpdatedAt: base()},
		"no tier": {Name: "x", UpdatedAt: base()},
		"no time": {Name: "x", RiskTier: "low"},
	} {
		_, err := put(2, c)
		wantErr(t, "PutActionClass with "+name, err, store.ErrInvalid)
	}
	cs, err = s.ListActionClasses(ctx)
	if err != nil || len(cs) != 7 || cs[2].Name != "deploy" {
		t.Errorf("ListActionClasses after changes = %d classes, %v; want 7 with deploy third", len(cs), err)
	}
	if h2, _ := s.GetPolicyHead(ctx); h2 != h {
		t.Errorf("refused class changes moved the head: %+v → %+v", h, h2)
	}
}

func testPolicyHeadRace(t *testing.T, s store.Store) { racePolicyHead(t, []store.Store{s}, 24) }

// racePolicyHead races n writers over the stores, each reading the head
// and changing it against the generation it read: every success moves the
// generation by exactly one, and no two succeed against one generation.
func racePolicyHead(t *testing.T, stores []store.Store, n int) {
	var (
		ok, conflicts atomic.Int64
		wg            sync.WaitGroup
	)
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			err := s.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
				h, err := tx.GetPolicyHead(ctx)
				if err != nil {
					return err
				}
				_, err = tx.PutActionClass(ctx, h.Generation, store.ActionClass{
					Name: fmt.Sprintf("class-%d", i), RiskTier: "low", UpdatedAt: base()})
				return err
			})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, store.ErrConflict):
				conflicts.Add(1)
			default:
				t.Errorf("PutActionClass %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	h, err := stores[0].GetPolicyHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := stores[0].ListActionClasses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ok.Load() == 0 || h.Generation != ok.Load() || int64(len(cs)) != 6+ok.Load() {
		t.Errorf("%d succeeded, %d conflicted: generation %d, %d classes; want generation = successes = classes − 6",
			ok.Load(), conflicts.Load(), h.Generation, len(cs))
	}
}
