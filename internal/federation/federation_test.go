package federation_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentid/agentid/internal/audit"
	agentfed "github.com/agentid/agentid/internal/federation"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

// TestFetchStoreAndRefresh fetches a foreign bundle from go-spiffe's
// bundle endpoint handler, stores it, hands it out in a form go-spiffe's
// verifiers accept, and fetches it again when its refresh hint has passed,
// picking up the change.
func TestFetchStoreAndRefresh(t *testing.T) {
	ctx := context.Background()
	ca := newForeignCA(t, partner, partnerTD, "k1")
	ep := serveBundle(t, partner, ca.bundle(t, 10, 2*time.Minute))
	st, c := openStore(t), newClock()
	m := newManager(t, st, c, "replica-a", ep.roots(), agentfed.Domain{TrustDomain: partnerTD, EndpointURL: ep.url()})

	if got := m.Bundles(); len(got) != 0 {
		t.Fatalf("before the first fetch, Bundles() = %v, want none", got)
	}
	changed := m.Changed()
	if err := m.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	select {
	case <-changed:
	default:
		t.Error("Changed() not closed by the first bundle")
	}
	b, ok := m.Bundles()[partnerTD]
	if !ok || b.Sequence != 10 || b.RefreshHint != 2*time.Minute || !b.FetchedAt.Equal(c.now()) {
		t.Fatalf("Bundles()[%s] = %+v, %v; want sequence 10, hint 2m, fetched now", partnerTD, b, ok)
	}

	// go-spiffe verifies the foreign SVIDs against what the Manager hands
	// out: the X.509 authorities and the JWKS of the JWT authorities.
	if _, _, err := x509svid.Verify(ca.svid(t, "/db"), x509bundle.FromX509Authorities(partner, b.X509Authorities)); err != nil {
		t.Errorf("x509svid.Verify against the federated X.509 authorities: %v", err)
	}
	jb, err := jwtbundle.Parse(partner, b.JWTJWKS)
	if err != nil {
		t.Fatalf("jwtbundle.Parse(JWTJWKS): %v", err)
	}
	if _, err := jwtsvid.ParseAndValidate(ca.jwtSVID(t, "/db", "spiffe://example.org/agent/x"), jb,
		[]string{"spiffe://example.org/agent/x"}); err != nil {
		t.Errorf("jwtsvid.ParseAndValidate against the federated JWT authorities: %v", err)
	}

	rec, err := st.GetFederatedBundle(ctx, partnerTD)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Sequence != 10 || !rec.RefreshAt.Equal(c.now().Add(2*time.Minute)) || rec.LastError != "" || rec.EndpointURL != ep.url() {
		t.Errorf("stored %+v; want sequence 10, refresh in 2m, no error", rec)
	}

	// Not due: nothing fetched.
	c.add(time.Minute)
	if err := m.Sync(ctx); err != nil || ep.hits.Load() != 1 {
		t.Fatalf("Sync before the refresh hint: %v, %d fetches; want 1", err, ep.hits.Load())
	}

	// The foreign trust domain rotates: a new JWT key, sequence 11.
	next := ca.bundle(t, 11, 2*time.Minute)
	other := newForeignCA(t, partner, partnerTD, "k2")
	if err := next.AddJWTAuthority("k2", other.jwtKey.Public()); err != nil {
		t.Fatal(err)
	}
	ep.set(next)
	c.add(time.Minute)
	changed = m.Changed()
	if err := m.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if ep.hits.Load() != 2 {
		t.Errorf("%d fetches after the refresh hint, want 2", ep.hits.Load())
	}
	select {
	case <-changed:
	default:
		t.Error("Changed() not closed by the new bundle")
	}
	if b := m.Bundles()[partnerTD]; b.Sequence != 11 || len(b.JWTAuthorities) != 2 {
		t.Errorf("after the change: sequence %d, %d JWT authorities; want 11, 2", b.Sequence, len(b.JWTAuthorities))
	}

	// Unchanged on the next refresh: fetched, no new audit event, no wake-up.
	c.add(2 * time.Minute)
	changed = m.Changed()
	if err := m.Sync(ctx); err != nil || ep.hits.Load() != 3 {
		t.Fatalf("third refresh: %v, %d fetches", err, ep.hits.Load())
	}
	select {
	case <-changed:
		t.Error("Changed() closed by an unchanged bundle")
	default:
	}

	evs := events(t, st, agentfed.EventBundleUpdated)
	if len(evs) != 2 {
		t.Fatalf("%d %s events, want 2 (first fetch, change): %+v", len(evs), agentfed.EventBundleUpdated, evs)
	}
	want := map[string]any{
		"trust_domain": partnerTD, "endpoint_url": ep.url(), "sequence": float64(11), "previous_sequence": float64(10),
		"x509_authorities": float64(1), "jwt_authorities": float64(2), "trigger": "scheduled", "replica": "replica-a",
	}
	if diff := cmp.Diff(want, evs[1].Details); diff != "" {
		t.Errorf("%s details (-want +got):\n%s", agentfed.EventBundleUpdated, diff)
	}
	if evs[1].Actor == nil || evs[1].Actor.Type != audit.ActorSystem || evs[1].Outcome != "success" {
		t.Errorf("event actor %+v, outcome %s; want system, success", evs[1].Actor, evs[1].Outcome)
	}
	if _, ok := evs[0].Details["previous_sequence"]; ok {
		t.Errorf("first fetch has a previous_sequence: %v", evs[0].Details)
	}
}

