package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/agentid/agentid/sdk/admin"
)

// maxPolicyFile bounds a policy or cases file read by the CLI.
const maxPolicyFile = 2 << 20

type policyCmd struct {
	Apply    policyApplyCmd    `cmd:"" help:"Upload a Cedar policy file as the next version and activate it."`
	Test     policyTestCmd     `cmd:"" help:"Check a Cedar policy file and evaluate test cases with it, without applying it."`
	Diff     policyDiffCmd     `cmd:"" help:"Show how two policy versions, or a file and the active version, differ by policy @id."`
	History  policyHistoryCmd  `cmd:"" help:"List the policy versions, newest first."`
	Show     policyShowCmd     `cmd:"" help:"Print a policy version's Cedar text."`
	Rollback policyRollbackCmd `cmd:"" help:"Activate an earlier policy version again."`
}

// readFile reads a file named on the command line, bounded.
func readFile(flag, path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // the operator names the file
	if err != nil {
		return nil, &exitError{code: ExitUsage, msg: fmt.Sprintf("%s: %v", flag, err)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return nil, &exitError{code: ExitUsage, msg: fmt.Sprintf("%s: %v", flag, err)}
	}
	if len(b) > maxPolicyFile {
		return nil, &exitError{code: ExitUsage, msg: fmt.Sprintf("%s: the file exceeds %d bytes", flag, maxPolicyFile)}
	}
	return b, nil
}

type policyApplyCmd struct {
	File    string `arg:"" help:"The Cedar policy file." placeholder:"FILE"`
	Comment string `help:"Why this version: kept with it and on the audit event." placeholder:"TEXT"`
	DryRun  bool   `help:"Apply nothing: check the file and replay the most recent recorded decisions against it, reporting those it would change."`
	Replay  int    `help:"With --dry-run, how many recent decisions to replay (default 1000, at most 10000)." placeholder:"N"`
}

// Help says what the server checks.
func (c *policyApplyCmd) Help() string {
	return "The file is parsed and validated against the schema built from the action classes; every problem is " +
		"reported as line:column and nothing is applied. Every policy needs an @id(\"…\") annotation; " +
		"@decision(\"conditional\") on a permit makes its allow conditional (docs/decisions.md)."
}

func (c *policyApplyCmd) Run(rc *runContext) error {
	text, err := readFile("FILE", c.File)
	if err != nil {
		return err
	}
	if c.Replay != 0 && !c.DryRun {
		return &exitError{code: ExitUsage, msg: "--replay needs --dry-run"}
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	if c.DryRun {
		return dryRun(rc, cl, string(text), c.Replay)
	}
	v, err := cl.ApplyPolicy(rc.ctx, admin.ApplyPolicyRequest{Text: string(text), Comment: c.Comment})
	if err != nil {
		return fmt.Errorf("apply policy: %w", err)
	}
	if rc.jsonOutput() {
		v.Text = ""
		return rc.printJSON(v)
	}
	rc.printf("Policy version %d applied and active: %d policies (%s).\n", v.Version, len(v.PolicyIDs), strings.Join(v.PolicyIDs, ", "))
	return nil
}

type policyTestCmd struct {
	File  string `arg:"" help:"The Cedar policy file." placeholder:"FILE"`
	Cases string `required:"" help:"A JSON file: an array of {\"name\", \"request\" (an AuthZEN evaluation request), \"expect\" (allow, deny or conditional)}." placeholder:"FILE"`
}

func (c *policyTestCmd) Run(rc *runContext) error {
	text, err := readFile("FILE", c.File)
	if err != nil {
		return err
	}
	raw, err := readFile("--cases", c.Cases)
	if err != nil {
		return err
	}
	var cases []admin.PolicyTestCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		return &exitError{code: ExitUsage, msg: fmt.Sprintf("--cases: not a JSON array of cases: %v", err)}
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	rep, err := cl.TestPolicy(rc.ctx, admin.PolicyTestRequest{Text: string(text), Cases: cases})
	if err != nil {
		return fmt.Errorf("test policy: %w", err)
	}
	if rc.jsonOutput() {
		if err := rc.printJSON(rep); err != nil {
			return err
		}
	} else {
		t := rc.newTable("CASE", "EXPECT", "GOT", "POLICIES", "RESULT")
		for i, r := range rep.Results {
			name := r.Name
			if name == "" {
				name = "#" + strconv.Itoa(i+1)
			}
			got, result := r.Decision, "pass"
			if r.Error != "" {
				got = "error: " + r.Error
			}
			if !r.Pass {
				result = "FAIL"
			}
			t.row(name, r.Expect, got, strings.Join(r.PolicyIDs, ","), result)
		}
		if err := t.flush(); err != nil {
			return err
		}
		rc.printf("%d passed, %d failed.\n", rep.Passed, rep.Failed)
	}
	if rep.Failed > 0 {
		return &exitError{code: ExitError, msg: fmt.Sprintf("%d of %d cases failed", rep.Failed, len(rep.Results))}
	}
	return nil
}

type policyDiffCmd struct {
	File   string `arg:"" optional:"" help:"A Cedar policy file to compare with --from (default: the active version)." placeholder:"FILE"`
	From   int64  `help:"The version to compare from (default: the active one)." placeholder:"VERSION"`
	To     int64  `help:"The version to compare to, without FILE (default: the latest)." placeholder:"VERSION"`
	Replay int    `help:"With FILE, also replay the N most recent recorded decisions against it and report those it would change." placeholder:"N"`
}

func (c *policyDiffCmd) Run(rc *runContext) error {
	req := admin.PolicyDiffRequest{From: c.From, To: c.To}
	if c.Replay != 0 && (c.File == "" || c.Replay < 0) {
		return &exitError{code: ExitUsage, msg: "--replay takes a positive count and needs FILE"}
	}
	if c.File != "" {
		if c.To != 0 {
			return &exitError{code: ExitUsage, msg: "give FILE or --to, not both"}
		}
		text, err := readFile("FILE", c.File)
		if err != nil {
			return err
		}
		req.Text = string(text)
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	d, err := cl.DiffPolicies(rc.ctx, req)
	if err != nil {
		return fmt.Errorf("diff policies: %w", err)
	}
	if rc.jsonOutput() && c.Replay > 0 {
		rep, err := cl.DryRunPolicy(rc.ctx, admin.PolicyDryRunRequest{Text: req.Text, Last: c.Replay})
		if err != nil {
			return fmt.Errorf("dry run: %w", err)
		}
		return rc.printJSON(struct {
			Diff   admin.PolicyDiff   `json:"diff"`
			DryRun admin.PolicyDryRun `json:"dry_run"`
		}{d, rep})
	}
	if rc.jsonOutput() {
		return rc.printJSON(d)
	}
	to := "the file"
	if c.File == "" {
		to = "version " + strconv.FormatInt(d.To, 10)
	}
	rc.printf("From version %d to %s: %d added, %d removed, %d changed.\n", d.From, to, len(d.Added), len(d.Removed), len(d.Changed))
	for _, id := range d.Removed {
		rc.printf("\n- %s\n%s", id, indent("- ", d.FromText[id]))
	}
	for _, id := range d.Added {
		rc.printf("\n+ %s\n%s", id, indent("+ ", d.ToText[id]))
	}
	for _, id := range d.Changed {
		rc.printf("\n~ %s\n%s%s", id, indent("- ", d.FromText[id]), indent("+ ", d.ToText[id]))
	}
	if c.Replay > 0 {
		rc.printf("\n")
		return dryRun(rc, cl, req.Text, c.Replay)
	}
	return nil
}

// dryRun replays recent recorded decisions against text and prints those
// it would change; nothing is applied.
func dryRun(rc *runContext, cl *admin.Client, text string, last int) error {
	rep, err := cl.DryRunPolicy(rc.ctx, admin.PolicyDryRunRequest{Text: text, Last: last})
	if err != nil {
		return fmt.Errorf("dry run: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(rep)
	}
	rc.printf("Dry run against version %d: %d recorded decisions read, %d replayed, %d skipped; %d would change. Nothing applied.\n",
		rep.ActiveVersion, rep.Examined, rep.Replayed, rep.Skipped, len(rep.Changed))
	if len(rep.Changed) == 0 {
		return nil
	}
	t := rc.newTable("TIME", "EVENT", "SUBJECT", "ACTION", "RESOURCE", "NOW", "WOULD BE", "POLICIES")
	for _, ch := range rep.Changed {
		subject := ch.Agent
		if ch.User != "" {
			subject = "user:" + ch.User
		}
		t.row(fmtTime(ch.Time), ch.EventID, subject, ch.Action, ch.ResourceType+"/"+ch.ResourceID,
			ch.Current, ch.Candidate, strings.Join(ch.CandidatePolicyIDs, ","))
	}
	return t.flush()
}

// indent prefixes every line of s.
func indent(prefix, s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}

type policyHistoryCmd struct {
	pageFlags
}

func (c *policyHistoryCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	fetch := func(tok string) (admin.List[admin.PolicyVersion], error) {
		h, err := cl.PolicyHistory(rc.ctx, c.PageSize, tok)
		if err != nil {
			return admin.List[admin.PolicyVersion]{}, fmt.Errorf("policy history: %w", err)
		}
		return admin.List[admin.PolicyVersion]{Items: h.Items, NextPageToken: h.NextPageToken}, nil
	}
	return listPages(rc, c.pageFlags, fetch,
		[]string{"VERSION", "ACTIVE", "CREATED", "AUTHOR", "POLICIES", "COMMENT"},
		func(v admin.PolicyVersion) []string {
			return []string{strconv.FormatInt(v.Version, 10), yesNo(v.Active), fmtTime(v.CreatedAt), v.Author,
				strconv.Itoa(len(v.PolicyIDs)), v.Comment}
		})
}

type policyShowCmd struct {
	Version int64 `arg:"" help:"The version number." placeholder:"VERSION"`
}

func (c *policyShowCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	v, err := cl.GetPolicyVersion(rc.ctx, c.Version)
	if err != nil {
		return fmt.Errorf("show policy version: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(v)
	}
	rc.printf("%s", v.Text)
	return nil
}

type policyRollbackCmd struct {
	Version int64 `arg:"" help:"The version to activate again." placeholder:"VERSION"`
}

func (c *policyRollbackCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	v, err := cl.RollbackPolicy(rc.ctx, c.Version)
	if err != nil {
		return fmt.Errorf("roll back policy: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(v)
	}
	rc.printf("Policy version %d is active again.\n", v.Version)
	return nil
}

type actionClassCmd struct {
	List actionClassListCmd `cmd:"" help:"List the action classes, their risk tiers and actions."`
	Set  actionClassSetCmd  `cmd:"" help:"Create an action class or change one."`
}

type actionClassListCmd struct{}

func (c *actionClassListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	l, err := cl.ListActionClasses(rc.ctx)
	if err != nil {
		return fmt.Errorf("list action classes: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(l)
	}
	t := rc.newTable("NAME", "RISK TIER", "ACTIONS", "DESCRIPTION")
	for _, c := range l.Items {
		t.row(c.Name, c.RiskTier, strings.Join(c.Actions, ","), c.Description)
	}
	return t.flush()
}

type actionClassSetCmd struct {
	Name        string   `arg:"" help:"The class name: a lowercase token." placeholder:"NAME"`
	RiskTier    string   `name:"risk-tier" help:"low, medium or high (required for a new class)." enum:"low,medium,high," default:"" placeholder:"TIER"`
	Description *string  `help:"What the class covers." placeholder:"TEXT"`
	Actions     []string `name:"action" help:"An action of the class; repeat the flag. Replaces the class's actions." placeholder:"ACTION"`
	NoActions   bool     `name:"no-actions" help:"Remove every action from the class."`
}

func (c *actionClassSetCmd) Run(rc *runContext) error {
	req := admin.SetActionClassRequest{Description: c.Description}
	if c.RiskTier != "" {
		req.RiskTier = &c.RiskTier
	}
	switch {
	case c.NoActions && len(c.Actions) > 0:
		return &exitError{code: ExitUsage, msg: "give --action or --no-actions, not both"}
	case c.NoActions:
		req.Actions = &[]string{}
	case len(c.Actions) > 0:
		acts := append([]string(nil), c.Actions...)
		sort.Strings(acts)
		req.Actions = &acts
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	ac, err := cl.SetActionClass(rc.ctx, c.Name, req)
	if err != nil {
		return fmt.Errorf("set action class: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(ac)
	}
	return rc.printFields([]field{
		{"Name", ac.Name}, {"Risk tier", ac.RiskTier}, {"Actions", strings.Join(ac.Actions, ", ")},
		{"Description", ac.Description}, {"Version", strconv.FormatInt(ac.Version, 10)},
	})
}
