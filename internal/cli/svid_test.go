package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/admin"
)

const (
	fakeCSR   = "-----BEGIN CERTIFICATE REQUEST-----\nMIHGMG4CAQAwADBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABA==\n-----END CERTIFICATE REQUEST-----\n"
	fakeChain = "-----BEGIN CERTIFICATE-----\nMIIBSVIDLEAF\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIBCACERT\n-----END CERTIFICATE-----\n"
	fakeJWT   = "eyJhbGciOiJFUzI1NiIsImtpZCI6InNna18xIiwidHlwIjoiSldUIn0.eyJzdWIiOiJzcGlmZmUifQ.c2ln"
)

// svidAPI is a fake of the SVID and bundle endpoints.
type svidAPI struct {
	mu     sync.Mutex
	bodies []string
	bundle []byte
}

func (f *svidAPI) serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/agents/{ref}/svids", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies = append(f.bodies, string(b))
		f.mu.Unlock()
		var req admin.IssueSVIDRequest
		if err := json.Unmarshal(b, &req); err != nil {
			writeProblem(w, admin.Problem{Type: admin.ProblemBadRequest, Title: "Bad request", Status: 400, Detail: err.Error()})
			return
		}
		switch ref := r.PathValue("ref"); {
		case ref == "paused":
			writeProblem(w, admin.Problem{Type: admin.ProblemIllegalTransition, Title: "Illegal state transition", Status: 409,
				Detail: `agent "paused" is suspended: it gets no credentials`})
		case req.Type == admin.SVIDTypeX509:
			writeJSON(w, http.StatusCreated, admin.IssuedSVID{Type: req.Type, SPIFFEID: "spiffe://example.org/agent/" + ref,
				Serial: "5f0c3a9e1d2b4c6a8e0f1a2b3c4d5e6f", ExpiresAt: t0.Add(time.Hour), CertChainPEM: fakeChain})
		default:
			writeJSON(w, http.StatusCreated, admin.IssuedSVID{Type: req.Type, SPIFFEID: "spiffe://example.org/agent/" + ref,
				JTI: "tok_01jx0000000000000000000000", ExpiresAt: t0.Add(5 * time.Minute), Token: fakeJWT})
		}
	})
	mux.HandleFunc("GET /v1/agents/{ref}/svids", func(w http.ResponseWriter, r *http.Request) {
		items := []admin.SVIDRecord{
			{Kind: admin.SVIDKindX509, Serial: "5f0c3a9e1d2b4c6a8e0f1a2b3c4d5e6f", SPIFFEID: "spiffe://example.org/agent/ticket-triage",
				KeyID: "sgk_ca1", IssuedAt: t0.Add(-2 * time.Hour), ExpiresAt: t0.Add(-time.Hour), Expired: true},
			{Kind: admin.SVIDKindJWT, JTI: "tok_01jx0000000000000000000000", SPIFFEID: "spiffe://example.org/agent/ticket-triage",
				Audience: []string{"spiffe://example.org/db", "https://api.example.org"}, KeyID: "sgk_jwt1",
				IssuedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)},
		}
		writeJSON(w, http.StatusOK, paginate(r, items))
	})
	mux.HandleFunc("GET /spiffe/bundle", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.bundle)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAgentSVIDX509(t *testing.T) {
	f := &svidAPI{}
	srv := f.serve(t)
	csr := writeFile(t, "w.csr", fakeCSR)
	r := run(t, srv.URL, "agent", "svid", "x509", "ticket-triage", "--csr", csr, "--ttl", "10m")
	wantCode(t, r, ExitOK)
	golden(t, "agent_svid_x509", r.stdout)
	var req admin.IssueSVIDRequest
	if err := json.Unmarshal([]byte(f.bodies[0]), &req); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(admin.IssueSVIDRequest{Type: "x509", CSR: fakeCSR, TTL: "10m0s"}, req); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}

	r = run(t, srv.URL, "-o", "json", "agent", "svid", "x509", "ticket-triage", "--csr", csr)
	wantCode(t, r, ExitOK)
	var got admin.IssuedSVID
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.CertChainPEM != fakeChain || got.Serial == "" {
		t.Errorf("JSON output %q: %+v, %v", r.stdout, got, err)
	}
	if !strings.Contains(f.bodies[1], `"type":"x509"`) || strings.Contains(f.bodies[1], "ttl") {
		t.Errorf("request without --ttl: %s", f.bodies[1])
	}
}