// TestKeepsLastGoodBundle: a failing endpoint leaves the last good bundle
// in use, backs off, and is an audit event after FailureAuditThreshold
// failures in a row, once.
func TestKeepsLastGoodBundle(t *testing.T) {
	ctx := context.Background()
	ca := newForeignCA(t, partner, partnerTD, "k1")
	ep := serveBundle(t, partner, ca.bundle(t, 5, 10*time.Minute))
	st, c := openStore(t), newClock()
	m := newManager(t, st, c, "replica-a", ep.roots(), agentfed.Domain{TrustDomain: partnerTD, EndpointURL: ep.url()})
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ep.fail.Store(true)
	c.add(10 * time.Minute)
	// Backoff from 30 s, doubling, never beyond the 10 min refresh interval.
	for i, wantDelay := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute} {
		err := m.Sync(ctx)
		var fe *agentfed.FetchError
		if !errors.As(err, &fe) || !errors.Is(err, agentfed.ErrFetch) || fe.TrustDomain != partnerTD {
			t.Fatalf("failure %d: Sync = %v, want a FetchError", i+1, err)
		}
		rec, err := st.GetFederatedBundle(ctx, partnerTD)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Failures != i+1 || !strings.Contains(rec.LastError, "503") || !rec.RefreshAt.Equal(c.now().Add(wantDelay)) || rec.Sequence != 5 {
			t.Errorf("failure %d: stored failures %d, error %q, refresh in %s, sequence %d; want %d, a 503, %s, 5",
				i+1, rec.Failures, rec.LastError, rec.RefreshAt.Sub(c.now()), rec.Sequence, i+1, wantDelay)
		}
		if b, ok := m.Bundles()[partnerTD]; !ok || b.Sequence != 5 {
			t.Fatalf("failure %d: the last good bundle is gone: %+v", i+1, b)
		}
		c.add(wantDelay)
	}
	fails := events(t, st, agentfed.EventRefreshFailed)
	if len(fails) != 1 || fails[0].Outcome != "failure" || fails[0].Details["failures"] != float64(agentfed.FailureAuditThreshold) ||
		fails[0].Details["sequence"] != float64(5) {
		t.Errorf("%s events = %+v; want one, at %d failures, keeping sequence 5", agentfed.EventRefreshFailed, fails, agentfed.FailureAuditThreshold)
	}

	ep.fail.Store(false)
	if err := m.Sync(ctx); err != nil {
		t.Fatalf("Sync after recovery: %v", err)
	}
	rec, _ := st.GetFederatedBundle(ctx, partnerTD)
	if rec.Failures != 0 || rec.LastError != "" || !rec.RefreshAt.Equal(c.now().Add(10*time.Minute)) {
		t.Errorf("after recovery: %+v; want no failures, refresh in 10m", rec)
	}
	if n := len(events(t, st, agentfed.EventBundleUpdated)); n != 1 {
		t.Errorf("%d bundle_updated events, want 1: the bundle never changed", n)
	}
}

