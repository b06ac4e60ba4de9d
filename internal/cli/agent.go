package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

type agentCmd struct {
	Create      agentCreateCmd      `cmd:"" help:"Register an agent."`
	List        agentListCmd        `cmd:"" help:"List agents."`
	Show        agentShowCmd        `cmd:"" help:"Show one agent, flagging it when orphaned or expired."`
	Update      agentUpdateCmd      `cmd:"" help:"Change an agent's registration. Only the flags given are changed."`
	Suspend     agentSuspendCmd     `cmd:"" help:"Suspend an active agent: it gets no credentials until resumed."`
	Resume      agentResumeCmd      `cmd:"" help:"Make a suspended agent active again."`
	Deprovision agentDeprovisionCmd `cmd:"" help:"End an agent for good. This is final: it cannot be resumed and its name stays reserved. No confirmation is asked."`
	Key         agentKeyCmd         `cmd:"" help:"Manage the public keys an agent authenticates with (private_key_jwt)."`
	Secret      agentSecretCmd      `cmd:"" help:"Manage an agent's client secrets (prefer keys)."`
	SVID        agentSVIDCmd        `cmd:"" name:"svid" help:"Issue and list the agent's SPIFFE SVIDs (X.509 and JWT)."`
	Instances   agentInstancesCmd   `cmd:"" help:"List the agent's attested instances (docs/attestation.md)."`
	JoinToken   agentJoinTokenCmd   `cmd:"" name:"join-token" help:"Create one-time join tokens an instance of the agent redeems for an instance and a token (docs/attestation.md)."`
}

// agentRefArg is the positional argument naming one agent.
type agentRefArg struct {
	Ref string `arg:"" name:"agent" help:"The agent's name or id (agt_…)."`
}

// agentSpecFlags are the registration fields create and update share.
type agentSpecFlags struct {
	ActionClass   []string `name:"action-class" help:"Action class granted to the agent (e.g. read:tickets). Repeat the flag or separate with commas." placeholder:"CLASS"`
	Audience      []string `help:"Audience (resource) its credentials may name. Repeat the flag or separate with commas." placeholder:"AUD"`
	Scope         []string `help:"OAuth scope the agent may be granted (RFC 6749 scope token, e.g. tickets:read). Repeat the flag or separate with commas." placeholder:"SCOPE"`
	Permission    []string `help:"What the agent may do at agentid itself: introspect (call the token introspection endpoint), evaluate (ask the decision point with its access token), impersonate (token exchanges issue tokens without act; see docs/delegation.md). Repeat the flag or separate with commas." placeholder:"PERM"`
	FederatesWith []string `name:"federates-with" help:"Foreign SPIFFE trust domain whose bundle the agent's workloads get as a federated bundle (see agentid federation list). Repeat the flag or separate with commas." placeholder:"TD"`
	Selector      []string `name:"selector" sep:"none" help:"Workload selector by which agentid node knows a workload runs as the agent: unix:uid:N, unix:gid:N, unix:path:/abs/exe or unix:sha256:HEX. All must hold. Repeat the flag for several (no comma splitting)." placeholder:"SEL"`
	Label         []string `sep:"none" help:"Label KEY=VALUE. Repeat the flag for several labels." placeholder:"KEY=VALUE"`
	Attest        []string `name:"attest" sep:"none" help:"Attestation rule: an attestor and the matchers that must all hold, space-separated, e.g. \"prod k8s:ns:payments k8s:sa:runner\" or \"github repository=org/* ref=refs/heads/main\" or \"aws-prod aws:principal_tags.team=payments\" (docs/attestation.md). Repeat the flag for several rules; one matching rule suffices." placeholder:"RULE"`
	NodeID        []string `name:"node-id" help:"Node scope (ADR 0019): a node (nod_…) that may obtain the agent's SVIDs. Repeat the flag or separate with commas. With --node-rule: a node qualifies by its id or by one rule; neither flag: every node may." placeholder:"ID"`
	NodeRule      []string `name:"node-rule" sep:"none" help:"Node scope (ADR 0019): a rule over the evidence a node attested with, written as --attest, e.g. \"prod-cluster k8s:node:pay-*\" or \"hosts x509:san-dns:*.pay.nodes.example.com\"; the node must have attested with the attestor and every matcher must hold. Repeat the flag for several rules; one suffices." placeholder:"RULE"`
}

