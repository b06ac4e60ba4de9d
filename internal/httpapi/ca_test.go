package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/ca"
	"github.com/agentid/agentid/internal/httpapi"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/sqlite"
	"github.com/agentid/agentid/sdk/admin"
)

// caEnv is the admin API with a CA on a fake clock.
type caEnv struct {
	url, secret, auditor string
	st                   store.Store
	ca                   *ca.Manager
	clk                  *keyClock
	admin                *admin.Client
}

func newCAEnv(t *testing.T) *caEnv {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, sqlite.Params{Path: filepath.Join(t.TempDir(), "agentid.db"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	root, err := keys.NewRootKey(bytes.Repeat([]byte{7}, keys.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Now().UTC() }
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	e := &caEnv{st: st, clk: &keyClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}}
	e.ca, err = ca.New(ctx, ca.Params{Store: st, Root: root, TrustDomain: "example.org", MaxSVIDTTL: time.Hour,
		Holder: "test", Recorder: keyAudit{rec}, Clock: e.clk.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := identity.New(identity.Params{Store: st, Recorder: rec, TrustDomain: "example.org", Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := adminauth.New(adminauth.Params{Store: st, Recorder: rec, Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	promReg := prometheus.NewRegistry()
	h, err := httpapi.New(httpapi.Params{
		Identity: reg, Auth: auth, Audit: st, Ready: st.Ping, Registerer: promReg, Gatherer: promReg, CA: e.ca,
		Logger: log, Clock: clock, Rand: rand.Reader, TrustDomain: "example.org", Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	if e.secret, _, err = auth.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if e.admin, err = admin.New(e.url, e.secret); err != nil {
		t.Fatal(err)
	}
	aud, err := e.admin.CreateAdminToken(ctx, admin.CreateAdminTokenRequest{Name: "auditor", Role: "auditor"})
	if err != nil {
		t.Fatal(err)
	}
	e.auditor = aud.Token
	return e
}

func TestCAAdmin(t *testing.T) {
	e := newCAEnv(t)
	ctx := context.Background()
	got, err := e.admin.GetCA(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.TrustDomain != "example.org" || got.Upstream || len(got.Items) != 1 {
		t.Fatalf("GetCA = %+v", got)
	}
	first := got.Items[0]
	blk, rest := pem.Decode([]byte(first.Certificate))
	if blk == nil || len(rest) != 0 || first.Chain != "" {
		t.Fatalf("certificate %q chain %q", first.Certificate, first.Chain)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Raw)
	if first.State != "active" || first.Tainted || first.Fingerprint != hex.EncodeToString(sum[:]) ||
		!first.NotBefore.Equal(cert.NotBefore) || !first.NotAfter.Equal(cert.NotAfter) ||
		first.Subject != "CN=example.org CA "+first.ID+",O=agentid" || first.Serial != hex.EncodeToString(cert.SerialNumber.Bytes()) {
		t.Fatalf("CA key %+v", first)
	}

	next, err := e.admin.RotateCA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next.State != "pending" || !next.ActivateAt.Equal(e.clk.Now().Add(8*time.Hour)) || next.RetireAt != nil {
		t.Fatalf("RotateCA = %+v", next)
	}

	e.clk.Advance(time.Minute)
	tainted, err := e.admin.TaintCA(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !tainted.Tainted || tainted.TaintedAt == nil || tainted.State != "retired" || tainted.ID != first.ID {
		t.Fatalf("TaintCA = %+v", tainted)
	}
	got, err = e.admin.GetCA(ctx, false)
	if err != nil || len(got.Items) != 3 || got.Items[1].State != "active" || got.Items[2].ID != next.ID {
		t.Fatalf("after taint GetCA = %+v, %v", got, err)
	}
	cur, err := e.ca.CurrentCA()
	if err != nil || cur.ID != got.Items[1].ID {
		t.Fatalf("CurrentCA = %v, %v", cur.ID, err)
	}

	// Removed keys are listed only on request.
	e.clk.Advance(48 * time.Hour)
	if err := e.ca.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := e.admin.GetCA(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	published, err := e.admin.GetCA(ctx, false)
	if err != nil || len(published.Items) >= len(all.Items) || all.Items[0].State != "removed" {
		t.Fatalf("GetCA: %d published, %d in all (%v)", len(published.Items), len(all.Items), err)
	}

	// Rotation and taint are audit events of the admin who asked.
	evs, err := e.admin.ListAuditEvents(ctx, admin.AuditQuery{Family: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs.Items {
		if strings.HasPrefix(ev.Type, "key.") && ev.Actor != nil && ev.Actor.Type == "admin" {
			types = append(types, ev.Type)
		}
	}
	if strings.Join(types, " ") != "key.rotated key.tainted key.rotated" {
		t.Fatalf("admin key events %v", types)
	}
}

func TestCAAdminBadInput(t *testing.T) {
	e := newCAEnv(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name, method, path, token, body string
		status                          int
		typ                             string
	}{
		{"auditor may not show", "GET", "/v1/ca", "auditor", "", 403, admin.ProblemForbidden},
		{"auditor may not rotate", "POST", "/v1/ca/rotate", "auditor", "", 403, admin.ProblemForbidden},
		{"auditor may not taint", "POST", "/v1/ca/sgk_x/taint", "auditor", "", 403, admin.ProblemForbidden},
		{"no token", "POST", "/v1/ca/rotate", "", "", 401, admin.ProblemUnauthenticated},
		{"unknown kid", "POST", "/v1/ca/sgk_nope/taint", "admin", "", 404, admin.ProblemNotFound},
		{"unknown body field", "POST", "/v1/ca/rotate", "admin", `{"ttl":"1h"}`, 400, admin.ProblemBadRequest},
		{"taint body field", "POST", "/v1/ca/sgk_x/taint", "admin", `{"reason":"x"}`, 400, admin.ProblemBadRequest},
		{"wrong method", "GET", "/v1/ca/rotate", "admin", "", 405, admin.ProblemMethodNotAllowed},
		{"wrong method on taint", "DELETE", "/v1/ca/sgk_x/taint", "admin", "", 405, admin.ProblemMethodNotAllowed},
		{"bad include_removed", "GET", "/v1/ca?include_removed=maybe", "admin", "", 400, admin.ProblemBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, err := e.st.ListSigningKeys(ctx, ca.Purpose)
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequestWithContext(ctx, tt.method, e.url+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			switch tt.token {
			case "admin":
				req.Header.Set("Authorization", "Bearer "+e.secret)
			case "auditor":
				req.Header.Set("Authorization", "Bearer "+e.auditor)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p admin.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || p.Type != tt.typ {
				t.Fatalf("%d %s (%s), want %d %s", resp.StatusCode, p.Type, p.Detail, tt.status, tt.typ)
			}
			after, err := e.st.ListSigningKeys(ctx, ca.Purpose)
			if err != nil || len(after) != len(before) || after[0].Version != before[0].Version {
				t.Fatalf("the request changed the CA keys (%v)", err)
			}
		})
	}
}
