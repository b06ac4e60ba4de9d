package agent_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/dpop"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const clientID = "agt_test"

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeAS is an authorization server written for the tests: it publishes
// RFC 8414 metadata and verifies client assertions with go-jose directly.
type fakeAS struct {
	t         *testing.T
	srv       *httptest.Server
	key       crypto.PublicKey // the client's registered key
	kid       string
	clock     *fakeClock
	expiresIn int

	mu           sync.Mutex
	issued       int
	jtis         map[string]bool
	forms        []url.Values
	traceparents []string
	// fail, when set, answers the token request instead.
	fail func(w http.ResponseWriter)
	// gate, when set, holds every token answer until it is closed.
	gate chan struct{}
	// nonce, when set, is required in DPoP proofs.
	nonce string
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newFakeAS(t *testing.T, key crypto.PublicKey, clock *fakeClock) *fakeAS {
	as := &fakeAS{t: t, key: key, kid: "key-1", clock: clock, expiresIn: 100, jtis: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"issuer": as.srv.URL, "token_endpoint": as.tokenURL(), "jwks_uri": as.srv.URL + "/oauth2/jwks"})
	})
	mux.HandleFunc("POST /oauth2/token", as.token)
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	return as
}

func (as *fakeAS) tokenURL() string { return as.srv.URL + "/oauth2/token" }

func (as *fakeAS) count() int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.issued
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (as *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "form")
		return
	}
	as.mu.Lock()
	as.forms = append(as.forms, r.PostForm)
	as.traceparents = append(as.traceparents, r.Header.Get("Traceparent"))
	fail, gate, nonce := as.fail, as.gate, as.nonce
	as.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail != nil {
		fail(w)
		return
	}
	if err := as.checkAssertion(r.PostForm); err != nil {
		as.t.Errorf("client assertion: %v", err)
		oauthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	typ, jkt := "Bearer", ""
	if proof := r.Header.Get("DPoP"); proof != "" {
		p, err := dpop.Verify(proof, dpop.VerifyParams{Method: http.MethodPost, URL: as.tokenURL(), Nonce: nonce, Now: as.clock.Now()})
		switch {
		case errors.Is(err, dpop.ErrUseNonce):
			w.Header().Set("DPoP-Nonce", nonce)
			oauthError(w, http.StatusBadRequest, "use_dpop_nonce", "use the nonce")
			return
		case err != nil:
			oauthError(w, http.StatusBadRequest, "invalid_dpop_proof", err.Error())
			return
		}
		typ, jkt = "DPoP", p.Thumbprint
	}
	as.mu.Lock()
	as.issued++
	n := as.issued
	as.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": fmt.Sprintf("tok-%d.%s", n, jkt), "token_type": typ,
		"expires_in": as.expiresIn, "scope": r.PostForm.Get("scope"),
	})
}

// checkAssertion applies RFC 7523 §3 with go-jose alone.
func (as *fakeAS) checkAssertion(f url.Values) error {
	if f.Get("grant_type") != "client_credentials" ||
		f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return errors.New("wrong grant or assertion type")
	}
	tok, err := jwt.ParseSigned(f.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256})
	if err != nil {
		return err
	}
	if h := tok.Headers[0]; h.KeyID != as.kid {
		return fmt.Errorf("kid %q, want %q", h.KeyID, as.kid)
	}
	var c jwt.Claims
	if err := tok.Claims(as.key, &c); err != nil {
		return err
	}
	if c.Issuer != clientID || c.Subject != clientID || f.Get("client_id") != clientID {
		return fmt.Errorf("iss %q sub %q client_id %q", c.Issuer, c.Subject, f.Get("client_id"))
	}
	if !slices.Contains(c.Audience, as.tokenURL()) {
		return fmt.Errorf("aud %v lacks the token endpoint", c.Audience)
	}
	if c.IssuedAt == nil || c.Expiry == nil || c.Expiry.Time().Sub(c.IssuedAt.Time()) != 60*time.Second ||
		!c.IssuedAt.Time().Equal(as.clock.Now()) {
		return fmt.Errorf("iat %v exp %v: want now and now+60s", c.IssuedAt, c.Expiry)
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if c.ID == "" || as.jtis[c.ID] {
		return fmt.Errorf("jti %q missing or reused", c.ID)
	}
	as.jtis[c.ID] = true
	return nil
}
