package oauth_test

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// joinKey is the test's join token key (every replica's).
var joinKey = []byte("0123456789abcdef0123456789abcdef") //nolint:gochecknoglobals // test constant

func joinEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	e := newEnv(t, st)
	e.params.JoinTokenKey = joinKey
	e.srv = e.withParams(nil)
	return e
}

func joinRequest(secret string, kv ...string) *oauth.Request {
	return &oauth.Request{Form: form(append([]string{"grant_type", oauth.GrantJoinToken, "join_token", secret}, kv...)...),
		Origin: audit.Origin{Source: audit.Source{IP: "192.0.2.13"}}}
}

func TestJoinToken(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	e := joinEnv(t, st)
	jt, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), "bot", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(jt.Secret, "aidajt_") || !strings.HasPrefix(jt.ID, "ajt_") || !jt.ExpiresAt.Equal(e.clk.Now().Add(oauth.DefaultJoinTokenTTL)) {
		t.Fatalf("join token = %+v", jt)
	}
	created := e.events(oauth.EventJoinTokenCreated)
	if len(created) != 1 || created[0]["details"].(map[string]any)["id"] != jt.ID || strings.Contains(e.trail(), jt.Secret) {
		t.Fatalf("created events = %v (the secret must not be in the trail)", created)
	}

	resp, oe := e.srv.Token(e.ctx, joinRequest(jt.Secret, "client_id", "bot", "scope", "tickets:read"))
	if oe != nil {
		t.Fatalf("Token: %v (%s)", oe, oe.Reason)
	}
	c := e.claims(resp.AccessToken)
	ins, _ := c["agent_instance"].(string)
	if !strings.HasPrefix(ins, "ins_") || c["client_id"] != e.agent.ID || c["scope"] != "tickets:read" {
		t.Fatalf("claims = %v", c)
	}
	in, err := e.st.GetInstance(e.ctx, ins)
	if err != nil || in.Method != attest.MethodJoinToken || in.Attestor != oauth.AttestorJoinToken || in.Key != jt.ID || in.SourceIP != "192.0.2.13" {
		t.Errorf("instance = %+v, %v", in, err)
	}
	evs := e.events(oauth.EventInstanceAttested)
	if len(evs) != 1 || evs[0]["outcome"] != "success" || evs[0]["details"].(map[string]any)["method"] != attest.MethodJoinToken {
		t.Fatalf("attested = %v", evs)
	}

	// Replayed.
	_, oe = e.srv.Token(e.ctx, joinRequest(jt.Secret))
	if oe == nil || oe.Code != oauth.CodeInvalidGrant || !strings.Contains(oe.Reason, "already used") {
		t.Fatalf("replay: %v (%s)", oe, reasonOf(oe))
	}
	if evs := e.events(oauth.EventInstanceAttested); len(evs) != 2 || evs[1]["outcome"] != "failure" {
		t.Errorf("replay not audited: %v", evs)
	}

	other, _, _, _ := e.newAgent("other", nil)
	fresh := func() string {
		jt, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), e.agent.ID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return jt.Secret
	}
	forged := func() string {
		k := append([]byte(nil), joinKey...)
		k[0] ^= 1
		x := *e
		x.params.JoinTokenKey = k
		jt, err := x.withParams(nil).CreateJoinToken(e.ctx, adminOrigin(), e.agent.ID, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return jt.Secret
	}
	cases := []struct {
		name string
		req  *oauth.Request
		code string
		why  string
	}{
		{"forged", joinRequest(forged()), oauth.CodeInvalidGrant, "not signed by this server"},
		{"garbage", joinRequest("aidajt_x.y"), oauth.CodeInvalidGrant, "malformed"},
		{"other agent", joinRequest(fresh(), "client_id", other.ID), oauth.CodeInvalidGrant, "another agent"},
		{"no token", joinRequest(""), oauth.CodeInvalidRequest, "join_token is required"},
		{"client auth too", joinRequest(fresh(), "client_secret", "x"), oauth.CodeInvalidRequest, "no client authentication"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, oe := e.srv.Token(e.ctx, c.req)
			if oe == nil || oe.Code != c.code || oe.Status >= 500 || !strings.Contains(oe.Reason, c.why) {
				t.Fatalf("error = %v (%s), want %s with %q", oe, reasonOf(oe), c.code, c.why)
			}
		})
	}
	expiring := fresh()
	e.clk.Advance(2 * time.Minute)
	if _, oe := e.srv.Token(e.ctx, joinRequest(expiring)); oe == nil || oe.Code != oauth.CodeInvalidGrant || !strings.Contains(oe.Reason, "expired") {
		t.Errorf("expired: %v (%s)", oe, reasonOf(oe))
	}
	suspendedTok := fresh()
	if _, err := e.ids.SuspendAgent(e.ctx, adminOrigin(), identity.TransitionParams{Ref: e.agent.ID}); err != nil {
		t.Fatal(err)
	}
	if _, oe := e.srv.Token(e.ctx, joinRequest(suspendedTok)); oe == nil || oe.Code != oauth.CodeInvalidGrant {
		t.Errorf("suspended agent: %v", oe)
	}
	if _, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), e.agent.ID, 0); !errors.Is(err, identity.ErrIllegalTransition) {
		t.Errorf("create for a suspended agent: %v", err)
	}
	if _, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), "nobody", 0); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("create for an unknown agent: %v", err)
	}
	var ve *fault.ValidationError
	if _, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), other.ID, 2*time.Hour); !errors.As(err, &ve) || ve.Field != "ttl" {
		t.Errorf("create with a 2h ttl: %v", err)
	}
}

func TestJoinTokenDisabled(t *testing.T) {
	e := sqliteEnv(t)
	if _, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), "bot", 0); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("create: %v", err)
	}
	if _, oe := e.srv.Token(e.ctx, joinRequest("aidajt_x")); oe == nil || oe.Code != oauth.CodeUnsupportedGrantType {
		t.Errorf("redeem: %v", oe)
	}
}

// TestJoinTokenRace: concurrent redemptions of one join token on two
// servers sharing the store succeed exactly once, on each backend.
func TestJoinTokenRace(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := joinEnv(t, st)
			replicas := []*oauth.Server{e.srv, e.withParams(nil)}
			jt, err := e.srv.CreateJoinToken(e.ctx, adminOrigin(), "bot", 0)
			if err != nil {
				t.Fatal(err)
			}
			var (
				wg    sync.WaitGroup
				won   atomic.Int32
				start = make(chan struct{})
			)
			for i := range 16 {
				wg.Go(func() {
					<-start
					_, oe := replicas[i%2].Token(e.ctx, joinRequest(jt.Secret))
					switch {
					case oe == nil:
						won.Add(1)
					case oe.Code != oauth.CodeInvalidGrant:
						t.Errorf("redemption %d: %v (%s)", i, oe, oe.Reason)
					}
				})
			}
			close(start)
			wg.Wait()
			if won.Load() != 1 {
				t.Fatalf("%d of 16 concurrent redemptions succeeded, want exactly 1", won.Load())
			}
			ins, _, err := e.st.ListInstances(e.ctx, store.InstanceFilter{AgentID: e.agent.ID}, store.Page{})
			if err != nil || len(ins) != 1 {
				t.Errorf("instances = %d, %v; want 1", len(ins), err)
			}
		})
	}
}
