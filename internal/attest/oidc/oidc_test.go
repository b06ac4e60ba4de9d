package oidc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/attest/oidc"
	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/store"
)

func now() time.Time { return time.Unix(1_790_000_000, 0).UTC() }

// actionsClaims are the claims of a GitHub Actions OIDC token.
func actionsClaims(iss string) map[string]any {
	return map[string]any{
		"iss": iss, "aud": "https://agentid.example.com", "jti": "j-1",
		"sub":        "repo:org/app:ref:refs/heads/main",
		"repository": "org/app", "repository_owner": "org", "ref": "refs/heads/main",
		"workflow": "deploy", "event_name": "push", "run_id": 9876543210123, "run_attempt": "1",
		"repository_id": 42, "actor": "octocat", "runner_environment": "github-hosted",
		"iat": now().Unix(), "nbf": now().Unix(), "exp": now().Add(5 * time.Minute).Unix(),
		"nested": map[string]any{"x": 1},
	}
}

func TestAttestActions(t *testing.T) {
	gh := idptest.New(t)
	a, err := oidc.New(oidc.Config{Name: "github", Issuer: gh.URL, Audience: "https://agentid.example.com",
		TLSCAFile: gh.CAFile, InstanceClaims: []string{"sub", "run_id", "run_attempt"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), gh.Mint("rs1", actionsClaims(gh.URL)))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if ev.Key != "repo:org/app:ref:refs/heads/main|9876543210123|1" || ev.Method != attest.MethodOIDC || ev.Attestor != "github" ||
		!ev.Expiry.Equal(now().Add(5*time.Minute)) || ev.Subject != "repo:org/app:ref:refs/heads/main" {
		t.Errorf("Attest = %+v", ev)
	}
	if ev.Facts["repository"] != "org/app" || ev.Facts["repository_id"] != "42" || ev.Facts["iss"] != gh.URL {
		t.Errorf("Facts = %v", ev.Facts)
	}
	if _, ok := ev.Facts["nested"]; ok {
		t.Error("an object claim became a fact")
	}
	for _, k := range []string{"iss", "aud", "exp", "iat", "nbf", "jti", "nested"} {
		if _, ok := ev.Summary[k]; ok {
			t.Errorf("Summary holds %s", k)
		}
	}
	if ev.Summary["workflow"] != "deploy" {
		t.Errorf("Summary = %v", ev.Summary)
	}
	rules := []store.AttestationRule{{Attestor: "github", Matchers: []string{"repository=org/*", "ref=refs/heads/main", "event_name=push"}}}
	if m := attest.Match(rules, ev); m.Rule != 0 {
		t.Errorf("Match = %+v, want rule 0", m)
	}
	rules[0].Matchers[0] = "repository=other/*"
	if m := attest.Match(rules, ev); m.Rule != -1 || m.Why != "rule 0: repository=other/* does not hold" {
		t.Errorf("Match(mismatch) = %+v", m)
	}
}

func TestAttestRefusals(t *testing.T) {
	gh := idptest.New(t)
	a, err := oidc.New(oidc.Config{Name: "github", Issuer: gh.URL, Audience: "https://agentid.example.com",
		TLSCAFile: gh.CAFile, InstanceClaims: []string{"sub", "run_id"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	with := func(mut func(map[string]any)) map[string]any {
		c := actionsClaims(gh.URL)
		mut(c)
		return c
	}
	for name, tok := range map[string]string{
		"wrong audience":       gh.Mint("rs1", with(func(c map[string]any) { c["aud"] = "sts.amazonaws.com" })),
		"expired":              gh.Mint("rs1", with(func(c map[string]any) { c["exp"] = now().Add(-time.Hour).Unix() })),
		"no instance claim":    gh.Mint("rs1", with(func(c map[string]any) { delete(c, "run_id") })),
		"no sub":               gh.Mint("rs1", with(func(c map[string]any) { delete(c, "sub") })),
		"HS256":                idptest.Sign(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "rs1", actionsClaims(gh.URL)),
		"issuer mismatch body": gh.Mint("rs1", with(func(c map[string]any) { c["iss"] = gh.URL + "/" })),
	} {
		_, err := a.Attest(context.Background(), tok)
		var ae *attest.Error
		if !errors.As(err, &ae) || ae.Reason == "" || (!errors.Is(err, attest.ErrInvalid) && !errors.Is(err, attest.ErrUntrusted)) {
			t.Errorf("%s: Attest = %v, want refusal", name, err)
		}
	}
	for _, c := range []oidc.Config{
		{Name: "github", Issuer: gh.URL},
		{Name: "github", Issuer: "ftp://x", Audience: "a"},
		{Name: "github", Issuer: gh.URL, Audience: "a", InstanceClaims: []string{"bad claim"}},
		{Name: "github", Issuer: gh.URL, Audience: "a", InstanceClaims: []string{"aws:org_id"}},
	} {
		if _, err := oidc.New(c, now); err == nil {
			t.Errorf("New(%+v) = nil error", c)
		}
	}
}
