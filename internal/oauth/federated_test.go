package oauth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store"
)

// federatedRequest is a client_credentials request authenticated with
// attestation evidence as client_assertion (ADR 0015 §4).
func federatedRequest(assertion, clientID string, kv ...string) *oauth.Request {
	f := form(append([]string{"grant_type", "client_credentials", "client_assertion_type", oauth.AssertionType,
		"client_assertion", assertion, "client_id", clientID}, kv...)...)
	return &oauth.Request{Form: f, Origin: audit.Origin{Source: audit.Source{IP: "192.0.2.10"}}}
}

func TestFederatedClientAuthentication(t *testing.T) {
	e := newAttestEnv(t)
	raw := e.cluster.Mint("es1", e.podClaims("pod-1"))
	resp, oe := e.srv.Token(e.ctx, federatedRequest(raw, "runner", "scope", "tickets:write"))
	if oe != nil {
		t.Fatalf("Token: %v (%s)", oe, oe.Reason)
	}
	c := e.claims(resp.AccessToken)
	ins, _ := c["agent_instance"].(string)
	if !strings.HasPrefix(ins, "ins_") || c["client_id"] != e.runner.ID || c["scope"] != "tickets:write" {
		t.Fatalf("claims = %v", c)
	}
	in, err := e.st.GetInstance(e.ctx, ins)
	if err != nil || in.Key != "pod-1" || in.SourceIP != "192.0.2.10" || in.Version != 2 {
		t.Errorf("instance = %+v, %v (created, then refreshed with the events)", in, err)
	}
	evs := e.events(oauth.EventInstanceAttested)
	if len(evs) != 1 || evs[0]["outcome"] != "success" {
		t.Fatalf("attested events = %v", evs)
	}
	d := evs[0]["details"].(map[string]any)
	if d["method"] != oauth.MethodAttestation || d["attest_method"] != "kubernetes" || d["attestor"] != "prod" ||
		d["rule"] != "prod: k8s:ns:payments, k8s:sa:runner" || evs[0]["instance"].(map[string]any)["id"] != ins {
		t.Errorf("attested event = %v", evs[0])
	}
	if issued := e.events("credential.issued"); issued[len(issued)-1]["instance"].(map[string]any)["id"] != ins {
		t.Errorf("credential.issued = %v", issued[len(issued)-1])
	}
	// The same evidence again: not one-time, the same instance.
	resp2, oe := e.srv.Token(e.ctx, federatedRequest(raw, e.runner.ID))
	if oe != nil || e.claims(resp2.AccessToken)["agent_instance"] != ins {
		t.Errorf("second request: %v", oe)
	}
	// Revoked: refused, and its tokens inactive.
	if err := e.st.Update(e.ctx, func(ctx_ context.Context, tx store.Tx) error {
		_, err := tx.UpdateInstance(ctx_, ins, func(in store.Instance) (store.Instance, error) {
			in.RevokedAt = e.clk.Now()
			return in, nil
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, oe = e.srv.Token(e.ctx, federatedRequest(raw, e.runner.ID))
	if oe == nil || oe.Code != oauth.CodeInvalidClient || !strings.Contains(oe.Reason, "revoked") {
		t.Errorf("revoked instance: %v", oe)
	}
	if got := e.introspect(resp.AccessToken); got.Active {
		t.Error("token of a revoked instance is active")
	}
}

func TestFederatedClientAuthenticationRefusals(t *testing.T) {
	e := newAttestEnv(t)
	with := func(mut func(map[string]any)) string {
		c := e.podClaims("pod-1")
		mut(c)
		return e.cluster.Mint("es1", c)
	}
	for _, tc := range []struct {
		name   string
		req    *oauth.Request
		reason string
	}{
		{"wrong audience", federatedRequest(with(func(c map[string]any) { c["aud"] = "vault" }), "runner"), "aud"},
		{"expired", federatedRequest(with(func(c map[string]any) { c["exp"] = e.clk.Now().Add(-time.Hour).Unix() }), "runner"), "expired"},
		{"matcher mismatch", federatedRequest(with(func(c map[string]any) {
			c["sub"] = "system:serviceaccount:payments:other"
			c["kubernetes.io"].(map[string]any)["serviceaccount"] = map[string]any{"name": "other", "uid": "x"}
		}), "runner"), "k8s:sa:runner does not hold"},
		{"no client_id", federatedRequest(with(func(map[string]any) {}), ""), "client_id"},
		{"unknown agent", federatedRequest(with(func(map[string]any) {}), "nobody"), "unknown agent"},
	} {
		before := len(e.events(oauth.EventInstanceAttested))
		_, oe := e.srv.Token(e.ctx, tc.req)
		if oe == nil || oe.Code != oauth.CodeInvalidClient || oe.Description != "client authentication failed" {
			t.Errorf("%s: %v, want invalid_client", tc.name, oe)
			continue
		}
		evs := e.events(oauth.EventInstanceAttested)
		if len(evs) != before+1 || evs[len(evs)-1]["outcome"] != "failure" ||
			!strings.Contains(evs[len(evs)-1]["reason"].(string), tc.reason) {
			t.Errorf("%s: events = %v, want a failure with %q", tc.name, evs[before:], tc.reason)
		}
	}
	// A private_key_jwt assertion still authenticates as before.
	if _, oe := e.srv.Token(e.ctx, jwtRequest(e.assertion(nil))); oe != nil {
		t.Errorf("private_key_jwt: %v", oe)
	}
}
