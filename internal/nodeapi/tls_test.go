package nodeapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/nodeapi"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// TestVerifyNodeCertificate: only a valid X.509-SVID of a node of the
// trust domain passes.
func TestVerifyNodeCertificate(t *testing.T) {
	ca := newTestCA(t, trustDomain)
	other := newTestCA(t, trustDomain)
	foreign := newTestCA(t, "partner.example")
	now := time.Now()
	verify, err := nodeapi.VerifyNodeCertificate(trustDomain, ca.X509Authorities, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	node := "spiffe://example.org/node/" + newNodeID(t)
	leaf := func(c *tls.Certificate) []*x509.Certificate { return []*x509.Certificate{c.Leaf} }
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		ok    bool
	}{
		{"node SVID", leaf(ca.svidCert(t, node, time.Hour)), true},
		{"agent SVID", leaf(ca.svidCert(t, "spiffe://example.org/agent/web", time.Hour)), false},
		{"server SVID", leaf(ca.svidCert(t, "spiffe://example.org/agentid/server", time.Hour)), false},
		{"node path without an id", leaf(ca.svidCert(t, "spiffe://example.org/node/x", time.Hour)), false},
		{"another CA", leaf(other.svidCert(t, node, time.Hour)), false},
		{"another trust domain", leaf(foreign.svidCert(t, "spiffe://partner.example/node/"+newNodeID(t), time.Hour)), false},
		{"expired", leaf(ca.svidCert(t, node, time.Second)), false},
		{"no certificate", nil, false},
		{"a CA certificate", []*x509.Certificate{ca.X509Authorities()[0]}, false},
		{"too long a chain", make([]*x509.Certificate, 9), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "expired" {
				now = time.Now().Add(time.Minute)
				defer func() { now = time.Now() }()
			}
			if err := verify(tc.chain); (err == nil) != tc.ok {
				t.Errorf("verify = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestServerCert: the server's certificate is an X.509-SVID of
// spiffe://<td>/agentid/server, renewed at half its lifetime and at once
// when its CA is tainted, each issuance audited without key material.
func TestServerCert(t *testing.T) {
	st, _ := storetest.Backends(t)[0].Open(t)
	ca := newTestCA(t, trustDomain)
	c := newClock()
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := nodeapi.NewServerCert(nodeapi.ServerCertParams{
		TrustDomain: trustDomain, Issuer: ca.iss, CA: ca, Recorder: rec, TTL: 10 * time.Minute, Holder: "replica-1", Clock: c.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Leaf() != nil {
		t.Fatal("a certificate before the first issuance")
	}
	cert, err := sc.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	b := x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString(trustDomain), ca.X509Authorities())
	id, _, err := x509svid.ParseAndVerify(cert.Certificate, b, x509svid.WithTime(c.Now()))
	if err != nil || id.String() != "spiffe://example.org/agentid/server" || sc.SPIFFEID() != id.String() {
		t.Fatalf("server certificate: %v, %v", id, err)
	}
	if ttl := cert.Leaf.NotAfter.Sub(c.Now()); ttl != 10*time.Minute {
		t.Errorf("lifetime %s, want 10m", ttl)
	}
	serials := []string{cert.Leaf.SerialNumber.Text(16)}
	refresh := func(want bool) {
		t.Helper()
		renewed, err := sc.Refresh(t.Context())
		if err != nil || renewed != want {
			t.Fatalf("Refresh = %v, %v; want %v", renewed, err, want)
		}
		if want {
			serials = append(serials, sc.Leaf().SerialNumber.Text(16))
		}
	}
	c.Advance(4 * time.Minute)
	refresh(false)
	c.Advance(time.Minute + time.Second)
	refresh(true)
	refresh(false)
	ca.Taint()
	ca.Rotate(t)
	refresh(true)
	if got, _ := sc.GetCertificate(nil); got.Leaf.CheckSignatureFrom(ca.X509Authorities()[1]) != nil {
		t.Error("the certificate after the taint is not signed by the new CA")
	}
	refresh(false)

	recs, _, err := st.ListAudit(t.Context(), store.AuditQuery{}, store.Page{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		var ev struct {
			Type    string         `json:"type"`
			Family  string         `json:"family"`
			Actor   audit.Actor    `json:"actor"`
			Details map[string]any `json:"details"`
		}
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != "credential.issued" || ev.Family != "issuance" || ev.Actor != (audit.Actor{Type: "system", ID: "replica-1"}) ||
			ev.Details["server"] != true || ev.Details["spiffe_id"] != "spiffe://example.org/agentid/server" ||
			ev.Details["kind"] != "x509_svid" || ev.Details["ca_key_id"] == "" || ev.Details["expires_at"] == "" {
			t.Errorf("audit event: %s", r.Body)
		}
		if _, ok := ev.Details["private_key"]; ok {
			t.Errorf("audit event holds key material: %s", r.Body)
		}
		got = append(got, ev.Details["serial"].(string))
	}
	if len(got) != len(serials) {
		t.Fatalf("%d audit events for %d certificates", len(got), len(serials))
	}
	for i := range got {
		if got[i] != serials[i] {
			t.Errorf("event %d serial %s, want %s", i, got[i], serials[i])
		}
	}
}

// failingRecorder cannot write the trail.
type failingRecorder struct{}

func (failingRecorder) Record(_ context.Context, _ audit.Event) (store.AuditRecord, error) {
	return store.AuditRecord{}, errors.New("disk full")
}

// TestServerCertFailsClosed: a certificate whose issuance cannot be
// audited is not served.
func TestServerCertFailsClosed(t *testing.T) {
	ca := newTestCA(t, trustDomain)
	sc, err := nodeapi.NewServerCert(nodeapi.ServerCertParams{
		TrustDomain: trustDomain, Issuer: ca.iss, Recorder: failingRecorder{}, Clock: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := sc.GetCertificate(&tls.ClientHelloInfo{}); err == nil || c != nil || sc.Leaf() != nil {
		t.Errorf("GetCertificate without an audit trail = %v, %v", c, err)
	}
}

// TestServerCertRotationOverTLS: a client connecting after a renewal sees
// the new certificate (GetCertificate serves the current one per
// handshake).
func TestServerCertRotationOverTLS(t *testing.T) {
	e := newAPIEnv(t, 0)
	serial := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", e.addr, &tls.Config{
			InsecureSkipVerify: true, //nolint:gosec // the test reads the certificate only
			MinVersion:         tls.VersionTLS13, Certificates: []tls.Certificate{*e.nodeTLS},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
	}
	first := serial()
	e.ca.Taint()
	e.ca.Rotate(t)
	if renewed, err := e.cert.Refresh(t.Context()); err != nil || !renewed {
		t.Fatalf("Refresh after taint = %v, %v", renewed, err)
	}
	if s := serial(); s == first {
		t.Error("a new connection still gets the tainted CA's certificate")
	}
}

// TestHandshakeRefusals: the TLS layer refuses a client without a
// certificate, with one of another CA, and with an agent's SVID; the
// client sees a transport error, not a refusal of the node.
func TestHandshakeRefusals(t *testing.T) {
	e := newAPIEnv(t, 0)
	for name, cert := range map[string]*tls.Certificate{
		"no certificate": {},
		"another CA":     newTestCA(t, trustDomain).svidCert(t, "spiffe://example.org/node/"+e.nodeID, time.Hour),
		"agent SVID":     e.ca.svidCert(t, "spiffe://example.org/agent/web", time.Hour),
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := e.rawClient(cert).Post("https://"+e.addr+nodeapi.RenewPath, "application/json", nil)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("answered %d, want a failed handshake", resp.StatusCode)
			}
			if len(cert.Certificate) == 0 {
				return
			}
			_, err = e.client(cert).Renew(t.Context(), csrDER(t))
			if err == nil || errors.Is(err, nodeapi.ErrRejected) || errors.Is(err, nodeapi.ErrEvicted) {
				t.Errorf("Renew = %v, want a transport error", err)
			}
		})
	}
}

// TestClientRefusesImpostor: the client accepts only
// spiffe://<td>/agentid/server, from its own bundle.
func TestClientRefusesImpostor(t *testing.T) {
	e := newAPIEnv(t, 0)
	for name, cert := range map[string]*tls.Certificate{
		"an agent's SVID": e.ca.svidCert(t, "spiffe://example.org/agent/web", time.Hour),
		"another CA's":    newTestCA(t, trustDomain).svidCert(t, "spiffe://example.org/agentid/server", time.Hour),
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := nodeapi.ServerTLSConfig(nodeapi.ServerTLSParams{
				TrustDomain: trustDomain, Authorities: e.ca.X509Authorities, Clock: time.Now,
				GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					_ = c.(*tls.Conn).Handshake()
					_ = c.Close()
				}
			}()
			c, err := nodeapi.NewClient(nodeapi.ClientParams{
				Addr: ln.Addr().String(), TrustDomain: trustDomain, Authorities: e.ca.X509Authorities,
				Certificate: func() (*tls.Certificate, error) { return e.nodeTLS, nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Renew(t.Context(), csrDER(t)); err == nil || errors.Is(err, nodeapi.ErrRejected) {
				t.Errorf("Renew against %s = %v, want a TLS error", name, err)
			}
		})
	}
}
