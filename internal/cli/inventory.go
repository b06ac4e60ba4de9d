package cli

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/sdk/admin"
)

// inventoryCmd prints the non-human identity inventory (docs/inventory.md).
type inventoryCmd struct {
	Finding        []string `help:"Only agents with this finding (docs/inventory.md lists the codes). Repeat the flag or separate with commas: an agent with any of them is listed." placeholder:"CODE"`
	Owner          string   `help:"Only agents owned by this owner (id or email)." placeholder:"REF"`
	State          string   `help:"Only agents in this state: active, suspended or deprovisioned." enum:"active,suspended,deprovisioned," default:"" placeholder:"STATE"`
	ExpiringWithin string   `name:"expiring-within" help:"Window of credential_expiring and agent_expiring: a duration (72h) or whole days (30d), at most 366d; default 14d." placeholder:"DUR"`
	FailOn         []string `name:"fail-on" help:"Exit 1 when a listed agent has one of these findings (for CI). Repeat the flag or separate with commas." placeholder:"CODE"`
	PageSize       int      `name:"page-size" help:"Agents per request (the server caps it at 200; 0: its default). The command always reads every page." placeholder:"N"`
}

// Help says what the report answers and how it exits.
func (c *inventoryCmd) Help() string {
	return "Every agent identity with its owners, action classes and highest risk tier, the credentials it can use, " +
		"its live instances and active delegation grants, and its findings, then a count of each finding. " +
		"-o json prints the items as one array. The exit code is 0 even with findings, unless --fail-on names one that is present."
}

func (c *inventoryCmd) Run(rc *runContext) error {
	findings, err := findingFlag("--finding", c.Finding)
	if err != nil {
		return err
	}
	failOn, err := findingFlag("--fail-on", c.FailOn)
	if err != nil {
		return err
	}
	var window time.Duration
	if c.ExpiringWithin != "" {
		if window, err = identity.ParseExpiringWithin(c.ExpiringWithin); err != nil {
			return &exitError{code: ExitUsage, msg: fmt.Sprintf("--expiring-within %q: a duration (72h) or whole days (30d), from 1s to 366d", c.ExpiringWithin)}
		}
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	p := admin.InventoryParams{State: c.State, Owner: c.Owner, Findings: findings, ExpiringWithin: window, PageSize: c.PageSize}
	items := []admin.InventoryItem{}
	for {
		if err := rc.ctx.Err(); err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
		l, err := cl.Inventory(rc.ctx, p)
		if err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
		items = append(items, l.Items...)
		if l.NextPageToken == "" {
			break
		}
		if l.NextPageToken == p.PageToken {
			return fmt.Errorf("inventory: the server returned the same page token %q twice", p.PageToken)
		}
		p.PageToken = l.NextPageToken
	}
	if rc.jsonOutput() {
		if err := rc.printJSON(items); err != nil {
			return err
		}
	} else if err := printInventory(rc, items); err != nil {
		return err
	}
	return failOnFindings(items, failOn)
}

// findingFlag validates finding codes given to flag; a bad one is a usage
// error.
func findingFlag(flag string, values []string) ([]string, error) {
	codes, err := identity.ParseFindingCodes(values)
	if err != nil {
		return nil, &exitError{code: ExitUsage, msg: fmt.Sprintf("%s: %s", flag, describeValidation(err))}
	}
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = string(c)
	}
	return out, nil
}

// describeValidation is the reason of a validation error.
func describeValidation(err error) string {
	if ve, ok := errors.AsType[*identity.ValidationError](err); ok {
		return ve.Reason
	}
	return err.Error()
}

func printInventory(rc *runContext, items []admin.InventoryItem) error {
	t := rc.newTable("NAME", "STATE", "OWNERS", "RISK", "CREDENTIALS", "FINDINGS")
	for _, it := range items {
		codes := make([]string, len(it.Findings))
		for i, f := range it.Findings {
			codes[i] = f.Code
		}
		t.row(it.Name, it.State, inventoryOwners(it.Owners), it.RiskTier, inventoryCredentials(it), strings.Join(codes, ","))
	}
	if err := t.flush(); err != nil {
		return err
	}
	rc.printf("%s\n", inventorySummary(items))
	return nil
}

// inventoryOwners names each owner by email, else display name, else id,
// marking those not active.
func inventoryOwners(owners []admin.InventoryOwner) string {
	parts := make([]string, len(owners))
	for i, o := range owners {
		name := o.ID
		switch {
		case o.Email != "":
			name = o.Email
		case o.DisplayName != "":
			name = o.DisplayName
		}
		if o.State != "active" {
			name += " (" + o.State + ")"
		}
		parts[i] = name
	}
	return strings.Join(parts, ", ")
}

// inventoryCredentials summarises the usable credentials: "2 keys, 1
// secret, 1 rule, 1 selector, dpop", or "none".
func inventoryCredentials(it admin.InventoryItem) string {
	c := it.Credentials
	var parts []string
	count := func(n int, one string) {
		switch n {
		case 0:
		case 1:
			parts = append(parts, "1 "+one)
		default:
			parts = append(parts, strconv.Itoa(n)+" "+one+"s")
		}
	}
	count(c.ClientKeys.Count, "key")
	count(c.ClientSecrets.Count, "secret")
	count(c.AttestationRules.Count, "rule")
	count(c.Selectors, "selector")
	if c.RequireDPoP {
		parts = append(parts, "dpop")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// findingCounts counts the agents with each finding code, in the order of
// identity.FindingCodes and then, for codes this binary does not know,
// by name.
func findingCounts(items []admin.InventoryItem) ([]string, map[string]int) {
	counts := map[string]int{}
	for _, it := range items {
		for _, f := range it.Findings {
			counts[f.Code]++
		}
	}
	var order, unknown []string
	for _, c := range identity.FindingCodes() {
		if counts[string(c)] > 0 {
			order = append(order, string(c))
		}
	}
	for c := range counts {
		if !slices.Contains(order, c) {
			unknown = append(unknown, c)
		}
	}
	slices.Sort(unknown)
	return append(order, unknown...), counts
}

// inventorySummary is the line under the table: "4 agents, 2 with
// findings: orphaned 1, client_secret 1".
func inventorySummary(items []admin.InventoryItem) string {
	with := 0
	for _, it := range items {
		if len(it.Findings) > 0 {
			with++
		}
	}
	agents := plural(len(items), "agent")
	if with == 0 {
		return agents + ", no findings."
	}
	order, counts := findingCounts(items)
	parts := make([]string, len(order))
	for i, c := range order {
		parts[i] = c + " " + strconv.Itoa(counts[c])
	}
	return fmt.Sprintf("%s, %d with findings: %s.", agents, with, strings.Join(parts, ", "))
}

func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + one + "s"
}

// failOnFindings returns an ExitError error when an item has one of the
// codes.
func failOnFindings(items []admin.InventoryItem, codes []string) error {
	if len(codes) == 0 {
		return nil
	}
	order, counts := findingCounts(items)
	var hit []string
	for _, c := range order {
		if slices.Contains(codes, c) {
			hit = append(hit, fmt.Sprintf("%s (%s)", c, plural(counts[c], "agent")))
		}
	}
	if len(hit) == 0 {
		return nil
	}
	return &exitError{code: ExitError, msg: "inventory: findings listed in --fail-on are present: " + strings.Join(hit, ", ")}
}
