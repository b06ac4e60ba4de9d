package resource

import (
	"encoding/json"
	"errors"
)

// MaxChainDepth bounds the nested act claims Chain reads.
const MaxChainDepth = 16

// ErrMalformedChain means a token's act, sub_id or grant_id claim is not
// of the shape agentid issues.
var ErrMalformedChain = errors.New("resource: malformed delegation chain")

// Chain is the delegation behind a verified token (RFC 8693 §4.1, ADR
// 0014): who acts, for whom, through which grant.
type Chain struct {
	// Subject is for whom the token acts: its sub (a person, or the agent
	// itself when the token is not delegated).
	Subject string
	// SubjectIssuer is who named Subject: sub_id.iss (RFC 9493 §3.2.3) of a
	// delegated token, the token's issuer otherwise.
	SubjectIssuer string
	// Actor is who acts now: act.sub of a delegated token, the agent's
	// SPIFFE ID (sub) otherwise.
	Actor string
	// Actors is the chain of acting agents, the current actor first, then
	// each earlier actor (the nested acts); empty when not delegated.
	Actors []string
	// GrantID is the grant (grt_…) the token was issued under; empty when
	// not delegated.
	GrantID string
	// Impersonation reports a token issued under a grant without act: the
	// agent acts as the subject (ADR 0014 addendum B). Actor is then empty;
	// the agent holding the token is Claims.Agent (client_id).
	Impersonation bool
}

// Delegated reports whether the token acts for someone other than the
// agent holding it.
func (c Chain) Delegated() bool { return c.GrantID != "" }

// Depth is the number of acting agents (0 when not delegated).
func (c Chain) Depth() int { return len(c.Actors) }

// Chain reads the delegation chain of verified claims. A token without act
// and grant_id is the agent's own: Subject and Actor are its sub. An error
// wraps ErrMalformedChain.
func (c *Claims) Chain() (Chain, error) {
	ch := Chain{Subject: c.Subject, SubjectIssuer: c.Issuer, Actor: c.Subject}
	if g, ok := c.Raw["grant_id"]; ok {
		s, ok := g.(string)
		if !ok || s == "" {
			return Chain{}, errors.Join(ErrMalformedChain, errors.New("grant_id is not a string"))
		}
		ch.GrantID = s
	}
	if sid, ok := c.Raw["sub_id"]; ok {
		m, ok := sid.(map[string]any)
		iss, _ := m["iss"].(string)
		sub, _ := m["sub"].(string)
		if !ok || iss == "" || sub != c.Subject {
			return Chain{}, errors.Join(ErrMalformedChain, errors.New("sub_id is not an iss_sub identifier of sub"))
		}
		ch.SubjectIssuer = iss
	}
	actors, err := parseActors(c.Act)
	if err != nil {
		return Chain{}, err
	}
	switch {
	case len(actors) > 0 && ch.GrantID == "":
		return Chain{}, errors.Join(ErrMalformedChain, errors.New("act without grant_id"))
	case len(actors) > 0:
		ch.Actors, ch.Actor = actors, actors[0]
	case ch.GrantID != "":
		ch.Impersonation, ch.Actor = true, ""
	}
	return ch, nil
}

// parseActors reads the nested act claims, outermost first.
func parseActors(raw json.RawMessage) ([]string, error) {
	var out []string
	for len(raw) > 0 && string(raw) != "null" {
		if len(out) == MaxChainDepth {
			return nil, errors.Join(ErrMalformedChain, errors.New("act is nested too deeply"))
		}
		var a struct {
			Sub string          `json:"sub"`
			Act json.RawMessage `json:"act"`
		}
		if err := json.Unmarshal(raw, &a); err != nil || a.Sub == "" {
			return nil, errors.Join(ErrMalformedChain, errors.New("act is not an object with a sub"))
		}
		out = append(out, a.Sub)
		raw = a.Act
	}
	return out, nil
}