// nodeScope is the node scope the flags give; nil when neither flag was
// given.
func (f agentSpecFlags) nodeScope() (*admin.NodeScope, error) {
	if f.NodeID == nil && f.NodeRule == nil {
		return nil, nil
	}
	sc := admin.NodeScope{NodeIDs: f.NodeID, Rules: []admin.AttestationRule{}}
	if sc.NodeIDs == nil {
		sc.NodeIDs = []string{}
	}
	for _, v := range f.NodeRule {
		fs := strings.Fields(v)
		if len(fs) < 2 {
			return nil, &exitError{code: ExitUsage, msg: fmt.Sprintf("--node-rule %q: want \"ATTESTOR MATCHER [MATCHER…]\", e.g. \"prod-cluster k8s:node:pay-*\"", v)}
		}
		sc.Rules = append(sc.Rules, admin.AttestationRule{Attestor: fs[0], Matchers: fs[1:]})
	}
	return &sc, nil
}

type agentCreateCmd struct {
	Name    string   `arg:"" help:"Agent name: lowercase letters, digits and hyphens (DNS label), unique in the trust domain. The SPIFFE ID becomes spiffe://<trust-domain>/agent/<name>."`
	Owner   []string `required:"" help:"Owner accountable for the agent: owner id (own_…) or email. At least one; repeat the flag or separate with commas." placeholder:"REF"`
	Purpose string   `required:"" help:"Purpose / business justification: why the agent exists (required)." placeholder:"TEXT"`
	agentSpecFlags
	RequireDPoP bool          `name:"require-dpop" help:"Issue the agent only DPoP-bound tokens (RFC 9449): a token request without a DPoP proof is refused."`
	MaxTTL      time.Duration `name:"max-ttl" help:"Longest lifetime of a credential issued to the agent, in whole seconds (default: the server's, 15m)." placeholder:"DURATION"`
	ExpiresAt   *time.Time    `name:"expires-at" xor:"expiry" help:"Time (RFC 3339) after which the agent gets no credentials." placeholder:"TIME"`
	ExpiresIn   time.Duration `name:"expires-in" xor:"expiry" help:"Expire the agent this long from now (e.g. 720h)." placeholder:"DURATION"`
}

