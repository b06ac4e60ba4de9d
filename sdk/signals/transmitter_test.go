package signals_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/signals"
	jose "github.com/go-jose/go-jose/v4"
)

const (
	audience = "agt_receiver"
	token    = "test-token"
	agentA   = "spiffe://example.org/agent/triage"
	agentB   = "spiffe://example.org/agent/planner"
)

var t0 = time.Unix(1_700_000_000, 0)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

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

type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key any // private
}

func newES256(t testing.TB, kid string) signingKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.ES256, key: k}
}

func newEdDSA(t testing.TB, kid string) signingKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.EdDSA, key: k}
}

func (k signingKey) jwk() jose.JSONWebKey {
	pub := jose.JSONWebKey{Key: k.key, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
	return pub.Public()
}

// sign signs claims with k; header entries are added to (or, when nil,
// removed from) the protected header.
func sign(t testing.TB, k signingKey, claims map[string]any, header map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("secevent+jwt")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	for name, v := range header {
		opts = opts.WithHeader(jose.HeaderKey(name), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// handMade builds an unsigned (alg none) or HMAC-signed JWS by hand.
func handMade(t testing.TB, header, claims map[string]any, macKey []byte) string {
	t.Helper()
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	in := enc(hb) + "." + enc(cb)
	if macKey == nil {
		return in + ".c2ln"
	}
	m := hmac.New(sha256.New, macKey)
	m.Write([]byte(in))
	return in + "." + enc(m.Sum(nil))
}

// pollCall is one poll request the transmitter received.
type pollCall struct {
	Ack               []string                     `json:"ack"`
	SetErrs           map[string]map[string]string `json:"setErrs"`
	MaxEvents         *int                         `json:"maxEvents"`
	ReturnImmediately bool                         `json:"returnImmediately"`
}

// transmitter is a fake agentid SSF transmitter: poll delivery, and
// push delivery through deliver.
type transmitter struct {
	t    testing.TB
	srv  *httptest.Server
	keys []signingKey

	mu         sync.Mutex
	issuer     string            // in the metadata; default srv.URL
	methods    []string          // delivery_methods_supported; default poll and push
	down       map[string]bool   // "metadata", "jwks": answer 500
	pushAuth   map[string]string // stream → authorization_header, never shown
	patches    []map[string]any  // PATCH bodies received
	streams    map[string]map[string]any
	order      []string
	pending    map[string]map[string]string // stream → jti → SET
	polls      []pollCall
	creates    int
	jwksHits   int
	next       int
	wake       chan struct{}
	unauthPoll int // answer this many polls with 503
}

func newTransmitter(t testing.TB, keys ...signingKey) *transmitter {
	tr := &transmitter{
		t: t, keys: keys, streams: map[string]map[string]any{}, pending: map[string]map[string]string{}, wake: make(chan struct{}, 1),
		methods: []string{signals.DeliveryPoll, signals.DeliveryPush}, down: map[string]bool{}, pushAuth: map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/ssf-configuration", func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		iss, methods, down := tr.issuer, tr.methods, tr.down["metadata"]
		tr.mu.Unlock()
		if down {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if iss == "" {
			iss = tr.srv.URL
		}
		u := tr.srv.URL
		writeJSON(w, http.StatusOK, map[string]any{
			"spec_version": "1_0", "issuer": iss, "jwks_uri": u + "/jwks",
			"delivery_methods_supported": methods,
			"configuration_endpoint":     u + "/ssf/stream", "status_endpoint": u + "/ssf/status",
			"verification_endpoint": u + "/ssf/verify",
			"authorization_schemes": []map[string]string{{"spec_urn": "urn:ietf:rfc:6749"}},
			"default_subjects":      "ALL",
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("the JWKS was fetched with credentials")
		}
		tr.mu.Lock()
		tr.jwksHits++
		if tr.down["jwks"] {
			tr.mu.Unlock()
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var set jose.JSONWebKeySet
		for _, k := range tr.keys {
			set.Keys = append(set.Keys, k.jwk())
		}
		tr.mu.Unlock()
		writeJSON(w, http.StatusOK, set)
	})
	mux.HandleFunc("/ssf/stream", tr.authed(tr.stream))
	mux.HandleFunc("POST /ssf/poll/{id}", tr.authed(tr.poll))
	mux.HandleFunc("POST /ssf/verify", tr.authed(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			StreamID string `json:"stream_id"`
			State    string `json:"state"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		tr.push(in.StreamID, tr.set(map[string]any{"format": "opaque", "id": in.StreamID}, signals.EventVerification, map[string]any{"state": in.State}))
		w.WriteHeader(http.StatusNoContent)
	}))
	tr.srv = httptest.NewServer(mux)
	t.Cleanup(tr.srv.Close)
	return tr
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (tr *transmitter) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"title":"Unauthorized","detail":"no token"}`))
			return
		}
		h(w, r)
	}
}

func (tr *transmitter) stream(w http.ResponseWriter, r *http.Request) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	id := r.URL.Query().Get("stream_id")
	switch r.Method {
	case http.MethodGet:
		if id != "" {
			s, ok := tr.streams[id]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			writeJSON(w, http.StatusOK, s)
			return
		}
		list := []map[string]any{}
		for _, id := range tr.order {
			if s, ok := tr.streams[id]; ok {
				list = append(list, s)
			}
		}
		writeJSON(w, http.StatusOK, list)
	case http.MethodPost:
		var in struct {
			EventsRequested []string     `json:"events_requested"`
			Description     string       `json:"description"`
			Delivery        wireDelivery `json:"delivery"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !in.Delivery.valid() {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tr.creates++
		id := fmt.Sprintf("ssf_%d", tr.creates)
		s := tr.newStream(id, in.EventsRequested, in.Description)
		tr.setDelivery(id, in.Delivery)
		writeJSON(w, http.StatusCreated, s)
	case http.MethodPatch:
		var raw map[string]any
		var in struct {
			StreamID string        `json:"stream_id"`
			Delivery *wireDelivery `json:"delivery"`
		}
		b, _ := io.ReadAll(r.Body)
		if json.Unmarshal(b, &raw) != nil || json.Unmarshal(b, &in) != nil || (in.Delivery != nil && !in.Delivery.valid()) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tr.patches = append(tr.patches, raw)
		s, ok := tr.streams[in.StreamID]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if in.Delivery != nil { // replaces the whole delivery (SSF §8.1.1.3)
			tr.setDelivery(in.StreamID, *in.Delivery)
		}
		writeJSON(w, http.StatusOK, s)
	case http.MethodDelete:
		if _, ok := tr.streams[id]; !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		delete(tr.streams, id)
		delete(tr.pending, id)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// wireDelivery is a delivery a receiver asks for.
type wireDelivery struct {
	Method              string `json:"method"`
	EndpointURL         string `json:"endpoint_url"`
	AuthorizationHeader string `json:"authorization_header"`
}

func (d wireDelivery) valid() bool {
	return d.Method == signals.DeliveryPoll || (d.Method == signals.DeliveryPush && d.EndpointURL != "")
}

// setDelivery sets a stream's delivery as agentid does: the poll
// endpoint is the transmitter's, a push authorization_header is kept
// apart and never shown; mu is held.
func (tr *transmitter) setDelivery(id string, d wireDelivery) {
	delete(tr.pushAuth, id)
	if d.Method == signals.DeliveryPoll {
		tr.streams[id]["delivery"] = map[string]any{"method": signals.DeliveryPoll, "endpoint_url": tr.srv.URL + "/ssf/poll/" + id}
		return
	}
	tr.streams[id]["delivery"] = map[string]any{"method": d.Method, "endpoint_url": d.EndpointURL}
	if d.AuthorizationHeader != "" {
		tr.pushAuth[id] = d.AuthorizationHeader
	}
}

// newStream adds a stream; mu is held.
func (tr *transmitter) newStream(id string, requested []string, desc string) map[string]any {
	s := map[string]any{
		"stream_id": id, "iss": tr.srv.URL, "aud": audience,
		"events_supported": signals.EventTypes(), "events_requested": requested, "events_delivered": requested,
		"delivery":                  map[string]any{"method": signals.DeliveryPoll, "endpoint_url": tr.srv.URL + "/ssf/poll/" + id},
		"min_verification_interval": 10, "description": desc,
	}
	tr.streams[id] = s
	tr.order = append(tr.order, id)
	tr.pending[id] = map[string]string{}
	return s
}

// addStream adds a stream with a modified configuration.
func (tr *transmitter) addStream(id string, mod func(s map[string]any)) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := tr.newStream(id, signals.EventTypes(), "")
	if mod != nil {
		mod(s)
	}
}

func (tr *transmitter) poll(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var in pollCall
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	tr.mu.Lock()
	if tr.unauthPoll > 0 {
		tr.unauthPoll--
		tr.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	q, ok := tr.pending[id]
	if !ok {
		tr.mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
		return
	}
	tr.polls = append(tr.polls, in)
	for _, jti := range in.Ack {
		delete(q, jti)
	}
	for jti := range in.SetErrs {
		delete(q, jti)
	}
	empty := len(q) == 0
	tr.mu.Unlock()
	if empty && !in.ReturnImmediately && (in.MaxEvents == nil || *in.MaxEvents > 0) {
		select { // a short long poll
		case <-tr.wake:
		case <-time.After(200 * time.Millisecond):
		case <-r.Context().Done():
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	q = tr.pending[id]
	limit := len(q)
	if in.MaxEvents != nil {
		limit = min(limit, *in.MaxEvents)
	}
	jtis := make([]string, 0, len(q))
	for jti := range q {
		jtis = append(jtis, jti)
	}
	sort.Strings(jtis)
	out := map[string]string{}
	for _, jti := range jtis[:limit] {
		out[jti] = q[jti]
	}
	resp := map[string]any{"sets": out}
	if limit < len(q) {
		resp["moreAvailable"] = true
	}
	writeJSON(w, http.StatusOK, resp)
}

// set returns SET claims for an event, with a fresh jti.
func (tr *transmitter) set(subID map[string]any, typ string, event map[string]any) map[string]any {
	tr.mu.Lock()
	tr.next++
	jti := fmt.Sprintf("set_%03d", tr.next)
	tr.mu.Unlock()
	if event == nil {
		event = map[string]any{}
	}
	return map[string]any{
		"iss": tr.srv.URL, "aud": audience, "iat": t0.Unix(), "jti": jti, "txn": "txn_" + jti,
		"sub_id": subID, "events": map[string]any{typ: event},
	}
}

// push signs claims with the first key and queues the SET on a stream.
func (tr *transmitter) push(stream string, claims map[string]any) string {
	return tr.pushToken(stream, claims["jti"].(string), sign(tr.t, tr.keys[0], claims, nil))
}

// pushToken queues a SET as is.
func (tr *transmitter) pushToken(stream, jti, set string) string {
	tr.mu.Lock()
	if tr.pending[stream] == nil {
		tr.pending[stream] = map[string]string{}
	}
	tr.pending[stream][jti] = set
	tr.mu.Unlock()
	select {
	case tr.wake <- struct{}{}:
	default:
	}
	return jti
}

// pendingJTIs returns the SETs not yet settled on a stream.
func (tr *transmitter) pendingJTIs(stream string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for jti := range tr.pending[stream] {
		out = append(out, jti)
	}
	sort.Strings(out)
	return out
}

// lastPolls returns the poll requests received.
func (tr *transmitter) pollCalls() []pollCall {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]pollCall(nil), tr.polls...)
}

// deliver pushes a SET to a push stream's endpoint_url as agentid does
// (RFC 8935 §2), with the authorization_header the receiver gave; mod may
// change the request. It returns the answer.
func (tr *transmitter) deliver(stream, set string, mod func(r *http.Request)) (int, http.Header, []byte) {
	tr.mu.Lock()
	d, _ := tr.streams[stream]["delivery"].(map[string]any)
	auth := tr.pushAuth[stream]
	tr.mu.Unlock()
	u, _ := d["endpoint_url"].(string)
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(set))
	if err != nil {
		tr.t.Error(err) // not Fatal: deliver runs in goroutines
		return 0, nil, nil
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if mod != nil {
		mod(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tr.t.Error(err)
		return 0, nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// patchCalls returns the PATCH bodies received.
func (tr *transmitter) patchCalls() []map[string]any {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]map[string]any(nil), tr.patches...)
}

// bearer adds the test token to every request.
type bearer struct{ base http.RoundTripper }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+token)
	return b.base.RoundTrip(r)
}

// newReceiver returns a Receiver of tr.
func newReceiver(t testing.TB, tr *transmitter, clock *fakeClock, mod func(c *signals.Config)) *signals.Receiver {
	t.Helper()
	cfg := signals.Config{
		Issuer: tr.srv.URL, Audience: audience,
		Client: &http.Client{Transport: bearer{http.DefaultTransport}},
		Clock:  clock.Now, Backoff: 10 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := signals.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
