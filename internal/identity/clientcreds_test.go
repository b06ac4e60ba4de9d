package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// credSnapshot is the agent's credentials, which a failed call must leave
// unchanged together with snapshot.
type credSnapshot struct {
	Keys    []store.ClientKey
	Secrets []store.ClientSecret
}

func (e *env) creds(agentID string) credSnapshot {
	e.t.Helper()
	keys, err := e.st.ListClientKeys(e.ctx, agentID)
	if err != nil {
		e.t.Fatal(err)
	}
	secrets, err := e.st.ListClientSecrets(e.ctx, agentID)
	if err != nil {
		e.t.Fatal(err)
	}
	return credSnapshot{Keys: keys, Secrets: secrets}
}

// exportTrail returns the whole audit trail as the export writes it.
func (e *env) exportTrail() []byte {
	e.t.Helper()
	recs, _, err := e.st.ListAudit(e.ctx, store.AuditQuery{}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		e.t.Fatal(err)
	}
	var b bytes.Buffer
	for _, r := range recs {
		b.Write(r.Body)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestAddClientKey(t *testing.T) {
	k := clientTestKeys(t)
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		a := e.agent("signer", e.owner("o@example.com").ID)
		e.clk.Advance(time.Minute)
		now := e.clk.Now().UTC().Truncate(time.Microsecond)
		exp := now.Add(90 * 24 * time.Hour)

		before := e.head()
		got, err := e.svc.AddClientKey(e.ctx, testOrigin(), AddClientKeyParams{
			Ref: a.Name, PublicKey: pkixPEM(t, k.p256.Public()), ExpiresAt: exp,
		})
		if err != nil {
			t.Fatal(err)
		}
		tp := thumbprint(t, k.p256.Public())
		parsed, err := ParseClientKey(pkixPEM(t, k.p256.Public()), "")
		if err != nil {
			t.Fatal(err)
		}
		want := store.ClientKey{AgentID: a.ID, KeyID: tp, Algorithm: AlgES256, JWK: parsed.JWK, CreatedAt: now, ExpiresAt: exp}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("AddClientKey (-want +got):\n%s", diff)
		}
		stored, err := e.st.GetClientKey(e.ctx, a.ID, tp)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, stored); diff != "" {
			t.Errorf("stored key (-returned +stored):\n%s", diff)
		}
		// The agent's version moved: concurrent credential changes serialise.
		cur, err := e.svc.GetAgent(e.ctx, a.ID)
		if err != nil || cur.Version != 2 || !cur.UpdatedAt.Equal(now) {
			t.Fatalf("agent after AddClientKey: version %d updated %v, %v", cur.Version, cur.UpdatedAt, err)
		}
		wantEv := wantEvent(audit.Issuance, EventClientKeyAdded, &a, map[string]any{
			"kid": tp, "alg": "ES256", "thumbprint": tp, "expires_at": exp.Format(time.RFC3339Nano), "version": 2,
		}, "")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}

		// A JWK with its own kid; an RSA key for PS256.
		jwk := jwkJSON(t, k.ed.Public(), "laptop-1", "")
		ed, err := e.svc.AddClientKey(e.ctx, testOrigin(), AddClientKeyParams{Ref: a.ID, PublicKey: jwk})
		if err != nil || ed.KeyID != "laptop-1" || ed.Algorithm != AlgEdDSA || !ed.ExpiresAt.IsZero() {
			t.Fatalf("add JWK: %+v, %v", ed, err)
		}
		rs, err := e.svc.AddClientKey(e.ctx, testOrigin(), AddClientKeyParams{Ref: a.ID, PublicKey: pkixPEM(t, k.rsa2048.Public()), Algorithm: AlgPS256})
		if err != nil || rs.Algorithm != AlgPS256 {
			t.Fatalf("add RSA: %+v, %v", rs, err)
		}
		keys, err := e.svc.ListClientKeys(e.ctx, a.Name)
		if err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range keys {
			kids = append(kids, k.KeyID)
		}
		wantKids := []string{tp, "laptop-1", rs.KeyID}
		if diff := cmp.Diff(sortedCopy(wantKids), kids); diff != "" {
			t.Errorf("listed kids (-want +got):\n%s", diff)
		}

		// Remove one; removing it again is not found.
		before = e.head()
		if err := e.svc.RemoveClientKey(e.ctx, testOrigin(), a.Name, "laptop-1"); err != nil {
			t.Fatal(err)
		}
		evs := e.eventsAfter(before)
		if len(evs) != 1 || evs[0].Type != EventClientKeyRemoved || evs[0].Details["kid"] != "laptop-1" ||
			evs[0].Details["thumbprint"] != thumbprint(t, k.ed.Public()) || evs[0].Details["alg"] != "EdDSA" {
			t.Fatalf("remove events: %+v", evs)
		}
		if err := e.svc.RemoveClientKey(e.ctx, testOrigin(), a.Name, "laptop-1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("remove again: %v, want ErrNotFound", err)
		}
		e.verifyTrail()
	})
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestAddClientKeyRefused(t *testing.T) {
	k := clientTestKeys(t)
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		owner := e.owner("o@example.com").ID
		a := e.agent("keyed", owner)
		if _, err := e.svc.AddClientKey(e.ctx, testOrigin(), AddClientKeyParams{Ref: a.ID, PublicKey: jwkJSON(t, k.p256.Public(), "k1", "")}); err != nil {
			t.Fatal(err)
		}
		dead := e.agent("dead", owner)
		if _, err := e.svc.DeprovisionAgent(e.ctx, testOrigin(), TransitionParams{Ref: dead.ID}); err != nil {
			t.Fatal(err)
		}
		full := e.agent("full", owner)
		for i := range MaxClientKeys {
			if _, err := e.svc.AddClientKey(e.ctx, testOrigin(), AddClientKeyParams{Ref: full.ID, PublicKey: freshP256JWK(t, fmt.Sprintf("k%d", i))}); err != nil {
				t.Fatal(err)
			}
		}
		past := e.clk.Now().Add(-time.Second)
		for _, tt := range []struct {
			name  string
			p     AddClientKeyParams
			field string
			want  error
		}{
			{"private key", AddClientKeyParams{Ref: a.ID, PublicKey: jwkJSON(t, k.p256, "", "")}, "public_key", nil},
			{"bad algorithm", AddClientKeyParams{Ref: a.ID, PublicKey: pkixPEM(t, k.ed.Public()), Algorithm: "ES256"}, "algorithm", nil},
			{"past expiry", AddClientKeyParams{Ref: a.ID, PublicKey: pkixPEM(t, k.ed.Public()), ExpiresAt: past}, FieldExpiresAt, nil},
			{"bad ref", AddClientKeyParams{Ref: "Bad!", PublicKey: pkixPEM(t, k.ed.Public())}, "ref", nil},
			{"unknown agent", AddClientKeyParams{Ref: "nobody", PublicKey: pkixPEM(t, k.ed.Public())}, "", ErrNotFound},
			{"kid taken", AddClientKeyParams{Ref: a.ID, PublicKey: jwkJSON(t, k.ed.Public(), "k1", "")}, "", ErrAlreadyExists},
			{"same key, other kid", AddClientKeyParams{Ref: a.ID, PublicKey: pkixPEM(t, k.p256.Public())}, "", ErrAlreadyExists},
			{"deprovisioned", AddClientKeyParams{Ref: dead.ID, PublicKey: pkixPEM(t, k.ed.Public())}, "", ErrIllegalTransition},
			{"too many keys", AddClientKeyParams{Ref: full.Name, PublicKey: pkixPEM(t, k.ed.Public())}, "", ErrLimitExceeded},
		} {
			before, credsA, credsFull := e.snapshot(), e.creds(a.ID), e.creds(full.ID)
			_, err := e.svc.AddClientKey(e.ctx, testOrigin(), tt.p)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
				}
			} else {
				checkValidation(t, err, tt.field)
			}
			e.unchanged(before, tt.name)
			if diff := cmp.Diff(credsA, e.creds(a.ID)); diff != "" {
				t.Errorf("%s changed keys:\n%s", tt.name, diff)
			}
			if diff := cmp.Diff(credsFull, e.creds(full.ID)); diff != "" {
				t.Errorf("%s changed keys:\n%s", tt.name, diff)
			}
		}
		for _, tt := range []struct {
			name, ref, kid string
			field          string
			want           error
		}{
			{"empty kid", a.ID, "", "kid", nil},
			{"bad kid", a.ID, "a b", "kid", nil},
			{"unknown kid", a.ID, "k2", "", ErrNotFound},
			{"unknown agent", "nobody", "k1", "", ErrNotFound},
		} {
			before := e.snapshot()
			err := e.svc.RemoveClientKey(e.ctx, testOrigin(), tt.ref, tt.kid)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("remove %s: error = %v, want %v", tt.name, err, tt.want)
				}
			} else {
				checkValidation(t, err, tt.field)
			}
			e.unchanged(before, "remove "+tt.name)
		}
		// A deprovisioned agent's keys can still be removed.
		if err := e.svc.RemoveClientKey(e.ctx, testOrigin(), full.Name, "k0"); err != nil {
			t.Fatal(err)
		}
	})
}

