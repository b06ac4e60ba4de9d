package admin_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

func TestNewRejectsBadServerURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://x", "http://", "://x"} {
		if _, err := admin.New(u, "t"); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
	if _, err := admin.New("https://agentid.example.com/", "t"); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsBecomeProblems(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/agents/x":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"type":"urn:agentid:problem:not-found","title":"Not found","status":404,"detail":"no agent \"x\""}`))
		default: // a proxy's error page
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>" + strings.Repeat("bad gateway ", 50) + "</html>"))
		}
	}))
	defer srv.Close()
	c, err := admin.New(srv.URL, "secret")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetAgent(context.Background(), "x")
	var p *admin.Problem
	if !errors.As(err, &p) || p.Status != 404 || !admin.IsProblem(err, admin.ProblemNotFound) || p.Detail != `no agent "x"` {
		t.Fatalf("GetAgent = %v, want the server's problem", err)
	}
	_, err = c.GetOwner(context.Background(), "y")
	if !errors.As(err, &p) || p.Status != http.StatusBadGateway || p.Type != "" || len(p.Detail) > 200 {
		t.Fatalf("GetOwner through a failing proxy = %#v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatal("the error carries the token")
	}
}

func TestTokenSentAsBearer(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"version":"v","trust_domain":"example.org"}`))
	}))
	defer srv.Close()
	c, err := admin.New(srv.URL, "aida_x")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Version(context.Background()); err != nil || v.TrustDomain != "example.org" {
		t.Fatalf("Version = %+v, %v", v, err)
	}
	if got != "Bearer aida_x" {
		t.Fatalf("Authorization = %q", got)
	}
}
