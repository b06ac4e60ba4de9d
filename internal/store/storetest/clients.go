package storetest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func clientKey(agent, kid string) store.ClientKey {
	return store.ClientKey{
		AgentID:   agent,
		KeyID:     kid,
		Algorithm: "ES256",
		JWK:       []byte(`{"kty":"EC","crv":"P-256","kid":"` + kid + `"}`),
		CreatedAt: base(),
		ExpiresAt: base().Add(24 * time.Hour),
	}
}

func storedClientKey(k store.ClientKey) store.ClientKey {
	k.CreatedAt, k.ExpiresAt = stored(k.CreatedAt), stored(k.ExpiresAt)
	return k
}

func clientSecret(agent, id string) store.ClientSecret {
	h := sha256.Sum256([]byte("secret-" + id))
	return store.ClientSecret{ID: id, AgentID: agent, Hash: h[:], CreatedAt: base()}
}

func storedClientSecret(c store.ClientSecret) store.ClientSecret {
	c.CreatedAt, c.ExpiresAt = stored(c.CreatedAt), stored(c.ExpiresAt)
	return c
}

func testClientKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)), newAgent(2, ownerID(1)), newAgent(3, ownerID(1)))
	a1, a2 := agentID(1), agentID(2)
	never := clientKey(a1, "k3")
	never.ExpiresAt = time.Time{}
	var created store.ClientKey
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, k := range []store.ClientKey{clientKey(a1, "k2"), never, clientKey(a2, "k1"), clientKey(a1, "k1")} {
			got, err := tx.CreateClientKey(ctx, k)
			if err != nil {
				return err
			}
			created = got
		}
		return nil
	})
	if diff := cmp.Diff(storedClientKey(clientKey(a1, "k1")), created); diff != "" {
		t.Errorf("CreateClientKey returned (-want +got):\n%s", diff)
	}
	got, err := s.GetClientKey(ctx, a1, "k3")
	if err != nil {
		t.Fatalf("GetClientKey: %v", err)
	}
	if diff := cmp.Diff(storedClientKey(never), got); diff != "" {
		t.Errorf("GetClientKey (-want +got):\n%s", diff)
	}
	list := func(agent string) []store.ClientKey {
		t.Helper()
		ks, err := s.ListClientKeys(ctx, agent)
		if err != nil {
			t.Fatalf("ListClientKeys(%s): %v", agent, err)
		}
		return ks
	}
	want := []store.ClientKey{storedClientKey(clientKey(a1, "k1")), storedClientKey(clientKey(a1, "k2")), storedClientKey(never)}
	if diff := cmp.Diff(want, list(a1)); diff != "" {
		t.Errorf("ListClientKeys (-want +got):\n%s", diff)
	}
	for _, agent := range []string{agentID(3), "agt_missing"} {
		if ks := list(agent); len(ks) != 0 {
			t.Errorf("ListClientKeys(%s) = %d keys, want none", agent, len(ks))
		}
	}

	create := func(k store.ClientKey) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateClientKey(ctx, k)
			return err
		})
	}
	wantErr(t, "CreateClientKey with a taken key id", create(clientKey(a1, "k1")), store.ErrAlreadyExists)
	wantErr(t, "CreateClientKey for an unknown agent", create(clientKey("agt_missing", "k1")), store.ErrInvalid)
	for name, edit := range map[string]func(*store.ClientKey){
		"no agent":     func(k *store.ClientKey) { k.AgentID = "" },
		"no key id":    func(k *store.ClientKey) { k.KeyID = "" },
		"no algorithm": func(k *store.ClientKey) { k.Algorithm = "" },
		"no JWK":       func(k *store.ClientKey) { k.JWK = nil },
	} {
		k := clientKey(agentID(3), "k9")
		edit(&k)
		wantErr(t, "CreateClientKey "+name, create(k), store.ErrInvalid)
	}

	del := func(agent, kid string) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.DeleteClientKey(ctx, agent, kid)
		})
	}
	if err := del(a1, "k2"); err != nil {
		t.Fatalf("DeleteClientKey: %v", err)
	}
	wantErr(t, "DeleteClientKey again", del(a1, "k2"), store.ErrNotFound)
	wantErr(t, "DeleteClientKey of another agent's key id", del(a2, "k3"), store.ErrNotFound)
	_, err = s.GetClientKey(ctx, a1, "k2")
	wantErr(t, "GetClientKey of a deleted key", err, store.ErrNotFound)
	_, err = s.GetClientKey(ctx, a2, "k3")
	wantErr(t, "GetClientKey of another agent's key id", err, store.ErrNotFound)
	if diff := cmp.Diff([]store.ClientKey{want[0], want[2]}, list(a1)); diff != "" {
		t.Errorf("ListClientKeys after delete (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]store.ClientKey{storedClientKey(clientKey(a2, "k1"))}, list(a2)); diff != "" {
		t.Errorf("ListClientKeys of the other agent (-want +got):\n%s", diff)
	}
}

