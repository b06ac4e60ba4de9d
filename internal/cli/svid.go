package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// maxCSRFile bounds the CSR file agent svid x509 reads; the server refuses
// anything above 16 KiB anyway.
const maxCSRFile = 64 << 10

type agentSVIDCmd struct {
	X509 agentSVIDX509Cmd `cmd:"" name:"x509" help:"Issue an X.509-SVID for the agent's SPIFFE ID, certifying the key of a certificate signing request."`
	JWT  agentSVIDJWTCmd  `cmd:"" name:"jwt" help:"Issue a JWT-SVID for the agent's SPIFFE ID."`
	List agentSVIDListCmd `cmd:"" help:"List the SVIDs issued to an agent (never the SVIDs themselves)."`
}

// svidTTLFlag is the optional lifetime of an SVID.
type svidTTLFlag struct {
	TTL time.Duration `name:"ttl" help:"Lifetime of the SVID, at least 1s (default: 1h for X.509, 5m for JWT; never longer than the agent's max TTL)." placeholder:"DURATION"`
}

// ttl renders the flag for the request: "" for the server's default.
func (f svidTTLFlag) ttl() (string, error) {
	switch {
	case f.TTL == 0:
		return "", nil
	case f.TTL < time.Second:
		return "", &exitError{code: ExitUsage, msg: "--ttl must be at least 1s"}
	}
	return f.TTL.String(), nil
}

type agentSVIDX509Cmd struct {
	agentRefArg
	CSR string `name:"csr" required:"" help:"File holding a PEM certificate signing request (openssl req -new …) signed by the workload's key. Only its key is used: the SVID names the agent's SPIFFE ID, whatever the request asks for." placeholder:"FILE"`
	svidTTLFlag
}

// Help says what comes out.
func (c *agentSVIDX509Cmd) Help() string {
	return "Prints the SVID's SPIFFE ID, serial and expiry, then its certificate chain (PEM, the SVID first). " +
		`With -o json the output is {"type", "spiffe_id", "serial", "expires_at", "cert_chain_pem"}.`
}

func (c *agentSVIDX509Cmd) Run(rc *runContext) error {
	csr, err := readCSRFile(c.CSR)
	if err != nil {
		return err
	}
	ttl, err := c.ttl()
	if err != nil {
		return err
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	s, err := cl.IssueSVID(rc.ctx, c.Ref, admin.IssueSVIDRequest{Type: admin.SVIDTypeX509, CSR: csr, TTL: ttl})
	if err != nil {
		return fmt.Errorf("issue X.509-SVID for agent %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(s)
	}
	if err := rc.printFields([]field{
		{"SPIFFE ID", s.SPIFFEID},
		{"Serial", s.Serial},
		{"Expires", fmtTime(s.ExpiresAt)},
	}); err != nil {
		return err
	}
	rc.printf("\n%s", s.CertChainPEM)
	return nil
}

// readCSRFile reads the CSR file, bounded.
func readCSRFile(path string) (string, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the operator names the file to read
	if err != nil {
		return "", &exitError{code: ExitUsage, msg: fmt.Sprintf("--csr: %v", err)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCSRFile+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("--csr: read %s: %w", path, err)
	case len(b) > maxCSRFile:
		return "", &exitError{code: ExitUsage, msg: fmt.Sprintf("--csr %s: larger than %d bytes; is it a certificate signing request?", path, maxCSRFile)}
	case strings.Contains(string(b), "PRIVATE KEY"):
		return "", &exitError{code: ExitUsage, msg: fmt.Sprintf("--csr %s: holds a private key; give the certificate signing request, never the key", path)}
	}
	return string(b), nil
}

type agentSVIDJWTCmd struct {
	agentRefArg
	Audience []string `name:"audience" required:"" help:"Audience of the JWT-SVID (the \"aud\" claim), usually the SPIFFE ID of the service it is for. Repeat the flag for several." placeholder:"AUD"`
	svidTTLFlag
}

// Help says what comes out.
func (c *agentSVIDJWTCmd) Help() string {
	return "Prints the SVID's SPIFFE ID, jti and expiry, then the token. " +
		`With -o json the output is {"type", "spiffe_id", "jti", "expires_at", "token"}.`
}

func (c *agentSVIDJWTCmd) Run(rc *runContext) error {
	ttl, err := c.ttl()
	if err != nil {
		return err
	}
	cl, err := rc.client()
	if err != nil {
		return err
	}
	s, err := cl.IssueSVID(rc.ctx, c.Ref, admin.IssueSVIDRequest{Type: admin.SVIDTypeJWT, Audience: c.Audience, TTL: ttl})
	if err != nil {
		return fmt.Errorf("issue JWT-SVID for agent %q: %w", c.Ref, err)
	}
	if rc.jsonOutput() {
		return rc.printJSON(s)
	}
	if err := rc.printFields([]field{
		{"SPIFFE ID", s.SPIFFEID},
		{"JTI", s.JTI},
		{"Audience", strings.Join(c.Audience, ", ")},
		{"Expires", fmtTime(s.ExpiresAt)},
	}); err != nil {
		return err
	}
	rc.printf("\n%s\n", s.Token)
	return nil
}

type agentSVIDListCmd struct {
	agentRefArg
	pageFlags
}

func (c *agentSVIDListCmd) Run(rc *runContext) error {
	cl, err := rc.client()
	if err != nil {
		return err
	}
	fetch := func(tok string) (admin.List[admin.SVIDRecord], error) {
		l, err := cl.ListSVIDs(rc.ctx, c.Ref, c.PageSize, tok)
		if err != nil {
			return l, fmt.Errorf("list SVIDs of agent %q: %w", c.Ref, err)
		}
		return l, nil
	}
	return listPages(rc, c.pageFlags, fetch,
		[]string{"KIND", "SERIAL / JTI", "AUDIENCE", "SIGNED BY", "ISSUED", "EXPIRES"},
		func(s admin.SVIDRecord) []string {
			id, expires := s.Serial, fmtTime(s.ExpiresAt)
			if s.Kind == admin.SVIDKindJWT {
				id = s.JTI
			}
			if s.Expired {
				expires += " (EXPIRED)"
			}
			return []string{s.Kind, id, strings.Join(s.Audience, ","), s.KeyID, fmtTime(s.IssuedAt), expires}
		})
}
