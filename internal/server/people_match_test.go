package server_test

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
)

// TestPeopleMatchedByIssuerAndVerifiedEmail: with two trusted identity
// providers, a person acts on an agent's approval as its owner only by the
// owner's subject under the owner's issuer, or by a verified email; a
// designated approver written <issuer>#<subject> is that issuer's person
// only (ADR 0027). Everyone else gets 403, and each person's
// authentication records whether their email was verified.
func TestPeopleMatchedByIssuerAndVerifiedEmail(t *testing.T) {
	idpA, idpB := idptest.New(t), idptest.New(t)
	ls := startLive(t, func(cfg *server.Config) {
		cfg.Delegation.Issuers = []server.TrustedIssuerConfig{
			{Issuer: idpA.URL, Audience: idptest.Audience, TLSCAFile: idpA.CAFile},
			{Issuer: idpB.URL, Audience: idptest.Audience, TLSCAFile: idpB.CAFile},
		}
		cfg.Approvals.Approvers = []string{idpB.URL + "#carol"}
	}, nil)
	ctx := t.Context()
	alice, err := ls.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Subject: "alice",
		SubjectIssuer: idpA.URL, Email: "alice@corp.example"})
	if err != nil || alice.SubjectIssuer != idpA.URL {
		t.Fatalf("CreateOwner = %+v, %v", alice, err)
	}
	if _, err := ls.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "carer", Owners: []string{alice.ID}, Purpose: "tests"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.admin.ApplyPolicy(ctx, admin.ApplyPolicyRequest{Text: authzenPolicies}); err != nil {
		t.Fatal(err)
	}
	approval := func(ticket string) string {
		t.Helper()
		status, _, body := ls.authzen("/access/v1/evaluation", ls.token, `{"subject":{"type":"agent","id":"carer"},`+
			`"action":{"name":"delete"},"resource":{"type":"ticket","id":"`+ticket+`"}}`, nil)
		c, _ := body["context"].(map[string]any)
		id, _ := c["approval_id"].(string)
		if status != http.StatusOK || id == "" {
			t.Fatalf("conditional evaluation: %d %v", status, body)
		}
		return id
	}
	person := func(idp *idptest.IdP, sub string, claims map[string]any) *admin.Client {
		t.Helper()
		c := idp.Claims(sub, time.Now())
		for k, v := range claims {
			c[k] = v
		}
		cl, err := admin.New(ls.url, idp.Mint("es1", c))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	first := approval("1")
	var pe *admin.Problem
	for name, cl := range map[string]*admin.Client{
		"alice's subject at the other IdP":              person(idpB, "alice", map[string]any{"email": "nobody@corp.example"}),
		"alice's email, unverified":                     person(idpB, "mallory", map[string]any{"email": "alice@corp.example", "email_verified": false}),
		"alice's email, email_verified absent":          person(idpB, "mallory", map[string]any{"email": "alice@corp.example", "email_verified": nil}),
		"the designated approver's subject at A":        person(idpA, "carol", nil),
		"a stranger with a verified email of their own": person(idpA, "mallory", nil),
	} {
		if _, err := cl.ApproveAsPerson(ctx, first, admin.DecideApprovalRequest{}); !errors.As(err, &pe) || pe.Status != http.StatusForbidden {
			t.Errorf("ApproveAsPerson by %s = %v; want 403", name, err)
		}
	}
	a, err := person(idpA, "alice", map[string]any{"email": "other@corp.example"}).ApproveAsPerson(ctx, first, admin.DecideApprovalRequest{})
	if err != nil || a.Decider != "alice" {
		t.Errorf("ApproveAsPerson by alice at her IdP = %+v, %v", a, err)
	}
	second := approval("2")
	if _, err := person(idpB, "carol", nil).DenyAsPerson(ctx, second, admin.DecideApprovalRequest{Reason: "no"}); err != nil {
		t.Errorf("DenyAsPerson by the designated approver at B: %v", err)
	}
	third := approval("3")
	if _, err := person(idpB, "bob", map[string]any{"email": "Alice@Corp.example"}).ApproveAsPerson(ctx, third, admin.DecideApprovalRequest{}); err != nil {
		t.Errorf("ApproveAsPerson by alice's verified email at the other IdP: %v", err)
	}

	var verified, unverified int
	for _, d := range ls.eventsOfType("person.authenticated") {
		switch d["email_verified"] {
		case true:
			verified++
		case false:
			unverified++
		}
	}
	if verified != 6 || unverified != 2 {
		t.Errorf("person.authenticated: %d with email_verified true, %d false; want 6 and 2", verified, unverified)
	}
	for _, d := range ls.eventsOfType("approval.approved") {
		if d["decider_issuer"] == nil {
			t.Errorf("approval.approved without the decider's issuer: %v", d)
		}
	}
}

// TestStartWarnsOfUntiedOwners: with two trusted issuers, a server that
// starts on a store with an active person whose subject is tied to no
// issuer says so in its log, with how many (ADR 0027); owners tied to an
// issuer, or with an email only, are not counted.
func TestStartWarnsOfUntiedOwners(t *testing.T) {
	ln, cfg := devListener(t, func(cfg *server.Config) {
		cfg.Delegation.Issuers = []server.TrustedIssuerConfig{
			{Issuer: "https://a.example.org", Audience: "agentid", JWKSURL: "https://a.example.org/jwks"},
			{Issuer: "https://b.example.org", Audience: "agentid", JWKSURL: "https://b.example.org/jwks"},
		}
	})
	cp := serve(t, ln, cfg, server.Params{}, nil)
	for _, o := range []admin.CreateOwnerRequest{
		{Subject: "00u-untied"},
		{Subject: "00u-tied", SubjectIssuer: "https://a.example.org"},
		{Email: "email-only@example.org"},
	} {
		if _, err := cp.admin.CreateOwner(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	if err := cp.stop(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	srv, err := server.New(t.Context(), cfg, server.Params{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "tied to no identity provider") || !strings.Contains(log.String(), "owners=1 trusted_issuers=2") {
		t.Errorf("the start's log does not warn of one untied owner:\n%s", log.String())
	}
}
