package cli

import (
	"fmt"

	"github.com/agentid/agentid/sdk/admin"
)

type caCmd struct {
	Show   caShowCmd   `cmd:"" help:"Show the X.509 CA's keys, where each is in its life, and their certificates."`
	Rotate caRotateCmd `cmd:"" help:"Create the next CA now (it is in the trust bundle at once and signs after a third of the CA lifetime)."`
	Taint  caTaintCmd  `cmd:"" help:"Mark a CA key compromised: if it signs, a successor signs at once, and nodes re-issue its SVIDs."`
}

type caShowCmd struct {
	All bool `help:"Include removed keys (no longer in the trust bundle)."`
	PEM bool `name:"pem" help:"Print the listed CA certificates (and upstream intermediates) in PEM instead of a table."`
}

// shortFingerprint is the first 16 hex digits of a fingerprint, enough to
// tell keys apart in a table; -o json has it whole.
func shortFingerprint(f string) string {
	if len(f) > 16 {
		return f[:16] + "…"
	}
	return f
}

func (c *caShowCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	ca, err := cl.GetCA(rc.ctx, c.All)
	if err != nil {
		return fmt.Errorf("show CA: %w", err)
	}
	if ca.Items == nil {
		ca.Items = []admin.CAKey{}
	}
	if rc.jsonOutput() {
		return rc.printJSON(ca)
	}
	if c.PEM {
		for _, k := range ca.Items {
			rc.printf("# %s (%s) %s\n# SHA-256 %s\n%s%s", k.ID, k.State, k.Subject, k.Fingerprint, k.Certificate, k.Chain)
		}
		return nil
	}
	signer := "self-signed root certificates"
	if ca.Upstream {
		signer = "certificates signed by the upstream CA"
	}
	rc.printf("CA of trust domain %s: %s.\n\n", ca.TrustDomain, signer)
	t := rc.newTable("KID", "STATE", "TAINTED", "SIGNS FROM", "RETIRES", "REMOVED FROM BUNDLE", "NOT AFTER", "SHA-256")
	for _, k := range ca.Items {
		tainted := ""
		if k.Tainted {
			tainted = fmtTimePtr(k.TaintedAt)
		}
		t.row(k.ID, k.State, tainted, fmtTime(k.ActivateAt), fmtTimePtr(k.RetireAt), fmtTimePtr(k.RemoveAt),
			fmtTime(k.NotAfter), shortFingerprint(k.Fingerprint))
	}
	return t.flush()
}

type caRotateCmd struct{}

func (c *caRotateCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	k, err := cl.RotateCA(rc.ctx)
	if err != nil {
		return fmt.Errorf("rotate CA: %w", err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(k)
	}
	rc.printf("CA key %s created; its certificate (SHA-256 %s) is in the trust bundle now.\n", k.ID, k.Fingerprint)
	rc.printf("It signs from %s; the CA it replaces signs until then and stays in the bundle\n", fmtTime(k.ActivateAt))
	rc.printf("until every SVID it signed has expired. `agentid ca show` shows both.\n")
	return nil
}

type caTaintCmd struct {
	KID string `arg:"" name:"kid" help:"The CA key to taint (agentid ca show lists them)."`
}

// Help explains what a taint does.
func (c *caTaintCmd) Help() string {
	return "A tainted CA key that signs is replaced at once, without the usual prepublication delay, and nodes " +
		"re-issue every SVID it signed. Its certificate stays in the trust bundle until those SVIDs have expired, " +
		"so they keep verifying until then. A pending key is withdrawn: it never signs."
}

func (c *caTaintCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	k, err := cl.TaintCA(rc.ctx, c.KID)
	if err != nil {
		return fmt.Errorf("taint CA key %s: %w", quoteArg(c.KID), err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(k)
	}
	rc.printf("CA key %s tainted at %s (now %s).\n", k.ID, fmtTimePtr(k.TaintedAt), k.State)
	if ca, err := cl.GetCA(rc.ctx, false); err == nil {
		for _, a := range ca.Items {
			if a.State == admin.SigningKeyActive {
				rc.printf("CA key %s signs now.\n", a.ID)
			}
		}
	}
	if k.State == admin.SigningKeyRemoved {
		rc.printf("It had signed nothing and has left the trust bundle.\n")
		return nil
	}
	rc.printf("Nodes re-issue every SVID it signed now; it stays in the trust bundle until %s,\n", fmtTimePtr(k.RemoveAt))
	rc.printf("when those SVIDs have expired.\n")
	return nil
}
