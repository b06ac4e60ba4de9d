package cli

import (
	"fmt"

	"github.com/agentid/agentid/sdk/admin"
)

type tokenCmd struct {
	Revoke tokenRevokeCmd `cmd:"" help:"Revoke one access token (--jti), or every token issued to an agent until now (--agent)."`
}

type tokenRevokeCmd struct {
	JTI   string `name:"jti" xor:"what" required:"" help:"Revoke the access token with this jti (its \"jti\" claim)." placeholder:"JTI"`
	Agent string `name:"agent" xor:"what" required:"" help:"Revoke every token issued to this agent (name or id) until now." placeholder:"REF"`
}

// Help explains what revocation reaches.
func (c *tokenRevokeCmd) Help() string {
	return "Introspection (RFC 7662) reports a revoked token inactive at once. A resource server that verifies " +
		"tokens offline sees the revocation only when the token expires (5 minutes by default). " +
		"--agent revokes by issue time at second precision: tokens issued in the same second as the revocation count as revoked."
}

func (c *tokenRevokeCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	rev, err := cl.RevokeTokens(rc.ctx, admin.RevokeTokensRequest{JTI: c.JTI, Agent: c.Agent})
	if err != nil {
		what := "token " + quoteArg(c.JTI)
		if c.Agent != "" {
			what = "tokens of agent " + quoteArg(c.Agent)
		}
		return fmt.Errorf("revoke %s: %w", what, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(rev)
	}
	if rev.Agent != nil {
		rc.printf("Every token issued to agent %s (%s) at or before %s is revoked.\n", rev.Agent.Name, rev.Agent.ID, fmtTime(rev.RevokedAt))
		return nil
	}
	rc.printf("Token %s revoked at %s; the revocation is kept until %s, when any token with this jti has expired.\n",
		rev.JTI, fmtTime(rev.RevokedAt), fmtTimePtr(rev.KeptUntil))
	return nil
}

// quoteArg quotes a command-line value for a message.
func quoteArg(s string) string { return fmt.Sprintf("%q", s) }
