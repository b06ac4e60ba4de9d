package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/sdk/admin"
	"github.com/agentid/agentid/sdk/agent"
)

// fromAddress sends every request as if from client address ip: the
// server trusts the loopback peer's X-Forwarded-For.
type fromAddress struct{ ip string }

func (f fromAddress) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.ip)
	return http.DefaultTransport.RoundTrip(r)
}

func clientFrom(ip string) *http.Client { return &http.Client{Transport: fromAddress{ip}} }

// limitedServer is a live server behind a trusted proxy (its loopback
// peer) that lets an address fail to authenticate burst times, and
// regains a failure only every 1000 s: nothing refills during a test.
func limitedServer(t *testing.T, burst int) *liveServer {
	t.Helper()
	rate := 0.001
	return startLive(t, func(c *server.Config) {
		c.TrustedProxies = []string{"127.0.0.1"}
		c.Limits = server.LimitsConfig{FailedAuthRate: &rate, FailedAuthBurst: burst}
	}, nil)
}

// auditTypes counts the trail's authentication events by type and
// outcome ("type/outcome"), and returns the auth.rate_limited ones.
func (ls *liveServer) auditTypes() (map[string]int, []admin.AuditEvent) {
	ls.t.Helper()
	got := map[string]int{}
	var limited []admin.AuditEvent
	q := admin.AuditQuery{Family: "authentication", PageSize: 500}
	for {
		page, err := ls.admin.ListAuditEvents(ls.t.Context(), q)
		if err != nil {
			ls.t.Fatal(err)
		}
		for _, ev := range page.Items {
			got[ev.Type+"/"+ev.Outcome]++
			if ev.Type == "auth.rate_limited" {
				limited = append(limited, ev)
			}
		}
		if page.NextPageToken == "" {
			return got, limited
		}
		q.PageToken = page.NextPageToken
	}
}

// TestFailedClientAuthLimited: client_secret_basic attempts with a wrong
// secret from one address, through golang.org/x/oauth2, get invalid_client
// until the burst is spent, then 429 temporarily_unavailable with
// Retry-After and no further client.authenticated events; exactly one
// auth.rate_limited event is written; a valid client from another
// address keeps getting tokens.
func TestFailedClientAuthLimited(t *testing.T) {
	const burst = 4
	ls := limitedServer(t, burst)
	ctx := t.Context()
	const attacker, neighbour = "198.51.100.7", "203.0.113.9"
	bad := clientcredentials.Config{ClientID: ls.agent.ClientID, ClientSecret: "aidcs_wrong",
		TokenURL: ls.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}
	attackerCtx := context.WithValue(ctx, oauth2.HTTPClient, clientFrom(attacker))
	for i := range burst {
		_, err := bad.Token(attackerCtx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	before, _ := ls.auditTypes()
	for i := range 3 {
		_, err := bad.Token(attackerCtx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusTooManyRequests ||
			re.ErrorCode != "temporarily_unavailable" || re.Response.Header.Get("Retry-After") == "" {
			t.Fatalf("refusal %d: %v", i+1, err)
		}
	}
	// The answer's shape, seen raw: RFC 6749 §5.2 JSON.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ls.url+"/oauth2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", attacker)
	req.SetBasicAuth(ls.agent.ClientID, ls.secret) // even the right secret: it is not looked at
	status, hdr, body := ls.do(req)
	if status != http.StatusTooManyRequests || body["error"] != "temporarily_unavailable" ||
		!strings.Contains(body["error_description"].(string), "retry after") || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("raw refusal: %d %v %v", status, hdr, body)
	}
	// A valid client behind another address is served meanwhile.
	good := clientcredentials.Config{ClientID: ls.agent.ClientID, ClientSecret: ls.secret,
		TokenURL: ls.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader,
		EndpointParams: url.Values{"resource": {apiAudience}}}
	if tok, err := good.Token(context.WithValue(ctx, oauth2.HTTPClient, clientFrom(neighbour))); err != nil || tok.AccessToken == "" {
		t.Fatalf("valid client from another address: %v", err)
	}
	after, limited := ls.auditTypes()
	if n := after["client.authenticated/failure"] - before["client.authenticated/failure"]; n != 0 {
		t.Errorf("%d client.authenticated failures recorded while limited", n)
	}
	if after["client.authenticated/success"] <= before["client.authenticated/success"] {
		t.Error("the valid client's authentication was not recorded")
	}
	if len(limited) != 1 {
		t.Fatalf("%d auth.rate_limited events, want 1", len(limited))
	}
	ev := limited[0]
	var details map[string]any
	if err := json.Unmarshal(ev.Details, &details); err != nil {
		t.Fatal(err)
	}
	if ev.Outcome != "failure" || ev.Decision != "deny" || ev.Source == nil || ev.Source.IP != attacker ||
		details["address"] != attacker || details["endpoint_group"] != "oauth" || details["burst"] != float64(burst) {
		t.Errorf("event %+v, details %v", ev, details)
	}
}

// TestFailedClientSecretPostLimited: invalid_client answered 400 (the
// secret in the body) counts as well.
func TestFailedClientSecretPostLimited(t *testing.T) {
	const burst = 3
	ls := limitedServer(t, burst)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {ls.agent.ClientID}, "client_secret": {"aidcs_wrong"}}
	from := http.Header{"X-Forwarded-For": {"192.0.2.44"}}
	for i := range burst {
		if status, _, body := ls.post("/oauth2/token", form, from); status != http.StatusBadRequest || body["error"] != "invalid_client" {
			t.Fatalf("failure %d: %d %v", i+1, status, body)
		}
	}
	if status, hdr, body := ls.post("/oauth2/token", form, from); status != http.StatusTooManyRequests ||
		body["error"] != "temporarily_unavailable" || hdr.Get("Retry-After") == "" {
		t.Errorf("after the burst: %d %v %v", status, hdr, body)
	}
	// Introspection and revocation are the same group.
	if status, _, _ := ls.post("/oauth2/introspect", url.Values{"token": {"x"}}, from); status != http.StatusTooManyRequests {
		t.Errorf("introspection from the limited address: %d", status)
	}
}

// TestRefusedJoinTokensLimited: refused join tokens (invalid_grant, the
// credential of a grant without client authentication) count as failed
// authentications too.
func TestRefusedJoinTokensLimited(t *testing.T) {
	const burst = 3
	ls := limitedServer(t, burst)
	form := url.Values{"grant_type": {oauth.GrantJoinToken}, "join_token": {"not-a-join-token"}}
	from := http.Header{"X-Forwarded-For": {"192.0.2.45"}}
	for i := range burst {
		if status, _, body := ls.post("/oauth2/token", form, from); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("refusal %d: %d %v", i+1, status, body)
		}
	}
	if status, hdr, body := ls.post("/oauth2/token", form, from); status != http.StatusTooManyRequests ||
		body["error"] != "temporarily_unavailable" || hdr.Get("Retry-After") == "" {
		t.Errorf("after the burst: %d %v %v", status, hdr, body)
	}
	if _, limited := ls.auditTypes(); len(limited) != 1 {
		t.Errorf("auth.rate_limited events = %d, want 1", len(limited))
	}
}

