package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func testAgentCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1), newOwner(2))
	in := newAgent(1, ownerID(2), ownerID(1), ownerID(2)) // unsorted, duplicated
	in.ExpiresAt = base().Add(48 * time.Hour)
	in.Labels = map[string]string{"team": "qa", "env": "prod"}
	in.ActionClasses = []string{"read", "write"}

	want := in
	want.Owners = []string{ownerID(1), ownerID(2)}
	want.ExpiresAt = stored(in.ExpiresAt)
	want.CreatedAt, want.UpdatedAt = stored(in.CreatedAt), stored(in.UpdatedAt)
	want.Version = 1

	var created store.Agent
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		created, err = tx.CreateAgent(ctx, in)
		return err
	})
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("CreateAgent returned (-want +got):\n%s", diff)
	}
	got, err := s.GetAgent(ctx, in.ID)
	if err != nil {
		t.Fatalf("GetAgent: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetAgent (-want +got):\n%s", diff)
	}
	got, err = s.GetAgentByName(ctx, in.Name)
	if err != nil {
		t.Fatalf("GetAgentByName: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetAgentByName (-want +got):\n%s", diff)
	}

	// Update every mutable field; empty lists and maps come back nil.
	later := base().Add(time.Hour)
	var updated store.Agent
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		updated, err = tx.UpdateAgent(ctx, in.ID, func(a store.Agent) (store.Agent, error) {
			a.SPIFFEID = "spiffe://example.org/agent/other"
			a.Owners = []string{ownerID(2)}
			a.Purpose = "changed"
			a.ActionClasses = nil
			a.Audiences = []string{}
			a.MaxTTL = time.Minute
			a.Labels = map[string]string{}
			a.ExpiresAt = time.Time{}
			a.State = store.AgentSuspended
			a.UpdatedAt = later
			return a, nil
		})
		return err
	})
	want2 := want
	want2.SPIFFEID = "spiffe://example.org/agent/other"
	want2.Owners = []string{ownerID(2)}
	want2.Purpose = "changed"
	want2.ActionClasses, want2.Audiences, want2.Labels = nil, nil, nil
	want2.MaxTTL = time.Minute
	want2.ExpiresAt = time.Time{}
	want2.State = store.AgentSuspended
	want2.UpdatedAt = stored(later)
	want2.Version = 2
	if diff := cmp.Diff(want2, updated); diff != "" {
		t.Errorf("UpdateAgent returned (-want +got):\n%s", diff)
	}
	if v, err := s.GetAgentVersion(ctx, in.ID); err != nil || v != 2 {
		t.Errorf("GetAgentVersion = %d, %v; want 2", v, err)
	}
	got, err = s.GetAgent(ctx, in.ID)
	if err != nil {
		t.Fatalf("GetAgent: %v", err)
	}
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("GetAgent after update (-want +got):\n%s", diff)
	}
}

func testAgentImmutable(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)))
	before, err := s.GetAgent(ctx, agentID(1))
	if err != nil {
		t.Fatal(err)
	}
	var got store.Agent
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err = tx.UpdateAgent(ctx, agentID(1), func(a store.Agent) (store.Agent, error) {
			a.ID, a.Name, a.CreatedBy = "agt_other", "other", "someone"
			a.CreatedAt = base().Add(-time.Hour)
			a.Version = 99
			a.Orphaned = true
			a.Purpose = "new"
			return a, nil
		})
		return err
	})
	want := before
	want.Purpose, want.Version = "new", 2
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UpdateAgent changed immutable fields (-want +got):\n%s", diff)
	}
	if _, err := s.GetAgent(ctx, "agt_other"); err == nil {
		t.Error("GetAgent(agt_other) found an agent; the id must not change")
	}
}

func testAgentUnique(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	a := newAgent(1, ownerID(1))
	createAgents(t, s, a)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateAgent(ctx, a.ID, func(a store.Agent) (store.Agent, error) {
			a.State = store.AgentDeprovisioned
			return a, nil
		})
		return err
	})
	sameID := newAgent(2, ownerID(1))
	sameID.ID = a.ID
	sameName := newAgent(3, ownerID(1))
	sameName.Name = a.Name // deprovisioned names stay reserved
	for name, in := range map[string]store.Agent{"same id": sameID, "same name": sameName} {
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateAgent(ctx, in)
			return err
		})
		wantErr(t, "CreateAgent "+name, err, store.ErrAlreadyExists)
	}
}

func testAgentOwnersInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	for name, owners := range map[string][]string{
		"unknown owner": {ownerID(1), "own_missing"},
		"no owner":      nil,
	} {
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateAgent(ctx, newAgent(1, owners...))
			return err
		})
		wantErr(t, "CreateAgent "+name, err, store.ErrInvalid)
	}
	createAgents(t, s, newAgent(1, ownerID(1)))
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateAgent(ctx, agentID(1), func(a store.Agent) (store.Agent, error) {
			a.Owners = []string{"own_missing"}
			return a, nil
		})
		return err
	})
	wantErr(t, "UpdateAgent to an unknown owner", err, store.ErrInvalid)
	got, err := s.GetAgent(ctx, agentID(1))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{ownerID(1)}, got.Owners); diff != "" || got.Version != 1 {
		t.Errorf("failed UpdateAgent changed the agent: version %d, owners (-want +got):\n%s", got.Version, diff)
	}
}

func testAgentFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1), newOwner(2))
	a1, a2, a3 := newAgent(1, ownerID(1)), newAgent(2, ownerID(2)), newAgent(3, ownerID(1), ownerID(2))
	a3.State = store.AgentSuspended
	createAgents(t, s, a1, a2, a3)
	deactivate := func(id string) {
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateOwner(ctx, id, func(o store.Owner) (store.Owner, error) {
				o.State = store.OwnerDeactivated
				return o, nil
			})
			return err
		})
	}
	list := func(f store.AgentFilter) []string {
		t.Helper()
		as, next, err := s.ListAgents(ctx, f, store.Page{})
		if err != nil {
			t.Fatalf("ListAgents(%+v): %v", f, err)
		}
		if next != "" {
			t.Errorf("ListAgents(%+v): next page token %q on the only page", f, next)
		}
		var ids []string
		for _, a := range as {
			ids = append(ids, a.ID)
			if got, err := s.GetAgent(ctx, a.ID); err != nil || got.Orphaned != a.Orphaned {
				t.Errorf("GetAgent(%s).Orphaned = %v (err %v), ListAgents says %v", a.ID, got.Orphaned, err, a.Orphaned)
			}
		}
		return ids
	}
	check := func(step string, f store.AgentFilter, want ...string) {
		t.Helper()
		if diff := cmp.Diff(want, list(f)); diff != "" {
			t.Errorf("%s: ListAgents(%+v) (-want +got):\n%s", step, f, diff)
		}
	}
	check("start", store.AgentFilter{}, a1.ID, a2.ID, a3.ID)
	check("start", store.AgentFilter{State: store.AgentSuspended}, a3.ID)
	check("start", store.AgentFilter{OwnerID: ownerID(1)}, a1.ID, a3.ID)
	check("start", store.AgentFilter{Orphaned: true})

	deactivate(ownerID(1))
	check("owner 1 gone", store.AgentFilter{Orphaned: true}, a1.ID)
	check("owner 1 gone", store.AgentFilter{Orphaned: true, OwnerID: ownerID(2)})
	if got, err := s.GetAgent(ctx, a1.ID); err != nil || !got.Orphaned {
		t.Errorf("GetAgent(%s) = Orphaned %v, %v; want orphaned", a1.ID, got.Orphaned, err)
	}

	deactivate(ownerID(2))
	check("both gone", store.AgentFilter{Orphaned: true}, a1.ID, a2.ID, a3.ID)
	check("both gone", store.AgentFilter{Orphaned: true, State: store.AgentActive}, a1.ID, a2.ID)
	check("both gone", store.AgentFilter{Orphaned: true, OwnerID: ownerID(1), State: store.AgentSuspended}, a3.ID)
}

func testOwnerCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := newOwner(1)
	want := in
	want.CreatedAt, want.UpdatedAt, want.Version = stored(in.CreatedAt), stored(in.UpdatedAt), 1
	var created store.Owner
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		created, err = tx.CreateOwner(ctx, in)
		return err
	})
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("CreateOwner (-want +got):\n%s", diff)
	}
	for name, get := range map[string]func() (store.Owner, error){
		"GetOwner":        func() (store.Owner, error) { return s.GetOwner(ctx, in.ID) },
		"GetOwnerByEmail": func() (store.Owner, error) { return s.GetOwnerByEmail(ctx, in.Email) },
		"GetOwnerByUserName": func() (store.Owner, error) {
			return s.GetOwnerByUserName(ctx, strings.ToUpper(in.UserName))
		},
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	var updated store.Owner
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		updated, err = tx.UpdateOwner(ctx, in.ID, func(o store.Owner) (store.Owner, error) {
			o.ID, o.CreatedAt = "own_other", time.Time{} // immutable
			o.Kind, o.Email, o.Subject, o.SubjectIssuer = store.OwnerTeam, "", "", ""
			o.DisplayName, o.State = "Team", store.OwnerDeactivated
			o.UserName, o.ExternalID = "", ""
			o.UpdatedAt = base().Add(time.Minute)
			return o, nil
		})
		return err
	})
	want2 := want
	want2.Kind, want2.Email, want2.Subject, want2.SubjectIssuer = store.OwnerTeam, "", "", ""
	want2.DisplayName, want2.State = "Team", store.OwnerDeactivated
	want2.UserName, want2.ExternalID = "", ""
	want2.UpdatedAt, want2.Version = stored(base().Add(time.Minute)), 2
	if diff := cmp.Diff(want2, updated); diff != "" {
		t.Errorf("UpdateOwner (-want +got):\n%s", diff)
	}
	got, err := s.GetOwner(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("GetOwner after update (-want +got):\n%s", diff)
	}
	_, err = s.GetOwnerByEmail(ctx, in.Email)
	wantErr(t, "GetOwnerByEmail of a removed email", err, store.ErrNotFound)
	_, err = s.GetOwnerByUserName(ctx, in.UserName)
	wantErr(t, "GetOwnerByUserName of a removed user name", err, store.ErrNotFound)
}

func testOwnerUnique(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	// Empty email, subject and user name are not unique values; external
	// ids are not unique.
	e1, e2 := newOwner(2), newOwner(3)
	e1.Email, e1.Subject, e2.Email, e2.Subject = "", "", "", ""
	e1.UserName, e2.UserName = "", ""
	e1.ExternalID, e2.ExternalID = "shared", "shared"
	createOwners(t, s, e1, e2)

	sameID, sameEmail, sameSubject, sameUser := newOwner(4), newOwner(5), newOwner(6), newOwner(7)
	sameID.ID = ownerID(1)
	sameEmail.Email = newOwner(1).Email
	sameSubject.Subject = newOwner(1).Subject
	sameUser.UserName = strings.ToLower(newOwner(1).UserName) // another case is the same user name
	for name, o := range map[string]store.Owner{"id": sameID, "email": sameEmail, "subject": sameSubject, "user name": sameUser} {
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateOwner(ctx, o)
			return err
		})
		wantErr(t, "CreateOwner with a taken "+name, err, store.ErrAlreadyExists)
	}
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateOwner(ctx, ownerID(2), func(o store.Owner) (store.Owner, error) {
			o.Email = newOwner(1).Email
			return o, nil
		})
		return err
	})
	wantErr(t, "UpdateOwner to a taken email", err, store.ErrAlreadyExists)
	err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateOwner(ctx, ownerID(2), func(o store.Owner) (store.Owner, error) {
			o.UserName = strings.ToUpper(newOwner(1).UserName)
			return o, nil
		})
		return err
	})
	wantErr(t, "UpdateOwner to a taken user name", err, store.ErrAlreadyExists)
}

func newToken(i int) store.AdminToken {
	h := sha256.Sum256(fmt.Appendf(nil, "token-%d", i))
	return store.AdminToken{
		ID:        fmt.Sprintf("adm_%04d", i),
		Name:      fmt.Sprintf("token-%d", i),
		Role:      store.RoleAdmin,
		Hash:      h[:],
		CreatedBy: "system",
		CreatedAt: base(),
	}
}

func testAdminTokenCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := newToken(1)
	in.ExpiresAt = base().Add(24 * time.Hour)
	want := in
	want.CreatedAt, want.ExpiresAt, want.Version = stored(in.CreatedAt), stored(in.ExpiresAt), 1
	var created store.AdminToken
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		created, err = tx.CreateAdminToken(ctx, in)
		return err
	})
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("CreateAdminToken (-want +got):\n%s", diff)
	}
	for name, get := range map[string]func() (store.AdminToken, error){
		"GetAdminToken":       func() (store.AdminToken, error) { return s.GetAdminToken(ctx, in.ID) },
		"GetAdminTokenByHash": func() (store.AdminToken, error) { return s.GetAdminTokenByHash(ctx, in.Hash) },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	revoked := base().Add(time.Hour)
	var updated store.AdminToken
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		updated, err = tx.UpdateAdminToken(ctx, in.ID, func(a store.AdminToken) (store.AdminToken, error) {
			a.ID, a.Name, a.CreatedBy, a.CreatedAt = "adm_x", "x", "x", time.Time{} // immutable
			a.Role = store.RoleAuditor
			a.RevokedAt = revoked
			return a, nil
		})
		return err
	})
	want2 := want
	want2.Role, want2.RevokedAt, want2.Version = store.RoleAuditor, stored(revoked), 2
	if diff := cmp.Diff(want2, updated); diff != "" {
		t.Errorf("UpdateAdminToken (-want +got):\n%s", diff)
	}
	got, err := s.GetAdminToken(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("GetAdminToken after update (-want +got):\n%s", diff)
	}
}

func testAdminTokenUnique(t *testing.T, s store.Store) {
	ctx := context.Background()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CreateAdminToken(ctx, newToken(1))
		return err
	})
	sameID, sameName, sameHash := newToken(2), newToken(3), newToken(4)
	sameID.ID = newToken(1).ID
	sameName.Name = newToken(1).Name
	sameHash.Hash = newToken(1).Hash
	for name, tok := range map[string]store.AdminToken{"id": sameID, "name": sameName, "hash": sameHash} {
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateAdminToken(ctx, tok)
			return err
		})
		wantErr(t, "CreateAdminToken with a taken "+name, err, store.ErrAlreadyExists)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	reads := map[string]func() error{
		"GetAgent":        func() error { _, err := s.GetAgent(ctx, "agt_missing"); return err },
		"GetAgentByName":  func() error { _, err := s.GetAgentByName(ctx, "missing"); return err },
		"GetAgentVersion": func() error { _, err := s.GetAgentVersion(ctx, "agt_missing"); return err },
		"GetOwner":        func() error { _, err := s.GetOwner(ctx, "own_missing"); return err },
		"GetOwnerByEmail": func() error {
			_, err := s.GetOwnerByEmail(ctx, "missing@example.org")
			return err
		},
		"GetOwnerByEmail empty": func() error { _, err := s.GetOwnerByEmail(ctx, ""); return err },
		"GetAdminToken":         func() error { _, err := s.GetAdminToken(ctx, "adm_missing"); return err },
		"GetAdminTokenByHash":   func() error { _, err := s.GetAdminTokenByHash(ctx, []byte("missing")); return err },
	}
	for name, read := range reads {
		wantErr(t, name, read(), store.ErrNotFound)
	}
	called := false
	writes := map[string]func(ctx context.Context, tx store.Tx) error{
		"UpdateAgent": func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateAgent(ctx, "agt_missing", func(a store.Agent) (store.Agent, error) { called = true; return a, nil })
			return err
		},
		"UpdateOwner": func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateOwner(ctx, "own_missing", func(o store.Owner) (store.Owner, error) { called = true; return o, nil })
			return err
		},
		"UpdateAdminToken": func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateAdminToken(ctx, "adm_missing", func(a store.AdminToken) (store.AdminToken, error) {
				called = true
				return a, nil
			})
			return err
		},
		"GetAgent in tx": func(ctx context.Context, tx store.Tx) error {
			_, err := tx.GetAgent(ctx, "agt_missing")
			return err
		},
	}
	for name, w := range writes {
		wantErr(t, name, s.Update(ctx, w), store.ErrNotFound)
	}
	if called {
		t.Error("an updater was called for a missing record")
	}
}
