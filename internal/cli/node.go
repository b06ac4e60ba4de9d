package cli

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

type nodeCmd struct {
	Token nodeTokenCmd `cmd:"" help:"Create, list and revoke the single-use join tokens with which nodes attest."`
	List  nodeListCmd  `cmd:"" help:"List the nodes (hosts running agentid node) that attested."`
	Show  nodeShowCmd  `cmd:"" help:"Show a node and its current SVID."`
	Evict nodeEvictCmd `cmd:"" help:"Evict a node for good: it can no longer renew its SVID."`
	Run   nodeRunCmd   `cmd:"" help:"Run the node on this host: attest, then serve the SPIFFE Workload API on a Unix socket."`
}

type nodeTokenCmd struct {
	Create nodeTokenCreateCmd `cmd:"" help:"Create a single-use join token and print it, once."`
	Revoke nodeTokenRevokeCmd `cmd:"" help:"Revoke an unused join token so that no node can attest with it."`
	List   nodeTokenListCmd   `cmd:"" help:"List the join tokens the server keeps, with their states (never the tokens)."`
}

type nodeTokenCreateCmd struct {
	TTL time.Duration `name:"ttl" default:"10m" help:"How long the token may be used: 1m to 24h, whole seconds." placeholder:"DURATION"`
}

// Help says what comes out.
func (c *nodeTokenCreateCmd) Help() string {
	return "One node may attest with the token, once, before it expires; only its hash is kept. " +
		`With -o json the output is {"id", "token", "expires_at"}.`
}

