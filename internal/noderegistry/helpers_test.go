package noderegistry_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/bundle"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/noderegistry"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
	"github.com/agentid/agentid/internal/testca"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// newTestCA is the test CA: a credential.CA and a bundle.X509Source.
func newTestCA(t *testing.T, now time.Time) *testca.CA {
	t.Helper()
	return testca.New(t, testca.Params{
		Now: now, TTL: 48 * time.Hour, Serial: 1, Subject: pkix.Name{CommonName: "test CA"}, KeyID: "sgk_testca",
	})
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a Service over a real store, with a test CA and the trust bundle
// built from it.
type env struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	svc    *noderegistry.Service
	ca     *testca.CA
	bundle *bundle.Bundle
	clock  *clock
}

func admin() audit.Origin {
	return audit.Origin{
		Actor:   audit.Actor{Type: audit.ActorAdmin, ID: "adm_tester"},
		Source:  audit.Source{IP: "192.0.2.7", UserAgent: "agentid-test"},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
}

var nodeSource = audit.Source{IP: "198.51.100.9", UserAgent: "agentid-node/test"}

// newEnv builds the service; withCA false leaves the CA out.
func newEnv(t *testing.T, st store.Store, withCA bool) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), st: st, clock: &clock{now: time.Now().UTC()}}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	p := credential.SVIDIssuerParams{Rand: rand.Reader}
	e.ca = newTestCA(t, e.clock.Now())
	if withCA {
		p.CA = e.ca
	}
	iss, err := credential.NewSVIDIssuer(p)
	if err != nil {
		t.Fatal(err)
	}
	if e.svc, err = noderegistry.New(noderegistry.Params{
		Store: st, Recorder: rec, Issuer: iss, TrustDomain: "example.org", Clock: e.clock.Now,
	}); err != nil {
		t.Fatal(err)
	}
	if e.bundle, err = bundle.New(bundle.Params{TrustDomain: "example.org", X509: e.ca, Clock: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	return e
}

func forEachBackend(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Helper()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			fn(t, st)
		})
	}
}

func csrPEM(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	return testca.CSRPEM(t, key, "not-me.example.com")
}

// token creates a join token with the default TTL and returns its secret.
func (e *env) token() (store.JoinToken, string) {
	e.t.Helper()
	tok, secret, err := e.svc.CreateJoinToken(e.ctx, admin(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok, secret
}

func (e *env) attest(secret string, csr []byte) (noderegistry.NodeSVID, error) {
	return e.svc.Attest(e.ctx, noderegistry.AttestParams{JoinToken: secret, CSR: csr, Source: nodeSource, TraceID: "0af7651916cd43dd8448eb211c80319c"})
}

// verify checks the SVID with go-spiffe against the trust bundle document
// and returns the SPIFFE ID it proves.
func (e *env) verify(sv credential.X509SVID) string {
	e.t.Helper()
	doc, err := e.bundle.Current()
	if err != nil {
		e.t.Fatal(err)
	}
	tb, err := spiffebundle.Parse(td, doc.JSON)
	if err != nil {
		e.t.Fatalf("spiffebundle.Parse: %v", err)
	}
	id, _, err := x509svid.ParseAndVerify(sv.Chain, tb, x509svid.WithTime(e.clock.Now()))
	if err != nil {
		e.t.Fatalf("x509svid.ParseAndVerify: %v", err)
	}
	return id.String()
}

// events returns every audit event after seq, decoded, and fails the test
// when one holds a secret.
func (e *env) events(after int64, secrets ...string) []map[string]any {
	e.t.Helper()
	recs, _, err := e.st.ListAudit(e.ctx, store.AuditQuery{AfterSeq: after}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]map[string]any, 0, len(recs))
	for _, r := range recs {
		for _, s := range secrets {
			if s != "" && strings.Contains(string(r.Body), s) {
				e.t.Errorf("audit event %d holds a join token secret: %s", r.Seq, r.Body)
			}
		}
		var ev map[string]any
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func (e *env) head() int64 {
	e.t.Helper()
	seq, _, err := e.st.AuditHead(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

func (e *env) nodes() []store.Node {
	e.t.Helper()
	ns, _, err := e.st.ListNodes(e.ctx, store.NodeFilter{}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		e.t.Fatal(err)
	}
	return ns
}

// verifyTrail checks the audit hash chain.
func (e *env) verifyTrail() {
	e.t.Helper()
	rep, err := audit.Verify(e.ctx, e.st, audit.VerifyParams{})
	if err != nil || !rep.OK {
		e.t.Errorf("audit.Verify = %+v, %v", rep, err)
	}
}

// storeOf opens a SQLite store, for tests that do not concern the
// backends.
func storeOf(t *testing.T) (store.Store, *sql.DB) {
	t.Helper()
	return storetest.Backends(t)[0].Open(t)
}
