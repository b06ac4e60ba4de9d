package cli

import (
	"fmt"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

type agentJoinTokenCmd struct {
	Create agentJoinTokenCreateCmd `cmd:"" help:"Create a one-time join token for the agent and print it, once."`
}

type agentJoinTokenCreateCmd struct {
	agentRefArg
	TTL time.Duration `name:"ttl" default:"10m" help:"How long the token may be redeemed: 1m to 1h, whole seconds." placeholder:"DURATION"`
}

// Help says what the token is for and what comes out.
func (c *agentJoinTokenCreateCmd) Help() string {
	return "One instance of the agent may redeem the token, once, before it expires, at the token endpoint " +
		"(grant_type urn:agentid:params:oauth:grant-type:join-token) for an instance and an access token " +
		"(docs/attestation.md#join-tokens). With -o json the output is {\"id\", \"agent_id\", \"token\", \"expires_at\"}."
}

func (c *agentJoinTokenCreateCmd) Run(rc *runContext) error {
	secs, err := ttlSeconds("--ttl", c.TTL)
	if err != nil {
		return err
	}
	if secs == 0 {
		return &exitError{code: ExitUsage, msg: "--ttl must be at least 1m"}
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	t, err := cl.CreateAgentJoinToken(rc.ctx, c.Ref, admin.CreateJoinTokenRequest{TTLSeconds: secs})
	if err != nil {
		return fmt.Errorf("create join token for agent %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(t)
	}
	rc.printf("Join token %s created for agent %s; it expires at %s.\n\n", t.ID, t.AgentID, fmtTime(t.ExpiresAt))
	rc.printf("Token (shown only this once; it can be redeemed once):\n\n    %s\n\n", t.Token)
	rc.printf("The instance posts it to the token endpoint: grant_type=urn:agentid:params:oauth:grant-type:join-token&join_token=<token>.\n")
	rc.printf("Warning: whoever holds this token gets a token of the agent until it is used or expires. Hand it over\n" +
		"a secure channel, and keep it out of logs and shell history.\n")
	return nil
}
