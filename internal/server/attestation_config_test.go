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
		"no audience":      {k8s(""), "audience is required"},
		"default audience": {k8s("    audience: https://kubernetes.default.svc\n"), "API-server default audience"},
		"issuer audience":  {k8s("    audience: https://k8s.example\n"), "API-server default audience"},
		"bad name":         {"attestors:\n  - name: Prod\n    kind: oidc\n    issuer: https://i.example\n    audience: a\n", "DNS label"},
		"unknown kind":     {"attestors:\n  - name: p\n    kind: tpm\n    issuer: https://i.example\n    audience: a\n", `kind "tpm" is not one of`},
		"join_token kind":  {"attestors:\n  - name: p\n    kind: join_token\n    issuer: https://i.example\n    audience: a\n", `kind "join_token" is not one of`},
		"x509 without tls": {"attestors:\n  - name: p\n    kind: x509\n    trust_anchor_files: [./ca.pem]\n", "needs tls"},
		"x509 with issuer": {"tls:\n  cert_file: c\n  key_file: k\nattestors:\n  - name: p\n    kind: x509\n    issuer: https://i.example\n    trust_anchor_files: [./ca.pem]\n",
			"trust_anchor_files and crl_files only"},
		"x509 without anchors": {"tls:\n  cert_file: c\n  key_file: k\nattestors:\n  - name: p\n    kind: x509\n", "trust_anchor_files is required"},
		"x509 missing anchors": {"tls:\n  cert_file: c\n  key_file: k\nattestors:\n  - name: p\n    kind: x509\n    trust_anchor_files: [./nope.pem]\n",
			"/etc/agentid/nope.pem"},
		"spiffe without federation": {"attestors:\n  - name: p\n    kind: spiffe\n    trust_domain: partner.example\n", "not in the federation section"},
		"spiffe with audience": {"federation:\n  - trust_domain: partner.example\n    bundle_endpoint_url: https://partner.example/bundle\nattestors:\n  - name: p\n    kind: spiffe\n    trust_domain: partner.example\n    audience: a\n",
			"trust_domain only"},
		"trust_domain on oidc": {"attestors:\n  - name: p\n    kind: oidc\n    issuer: https://i.example\n    audience: a\n    trust_domain: partner.example\n",
			"trust_domain is for spiffe"},
		"anchors on oidc": {"attestors:\n  - name: p\n    kind: oidc\n    issuer: https://i.example\n    audience: a\n    crl_files: [x.crl]\n",
			"are for x509 attestors"},
		"token_review on oidc": {"attestors:\n  - name: p\n    kind: oidc\n    issuer: https://i.example\n    audience: a\n    token_review: {api_server: https://api.example}\n",
			"token_review is for kubernetes"},
		"token_review over http": {"attestors:\n  - name: p\n    kind: kubernetes\n    issuer: https://i.example\n    audience: a\n    token_review: {api_server: http://api.example}\n",
			"want https"},
		"token_review negative cache": {"attestors:\n  - name: p\n    kind: kubernetes\n    issuer: https://i.example\n    audience: a\n    token_review: {api_server: https://api.example, cache_ttl: -1s}\n",
			"cache ttl"},
		"node rule of an oidc attestor": {"attestors:\n  - name: p\n    kind: oidc\n    issuer: https://i.example\n    audience: a\nnode_api:\n  attestation:\n    - {attestor: p, matchers: [sub=x]}\n",
			"node_api.attestation"},
		"node rule of no attestor": {"node_api:\n  attestation:\n    - {attestor: p, matchers: [sub=x]}\n", "node_api.attestation"},
		"http issuer":              {"attestors:\n  - name: p\n    kind: oidc\n    issuer: http://i.example\n    audience: a\n", "attestors[0]"},
		"missing jwks file":        {k8s("    audience: agentid\n    jwks_file: ./nope.json\n"), "jwks_file"},
		"oidc option on k8s":       {k8s("    audience: agentid\n    instance_claims: [sub]\n"), "instance_claims is for oidc"},
		"twice": {k8s("    audience: agentid\n  - name: prod\n    kind: oidc\n    issuer: https://o.example\n    audience: a\n"),
			`"prod" is configured twice`},
		"one issuer twice": {k8s("    audience: agentid\n  - name: other\n    kind: oidc\n    issuer: https://k8s.example\n    audience: a\n"),
			"trust one issuer"},
		"unknown key":          {k8s("    audience: agentid\n    tpm_quote: true\n"), "tpm_quote"},
		"aws without audience": {"attestors:\n  - name: p\n    kind: aws\n    issuer: https://a.tokens.sts.global.api.aws\n", "audience is required"},
		"aws bad account": {"attestors:\n  - name: p\n    kind: aws\n    issuer: https://a.tokens.sts.global.api.aws\n    audience: a\n    accounts: [\"1234\"]\n",
			"12-digit AWS account id"},
		"aws bad instance claim": {"attestors:\n  - name: p\n    kind: aws\n    issuer: https://a.tokens.sts.global.api.aws\n    audience: a\n    instance_claims: [\"aws:Bad\"]\n",
			"instance claim"},
		"aws default_audiences": {"attestors:\n  - name: p\n    kind: aws\n    issuer: https://a.tokens.sts.global.api.aws\n    audience: a\n    default_audiences: [x]\n",
			"default_audiences is for kubernetes"},
		"accounts on oidc": {"attestors:\n  - name: p\n    kind: oidc\n    issuer: https://i.example\n    audience: a\n    accounts: [\"123456789012\"]\n",
			"accounts is for aws"},
		"aws node rule": {"attestors:\n  - name: p\n    kind: aws\n    issuer: https://a.tokens.sts.global.api.aws\n    audience: a\nnode_api:\n  attestation:\n    - {attestor: p, matchers: [sub=x]}\n",
			"node_api.attestation"},
	} {
		_, err := ParseConfig([]byte(tc.yaml), "/etc/agentid")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseConfig error %v, want one containing %q", name, err, tc.want)
		}
	}
}

// TestSampleConfigAttestors: the commented attestors example of the
// sample config (kubernetes, oidc, aws) is valid once uncommented
// (jwks_file aside).
func TestSampleConfigAttestors(t *testing.T) {
	example := sampleExample(t, "attestors")
	c, err := ParseConfig([]byte(example), "/etc/agentid")
	if err != nil || len(c.Attestors) != 3 || c.Attestors[0].Kind != "kubernetes" || c.Attestors[1].Name != "github" || c.Attestors[2].Kind != "aws" {
		t.Fatalf("uncommented attestors example: %+v, %v\n%s", c.Attestors, err, example)
	}
	set, err := c.attestorSet(time.Now)
	if err != nil || set.Len() != 3 {
		t.Errorf("attestor set = %v, %v", set.Names(), err)
	}
}

func TestParseConfigSPIFFEAttestor(t *testing.T) {
	c, err := ParseConfig([]byte("federation:\n  - trust_domain: partner.example\n    bundle_endpoint_url: https://partner.example/bundle\n"+
		"attestors:\n  - name: partner\n    kind: spiffe\n    trust_domain: partner.example\n"), "/etc/agentid")
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.attestorSet(time.Now)
	if err != nil || !set.HasSVIDs() || set.HasPKI() {
		t.Fatalf("attestor set = %v, %v", set.Names(), err)
	}
}
