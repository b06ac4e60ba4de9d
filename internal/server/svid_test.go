package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/sdk/admin"
)

// TestServerSVIDs: the server's CA and JWT-SVID keys sign SVIDs that
// go-spiffe verifies against the bundle the server publishes.
func TestServerSVIDs(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	raw, err := ls.admin.TrustBundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("example.org"), raw)
	if err != nil {
		t.Fatalf("spiffebundle.Parse: %v", err)
	}
	if len(b.X509Authorities()) != 1 || len(b.JWTAuthorities()) != 1 {
		t.Fatalf("bundle has %d X.509 and %d JWT authorities, want 1 and 1", len(b.X509Authorities()), len(b.JWTAuthorities()))
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	x, err := ls.admin.IssueSVID(ctx, ls.agent.Name, admin.IssueSVIDRequest{Type: admin.SVIDTypeX509, CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	var chain [][]byte
	for rest := []byte(x.CertChainPEM); ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		chain = append(chain, blk.Bytes)
	}
	if id, _, err := x509svid.ParseAndVerify(chain, b); err != nil || id.String() != ls.agent.SPIFFEID {
		t.Errorf("x509svid.ParseAndVerify = %s, %v; want %s", id, err, ls.agent.SPIFFEID)
	}

	j, err := ls.admin.IssueSVID(ctx, ls.agent.Name, admin.IssueSVIDRequest{Type: admin.SVIDTypeJWT, Audience: []string{"spiffe://example.org/db"}})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := jwtsvid.ParseAndValidate(j.Token, b, []string{"spiffe://example.org/db"}); err != nil || s.ID.String() != ls.agent.SPIFFEID {
		t.Errorf("jwtsvid.ParseAndValidate = %v, %v", s, err)
	}
	l, err := ls.admin.ListSVIDs(ctx, ls.agent.Name, 0, "")
	if err != nil || len(l.Items) != 2 {
		t.Errorf("ListSVIDs = %d items, %v; want 2", len(l.Items), err)
	}
}
