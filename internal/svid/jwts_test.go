package svid_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/svid"
	"github.com/agentid/agentid/internal/testca"
)

// TestIssueJWTs: a batch issues what it may, refuses the rest each with
// IssueJWT's error, and records exactly what it issued, in one
// transaction; a Require that refuses applies per request.
func TestIssueJWTs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, false)
		a := e.agent("report-writer", nil)
		b := e.agent("ticket-triage", nil)
		off := e.agent("suspended-one", nil)
		if _, err := e.reg.SuspendAgent(e.ctx, origin(), identity.TransitionParams{Ref: off.ID}); err != nil {
			t.Fatal(err)
		}
		errNope := errors.New("not this one")
		refuseB := func(x store.Agent) error {
			if x.ID == b.ID {
				return errNope
			}
			return nil
		}
		res, err := e.svc.IssueJWTs(e.ctx, origin(), []svid.JWTParams{
			{Ref: a.ID, Audience: []string{"spiffe://example.org/one"}},
			{Ref: a.ID, Audience: []string{"spiffe://example.org/two"}},
			{Ref: a.ID},                                     // no audience
			{Ref: off.ID, Audience: []string{"x"}},          // suspended
			{Ref: "no-such-agent", Audience: []string{"x"}}, // unknown
			{Ref: b.ID, Audience: []string{"x"}, Require: refuseB},
			{Ref: b.ID, Audience: []string{"y"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		wantErr := []error{nil, nil, svid.ErrInvalid, svid.ErrNotActive, svid.ErrNotFound, errNope, nil}
		issued := map[string]bool{}
		for i, r := range res {
			switch {
			case wantErr[i] == nil && r.Err != nil:
				t.Errorf("request %d: %v", i, r.Err)
			case wantErr[i] != nil && !errors.Is(r.Err, wantErr[i]):
				t.Errorf("request %d: error %v, want %v", i, r.Err, wantErr[i])
			case wantErr[i] == nil:
				if r.SVID.Token == "" || r.Agent.ID == "" {
					t.Errorf("request %d: no SVID or agent: %+v", i, r)
				}
				issued[r.SVID.Claims.JTI] = true
			}
		}
		cs := e.credentials()
		if len(cs) != 3 {
			t.Fatalf("%d credentials recorded, want 3", len(cs))
		}
		for _, c := range cs {
			if !issued[c.ID] {
				t.Errorf("recorded %s, which was not issued", c.ID)
			}
		}
	})
}

// TestRequireFirst: Require is checked before the agent's state, so a
// Require that hides an agent (svid.NotFound, as the node API does for
// an agent outside the node's scope) gives the answer for an unknown
// agent even when the agent is suspended; nothing is recorded.
func TestRequireFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		off := e.agent("suspended-one", nil)
		if _, err := e.reg.SuspendAgent(e.ctx, origin(), identity.TransitionParams{Ref: off.ID}); err != nil {
			t.Fatal(err)
		}
		const unknown = "agt_01jdxkz7m0000000000000000b"
		hide := func(a store.Agent) error { return svid.NotFound(a.ID) }
		_, _, unknownErr := e.svc.IssueX509(e.ctx, origin(), svid.X509Params{Ref: unknown, CSR: csrPEM(t, testca.Key(t))})
		_, _, xErr := e.svc.IssueX509(e.ctx, origin(), svid.X509Params{Ref: off.ID, CSR: csrPEM(t, testca.Key(t)), Require: hide})
		_, _, jErr := e.svc.IssueJWT(e.ctx, origin(), svid.JWTParams{Ref: off.ID, Audience: []string{"x"}, Require: hide})
		for name, err := range map[string]error{"X.509": xErr, "JWT": jErr} {
			if !errors.Is(err, svid.ErrNotFound) || errors.Is(err, svid.ErrNotActive) ||
				err.Error() != strings.ReplaceAll(unknownErr.Error(), unknown, off.ID) {
				t.Errorf("%s: %v; want as for an unknown agent (%v)", name, err, unknownErr)
			}
		}
		if cs := e.credentials(); len(cs) != 0 {
			t.Errorf("%d credentials recorded", len(cs))
		}
	})
}
