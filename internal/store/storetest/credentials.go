package storetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

// credential returns a record of agent i issued at base()+at, living ttl,
// signed by key; a JWT-SVID has two audiences.
func credential(kind, id string, i int, key string, at, ttl time.Duration) store.IssuedCredential {
	c := store.IssuedCredential{
		Kind:      kind,
		ID:        id,
		AgentID:   agentID(i),
		SPIFFEID:  fmt.Sprintf("spiffe://example.org/agent/agent-%d", i),
		KeyID:     key,
		IssuedAt:  base().Add(at),
		ExpiresAt: base().Add(at + ttl),
	}
	if kind == store.CredentialJWTSVID {
		c.Audience = []string{"https://api.example.org", "spiffe://example.org/db"}
	}
	return c
}

// storedCredential is c as the store returns it.
func storedCredential(c store.IssuedCredential) store.IssuedCredential {
	c.IssuedAt, c.ExpiresAt = stored(c.IssuedAt), stored(c.ExpiresAt)
	if len(c.Audience) == 0 {
		c.Audience = nil
	}
	return c
}

func recordCredentials(t *testing.T, s store.Store, cs ...store.IssuedCredential) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, c := range cs {
			if err := tx.RecordCredential(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
}

func listCredentials(t *testing.T, s store.Store, f store.CredentialFilter) []store.IssuedCredential {
	t.Helper()
	var all []store.IssuedCredential
	token := ""
	for range 100 {
		cs, next, err := s.ListCredentials(context.Background(), f, store.Page{PageToken: token})
		if err != nil {
			t.Fatalf("ListCredentials(%+v): %v", f, err)
		}
		all = append(all, cs...)
		if next == "" {
			return all
		}
		token = next
	}
	t.Fatalf("ListCredentials(%+v): more than 100 pages", f)
	return nil
}

func testCredentials(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)), newAgent(2, ownerID(1)))

	x1 := credential(store.CredentialX509SVID, "0af3", 1, "sgk_ca1", 0, time.Hour)
	x1.InstanceID = "ins_0001"
	j1 := credential(store.CredentialJWTSVID, "tok_1", 1, "sgk_jwt", time.Minute, 5*time.Minute)
	x2 := credential(store.CredentialX509SVID, "77", 2, "sgk_ca2", 2*time.Minute, time.Hour)
	// The same id under the other kind is another credential.
	j2 := credential(store.CredentialJWTSVID, "0af3", 2, "sgk_jwt", 2*time.Minute, 5*time.Minute)
	j2.Audience = []string{"one"}
	recordCredentials(t, s, x2, j1, j2, x1) // not in list order: the list sorts

	want := func(cs ...store.IssuedCredential) []store.IssuedCredential {
		out := make([]store.IssuedCredential, len(cs))
		for i, c := range cs {
			out[i] = storedCredential(c)
		}
		return out
	}
	for name, tc := range map[string]struct {
		f    store.CredentialFilter
		want []store.IssuedCredential
	}{
		"all":         {store.CredentialFilter{}, want(x1, j1, j2, x2)}, // x2 and j2 tie on time: kind orders
		"agent 1":     {store.CredentialFilter{AgentID: agentID(1)}, want(x1, j1)},
		"agent 2 jwt": {store.CredentialFilter{AgentID: agentID(2), Kind: store.CredentialJWTSVID}, want(j2)},
		"x509":        {store.CredentialFilter{Kind: store.CredentialX509SVID}, want(x1, x2)},
		"key":         {store.CredentialFilter{KeyID: "sgk_jwt"}, want(j1, j2)},
		"live at +6m": {store.CredentialFilter{LiveAt: j1.ExpiresAt}, want(x1, j2, x2)}, // expiry not after LiveAt: not live
		"live at +7m": {store.CredentialFilter{LiveAt: base().Add(7 * time.Minute)}, want(x1, x2)},
		"key live":    {store.CredentialFilter{KeyID: "sgk_jwt", LiveAt: base().Add(6 * time.Minute)}, want(j2)},
		"no agent":    {store.CredentialFilter{AgentID: agentID(9)}, nil},
	} {
		if diff := cmp.Diff(tc.want, listCredentials(t, s, tc.f)); diff != "" {
			t.Errorf("ListCredentials %s (-want +got):\n%s", name, diff)
		}
	}
	got := listCredentials(t, s, store.CredentialFilter{AgentID: agentID(1)})
	if len(got) > 0 && (got[0].IssuedAt.Location() != time.UTC || got[0].IssuedAt.Nanosecond()%1000 != 0) {
		t.Errorf("IssuedAt = %v (%s), want UTC at µs", got[0].IssuedAt, got[0].IssuedAt.Location())
	}

	record := func(c store.IssuedCredential) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.RecordCredential(ctx, c) })
	}
	dup := x1
	dup.AgentID, dup.KeyID = agentID(2), "sgk_other"
	wantErr(t, "RecordCredential of a recorded (kind, id)", record(dup), store.ErrAlreadyExists)
	for name, edit := range map[string]func(*store.IssuedCredential){
		"no kind":       func(c *store.IssuedCredential) { c.Kind = "" },
		"no id":         func(c *store.IssuedCredential) { c.ID = "" },
		"no agent":      func(c *store.IssuedCredential) { c.AgentID = "" },
		"no spiffe id":  func(c *store.IssuedCredential) { c.SPIFFEID = "" },
		"no key":        func(c *store.IssuedCredential) { c.KeyID = "" },
		"no issue time": func(c *store.IssuedCredential) { c.IssuedAt = time.Time{} },
		"no expiry":     func(c *store.IssuedCredential) { c.ExpiresAt = time.Time{} },
		"unknown agent": func(c *store.IssuedCredential) { c.AgentID = agentID(9) },
	} {
		c := credential(store.CredentialX509SVID, "new", 1, "sgk_ca1", 0, time.Hour)
		edit(&c)
		wantErr(t, "RecordCredential "+name, record(c), store.ErrInvalid)
	}
	// A failed record left the transaction usable and nothing behind.
	if diff := cmp.Diff(want(x1, j1, j2, x2), listCredentials(t, s, store.CredentialFilter{})); diff != "" {
		t.Errorf("ListCredentials after refused records (-want +got):\n%s", diff)
	}

	// A credential recorded in an fn that fails is not kept.
	boom := errors.New("boom")
	err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.RecordCredential(ctx, credential(store.CredentialJWTSVID, "rolled-back", 1, "k", 0, time.Hour)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if got := listCredentials(t, s, store.CredentialFilter{Kind: store.CredentialJWTSVID, AgentID: agentID(1)}); len(got) != 1 {
		t.Errorf("after a rolled-back record: %d JWT-SVIDs of agent 1, want 1", len(got))
	}
}