// TestRefusals: a bundle of another trust domain, a plain-HTTP endpoint,
// an endpoint whose certificate the roots do not verify, an oversized
// bundle, a redirect to http and an answer that is not a bundle are all
// refused, and nothing is stored.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	wrong := spiffeid.RequireTrustDomainFromString("wrong.example")
	wrongCA := newForeignCA(t, wrong, "wrong.example", "w1")
	wrongEP := serveBundle(t, wrong, wrongCA.bundle(t, 1, 0))

	good := serveBundle(t, partner, newForeignCA(t, partner, partnerTD, "k1").bundle(t, 1, 0))
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	big := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", agentfed.MaxBundleBytes) + `]}`))
	}))
	t.Cleanup(big.Close)
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/bundle", http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	html := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>login</html>"))
	}))
	t.Cleanup(html.Close)

	pool := func(srvs ...*httptest.Server) *x509.CertPool {
		p := x509.NewCertPool()
		for _, s := range srvs {
			p.AddCert(s.Certificate())
		}
		return p
	}
	for name, tc := range map[string]struct {
		url   string
		roots *x509.CertPool
		check func(error) bool
	}{
		"wrong trust domain": {wrongEP.url(), wrongEP.roots(), func(err error) bool { return errors.Is(err, agentfed.ErrWrongTrustDomain) }},
		"plain HTTP behind https": {"https" + strings.TrimPrefix(plain.URL, "http"), pool(good.srv), func(err error) bool {
			return strings.Contains(err.Error(), "HTTP response to HTTPS client")
		}},
		"untrusted certificate": {good.url(), x509.NewCertPool(), func(err error) bool {
			var ve *tls.CertificateVerificationError
			return errors.As(err, &ve)
		}},
		"system roots only": {good.url(), nil, func(err error) bool {
			var ve *tls.CertificateVerificationError
			return errors.As(err, &ve)
		}},
		"oversized":        {big.URL, pool(big), func(err error) bool { return strings.Contains(err.Error(), "larger than") }},
		"redirect to http": {redirect.URL, pool(redirect), func(err error) bool { return strings.Contains(err.Error(), "must be an https URL") }},
		"not a bundle":     {html.URL, pool(html), func(err error) bool { return strings.Contains(err.Error(), "unable to parse JWKS") }},
	} {
		t.Run(name, func(t *testing.T) {
			st, c := openStore(t), newClock()
			m := newManager(t, st, c, "replica-a", tc.roots, agentfed.Domain{TrustDomain: partnerTD, EndpointURL: tc.url})
			err := m.Sync(ctx)
			if !errors.Is(err, agentfed.ErrFetch) || !tc.check(err) {
				t.Fatalf("Sync = %v", err)
			}
			if len(m.Bundles()) != 0 {
				t.Errorf("a refused bundle is in use: %v", m.Bundles())
			}
			rec, err := st.GetFederatedBundle(ctx, partnerTD)
			if err != nil || len(rec.Bundle) != 0 || rec.Failures != 1 || rec.LastError == "" {
				t.Errorf("stored %+v, %v; want no bundle, one failure with its error", rec, err)
			}
		})
	}
}

