package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/agentid/agentid/sdk/admin"
)

// Commands of attested instances (ADR 0015): agentid agent instances
// NAME, agentid instance show|revoke ID.

type agentInstancesCmd struct {
	agentRefArg
	Live bool `help:"Only instances neither revoked nor expired."`
	pageFlags
}

func (c *agentInstancesCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	fetch := func(tok string) (admin.List[admin.Instance], error) {
		l, err := cl.ListInstances(rc.ctx, c.Ref, admin.ListInstancesParams{Live: c.Live, PageSize: c.PageSize, PageToken: tok})
		if err != nil {
			return l, fmt.Errorf("list instances of %q: %w", c.Ref, err)
		}
		return l, nil
	}
	return listPages(rc, c.pageFlags, fetch,
		[]string{"ID", "STATE", "METHOD", "ATTESTOR", "EVIDENCE", "LAST SEEN", "EXPIRES"},
		func(in admin.Instance) []string {
			return []string{in.ID, instanceState(in), in.Method, in.Attestor, fmtEvidence(in.Evidence, 3),
				fmtTime(in.LastSeenAt), fmtTime(in.ExpiresAt)}
		})
}

// instanceState is live, revoked or expired.
func instanceState(in admin.Instance) string {
	switch {
	case in.RevokedAt != nil:
		return "revoked"
	case in.Live:
		return "live"
	default:
		return "expired"
	}
}

// fmtEvidence renders an evidence summary as sorted key=value pairs, at
// most n of them (0: all).
func fmtEvidence(ev map[string]string, n int) string {
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for i, k := range keys {
		if n > 0 && i == n {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, k+"="+ev[k])
	}
	return strings.Join(parts, " ")
}

type instanceCmd struct {
	Show   instanceShowCmd   `cmd:"" help:"Show one attested instance."`
	Revoke instanceRevokeCmd `cmd:"" help:"Revoke an instance: its tokens are inactive at introspection and it cannot renew. No confirmation is asked."`
}

// instanceIDArg is the instance a command acts on.
type instanceIDArg struct {
	ID string `arg:"" name:"id" help:"The instance's id (ins_…, from agent instances)."`
}

type instanceShowCmd struct {
	instanceIDArg
}

func (c *instanceShowCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	in, err := cl.GetInstance(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("show instance %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(in)
	}
	return rc.printInstance(in)
}

func (rc *runContext) printInstance(in admin.Instance) error {
	return rc.printFields([]field{
		{"ID", in.ID},
		{"Agent", in.AgentID},
		{"State", instanceState(in)},
		{"Method", in.Method},
		{"Attestor", in.Attestor},
		{"Key", in.Key},
		{"Evidence", fmtEvidence(in.Evidence, 0)},
		{"Source", in.SourceIP},
		{"First seen", fmtTime(in.FirstSeenAt)},
		{"Last seen", fmtTime(in.LastSeenAt)},
		{"Expires", fmtTime(in.ExpiresAt)},
		{"Revoked", fmtTimePtr(in.RevokedAt)},
		{"Revoked by", in.RevokedBy},
		{"Version", fmt.Sprint(in.Version)},
	})
}

type instanceRevokeCmd struct {
	instanceIDArg
}

func (c *instanceRevokeCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	in, err := cl.RevokeInstance(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("revoke instance %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(in)
	}
	rc.printf("Instance %s revoked at %s: its tokens are inactive at introspection and it cannot renew.\n", in.ID, fmtTimePtr(in.RevokedAt))
	return nil
}

// parseAttestRules reads --attest values: "ATTESTOR MATCHER [MATCHER…]",
// separated by spaces, e.g. "prod k8s:ns:payments k8s:sa:runner".
func parseAttestRules(vals []string) ([]admin.AttestationRule, error) {
	out := []admin.AttestationRule{}
	for _, v := range vals {
		f := strings.Fields(v)
		if len(f) < 2 {
			return nil, &exitError{code: ExitUsage, msg: fmt.Sprintf("--attest %q: want \"ATTESTOR MATCHER [MATCHER…]\", e.g. \"prod k8s:ns:payments k8s:sa:runner\"", v)}
		}
		out = append(out, admin.AttestationRule{Attestor: f[0], Matchers: f[1:]})
	}
	return out, nil
}

// fmtRules renders attestation rules as "attestor: m1, m2; …".
func fmtRules(rs []admin.AttestationRule) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, r.Attestor+": "+strings.Join(r.Matchers, ", "))
	}
	return strings.Join(parts, "; ")
}