func (c *agentCreateCmd) Run(rc *runContext) error {
	req := admin.CreateAgentRequest{
		Name:          c.Name,
		Purpose:       c.Purpose,
		Owners:        c.Owner,
		ActionClasses: c.ActionClass,
		Audiences:     c.Audience,
		Scopes:        c.Scope,
		Permissions:   c.Permission,
		RequireDPoP:   c.RequireDPoP,
		FederatesWith: c.FederatesWith,
		Selectors:     c.Selector,
	}
	var err error
	if req.AttestationRules, err = parseAttestRules(c.Attest); err != nil {
		return err
	}
	if req.NodeScope, err = c.nodeScope(); err != nil {
		return err
	}
	if req.MaxTTLSeconds, err = ttlSeconds("--max-ttl", c.MaxTTL); err != nil {
		return err
	}
	if len(c.Label) > 0 {
		if req.Labels, err = parseLabels(c.Label); err != nil {
			return err
		}
	}
	if req.ExpiresAt, err = expiry(c.ExpiresAt, c.ExpiresIn); err != nil {
		return err
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	a, err := cl.CreateAgent(rc.ctx, req)
	if err != nil {
		return fmt.Errorf("create agent %q: %w", c.Name, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(a)
	}
	rc.printf("Agent %s created.\n\n", a.Name)
	return rc.printAgent(a)
}

type agentListCmd struct {
	State    string `help:"Only agents in this state: active, suspended or deprovisioned." enum:"active,suspended,deprovisioned," default:"" placeholder:"STATE"`
	Owner    string `help:"Only agents owned by this owner (id or email)." placeholder:"REF"`
	Orphaned bool   `help:"Only orphaned agents: every owner deactivated."`
	pageFlags
}

func (c *agentListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	fetch := func(tok string) (admin.List[admin.Agent], error) {
		l, err := cl.ListAgents(rc.ctx, admin.ListAgentsParams{
			State: c.State, Owner: c.Owner, Orphaned: c.Orphaned, PageSize: c.PageSize, PageToken: tok,
		})
		if err != nil {
			return l, fmt.Errorf("list agents: %w", err)
		}
		return l, nil
	}
	return listPages(rc, c.pageFlags, fetch,
		[]string{"NAME", "ID", "STATE", "OWNERS", "ORPHANED", "EXPIRES", "MAX TTL", "VERSION"},
		func(a admin.Agent) []string {
			return []string{a.Name, a.ID, a.State, strings.Join(a.Owners, ","), yesNo(a.Orphaned),
				agentExpiry(a), fmtSeconds(a.MaxTTLSeconds), strconv.FormatInt(a.Version, 10)}
		})
}

type agentShowCmd struct {
	agentRefArg
}

func (c *agentShowCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	a, err := cl.GetAgent(rc.ctx, c.Ref)
	if err != nil {
		return fmt.Errorf("show agent %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(a)
	}
	return rc.printAgent(a)
}

type agentUpdateCmd struct {
	agentRefArg
	Purpose *string  `help:"New purpose / business justification." placeholder:"TEXT"`
	Owner   []string `help:"Replace the owners with these (ids or emails). Repeat the flag or separate with commas." placeholder:"REF"`
	agentSpecFlags
	ClearActionClasses bool           `name:"clear-action-classes" help:"Remove every action class (with --action-class: replace them)."`
	ClearAudiences     bool           `name:"clear-audiences" help:"Remove every audience."`
	ClearScopes        bool           `name:"clear-scopes" help:"Remove every scope."`
	ClearPermissions   bool           `name:"clear-permissions" help:"Remove every permission."`
	ClearFederatesWith bool           `name:"clear-federates-with" help:"Federate with no foreign trust domain."`
	ClearSelectors     bool           `name:"clear-selectors" help:"Remove every workload selector: no workload gets the agent's SVIDs from a node."`
	ClearAttest        bool           `name:"clear-attest" help:"Remove every attestation rule: no evidence proves an instance of the agent."`
	ClearNodeScope     bool           `name:"clear-node-scope" help:"Remove the node scope: every node may obtain the agent's SVIDs (with --node-id or --node-rule: replace the whole scope with theirs)."`
	RequireDPoP        *bool          `name:"require-dpop" negatable:"" help:"Require DPoP-bound tokens (--no-require-dpop: no longer require them)."`
	ClearLabels        bool           `name:"clear-labels" help:"Remove every label."`
	MaxTTL             *time.Duration `name:"max-ttl" help:"New longest credential lifetime, in whole seconds." placeholder:"DURATION"`
	ExpiresAt          *time.Time     `name:"expires-at" xor:"expiry" help:"New expiry time (RFC 3339)." placeholder:"TIME"`
	ExpiresIn          time.Duration  `name:"expires-in" xor:"expiry" help:"Expire the agent this long from now." placeholder:"DURATION"`
	IfVersion          int64          `name:"if-version" help:"Apply only if the agent is still at this version (from agent show); the server refuses a stale version with a conflict." placeholder:"N"`
	ExternalID         *string        `name:"external-id" help:"New provisioning id of the agent (its SCIM externalId, as the identity provider knows it); \"\" clears it." placeholder:"ID"`
}

// Help adds the update semantics to the command's help.
func (c *agentUpdateCmd) Help() string {
	return "List flags (--owner, --action-class, --audience, --scope, --permission, --federates-with, --selector, --attest, --label) replace the whole list or map; " +
		"--node-id and --node-rule together replace the whole node scope (giving only --node-id removes its rules); " +
		"flags not given leave the field unchanged."
}

func (c *agentUpdateCmd) Run(rc *runContext) error {
	req := admin.UpdateAgentRequest{Version: c.IfVersion, Purpose: c.Purpose, ExternalID: c.ExternalID}
	if c.Owner != nil {
		req.Owners = &c.Owner
	}
	req.ActionClasses = replaceList(c.ActionClass, c.ClearActionClasses)
	req.Audiences = replaceList(c.Audience, c.ClearAudiences)
	req.Scopes = replaceList(c.Scope, c.ClearScopes)
	req.Permissions = replaceList(c.Permission, c.ClearPermissions)
	req.FederatesWith = replaceList(c.FederatesWith, c.ClearFederatesWith)
	req.Selectors = replaceList(c.Selector, c.ClearSelectors)
	req.RequireDPoP = c.RequireDPoP
	if c.Attest != nil || c.ClearAttest {
		rs, err := parseAttestRules(c.Attest)
		if err != nil {
			return err
		}
		req.AttestationRules = &rs
	}
	sc, err := c.nodeScope()
	if err != nil {
		return err
	}
	if sc == nil && c.ClearNodeScope {
		sc = &admin.NodeScope{NodeIDs: []string{}, Rules: []admin.AttestationRule{}}
	}
	req.NodeScope = sc
	// One half of the scope given: keep the other half, read from the
	// agent, with the update conditional on the version read.
	keepIDs, keepRules := sc != nil && !c.ClearNodeScope && c.NodeID == nil, sc != nil && !c.ClearNodeScope && c.NodeRule == nil
	if c.Label != nil || c.ClearLabels {
		m, err := parseLabels(c.Label)
		if err != nil {
			return err
		}
		req.Labels = &m
	}
	if c.MaxTTL != nil {
		s, err := ttlSeconds("--max-ttl", *c.MaxTTL)
		if err != nil {
			return err
		}
		if s == 0 {
			return &exitError{code: ExitUsage, msg: "--max-ttl: want a positive duration"}
		}
		req.MaxTTLSeconds = &s
	}
	if req.ExpiresAt, err = expiry(c.ExpiresAt, c.ExpiresIn); err != nil {
		return err
	}
	if req.Purpose == nil && req.Owners == nil && req.ActionClasses == nil && req.Audiences == nil &&
		req.Scopes == nil && req.Permissions == nil && req.RequireDPoP == nil && req.FederatesWith == nil &&
		req.Selectors == nil && req.AttestationRules == nil && req.NodeScope == nil && req.Labels == nil && req.MaxTTLSeconds == nil && req.ExpiresAt == nil &&
		req.ExternalID == nil {
		return &exitError{code: ExitUsage, msg: "agent update: nothing to change; give at least one of the field flags (see --help)"}
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	if keepIDs || keepRules {
		cur, err := cl.GetAgent(rc.ctx, c.Ref)
		if err != nil {
			return fmt.Errorf("update agent %q: read its node scope: %w", c.Ref, err)
		}
		if keepIDs {
			sc.NodeIDs = cur.NodeScope.NodeIDs
		}
		if keepRules {
			sc.Rules = cur.NodeScope.Rules
		}
		if req.Version == 0 {
			req.Version = cur.Version
		}
	}
	a, err := cl.UpdateAgent(rc.ctx, c.Ref, req)
	if err != nil {
		return fmt.Errorf("update agent %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(a)
	}
	rc.printf("Agent %s updated.\n\n", a.Name)
	return rc.printAgent(a)
}

// transitionFlags are the flags of the lifecycle commands.
type transitionFlags struct {
	agentRefArg
	Reason    string `help:"Why; recorded in the audit trail." placeholder:"TEXT"`
	IfVersion int64  `name:"if-version" help:"Apply only if the agent is still at this version." placeholder:"N"`
}

func (f transitionFlags) request() admin.TransitionRequest {
	return admin.TransitionRequest{Version: f.IfVersion, Reason: f.Reason}
}

type agentSuspendCmd struct{ transitionFlags }

func (c *agentSuspendCmd) Run(rc *runContext) error {
	return c.run(rc, "suspend", (*admin.Client).SuspendAgent)
}

type agentResumeCmd struct{ transitionFlags }

func (c *agentResumeCmd) Run(rc *runContext) error {
	return c.run(rc, "resume", (*admin.Client).ResumeAgent)
}

type agentDeprovisionCmd struct{ transitionFlags }

func (c *agentDeprovisionCmd) Run(rc *runContext) error {
	return c.run(rc, "deprovision", (*admin.Client).DeprovisionAgent)
}

type agentTransition func(*admin.Client, context.Context, string, admin.TransitionRequest) (admin.Agent, error)

func (f transitionFlags) run(rc *runContext, verb string, call agentTransition) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	a, err := call(cl, rc.ctx, f.Ref, f.request())
	if err != nil {
		return fmt.Errorf("%s agent %q: %w", verb, f.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(a)
	}
	rc.printf("Agent %s (%s) is now %s (version %d).\n", a.Name, a.ID, a.State, a.Version)
	return nil
}

// printAgent writes the detail view of an agent, with orphaned, expired and
// deprovisioned agents flagged above it.
func (rc *runContext) printAgent(a admin.Agent) error {
	if a.Orphaned {
		rc.printf("WARNING: ORPHANED: every owner of this agent is deactivated; give it an active owner with `agentid agent update %s --owner REF`.\n", a.Name)
	}
	if a.Expired {
		rc.printf("WARNING: EXPIRED at %s: the agent gets no credentials.\n", fmtTimePtr(a.ExpiresAt))
	}
	if a.State == "deprovisioned" {
		rc.printf("NOTE: DEPROVISIONED: this agent has ended for good; its name stays reserved.\n")
	}
	if a.Orphaned || a.Expired || a.State == "deprovisioned" {
		rc.printf("\n")
	}
	return rc.printFields([]field{
		{"Name", a.Name},
		{"ID", a.ID},
		{"Client ID", a.ClientID},
		{"SPIFFE ID", a.SPIFFEID},
		{"State", a.State},
		{"Owners", strings.Join(a.Owners, ", ")},
		{"Orphaned", yesNo(a.Orphaned)},
		{"Purpose", a.Purpose},
		{"Action classes", strings.Join(a.ActionClasses, ", ")},
		{"Audiences", strings.Join(a.Audiences, ", ")},
		{"Scopes", strings.Join(a.Scopes, " ")},
		{"Permissions", strings.Join(a.Permissions, ", ")},
		{"Require DPoP", yesNo(a.RequireDPoP)},
		{"Federates with", strings.Join(a.FederatesWith, ", ")},
		{"Selectors", strings.Join(a.Selectors, ", ")},
		{"Attestation", fmtRules(a.AttestationRules)},
		{"Node scope", fmtNodeScope(a.NodeScope)},
		{"Max TTL", fmtSeconds(a.MaxTTLSeconds)},
		{"Labels", fmtLabels(a.Labels)},
		{"Expires", agentExpiry(a)},
		{"Tokens revoked", tokensRevoked(a)},
		{"External ID", a.ExternalID},
		{"Created by", a.CreatedBy},
		{"Created", fmtTime(a.CreatedAt)},
		{"Updated", fmtTime(a.UpdatedAt)},
		{"Version", strconv.FormatInt(a.Version, 10)},
	})
}

// fmtNodeScope renders a node scope as its node ids and rules, any of
// which admits a node: "nod_…; prod: m1, m2"; "any node" when empty.
func fmtNodeScope(sc admin.NodeScope) string {
	if len(sc.NodeIDs) == 0 && len(sc.Rules) == 0 {
		return "any node"
	}
	parts := slices.Clone(sc.NodeIDs)
	if len(sc.Rules) > 0 {
		parts = append(parts, fmtRules(sc.Rules))
	}
	return strings.Join(parts, "; ")
}

// tokensRevoked renders an agent's token revocation time.
func tokensRevoked(a admin.Agent) string {
	if a.TokensRevokedAt == nil {
		return ""
	}
	return "issued at or before " + fmtTime(*a.TokensRevokedAt)
}

// agentExpiry renders an agent's expiry, marking it when passed.
func agentExpiry(a admin.Agent) string {
	s := fmtTimePtr(a.ExpiresAt)
	if a.Expired {
		if s == "" {
			return "EXPIRED"
		}
		return s + " (EXPIRED)"
	}
	return s
}

// replaceList is the PATCH value of a list flag: nil (unchanged) unless the
// flag or its --clear flag was given.
func replaceList(vals []string, clearAll bool) *[]string {
	if vals == nil && !clearAll {
		return nil
	}
	if vals == nil {
		vals = []string{}
	}
	return &vals
}

// ttlSeconds converts a duration flag to whole seconds; 0 stays 0.
func ttlSeconds(flag string, d time.Duration) (int64, error) {
	if d < 0 || d%time.Second != 0 {
		return 0, &exitError{code: ExitUsage, msg: fmt.Sprintf("%s %s: want a positive number of whole seconds", flag, d)}
	}
	return int64(d / time.Second), nil
}

// expiry resolves --expires-at / --expires-in; nil when neither was given.
func expiry(at *time.Time, in time.Duration) (*time.Time, error) {
	switch {
	case at != nil:
		t := at.UTC()
		return &t, nil
	case in < 0:
		return nil, &exitError{code: ExitUsage, msg: "--expires-in: want a positive duration"}
	case in > 0:
		t := time.Now().Add(in).UTC().Truncate(time.Second)
		return &t, nil
	default:
		return nil, nil
	}
}
