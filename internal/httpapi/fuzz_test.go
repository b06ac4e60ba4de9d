package httpapi

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/sdk/admin"
)

func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"", "00-", strings.Repeat("0", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tid, ok := parseTraceparent(s)
		if !ok {
			return
		}
		if len(tid) != 32 || !isLowerHex(tid) || tid == strings.Repeat("0", 32) {
			t.Fatalf("parseTraceparent(%q) accepted trace id %q", s, tid)
		}
	})
}

// FuzzDecode drives the strict JSON decoder of every admin request body:
// whatever the bytes, the answer is nil or a requestError (400/413/415),
// never a panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","purpose":"p","owners":["x@example.com"]}`,
		`{"name":1}`, `{"unknown":true}`, `{}{}`, `[`, ``, `null`, `{"labels":{"a":"b"},"expires_at":"2026-01-01T00:00:00Z"}`,
		`{"max_ttl_seconds":1e999}`, `{"expires_at":"yesterday"}`,
		`{"node_scope":{"node_ids":["nod_01jx0000000000000000000001"],"rules":[{"attestor":"prod","matchers":["k8s:ns:a"]}]}}`,
		`{"node_scope":{"node_ids":"x"}}`, `{"node_scope":{"rules":[{"matchers":[1]}]}}`, `{"node_scope":null}`,
	} {
		f.Add([]byte(s), "application/json")
	}
	f.Add([]byte(`{}`), "text/plain")
	h := &handler{p: Params{MaxBodyBytes: 4096}}
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/agents", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", ct)
		var in struct {
			Name      string            `json:"name"`
			Owners    []string          `json:"owners"`
			Labels    map[string]string `json:"labels"`
			ExpiresAt *time.Time        `json:"expires_at"`
			TTL       int64             `json:"max_ttl_seconds"`
			NodeScope *admin.NodeScope  `json:"node_scope"`
		}
		err := h.decode(httptest.NewRecorder(), req, &in)
		if err == nil {
			return
		}
		p, internal := problemFor(err)
		if internal || (p.Status != 400 && p.Status != 413 && p.Status != 415) {
			t.Fatalf("decode(%q, %q) = %v → %d", body, ct, err, p.Status)
		}
	})
}

// TestNewRequiresDependencies checks the constructor's contract.
func TestNewRequiresDependencies(t *testing.T) {
	if _, err := New(Params{}); err == nil {
		t.Fatal("New with no dependencies succeeded")
	}
	reg := prometheus.NewRegistry()
	_, err := New(Params{
		Identity: &identity.Service{}, Auth: &adminauth.Service{}, Audit: store.AuditReader(nil),
		Ready: func(context.Context) error { return nil }, Registerer: reg, Gatherer: reg,
		Logger: slog.New(slog.DiscardHandler), Clock: time.Now, Rand: rand.Reader,
	})
	if err == nil {
		t.Fatal("New with a nil audit reader succeeded")
	}
}