func testClientSecrets(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOwners(t, s, newOwner(1))
	createAgents(t, s, newAgent(1, ownerID(1)), newAgent(2, ownerID(1)))
	a1, a2 := agentID(1), agentID(2)
	expiring := clientSecret(a1, "sec_a")
	expiring.ExpiresAt = base().Add(90 * 24 * time.Hour)
	var created store.ClientSecret
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, c := range []store.ClientSecret{clientSecret(a1, "sec_b"), clientSecret(a2, "sec_c"), expiring} {
			got, err := tx.CreateClientSecret(ctx, c)
			if err != nil {
				return err
			}
			created = got
		}
		return nil
	})
	if diff := cmp.Diff(storedClientSecret(expiring), created); diff != "" {
		t.Errorf("CreateClientSecret returned (-want +got):\n%s", diff)
	}
	list := func(agent string) []store.ClientSecret {
		t.Helper()
		cs, err := s.ListClientSecrets(ctx, agent)
		if err != nil {
			t.Fatalf("ListClientSecrets(%s): %v", agent, err)
		}
		return cs
	}
	want := []store.ClientSecret{storedClientSecret(expiring), storedClientSecret(clientSecret(a1, "sec_b"))}
	if diff := cmp.Diff(want, list(a1)); diff != "" {
		t.Errorf("ListClientSecrets (-want +got):\n%s", diff)
	}
	if cs := list("agt_missing"); len(cs) != 0 {
		t.Errorf("ListClientSecrets(agt_missing) = %d secrets, want none", len(cs))
	}

	create := func(c store.ClientSecret) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.CreateClientSecret(ctx, c)
			return err
		})
	}
	sameHash := clientSecret(a2, "sec_d")
	sameHash.Hash = want[1].Hash
	wantErr(t, "CreateClientSecret with a taken id", create(clientSecret(a2, "sec_b")), store.ErrAlreadyExists)
	wantErr(t, "CreateClientSecret with a taken hash", create(sameHash), store.ErrAlreadyExists)
	wantErr(t, "CreateClientSecret for an unknown agent", create(clientSecret("agt_missing", "sec_e")), store.ErrInvalid)
	for name, edit := range map[string]func(*store.ClientSecret){
		"no id":    func(c *store.ClientSecret) { c.ID = "" },
		"no agent": func(c *store.ClientSecret) { c.AgentID = "" },
		"no hash":  func(c *store.ClientSecret) { c.Hash = nil },
	} {
		c := clientSecret(a2, "sec_f")
		edit(&c)
		wantErr(t, "CreateClientSecret "+name, create(c), store.ErrInvalid)
	}

	del := func(agent, id string) error {
		return s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.DeleteClientSecret(ctx, agent, id)
		})
	}
	wantErr(t, "DeleteClientSecret of another agent's secret", del(a2, "sec_a"), store.ErrNotFound)
	if err := del(a1, "sec_a"); err != nil {
		t.Fatalf("DeleteClientSecret: %v", err)
	}
	wantErr(t, "DeleteClientSecret again", del(a1, "sec_a"), store.ErrNotFound)
	if diff := cmp.Diff(want[1:], list(a1)); diff != "" {
		t.Errorf("ListClientSecrets after delete (-want +got):\n%s", diff)
	}
	if cs := list(a2); len(cs) != 1 || cs[0].ID != "sec_c" {
		t.Errorf("ListClientSecrets(%s) = %+v, want sec_c only", a2, cs)
	}
}
