package server

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseConfigAttestorsRejects(t *testing.T) {
	k8s := func(extra string) string {
		return "attestors:\n  - name: prod\n    kind: kubernetes\n    issuer: https://k8s.example\n" + extra
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"no audience":        {k8s(""), "audience is required"},
		"default audience":   {k8s("    audience: https://kubernetes.default.svc\n"), "API-server default audience"},
		"issuer audience":    {k8s("    audience: https://k8s.example\n"), "API-server default audience"},
		"bad name":           {"attestors:\n  - name: Prod\n    kind: oidc\n    issuer: https://i.example\n    audience: a\n", "DNS label"},
		"unknown kind":       {"attestors:\n  - name: p\n    kind: tpm\n    issuer: https://i.example\n    audience: a\n", `kind "tpm" is not one of`},
		"reserved kind":      {"attestors:\n  - name: p\n    kind: x509\n    issuer: https://i.example\n    audience: a\n", "x509 is not supported yet"},
		"http issuer":        {"attestors:\n  - name: p\n    kind: oidc\n    issuer: http://i.example\n    audience: a\n", "attestors[0]"},
		"missing jwks file":  {k8s("    audience: agentid\n    jwks_file: ./nope.json\n"), "jwks_file"},
		"oidc option on k8s": {k8s("    audience: agentid\n    instance_claims: [sub]\n"), "instance_claims is for oidc"},
		"twice": {k8s("    audience: agentid\n  - name: prod\n    kind: oidc\n    issuer: https://o.example\n    audience: a\n"),
			`"prod" is configured twice`},
		"one issuer twice": {k8s("    audience: agentid\n  - name: other\n    kind: oidc\n    issuer: https://k8s.example\n    audience: a\n"),
			"trust one issuer"},
		"unknown key": {k8s("    audience: agentid\n    token_review: true\n"), "token_review"},
	} {
		_, err := ParseConfig([]byte(tc.yaml), "/etc/agentid")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseConfig error %v, want one containing %q", name, err, tc.want)
		}
	}
}

// TestSampleConfigAttestors: the commented attestors example of the
// sample config is valid once uncommented (jwks_file aside).
func TestSampleConfigAttestors(t *testing.T) {
	i := strings.Index(SampleConfig, "# attestors:")
	if i < 0 {
		t.Fatal("the sample config has no attestors example")
	}
	var lines []string
	for l := range strings.SplitSeq(SampleConfig[i:], "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		lines = append(lines, strings.TrimPrefix(strings.TrimPrefix(l, "#"), " "))
	}
	c, err := ParseConfig([]byte(strings.Join(lines, "\n")), "/etc/agentid")
	if err != nil || len(c.Attestors) != 2 || c.Attestors[0].Kind != "kubernetes" || c.Attestors[1].Name != "github" {
		t.Fatalf("uncommented attestors example: %+v, %v\n%s", c.Attestors, err, strings.Join(lines, "\n"))
	}
	set, err := c.attestorSet(time.Now)
	if err != nil || set.Len() != 2 {
		t.Errorf("attestor set = %v, %v", set.Names(), err)
	}
}
