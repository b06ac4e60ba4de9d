package nodeapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/svid"
)

// maxPeerChain bounds the certificates a client may present.
const maxPeerChain = 8

// DefaultServerCertCheck is how often ServerCert.Run checks whether the
// server certificate is due for renewal or its CA was tainted.
const DefaultServerCertCheck = time.Second

// X509Issuer mints X.509-SVIDs. *credential.SVIDIssuer implements it.
type X509Issuer interface {
	X509SVID(p credential.X509SVIDParams) (credential.X509SVID, error)
}

// EventRecorder writes one audit event durably. *audit.Recorder
// implements it.
type EventRecorder interface {
	Record(ctx context.Context, ev audit.Event) (store.AuditRecord, error)
}

// ServerCertParams configures a ServerCert.
type ServerCertParams struct {
	// TrustDomain names the server's SPIFFE ID,
	// spiffe://<trust domain>/agentid/server. Required.
	TrustDomain string
	// Issuer mints the certificate from the trust domain's CA. Required.
	Issuer X509Issuer
	// CA tells which CA certificates are tainted; nil: none.
	CA TaintSource
	// Recorder records each issuance. Required.
	Recorder EventRecorder
	// TTL is the certificate's lifetime; zero means
	// credential.DefaultX509SVIDTTL. The server passes the shorter of that
	// and credentials.max_ttl.
	TTL time.Duration
	// Holder identifies this replica as the system actor of the audit
	// events.
	Holder string
	// CheckInterval is how often Run checks the certificate; zero means
	// DefaultServerCertCheck.
	CheckInterval time.Duration
	// Clock is the time source. Required.
	Clock func() time.Time
	// Rand is the source of the certificates' keys; default
	// crypto/rand.Reader.
	Rand io.Reader
	// Logger receives renewal failures; nil discards them.
	Logger *slog.Logger
}

// ServerCert is the node API server's own X.509-SVID,
// spiffe://<trust domain>/agentid/server, for tls.Config.GetCertificate:
// minted with a new P-256 key, renewed at half its lifetime and at once
// when the CA that signed it is tainted. Each issuance is recorded as a
// credential.issued audit event (the system as actor, "server": true in
// details) before the certificate is served. It is safe for concurrent
// use.
type ServerCert struct {
	p  ServerCertParams
	id string

	mu  sync.Mutex // serialises issuance
	cur atomic.Pointer[serverCert]
}

type serverCert struct {
	cert    *tls.Certificate
	renewAt time.Time
}

// NewServerCert returns a ServerCert without a certificate: Refresh, Run
// or the first handshake issues it.
func NewServerCert(p ServerCertParams) (*ServerCert, error) {
	switch {
	case p.Issuer == nil, p.Recorder == nil:
		return nil, errors.New("nodeapi: ServerCertParams.Issuer and Recorder are required")
	case p.Clock == nil:
		return nil, errors.New("nodeapi: ServerCertParams.Clock is required")
	case p.TTL < 0 || p.CheckInterval < 0:
		return nil, errors.New("nodeapi: ServerCertParams.TTL and CheckInterval must not be negative")
	}
	td, err := spiffeid.TrustDomainFromString(p.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("nodeapi: trust domain: %w", err)
	}
	if p.TTL == 0 {
		p.TTL = credential.DefaultX509SVIDTTL
	}
	if p.CheckInterval == 0 {
		p.CheckInterval = DefaultServerCertCheck
	}
	if p.Rand == nil {
		p.Rand = rand.Reader
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	return &ServerCert{p: p, id: td.IDString() + ServerPath}, nil
}

// SPIFFEID is the server's SPIFFE ID.
func (s *ServerCert) SPIFFEID() string { return s.id }

// GetCertificate serves the current certificate, issuing one first when
// there is none or it has expired.
func (s *ServerCert) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.cur.Load(); c != nil && s.p.Clock().Before(c.cert.Leaf.NotAfter) {
		return c.cert, nil
	}
	ctx := context.Background()
	if hello != nil && hello.Context() != nil {
		ctx = hello.Context()
	}
	if _, err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s.cur.Load().cert, nil
}

// Leaf returns the current certificate, nil before the first.
func (s *ServerCert) Leaf() *x509.Certificate {
	if c := s.cur.Load(); c != nil {
		return c.cert.Leaf
	}
	return nil
}

