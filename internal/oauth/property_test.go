package oauth_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/agentid/agentid/internal/delegation"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/oauth"
)

// TestExchangeChainsProperty drives random chains of exchanges — random
// grants, person tokens with or without scopes, agents, requested scopes
// and audiences, depths — and checks after every step that
//
//   - no issued token carries a scope or audience outside the
//     intersection of its ancestors (the person's token, the grant, every
//     agent of the chain) or an exp past its parent's;
//   - every issued token is traceable to its grant: grant_id, a record
//     whose chain is the act chain, the parent's jti;
//   - a request within every bound (and the depth cap, with no repeated
//     agent) is granted, and one outside them is refused with the matching
//     RFC 6749 / RFC 8693 error.
func TestExchangeChainsProperty(t *testing.T) {
	x := sqliteXEnv(t)
	pool := []string{"s1", "s2", "s3", "s4"}
	auds := []string{resourceA, resourceB, "https://c.example.org"}
	type spec struct {
		name   string
		scopes []string
		auds   []string
	}
	specs := []spec{
		{"p0", pool, auds},
		{"p1", []string{"s1", "s2", "s3"}, auds[:2]},
		{"p2", []string{"s2", "s3", "s4"}, auds[1:]},
		{"p3", []string{"s1", "s3"}, []string{auds[0], auds[2]}},
	}
	var agents []actor
	for _, s := range specs {
		a, k, kid, _ := x.newAgent(s.name, func(p *identity.CreateAgentParams) { p.Scopes, p.Audiences = s.scopes, s.auds })
		agents = append(agents, actor{a, k, kid})
	}
	var person atomic.Int64
	// subset draws a subset of of (min to all of it), in of's order.
	subset := func(t *rapid.T, of []string, minLen int, label string) []string {
		picked := rapid.SliceOfNDistinct(rapid.SampledFrom(of), minLen, len(of), rapid.ID[string]).Draw(t, label)
		return intersect(of, picked)
	}
	var issued atomic.Int64

	rapid.Check(t, func(t *rapid.T) {
		sub := fmt.Sprintf("person-%d", person.Add(1))
		first := rapid.IntRange(0, len(agents)-1).Draw(t, "first")
		gScopes := subset(t, agents[first].agent.Scopes, 1, "grant scope")
		gAuds := subset(t, agents[first].agent.Audiences, 1, "grant audience")
		maxDepth := rapid.IntRange(1, 3).Draw(t, "max depth")
		g, err := x.deleg.CreateGrant(x.ctx, adminOrigin(), delegation.CreateGrantParams{
			SubjectIssuer: x.idp.URL, Subject: sub, Agent: agents[first].agent.ID,
			Scopes: gScopes, Audiences: gAuds, ExpiresAt: x.clk.Now().Add(time.Hour),
			MaxDepth: maxDepth, AllowSubdelegation: rapid.Bool().Draw(t, "sub-delegation"),
		})
		if err != nil {
			t.Fatalf("CreateGrant: %v", err)
		}
		claims := x.idp.Claims(sub, x.clk.Now())
		// The bound so far: the person's token's scopes (when it states
		// any), then each step's token.
		allowedScopes, allowedAuds := pool, auds
		if rapid.Bool().Draw(t, "person token has scope") {
			ps := subset(t, pool, 0, "person scope")
			claims["scope"] = strings.Join(ps, " ")
			allowedScopes = ps
		}
		subject, subjectType := x.idp.Mint("es1", claims), oauth.TokenTypeJWT
		parentExp, parentJTI := x.clk.Now().Add(10*time.Minute).Unix(), ""
		var chain []actor // holder first
		next := first
		for step := 0; step < 4; step++ {
			a := agents[next]
			// The model: what may this step issue?
			scopeBound := intersect(intersect(allowedScopes, g.Scopes), a.agent.Scopes)
			audBound := intersect(intersect(allowedAuds, g.Audiences), a.agent.Audiences)
			// Ask within the bound most of the time, for anything
			// sometimes, and for nothing (everything allowed) sometimes.
			scopeFrom, audFrom := scopeBound, audBound
			if rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("step %d wide", step)) == 0 || len(scopeFrom) == 0 || len(audFrom) == 0 {
				scopeFrom, audFrom = pool, auds
			}
			reqScopes := subset(t, scopeFrom, 0, fmt.Sprintf("step %d scope", step))
			reqAuds := subset(t, audFrom, 0, fmt.Sprintf("step %d audience", step))
			kv := []string{"subject_token_type", subjectType}
			if len(reqScopes) > 0 {
				kv = append(kv, "scope", strings.Join(reqScopes, " "))
			}
			for _, r := range reqAuds {
				kv = append(kv, "resource", r)
			}
			resp, oerr := x.srv.Token(x.ctx, x.exchangeReq(a, subject, kv...))

			inChain := slices.ContainsFunc(chain, func(c actor) bool { return c.agent.ID == a.agent.ID })
			depthOK := len(chain) == 0 || (g.AllowSubdelegation && len(chain)+1 <= maxDepth && !inChain)
			wantScope := reqScopes
			if len(wantScope) == 0 {
				wantScope = scopeBound
			}
			wantAud := reqAuds
			if len(wantAud) == 0 {
				wantAud = audBound
			}
			var wantCode string
			switch {
			case !depthOK:
				wantCode = oauth.CodeInvalidRequest
			case len(wantScope) == 0 || !within(wantScope, scopeBound):
				wantCode = oauth.CodeInvalidScope
			case len(wantAud) == 0 || !within(wantAud, audBound):
				wantCode = oauth.CodeInvalidTarget
			}
			if wantCode != "" {
				if oerr == nil || oerr.Code != wantCode {
					t.Fatalf("step %d by %s: got %+v / %v, want %s", step, a.agent.Name, resp, oerr, wantCode)
				}
				return
			}
			if oerr != nil {
				t.Fatalf("step %d by %s within every bound: %v", step, a.agent.Name, oerr)
			}

			c := x.claims(resp.AccessToken)
			gotScopes := strings.Fields(fmt.Sprint(c["scope"]))
			gotAuds := audList(c["aud"])
			if !within(gotScopes, scopeBound) || !within(gotAuds, audBound) {
				t.Fatalf("step %d: scope %v / aud %v outside the bounds %v / %v", step, gotScopes, gotAuds, scopeBound, audBound)
			}
			if exp := int64(c["exp"].(float64)); exp > parentExp {
				t.Fatalf("step %d: exp %d past the parent's %d", step, exp, parentExp)
			}
			chain = append([]actor{a}, chain...)
			if c["grant_id"] != g.ID || c["sub"] != sub {
				t.Fatalf("step %d: grant_id %v, sub %v", step, c["grant_id"], c["sub"])
			}
			act, err := delegation.ParseAct(mustJSON(t, c["act"]))
			if err != nil {
				t.Fatal(err)
			}
			rec, err := x.st.GetExchangedToken(x.ctx, c["jti"].(string))
			if err != nil {
				t.Fatalf("step %d: no record: %v", step, err)
			}
			var wantActs, wantIDs []string
			for _, ca := range chain {
				wantActs = append(wantActs, ca.agent.SPIFFEID)
				wantIDs = append(wantIDs, ca.agent.ID)
			}
			if !slices.Equal(act.Actors(), wantActs) || !slices.Equal(rec.Chain, wantIDs) || rec.GrantID != g.ID || rec.ParentJTI != parentJTI {
				t.Fatalf("step %d: act %v, record %+v; want chain %v under %s from %q", step, act.Actors(), rec, wantIDs, g.ID, parentJTI)
			}
			issued.Add(1)
			if !x.introspect(resp.AccessToken).Active {
				t.Fatalf("step %d: a fresh token is inactive", step)
			}

			allowedScopes, allowedAuds = gotScopes, gotAuds
			subject, subjectType = resp.AccessToken, oauth.TokenTypeAccessToken
			parentExp, parentJTI = int64(c["exp"].(float64)), c["jti"].(string)
			next = rapid.IntRange(0, len(agents)-1).Draw(t, fmt.Sprintf("step %d next", step))
		}
	})
	t.Logf("%d tokens issued by random chains", issued.Load())
	if issued.Load() < 30 {
		t.Errorf("only %d tokens issued: the generators hardly reach the success paths", issued.Load())
	}
}

func intersect(a, b []string) []string {
	var out []string
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

func within(a, b []string) bool {
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

func audList(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, s := range a {
			out = append(out, fmt.Sprint(s))
		}
		return out
	}
	return nil
}

func mustJSON(t *rapid.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
