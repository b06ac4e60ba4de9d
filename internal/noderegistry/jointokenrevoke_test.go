package noderegistry_test

import (
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/testca"
)

// TestRevokeJoinToken: a revoked node join token does not attest; a used,
// revoked or expired one cannot be revoked; an unknown id is not found.
// On each backend.
func TestRevokeJoinToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		tok, secret := e.token()
		before := e.head()
		e.clock.Advance(time.Second)
		got, err := e.svc.RevokeJoinToken(e.ctx, admin(), tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != tok.ID || !got.ExpiresAt.Equal(tok.ExpiresAt) || !got.RevokedAt.Equal(e.clock.Now().Truncate(time.Microsecond)) ||
			got.RevokedBy != "adm_tester" || got.Hash != nil || !got.UsedAt.IsZero() {
			t.Fatalf("revoked = %+v", got)
		}
		evs := e.events(before, secret)
		if len(evs) != 1 || evs[0]["type"] != noderegistry.EventJoinTokenRevoked || evs[0]["family"] != "admin" ||
			evs[0]["details"].(map[string]any)["id"] != tok.ID || evs[0]["actor"].(map[string]any)["id"] != "adm_tester" {
			t.Fatalf("events = %v", evs)
		}

		before = e.head()
		if _, err := e.attest(secret, csrPEM(t, testca.Key(t))); !errors.Is(err, noderegistry.ErrUnauthenticated) {
			t.Fatalf("attest with a revoked token: %v", err)
		}
		evs = e.events(before, secret)
		if len(evs) != 1 || evs[0]["type"] != noderegistry.EventNodeAttested || evs[0]["outcome"] != "failure" ||
			evs[0]["reason"] != noderegistry.ReasonRevoked || evs[0]["details"].(map[string]any)["join_token_id"] != tok.ID {
			t.Errorf("refused attestation events = %v", evs)
		}
		if ns := e.nodes(); len(ns) != 0 {
			t.Errorf("nodes = %v", ns)
		}
		if cur, err := e.st.GetJoinToken(e.ctx, tok.ID); err != nil || !cur.UsedAt.IsZero() {
			t.Errorf("the refused attestation consumed the token: %+v, %v", cur, err)
		}

		spent := func(id, why string) {
			t.Helper()
			if _, err := e.svc.RevokeJoinToken(e.ctx, admin(), id); !errors.Is(err, noderegistry.ErrJoinTokenSpent) ||
				!errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), why) {
				t.Errorf("revoke %s: %v, want %q", id, err, why)
			}
		}
		spent(tok.ID, "was revoked")
		used, usedSecret := e.token()
		if _, err := e.attest(usedSecret, csrPEM(t, testca.Key(t))); err != nil {
			t.Fatal(err)
		}
		spent(used.ID, "already used by node nod_")
		expiring, _, err := e.svc.CreateJoinToken(e.ctx, admin(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		spent(expiring.ID, "expired")

		before = e.head()
		unknown, err := recordid.New(recordid.JoinToken, e.clock.Now(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.RevokeJoinToken(e.ctx, admin(), unknown); !errors.Is(err, noderegistry.ErrJoinTokenNotFound) || !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoke an unknown id: %v", err)
		}
		var ve *noderegistry.ValidationError
		for _, bad := range []string{"", "njt_x", "ajt_" + tok.ID[4:], secret} {
			if _, err := e.svc.RevokeJoinToken(e.ctx, admin(), bad); !errors.As(err, &ve) || ve.Field != "id" {
				t.Errorf("revoke %q: %v", bad, err)
			}
		}
		if evs := e.events(before); len(evs) != 0 {
			t.Errorf("refused revocations recorded %v", evs)
		}
		e.verifyTrail()
	})
}

// TestRevokeJoinTokenRace: a revocation racing attestations with one join
// token: exactly one of them wins, on each backend.
func TestRevokeJoinTokenRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		tok, secret := e.token()
		csr := csrPEM(t, testca.Key(t))
		var (
			wg               sync.WaitGroup
			attested, revoke atomic.Int32
			start            = make(chan struct{})
		)
		for i := range 8 {
			wg.Go(func() {
				<-start
				if i%4 == 0 {
					switch _, err := e.svc.RevokeJoinToken(e.ctx, admin(), tok.ID); {
					case err == nil:
						revoke.Add(1)
					case !errors.Is(err, noderegistry.ErrJoinTokenSpent):
						t.Errorf("revocation %d: %v", i, err)
					}
					return
				}
				switch _, err := e.attest(secret, csr); {
				case err == nil:
					attested.Add(1)
				case !errors.Is(err, noderegistry.ErrUnauthenticated):
					t.Errorf("attestation %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if attested.Load()+revoke.Load() != 1 {
			t.Fatalf("%d attestations and %d revocations succeeded, want one in all", attested.Load(), revoke.Load())
		}
		if n := len(e.nodes()); n != int(attested.Load()) {
			t.Errorf("%d nodes for %d attestations", n, attested.Load())
		}
	})
}
