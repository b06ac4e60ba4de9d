package delegation_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/delegation/idptest"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

const ourIssuer = "https://agentid.example.org"

type env struct {
	t     *testing.T
	ctx   context.Context
	st    store.Store
	ids   *identity.Service
	svc   *delegation.Service
	idp   *idptest.IdP
	clk   *clock
	agent store.Agent // "booker": scopes travel:book/read, audience https://api.example.org
	other store.Agent // "helper"
}

func admin() audit.Origin {
	return audit.Origin{Actor: audit.Actor{Type: audit.ActorAdmin, ID: "adm_tester"}}
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	clk := newClock()
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := identity.New(identity.Params{Store: st, Recorder: rec, TrustDomain: "example.org", Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	idp := idptest.New(t)
	is := issuers(t, clk, idpConfig(idp))
	svc, err := delegation.New(delegation.Params{Store: st, Recorder: rec, Issuers: is, Issuer: ourIssuer,
		MaxChainDepth: 4, Clock: clk.Now, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: t.Context(), st: st, ids: ids, svc: svc, idp: idp, clk: clk}
	owner, err := ids.CreateOwner(e.ctx, admin(), identity.CreateOwnerParams{Kind: store.OwnerPerson, Email: "o@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name string
		into *store.Agent
	}{{"booker", &e.agent}, {"helper", &e.other}} {
		a, err := ids.CreateAgent(e.ctx, admin(), identity.CreateAgentParams{
			Name: p.name, Owners: []string{owner.ID}, Purpose: "tests", ActionClasses: []string{"read", "write"},
			Scopes: []string{"travel:book", "travel:read"}, Audiences: []string{"https://api.example.org"},
		})
		if err != nil {
			t.Fatal(err)
		}
		*p.into = a
	}
	return e
}

func (e *env) params(edit func(*delegation.CreateGrantParams)) delegation.CreateGrantParams {
	p := delegation.CreateGrantParams{
		SubjectIssuer: e.idp.URL, Subject: "alice", SubjectEmail: "alice@example.com",
		Agent: "booker", Scopes: []string{"travel:book"}, ActionClasses: []string{"write"},
		Audiences: []string{"https://api.example.org"}, ExpiresAt: e.clk.Now().Add(24 * time.Hour),
	}
	if edit != nil {
		edit(&p)
	}
	return p
}

func (e *env) events(typ string) []audit.Event {
	e.t.Helper()
	var out []audit.Event
	err := e.st.ScanAudit(e.ctx, store.AuditQuery{}, func(r store.AuditRecord) error {
		if r.Type != typ {
			return nil
		}
		var ev audit.Event
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return err
		}
		out = append(out, ev)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestCreateGrant(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := newEnv(t, st)
			g, err := e.svc.CreateGrant(e.ctx, admin(), e.params(nil))
			if err != nil {
				t.Fatalf("CreateGrant: %v", err)
			}
			if g.AgentID != e.agent.ID || g.MaxDepth != delegation.DefaultMaxDepth || g.CreatedBy != "adm_tester" ||
				g.CreatedByType != audit.ActorAdmin || g.Subject != "alice" || g.Version != 1 {
				t.Errorf("grant = %+v", g)
			}
			evs := e.events("grant.created")
			if len(evs) != 1 || evs[0].Family != audit.Issuance || evs[0].Delegation == nil || evs[0].Delegation.GrantID != g.ID ||
				evs[0].Agent.ID != e.agent.ID || evs[0].Task.Scope != "travel:book" {
				t.Errorf("grant.created events = %+v", evs)
			}
			// An agent lets another act for it: agentid's issuer and a SPIFFE ID.
			ag, err := e.svc.CreateGrant(e.ctx, admin(), e.params(func(p *delegation.CreateGrantParams) {
				p.SubjectIssuer, p.Subject, p.SubjectEmail, p.Agent = ourIssuer, e.agent.SPIFFEID, "", e.other.ID
				p.MaxDepth, p.AllowSubdelegation = 4, true
			}))
			if err != nil || ag.AgentID != e.other.ID || ag.MaxDepth != 4 {
				t.Errorf("agent-subject grant = %+v, %v", ag, err)
			}
			got, err := e.svc.GetGrant(e.ctx, g.ID)
			if err != nil || got.ID != g.ID {
				t.Errorf("GetGrant = %+v, %v", got, err)
			}
			list, _, err := e.svc.ListGrants(e.ctx, delegation.ListGrantsParams{Agent: "booker", Active: true})
			if err != nil || len(list) != 1 || list[0].ID != g.ID {
				t.Errorf("ListGrants(booker) = %v, %v", list, err)
			}
		})
	}
}

func TestCreateGrantRejects(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	e := newEnv(t, st)
	for name, tc := range map[string]struct {
		edit  func(*delegation.CreateGrantParams)
		field string
		kind  error
	}{
		"untrusted issuer":     {func(p *delegation.CreateGrantParams) { p.SubjectIssuer = "https://evil.example" }, "subject_issuer", delegation.ErrInvalid},
		"no issuer":            {func(p *delegation.CreateGrantParams) { p.SubjectIssuer = "" }, "subject_issuer", delegation.ErrInvalid},
		"no subject":           {func(p *delegation.CreateGrantParams) { p.Subject = "" }, "subject", delegation.ErrInvalid},
		"bad email":            {func(p *delegation.CreateGrantParams) { p.SubjectEmail = "nope" }, "subject_email", delegation.ErrInvalid},
		"no agent":             {func(p *delegation.CreateGrantParams) { p.Agent = "" }, "agent", delegation.ErrInvalid},
		"unknown agent":        {func(p *delegation.CreateGrantParams) { p.Agent = "ghost" }, "", delegation.ErrNotFound},
		"no expiry":            {func(p *delegation.CreateGrantParams) { p.ExpiresAt = time.Time{} }, "expires_at", delegation.ErrInvalid},
		"past expiry":          {func(p *delegation.CreateGrantParams) { p.ExpiresAt = e.clk.Now().Add(-time.Second) }, "expires_at", delegation.ErrInvalid},
		"far expiry":           {func(p *delegation.CreateGrantParams) { p.ExpiresAt = e.clk.Now().Add(91 * 24 * time.Hour) }, "expires_at", delegation.ErrInvalid},
		"depth over cap":       {func(p *delegation.CreateGrantParams) { p.MaxDepth = 5 }, "max_depth", delegation.ErrInvalid},
		"negative depth":       {func(p *delegation.CreateGrantParams) { p.MaxDepth = -1 }, "max_depth", delegation.ErrInvalid},
		"no scopes":            {func(p *delegation.CreateGrantParams) { p.Scopes = nil }, "scopes", delegation.ErrInvalid},
		"scope not agent's":    {func(p *delegation.CreateGrantParams) { p.Scopes = []string{"travel:cancel"} }, "scopes[0]", delegation.ErrInvalid},
		"repeated scope":       {func(p *delegation.CreateGrantParams) { p.Scopes = []string{"travel:book", "travel:book"} }, "scopes[1]", delegation.ErrInvalid},
		"spaced scope":         {func(p *delegation.CreateGrantParams) { p.Scopes = []string{"a b"} }, "scopes[0]", delegation.ErrInvalid},
		"class not agent's":    {func(p *delegation.CreateGrantParams) { p.ActionClasses = []string{"payments"} }, "action_classes[0]", delegation.ErrInvalid},
		"no audiences":         {func(p *delegation.CreateGrantParams) { p.Audiences = nil }, "audiences", delegation.ErrInvalid},
		"audience not agent's": {func(p *delegation.CreateGrantParams) { p.Audiences = []string{"https://bank.example"} }, "audiences[0]", delegation.ErrInvalid},
		"agent subject unknown": {func(p *delegation.CreateGrantParams) {
			p.SubjectIssuer, p.Subject = ourIssuer, "spiffe://example.org/agent/ghost"
		}, "subject", delegation.ErrInvalid},
		"agent for itself": {func(p *delegation.CreateGrantParams) {
			p.SubjectIssuer, p.Subject = ourIssuer, e.agent.SPIFFEID
		}, "subject", delegation.ErrInvalid},
		"person for another": {func(p *delegation.CreateGrantParams) {
			p.Person = &delegation.Subject{Issuer: e.idp.URL, Subject: "bob"}
		}, "subject", delegation.ErrInvalid},
	} {
		_, err := e.svc.CreateGrant(e.ctx, admin(), e.params(tc.edit))
		if !errors.Is(err, tc.kind) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.kind)
			continue
		}
		var ve *fault.ValidationError
		if tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field) {
			t.Errorf("%s: err = %v, want field %s", name, err, tc.field)
		}
	}
	if _, err := e.ids.SuspendAgent(e.ctx, admin(), identity.TransitionParams{Ref: "booker"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateGrant(e.ctx, admin(), e.params(nil)); !errors.Is(err, delegation.ErrInvalid) {
		t.Errorf("grant to a suspended agent: %v, want ErrInvalid", err)
	}
	if n := len(e.events("grant.created")); n != 0 {
		t.Errorf("%d grant.created events after refusals, want 0", n)
	}
}

func TestPersonGrants(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	e := newEnv(t, st)
	token := e.idp.Mint("rs1", e.idp.Claims("alice", e.clk.Now()))
	who, o, err := e.svc.AuthenticatePerson(e.ctx, audit.Origin{}, token)
	if err != nil {
		t.Fatalf("AuthenticatePerson: %v", err)
	}
	if o.Actor != (audit.Actor{Type: audit.ActorPerson, ID: "alice"}) || who.Email != "alice@example.com" {
		t.Errorf("person = %+v, origin actor %+v", who, o.Actor)
	}
	g, err := e.svc.CreateGrant(e.ctx, o, e.params(func(p *delegation.CreateGrantParams) {
		p.SubjectIssuer, p.Subject, p.SubjectEmail, p.Person = "", "", "", &who
	}))
	if err != nil {
		t.Fatalf("CreateGrant by a person: %v", err)
	}
	if g.Subject != "alice" || g.SubjectIssuer != e.idp.URL || g.CreatedByType != audit.ActorPerson || g.CreatedBy != "alice" || g.SubjectEmail != "alice@example.com" {
		t.Errorf("person's grant = %+v", g)
	}
	// Bob may not revoke alice's grant; alice may, once.
	bob := delegation.Subject{Issuer: e.idp.URL, Subject: "bob"}
	if _, _, err := e.svc.RevokeGrant(e.ctx, o, delegation.RevokeGrantParams{ID: g.ID, Person: &bob}); !errors.Is(err, delegation.ErrForbidden) {
		t.Errorf("RevokeGrant by another person: %v, want ErrForbidden", err)
	}
	if _, _, err := e.svc.RevokeGrant(e.ctx, o, delegation.RevokeGrantParams{ID: g.ID, Person: &who, Reason: "trip cancelled"}); err != nil {
		t.Errorf("RevokeGrant by its person: %v", err)
	}
	// A bad token is refused and recorded.
	if _, _, err := e.svc.AuthenticatePerson(e.ctx, audit.Origin{}, token+"x"); !errors.Is(err, delegation.ErrUnauthenticated) || !errors.Is(err, delegation.ErrInvalidToken) {
		t.Errorf("AuthenticatePerson with a bad signature: %v", err)
	}
	evs := e.events("person.authenticated")
	if len(evs) != 2 || evs[0].Outcome != audit.Success || evs[1].Outcome != audit.Failure || evs[1].Reason == "" {
		t.Errorf("person.authenticated events = %+v", evs)
	}
}

func TestRevokeGrantCountsTokens(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e := newEnv(t, st)
			g, err := e.svc.CreateGrant(e.ctx, admin(), e.params(nil))
			if err != nil {
				t.Fatal(err)
			}
			now := e.clk.Now()
			err = st.Update(e.ctx, func(ctx context.Context, tx store.Tx) error {
				for i, ttl := range []time.Duration{time.Minute, time.Hour, -time.Minute} {
					if err := tx.RecordExchangedToken(ctx, store.ExchangedToken{
						JTI: "tok_" + string(rune('a'+i)), GrantID: g.ID, AgentID: e.agent.ID, Chain: []string{e.agent.ID},
						Subject: "alice", IssuedAt: now.Add(-2 * time.Minute), ExpiresAt: now.Add(ttl),
					}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			rg, n, err := e.svc.RevokeGrant(e.ctx, admin(), delegation.RevokeGrantParams{ID: g.ID, Reason: "left"})
			if err != nil || n != 2 || rg.RevokedAt.IsZero() || rg.RevokedBy != "adm_tester" {
				t.Fatalf("RevokeGrant = %+v, %d, %v; want two live tokens affected", rg, n, err)
			}
			if _, _, err := e.svc.RevokeGrant(e.ctx, admin(), delegation.RevokeGrantParams{ID: g.ID}); !errors.Is(err, delegation.ErrIllegalTransition) {
				t.Errorf("second RevokeGrant: %v, want ErrIllegalTransition", err)
			}
			if _, _, err := e.svc.RevokeGrant(e.ctx, admin(), delegation.RevokeGrantParams{ID: "grt_00000000000000000000000000"}); !errors.Is(err, delegation.ErrNotFound) {
				t.Errorf("RevokeGrant of a missing grant: %v, want ErrNotFound", err)
			}
			evs := e.events("grant.revoked")
			if len(evs) != 1 || evs[0].Details["tokens_affected"] != float64(2) || evs[0].Details["reason"] != "left" {
				t.Errorf("grant.revoked events = %+v", evs)
			}
			if list, _, _ := e.svc.ListGrants(e.ctx, delegation.ListGrantsParams{Active: true}); len(list) != 0 {
				t.Errorf("active grants after revocation: %v", list)
			}
		})
	}
}
