package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/agentid/agentid/sdk/admin"
	"github.com/agentid/agentid/sdk/resource"
	"github.com/agentid/agentid/sdk/signals"
)

// ssfPeer is a Shared Signals receiver built from independent parts:
// golang.org/x/oauth2 gets its access token, go-jose verifies its SETs
// against the JWKS named by the transmitter's metadata.
type ssfPeer struct {
	t      *testing.T
	client *http.Client
	meta   map[string]any
	jwks   jose.JSONWebKeySet
}

func newSSFPeer(t *testing.T, ls *liveServer, name string, perms []string) (*ssfPeer, admin.Agent) {
	t.Helper()
	ctx := t.Context()
	a, _, _, secret := ls.newAgent(ctx, name, perms)
	aud := []string{ls.url}
	if _, err := ls.admin.UpdateAgent(ctx, name, admin.UpdateAgentRequest{Audiences: &aud}); err != nil {
		t.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: a.ClientID, ClientSecret: secret, TokenURL: ls.url + "/oauth2/token",
		EndpointParams: url.Values{"resource": {ls.url}}}
	p := &ssfPeer{t: t, client: cc.Client(ctx)}
	status, meta := p.call(http.MethodGet, ls.url+"/.well-known/ssf-configuration", "")
	if status != http.StatusOK || meta["issuer"] != ls.url {
		t.Fatalf("metadata = %d %v", status, meta)
	}
	p.meta = meta
	resp, err := http.Get(meta["jwks_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&p.jwks); err != nil {
		t.Fatal(err)
	}
	return p, a
}

// call sends body (JSON, or nothing) and decodes a JSON object or array
// answer into a map (an array lands under "items").
func (p *ssfPeer) call(method, u, body string) (int, map[string]any) {
	p.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(p.t.Context(), method, u, r)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := map[string]any{}
	switch {
	case len(b) == 0:
	case bytes.HasPrefix(b, []byte("[")):
		var items []any
		if err := json.Unmarshal(b, &items); err != nil {
			p.t.Fatalf("%s %s: %q", method, u, b)
		}
		m["items"] = items
	default:
		if err := json.Unmarshal(b, &m); err != nil {
			p.t.Fatalf("%s %s: %q", method, u, b)
		}
	}
	return resp.StatusCode, m
}

// set is one verified Security Event Token.
type set struct {
	jti    string
	typ    string         // its one event type URI
	event  map[string]any // that event's members
	subID  map[string]any
	claims map[string]any
}

// poll polls the stream once (no wait), acknowledging acks, and verifies
// every SET with go-jose; it returns them in outbox order.
func (p *ssfPeer) poll(endpoint string, acks []string) []set {
	p.t.Helper()
	b, _ := json.Marshal(map[string]any{"ack": acks, "returnImmediately": true})
	status, m := p.call(http.MethodPost, endpoint, string(b))
	if status != http.StatusOK {
		p.t.Fatalf("poll = %d %v", status, m)
	}
	sets, _ := m["sets"].(map[string]any)
	var out []set
	for jti, raw := range sets {
		s := p.verify(raw.(string))
		if s.jti != jti {
			p.t.Errorf("SET under %s has jti %s", jti, s.jti)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b set) int { return strings.Compare(seqKey(a.jti), seqKey(b.jti)) })
	return out
}

// verify verifies one SET with go-jose against the transmitter's JWKS and
// checks its claims (RFC 8417 §2.2, SSF 1.0 §4).
func (p *ssfPeer) verify(raw string) set {
	p.t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		p.t.Fatalf("SET: %v", err)
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders["typ"] != "secevent+jwt" {
		p.t.Errorf("SET typ = %v", h.ExtraHeaders["typ"])
	}
	keys := p.jwks.Key(h.KeyID)
	if len(keys) != 1 {
		p.t.Fatalf("SET: kid %q not in the JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		p.t.Fatalf("SET: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		p.t.Fatal(err)
	}
	events, _ := c["events"].(map[string]any)
	jti, _ := c["jti"].(string)
	if jti == "" || c["iss"] != p.meta["issuer"] || len(events) != 1 || c["sub_id"] == nil ||
		c["exp"] != nil || c["sub"] != nil || c["iat"] == nil {
		p.t.Errorf("SET claims = %v", c)
	}
	s := set{jti: jti, claims: c}
	s.subID, _ = c["sub_id"].(map[string]any)
	for typ, ev := range events {
		s.typ, s.event = typ, ev.(map[string]any)
	}
	return s
}

// seqKey orders SET jtis (<stream>.<seq>) by their sequence number.
func seqKey(jti string) string {
	_, n, _ := strings.Cut(jti, ".")
	return strings.Repeat("0", 20-len(n)) + n
}

func jtis(sets []set) []string {
	var out []string
	for _, s := range sets {
		out = append(out, s.jti)
	}
	return out
}

const (
	sessionRevoked  = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	accountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	accountEnabled  = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
	verification    = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	streamUpdated   = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
)

// TestSSFTransmitterOverHTTP: a receiver agent with the subscribe
// permission creates a poll stream; revocations, a suspension and a
// resumption of another agent reach it as signed SETs in commit order,
// acknowledged SETs are not delivered again, a verification echoes its
// state, a paused stream holds events until it is enabled, and callers
// without the permission or another's stream are refused.
func TestSSFTransmitterOverHTTP(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	rcv, rcvAgent := newSSFPeer(t, ls, "rs", []string{"subscribe"})
	events := `["` + sessionRevoked + `","` + accountDisabled + `","` + accountEnabled + `"]`
	status, st := rcv.call(http.MethodPost, rcv.meta["configuration_endpoint"].(string),
		`{"events_requested":`+events+`,"description":"tickets API","unknown_member":1}`)
	if status != http.StatusCreated || st["aud"] != rcvAgent.ClientID || st["iss"] != ls.url {
		t.Fatalf("create stream = %d %v", status, st)
	}
	id := st["stream_id"].(string)
	delivery := st["delivery"].(map[string]any)
	endpoint, _ := delivery["endpoint_url"].(string)
	if delivery["method"] != "urn:ietf:rfc:8936" || endpoint != ls.url+"/ssf/poll/"+id ||
		len(st["events_delivered"].([]any)) != 3 {
		t.Fatalf("stream = %v", st)
	}
	if got := rcv.poll(endpoint, nil); len(got) != 0 {
		t.Fatalf("a new stream starts at the head; got %v", got)
	}

	// What happens to the bot reaches the stream, in commit order.
	basic := http.Header{"Authorization": {"Basic " + basicAuth(ls.agent.ClientID, ls.secret)}}
	_, _, tok := ls.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic)
	adminAuth := http.Header{"Authorization": {"Bearer " + ls.token}}
	_, _, in := ls.post("/oauth2/introspect", url.Values{"token": {tok["access_token"].(string)}}, adminAuth)
	jti, _ := in["jti"].(string)
	if _, err := ls.admin.RevokeTokens(ctx, admin.RevokeTokensRequest{JTI: jti}); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.admin.RevokeTokens(ctx, admin.RevokeTokensRequest{JTI: jti}); err != nil {
		t.Fatal(err) // a second revocation of one jti is not reported again
	}
	if _, err := ls.admin.SuspendAgent(ctx, "bot", admin.TransitionRequest{Reason: "investigating"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.admin.ResumeAgent(ctx, "bot", admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.admin.RevokeTokens(ctx, admin.RevokeTokensRequest{Agent: "bot"}); err != nil {
		t.Fatal(err)
	}
	got := rcv.poll(endpoint, nil)
	want := []string{sessionRevoked, accountDisabled, accountEnabled, sessionRevoked}
	var types []string
	for _, s := range got {
		types = append(types, s.typ)
		if aud := s.claims["aud"]; aud != rcvAgent.ClientID {
			t.Errorf("SET aud = %v", aud)
		}
	}
	if !slices.Equal(types, want) {
		t.Fatalf("event types = %v, want %v", types, want)
	}
	if s := got[0].subID; s["format"] != "jwt_id" || s["jti"] != jti || s["iss"] != ls.url {
		t.Errorf("token revocation sub_id = %v", s)
	}
	if got[0].event["initiating_entity"] != "admin" || got[0].event["event_timestamp"] == nil {
		t.Errorf("session-revoked members = %v", got[0].event)
	}
	bot := ls.agent.SPIFFEID
	for _, s := range got[1:] {
		if s.subID["format"] != "iss_sub" || s.subID["sub"] != bot {
			t.Errorf("%s sub_id = %v, want iss_sub %s", s.typ, s.subID, bot)
		}
	}
	// Unacknowledged SETs come again with the same jtis; acknowledged
	// ones do not.
	again := rcv.poll(endpoint, jtis(got[:2]))
	if !slices.Equal(jtis(again), jtis(got[2:])) {
		t.Errorf("after acknowledging two: %v, want %v", jtis(again), jtis(got[2:]))
	}
	if left := rcv.poll(endpoint, jtis(again)); len(left) != 0 {
		t.Errorf("after acknowledging all: %v", jtis(left))
	}

	// Verification: 204, the state echoed; a second one at once is 429.
	if status, m := rcv.call(http.MethodPost, rcv.meta["verification_endpoint"].(string),
		`{"stream_id":"`+id+`","state":"s-1"}`); status != http.StatusNoContent {
		t.Fatalf("verify = %d %v", status, m)
	}
	if status, _ := rcv.call(http.MethodPost, rcv.meta["verification_endpoint"].(string),
		`{"stream_id":"`+id+`"}`); status != http.StatusTooManyRequests {
		t.Errorf("second verify = %d, want 429", status)
	}
	v := rcv.poll(endpoint, nil)
	if len(v) != 1 || v[0].typ != verification || v[0].event["state"] != "s-1" || v[0].subID["id"] != id {
		t.Fatalf("verification SETs = %+v", v)
	}

	// Paused: events are held, the stream's own are delivered.
	statusURL := rcv.meta["status_endpoint"].(string)
	if status, m := rcv.call(http.MethodPost, statusURL, `{"stream_id":"`+id+`","status":"paused","reason":"maintenance"}`); status != http.StatusOK || m["status"] != "paused" {
		t.Fatalf("pause = %d %v", status, m)
	}
	if _, err := ls.admin.SuspendAgent(ctx, "bot", admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	p := rcv.poll(endpoint, jtis(v))
	if len(p) != 1 || p[0].typ != streamUpdated || p[0].event["status"] != "paused" {
		t.Fatalf("while paused = %+v", p)
	}
	if status, m := rcv.call(http.MethodGet, statusURL+"?stream_id="+id, ""); status != http.StatusOK || m["status"] != "paused" || m["reason"] != "maintenance" {
		t.Errorf("status = %d %v", status, m)
	}
	if status, m := rcv.call(http.MethodPost, statusURL, `{"stream_id":"`+id+`","status":"enabled"}`); status != http.StatusOK {
		t.Fatalf("enable = %d %v", status, m)
	}
	e := rcv.poll(endpoint, jtis(p))
	if len(e) != 2 || e[0].typ != accountDisabled || e[1].typ != streamUpdated || e[1].event["status"] != "enabled" {
		t.Fatalf("after enabling = %+v", e)
	}

	// PATCH changes receiver-supplied members; a changed transmitter one
	// is refused.
	cfg := rcv.meta["configuration_endpoint"].(string)
	if status, m := rcv.call(http.MethodPatch, cfg, `{"stream_id":"`+id+`","description":"v2","aud":"`+rcvAgent.ClientID+`"}`); status != http.StatusOK || m["description"] != "v2" {
		t.Errorf("PATCH = %d %v", status, m)
	}
	if status, m := rcv.call(http.MethodPatch, cfg, `{"stream_id":"`+id+`","aud":"someone-else"}`); status != http.StatusBadRequest {
		t.Errorf("PATCH of aud = %d %v", status, m)
	}
	if status, m := rcv.call(http.MethodGet, cfg, ""); status != http.StatusOK || len(m["items"].([]any)) != 1 {
		t.Errorf("read all = %d %v", status, m)
	}

	// Another receiver sees none of it; an agent without the permission
	// is refused; an administrator sees every stream.
	other, _ := newSSFPeer(t, ls, "rs2", []string{"subscribe"})
	if status, m := other.call(http.MethodGet, cfg+"?stream_id="+id, ""); status != http.StatusNotFound {
		t.Errorf("another receiver's read = %d %v", status, m)
	}
	if status, _ := other.call(http.MethodPost, endpoint, `{}`); status != http.StatusNotFound {
		t.Errorf("another receiver's poll = %d", status)
	}
	if status, m := other.call(http.MethodGet, cfg, ""); status != http.StatusOK || len(m["items"].([]any)) != 0 {
		t.Errorf("another receiver's list = %d %v", status, m)
	}
	noPerm, _ := newSSFPeer(t, ls, "np", nil)
	if status, _ := noPerm.call(http.MethodGet, cfg, ""); status != http.StatusForbidden {
		t.Errorf("without the permission = %d, want 403", status)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg, nil)
	req.Header.Set("Authorization", "Bearer "+ls.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var all []map[string]any
	err = json.NewDecoder(resp.Body).Decode(&all)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || len(all) != 1 {
		t.Errorf("admin list = %d, %d streams, %v; want the one stream", resp.StatusCode, len(all), err)
	}

	// Delete: 204, then gone.
	if status, _ := rcv.call(http.MethodDelete, cfg+"?stream_id="+id, ""); status != http.StatusNoContent {
		t.Errorf("delete = %d", status)
	}
	if status, _ := rcv.call(http.MethodPost, endpoint, `{}`); status != http.StatusNotFound {
		t.Errorf("poll after delete = %d", status)
	}
	assertSSFAudit(ctx, t, ls)
}

// assertSSFAudit checks that stream management is on the record.
func assertSSFAudit(ctx context.Context, t *testing.T, ls *liveServer) {
	t.Helper()
	evs, err := ls.admin.ListAuditEvents(ctx, admin.AuditQuery{Family: "admin", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, ev := range evs.Items {
		if strings.HasPrefix(ev.Type, "ssf.") {
			seen[ev.Type]++
		}
	}
	for _, typ := range []string{"ssf.stream.created", "ssf.stream.updated", "ssf.stream.deleted",
		"ssf.stream.status_changed", "ssf.stream.verification_requested"} {
		if seen[typ] == 0 {
			t.Errorf("no %s event; saw %v", typ, seen)
		}
	}
}

// TestSSFRevocationReachesSDKVerifier: a resource server verifying tokens
// offline with sdk/resource refuses a token at once after its revocation,
// learned through sdk/signals from the real transmitter, without calling
// introspection; the suspension and resumption of the agent refuse and
// then accept its fresh tokens again.
func TestSSFRevocationReachesSDKVerifier(t *testing.T) {
	ls := startServer(t)
	ctx := t.Context()
	rcv, v, token := sdkReceiver(t, ls, nil)
	if _, err := rcv.Stream(ctx); err != nil {
		t.Fatal(err)
	}
	sync := func() {
		t.Helper()
		if _, err := rcv.PollOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first := token()
	if _, err := v.Verify(ctx, first); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	c, err := v.Verify(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.admin.RevokeTokens(ctx, admin.RevokeTokensRequest{JTI: c.JTI}); err != nil {
		t.Fatal(err)
	}
	sync()
	if _, err := v.Verify(ctx, first); !errors.Is(err, resource.ErrRevoked) {
		t.Fatalf("revoked token after a poll: %v, want ErrRevoked", err)
	}
	second := token()
	if _, err := v.Verify(ctx, second); err != nil {
		t.Fatalf("another token of the bot: %v", err)
	}
	if _, err := ls.admin.SuspendAgent(ctx, "bot", admin.TransitionRequest{Reason: "leak"}); err != nil {
		t.Fatal(err)
	}
	sync()
	if _, err := v.Verify(ctx, second); !errors.Is(err, resource.ErrRevoked) {
		t.Fatalf("token of a suspended agent: %v, want ErrRevoked", err)
	}
	if _, err := ls.admin.ResumeAgent(ctx, "bot", admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	sync()
	if _, err := v.Verify(ctx, second); err != nil {
		t.Fatalf("token after the agent was resumed: %v", err)
	}
	if st := rcv.Status(); st.StreamStatus != "" && st.StreamStatus != "enabled" {
		t.Errorf("receiver status = %+v", st)
	}
}

// sdkReceiver makes the agent "tickets-api" a receiver (the subscribe
// permission, the issuer as audience) and returns an sdk/signals receiver
// for it (its Config changed by mod when not nil), an sdk/resource
// verifier consulting it, and a function getting a token of the bot for
// apiAudience with golang.org/x/oauth2.
func sdkReceiver(t *testing.T, ls *liveServer, mod func(*signals.Config)) (*signals.Receiver, *resource.Verifier, func() string) {
	t.Helper()
	ctx := t.Context()
	a, _, _, secret := ls.newAgent(ctx, "tickets-api", []string{"subscribe"})
	aud := []string{ls.url}
	if _, err := ls.admin.UpdateAgent(ctx, "tickets-api", admin.UpdateAgentRequest{Audiences: &aud}); err != nil {
		t.Fatal(err)
	}
	cc := clientcredentials.Config{ClientID: a.ClientID, ClientSecret: secret, TokenURL: ls.url + "/oauth2/token",
		EndpointParams: url.Values{"resource": {ls.url}}}
	cfg := signals.Config{Issuer: ls.url, Client: cc.Client(ctx), Audience: a.ClientID}
	if mod != nil {
		mod(&cfg)
	}
	rcv, err := signals.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.NewVerifier(ctx, resource.VerifierParams{Issuer: ls.url, Audience: apiAudience, RevocationCheck: rcv.Check})
	if err != nil {
		t.Fatal(err)
	}
	bot := clientcredentials.Config{ClientID: ls.agent.ClientID, ClientSecret: ls.secret, TokenURL: ls.url + "/oauth2/token",
		EndpointParams: url.Values{"resource": {apiAudience}}}
	token := func() string {
		t.Helper()
		tok, err := bot.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	return rcv, v, token
}
