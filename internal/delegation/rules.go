package delegation

import (
	"errors"
	"slices"
	"time"
)

// Errors of Narrow, matching the OAuth codes the token endpoint answers.
var (
	// ErrScope means the scope is empty or the request asks for more than
	// the intersection (invalid_scope).
	ErrScope = errors.New("delegation: scope outside the grant")
	// ErrTarget means the audience is empty or the request names a
	// resource outside the intersection (invalid_target).
	ErrTarget = errors.New("delegation: audience outside the grant")
	// ErrLifetime means the token would live less than a second
	// (invalid_request).
	ErrLifetime = errors.New("delegation: no lifetime left")
)

// Bounds are the limits one exchange narrows within (ADR 0014 §4).
type Bounds struct {
	// SubjectScopes are the subject token's scopes; SubjectScoped says the
	// token states scopes at all (a person's IdP token may not: then it
	// does not limit).
	SubjectScopes []string
	SubjectScoped bool
	// SubjectAudience is the subject token's aud when it is agentid's own
	// (then it limits), nil otherwise.
	SubjectAudience []string
	GrantScopes     []string
	GrantAudiences  []string
	AgentScopes     []string
	AgentAudiences  []string
	// RequestScopes and RequestAudiences are what the request asked for;
	// empty: everything the intersection allows.
	RequestScopes    []string
	RequestAudiences []string

	// Now, TTL (min of the server's and the agent's), SubjectExpiry and
	// GrantExpiry bound the lifetime.
	Now           time.Time
	TTL           time.Duration
	SubjectExpiry time.Time
	GrantExpiry   time.Time
}

// Narrowed is what an exchange may issue.
type Narrowed struct {
	Scopes    []string
	Audiences []string
	// Expiry is whole seconds, at least a second after Now.
	Expiry time.Time
}

// Narrow computes the scope, audience and expiry of an exchanged token:
// never wider than any of the bounds (downscope only). It returns ErrScope,
// ErrTarget or ErrLifetime when nothing may be issued.
func Narrow(b Bounds) (Narrowed, error) {
	var n Narrowed
	allowed := intersect(b.GrantScopes, b.AgentScopes)
	if b.SubjectScoped {
		allowed = intersect(allowed, b.SubjectScopes)
	}
	if len(b.RequestScopes) > 0 {
		for _, s := range b.RequestScopes {
			if !slices.Contains(allowed, s) {
				return n, ErrScope
			}
		}
		allowed = intersect(b.RequestScopes, allowed) // the request's order
	}
	if len(allowed) == 0 {
		return n, ErrScope
	}
	aud := intersect(b.GrantAudiences, b.AgentAudiences)
	if b.SubjectAudience != nil {
		aud = intersect(aud, b.SubjectAudience)
	}
	if len(b.RequestAudiences) > 0 {
		for _, a := range b.RequestAudiences {
			if !slices.Contains(aud, a) {
				return n, ErrTarget
			}
		}
		aud = intersect(b.RequestAudiences, aud)
	}
	if len(aud) == 0 {
		return n, ErrTarget
	}
	exp := b.Now.Add(b.TTL)
	for _, t := range []time.Time{b.SubjectExpiry, b.GrantExpiry} {
		if !t.IsZero() && t.Before(exp) {
			exp = t
		}
	}
	exp = time.Unix(exp.Unix(), 0).UTC() // NumericDate: whole seconds, rounded down
	if exp.Unix()-b.Now.Unix() < 1 {
		return n, ErrLifetime
	}
	n.Scopes, n.Audiences, n.Expiry = allowed, aud, exp
	return n, nil
}

// intersect is the elements of a that are in b, in a's order, without
// duplicates.
func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
