package cli

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

type bundleCmd struct {
	Show bundleShowCmd `cmd:"" help:"Show the trust domain's SPIFFE trust bundle as the bundle endpoint (/spiffe/bundle) serves it, or a federated trust domain's."`
}

type bundleShowCmd struct {
	TrustDomain string `name:"trust-domain" help:"Show the stored bundle of this federated (foreign) trust domain instead, as last fetched from its bundle endpoint." placeholder:"TD"`
}

// Help says what comes out.
func (c *bundleShowCmd) Help() string {
	return "Prints the bundle's sequence number and refresh hint and a table of its authorities: " +
		"the CA certificates that verify X.509-SVIDs (x509-svid) and the keys that verify JWT-SVIDs (jwt-svid). " +
		"With -o json it prints the bundle document itself (SPIFFE Trust Domain and Bundle §4), " +
		"which SPIFFE implementations import (e.g. `spire-server bundle set -format spiffe`). " +
		"With --trust-domain it shows a federated trust domain's bundle as agentid last fetched it (agentid federation list names them)."
}

// bundleDoc is what the table view reads of a bundle document.
type bundleDoc struct {
	Sequence    *uint64 `json:"spiffe_sequence"`
	RefreshHint *int64  `json:"spiffe_refresh_hint"`
	Keys        []struct {
		Use string   `json:"use"`
		Kty string   `json:"kty"`
		Crv string   `json:"crv"`
		Kid string   `json:"kid"`
		X5c []string `json:"x5c"`
	} `json:"keys"`
}

func (c *bundleShowCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	var raw []byte
	if c.TrustDomain != "" {
		raw, err = cl.FederatedBundle(rc.ctx, c.TrustDomain)
	} else {
		raw, err = cl.TrustBundle(rc.ctx)
	}
	if err != nil {
		return fmt.Errorf("show bundle: %w", err)
	}
	if rc.jsonOutput() {
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return fmt.Errorf("show bundle: %w", err)
		}
		out.WriteByte('\n')
		_, err := rc.env.Stdout.Write(out.Bytes())
		return err
	}
	sum, err := summarizeBundle(raw)
	if err != nil {
		return fmt.Errorf("show bundle: %w", err)
	}
	fields := []field{{"Sequence", sum.sequence}, {"Refresh hint", sum.refreshHint}}
	if c.TrustDomain != "" {
		fields = append([]field{{"Trust domain", c.TrustDomain}}, fields...)
	}
	if err := rc.printFields(fields); err != nil {
		return err
	}
	rc.printf("\n")
	t := rc.newTable("USE", "KEY", "KID / SUBJECT", "NOT AFTER", "SHA-256")
	for _, row := range sum.rows {
		t.row(row...)
	}
	return t.flush()
}

// bundleSummary is the table view of a bundle document.
type bundleSummary struct {
	sequence, refreshHint string
	rows                  [][]string // use, key type, kid or subject, not after, SHA-256 of the certificate
}

// summarizeBundle reads a bundle document the server sent: any bytes, so
// it fails cleanly on what is not a JWK Set with well-formed x5c
// certificates.
func summarizeBundle(raw []byte) (bundleSummary, error) {
	var d bundleDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return bundleSummary{}, fmt.Errorf("the server's bundle is not a JWK Set: %w", err)
	}
	var s bundleSummary
	if d.Sequence != nil {
		s.sequence = strconv.FormatUint(*d.Sequence, 10)
	}
	if d.RefreshHint != nil {
		s.refreshHint = (time.Duration(*d.RefreshHint) * time.Second).String()
	}
	for _, k := range d.Keys {
		key := k.Kty
		if k.Crv != "" {
			key += " " + k.Crv
		}
		name, notAfter, sum := k.Kid, "", ""
		if len(k.X5c) > 0 {
			der, err := base64.StdEncoding.DecodeString(k.X5c[0])
			if err != nil {
				return bundleSummary{}, fmt.Errorf("bad x5c: %w", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return bundleSummary{}, fmt.Errorf("bad x5c certificate: %w", err)
			}
			digest := sha256.Sum256(der)
			name, notAfter, sum = cert.Subject.String(), fmtTime(cert.NotAfter), hex.EncodeToString(digest[:])
		}
		s.rows = append(s.rows, []string{k.Use, key, name, notAfter, sum})
	}
	return s, nil
}
