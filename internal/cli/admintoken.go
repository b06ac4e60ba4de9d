package cli

import (
	"fmt"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

type adminTokenCmd struct {
	Create adminTokenCreateCmd `cmd:"" help:"Create an admin API token and print its secret, once."`
	List   adminTokenListCmd   `cmd:"" help:"List admin API tokens (never their secrets)."`
	Revoke adminTokenRevokeCmd `cmd:"" help:"Revoke an admin API token at once."`
}

type adminTokenCreateCmd struct {
	Name string        `arg:"" help:"A name saying who or what uses the token (unique), e.g. ci-deploy."`
	Role string        `required:"" enum:"admin,auditor" help:"admin: full admin API; auditor: read-only, audit trail only." placeholder:"ROLE"`
	TTL  time.Duration `name:"ttl" help:"Lifetime of the token as a duration (e.g. 720h); default: no expiry." placeholder:"DURATION"`
}

func (c *adminTokenCreateCmd) Run(rc *runContext) error {
	req := admin.CreateAdminTokenRequest{Name: c.Name, Role: c.Role}
	var err error
	if req.TTLSeconds, err = ttlSeconds("--ttl", c.TTL); err != nil {
		return err
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	t, err := cl.CreateAdminToken(rc.ctx, req)
	if err != nil {
		return fmt.Errorf("create admin token %q: %w", c.Name, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(t)
	}
	expires := fmtTimePtr(t.ExpiresAt)
	if expires == "" {
		expires = "never"
	}
	rc.printf("Admin token %s created: id %s, role %s, expires %s.\n\n", t.Name, t.ID, t.Role, expires)
	rc.printf("Secret (shown only this once; store it now, it cannot be retrieved again):\n\n    %s\n\n", t.Token)
	rc.printf("Use it with --token or AGENTID_TOKEN. Revoke it with `agentid admin-token revoke %s`.\n", t.ID)
	return nil
}

type adminTokenListCmd struct {
	pageFlags
}

func (c *adminTokenListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	fetch := func(tok string) (admin.List[admin.AdminToken], error) {
		l, err := cl.ListAdminTokens(rc.ctx, c.PageSize, tok)
		if err != nil {
			return l, fmt.Errorf("list admin tokens: %w", err)
		}
		return l, nil
	}
	return listPages(rc, c.pageFlags, fetch,
		[]string{"ID", "NAME", "ROLE", "CREATED BY", "CREATED", "EXPIRES", "REVOKED"},
		func(t admin.AdminToken) []string {
			return []string{t.ID, t.Name, t.Role, t.CreatedBy, fmtTime(t.CreatedAt),
				fmtTimePtr(t.ExpiresAt), fmtTimePtr(t.RevokedAt)}
		})
}

type adminTokenRevokeCmd struct {
	ID string `arg:"" name:"id" help:"The token's id (from admin-token list)."`
}

func (c *adminTokenRevokeCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	t, err := cl.RevokeAdminToken(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("revoke admin token %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(t)
	}
	rc.printf("Admin token %s (%s) revoked at %s.\n", t.Name, t.ID, fmtTimePtr(t.RevokedAt))
	return nil
}