func TestAgentSVIDJWT(t *testing.T) {
	f := &svidAPI{}
	srv := f.serve(t)
	r := run(t, srv.URL, "agent", "svid", "jwt", "ticket-triage", "--audience", "spiffe://example.org/db", "--audience", "https://api.example.org")
	wantCode(t, r, ExitOK)
	golden(t, "agent_svid_jwt", r.stdout)
	var req admin.IssueSVIDRequest
	if err := json.Unmarshal([]byte(f.bodies[0]), &req); err != nil {
		t.Fatal(err)
	}
	want := admin.IssueSVIDRequest{Type: "jwt", Audience: []string{"spiffe://example.org/db", "https://api.example.org"}}
	if diff := cmp.Diff(want, req); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestAgentSVIDRefused(t *testing.T) {
	f := &svidAPI{}
	srv := f.serve(t)
	csr := writeFile(t, "w.csr", fakeCSR)
	r := run(t, srv.URL, "agent", "svid", "x509", "paused", "--csr", csr)
	wantCode(t, r, ExitError)
	if want := `agentid: Illegal state transition: agent "paused" is suspended: it gets no credentials` + "\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	for name, args := range map[string][]string{
		"missing CSR file": {"agent", "svid", "x509", "a", "--csr", filepath.Join(t.TempDir(), "nope.csr")},
		"no CSR flag":      {"agent", "svid", "x509", "a"},
		"private key":      {"agent", "svid", "x509", "a", "--csr", writeFile(t, "k.pem", "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n")},
		"sub-second ttl":   {"agent", "svid", "jwt", "a", "--audience", "x", "--ttl", "10ms"},
		"no audience":      {"agent", "svid", "jwt", "a"},
	} {
		r := run(t, srv.URL, args...)
		wantCode(t, r, ExitUsage)
		if name == "private key" && !strings.Contains(r.stderr, "never the key") {
			t.Errorf("%s: stderr %q", name, r.stderr)
		}
	}
	if len(f.bodies) != 1 {
		t.Errorf("%d requests sent, want only the refused one", len(f.bodies))
	}
}

func TestAgentSVIDList(t *testing.T) {
	srv := (&svidAPI{}).serve(t)
	r := run(t, srv.URL, "agent", "svid", "list", "ticket-triage")
	wantCode(t, r, ExitOK)
	golden(t, "agent_svid_list", r.stdout)
	r = run(t, srv.URL, "-o", "json", "agent", "svid", "list", "ticket-triage", "--page-size", "1", "--all")
	wantCode(t, r, ExitOK)
	var items []admin.SVIDRecord // --all prints one array
	if err := json.Unmarshal([]byte(r.stdout), &items); err != nil || len(items) != 2 {
		t.Errorf("--all JSON: %d items, %v\n%s", len(items), err, r.stdout)
	}
}

// testBundle is a bundle document with a fixed Ed25519 CA certificate
// (Ed25519 signatures are deterministic, so the golden output is stable).
func testBundle(t *testing.T) []byte {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{Organization: []string{"agentid"}, CommonName: "example.org CA sgk_ca1"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		URIs: []*url.URL{{Scheme: "spiffe", Host: "example.org"}},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	x := base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	return []byte(`{"keys":[{"use":"x509-svid","kty":"OKP","crv":"Ed25519","x":"` + x + `","x5c":["` +
		base64.StdEncoding.EncodeToString(der) + `"]},{"use":"jwt-svid","kty":"EC","kid":"sgk_jwt1","crv":"P-256",` +
		`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}],` +
		`"spiffe_refresh_hint":300,"spiffe_sequence":1748779200}`)
}

func TestBundleShow(t *testing.T) {
	f := &svidAPI{bundle: testBundle(t)}
	srv := f.serve(t)
	r := run(t, srv.URL, "bundle", "show")
	wantCode(t, r, ExitOK)
	golden(t, "bundle_show", r.stdout)
	r = run(t, srv.URL, "-o", "json", "bundle", "show")
	wantCode(t, r, ExitOK)
	var want bytes.Buffer
	if err := json.Indent(&want, f.bundle, "", "  "); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.String()+"\n", r.stdout); diff != "" {
		t.Errorf("-o json (-want +got):\n%s", diff)
	}

	f.bundle = []byte("<html>oops</html>")
	r = run(t, srv.URL, "bundle", "show")
	wantCode(t, r, ExitError)
}
