package svid_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/internal/store/storetest"
	"github.com/agentid/agentid/internal/svid"
	"github.com/agentid/agentid/internal/testca"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// newTestCA is the test CA.
func newTestCA(t *testing.T) *testca.CA {
	t.Helper()
	return testca.New(t, testca.Params{Serial: 1, Subject: pkix.Name{CommonName: "test CA"}, KeyID: "sgk_testca"})
}

// env is a Service over a real store with one owner and agents made
// through the registry. The clock is real time, because go-spiffe
// validates JWT-SVIDs against it.
type env struct {
	t   *testing.T
	ctx context.Context
	st  store.Store
	reg *identity.Service
	svc *svid.Service
	ca  *testca.CA
	jwt *keys.Manager
	rec *audit.Recorder
	iss *credential.SVIDIssuer
}

func origin() audit.Origin {
	return audit.Origin{
		Actor:   audit.Actor{Type: audit.ActorAdmin, ID: "adm_tester"},
		Source:  audit.Source{IP: "192.0.2.7", UserAgent: "agentid-test"},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
}

// newEnv builds the service; withCA false leaves the CA out.
func newEnv(t *testing.T, st store.Store, withCA bool) *env {
	t.Helper()
	ctx := t.Context()
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := identity.New(identity.Params{Store: st, Recorder: rec, TrustDomain: "example.org", MaxTTLCap: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	root, err := keys.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwtKeys, err := keys.NewManager(ctx, keys.ManagerParams{
		Store: st, Root: root, Purpose: "jwt-svid", Algorithm: keys.ES256, MaxTokenTTL: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, st: st, reg: reg, jwt: jwtKeys, rec: rec}
	p := credential.SVIDIssuerParams{JWTKeys: jwtKeys, Rand: rand.Reader}
	if withCA {
		e.ca = newTestCA(t)
		p.CA = e.ca
	}
	if e.iss, err = credential.NewSVIDIssuer(p); err != nil {
		t.Fatal(err)
	}
	if e.svc, err = svid.New(svid.Params{Store: st, Recorder: rec, Issuer: e.iss, Clock: time.Now}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateOwner(ctx, origin(), identity.CreateOwnerParams{Kind: store.OwnerPerson, Email: "alice@example.org"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) agent(name string, edit func(*identity.CreateAgentParams)) store.Agent {
	e.t.Helper()
	p := identity.CreateAgentParams{Name: name, Owners: []string{"alice@example.org"}, Purpose: "tests", MaxTTL: time.Hour}
	if edit != nil {
		edit(&p)
	}
	a, err := e.reg.CreateAgent(e.ctx, origin(), p)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
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

// lastEvent returns the newest audit event, decoded.
func (e *env) lastEvent() map[string]any {
	e.t.Helper()
	seq, _, err := e.st.AuditHead(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	recs, _, err := e.st.ListAudit(e.ctx, store.AuditQuery{AfterSeq: seq - 1}, store.Page{})
	if err != nil || len(recs) != 1 {
		e.t.Fatalf("ListAudit: %d records, %v", len(recs), err)
	}
	var ev map[string]any
	if err := json.Unmarshal(recs[0].Body, &ev); err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// credentials lists every recorded credential.
func (e *env) credentials() []store.IssuedCredential {
	e.t.Helper()
	cs, _, err := e.st.ListCredentials(e.ctx, store.CredentialFilter{}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

func TestIssueX509(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		a := e.agent("ticket-triage", nil)
		wk := testca.Key(t)
		sv, got, err := e.svc.IssueX509(e.ctx, origin(), svid.X509Params{Ref: "ticket-triage", CSR: csrPEM(t, wk), TTL: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != a.ID {
			t.Errorf("returned agent %s, want %s", got.ID, a.ID)
		}
		id, _, err := x509svid.ParseAndVerify(sv.Chain, x509bundle.FromX509Authorities(td, []*x509.Certificate{e.ca.Cert}))
		if err != nil {
			t.Fatalf("x509svid.ParseAndVerify: %v", err)
		}
		if id.String() != a.SPIFFEID {
			t.Errorf("SVID names %s, want %s", id, a.SPIFFEID)
		}
		leaf, err := x509.ParseCertificate(sv.Chain[0])
		if err != nil {
			t.Fatal(err)
		}
		if !wk.PublicKey.Equal(leaf.PublicKey) {
			t.Error("the SVID certifies another key than the CSR's")
		}
		if ttl := leaf.NotAfter.Sub(leaf.NotBefore) - credential.X509SVIDBackdate; ttl != 10*time.Minute {
			t.Errorf("lifetime %s, want 10m", ttl)
		}
		cs := e.credentials()
		want := []store.IssuedCredential{{
			Kind: store.CredentialX509SVID, ID: sv.Serial, AgentID: a.ID, SPIFFEID: a.SPIFFEID,
			KeyID: "sgk_testca", IssuedAt: cs[0].IssuedAt, ExpiresAt: sv.ExpiresAt,
		}}
		if diff := cmp.Diff(want, cs); diff != "" {
			t.Errorf("recorded (-want +got):\n%s", diff)
		}
		ev := e.lastEvent()
		wantEv := map[string]any{
			"family": "issuance", "type": "credential.issued", "outcome": "success",
			"actor": map[string]any{"type": "admin", "id": "adm_tester"},
			"agent": map[string]any{"id": a.ID, "name": a.Name, "spiffe_id": a.SPIFFEID},
			"details": map[string]any{
				"kind": "x509_svid", "serial": sv.Serial, "spiffe_id": a.SPIFFEID, "ca_key_id": "sgk_testca",
				"ttl_s":      float64(600),
				"expires_at": sv.ExpiresAt.Format(time.RFC3339),
			},
		}
		for k, v := range wantEv {
			if diff := cmp.Diff(v, ev[k]); diff != "" {
				t.Errorf("event %s (-want +got):\n%s", k, diff)
			}
		}
	})
}

func TestIssueJWT(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, false) // JWT-SVIDs need no CA
		a := e.agent("report-writer", func(p *identity.CreateAgentParams) { p.MaxTTL = 2 * time.Minute })
		aud := []string{"spiffe://example.org/db", "https://api.example.org"}
		sv, _, err := e.svc.IssueJWT(e.ctx, origin(), svid.JWTParams{Ref: a.ID, Audience: aud})
		if err != nil {
			t.Fatal(err)
		}
		pub, _, ok := e.jwt.PublicKey(sv.KeyID)
		if !ok {
			t.Fatal("signing key not published")
		}
		got, err := jwtsvid.ParseAndValidate(sv.Token, jwtbundle.FromJWTAuthorities(td, map[string]crypto.PublicKey{sv.KeyID: pub}), aud[1:])
		if err != nil {
			t.Fatalf("jwtsvid.ParseAndValidate: %v", err)
		}
		if got.ID.String() != a.SPIFFEID {
			t.Errorf("sub %s, want %s", got.ID, a.SPIFFEID)
		}
		// The default 5 minutes is capped by the agent's 2-minute policy.
		if ttl := sv.ExpiresAt().Sub(sv.IssuedAt()); ttl != 2*time.Minute {
			t.Errorf("lifetime %s, want 2m", ttl)
		}
		cs := e.credentials()
		want := []store.IssuedCredential{{
			Kind: store.CredentialJWTSVID, ID: sv.Claims.JTI, AgentID: a.ID, SPIFFEID: a.SPIFFEID, Audience: aud,
			KeyID: sv.KeyID, IssuedAt: cs[0].IssuedAt, ExpiresAt: sv.ExpiresAt(),
		}}
		if !cs[0].IssuedAt.Truncate(time.Second).Equal(sv.IssuedAt()) {
			t.Errorf("recorded issue time %v, token iat %v", cs[0].IssuedAt, sv.IssuedAt())
		}
		if diff := cmp.Diff(want, cs); diff != "" {
			t.Errorf("recorded (-want +got):\n%s", diff)
		}
		details := e.lastEvent()["details"]
		wantDetails := map[string]any{
			"kind": "jwt_svid", "jti": sv.Claims.JTI, "spiffe_id": a.SPIFFEID, "key_id": sv.KeyID,
			"audience": []any{aud[0], aud[1]}, "ttl_s": float64(120), "expires_at": sv.ExpiresAt().Format(time.RFC3339),
		}
		if diff := cmp.Diff(wantDetails, details); diff != "" {
			t.Errorf("event details (-want +got):\n%s", diff)
		}
	})
}

// TestIssueCappedByAgentExpiry: no SVID outlives its agent.
func TestIssueCappedByAgentExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		exp := time.Now().Add(3 * time.Minute).Truncate(time.Second)
		a := e.agent("short-lived", func(p *identity.CreateAgentParams) { p.ExpiresAt = exp })
		x, _, err := e.svc.IssueX509(e.ctx, origin(), svid.X509Params{Ref: a.Name, PublicKey: testca.Key(t).Public()})
		if err != nil {
			t.Fatal(err)
		}
		if x.ExpiresAt.After(exp) {
			t.Errorf("X.509-SVID expires %v, after the agent (%v)", x.ExpiresAt, exp)
		}
		j, _, err := e.svc.IssueJWT(e.ctx, origin(), svid.JWTParams{Ref: a.Name, Audience: []string{"x"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if j.ExpiresAt().After(exp) {
			t.Errorf("JWT-SVID expires %v, after the agent (%v)", j.ExpiresAt(), exp)
		}
	})
}

func TestIssueRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		noCA := *e
		iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{JWTKeys: e.jwt, Rand: rand.Reader})
		if err != nil {
			t.Fatal(err)
		}
		if noCA.svc, err = svid.New(svid.Params{Store: st, Recorder: e.rec, Issuer: iss, Clock: time.Now}); err != nil {
			t.Fatal(err)
		}
		e.agent("active", nil)
		suspended := e.agent("suspended", nil)
		if _, err := e.reg.SuspendAgent(e.ctx, origin(), identity.TransitionParams{Ref: suspended.ID}); err != nil {
			t.Fatal(err)
		}
		gone := e.agent("gone", nil)
		if _, err := e.reg.DeprovisionAgent(e.ctx, origin(), identity.TransitionParams{Ref: gone.ID}); err != nil {
			t.Fatal(err)
		}
		wk := testca.Key(t)
		good := csrPEM(t, wk)
		block, _ := pem.Decode(good)
		tampered := append([]byte(nil), block.Bytes...)
		tampered[len(tampered)-3] ^= 1
		x509For := func(p svid.X509Params) func(*env) error {
			return func(e *env) error {
				_, _, err := e.svc.IssueX509(e.ctx, origin(), p)
				return err
			}
		}
		jwtFor := func(p svid.JWTParams) func(*env) error {
			return func(e *env) error {
				_, _, err := e.svc.IssueJWT(e.ctx, origin(), p)
				return err
			}
		}
		for _, tc := range []struct {
			name  string
			env   *env
			call  func(*env) error
			want  error
			field string
		}{
			{"bad CSR", e, x509For(svid.X509Params{Ref: "active", CSR: []byte("nope")}), svid.ErrInvalid, "csr"},
			{"CSR signature invalid", e, x509For(svid.X509Params{Ref: "active", CSR: tampered}), svid.ErrInvalid, "csr"},
			{"no CSR", e, x509For(svid.X509Params{Ref: "active"}), svid.ErrInvalid, "csr"},
			{"CSR and key", e, x509For(svid.X509Params{Ref: "active", CSR: good, PublicKey: wk.Public()}), svid.ErrInvalid, "csr"},
			{"negative TTL", e, x509For(svid.X509Params{Ref: "active", CSR: good, TTL: -time.Second}), svid.ErrInvalid, "ttl"},
			{"bad instance", e, x509For(svid.X509Params{Ref: "active", CSR: good, Instance: "agt_x"}), svid.ErrInvalid, "instance"},
			{"bad ref", e, x509For(svid.X509Params{Ref: "Not A Name", CSR: good}), svid.ErrInvalid, "agent"},
			{"unknown agent", e, x509For(svid.X509Params{Ref: "nobody", CSR: good}), svid.ErrNotFound, ""},
			{"suspended agent", e, x509For(svid.X509Params{Ref: "suspended", CSR: good}), svid.ErrNotActive, ""},
			{"deprovisioned agent", e, jwtFor(svid.JWTParams{Ref: gone.ID, Audience: []string{"a"}}), svid.ErrNotActive, ""},
			{"no CA", &noCA, x509For(svid.X509Params{Ref: "active", CSR: good}), credential.ErrNoCA, ""},
			{"missing audience", e, jwtFor(svid.JWTParams{Ref: "active"}), svid.ErrInvalid, "audience"},
			{"bad audience", e, jwtFor(svid.JWTParams{Ref: "active", Audience: []string{"a b"}}), svid.ErrInvalid, "audience"},
			{"sub-second TTL", e, jwtFor(svid.JWTParams{Ref: "active", Audience: []string{"a"}, TTL: time.Millisecond}), svid.ErrInvalid, "ttl"},
			{"JWT for suspended", e, jwtFor(svid.JWTParams{Ref: "suspended", Audience: []string{"a"}}), svid.ErrNotActive, ""},
		} {
			seq, _, _ := st.AuditHead(e.ctx)
			err := tc.call(tc.env)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
				continue
			}
			var ve *svid.ValidationError
			if tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field) {
				t.Errorf("%s: err = %v, want a ValidationError of field %q", tc.name, err, tc.field)
			}
			if after, _, _ := st.AuditHead(e.ctx); after != seq {
				t.Errorf("%s: the audit trail grew", tc.name)
			}
		}
		if cs := e.credentials(); len(cs) != 0 {
			t.Errorf("refused requests recorded %d credentials", len(cs))
		}
	})
}

// failingStore fails every Update after running hook (if any) on the
// real store, or runs hook and then the real Update.
type failingStore struct {
	store.Store
	hook func()
	fail error
}

func (f *failingStore) Update(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	if f.hook != nil {
		f.hook()
		f.hook = nil
	}
	if f.fail != nil {
		return f.fail
	}
	return f.Store.Update(ctx, fn)
}

// TestIssueFailsClosed: when the record cannot be written, or the agent
// was suspended after it was checked, no SVID is returned and nothing is
// recorded.
func TestIssueFailsClosed(t *testing.T) {
	st, err := sqlite.Open(t.Context(), sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	base := newEnv(t, st, true)
	a := base.agent("racy", nil)
	fs := &failingStore{Store: st}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: fs})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := credential.NewSVIDIssuer(credential.SVIDIssuerParams{CA: base.ca, JWTKeys: base.jwt, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := svid.New(svid.Params{Store: fs, Recorder: rec, Issuer: iss, Clock: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	fs.fail = boom
	sv, _, err := svc.IssueX509(t.Context(), origin(), svid.X509Params{Ref: a.Name, PublicKey: testca.Key(t).Public()})
	if !errors.Is(err, boom) || sv.Chain != nil {
		t.Errorf("IssueX509 with a failing store = %d certificates, %v; want none, %v", len(sv.Chain), err, boom)
	}
	fs.fail = nil
	fs.hook = func() {
		if _, err := base.reg.SuspendAgent(t.Context(), origin(), identity.TransitionParams{Ref: a.ID}); err != nil {
			t.Error(err)
		}
	}
	j, _, err := svc.IssueJWT(t.Context(), origin(), svid.JWTParams{Ref: a.Name, Audience: []string{"a"}})
	if !errors.Is(err, svid.ErrNotActive) || j.Token != "" {
		t.Errorf("IssueJWT for an agent suspended meanwhile = %q, %v; want nothing, ErrNotActive", j.Token, err)
	}
	if cs := base.credentials(); len(cs) != 0 {
		t.Errorf("%d credentials recorded, want none", len(cs))
	}
}

func TestListAndCollect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st, true)
		a := e.agent("lister", nil)
		other := e.agent("other", nil)
		pub := testca.Key(t).Public()
		var want []string
		for range 3 {
			x, _, err := e.svc.IssueX509(e.ctx, origin(), svid.X509Params{Ref: a.Name, PublicKey: pub})
			if err != nil {
				t.Fatal(err)
			}
			j, _, err := e.svc.IssueJWT(e.ctx, origin(), svid.JWTParams{Ref: a.Name, Audience: []string{"a"}})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, x.Serial, j.Claims.JTI)
		}
		if _, _, err := e.svc.IssueJWT(e.ctx, origin(), svid.JWTParams{Ref: other.Name, Audience: []string{"a"}}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for p := (store.Page{PageSize: 4}); ; {
			cs, next, err := e.svc.List(e.ctx, a.ID, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				got = append(got, c.ID)
			}
			if next == "" {
				break
			}
			p.PageToken = next
		}
		if diff := cmp.Diff(len(want), len(got)); diff != "" {
			t.Errorf("listed %v, want the 6 of the agent %v", got, want)
		}
		for _, id := range want {
			found := false
			for _, g := range got {
				found = found || g == id
			}
			if !found {
				t.Errorf("%s not listed", id)
			}
		}
		if _, _, err := e.svc.List(e.ctx, "nobody", store.Page{}); !errors.Is(err, svid.ErrNotFound) {
			t.Errorf("List(unknown) = %v, want ErrNotFound", err)
		}
		var ve *svid.ValidationError
		if _, _, err := e.svc.List(e.ctx, a.Name, store.Page{PageToken: "garbage"}); !errors.As(err, &ve) || ve.Field != "page_token" {
			t.Errorf("List(bad token) = %v, want a page_token ValidationError", err)
		}
		// Nothing has expired yet.
		if n, err := e.svc.Collect(e.ctx, "replica-1"); err != nil || n != 0 {
			t.Errorf("Collect = %d, %v; want 0", n, err)
		}
		// An hour past the retention, every record goes (the X.509-SVIDs
		// live an hour).
		later, err := svid.New(svid.Params{Store: st, Recorder: e.rec, Issuer: e.iss,
			Clock: func() time.Time { return time.Now().Add(svid.DefaultRetention + 2*time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := later.Collect(e.ctx, "replica-1"); err != nil || n != 7 {
			t.Errorf("Collect after the retention = %d, %v; want 7", n, err)
		}
		if cs := e.credentials(); len(cs) != 0 {
			t.Errorf("%d records left after Collect", len(cs))
		}
	})
}
