package keys_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
)

// selfSigner certifies each key with a self-signed certificate valid from
// creation until RetireBy + MaxTokenTTL + leeway (or for validity when
// set), recording the requests.
type selfSigner struct {
	validity time.Duration
	reqs     []keys.CertRequest
	fail     error
}

func (s *selfSigner) Certify(_ context.Context, r keys.CertRequest) ([][]byte, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	s.reqs = append(s.reqs, r)
	notAfter := r.RetireBy.Add(r.MaxTokenTTL + keys.RemovalLeeway)
	if s.validity != 0 {
		notAfter = r.Now.Add(s.validity)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: r.ID},
		NotBefore: r.Now, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, r.Signer.Public(), r.Signer)
	if err != nil {
		return nil, err
	}
	return [][]byte{der}, nil
}

// caParams are CA-like parameters: a 24 h certificate lifetime, the next
// key published at ½ of it and signing at ⅚.
func (e *env) caParams(holder string, c keys.Certifier) keys.ManagerParams {
	p := e.params(e.st, holder)
	p.Purpose, p.RotationPeriod, p.PrepublishDelay, p.Certifier = "x509-ca", 12*time.Hour, 8*time.Hour, c
	return p
}

func TestCertifiedKeys(t *testing.T) {
	e := sqliteEnv(t)
	c := &selfSigner{}
	m := e.manager(e.caParams("r", c))
	a := e.current(m)
	if len(a.Chain) != 1 || a.Chain[0].Subject.CommonName != a.ID || !a.Chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(a.Public()) {
		t.Fatalf("first key's chain %v", a.Chain)
	}
	want := keys.CertRequest{ID: a.ID, Purpose: "x509-ca", Now: t0, RetireBy: t0.Add(20 * time.Hour), MaxTokenTTL: time.Hour}
	if diff := cmp.Diff([]keys.CertRequest{want}, c.reqs, cmpIgnoreSigner); diff != "" {
		t.Errorf("CertRequest (-want +got):\n%s", diff)
	}
	if l := e.list(m); len(l) != 1 || len(l[0].CertChain) != 1 || !slices.Equal(l[0].CertChain[0], a.Chain[0].Raw) {
		t.Fatalf("List chain: %+v", l)
	}

	// Every key signs for the rotation period; its successor is
	// published the prepublication delay before. The first key signs at
	// once, so its successor is published 4 h after it, signs at 12 h.
	e.clk.Set(t0.Add(4*time.Hour - time.Second))
	e.refresh(m)
	if len(e.list(m)) != 1 {
		t.Fatal("rotated early")
	}
	e.clk.Set(t0.Add(4 * time.Hour))
	e.refresh(m)
	l := e.list(m)
	if diff := cmp.Diff([]string{"0:active", "1:pending"}, states(l)); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	b := l[1]
	if !b.ActivateAt.Equal(t0.Add(12 * time.Hour)) {
		t.Errorf("successor activates at %v", b.ActivateAt.Sub(t0))
	}
	pub := m.Published()
	if len(pub) != 2 || pub[1].ID != b.ID || pub[1].State != keys.StatePending || len(pub[1].Chain) != 1 {
		t.Fatalf("Published = %+v", pub)
	}
	// A key created at c with the CA schedule is published at c, signs at
	// c + 8 h, its successor is created at c + 12 h and signs at c + 20 h:
	// ½ and ⅚ of a 24 h life.
	e.clk.Set(b.ActivateAt.Add(12*time.Hour - 8*time.Hour))
	e.refresh(m)
	l = e.list(m)
	if len(l) != 3 || !l[2].PublishAt.Equal(b.PublishAt.Add(12*time.Hour)) || !l[2].ActivateAt.Equal(b.PublishAt.Add(20*time.Hour)) {
		t.Fatalf("second rotation %+v", l)
	}

	// Certification failures fail the rotation and store nothing.
	c.fail = errors.New("upstream down")
	if _, err := m.Rotate(t.Context(), keys.Origin{ActorType: "admin", ActorID: "adm_1"}); err == nil || !strings.Contains(err.Error(), "upstream down") {
		t.Fatalf("Rotate with a failing certifier = %v", err)
	}
	if len(e.list(m)) != 3 {
		t.Fatal("a key was stored without its certificate")
	}
}

var cmpIgnoreSigner = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Signer" }, cmp.Ignore())

