package cli

import (
	"fmt"
	"strconv"

	"github.com/agentid/agentid/sdk/admin"
)

type federationCmd struct {
	List    federationListCmd    `cmd:"" help:"List the foreign trust domains agentid federates with and the state of their bundles."`
	Refresh federationRefreshCmd `cmd:"" help:"Fetch a foreign trust domain's bundle from its bundle endpoint now."`
}

type federationListCmd struct{}

// Help says where the trust domains come from.
func (c *federationListCmd) Help() string {
	return "The foreign trust domains are those of the server's `federation:` config. For each: its bundle endpoint, " +
		"the sequence number and authorities of the bundle in use, when it was fetched and is fetched next, and why " +
		"the last fetches failed (the last good bundle stays in use). `agentid bundle show --trust-domain TD` prints a bundle."
}

func (c *federationListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	l, err := cl.ListFederation(rc.ctx)
	if err != nil {
		return fmt.Errorf("list federation: %w", err)
	}
	if l.Items == nil {
		l.Items = []admin.FederatedTrustDomain{}
	}
	if rc.jsonOutput() {
		return rc.printJSON(l)
	}
	if len(l.Items) == 0 {
		rc.printf("No foreign trust domain is configured (the server's config has no federation: entries).\n")
		return nil
	}
	t := rc.newTable("TRUST DOMAIN", "BUNDLE ENDPOINT", "SEQUENCE", "X.509", "JWT", "FETCHED", "NEXT REFRESH", "FAILURES", "LAST ERROR")
	for _, f := range l.Items {
		seq, x5, jwt := "", "", ""
		if f.HasBundle {
			seq, x5, jwt = strconv.FormatUint(f.Sequence, 10), strconv.Itoa(f.X509Authorities), strconv.Itoa(f.JWTAuthorities)
		}
		t.row(f.TrustDomain, f.BundleEndpointURL, seq, x5, jwt, fmtTimePtr(f.FetchedAt), fmtTimePtr(f.RefreshAt),
			strconv.Itoa(f.Failures), f.LastError)
	}
	return t.flush()
}

type federationRefreshCmd struct {
	TrustDomain string `arg:"" name:"trust-domain" help:"The foreign trust domain (agentid federation list names them)."`
}

func (c *federationRefreshCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	f, err := cl.RefreshFederatedBundle(rc.ctx, c.TrustDomain)
	if err != nil {
		return fmt.Errorf("refresh the bundle of %s: %w", quoteArg(c.TrustDomain), err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(f)
	}
	rc.printf("Bundle of %s fetched from %s at %s.\n", f.TrustDomain, f.BundleEndpointURL, fmtTimePtr(f.FetchedAt))
	return rc.printFields([]field{
		{"Sequence", strconv.FormatUint(f.Sequence, 10)},
		{"Refresh hint", fmtSeconds(f.RefreshHintSeconds)},
		{"X.509 authorities", strconv.Itoa(f.X509Authorities)},
		{"JWT authorities", strconv.Itoa(f.JWTAuthorities)},
		{"Next refresh", fmtTimePtr(f.RefreshAt)},
	})
}
