package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

type grantCmd struct {
	Create grantCreateCmd `cmd:"" help:"Let an agent act for a person (or another agent) within scopes, audiences and an expiry."`
	List   grantListCmd   `cmd:"" help:"List delegation grants."`
	Show   grantShowCmd   `cmd:"" help:"Show a delegation grant."`
	Revoke grantRevokeCmd `cmd:"" help:"Revoke a grant: every token issued under it becomes inactive."`
}

type grantCreateCmd struct {
	Agent              string        `required:"" help:"The agent that may act: its name or id." placeholder:"REF"`
	Subject            string        `required:"" help:"Who delegates: the person's subject at their identity provider, or an agent's SPIFFE ID." placeholder:"SUBJECT"`
	SubjectIssuer      string        `name:"subject-issuer" help:"The trusted issuer that names the subject (a delegation.issuers entry); default: agentid itself, for an agent's SPIFFE ID." placeholder:"URL"`
	Email              string        `help:"The person's email, for the record." placeholder:"EMAIL"`
	Scope              []string      `required:"" help:"Scopes the agent may use for the subject (a subset of its own). Repeat the flag or separate with commas." placeholder:"SCOPE"`
	Audience           []string      `required:"" help:"Resources the agent may ask tokens for (a subset of its own). Repeat the flag or separate with commas." placeholder:"URI"`
	ActionClass        []string      `name:"action-class" help:"Action classes the agent may perform for the subject (a subset of its own)." placeholder:"CLASS"`
	ExpiresAt          *time.Time    `name:"expires-at" xor:"expiry" help:"When the grant ends (RFC 3339), at most 90 days ahead." placeholder:"TIME"`
	ExpiresIn          time.Duration `name:"expires-in" xor:"expiry" default:"24h" help:"End the grant this long from now." placeholder:"DURATION"`
	MaxDepth           int           `name:"max-depth" help:"The longest chain of actors under the grant (default 3, at most delegation.max_chain_depth)." placeholder:"N"`
	AllowSubdelegation bool          `name:"allow-subdelegation" help:"Let the agent exchange its delegated tokens for other agents (one more act each)."`
}

// Help says what the grant allows.
func (c *grantCreateCmd) Help() string {
	return "An agent with a grant exchanges the subject's token (RFC 8693) for a token whose sub is the subject and " +
		"whose act is the agent, never wider than the subject's token, the grant and the agent's own scopes and audiences. " +
		"With -o json the output is the grant."
}

func (c *grantCreateCmd) Run(rc *runContext) error {
	exp, err := expiry(c.ExpiresAt, c.ExpiresIn)
	if err != nil {
		return err
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	g, err := cl.CreateGrant(rc.ctx, admin.CreateGrantRequest{
		SubjectIssuer: c.SubjectIssuer, Subject: c.Subject, SubjectEmail: c.Email, Agent: c.Agent,
		Scopes: c.Scope, Audiences: c.Audience, ActionClasses: c.ActionClass,
		ExpiresAt: exp, MaxDepth: c.MaxDepth, AllowSubdelegation: c.AllowSubdelegation,
	})
	if err != nil {
		return fmt.Errorf("create grant: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(g)
	}
	rc.printf("Grant %s created: %s may act for %s until %s.\n\n", g.ID, c.Agent, g.Subject, fmtTime(g.ExpiresAt))
	return rc.printGrant(g)
}

type grantListCmd struct {
	Agent         string `help:"Only grants to this agent (name or id)." placeholder:"REF"`
	Subject       string `help:"Only grants of this subject." placeholder:"SUBJECT"`
	SubjectIssuer string `name:"subject-issuer" help:"Only grants of subjects of this issuer." placeholder:"URL"`
	Active        bool   `help:"Only grants that are neither revoked nor expired."`
	pageFlags
}

func (c *grantListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	fetch := func(tok string) (admin.List[admin.Grant], error) {
		l, err := cl.ListGrants(rc.ctx, admin.ListGrantsParams{
			Agent: c.Agent, Subject: c.Subject, SubjectIssuer: c.SubjectIssuer, Active: c.Active,
			PageSize: c.PageSize, PageToken: tok,
		})
		if err != nil {
			return l, fmt.Errorf("list grants: %w", err)
		}
		return l, nil
	}
	return listPages(rc, c.pageFlags, fetch,
		[]string{"ID", "SUBJECT", "AGENT", "SCOPES", "EXPIRES", "STATE"},
		func(g admin.Grant) []string {
			return []string{g.ID, g.Subject, g.AgentID, strings.Join(g.Scopes, " "), fmtTime(g.ExpiresAt), grantState(g)}
		})
}

func grantState(g admin.Grant) string {
	switch {
	case g.RevokedAt != nil:
		return "revoked"
	case !g.Active:
		return "expired"
	}
	return "active"
}

type grantIDArg struct {
	ID string `arg:"" help:"The grant's id (grt_…)." placeholder:"ID"`
}

type grantShowCmd struct {
	grantIDArg
}

func (c *grantShowCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	g, err := cl.GetGrant(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("show grant %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(g)
	}
	return rc.printGrant(g)
}

type grantRevokeCmd struct {
	grantIDArg
	Reason string `help:"Why, for the audit trail." placeholder:"TEXT"`
}

func (c *grantRevokeCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	out, err := cl.RevokeGrant(rc.ctx, c.ID, admin.RevokeGrantRequest{Reason: c.Reason})
	if err != nil {
		return fmt.Errorf("revoke grant %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(out)
	}
	rc.printf("Grant %s revoked; %d live token(s) issued under it are now inactive.\n", out.Grant.ID, out.TokensAffected)
	return nil
}

func (rc *runContext) printGrant(g admin.Grant) error {
	return rc.printFields([]field{
		{"ID", g.ID},
		{"State", grantState(g)},
		{"Subject", g.Subject},
		{"Subject issuer", g.SubjectIssuer},
		{"Subject email", g.SubjectEmail},
		{"Agent", g.AgentID},
		{"Scopes", strings.Join(g.Scopes, " ")},
		{"Action classes", strings.Join(g.ActionClasses, ", ")},
		{"Audiences", strings.Join(g.Audiences, ", ")},
		{"Expires", fmtTime(g.ExpiresAt)},
		{"Max depth", strconv.Itoa(g.MaxDepth)},
		{"Sub-delegation", yesNo(g.AllowSubdelegation)},
		{"Created", fmtTime(g.CreatedAt) + " by " + g.CreatedByType + " " + g.CreatedBy},
		{"Revoked", revokedLine(g)},
	})
}

func revokedLine(g admin.Grant) string {
	if g.RevokedAt == nil {
		return ""
	}
	s := fmtTimePtr(g.RevokedAt) + " by " + g.RevokedBy
	if g.RevokeReason != "" {
		s += ": " + g.RevokeReason
	}
	return s
}