// TestExpiringCertificateActivatesSuccessor: after an outage of every
// replica past the point where the signing key's certificate can give
// full-TTL credentials, its successor signs at once; a key whose
// certificate expired never signs.
func TestExpiringCertificateActivatesSuccessor(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager(e.caParams("r", &selfSigner{}))
	a := e.current(m)
	notAfter := a.Chain[0].NotAfter // t0 + 20 h + 1 h + leeway

	e.clk.Set(notAfter.Add(-time.Hour - keys.RemovalLeeway + time.Minute)) // the outage ends
	e.refresh(m)
	l := e.list(m)
	if diff := cmp.Diff([]string{"0:retired", "1:active"}, states(l)); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	if got := e.current(m).ID; got != l[1].ID {
		t.Fatalf("Current = %s, want the successor", got)
	}

	e2 := sqliteEnv(t)
	c := &selfSigner{validity: time.Hour}
	m2 := e2.manager(e2.caParams("r", c))
	e2.clk.Advance(time.Hour)
	e2.refresh(m2) // reload only: nothing is due
	if _, err := m2.Current(); !errors.Is(err, keys.ErrNoKey) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Current with an expired certificate = %v, want ErrNoKey", err)
	}
}

func TestTaint(t *testing.T) {
	origin := keys.Origin{ActorType: "admin", ActorID: "adm_1"}
	t.Run("active", func(t *testing.T) {
		e := sqliteEnv(t)
		m := e.manager(e.caParams("r", &selfSigner{}))
		a := e.current(m)
		e.clk.Advance(time.Hour)
		now := e.clk.Now()
		got, err := m.Taint(t.Context(), origin, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.TaintedAt.Equal(now) || got.State != keys.StateRetired || !got.RetireAt.Equal(now) ||
			!got.RemoveAt.Equal(now.Add(time.Hour+keys.RemovalLeeway)) {
			t.Fatalf("Taint = %+v", got)
		}
		b := e.current(m) // from memory: Taint reloads
		if b.ID == a.ID {
			t.Fatal("the tainted key still signs")
		}
		l := e.list(m)
		if diff := cmp.Diff([]string{"0:retired", "1:active"}, states(l)); diff != "" {
			t.Fatalf("states (-want +got):\n%s", diff)
		}
		if !l[1].ActivateAt.Equal(now) || !l[1].RetireAt.IsZero() {
			t.Errorf("successor %+v", l[1])
		}
		// Still published until its removal, like a retired key.
		if pub := m.Published(); len(pub) != 2 || pub[0].ID != a.ID || !pub[0].TaintedAt.Equal(now) {
			t.Fatalf("Published = %+v", pub)
		}
		// Tainting it again changes nothing.
		again, err := m.Taint(t.Context(), origin, a.ID)
		if err != nil || !again.TaintedAt.Equal(now) || len(e.list(m)) != 2 {
			t.Fatalf("second Taint = %+v, %v", again, err)
		}
		want := []string{"admin key.created system initial", "admin key.tainted admin manual", "admin key.rotated admin taint"}
		if diff := cmp.Diff(want, e.events()); diff != "" {
			t.Errorf("audit events (-want +got):\n%s", diff)
		}
		// The next rotation counts from the successor's activation.
		e.clk.Set(now.Add(4*time.Hour - time.Second))
		e.refresh(m)
		if len(e.list(m)) != 2 {
			t.Fatal("scheduled rotation did not count from the successor")
		}
		rep, err := audit.Verify(t.Context(), e.st, audit.VerifyParams{})
		if err != nil || !rep.OK {
			t.Fatalf("audit trail: %+v %v", rep, err)
		}
	})
	t.Run("active with a published successor", func(t *testing.T) {
		e := sqliteEnv(t)
		m := e.manager(e.caParams("r", &selfSigner{}))
		a := e.current(m)
		e.clk.Set(t0.Add(5 * time.Hour))
		e.refresh(m)
		p := e.list(m)[1]
		now := e.clk.Now()
		if _, err := m.Taint(t.Context(), origin, a.ID); err != nil {
			t.Fatal(err)
		}
		l := e.list(m)
		if diff := cmp.Diff([]string{"0:retired", "1:active", "2:pending"}, states(l)); diff != "" {
			t.Fatalf("states (-want +got):\n%s", diff)
		}
		n := l[1]
		if !n.ActivateAt.Equal(now) || !n.RetireAt.Equal(p.ActivateAt) || l[2].ID != p.ID || !l[2].ActivateAt.Equal(p.ActivateAt) {
			t.Fatalf("keys %+v", l)
		}
		if e.current(m).ID != n.ID {
			t.Fatal("the new key does not sign")
		}
		e.clk.Set(p.ActivateAt)
		e.refresh(m)
		if e.current(m).ID != p.ID {
			t.Fatal("the published successor lost its schedule")
		}
	})
	t.Run("pending", func(t *testing.T) {
		e := sqliteEnv(t)
		m := e.manager(e.caParams("r", &selfSigner{}))
		a := e.current(m)
		e.clk.Set(t0.Add(4 * time.Hour))
		e.refresh(m) // p: published now, signs at 12 h
		p := e.list(m)[1]
		e.clk.Set(t0.Add(5 * time.Hour))
		now := e.clk.Now()
		got, err := m.Taint(t.Context(), origin, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != keys.StateRemoved || !got.RemoveAt.Equal(now) {
			t.Fatalf("tainted pending key %+v", got)
		}
		if e.current(m).ID != a.ID {
			t.Fatal("the active key stopped signing")
		}
		l := e.list(m)
		// sorted by activation: a, p (12 h), the replacement (now + 8 h)
		if diff := cmp.Diff([]string{"0:active", "1:removed", "2:pending"}, states(l)); diff != "" {
			t.Fatalf("states (-want +got):\n%s", diff)
		}
		r := l[2]
		if !r.ActivateAt.Equal(now.Add(8*time.Hour)) || !l[0].RetireAt.Equal(r.ActivateAt) {
			t.Fatalf("replacement %+v, active retires %v", r, l[0].RetireAt)
		}
		for _, k := range m.Published() {
			if k.ID == p.ID {
				t.Fatal("the withdrawn key is still published")
			}
		}
		e.clk.Set(p.ActivateAt)
		e.refresh(m)
		if e.current(m).ID != a.ID {
			t.Fatal("the withdrawn key signs")
		}
		e.clk.Set(r.ActivateAt)
		e.refresh(m)
		if e.current(m).ID != r.ID {
			t.Fatal("the replacement does not sign")
		}
		if len(e.list(m)) != 3 {
			t.Fatal("an extra rotation")
		}
	})
	t.Run("retired", func(t *testing.T) {
		e := sqliteEnv(t)
		m := e.manager(e.caParams("r", &selfSigner{}))
		a := e.current(m)
		e.clk.Set(t0.Add(4 * time.Hour))
		e.refresh(m)
		e.clk.Set(t0.Add(12 * time.Hour))
		e.refresh(m)
		before := e.list(m)
		got, err := m.Taint(t.Context(), origin, a.ID)
		if err != nil || got.State != keys.StateRetired || got.TaintedAt.IsZero() || !got.RemoveAt.Equal(before[0].RemoveAt) {
			t.Fatalf("Taint = %+v, %v", got, err)
		}
		if len(e.list(m)) != 2 {
			t.Fatal("tainting a retired key rotated")
		}
	})
	t.Run("unknown", func(t *testing.T) {
		e := sqliteEnv(t)
		m := e.manager(e.caParams("r", &selfSigner{}))
		if _, err := m.Taint(t.Context(), origin, "sgk_nope"); !errors.Is(err, keys.ErrUnknownKey) {
			t.Fatalf("Taint of an unknown key = %v, want ErrUnknownKey", err)
		}
		// Another purpose's key is unknown too.
		o := e.manager(e.params(e.st, "r"))
		if _, err := m.Taint(t.Context(), origin, e.current(o).ID); !errors.Is(err, keys.ErrUnknownKey) {
			t.Fatalf("Taint of an oauth key through the CA manager = %v", err)
		}
	})
}

func TestTaintEventDetails(t *testing.T) {
	e := sqliteEnv(t)
	m := e.manager(e.caParams("r", &selfSigner{}))
	a := e.current(m)
	if _, err := m.Taint(t.Context(), keys.Origin{ActorType: "admin", ActorID: "adm_1"}, a.ID); err != nil {
		t.Fatal(err)
	}
	recs, _, err := e.st.ListAudit(t.Context(), store.AuditQuery{AfterSeq: 1}, store.Page{})
	if err != nil || len(recs) != 2 {
		t.Fatalf("events %v %v", recs, err)
	}
	var ev audit.Event
	if err := json.Unmarshal(recs[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	d := ev.Details
	if ev.Type != keys.EventKeyTainted || d["kid"] != a.ID || d["tainted_at"] != "2030-01-02T03:00:00Z" ||
		d["state"] != "active" || d["cert_not_after"] == nil || len(d["cert_sha256"].(string)) != 64 {
		t.Errorf("key.tainted %s %v", ev.Type, d)
	}
}

func TestPrepublishDelayRejected(t *testing.T) {
	e := sqliteEnv(t)
	for name, edit := range map[string]func(*keys.ManagerParams){
		"below the minimum":     func(p *keys.ManagerParams) { p.PrepublishDelay = 5 * time.Minute },
		"not below the period":  func(p *keys.ManagerParams) { p.PrepublishDelay = 12 * time.Hour },
		"negative":              func(p *keys.ManagerParams) { p.PrepublishDelay = -time.Hour },
		"period under twice 6m": func(p *keys.ManagerParams) { p.RotationPeriod, p.PrepublishDelay = 11*time.Minute, 0 },
	} {
		p := e.caParams("r", nil)
		edit(&p)
		if _, err := keys.NewManager(t.Context(), p); err == nil {
			t.Errorf("%s: NewManager accepted it", name)
		}
	}
}