func TestNewRefusesBadDomains(t *testing.T) {
	ca := newForeignCA(t, partner, partnerTD, "k1")
	wrongInitial := marshal(t, newForeignCA(t, partner, "wrong.example", "w").bundle(t, 1, 0))
	for name, d := range map[string][]agentfed.Domain{
		"http endpoint":       {{TrustDomain: partnerTD, EndpointURL: "http://partner.example/bundle"}},
		"relative endpoint":   {{TrustDomain: partnerTD, EndpointURL: "/bundle"}},
		"user info":           {{TrustDomain: partnerTD, EndpointURL: "https://u:p@partner.example/bundle"}},
		"own trust domain":    {{TrustDomain: ownTD, EndpointURL: "https://example.org/bundle"}},
		"bad trust domain":    {{TrustDomain: "Partner.Example", EndpointURL: "https://partner.example/bundle"}},
		"twice":               {{TrustDomain: partnerTD, EndpointURL: "https://a/b"}, {TrustDomain: partnerTD, EndpointURL: "https://c/d"}},
		"https_spiffe":        {{TrustDomain: partnerTD, EndpointURL: "https://partner.example/bundle", Profile: "https_spiffe"}},
		"bad initial bundle":  {{TrustDomain: partnerTD, EndpointURL: "https://partner.example/bundle", InitialBundle: []byte(`{"keys":`)}},
		"wrong initial":       {{TrustDomain: partnerTD, EndpointURL: "https://partner.example/bundle", InitialBundle: wrongInitial}},
		"empty initial":       {{TrustDomain: partnerTD, EndpointURL: "https://partner.example/bundle", InitialBundle: []byte(`{"keys":[]}`)}},
		"good and a bad one":  {{TrustDomain: partnerTD, EndpointURL: "https://partner.example/bundle", InitialBundle: marshal(t, ca.bundle(t, 1, 0))}, {TrustDomain: "x.example", EndpointURL: "ftp://x"}},
		"profile is case-sen": {{TrustDomain: partnerTD, EndpointURL: "https://partner.example/bundle", Profile: "HTTPS_WEB"}},
	} {
		if _, err := tryManager(openStore(t), newClock(), "r", nil, d...); err == nil {
			t.Errorf("%s: New accepted %+v", name, d)
		}
	}
}

// TestInitialBundle: the initial bundle is in use until the first fetch,
// seeding is recorded once, and after a fetch a restart serves the stored
// copy, not the initial bundle.
func TestInitialBundle(t *testing.T) {
	ctx := context.Background()
	ca := newForeignCA(t, partner, partnerTD, "k1")
	ep := serveBundle(t, partner, ca.bundle(t, 20, 0))
	ep.fail.Store(true)
	st, c := openStore(t), newClock()
	d := agentfed.Domain{TrustDomain: partnerTD, EndpointURL: ep.url(), Profile: agentfed.ProfileHTTPSWeb,
		InitialBundle: marshal(t, ca.bundle(t, 3, 0))}
	m := newManager(t, st, c, "replica-a", ep.roots(), d)
	if b, ok := m.Bundles()[partnerTD]; !ok || b.Sequence != 3 || !b.FetchedAt.IsZero() {
		t.Fatalf("before any fetch: %+v, %v; want the initial bundle (sequence 3)", b, ok)
	}
	if err := m.Sync(ctx); !errors.Is(err, agentfed.ErrFetch) {
		t.Fatalf("Sync with the endpoint down = %v", err)
	}
	if b := m.Bundles()[partnerTD]; b.Sequence != 3 {
		t.Errorf("the initial bundle left when the first fetch failed: %+v", b)
	}
	// A second replica (or a restart) does not seed again.
	newManager(t, st, c, "replica-b", ep.roots(), d)
	seeded := events(t, st, agentfed.EventBundleUpdated)
	if len(seeded) != 1 || seeded[0].Details["trigger"] != agentfed.TriggerInitial || seeded[0].Details["sequence"] != float64(3) {
		t.Fatalf("seeding events %+v; want one, trigger %s", seeded, agentfed.TriggerInitial)
	}

	ep.fail.Store(false)
	c.add(time.Minute)
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := newManager(t, st, c, "replica-c", ep.roots(), d)
	if b := restarted.Bundles()[partnerTD]; b.Sequence != 20 || b.FetchedAt.IsZero() {
		t.Errorf("after a restart: %+v; want the stored, fetched bundle (sequence 20)", b)
	}
}