func testCredentialPagination(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)), newAgent(2, ownerID(1)))
	// 3 credentials per second for 8 seconds, so that pages split ties on
	// issued_at; agent 2 gets every third one.
	var cs []store.IssuedCredential
	var wantAll, want1 []string
	for sec := range 8 {
		for _, k := range []struct{ kind, id string }{
			{store.CredentialJWTSVID, fmt.Sprintf("tok_%02d", sec)},
			{store.CredentialX509SVID, fmt.Sprintf("%02xa", sec)},
			{store.CredentialX509SVID, fmt.Sprintf("%02xb", sec)},
		} {
			agent := 1
			if k.id[len(k.id)-1] == 'b' {
				agent = 2
			}
			c := credential(k.kind, k.id, agent, "sgk_1", time.Duration(sec)*time.Second, time.Hour)
			cs = append([]store.IssuedCredential{c}, cs...) // record newest first
			wantAll = append(wantAll, k.kind+"/"+k.id)
			if agent == 1 {
				want1 = append(want1, k.kind+"/"+k.id)
			}
		}
	}
	recordCredentials(t, s, cs...)
	for _, size := range []int{1, 2, 5, len(cs), len(cs) + 1} {
		for name, tc := range map[string]struct {
			f    store.CredentialFilter
			want []string
		}{
			"all":     {store.CredentialFilter{}, wantAll},
			"agent 1": {store.CredentialFilter{AgentID: agentID(1)}, want1},
		} {
			got := walkItems(t, "ListCredentials "+name, size, func(p store.Page) ([]store.IssuedCredential, string, error) {
				return s.ListCredentials(ctx, tc.f, p)
			}, credentialKey)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ListCredentials %s size %d (-want +got):\n%s", name, size, diff)
			}
		}
	}

	_, agentsToken, err := s.ListAgents(ctx, store.AgentFilter{}, store.Page{PageSize: 1})
	if err != nil || agentsToken == "" {
		t.Fatalf("ListAgents: token %q, %v", agentsToken, err)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tok := range []string{
		"not base64 !!",
		enc("credentials:"),
		enc("credentials:12"),
		enc("credentials:x:jwt_svid:tok_1"),
		enc("credentials:-5:jwt_svid:tok_1"),
		enc("credentials:5::tok_1"),
		enc("credentials:5:jwt_svid:"),
		agentsToken, // another list's token
	} {
		_, _, err := s.ListCredentials(ctx, store.CredentialFilter{}, store.Page{PageToken: tok})
		wantErr(t, fmt.Sprintf("ListCredentials(token %q)", tok), err, store.ErrInvalid, store.ErrBadPageToken)
	}
}

func testCollectCredentials(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)))
	recordCredentials(t, s,
		credential(store.CredentialJWTSVID, "tok_a", 1, "k", 0, time.Minute),
		credential(store.CredentialX509SVID, "0b", 1, "ca", 0, 2*time.Minute),
		credential(store.CredentialX509SVID, "0c", 1, "ca", 0, time.Hour),
	)
	collect := func(now time.Time) (int64, error) {
		var n int64
		err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			var err error
			n, err = tx.CollectCredentials(ctx, now)
			return err
		})
		return n, err
	}
	// At +2m both the 1-minute and the 2-minute credentials are gone (an
	// expiry not after now), the 1-hour one stays.
	if n, err := collect(base().Add(2 * time.Minute)); err != nil || n != 2 {
		t.Errorf("CollectCredentials = %d, %v; want 2 rows", n, err)
	}
	got := listCredentials(t, s, store.CredentialFilter{})
	if len(got) != 1 || got[0].ID != "0c" {
		t.Errorf("after CollectCredentials: %+v, want only 0c", got)
	}
	if n, err := collect(base().Add(2 * time.Minute)); err != nil || n != 0 {
		t.Errorf("second CollectCredentials = %d, %v; want 0 rows", n, err)
	}
	_, err := collect(time.Time{})
	wantErr(t, "CollectCredentials(zero time)", err, store.ErrInvalid)
}

// testRecordCredentialRace records one (kind, id) from many goroutines:
// exactly one succeeds, the others get ErrAlreadyExists.
func testRecordCredentialRace(t *testing.T, s store.Store) {
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)))
	const n = 16
	var (
		wg    sync.WaitGroup
		won   atomic.Int32
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			c := credential(store.CredentialX509SVID, "race", 1, fmt.Sprintf("ca-%d", i), 0, time.Hour)
			err := s.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
				return tx.RecordCredential(ctx, c)
			})
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, store.ErrAlreadyExists):
				t.Errorf("RecordCredential %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d concurrent records of one serial succeeded, want 1", won.Load())
	}
}
