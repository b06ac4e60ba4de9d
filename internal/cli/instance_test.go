package cli

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// TestInstanceCommandsAgainstServer drives agent create --attest, agent
// instances, instance show and instance revoke against a real server.
func TestInstanceCommandsAgainstServer(t *testing.T) {
	cluster := idptest.New(t)
	srvURL, tok := realServer(t, func(cfg *server.Config) {
		cfg.Attestors = []server.AttestorConfig{{Name: "prod", Kind: "kubernetes", Issuer: cluster.URL, Audience: "agentid", TLSCAFile: cluster.CAFile}}
	})
	_, owner := newOwner(t, srvURL, tok, "o@example.org")
	run := func(args ...string) result {
		t.Helper()
		return runAs(t, srvURL, tok, args...)
	}
	r := run("agent", "create", "runner", "--owner", owner, "--purpose", "runs payments", "--audience", "https://api.example.org",
		"--attest", "prod k8s:ns:payments k8s:sa:runner")
	wantCode(t, r, 0)
	r = run("agent", "show", "runner")
	contains(t, "agent show", r.stdout, "Attestation:", "prod: k8s:ns:payments, k8s:sa:runner")
	r = run("agent", "create", "bad", "--owner", owner, "--purpose", "p", "--attest", "prod")
	if r.code == 0 || !strings.Contains(r.stderr, "ATTESTOR MATCHER") {
		t.Errorf("--attest without matchers: %+v", r)
	}

	now := time.Now()
	pod := cluster.Mint("es1", map[string]any{
		"iss": cluster.URL, "sub": "system:serviceaccount:payments:runner", "aud": "agentid",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": "payments",
			"serviceaccount": map[string]any{"name": "runner", "uid": "s"}, "pod": map[string]any{"name": "runner-1", "uid": "p-1"}},
	})
	resp, err := http.PostForm(srvURL+"/oauth2/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {pod}, "client_id": {"runner"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwt-bearer: %d", resp.StatusCode)
	}

	r = run("agent", "instances", "runner", "-o", "json")
	wantCode(t, r, 0)
	var l admin.List[admin.Instance]
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || len(l.Items) != 1 {
		t.Fatalf("agent instances -o json: %v\n%s", err, r.stdout)
	}
	is := l.Items
	r = run("agent", "instances", "runner")
	contains(t, "agent instances", r.stdout, "ID", "ATTESTOR", is[0].ID, "live", "kubernetes", "prod", "namespace=payments")
	r = run("instance", "show", is[0].ID)
	contains(t, "instance show", r.stdout, "Key:", "p-1", "pod_name=runner-1", "live")
	r = run("instance", "revoke", is[0].ID)
	wantCode(t, r, 0)
	contains(t, "instance revoke", r.stdout, "revoked at", "cannot renew")
	r = run("agent", "instances", "runner", "--live")
	if strings.Contains(r.stdout, is[0].ID) {
		t.Errorf("agent instances --live lists the revoked instance:\n%s", r.stdout)
	}
	r = run("instance", "show", "ins_nope")
	if r.code == 0 {
		t.Errorf("instance show of a malformed id succeeded: %+v", r)
	}
	r = run("agent", "update", "runner", "--clear-attest")
	wantCode(t, r, 0)
	contains(t, "agent update --clear-attest", r.stdout, "Attestation:")
}