// Run refreshes the certificate at once and then every CheckInterval
// until ctx is done. Failures are logged; the current certificate stays
// in use until it expires.
func (s *ServerCert) Run(ctx context.Context) {
	t := time.NewTicker(s.p.CheckInterval)
	defer t.Stop()
	for {
		if _, err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.p.Logger.ErrorContext(ctx, "node API server certificate", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh issues a new certificate when there is none, it is at half its
// lifetime or past, or its CA is tainted, and reports whether it did.
func (s *ServerCert) Refresh(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.p.Clock()
	if c := s.cur.Load(); c != nil && now.Before(c.renewAt) && !s.tainted(c.cert.Leaf) {
		return false, nil
	}
	c, err := s.issue(ctx, now)
	if err != nil {
		return false, err
	}
	s.cur.Store(c)
	return true, nil
}

// tainted reports whether a tainted CA signed leaf.
func (s *ServerCert) tainted(leaf *x509.Certificate) bool {
	if s.p.CA == nil {
		return false
	}
	for _, ca := range s.p.CA.TaintedCAs() {
		if bytes.Equal(leaf.RawIssuer, ca.RawSubject) && leaf.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

// issue mints a certificate for a new key and records it.
func (s *ServerCert) issue(ctx context.Context, now time.Time) (*serverCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), s.p.Rand)
	if err != nil {
		return nil, fmt.Errorf("nodeapi: server certificate key: %w", err)
	}
	sv, err := s.p.Issuer.X509SVID(credential.X509SVIDParams{SPIFFEID: s.id, PublicKey: &key.PublicKey, IssuedAt: now, TTL: s.p.TTL})
	if err != nil {
		return nil, fmt.Errorf("nodeapi: issue the server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(sv.Chain[0])
	if err != nil {
		return nil, fmt.Errorf("nodeapi: parse the server certificate: %w", err)
	}
	o := audit.Origin{Actor: audit.Actor{Type: audit.ActorSystem, ID: s.p.Holder}}
	ev := o.Event(audit.Issuance, svid.EventCredentialIssued)
	ev.Time = now.UTC().Truncate(time.Microsecond)
	ev.Details = map[string]any{
		"kind":       store.CredentialX509SVID,
		"server":     true,
		"serial":     sv.Serial,
		"ca_key_id":  sv.CAKeyID,
		"spiffe_id":  sv.SPIFFEID,
		"ttl_s":      int64(sv.ExpiresAt.Sub(now.Truncate(time.Second)) / time.Second),
		"expires_at": sv.ExpiresAt.UTC().Format(time.RFC3339),
	}
	if _, err := s.p.Recorder.Record(ctx, ev); err != nil {
		return nil, fmt.Errorf("nodeapi: record the server certificate: %w", err)
	}
	s.p.Logger.InfoContext(ctx, "node API server certificate issued", "serial", sv.Serial, "ca_key_id", sv.CAKeyID,
		"expires_at", sv.ExpiresAt)
	return &serverCert{
		cert:    &tls.Certificate{Certificate: sv.Chain, PrivateKey: key, Leaf: leaf},
		renewAt: now.Add(sv.ExpiresAt.Sub(now) / 2),
	}, nil
}

// ServerTLSParams configures ServerTLSConfig.
type ServerTLSParams struct {
	// TrustDomain is the trust domain of the nodes. Required.
	TrustDomain string
	// GetCertificate gives the server's certificate (ServerCert's).
	// Required.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Authorities gives the trust domain's current X.509 authorities
	// (ca.Manager.X509Authorities), read at each handshake. Required.
	Authorities func() []*x509.Certificate
	// Clock is the time client certificates are verified at. Required.
	Clock func() time.Time
}

// ServerTLSConfig is the node API listener's TLS configuration: TLS 1.3,
// HTTP/2 (and HTTP/1.1), the server's certificate from GetCertificate,
// and a client certificate required and verified as an X.509-SVID of the
// trust domain (go-spiffe x509svid.Verify against the current
// authorities) whose SPIFFE ID is a node's, spiffe://<td>/node/<nod_…>.
// The check is a VerifyConnection, so resumed sessions are checked again
// (a node SVID that expired, or whose CA left the bundle, does not
// resume).
func ServerTLSConfig(p ServerTLSParams) (*tls.Config, error) {
	if p.GetCertificate == nil || p.Authorities == nil || p.Clock == nil {
		return nil, errors.New("nodeapi: ServerTLSParams.GetCertificate, Authorities and Clock are required")
	}
	verify, err := VerifyNodeCertificate(p.TrustDomain, p.Authorities, p.Clock)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		NextProtos:       []string{"h2", "http/1.1"},
		GetCertificate:   p.GetCertificate,
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error { return verify(cs.PeerCertificates) },
	}, nil
}

// VerifyNodeCertificate returns a function that accepts exactly a client
// certificate chain (leaf first) that is a valid X.509-SVID of a node of
// the trust domain td: it verifies (x509svid.Verify at clock's time)
// against authorities() and its SPIFFE ID is spiffe://<td>/node/<nod_…>.
func VerifyNodeCertificate(td string, authorities func() []*x509.Certificate, clock func() time.Time) (func([]*x509.Certificate) error, error) {
	tdID, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		return nil, fmt.Errorf("nodeapi: trust domain: %w", err)
	}
	return func(certs []*x509.Certificate) error {
		switch {
		case len(certs) == 0:
			return errors.New("nodeapi: no client certificate")
		case len(certs) > maxPeerChain:
			return fmt.Errorf("nodeapi: client certificate chain longer than %d", maxPeerChain)
		}
		id, _, err := x509svid.Verify(certs, x509bundle.FromX509Authorities(tdID, authorities()), x509svid.WithTime(clock()))
		if err != nil {
			return fmt.Errorf("nodeapi: client certificate: %w", err)
		}
		if _, ok := NodeIDOf(id.String(), td); !ok {
			return fmt.Errorf("nodeapi: client certificate %s is not a node's X.509-SVID", id)
		}
		return nil
	}, nil
}