// TestRefreshNow fetches on demand, whatever the schedule, as the admin
// who asked; an unknown trust domain is refused.
func TestRefreshNow(t *testing.T) {
	ctx := context.Background()
	ca := newForeignCA(t, partner, partnerTD, "k1")
	ep := serveBundle(t, partner, ca.bundle(t, 1, time.Hour))
	st, c := openStore(t), newClock()
	m := newManager(t, st, c, "replica-a", ep.roots(), agentfed.Domain{TrustDomain: partnerTD, EndpointURL: ep.url()})
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ep.set(ca.bundle(t, 2, time.Hour))
	admin := audit.Origin{Actor: audit.Actor{Type: audit.ActorAdmin, ID: "adm_1"}}
	s, err := m.Refresh(ctx, admin, partnerTD)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	want := agentfed.Status{
		TrustDomain: partnerTD, EndpointURL: ep.url(), Profile: agentfed.ProfileHTTPSWeb, HasBundle: true,
		Sequence: 2, RefreshHint: time.Hour, X509Authorities: 1, JWTAuthorities: 1,
		FetchedAt: c.now(), RefreshAt: c.now().Add(time.Hour),
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("Refresh status (-want +got):\n%s", diff)
	}
	all, err := m.Status(ctx)
	if err != nil || len(all) != 1 || !cmp.Equal(all[0], want) {
		t.Errorf("Status() = %+v, %v; want [%+v]", all, err, want)
	}
	evs := events(t, st, agentfed.EventBundleUpdated)
	if last := evs[len(evs)-1]; last.Actor == nil || last.Actor.ID != "adm_1" || last.Details["trigger"] != agentfed.TriggerManual {
		t.Errorf("manual refresh event %+v; want actor adm_1, trigger manual", last)
	}
	raw, err := m.StoredBundle(ctx, partnerTD)
	if err != nil || !strings.Contains(string(raw), `"spiffe_sequence":2`) {
		t.Errorf("StoredBundle = %s, %v", raw, err)
	}

	if _, err := m.Refresh(ctx, admin, "unknown.example"); !errors.Is(err, agentfed.ErrUnknownTrustDomain) {
		t.Errorf("Refresh(unknown) = %v, want ErrUnknownTrustDomain", err)
	}
	if _, err := m.StoredBundle(ctx, "unknown.example"); !errors.Is(err, agentfed.ErrUnknownTrustDomain) {
		t.Errorf("StoredBundle(unknown) = %v, want ErrUnknownTrustDomain", err)
	}
	ep.fail.Store(true)
	s, err = m.Refresh(ctx, admin, partnerTD)
	if !errors.Is(err, agentfed.ErrFetch) || s.Failures != 1 || s.Sequence != 2 || !s.HasBundle {
		t.Errorf("failed Refresh = %+v, %v; want a FetchError and the status keeping sequence 2", s, err)
	}
}