func (c *nodeTokenCreateCmd) Run(rc *runContext) error {
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
	t, err := cl.CreateJoinToken(rc.ctx, admin.CreateJoinTokenRequest{TTLSeconds: secs})
	if err != nil {
		return fmt.Errorf("create join token: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(t)
	}
	rc.printf("Join token %s created; it expires at %s.\n\n", t.ID, fmtTime(t.ExpiresAt))
	rc.printf("Token (shown only this once; it cannot be retrieved again):\n\n    %s\n\n", t.Token)
	rc.printf("Warning: whoever holds this token can attest one node into the trust domain until it is used\n" +
		"or expires. Hand it to the node's host over a secure channel, and keep it out of logs and shell history.\n")
	return nil
}

type nodeTokenRevokeCmd struct {
	ID string `arg:"" name:"id" help:"The join token's id (njt_…), as create printed it."`
}

// Help says which tokens can be revoked.
func (c *nodeTokenRevokeCmd) Help() string {
	return "Only an unused token that has not expired can be revoked; revoking one that was used, revoked or " +
		"has expired fails (exit 1) and changes nothing. To remove a node that attested, evict it (node evict). " +
		`With -o json the output is {"id", "created_by", "created_at", "expires_at", "revoked_at", "revoked_by"}.`
}

func (c *nodeTokenRevokeCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	t, err := cl.RevokeJoinToken(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("revoke join token %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(t)
	}
	rc.printf("Join token %s revoked at %s: no node can attest with it.\n", t.ID, fmtTime(t.RevokedAt))
	return nil
}

type nodeTokenListCmd struct {
	State string `help:"Only tokens in this state: unused, used, revoked or expired." enum:"unused,used,revoked,expired," default:"" placeholder:"STATE"`
	pageFlags
}

// Help says which tokens are listed.
func (c *nodeTokenListCmd) Help() string {
	return "Tokens are listed in creation order; unused ones can still attest a node. A token is kept until a day " +
		"after its expiry, then collected. Who revoked a token is in its join_token.revoked audit event. " +
		`With -o json each item is {"id", "state", "created_at", "created_by", "expires_at", "used_at", "node_id"}.`
}

func (c *nodeTokenListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	fetch := func(tok string) (admin.List[admin.NodeJoinTokenStatus], error) {
		l, err := cl.ListJoinTokens(rc.ctx, admin.ListJoinTokensParams{State: c.State, PageSize: c.PageSize, PageToken: tok})
		if err != nil {
			return l, fmt.Errorf("list join tokens: %w", err)
		}
		return l, nil
	}
	return listPages(rc, c.pageFlags, fetch,
		[]string{"ID", "STATE", "CREATED", "CREATED BY", "EXPIRES", "NODE"},
		func(t admin.NodeJoinTokenStatus) []string {
			return []string{t.ID, t.State, fmtTime(t.CreatedAt), t.CreatedBy, fmtTime(t.ExpiresAt), t.NodeID}
		})
}

type nodeListCmd struct {
	State string `help:"Only nodes in this state: active or evicted." enum:"active,evicted," default:"" placeholder:"STATE"`
	pageFlags
}

func (c *nodeListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	fetch := func(tok string) (admin.List[admin.Node], error) {
		l, err := cl.ListNodes(rc.ctx, admin.ListNodesParams{State: c.State, PageSize: c.PageSize, PageToken: tok})
		if err != nil {
			return l, fmt.Errorf("list nodes: %w", err)
		}
		return l, nil
	}
	return listPages(rc, c.pageFlags, fetch,
		[]string{"ID", "STATE", "SPIFFE ID", "ATTESTED", "LAST SEEN", "SVID EXPIRES"},
		func(n admin.Node) []string {
			return []string{n.ID, n.State, n.SPIFFEID, fmtTime(n.AttestedAt), fmtTime(n.LastSeenAt), svidExpiry(n)}
		})
}

// svidExpiry renders when a node's SVID expires, marked once it has.
func svidExpiry(n admin.Node) string {
	s := fmtTime(n.SVIDExpiresAt)
	if n.SVIDExpired {
		s += " (EXPIRED)"
	}
	return s
}

// nodeIDArg is the node a command acts on.
type nodeIDArg struct {
	ID string `arg:"" name:"id" help:"The node's id (nod_…, from node list)."`
}

type nodeShowCmd struct {
	nodeIDArg
}

func (c *nodeShowCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	n, err := cl.GetNode(rc.ctx, c.ID)
	if err != nil {
		return fmt.Errorf("show node %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(n)
	}
	return rc.printNode(n)
}

func (rc *runContext) printNode(n admin.Node) error {
	return rc.printFields([]field{
		{"ID", n.ID},
		{"SPIFFE ID", n.SPIFFEID},
		{"State", n.State},
		{"Attested", fmtTime(n.AttestedAt) + " (" + n.AttestationMethod + ")"},
		{"Attestor", n.Attestor},
		{"Facts", nodeFacts(n)},
		{"Last seen", fmtTime(n.LastSeenAt)},
		{"SVID serial", n.SVIDSerial},
		{"SVID signed by", n.SVIDKeyID},
		{"SVID expires", svidExpiry(n)},
		{"Evicted", fmtTimePtr(n.EvictedAt)},
		{"Evicted by", n.EvictedBy},
		{"Version", fmt.Sprint(n.Version)},
	})
}

type nodeEvictCmd struct {
	nodeIDArg
	Reason string `help:"Why the node is evicted (recorded in the audit trail)." placeholder:"TEXT"`
}

// Help says what eviction does and does not do.
func (c *nodeEvictCmd) Help() string {
	return "An evicted node can no longer renew its SVID, and stays evicted: to bring the host back, attest it " +
		"anew with a new join token. The SVID it holds is not revoked; it stays valid until it expires (node show)."
}

func (c *nodeEvictCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	n, err := cl.EvictNode(rc.ctx, c.ID, admin.EvictNodeRequest{Reason: c.Reason})
	if err != nil {
		return fmt.Errorf("evict node %q: %w", c.ID, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(n)
	}
	rc.printf("Node %s evicted at %s: it can no longer renew its SVID.\n", n.ID, fmtTimePtr(n.EvictedAt))
	if !n.SVIDExpired {
		rc.printf("Its current SVID (serial %s) is not revoked and stays valid until %s.\n", n.SVIDSerial, fmtTime(n.SVIDExpiresAt))
	}
	return nil
}

// nodeFacts is a node's evidence facts as sorted name=value pairs, a
// multi-valued fact's values joined by "|".
func nodeFacts(n admin.Node) string {
	var out []string
	for k, v := range n.Facts {
		out = append(out, k+"="+v)
	}
	for k, vs := range n.FactValues {
		out = append(out, k+"="+strings.Join(vs, "|"))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
