package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// TestPathSegmentsAreEscaped: a kid may hold '/', '%', '?' and '#'; each
// reaches the server as one path segment.
func TestPathSegmentsAreEscaped(t *testing.T) {
	var gotPath, gotRaw, gotMethod string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotMethod, gotPath, gotRaw = r.Method, r.URL.Path, r.URL.EscapedPath()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c, err := admin.New(srv.URL+"/base", "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveClientKey(context.Background(), "my-agent", "team/ci+1=%?#"); err != nil {
		t.Fatal(err)
	}
	if gotMethod != http.MethodDelete || gotPath != "/base/v1/agents/my-agent/keys/team/ci+1=%?#" ||
		gotRaw != "/base/v1/agents/my-agent/keys/team%2Fci+1=%25%3F%23" {
		t.Fatalf("%s %q (escaped %q)", gotMethod, gotPath, gotRaw)
	}
}
