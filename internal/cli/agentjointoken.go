package cli

import (
	"fmt"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

type agentJoinTokenCmd struct {
	Create agentJoinTokenCreateCmd `cmd:"" help:"Create a one-time join token for the agent and print it, once."`
	Revoke agentJoinTokenRevokeCmd `cmd:"" help:"Revoke an unused join token so that it can no longer be redeemed."`
	List   agentJoinTokenListCmd   `cmd:"" help:"List the agent's join tokens of the last hour and their states."`
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

type agentJoinTokenRevokeCmd struct {
	ID string `arg:"" name:"id" help:"The join token's id (ajt_…), as create printed it."`
}

// Help says which tokens can be revoked.
func (c *agentJoinTokenRevokeCmd) Help() string {
	return "Only an unused token that has not expired can be revoked; revoking one that was used, revoked or " +
		"has expired fails (exit 1) and changes nothing. To end what a redeemed token gave, revoke the instance " +
		"(agentid instance revoke). With -o json the output is {\"id\", \"agent_id\", \"expires_at\", \"revoked_at\", \"revoked_by\"}."
}

func (c *agentJoinTokenRevokeCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	t, err := cl.RevokeAgentJoinToken(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("revoke join token %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(t)
	}
	rc.printf("Join token %s of agent %s revoked at %s: it can no longer be redeemed.\n", t.ID, t.AgentID, fmtTime(t.RevokedAt))
	return nil
}

type agentJoinTokenListCmd struct {
	agentRefArg
}

// Help says where the list comes from.
func (c *agentJoinTokenListCmd) Help() string {
	return "Every join token of the agent created within the last hour (the longest lifetime, so every token " +
		"that may still be redeemed is listed), newest first, read from the audit trail: its id, state (unused, " +
		"used, revoked, expired), creator, creation and expiry, and the instance a used one created. Never the " +
		"tokens. With -o json the output is {\"items\": [{\"id\", \"agent_id\", \"state\", \"created_at\", " +
		"\"created_by\", \"expires_at\", \"used_at\", \"instance_id\", \"revoked_at\", \"revoked_by\"}]}."
}

func (c *agentJoinTokenListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	l, err := cl.ListAgentJoinTokens(rc.ctx, c.Ref)
	if err != nil {
		return fmt.Errorf("list join tokens of agent %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(l)
	}
	t := rc.newTable("ID", "STATE", "CREATED", "CREATED BY", "EXPIRES", "INSTANCE", "REVOKED BY")
	for _, jt := range l.Items {
		t.row(jt.ID, jt.State, fmtTime(jt.CreatedAt), jt.CreatedBy, fmtTime(jt.ExpiresAt), jt.InstanceID, jt.RevokedBy)
	}
	return t.flush()
}