// TestSDKHonoursRateLimit: sdk/agent's TokenSource with a key the server
// does not know fails until the address is limited, then gets the 429's
// Retry-After and sends nothing more before it has passed (the server
// counts no further refusal).
func TestSDKHonoursRateLimit(t *testing.T) {
	const burst = 2
	ls := limitedServer(t, burst)
	wrong, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	src, err := agent.NewTokenSource(agent.TokenSourceParams{
		Issuer: ls.url, ClientID: ls.agent.ClientID, Key: wrong, KeyID: ls.kid, Scopes: []string{"tickets:read"},
		HTTPClient: clientFrom("192.0.2.46"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range burst {
		var e *agent.Error
		if _, err := src.Token(); !errors.As(err, &e) || e.Code != "invalid_client" {
			t.Fatalf("attempt %d: %v, want invalid_client", i+1, err)
		}
	}
	var e *agent.Error
	if _, err := src.Token(); !errors.As(err, &e) || e.StatusCode != http.StatusTooManyRequests || e.RetryAfter <= 0 {
		t.Fatalf("after the burst: %v, want 429 with a Retry-After", err)
	}
	for range 5 {
		if _, err := src.Token(); !errors.As(err, &e) || e.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("within Retry-After: %v, want the same 429", err)
		}
	}
	if n := rateLimitedCount(t, ls); n != 1 {
		t.Errorf("the server refused %v requests with 429, want 1 (the SDK waits)", n)
	}
}

// rateLimitedCount is the server's agentid_http_auth_rate_limited_total
// summed over groups.
func rateLimitedCount(t *testing.T, ls *liveServer) float64 {
	t.Helper()
	var sum float64
	for line := range strings.SplitSeq(metricsText(t, ls.url, ls.token), "\n") {
		if rest, ok := strings.CutPrefix(line, "agentid_http_auth_rate_limited_total{"); ok {
			_, v, _ := strings.Cut(rest, "} ")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q", line)
			}
			sum += f
		}
	}
	return sum
}

// TestAdminBadBearerLimitedOverHTTP: bad admin tokens through the admin
// SDK end in 429 problem+json.
func TestAdminBadBearerLimitedOverHTTP(t *testing.T) {
	const burst = 3
	ls := limitedServer(t, burst)
	c, err := admin.New(ls.url, "aid_admin_wrong", admin.WithHTTPClient(clientFrom("192.0.2.80")))
	if err != nil {
		t.Fatal(err)
	}
	for i := range burst {
		_, err := c.ListAgents(t.Context(), admin.ListAgentsParams{})
		if p, ok := errors.AsType[*admin.Problem](err); !ok || p.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	_, err = c.ListAgents(t.Context(), admin.ListAgentsParams{})
	if p, ok := errors.AsType[*admin.Problem](err); !ok || p.Status != http.StatusTooManyRequests ||
		p.Type != "urn:agentid:problem:rate-limited" {
		t.Fatalf("after the burst: %v", err)
	}
	req := mustGet(t, ls.url+"/v1/agents")
	req.Header.Set("X-Forwarded-For", "192.0.2.80")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Content-Type") != "application/problem+json" ||
		resp.Header.Get("Retry-After") == "" {
		t.Errorf("raw: %d %v", resp.StatusCode, resp.Header)
	}
	// The admin's own client, from the loopback address, is unaffected.
	if _, err := ls.admin.ListAgents(t.Context(), admin.ListAgentsParams{}); err != nil {
		t.Errorf("admin from another address: %v", err)
	}
}

func TestLimitsConfig(t *testing.T) {
	c, err := server.ParseConfig([]byte("listen: 127.0.0.1:1\n"), "/x")
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.FailedAuthRate == nil || *c.Limits.FailedAuthRate != server.DefaultFailedAuthRate ||
		c.Limits.FailedAuthBurst != server.DefaultFailedAuthBurst {
		t.Errorf("defaults: %+v", c.Limits)
	}
	c, err = server.ParseConfig([]byte("limits:\n  failed_auth_rate: 0\n"), "/x")
	if err != nil || c.Limits.FailedAuthRate == nil || *c.Limits.FailedAuthRate != 0 {
		t.Errorf("rate 0 (off): %+v, %v", c.Limits, err)
	}
	c, err = server.ParseConfig([]byte("limits:\n  failed_auth_rate: 0.5\n  failed_auth_burst: 7\n"), "/x")
	if err != nil || *c.Limits.FailedAuthRate != 0.5 || c.Limits.FailedAuthBurst != 7 {
		t.Errorf("explicit: %+v, %v", c.Limits, err)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"negative rate", "limits:\n  failed_auth_rate: -1\n", "limits.failed_auth_rate"},
		{"NaN rate", "limits:\n  failed_auth_rate: .nan\n", "limits.failed_auth_rate"},
		{"infinite rate", "limits:\n  failed_auth_rate: .inf\n", "limits.failed_auth_rate"},
		{"negative burst", "limits:\n  failed_auth_burst: -3\n", "limits.failed_auth_burst"},
		{"huge burst", "limits:\n  failed_auth_burst: 100000000\n", "limits.failed_auth_burst"},
		{"unknown key", "limits:\n  failed_auth_window: 1m\n", "failed_auth_window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := server.ParseConfig([]byte(tc.yaml), "/x")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
	// The rate is off with 0 whatever the burst: the server starts and
	// never refuses.
	off := 0.0
	ls := startLive(t, func(c *server.Config) { c.Limits = server.LimitsConfig{FailedAuthRate: &off, FailedAuthBurst: 1} }, nil)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {ls.agent.ClientID}, "client_secret": {"aidcs_wrong"}}
	for i := range 5 {
		if status, _, body := ls.post("/oauth2/token", form, nil); status != http.StatusBadRequest {
			t.Fatalf("attempt %d with the limit off: %d %v", i+1, status, body)
		}
	}
}

// TestAuthZENAndNodeAttestLimited: failed authentications on the AuthZEN
// evaluation endpoint and on node attestation count toward the same
// allowance of the address, and both answer 429 problem+json.
func TestAuthZENAndNodeAttestLimited(t *testing.T) {
	ls := limitedServer(t, 2)
	send := func(path, bearer, body string) (int, http.Header, admin.Problem) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ls.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "192.0.2.99")
		req.Header.Set("X-Request-ID", "req-1")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p admin.Problem
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatalf("%s: %d, body not a problem: %v", path, resp.StatusCode, err)
		}
		return resp.StatusCode, resp.Header, p
	}
	if status, _, _ := send("/access/v1/evaluation", "aid_admin_wrong", "{}"); status != http.StatusUnauthorized {
		t.Fatalf("AuthZEN bad token: %d", status)
	}
	if status, _, _ := send(admin.NodeAttestPath, "", `{"join_token":"nope","csr":""}`); status != http.StatusUnauthorized {
		t.Fatalf("attestation with a bad join token: %d", status)
	}
	for _, path := range []string{"/access/v1/evaluation", admin.NodeAttestPath} {
		status, hdr, p := send(path, "aid_admin_wrong", "{}")
		if status != http.StatusTooManyRequests || p.Type != "urn:agentid:problem:rate-limited" ||
			hdr.Get("Content-Type") != "application/problem+json" || hdr.Get("Retry-After") == "" {
			t.Errorf("%s after the burst: %d %v %+v", path, status, hdr, p)
		}
		if path == "/access/v1/evaluation" && hdr.Get("X-Request-ID") != "req-1" {
			t.Errorf("AuthZEN refusal does not echo X-Request-ID")
		}
	}
	_, limited := ls.auditTypes()
	if len(limited) != 1 {
		t.Errorf("%d auth.rate_limited events, want 1", len(limited))
	}
}