// freshP256JWK returns the public JWK of a new P-256 key with the kid.
func freshP256JWK(t testing.TB, kid string) []byte {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jwkJSON(t, priv.Public(), kid, "")
}

func TestClientSecrets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		owner := e.owner("o@example.com").ID
		a := e.agent("secretive", owner)
		e.clk.Advance(time.Minute)
		now := e.clk.Now().UTC().Truncate(time.Microsecond)

		before := e.head()
		first, secret1, err := e.svc.CreateClientSecret(e.ctx, testOrigin(), CreateClientSecretParams{Ref: a.Name, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if recordid.Valid(recordid.ClientSecret, first.ID) != nil || first.AgentID != a.ID || first.Hash != nil ||
			!first.CreatedAt.Equal(now) || !first.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Errorf("created secret record %+v", first)
		}
		raw, ok := strings.CutPrefix(secret1, ClientSecretPrefix)
		if !ok || len(raw) != 43 {
			t.Errorf("secret %q is not %s + 43 base64url characters", secret1, ClientSecretPrefix)
		}
		wantEv := wantEvent(audit.Issuance, EventClientSecretCreated, &a, map[string]any{
			"secret_id": first.ID, "expires_at": now.Add(time.Hour).Format(time.RFC3339Nano), "version": 2,
		}, "")
		if diff := cmp.Diff([]event{wantEv}, e.eventsAfter(before)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		stored, err := e.st.ListClientSecrets(e.ctx, a.ID)
		if err != nil || len(stored) != 1 || !bytes.Equal(stored[0].Hash, HashClientSecret(secret1)) {
			t.Fatalf("stored secrets %+v, %v; want the SHA-256 of the secret", stored, err)
		}

		// A second is fine (rotation); a third is refused while both live.
		second, secret2, err := e.svc.CreateClientSecret(e.ctx, testOrigin(), CreateClientSecretParams{Ref: a.ID})
		if err != nil {
			t.Fatal(err)
		}
		if secret1 == secret2 {
			t.Fatal("two secrets are equal")
		}
		snap, creds := e.snapshot(), e.creds(a.ID)
		_, _, err = e.svc.CreateClientSecret(e.ctx, testOrigin(), CreateClientSecretParams{Ref: a.ID})
		if !errors.Is(err, ErrLimitExceeded) || !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "remove one") {
			t.Fatalf("third secret: %v, want ErrLimitExceeded", err)
		}
		e.unchanged(snap, "third secret")
		if diff := cmp.Diff(creds, e.creds(a.ID)); diff != "" {
			t.Errorf("third secret changed secrets:\n%s", diff)
		}

		// Once the first expires, there is room again.
		e.clk.Advance(time.Hour)
		third, _, err := e.svc.CreateClientSecret(e.ctx, testOrigin(), CreateClientSecretParams{Ref: a.ID})
		if err != nil {
			t.Fatalf("secret after expiry: %v", err)
		}
		listed, err := e.svc.ListClientSecrets(e.ctx, a.Name)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range listed {
			if s.Hash != nil {
				t.Errorf("ListClientSecrets returned a hash: %+v", s)
			}
			ids = append(ids, s.ID)
		}
		if diff := cmp.Diff(sortedCopy([]string{first.ID, second.ID, third.ID}), ids); diff != "" {
			t.Errorf("listed ids (-want +got):\n%s", diff)
		}

		// Remove; removing again or a malformed id fails.
		before = e.head()
		if err := e.svc.RemoveClientSecret(e.ctx, testOrigin(), a.Name, second.ID); err != nil {
			t.Fatal(err)
		}
		evs := e.eventsAfter(before)
		if len(evs) != 1 || evs[0].Type != EventClientSecretRemoved || evs[0].Details["secret_id"] != second.ID {
			t.Fatalf("remove events %+v", evs)
		}
		if err := e.svc.RemoveClientSecret(e.ctx, testOrigin(), a.Name, second.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("remove again: %v", err)
		}
		checkValidation(t, e.svc.RemoveClientSecret(e.ctx, testOrigin(), a.Name, "sec_nope"), "id")
		other := e.agent("other", owner)
		if err := e.svc.RemoveClientSecret(e.ctx, testOrigin(), other.Name, third.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("remove another agent's secret: %v", err)
		}

		// Deprovisioned agents get no secret; bad input changes nothing.
		if _, err := e.svc.DeprovisionAgent(e.ctx, testOrigin(), TransitionParams{Ref: other.ID}); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name  string
			p     CreateClientSecretParams
			field string
			want  error
		}{
			{"deprovisioned", CreateClientSecretParams{Ref: other.ID}, "", ErrIllegalTransition},
			{"unknown", CreateClientSecretParams{Ref: "nobody"}, "", ErrNotFound},
			{"bad ref", CreateClientSecretParams{Ref: ""}, "ref", nil},
			{"past expiry", CreateClientSecretParams{Ref: a.ID, ExpiresAt: e.clk.Now().Add(-time.Minute)}, FieldExpiresAt, nil},
		} {
			snap := e.snapshot()
			_, _, err := e.svc.CreateClientSecret(e.ctx, testOrigin(), tt.p)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
				}
			} else {
				checkValidation(t, err, tt.field)
			}
			e.unchanged(snap, tt.name)
		}

		// No secret and no hash of one ever reaches the audit trail.
		trail := e.exportTrail()
		for _, s := range []string{secret1, secret2, strings.TrimPrefix(secret1, ClientSecretPrefix),
			hex.EncodeToString(HashClientSecret(secret1)), base64.RawURLEncoding.EncodeToString(HashClientSecret(secret1)),
			base64.StdEncoding.EncodeToString(HashClientSecret(secret1))} {
			if bytes.Contains(trail, []byte(s)) {
				t.Errorf("the audit trail contains %q", s)
			}
		}
		e.verifyTrail()
	})
}

