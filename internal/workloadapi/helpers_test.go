package workloadapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/internal/testca"
	"github.com/agentid/agentid/internal/workloadapi"
)

const (
	trustDomain   = "example.org"
	partnerDomain = "partner.example"
	exePath       = "/usr/local/bin/ticket-triage"
	exeHash       = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// newTestCA is a self-signed P-256 CA of a trust domain.
func newTestCA(t testing.TB, td string) *testca.CA {
	t.Helper()
	return testca.New(t, testca.Params{TrustDomain: td, Serial: 1, KeyID: "sgk_ca"})
}

// newJWTKeys returns a keys.Manager of purpose jwt-svid (ES256).
func newJWTKeys(t testing.TB) *keys.Manager {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	root, err := keys.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m, err := keys.NewManager(context.Background(), keys.ManagerParams{
		Store: st, Root: root, Purpose: "jwt-svid", Algorithm: keys.ES256, MaxTokenTTL: time.Hour,
		Clock: time.Now, Rand: mrand.NewChaCha8([32]byte{3}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// toBundle builds a trust domain's bundle with internal/bundle.
func toBundle(t testing.TB, td string, x5 bundle.X509Source, jwt bundle.JWTSource) workloadapi.Bundle {
	t.Helper()
	b, err := bundle.New(bundle.Params{TrustDomain: td, X509: x5, JWT: jwt, Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	d, err := b.Current()
	if err != nil {
		t.Fatal(err)
	}
	return workloadapi.Bundle{TrustDomain: td, X509Authorities: d.X509Authorities, JWTAuthorities: d.JWTAuthorities, JWTJWKS: d.JWTJWKS}
}

// fakeSource is a node's cache in miniature: agents, SVIDs minted on
// first use with the test CA, the bundles, and a change channel.
type fakeSource struct {
	issuer  *credential.SVIDIssuer
	trust   workloadapi.Bundle
	partner workloadapi.Bundle

	mu      sync.Mutex
	agents  []store.Agent
	svids   map[string]workloadapi.X509SVID
	ttl     time.Duration
	changed chan struct{}
}

var _ workloadapi.Source = (*fakeSource)(nil)

func newFakeSource(t testing.TB, agents ...store.Agent) *fakeSource {
	t.Helper()
	ca := newTestCA(t, trustDomain)
	jwtKeys := newJWTKeys(t)
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: ca, JWTKeys: jwtKeys, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSource{
		issuer:  iss,
		trust:   toBundle(t, trustDomain, ca, jwtKeys),
		partner: toBundle(t, partnerDomain, newTestCA(t, partnerDomain), nil),
		agents:  agents,
		svids:   map[string]workloadapi.X509SVID{},
		ttl:     time.Hour,
		changed: make(chan struct{}),
	}
}

func (s *fakeSource) Agents() []store.Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agents
}

func (s *fakeSource) X509SVID(_ context.Context, a store.Agent) (workloadapi.X509SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv, ok := s.svids[a.Name]; ok {
		return sv, nil
	}
	if s.ttl < 0 {
		return workloadapi.X509SVID{}, workloadapi.ErrNoSVID
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return workloadapi.X509SVID{}, err
	}
	sv, err := s.issuer.X509SVID(credential.X509SVIDParams{SPIFFEID: a.SPIFFEID, PublicKey: key.Public(), IssuedAt: time.Now(), TTL: s.ttl})
	if err != nil {
		return workloadapi.X509SVID{}, err
	}
	out := workloadapi.X509SVID{SPIFFEID: sv.SPIFFEID, Chain: sv.Chain, Key: key, ExpiresAt: sv.ExpiresAt}
	s.svids[a.Name] = out
	return out, nil
}

func (s *fakeSource) JWTSVID(_ context.Context, a store.Agent, aud []string) (string, error) {
	sv, err := s.issuer.JWTSVID(credential.JWTSVIDParams{SPIFFEID: a.SPIFFEID, Audience: aud, IssuedAt: time.Now()})
	return sv.Token, err
}

func (s *fakeSource) TrustBundle() (workloadapi.Bundle, error) { return s.trust, nil }

func (s *fakeSource) FederatedBundles(a store.Agent) []workloadapi.Bundle {
	var out []workloadapi.Bundle
	for _, td := range a.FederatesWith {
		if td == partnerDomain {
			out = append(out, s.partner)
		}
	}
	return out
}

func (s *fakeSource) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// update changes the source under its lock and announces the change.
func (s *fakeSource) update(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

// rotate drops the agent's SVID, so that a new one is minted.
func (s *fakeSource) rotate(name string) { s.update(func() { delete(s.svids, name) }) }

var errNoProc = errors.New("no such process")

// agent returns an active agent with the selectors.
func agent(name string, selectors ...string) store.Agent {
	return store.Agent{
		ID: "agt_" + name, Name: name, SPIFFEID: "spiffe://" + trustDomain + "/agent/" + name,
		Selectors: selectors, State: store.AgentActive,
	}
}

// uidSelector is the selector of the test process's user.
func uidSelector(uid int) string { return "unix:uid:" + strconv.Itoa(uid) }

// serve starts a Server for src on a Unix socket in a temporary directory
// and returns the socket's address for go-spiffe ("unix:///…").
func serve(t *testing.T, src workloadapi.Source) string {
	t.Helper()
	srv, err := workloadapi.New(workloadapi.Params{
		Source: src, Clock: time.Now, Logger: slog.New(slog.DiscardHandler),
		Executable: func(pid int32) (workloadapi.Executable, error) {
			if pid <= 0 {
				return workloadapi.Executable{}, errNoProc
			}
			return workloadapi.Executable{Path: exePath, SHA256: exeHash}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wl.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "unix://" + path
}
