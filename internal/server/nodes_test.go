package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/sdk/admin"
)

// TestServerNodes: the server's node registry attests a node with a join
// token once, and its SVID verifies against the bundle the server
// publishes.
func TestServerNodes(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	tok, err := ls.admin.CreateJoinToken(ctx, admin.CreateJoinTokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	node, err := admin.New(ls.url, "")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	req := admin.AttestNodeRequest{JoinToken: tok.Token, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}
	att, err := node.AttestNode(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ls.admin.TrustBundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("example.org"), raw)
	if err != nil {
		t.Fatal(err)
	}
	var chain [][]byte
	for rest := []byte(att.CertChainPEM); ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		chain = append(chain, blk.Bytes)
	}
	want := "spiffe://example.org/node/" + att.NodeID
	if id, _, err := x509svid.ParseAndVerify(chain, b); err != nil || id.String() != want {
		t.Errorf("x509svid.ParseAndVerify = %s, %v; want %s", id, err, want)
	}
	if ttl := time.Until(att.ExpiresAt); ttl > time.Hour || ttl < 50*time.Minute {
		t.Errorf("node SVID expires in %s, want about 1h", ttl)
	}
	if _, err := node.AttestNode(ctx, req); !admin.IsProblem(err, admin.ProblemUnauthenticated) {
		t.Errorf("replayed join token: %v, want unauthenticated", err)
	}
	if l, err := ls.admin.ListNodes(ctx, admin.ListNodesParams{}); err != nil || len(l.Items) != 1 {
		t.Errorf("ListNodes = %+v, %v; want the one node", l, err)
	}
}