// TestConcurrentSecretCreation: of many concurrent creations exactly
// MaxClientSecrets succeed; the rest hit the limit.
func TestConcurrentSecretCreation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		a := e.agent("raced", e.owner("o@example.com").ID)
		const n = 8
		var (
			wg          sync.WaitGroup
			mu          sync.Mutex
			ok, limited int
		)
		for i := range n {
			wg.Go(func() {
				_, _, err := e.svc.CreateClientSecret(e.ctx, testOrigin(), CreateClientSecretParams{Ref: a.ID})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrLimitExceeded):
					limited++
				default:
					t.Errorf("create %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if ok != MaxClientSecrets || limited != n-MaxClientSecrets {
			t.Errorf("created %d, limited %d; want %d and %d", ok, limited, MaxClientSecrets, n-MaxClientSecrets)
		}
		if got := e.creds(a.ID).Secrets; len(got) != MaxClientSecrets {
			t.Errorf("%d secrets stored", len(got))
		}
		e.verifyTrail()
	})
}

func TestMatchClientSecret(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id, secret string, exp time.Time) store.ClientSecret {
		return store.ClientSecret{ID: id, Hash: HashClientSecret(secret), ExpiresAt: exp}
	}
	secrets := []store.ClientSecret{
		mk("sec_old", "aidcs_old", now.Add(-time.Second)),
		mk("sec_edge", "aidcs_edge", now),
		mk("sec_a", "aidcs_a", time.Time{}),
		mk("sec_b", "aidcs_b", now.Add(time.Hour)),
		{ID: "sec_short", Hash: []byte{1, 2, 3}},
	}
	for _, tt := range []struct {
		secret string
		want   string // "" : no match
	}{
		{"aidcs_a", "sec_a"},
		{"aidcs_b", "sec_b"},
		{"aidcs_old", ""},  // expired
		{"aidcs_edge", ""}, // expires at now: expired
		{"aidcs_c", ""},
		{"", ""},
		{"aidcs_a ", ""},
	} {
		got, ok := MatchClientSecret(secrets, tt.secret, now)
		if ok != (tt.want != "") || got.ID != tt.want {
			t.Errorf("MatchClientSecret(%q) = %q, %v; want %q", tt.secret, got.ID, ok, tt.want)
		}
	}
	if _, ok := MatchClientSecret(nil, "aidcs_a", now); ok {
		t.Error("matched in an empty list")
	}
}
