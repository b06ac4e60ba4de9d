package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// startAttestServer is startServer with the test cluster as a Kubernetes
// attestor "prod".
func startAttestServer(t *testing.T, cluster *idptest.IdP) *liveServer {
	t.Helper()
	return startLive(t, func(cfg *server.Config) {
		cfg.Attestors = []server.AttestorConfig{{Name: "prod", Kind: "kubernetes", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile}}
	}, []string{"introspect"})
}

// TestAttestationOverHTTP runs docs/attestation.md's Kubernetes example
// against a real server: an agent with a rule, a pod's projected token
// exchanged with a plain RFC 7523 form post, the instance listed,
// revoked, and its token inactive at introspection.
func TestAttestationOverHTTP(t *testing.T) {
	cluster := idptest.New(t)
	ls := startAttestServer(t, cluster)
	ctx := t.Context()
	owner := ls.agent.Owners[0]
	runner, err := ls.admin.CreateAgent(ctx, admin.CreateAgentRequest{
		Name: "runner", Purpose: "payments runner", Owners: []string{owner}, Audiences: []string{apiAudience},
		AttestationRules: []admin.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments", "k8s:sa:runner"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(runner.AttestationRules) != 1 || runner.AttestationRules[0].Matchers[1] != "k8s:sa:runner" {
		t.Errorf("agent rules = %+v", runner.AttestationRules)
	}
	if _, err := ls.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "bad", Purpose: "p", Owners: []string{owner},
		AttestationRules: []admin.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:zone:x"}}}}); !admin.IsProblem(err, admin.ProblemValidation) {
		t.Errorf("bad rule: %v, want a validation problem", err)
	}

	now := time.Now()
	podToken := cluster.Mint("es1", map[string]any{
		"iss": cluster.URL, "sub": "system:serviceaccount:payments:runner", "aud": []string{"agentid"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      "payments",
			"serviceaccount": map[string]any{"name": "runner", "uid": "sa-1"},
			"pod":            map[string]any{"name": "runner-7f9", "uid": "pod-uid-1"},
		},
	})
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {podToken}, "client_id": {"runner"}}
	status, hdr, body := ls.post("/oauth2/token", form, nil)
	if status != http.StatusOK || body["token_type"] != "Bearer" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("jwt-bearer: %d %v", status, body)
	}
	tok, _ := body["access_token"].(string)

	// Discovery advertises the grant (RFC 8414 §2).
	_, _, meta := ls.do(mustGet(t, ls.url+"/.well-known/oauth-authorization-server"))
	if gts, _ := meta["grant_types_supported"].([]any); !slices.Contains(gts, any("urn:ietf:params:oauth:grant-type:jwt-bearer")) {
		t.Errorf("grant_types_supported = %v", meta["grant_types_supported"])
	}

	is, err := ls.admin.ListInstances(ctx, "runner", admin.ListInstancesParams{Live: true})
	if err != nil || len(is.Items) != 1 {
		t.Fatalf("ListInstances = %+v, %v", is, err)
	}
	in := is.Items[0]
	if !strings.HasPrefix(in.ID, "ins_") || in.Method != "kubernetes" || in.Attestor != "prod" || in.Evidence["pod_name"] != "runner-7f9" ||
		!in.Live || in.SourceIP == "" {
		t.Errorf("instance = %+v", in)
	}
	introspect := func() map[string]any {
		basic := http.Header{"Authorization": {"Basic " + basicAuth(ls.agent.ClientID, ls.secret)}}
		_, _, b := ls.post("/oauth2/introspect", url.Values{"token": {tok}}, basic)
		return b
	}
	if b := introspect(); b["active"] != true || b["agent_instance"] != in.ID {
		t.Errorf("introspection = %v", b)
	}

	rev, err := ls.admin.RevokeInstance(ctx, in.ID)
	if err != nil || rev.RevokedAt == nil || rev.Live {
		t.Fatalf("RevokeInstance = %+v, %v", rev, err)
	}
	if b := introspect(); b["active"] != false {
		t.Errorf("introspection after revocation = %v", b)
	}
	status, _, body = ls.post("/oauth2/token", form, nil)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("renewal of a revoked instance: %d %v", status, body)
	}
	if _, err := ls.admin.GetInstance(ctx, "ins_nope"); !admin.IsProblem(err, admin.ProblemValidation) {
		t.Errorf("GetInstance(malformed): %v", err)
	}
	// Bad evidence: the standard error, never a 5xx.
	form.Set("assertion", podToken[:len(podToken)-4]+"AAAA")
	if status, _, body := ls.post("/oauth2/token", form, nil); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("forged evidence: %d %v", status, body)
	}
}
