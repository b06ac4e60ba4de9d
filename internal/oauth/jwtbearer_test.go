package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/kubernetes"
	"github.com/agentid/agentid/internal/attest/oidc"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store"
)

// attestEnv is an env whose server trusts a Kubernetes cluster ("prod")
// and a GitHub-Actions-style OIDC issuer ("github"), both real HTTPS
// issuers, with an agent "runner" attestable from either.
type attestEnv struct {
	*env
	cluster, gh *idptest.IdP
	runner      store.Agent
}

func newAttestEnv(t *testing.T) *attestEnv {
	t.Helper()
	e := sqliteEnv(t)
	cluster, gh := idptest.New(t), idptest.New(t)
	k, err := kubernetes.New(kubernetes.Config{Name: "prod", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile}, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	o, err := oidc.New(oidc.Config{Name: "github", Issuer: gh.URL, Audience: "https://agentid.example.com", TLSCAFile: gh.CAFile,
		InstanceClaims: []string{"sub", "run_id"}}, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	set, err := attest.NewSet(k, o)
	if err != nil {
		t.Fatal(err)
	}
	e.params.Attestors = set
	e.srv = e.withParams(nil)
	runner, _, _, _ := e.newAgent("runner", func(p *identity.CreateAgentParams) {
		p.AttestationRules = []store.AttestationRule{
			{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:sa:runner"}},
			{Attestor: "github", Matchers: []string{"repository=org/*", "ref=refs/heads/main"}},
		}
	})
	return &attestEnv{env: e, cluster: cluster, gh: gh, runner: runner}
}

func (e *attestEnv) podClaims(podUID string) map[string]any {
	now := e.clk.Now()
	return map[string]any{
		"iss": e.cluster.URL, "sub": "system:serviceaccount:payments:runner", "aud": []string{"agentid"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      "payments",
			"serviceaccount": map[string]any{"name": "runner", "uid": "sa-1"},
			"pod":            map[string]any{"name": "runner-" + podUID, "uid": podUID},
			"node":           map[string]any{"name": "node-a", "uid": "n-1"},
		},
	}
}

func (e *attestEnv) actionsClaims() map[string]any {
	now := e.clk.Now()
	return map[string]any{
		"iss": e.gh.URL, "aud": "https://agentid.example.com", "sub": "repo:org/app:ref:refs/heads/main",
		"repository": "org/app", "ref": "refs/heads/main", "run_id": "77", "workflow": "deploy",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

func bearerGrant(assertion, clientID string, kv ...string) *oauth.Request {
	f := form(append([]string{"grant_type", oauth.GrantJWTBearer, "assertion", assertion, "client_id", clientID}, kv...)...)
	return &oauth.Request{Form: f, Origin: audit.Origin{Source: audit.Source{IP: "192.0.2.9"}}}
}

func (e *attestEnv) introspect(raw string) oauth.IntrospectionResponse {
	e.t.Helper()
	resp, oe := e.srv.Introspect(e.ctx, &oauth.Request{Form: form("token", raw), Admin: &audit.Actor{Type: audit.ActorAdmin, ID: "adm_t"}})
	if oe != nil {
		e.t.Fatal(oe)
	}
	return resp
}

func TestJWTBearerKubernetes(t *testing.T) {
	e := newAttestEnv(t)
	resp, oe := e.srv.Token(e.ctx, bearerGrant(e.cluster.Mint("es1", e.podClaims("pod-1")), e.runner.ID, "scope", "tickets:read"))
	if oe != nil {
		t.Fatalf("Token: %v (%s)", oe, oe.Reason)
	}
	c := e.claims(resp.AccessToken)
	ins, _ := c["agent_instance"].(string)
	if !strings.HasPrefix(ins, "ins_") || c["sub"] != e.runner.SPIFFEID || c["client_id"] != e.runner.ID || c["scope"] != "tickets:read" {
		t.Fatalf("claims = %v", c)
	}
	if resp.ExpiresIn != 300 || resp.TokenType != oauth.TokenTypeBearer {
		t.Errorf("response = %+v", resp)
	}
	in, err := e.st.GetInstance(e.ctx, ins)
	if err != nil {
		t.Fatal(err)
	}
	if in.AgentID != e.runner.ID || in.Method != attest.MethodKubernetes || in.Attestor != "prod" || in.Key != "pod-1" ||
		in.SourceIP != "192.0.2.9" || in.Evidence["namespace"] != "payments" || in.Evidence["pod_uid"] != "pod-1" ||
		!in.ExpiresAt.Equal(e.clk.Now().Add(time.Hour)) {
		t.Errorf("instance = %+v", in)
	}
	evs := e.events(oauth.EventInstanceAttested)
	if len(evs) != 1 || evs[0]["outcome"] != "success" || evs[0]["family"] != "authentication" {
		t.Fatalf("attested events = %v", evs)
	}
	d := evs[0]["details"].(map[string]any)
	if d["method"] != "kubernetes" || d["attestor"] != "prod" || d["issuer"] != e.cluster.URL ||
		d["rule"] != "prod: k8s:ns:payments, k8s:sa:runner" || d["instance_created"] != true ||
		evs[0]["instance"].(map[string]any)["id"] != ins {
		t.Errorf("attested event = %v", evs[0])
	}
	issued := e.events("credential.issued")
	if len(issued) != 1 || issued[0]["instance"].(map[string]any)["id"] != ins ||
		issued[0]["details"].(map[string]any)["grant_type"] != oauth.GrantJWTBearer {
		t.Errorf("issued events = %v", issued)
	}
	if got := e.introspect(resp.AccessToken); !got.Active || got.AgentInstance != ins {
		t.Errorf("introspection = %+v", got)
	}

	// The same pod again, by agent name, later: the same instance,
	// refreshed.
	e.clk.Advance(time.Minute)
	resp2, oe := e.srv.Token(e.ctx, bearerGrant(e.cluster.Mint("rs1", e.podClaims("pod-1")), "runner"))
	if oe != nil {
		t.Fatalf("Token again: %v (%s)", oe, oe.Reason)
	}
	if got := e.claims(resp2.AccessToken)["agent_instance"]; got != ins {
		t.Errorf("second token instance = %v, want %s", got, ins)
	}
	in2, _ := e.st.GetInstance(e.ctx, ins)
	if !in2.LastSeenAt.Equal(e.clk.Now()) || !in2.FirstSeenAt.Equal(in.FirstSeenAt) || in2.Version != 2 {
		t.Errorf("refreshed instance = %+v", in2)
	}
	if d := e.events(oauth.EventInstanceAttested)[1]["details"].(map[string]any); d["instance_created"] != false {
		t.Errorf("refresh event details = %v", d)
	}
	// Another pod is another instance.
	resp3, oe := e.srv.Token(e.ctx, bearerGrant(e.cluster.Mint("es1", e.podClaims("pod-2")), e.runner.ID))
	if oe != nil {
		t.Fatal(oe)
	}
	if got := e.claims(resp3.AccessToken)["agent_instance"]; got == ins {
		t.Error("a second pod got the first pod's instance")
	}
	if strings.Contains(e.trail(), e.cluster.Mint("es1", e.podClaims("pod-1"))[:40]) {
		t.Error("the audit trail holds a raw token")
	}
}

func TestJWTBearerOIDC(t *testing.T) {
	e := newAttestEnv(t)
	c := e.actionsClaims()
	c["exp"] = e.clk.Now().Add(2 * time.Minute).Unix()
	resp, oe := e.srv.Token(e.ctx, bearerGrant(e.gh.Mint("rs1", c), "runner", "expires_in", "3600"))
	if oe != nil {
		t.Fatalf("Token: %v (%s)", oe, oe.Reason)
	}
	// The token does not outlive the evidence.
	if resp.ExpiresIn != 120 {
		t.Errorf("expires_in = %d, want 120 (the evidence's exp)", resp.ExpiresIn)
	}
	ins := e.claims(resp.AccessToken)["agent_instance"].(string)
	in, err := e.st.GetInstance(e.ctx, ins)
	if err != nil || in.Method != attest.MethodOIDC || in.Key != "repo:org/app:ref:refs/heads/main|77" || in.Evidence["repository"] != "org/app" {
		t.Errorf("instance = %+v, %v", in, err)
	}
}

func TestJWTBearerRevokedInstance(t *testing.T) {
	e := newAttestEnv(t)
	raw := e.cluster.Mint("es1", e.podClaims("pod-1"))
	resp, oe := e.srv.Token(e.ctx, bearerGrant(raw, e.runner.ID))
	if oe != nil {
		t.Fatal(oe)
	}
	ins := e.claims(resp.AccessToken)["agent_instance"].(string)
	if err := e.st.Update(e.ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.UpdateInstance(ctx, ins, func(in store.Instance) (store.Instance, error) {
			in.RevokedAt, in.RevokedBy = e.clk.Now(), "adm_t"
			return in, nil
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := e.introspect(resp.AccessToken); got.Active {
		t.Error("a token of a revoked instance is active")
	}
	_, oe = e.srv.Token(e.ctx, bearerGrant(raw, e.runner.ID))
	if oe == nil || oe.Code != oauth.CodeInvalidGrant || !strings.Contains(oe.Reason, "revoked") {
		t.Fatalf("renewal of a revoked instance = %v", oe)
	}
	// Another pod of the same agent still attests.
	if _, oe := e.srv.Token(e.ctx, bearerGrant(e.cluster.Mint("es1", e.podClaims("pod-9")), e.runner.ID)); oe != nil {
		t.Errorf("another pod: %v", oe)
	}
}

func TestJWTBearerRefusals(t *testing.T) {
	e := newAttestEnv(t)
	other, _, _, _ := e.newAgent("other", func(p *identity.CreateAgentParams) {
		p.AttestationRules = []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:billing"}}}
	})
	foreign := idptest.New(t)
	with := func(mut func(map[string]any)) map[string]any {
		c := e.podClaims("pod-1")
		mut(c)
		return c
	}
	stray, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	none := func(c map[string]any) string {
		b, _ := json.Marshal(c)
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
	}
	for _, tc := range []struct {
		name   string
		req    *oauth.Request
		code   string
		audit  bool
		reason string
	}{
		{"wrong audience", bearerGrant(e.cluster.Mint("es1", with(func(c map[string]any) { c["aud"] = "vault" })), e.runner.ID), oauth.CodeInvalidGrant, true, "aud"},
		{"default audience", bearerGrant(e.cluster.Mint("es1", with(func(c map[string]any) {
			c["aud"] = []string{"agentid", "https://kubernetes.default.svc"}
		})), e.runner.ID), oauth.CodeInvalidGrant, true, "default audience"},
		{"expired", bearerGrant(e.cluster.Mint("es1", with(func(c map[string]any) { c["exp"] = e.clk.Now().Add(-time.Hour).Unix() })), e.runner.ID), oauth.CodeInvalidGrant, true, "expired"},
		{"foreign issuer", bearerGrant(foreign.Mint("es1", with(func(c map[string]any) { c["iss"] = foreign.URL })), e.runner.ID), oauth.CodeInvalidGrant, true, "no attestor"},
		{"forged as the cluster", bearerGrant(foreign.Mint("es1", e.podClaims("pod-1")), e.runner.ID), oauth.CodeInvalidGrant, true, "signature"},
		{"unknown kid", bearerGrant(idptest.Sign(t, jose.ES256, stray, "nope", e.podClaims("pod-1")), e.runner.ID), oauth.CodeInvalidGrant, true, "kid"},
		{"alg none", bearerGrant(none(e.podClaims("pod-1")), e.runner.ID), oauth.CodeInvalidGrant, true, "no attestor"},
		{"HS256", bearerGrant(idptest.Sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "es1", e.podClaims("pod-1")), e.runner.ID), oauth.CodeInvalidGrant, true, "algorithm"},
		{"matcher mismatch", bearerGrant(e.cluster.Mint("es1", e.podClaims("pod-1")), other.ID), oauth.CodeInvalidGrant, true, "rule 0: k8s:ns:billing does not hold"},
		{"branch mismatch", bearerGrant(e.gh.Mint("rs1", func() map[string]any {
			c := e.actionsClaims()
			c["ref"] = "refs/heads/dev"
			return c
		}()), e.runner.ID), oauth.CodeInvalidGrant, true, "ref=refs/heads/main does not hold"},
		{"no rule for attestor", bearerGrant(e.gh.Mint("rs1", e.actionsClaims()), "bot"), oauth.CodeInvalidGrant, true, "no attestation rule for attestor github"},
		{"unknown agent", bearerGrant(e.cluster.Mint("es1", e.podClaims("pod-1")), "nobody"), oauth.CodeInvalidGrant, true, "unknown agent"},
		{"no assertion", bearerGrant("", e.runner.ID), oauth.CodeInvalidRequest, false, ""},
		{"no client_id", bearerGrant(e.cluster.Mint("es1", e.podClaims("pod-1")), ""), oauth.CodeInvalidRequest, false, ""},
		{"with client auth", bearerGrant(e.cluster.Mint("es1", e.podClaims("pod-1")), e.runner.ID, "client_secret", "x"), oauth.CodeInvalidRequest, false, ""},
		{"bad scope", bearerGrant(e.cluster.Mint("es1", e.podClaims("pod-1")), e.runner.ID, "scope", "admin"), oauth.CodeInvalidScope, false, ""},
	} {
		before := len(e.events(oauth.EventInstanceAttested))
		_, oe := e.srv.Token(e.ctx, tc.req)
		if oe == nil || oe.Code != tc.code || oe.Status >= 500 {
			t.Errorf("%s: Token = %v, want %s", tc.name, oe, tc.code)
			continue
		}
		evs := e.events(oauth.EventInstanceAttested)
		if !tc.audit {
			continue
		}
		if len(evs) != before+1 || evs[len(evs)-1]["outcome"] != "failure" {
			t.Errorf("%s: want one failed %s event, got %v", tc.name, oauth.EventInstanceAttested, evs[before:])
			continue
		}
		if r, _ := evs[len(evs)-1]["reason"].(string); !strings.Contains(r, tc.reason) {
			t.Errorf("%s: audit reason %q does not contain %q", tc.name, r, tc.reason)
		}
	}
	if n, _, _ := e.st.ListInstances(e.ctx, store.InstanceFilter{}, store.Page{}); len(n) != 0 {
		t.Errorf("refused attestations created instances: %+v", n)
	}
}

func TestJWTBearerUnavailableAndUnsupported(t *testing.T) {
	e := newAttestEnv(t)
	raw := e.cluster.Mint("es1", e.podClaims("pod-1"))
	e.cluster.SetDown(true)
	_, oe := e.srv.Token(e.ctx, bearerGrant(raw, e.runner.ID))
	if oe == nil || oe.Code != oauth.CodeTemporarilyUnavailable || oe.Status != 503 {
		t.Errorf("keys unavailable: %v, want temporarily_unavailable 503", oe)
	}
	if evs := e.events(oauth.EventInstanceAttested); len(evs) != 1 || evs[0]["outcome"] != "failure" {
		t.Errorf("events = %v", evs)
	}
	plain := e.withParams(func(p *oauth.Params) { p.Attestors = nil })
	if _, oe := plain.Token(e.ctx, bearerGrant(raw, e.runner.ID)); oe == nil || oe.Code != oauth.CodeUnsupportedGrantType {
		t.Errorf("no attestors: %v, want unsupported_grant_type", oe)
	}
}

func TestJWTBearerAuditFailClosed(t *testing.T) {
	e := newAttestEnv(t)
	srv := e.withParams(func(p *oauth.Params) { p.Store = failingAudit{e.st} })
	resp, oe := srv.Token(e.ctx, bearerGrant(e.cluster.Mint("es1", e.podClaims("pod-1")), e.runner.ID))
	if oe == nil || oe.Code != oauth.CodeServerError || resp.AccessToken != "" {
		t.Errorf("Token with a failing trail = %+v, %v; want server_error and no token", resp, oe)
	}
	if n, _, _ := e.st.ListInstances(e.ctx, store.InstanceFilter{}, store.Page{}); len(n) != 0 {
		t.Errorf("an unrecorded attestation created an instance: %+v", n)
	}
}

// TestJWTBearerConcurrentFirstAttestation attests one new pod from many
// goroutines: every request gets a token, all on one instance.
func TestJWTBearerConcurrentFirstAttestation(t *testing.T) {
	e := newAttestEnv(t)
	raw := e.cluster.Mint("es1", e.podClaims("pod-1"))
	const n = 8
	got := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, oe := e.srv.Token(e.ctx, bearerGrant(raw, e.runner.ID))
			if oe != nil {
				t.Errorf("Token: %v (%s)", oe, oe.Reason)
				return
			}
			got <- e.claims(resp.AccessToken)["agent_instance"].(string)
		})
	}
	wg.Wait()
	close(got)
	seen := map[string]bool{}
	for id := range got {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Errorf("instances = %v, want one", seen)
	}
	if is, _, _ := e.st.ListInstances(e.ctx, store.InstanceFilter{}, store.Page{}); len(is) != 1 {
		t.Errorf("stored instances = %d, want 1", len(is))
	}
}