func TestBundlesFor(t *testing.T) {
	ctx := context.Background()
	other := spiffeid.RequireTrustDomainFromString("other.example")
	a := serveBundle(t, partner, newForeignCA(t, partner, partnerTD, "k1").bundle(t, 1, 0))
	b := serveBundle(t, other, newForeignCA(t, other, "other.example", "k2").bundle(t, 1, 0))
	roots := a.roots()
	roots.AddCert(b.srv.Certificate())
	st, c := openStore(t), newClock()
	m := newManager(t, st, c, "replica-a", roots,
		agentfed.Domain{TrustDomain: "other.example", EndpointURL: b.url()},
		agentfed.Domain{TrustDomain: partnerTD, EndpointURL: a.url()})
	if got := m.TrustDomains(); !cmp.Equal(got, []string{"other.example", partnerTD}) {
		t.Errorf("TrustDomains() = %q", got)
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := m.BundlesFor([]string{partnerTD, "unconfigured.example"})
	if len(got) != 1 || got[partnerTD].TrustDomain != partnerTD {
		t.Errorf("BundlesFor = %v; want partner.example alone", got)
	}
	if n := len(m.Bundles()); n != 2 {
		t.Errorf("Bundles() has %d, want 2", n)
	}
}

// TestReplicasFetchOncePerRefresh: replicas sharing one database, syncing
// at the same moments, fetch each refresh once, and every replica serves
// the new bundle (both backends).
func TestReplicasFetchOncePerRefresh(t *testing.T) {
	for _, set := range storetest.Replicas(t, 3) {
		t.Run(set.Name, func(t *testing.T) {
			ctx := context.Background()
			ca := newForeignCA(t, partner, partnerTD, "k1")
			ep := serveBundle(t, partner, ca.bundle(t, 1, time.Minute))
			c := newClock()
			stores := set.Open(t)
			ms := make([]*agentfed.Manager, len(stores))
			for i, st := range stores {
				ms[i] = newManager(t, st, c, "replica-"+string(rune('a'+i)), ep.roots(),
					agentfed.Domain{TrustDomain: partnerTD, EndpointURL: ep.url()})
			}
			syncAll := func() {
				var wg sync.WaitGroup
				for _, m := range ms {
					wg.Go(func() {
						if err := m.Sync(ctx); err != nil {
							t.Errorf("Sync: %v", err)
						}
					})
				}
				wg.Wait()
			}
			for cycle := 1; cycle <= 5; cycle++ {
				ep.set(ca.bundle(t, uint64(cycle), time.Minute))
				syncAll()
				syncAll() // not due again: the replicas read the stored copy
				if got := ep.hits.Load(); got != int64(cycle) {
					t.Fatalf("cycle %d: %d fetches in all, want %d (one per refresh)", cycle, got, cycle)
				}
				for i, m := range ms {
					if b := m.Bundles()[partnerTD]; b.Sequence != uint64(cycle) {
						t.Errorf("cycle %d: replica %d serves sequence %d", cycle, i, b.Sequence)
					}
				}
				c.add(time.Minute)
			}
			if n := len(events(t, stores[0], agentfed.EventBundleUpdated)); n != 5 {
				t.Errorf("%d bundle_updated events, want 5", n)
			}
		})
	}
}

// TestRunFetchesAtStart: Run syncs at once and stops with its context.
func TestRunFetchesAtStart(t *testing.T) {
	ep := serveBundle(t, partner, newForeignCA(t, partner, partnerTD, "k1").bundle(t, 1, 0))
	m := newManager(t, openStore(t), newClock(), "replica-a", ep.roots(), agentfed.Domain{TrustDomain: partnerTD, EndpointURL: ep.url()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	changed := m.Changed()
	go func() { m.Run(ctx); close(done) }()
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("Run fetched nothing within 10 s")
	}
	cancel()
	<-done
	if _, ok := m.Bundles()[partnerTD]; !ok {
		t.Error("no bundle after Run")
	}
}

// TestStoredStatusWithoutFetch: Status lists every configured trust domain
// even before anything was fetched.
func TestStatusBeforeFetch(t *testing.T) {
	m := newManager(t, openStore(t), newClock(), "replica-a", nil, agentfed.Domain{TrustDomain: partnerTD, EndpointURL: "https://partner.example/b"})
	s, err := m.Status(context.Background())
	if err != nil || len(s) != 1 || s[0].HasBundle || s[0].TrustDomain != partnerTD || s[0].Profile != agentfed.ProfileHTTPSWeb {
		t.Errorf("Status() = %+v, %v", s, err)
	}
	if _, err := m.StoredBundle(context.Background(), partnerTD); !errors.Is(err, agentfed.ErrNoBundle) {
		t.Errorf("StoredBundle before any fetch = %v, want ErrNoBundle", err)
	}
	_ = store.ErrNotFound
}
