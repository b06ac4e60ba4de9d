package ca_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/ca"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
	"github.com/agentid/agentid/internal/testca"
)

const td = "example.org"

// t0 is when every test starts.
var t0 = time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// auditRecorder is the server's adapter: key events into the audit trail.
type auditRecorder struct{ rec *audit.Recorder }

func (a auditRecorder) RecordKeyEvent(ctx context.Context, tx store.Tx, ev keys.Event) error {
	o := audit.Origin{Actor: audit.Actor{Type: ev.Origin.ActorType, ID: ev.Origin.ActorID}}
	e := o.Event(audit.Admin, ev.Type)
	e.Details = ev.Details()
	_, err := a.rec.Append(ctx, tx, e)
	return err
}

// env is one store, root key and clock on which CA managers are made.
type env struct {
	t    *testing.T
	st   store.Store
	root *keys.RootKey
	clk  *clock
	logs *bytes.Buffer
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	root, err := keys.NewRootKey(bytes.Repeat([]byte{0x42}, keys.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, root: root, clk: &clock{t: t0}, logs: &bytes.Buffer{}}
}

func sqliteEnv(t *testing.T) *env {
	t.Helper()
	st, _ := storetest.Backends(t)[0].Open(t)
	return newEnv(t, st)
}

// params: a 24 h CA, 1 h SVIDs.
func (e *env) params(st store.Store, holder string) ca.Params {
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: e.clk.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return ca.Params{
		Store: st, Root: e.root, TrustDomain: td, MaxSVIDTTL: time.Hour, Holder: holder,
		Recorder: auditRecorder{rec}, Clock: e.clk.Now, Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
	}
}

func (e *env) manager(p ca.Params) *ca.Manager {
	e.t.Helper()
	m, err := ca.New(e.t.Context(), p)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) current(m *ca.Manager) credential.CAKey {
	e.t.Helper()
	k, err := m.CurrentCA()
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

func (e *env) list(m *ca.Manager) []ca.Info {
	e.t.Helper()
	l, err := m.List(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

func states(l []ca.Info) []string {
	out := make([]string, len(l))
	for i, k := range l {
		out[i] = fmt.Sprintf("%d:%s", i, k.State)
	}
	return out
}

// leaf is an X.509-SVID signed with k at now: a minimal leaf with one
// SPIFFE URI SAN, valid for ttl but never past the CA's NotAfter. It
// returns the chain to present (the leaf, then the CA chain without
// self-signed roots).
func leaf(t *testing.T, k credential.CAKey, now time.Time, ttl time.Duration) []*x509.Certificate {
	t.Helper()
	key := testca.Key(t)
	notAfter := now.Add(ttl)
	for _, c := range k.Chain {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), NotBefore: now.Add(-30 * time.Second), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
		URIs: []*url.URL{{Scheme: "spiffe", Host: td, Path: "/agent/bot"}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, k.Chain[0], key.Public(), k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	out := []*x509.Certificate{c}
	for _, ic := range k.Chain {
		if !bytes.Equal(ic.RawSubject, ic.RawIssuer) {
			out = append(out, ic)
		}
	}
	return out
}

// verify checks an SVID with go-spiffe against a bundle of authorities.
func verify(chain []*x509.Certificate, authorities []*x509.Certificate, now time.Time) error {
	b := x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString(td), authorities)
	id, _, err := x509svid.Verify(chain, b, x509svid.WithTime(now))
	if err != nil {
		return err
	}
	if id.String() != "spiffe://"+td+"/agent/bot" {
		return fmt.Errorf("verified as %s", id)
	}
	return nil
}

// TestLifecycle runs the CA through several rotations on a fake clock, in
// 10 minute steps over three days, a refresh at every step, signing an
// SVID with the current CA at every step. At every step, every SVID not
// yet expired verifies (go-spiffe's x509svid.Verify) against a bundle of
// X509Authorities; a CA signs only after it has been in the authorities
// for the prepublication delay (TTL/3); SVIDs get their full TTL; every
// key goes pending → active → retired → removed.
func TestLifecycle(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager(e.params(e.st, "r"))
	const (
		ttl   = time.Hour
		delay = 8 * time.Hour
		step  = 10 * time.Minute
	)
	type svid struct {
		chain []*x509.Certificate
		kid   string
	}
	var (
		outstanding []svid
		firstSeen   = map[string]time.Time{}
		seen        = map[string][]string{} // kid → states in order
		signedBy    []string
	)
	first := e.current(m).ID
	for now := t0; now.Before(t0.Add(72 * time.Hour)); now = now.Add(step) {
		e.clk.Set(now)
		if err := m.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		auths := m.X509Authorities()
		for _, k := range e.list(m) {
			if s := seen[k.ID]; len(s) == 0 || s[len(s)-1] != string(k.State) {
				seen[k.ID] = append(s, string(k.State))
			}
			if c := k.Certificate(); c != nil && slices.ContainsFunc(auths, c.Equal) {
				if _, ok := firstSeen[k.ID]; !ok {
					firstSeen[k.ID] = now
				}
			}
		}
		cur := e.current(m)
		if !slices.ContainsFunc(auths, cur.Chain[0].Equal) {
			t.Fatalf("at %v the signing CA %s is not an authority", now.Sub(t0), cur.ID)
		}
		if cur.ID != first && now.Sub(firstSeen[cur.ID]) < delay {
			t.Fatalf("at %v CA %s signs, published only since %v", now.Sub(t0), cur.ID, firstSeen[cur.ID].Sub(t0))
		}
		if len(signedBy) == 0 || signedBy[len(signedBy)-1] != cur.ID {
			signedBy = append(signedBy, cur.ID)
		}
		chain := leaf(t, cur, now, ttl)
		if got := chain[0].NotAfter; !got.Equal(now.Add(ttl)) {
			t.Fatalf("at %v the SVID is clamped to %v by CA %s", now.Sub(t0), got.Sub(t0), cur.ID)
		}
		outstanding = append(outstanding, svid{chain, cur.ID})
		outstanding = slices.DeleteFunc(outstanding, func(s svid) bool { return !now.Before(s.chain[0].NotAfter) })
		for _, s := range outstanding {
			if err := verify(s.chain, auths, now); err != nil {
				t.Fatalf("at %v an SVID of CA %s valid until %v fails: %v", now.Sub(t0), s.kid, s.chain[0].NotAfter.Sub(t0), err)
			}
		}
		if len(auths) > 3 {
			t.Fatalf("at %v %d authorities: removal does not work", now.Sub(t0), len(auths))
		}
	}
	l := e.list(m)
	if len(l) < 6 || len(signedBy) < 6 {
		t.Fatalf("%d keys, %d signed in 3 days", len(l), len(signedBy))
	}
	for i, k := range l {
		want := []string{"pending", "active", "retired", "removed"}
		if i == 0 {
			want = want[1:]
		}
		if k.State != keys.StateRemoved {
			continue
		}
		if diff := cmp.Diff(want, seen[k.ID]); diff != "" {
			t.Errorf("key %d states (-want +got):\n%s", i, diff)
		}
		// It stayed until every SVID it could have signed had expired.
		if k.RemoveAt.Before(k.RetireAt.Add(ttl)) {
			t.Errorf("key %d removed at %v, retired at %v", i, k.RemoveAt, k.RetireAt)
		}
		if c := k.Certificate(); c.NotAfter.Before(k.RetireAt.Add(ttl)) {
			t.Errorf("key %d certificate ends %v, before its retirement + TTL", i, c.NotAfter)
		}
	}
	// The schedule: a key created at c signs from c + 8 h; its successor
	// is created at c + 12 h and signs at c + 20 h (½ and ⅚ of 24 h).
	for i := 2; i < len(l); i++ {
		c := l[i-1].PublishAt
		if !l[i-1].ActivateAt.Equal(c.Add(delay)) || !l[i].PublishAt.Equal(c.Add(12*time.Hour)) ||
			!l[i].ActivateAt.Equal(c.Add(20*time.Hour)) {
			t.Errorf("key %d: published %v, signs %v; next published %v, signs %v", i-1,
				c.Sub(t0), l[i-1].ActivateAt.Sub(t0), l[i].PublishAt.Sub(t0), l[i].ActivateAt.Sub(t0))
		}
	}
	rep, err := audit.Verify(t.Context(), e.st, audit.VerifyParams{})
	if err != nil || !rep.OK {
		t.Fatalf("audit trail: %+v %v", rep, err)
	}
}

func TestCertificateProfile(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager(e.params(e.st, "r"))
	k := e.current(m)
	if len(k.Chain) != 1 {
		t.Fatalf("chain of %d", len(k.Chain))
	}
	c := k.Chain[0]
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Fatalf("not self-signed: %v", err)
	}
	got := fmt.Sprintf("subject=%s uris=%v ca=%v pathlen=%d/%v ku=%b ski=%v sig=%v pub=%T",
		c.Subject, c.URIs, c.IsCA, c.MaxPathLen, c.MaxPathLenZero, c.KeyUsage, len(c.SubjectKeyId) > 0,
		c.SignatureAlgorithm, c.PublicKey)
	want := fmt.Sprintf("subject=CN=example.org CA %s,O=agentid uris=[spiffe://example.org] ca=true pathlen=0/true ku=1100000 ski=true sig=ECDSA-SHA256 pub=*ecdsa.PublicKey", k.ID)
	if got != want {
		t.Errorf("certificate\n got %s\nwant %s", got, want)
	}
	// X509-SVID §4.3: the key usage extension is critical.
	for _, ext := range c.Extensions {
		if ext.Id.String() == "2.5.29.15" && !ext.Critical {
			t.Error("key usage is not critical")
		}
		if ext.Id.String() == "2.5.29.19" && !ext.Critical {
			t.Error("basic constraints are not critical")
		}
	}
	if !c.NotBefore.Equal(t0.Add(-ca.Backdate)) || !c.NotAfter.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("validity %v – %v", c.NotBefore, c.NotAfter)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %v", c.SerialNumber)
	}
	// go-spiffe accepts it as a bundle authority and its SVIDs.
	if err := verify(leaf(t, k, t0, time.Hour), m.X509Authorities(), t0); err != nil {
		t.Fatal(err)
	}
	// A long trust domain leaves the CommonName within 64 bytes.
	el := sqliteEnv(t)
	long := el.params(el.st, "r")
	long.TrustDomain = "a-rather-long-trust-domain-name.example.org"
	l := el.manager(long)
	if cn := el.current(l).Chain[0].Subject.CommonName; cn != "CA "+el.current(l).ID {
		t.Errorf("CommonName %q", cn)
	}
	// A CA lifetime shorter than 6 SVID lifetimes: the certificate still
	// outlives every SVID its key signs on schedule.
	e2 := sqliteEnv(t)
	p := e2.params(e2.st, "r")
	p.TTL, p.MaxSVIDTTL = 3*time.Hour, time.Hour
	k2 := e2.current(e2.manager(p))
	retireBy := t0.Add(time.Hour + 90*time.Minute) // delay + period
	if want := retireBy.Add(time.Hour + keys.RemovalLeeway); !k2.Chain[0].NotAfter.Equal(want) {
		t.Errorf("NotAfter %v, want %v", k2.Chain[0].NotAfter, want)
	}
}

func TestTaint(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager(e.params(e.st, "r"))
	a := e.current(m)
	e.clk.Advance(time.Hour)
	now := e.clk.Now()
	old := leaf(t, a, now, time.Hour)
	origin := keys.Origin{ActorType: "admin", ActorID: "adm_1"}
	info, err := m.Taint(t.Context(), origin, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != a.ID || !info.TaintedAt.Equal(now) || info.State != keys.StateRetired || info.Fingerprint() == "" {
		t.Fatalf("Taint = %+v", info)
	}
	b := e.current(m) // signs at once
	if b.ID == a.ID {
		t.Fatal("the tainted CA still signs")
	}
	auths := m.X509Authorities()
	if len(auths) != 2 || !auths[0].Equal(a.Chain[0]) || !auths[1].Equal(b.Chain[0]) {
		t.Fatalf("authorities after taint: %d", len(auths))
	}
	if tc := m.TaintedCAs(); len(tc) != 1 || !tc[0].Equal(a.Chain[0]) {
		t.Fatalf("TaintedCAs = %v", tc)
	}
	// The SVID signed before the taint still verifies until it expires;
	// its holder re-issues now and gets one from the successor.
	if err := verify(old, auths, now); err != nil {
		t.Fatal(err)
	}
	if err := verify(leaf(t, b, now, time.Hour), auths, now); err != nil {
		t.Fatal(err)
	}
	// The tainted CA leaves the bundle once its SVIDs have expired.
	e.clk.Set(info.RemoveAt)
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if auths := m.X509Authorities(); len(auths) != 1 || !auths[0].Equal(b.Chain[0]) || len(m.TaintedCAs()) != 0 {
		t.Fatalf("authorities after removal: %d", len(auths))
	}
	// Unknown ids.
	if _, err := m.Taint(t.Context(), origin, "sgk_nope"); !errorsIs(err, keys.ErrUnknownKey) {
		t.Fatalf("Taint(unknown) = %v", err)
	}
}

// TestReplicasRotateOnce: replicas on one database (both backends) race to
// create the first CA, to make a due rotation and to taint the active CA;
// each happens once.
func TestReplicasRotateOnce(t *testing.T) {
	const n = 4
	for _, rs := range storetest.Replicas(t, n) {
		t.Run(rs.Name, func(t *testing.T) {
			stores := rs.Open(t)
			e := newEnv(t, stores[0])
			ms := make([]*ca.Manager, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { ms[i], errs[i] = ca.New(t.Context(), e.params(stores[i], fmt.Sprintf("r%d", i))) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
			}
			if l := e.list(ms[0]); len(l) != 1 {
				t.Fatalf("%d first CAs", len(l))
			}
			first := e.current(ms[0]).ID
			for i, m := range ms {
				if e.current(m).ID != first {
					t.Fatalf("replica %d signs with another CA", i)
				}
			}
			e.clk.Advance(12 * time.Hour)
			for range 3 {
				for i := range n {
					wg.Go(func() { errs[i] = ms[i].Refresh(t.Context()) })
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("replica %d: %v", i, err)
					}
				}
			}
			if diff := cmp.Diff([]string{"0:active", "1:pending"}, states(e.list(ms[0]))); diff != "" {
				t.Fatalf("after racing rotations (-want +got):\n%s", diff)
			}
			for i := range n {
				wg.Go(func() {
					_, errs[i] = ms[i].Taint(t.Context(), keys.Origin{ActorType: "admin", ActorID: "adm_1"}, first)
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil && !errorsIs(err, keys.ErrBusy) {
					t.Fatalf("replica %d: %v", i, err)
				}
			}
			if diff := cmp.Diff([]string{"0:retired", "1:active", "2:pending"}, states(e.list(ms[0]))); diff != "" {
				t.Fatalf("after racing taints (-want +got):\n%s", diff)
			}
			for _, m := range ms {
				if err := m.Refresh(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			want := e.list(ms[0])[1].ID
			for i, m := range ms {
				if got := e.current(m).ID; got != want {
					t.Errorf("replica %d signs with %s, want %s", i, got, want)
				}
			}
		})
	}
}

func TestParamsRejected(t *testing.T) {
	e := sqliteEnv(t)
	for name, edit := range map[string]func(*ca.Params){
		"no trust domain":  func(p *ca.Params) { p.TrustDomain = "" },
		"bad trust domain": func(p *ca.Params) { p.TrustDomain = "Example.org" },
		"ttl too short":    func(p *ca.Params) { p.TTL = 59 * time.Minute },
		"ttl too long":     func(p *ca.Params) { p.TTL = ca.MaxTTL + time.Hour },
		"no svid ttl":      func(p *ca.Params) { p.MaxSVIDTTL = 0 },
		"no store":         func(p *ca.Params) { p.Store = nil },
		"no root":          func(p *ca.Params) { p.Root = nil },
	} {
		p := e.params(e.st, "r")
		edit(&p)
		if _, err := ca.New(t.Context(), p); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if ks, _ := e.st.ListSigningKeys(t.Context(), ca.Purpose); len(ks) != 0 {
		t.Fatal("a rejected manager created a key")
	}
}

// TestNoPrivateMaterial looks for the CA private keys in List, the
// authorities, the audit trail and the logs, and in how a Manager and its
// keys print.
func TestNoPrivateMaterial(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager(e.params(e.st, "r"))
	if _, err := m.Rotate(t.Context(), keys.Origin{ActorType: "admin", ActorID: "adm_1"}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(8 * time.Hour)
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := e.current(m)
	if _, err := m.Taint(t.Context(), keys.Origin{ActorType: "admin", ActorID: "adm_1"}, a.ID); err != nil {
		t.Fatal(err)
	}
	b := e.current(m)
	var secrets [][]byte
	for _, k := range []credential.CAKey{a, b} {
		priv, err := k.Signer.(*ecdsa.PrivateKey).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, priv)
	}
	ks, err := e.st.ListSigningKeys(t.Context(), ca.Purpose)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		secrets = append(secrets, k.Sealed)
	}
	listJSON, err := json.Marshal(e.list(m))
	if err != nil {
		t.Fatal(err)
	}
	var auths []byte
	for _, c := range m.X509Authorities() {
		auths = append(auths, c.Raw...)
	}
	recs, _, err := e.st.ListAudit(t.Context(), store.AuditQuery{}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var trail []byte
	for _, r := range recs {
		trail = append(trail, r.Body...)
	}
	var printed bytes.Buffer
	slog.New(slog.NewJSONHandler(&printed, nil)).Info("m", "m", m)
	fmt.Fprintf(&printed, "%v %+v %#v %s", m, m, m, m)
	places := map[string][]byte{"List": listJSON, "authorities": auths, "audit trail": trail,
		"logs": e.logs.Bytes(), "printed": printed.Bytes()}
	for where, b := range places {
		for _, s := range secrets {
			if containsAny(b, s) {
				t.Errorf("private key material in %s", where)
			}
		}
	}
	if len(trail) == 0 || !bytes.Contains(trail, []byte(`"key.tainted"`)) {
		t.Error("no key.tainted event")
	}
}
