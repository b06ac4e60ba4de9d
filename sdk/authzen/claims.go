package authzen

import (
	"github.com/agentid/agentid/sdk/resource"
)

// TokenContext returns the AuthZEN context members that carry what a
// verified agentid access token says about the request, for agentid's
// decision point to check and its policies to read: "delegation" (subject,
// actors and grant_id of a delegated token), "instance" (the token's
// agent_instance) and "trace_id". agentid looks the grant and the
// instance up when it decides, so a request under a grant or an instance
// revoked since the token was issued is denied (docs/decisions.md). The
// map is nil when the token carries none of them; merge it into
// Request.Context. The error wraps resource.ErrMalformedChain.
func TokenContext(c *resource.Claims) (map[string]any, error) {
	ch, err := c.Chain()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	set := func(k string, v any) {
		if m == nil {
			m = map[string]any{}
		}
		m[k] = v
	}
	if ch.Delegated() {
		actors := ch.Actors
		if actors == nil {
			actors = []string{}
		}
		set("delegation", map[string]any{"subject": ch.Subject, "actors": actors, "grant_id": ch.GrantID})
	}
	if c.AgentInstance != "" {
		set("instance", map[string]any{"id": c.AgentInstance})
	}
	if c.TraceID != "" {
		set("trace_id", c.TraceID)
	}
	return m, nil
}
