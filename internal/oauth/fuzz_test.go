package oauth_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store/sqlite"
)

// FuzzTokenForm feeds arbitrary form bodies to the token endpoint.
func FuzzTokenForm(f *testing.F) {
	st, err := sqlite.Open(context.Background(), sqlite.Params{Path: filepath.Join(f.TempDir(), "agentid.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	e := newEnv(f, st)
	f.Add("grant_type=client_credentials&client_id=" + e.agent.ID + "&client_secret=" + e.secret + "&scope=tickets:read")
	f.Add("grant_type=client_credentials&resource=https%3A%2F%2Fapi.example.org&resource=x&expires_in=99999999999999999999")
	f.Add("grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		for _, call := range []func() *oauth.Error{
			func() *oauth.Error { _, e2 := e.srv.Token(context.Background(), &oauth.Request{Form: form}); return e2 },
			func() *oauth.Error {
				_, e2 := e.srv.Introspect(context.Background(), &oauth.Request{Form: form})
				return e2
			},
			func() *oauth.Error { return e.srv.Revoke(context.Background(), &oauth.Request{Form: form}) },
		} {
			if oerr := call(); oerr != nil && (oerr.Status < 400 || oerr.Status > 499) {
				t.Fatalf("status %d: %v", oerr.Status, oerr)
			}
		}
	})
}
