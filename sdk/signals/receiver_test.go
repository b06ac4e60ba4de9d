package signals_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/resource"
	"github.com/agentid/agentid/sdk/signals"
	"github.com/google/go-cmp/cmp"
)

func jwtID(iss, jti string) map[string]any {
	return map[string]any{"format": "jwt_id", "iss": iss, "jti": jti}
}

func issSub(iss, sub string) map[string]any {
	return map[string]any{"format": "iss_sub", "iss": iss, "sub": sub}
}

func opaque(id string) map[string]any { return map[string]any{"format": "opaque", "id": id} }

// pollOnce polls and fails the test on an error.
func pollOnce(t *testing.T, r *signals.Receiver) int {
	t.Helper()
	n, err := r.PollOnce(context.Background())
	if err != nil {
		t.Fatalf("PollOnce: %v", err)
	}
	return n
}

// tokenClaims are the verified claims of a token of agentA.
func tokenClaims(iss string, mod func(c *resource.Claims)) *resource.Claims {
	c := &resource.Claims{
		Issuer: iss, Subject: agentA, Audience: []string{"https://api.example.com"}, ClientID: "agt_a",
		JTI: "tok_other", IssuedAt: t0, Expiry: t0.Add(5 * time.Minute), AgentInstance: "ins_other",
		Raw: map[string]any{},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestEvents(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	clock := &fakeClock{now: t0}
	r := newReceiver(t, tr, clock, func(c *signals.Config) { c.Description = "api" })
	st, err := r.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "ssf_1" || st.EndpointURL != tr.srv.URL+"/ssf/poll/ssf_1" || st.MinVerificationInterval != 10*time.Second || st.Description != "api" {
		t.Fatalf("Stream = %+v", st)
	}
	if diff := cmp.Diff(signals.EventTypes(), st.EventsRequested); diff != "" {
		t.Fatalf("events requested (-want +got):\n%s", diff)
	}
	iss := tr.srv.URL
	tr.push(st.ID, tr.set(jwtID(iss, "tok_1"), signals.EventSessionRevoked, nil))
	tr.push(st.ID, tr.set(issSub(iss, agentA), signals.EventSessionRevoked, map[string]any{"event_timestamp": t0.Unix()}))
	tr.push(st.ID, tr.set(opaque("ins_1"), signals.EventSessionRevoked, nil))
	tr.push(st.ID, tr.set(opaque("grt_1"), signals.EventSessionRevoked, map[string]any{"initiating_entity": "admin", "reason_admin": map[string]string{"en": "x"}}))
	tr.push(st.ID, tr.set(issSub(iss, agentB), signals.EventAccountDisabled, map[string]any{"reason": "hijacking"}))
	tr.push(st.ID, tr.set(opaque("ses_unknown"), signals.EventSessionRevoked, nil))                                   // not tracked: ignored
	tr.push(st.ID, tr.set(opaque("x"), "https://schemas.openid.net/secevent/caep/event-type/credential-change", nil)) // not understood: ignored
	if n := pollOnce(t, r); n != 7 {
		t.Fatalf("applied %d, want 7", n)
	}
	if p := tr.pendingJTIs(st.ID); len(p) != 0 {
		t.Fatalf("still pending after PollOnce: %v", p)
	}

	act := func(subs ...string) json.RawMessage {
		var a any
		for i := len(subs) - 1; i >= 0; i-- {
			m := map[string]any{"sub": subs[i]}
			if a != nil {
				m["act"] = a
			}
			a = m
		}
		b, _ := json.Marshal(a)
		return b
	}
	for _, tc := range []struct {
		name string
		mod  func(c *resource.Claims)
		want bool
	}{
		{"unrelated token", nil, false},
		{"revoked jti", func(c *resource.Claims) { c.JTI, c.Subject = "tok_1", agentB+"x" }, true},
		{"same jti, other issuer", func(c *resource.Claims) {
			c.JTI, c.Issuer, c.Subject = "tok_1", "https://other.example.com", "spiffe://x/y"
		}, false},
		{"agent, issued before", func(c *resource.Claims) { c.IssuedAt = t0.Add(-time.Hour) }, true},
		{"agent, issued at the event", func(c *resource.Claims) { c.IssuedAt = t0 }, true},
		{"agent, issued after", func(c *resource.Claims) { c.IssuedAt = t0.Add(time.Second) }, false},
		{"delegated, agent acts", func(c *resource.Claims) {
			c.Subject, c.Act, c.Raw["grant_id"], c.IssuedAt = "user@example.com", act(agentA), "grt_other", t0
		}, true},
		{"delegated, agent acted earlier in the chain", func(c *resource.Claims) {
			c.Subject, c.Act, c.IssuedAt = "user@example.com", act("spiffe://example.org/agent/x", "spiffe://example.org/agent/y", agentA), t0
		}, true},
		{"delegated, agent acted, issued after", func(c *resource.Claims) {
			c.Subject, c.Act, c.IssuedAt = "user@example.com", act("spiffe://example.org/agent/x", agentA), t0.Add(time.Second)
		}, false},
		{"instance", func(c *resource.Claims) { c.Subject, c.AgentInstance = "spiffe://x/y", "ins_1" }, true},
		{"grant", func(c *resource.Claims) { c.Subject, c.Raw["grant_id"] = "spiffe://x/y", "grt_1" }, true},
		{"disabled agent, any iat", func(c *resource.Claims) { c.Subject, c.IssuedAt = agentB, t0.Add(time.Hour) }, true},
		{"disabled agent acts", func(c *resource.Claims) {
			c.Subject, c.Act, c.IssuedAt = "user@example.com", act("spiffe://x/y", agentB), t0.Add(time.Hour)
		}, true},
	} {
		c := tokenClaims(iss, func(c *resource.Claims) {
			c.IssuedAt = t0.Add(time.Minute) // after the agent revocation unless the case says otherwise
			if tc.mod != nil {
				tc.mod(c)
			}
		})
		got, reason := r.Revoked(c)
		if got != tc.want || (got && reason == "") || (!got && reason != "") {
			t.Errorf("%s: Revoked = %v, %q; want %v", tc.name, got, reason, tc.want)
		}
		err := r.Check(context.Background(), c)
		if errors.Is(err, signals.ErrRevoked) != tc.want {
			t.Errorf("%s: Check = %v", tc.name, err)
		}
	}
	if ok, _ := r.Revoked(nil); ok {
		t.Fatal("Revoked(nil)")
	}

	b := tokenClaims(iss, func(c *resource.Claims) { c.Subject = agentB })
	revokedB := func() bool { ok, _ := r.Revoked(b); return ok }
	// account-enabled lifts account-disabled.
	tr.push(st.ID, tr.set(issSub(iss, agentB), signals.EventAccountEnabled, nil))
	pollOnce(t, r)
	if revokedB() {
		t.Fatal("agent B still refused after account-enabled")
	}
	// A disable and an enable in one batch end as they happened (iat), not
	// as their jti sort.
	enable := tr.set(issSub(iss, agentB), signals.EventAccountEnabled, nil)
	disable := tr.set(issSub(iss, agentB), signals.EventAccountDisabled, nil)
	enable["iat"], disable["iat"] = t0.Unix()+20, t0.Unix()+10
	tr.push(st.ID, disable)
	tr.push(st.ID, enable)
	pollOnce(t, r)
	if revokedB() {
		t.Fatal("agent B refused: disable (older) applied after enable")
	}
	// A stale disable (older than the last enable) changes nothing.
	stale := tr.set(issSub(iss, agentB), signals.EventAccountDisabled, map[string]any{"event_timestamp": t0.Unix() + 5})
	tr.push(st.ID, stale)
	pollOnce(t, r)
	if revokedB() {
		t.Fatal("agent B refused after a stale account-disabled")
	}
	// account-purged is for good.
	tr.push(st.ID, tr.set(issSub(iss, agentB), signals.EventAccountPurged, nil))
	pollOnce(t, r)
	tr.push(st.ID, tr.set(issSub(iss, agentB), signals.EventAccountEnabled, map[string]any{"event_timestamp": t0.Unix() + 3600}))
	pollOnce(t, r)
	if ok, reason := r.Revoked(b); !ok || reason != "agent "+agentB+" was purged" {
		t.Fatalf("purged agent: Revoked = %v, %q", ok, reason)
	}
}

func TestBadSETsAreRefused(t *testing.T) {
	good, ed, stranger := newES256(t, "k1"), newEdDSA(t, "k2"), newES256(t, "k-unknown")
	impostor := good
	impostor.key = newES256(t, "x").key
	tr := newTransmitter(t, good, ed)
	clock := &fakeClock{now: t0}
	r := newReceiver(t, tr, clock, nil)
	st, err := r.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	iss := tr.srv.URL
	pubJWK, _ := json.Marshal(good.jwk())
	// Each SET revokes its own token tok_<jti>.
	claims := func(mod func(c map[string]any)) map[string]any {
		c := tr.set(nil, signals.EventSessionRevoked, nil)
		c["sub_id"] = jwtID(iss, "tok_"+c["jti"].(string))
		if mod != nil {
			mod(c)
		}
		return c
	}
	type tc struct {
		name string
		jti  string
		want string // err code; "" = applied
	}
	var cases []tc
	add := func(name, want string, c map[string]any, set string) {
		jti, _ := c["jti"].(string)
		if jti == "" {
			jti = "nojti_" + name
		}
		tr.pushToken(st.ID, jti, set)
		cases = append(cases, tc{name, jti, want})
	}
	addSigned := func(name, want string, k signingKey, c map[string]any, header map[string]any) {
		add(name, want, c, sign(t, k, c, header))
	}
	c := claims(nil)
	add("garbage", "invalid_request", c, "not-a-set")
	c = claims(nil)
	addSigned("typ JWT", "invalid_request", good, c, map[string]any{"typ": "JWT"})
	c = claims(nil)
	addSigned("typ at+jwt", "invalid_request", good, c, map[string]any{"typ": "at+jwt"})
	c = claims(nil)
	add("alg none", "invalid_request", c, handMade(t, map[string]any{"alg": "none", "typ": "secevent+jwt", "kid": "k1"}, c, nil))
	c = claims(nil)
	add("HS256 keyed with the public JWK", "invalid_request", c, handMade(t, map[string]any{"alg": "HS256", "typ": "secevent+jwt", "kid": "k1"}, c, pubJWK))
	c = claims(nil)
	addSigned("unknown kid", "invalid_key", stranger, c, nil)
	c = claims(nil)
	addSigned("signed by another key", "invalid_key", impostor, c, nil)
	c = claims(nil)
	addSigned("no kid", "invalid_key", signingKey{alg: good.alg, key: good.key}, c, nil)
	c = claims(func(c map[string]any) { c["iss"] = "https://evil.example.com" })
	addSigned("wrong iss", "invalid_issuer", good, c, nil)
	c = claims(func(c map[string]any) { c["aud"] = "agt_other" })
	addSigned("wrong aud", "invalid_audience", good, c, nil)
	c = claims(func(c map[string]any) { c["aud"] = []string{"agt_other", "agt_more"} })
	addSigned("aud array without us", "invalid_audience", good, c, nil)
	c = claims(func(c map[string]any) { delete(c, "aud") })
	addSigned("no aud", "invalid_audience", good, c, nil)
	c = claims(func(c map[string]any) {
		c["events"].(map[string]any)[signals.EventAccountDisabled] = map[string]any{}
	})
	addSigned("two events", "invalid_request", good, c, nil)
	c = claims(func(c map[string]any) { c["events"] = map[string]any{} })
	addSigned("no event", "invalid_request", good, c, nil)
	c = claims(func(c map[string]any) { c["events"] = map[string]any{signals.EventSessionRevoked: "revoked"} })
	addSigned("event not an object", "invalid_request", good, c, nil)
	c = claims(func(c map[string]any) { delete(c, "sub_id") })
	addSigned("no sub_id", "invalid_request", good, c, nil)
	c = claims(func(c map[string]any) { c["sub_id"] = map[string]any{"format": "jwt_id", "iss": iss} })
	addSigned("jwt_id without jti", "invalid_request", good, c, nil)
	c = claims(func(c map[string]any) { delete(c, "iat") })
	addSigned("no iat", "invalid_request", good, c, nil)
	c = claims(func(c map[string]any) { c["iat"] = "yesterday" })
	addSigned("iat a string", "invalid_request", good, c, nil)
	c = claims(func(c map[string]any) {
		c["events"] = map[string]any{signals.EventSessionRevoked: map[string]any{"event_timestamp": "now"}}
	})
	addSigned("event_timestamp a string", "invalid_request", good, c, nil)
	c = claims(nil)
	set := sign(t, good, c, nil)
	tr.pushToken(st.ID, "set_delivered_under_another_jti", set)
	cases = append(cases, tc{"jti differs from the delivery key", "set_delivered_under_another_jti", "invalid_request"})

	// These are fine.
	c = claims(func(c map[string]any) { c["exp"] = t0.Unix() - 3600 })
	addSigned("exp present (ignored)", "", good, c, nil)
	c = claims(func(c map[string]any) { c["aud"] = []string{"agt_other", audience} })
	addSigned("aud array with us", "", good, c, nil)
	c = claims(nil)
	addSigned("EdDSA", "", ed, c, nil)
	c = claims(nil)
	addSigned("typ application/secevent+jwt", "", good, c, map[string]any{"typ": "application/secevent+jwt"})
	c = claims(func(c map[string]any) { c["sub"] = "x"; c["unknown"] = map[string]any{"a": 1} })
	addSigned("unknown members", "", good, c, nil)

	n, err := r.PollOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	calls := tr.pollCalls()
	last := calls[len(calls)-1]
	if last.MaxEvents == nil || *last.MaxEvents != 0 || !last.ReturnImmediately {
		t.Fatalf("the last request is not ack-only: %+v", last)
	}
	acked := map[string]bool{}
	for _, jti := range last.Ack {
		acked[jti] = true
	}
	applied := 0
	for _, tc := range cases {
		got := last.SetErrs[tc.jti]["err"]
		if got != tc.want {
			t.Errorf("%s: setErrs err %q, want %q", tc.name, got, tc.want)
		}
		if got != "" && last.SetErrs[tc.jti]["description"] == "" {
			t.Errorf("%s: setErr without a description", tc.name)
		}
		if acked[tc.jti] == (tc.want != "") {
			t.Errorf("%s: acked = %v", tc.name, acked[tc.jti])
		}
		revoked, _ := r.Revoked(tokenClaims(iss, func(c *resource.Claims) { c.JTI = "tok_" + tc.jti }))
		if tc.jti == "set_delivered_under_another_jti" {
			continue
		}
		if revoked != (tc.want == "") {
			t.Errorf("%s: Revoked = %v", tc.name, revoked)
		}
		if tc.want == "" {
			applied++
		}
	}
	if n != applied {
		t.Fatalf("applied %d, want %d", n, applied)
	}
	if p := tr.pendingJTIs(st.ID); len(p) != 0 {
		t.Fatalf("unsettled: %v", p)
	}
}

func TestAcksAndRedelivery(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	r := newReceiver(t, tr, &fakeClock{now: t0}, nil)
	st, err := r.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := tr.set(jwtID(tr.srv.URL, "tok_1"), signals.EventSessionRevoked, nil)
	set := sign(t, tr.keys[0], c, nil)
	jti := tr.pushToken(st.ID, c["jti"].(string), set)
	if n := pollOnce(t, r); n != 1 {
		t.Fatalf("applied %d, want 1", n)
	}
	calls := tr.pollCalls()
	if len(calls) != 2 {
		t.Fatalf("%d poll requests, want a poll and an ack", len(calls))
	}
	if calls[0].MaxEvents == nil || *calls[0].MaxEvents != signals.DefaultMaxEvents || !calls[0].ReturnImmediately || len(calls[0].Ack) != 0 {
		t.Fatalf("poll request %+v", calls[0])
	}
	if diff := cmp.Diff([]string{jti}, calls[1].Ack); diff != "" {
		t.Fatalf("ack (-want +got):\n%s", diff)
	}
	entries := r.Status().Entries
	// The transmitter delivers it again (as if the ack were lost).
	tr.pushToken(st.ID, jti, set)
	if n := pollOnce(t, r); n != 0 {
		t.Fatalf("a redelivered SET was applied again (%d)", n)
	}
	calls = tr.pollCalls()
	if diff := cmp.Diff([]string{jti}, calls[len(calls)-1].Ack); diff != "" {
		t.Fatalf("re-ack (-want +got):\n%s", diff)
	}
	if ok, _ := r.Revoked(tokenClaims(tr.srv.URL, func(c *resource.Claims) { c.JTI = "tok_1" })); !ok {
		t.Fatal("not revoked")
	}
	if got := r.Status().Entries; got != entries {
		t.Fatalf("entries %d after redelivery, want %d", got, entries)
	}
	// Nothing pending: no ack-only request.
	before := len(tr.pollCalls())
	pollOnce(t, r)
	if got := len(tr.pollCalls()) - before; got != 1 {
		t.Fatalf("%d requests for an empty poll, want 1", got)
	}
}

func TestHorizonAndCap(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	clock := &fakeClock{now: t0}
	r := newReceiver(t, tr, clock, func(c *signals.Config) { c.Horizon = 2 * time.Hour })
	st, err := r.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	iss := tr.srv.URL
	tr.push(st.ID, tr.set(jwtID(iss, "tok_1"), signals.EventSessionRevoked, nil))
	tr.push(st.ID, tr.set(issSub(iss, agentB), signals.EventAccountDisabled, nil))
	pollOnce(t, r)
	tok := tokenClaims(iss, func(c *resource.Claims) { c.JTI = "tok_1" })
	b := tokenClaims(iss, func(c *resource.Claims) { c.Subject = agentB })
	clock.Advance(2*time.Hour - time.Second)
	if ok, _ := r.Revoked(tok); !ok {
		t.Fatal("forgotten before the horizon")
	}
	clock.Advance(time.Second)
	if ok, _ := r.Revoked(tok); ok {
		t.Fatal("remembered past the horizon")
	}
	if ok, _ := r.Revoked(b); !ok {
		t.Fatal("a disabled agent was forgotten: it stays refused until enabled")
	}
	pollOnce(t, r) // sweeps
	if got := r.Status().Entries; got != 1 {
		t.Fatalf("%d entries after the horizon, want 1 (the disabled account)", got)
	}
	clock.Advance(10 * time.Hour)
	pollOnce(t, r)
	if ok, _ := r.Revoked(b); !ok {
		t.Fatal("a disabled agent was forgotten")
	}

	// The cap drops the oldest.
	capped := newReceiver(t, tr, clock, func(c *signals.Config) { c.MaxEntries = 4; c.StreamID = st.ID })
	for i := range 3 {
		tr.push(st.ID, tr.set(jwtID(iss, "tok_c"+string(rune('0'+i))), signals.EventSessionRevoked, nil))
		pollOnce(t, capped)
		clock.Advance(time.Second)
	}
	if got := capped.Status().Entries; got != 4 {
		t.Fatalf("%d entries, want the cap 4", got)
	}
	if ok, _ := capped.Revoked(tokenClaims(iss, func(c *resource.Claims) { c.JTI = "tok_c0" })); ok {
		t.Fatal("the oldest entry was kept past the cap")
	}
	if ok, _ := capped.Revoked(tokenClaims(iss, func(c *resource.Claims) { c.JTI = "tok_c2" })); !ok {
		t.Fatal("the newest entry was dropped")
	}
}

func TestMetadataIssuerMismatch(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	tr.issuer = "https://evil.example.com"
	r := newReceiver(t, tr, &fakeClock{now: t0}, nil)
	if _, err := r.PollOnce(context.Background()); !errors.Is(err, signals.ErrMetadata) {
		t.Fatalf("PollOnce = %v, want ErrMetadata", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, signals.ErrMetadata) {
		t.Fatalf("Run = %v, want ErrMetadata at once", err)
	}
	if tr.creates != 0 {
		t.Fatal("a stream was created with a mismatched issuer")
	}
}

func TestStreamSelection(t *testing.T) {
	t.Run("reuses the first poll stream", func(t *testing.T) {
		tr := newTransmitter(t, newES256(t, "k1"))
		tr.addStream("ssf_push", func(s map[string]any) {
			s["delivery"] = map[string]any{"method": "urn:ietf:rfc:8935", "endpoint_url": "https://rcv.example.com/"}
		})
		tr.addStream("ssf_old", nil)
		st, err := newReceiver(t, tr, &fakeClock{now: t0}, nil).Stream(context.Background())
		if err != nil || st.ID != "ssf_old" || tr.creates != 0 {
			t.Fatalf("Stream = %+v, %v; creates %d", st, err, tr.creates)
		}
	})
	t.Run("configured", func(t *testing.T) {
		tr := newTransmitter(t, newES256(t, "k1"))
		tr.addStream("ssf_a", nil)
		tr.addStream("ssf_b", nil)
		st, err := newReceiver(t, tr, &fakeClock{now: t0}, func(c *signals.Config) { c.StreamID = "ssf_b" }).Stream(context.Background())
		if err != nil || st.ID != "ssf_b" {
			t.Fatalf("Stream = %+v, %v", st, err)
		}
		_, err = newReceiver(t, tr, &fakeClock{now: t0}, func(c *signals.Config) { c.StreamID = "ssf_gone" }).Stream(context.Background())
		var he *signals.HTTPError
		if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound || !errors.Is(err, signals.ErrTransmitter) {
			t.Fatalf("Stream(unknown) = %v", err)
		}
	})
	for name, mod := range map[string]func(s map[string]any){
		"other aud":   func(s map[string]any) { s["aud"] = []string{"agt_other"} },
		"other iss":   func(s map[string]any) { s["iss"] = "https://evil.example.com" },
		"no endpoint": func(s map[string]any) { s["delivery"] = map[string]any{"method": signals.DeliveryPoll} },
		"not poll": func(s map[string]any) {
			s["delivery"] = map[string]any{"method": "urn:ietf:rfc:8935", "endpoint_url": "https://x/"}
		},
		"aud not string": func(s map[string]any) { s["aud"] = 7 },
	} {
		t.Run(name, func(t *testing.T) {
			tr := newTransmitter(t, newES256(t, "k1"))
			tr.addStream("ssf_x", mod)
			_, err := newReceiver(t, tr, &fakeClock{now: t0}, func(c *signals.Config) { c.StreamID = "ssf_x" }).Stream(context.Background())
			if !errors.Is(err, signals.ErrStream) {
				t.Fatalf("Stream = %v, want ErrStream", err)
			}
		})
	}
	t.Run("aud array", func(t *testing.T) {
		tr := newTransmitter(t, newES256(t, "k1"))
		tr.addStream("ssf_x", func(s map[string]any) { s["aud"] = []string{"agt_other", audience} })
		if _, err := newReceiver(t, tr, &fakeClock{now: t0}, nil).Stream(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unauthenticated", func(t *testing.T) {
		tr := newTransmitter(t, newES256(t, "k1"))
		r := newReceiver(t, tr, &fakeClock{now: t0}, func(c *signals.Config) { c.Client = &http.Client{} })
		_, err := r.Stream(context.Background())
		var he *signals.HTTPError
		if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized || he.Problem != "Unauthorized: no token" {
			t.Fatalf("Stream = %v", err)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		tr := newTransmitter(t, newES256(t, "k1"))
		r := newReceiver(t, tr, &fakeClock{now: t0}, nil)
		if err := r.DeleteStream(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, err := r.Stream(context.Background())
		if err != nil || st.ID != "ssf_2" {
			t.Fatalf("after DeleteStream: Stream = %+v, %v", st, err)
		}
	})
}

func TestStatusEvents(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	clock := &fakeClock{now: t0}
	r := newReceiver(t, tr, clock, nil)
	if err := r.RequestVerification(context.Background(), "state-1"); err != nil {
		t.Fatal(err)
	}
	pollOnce(t, r)
	st := r.Status()
	if st.StreamID != "ssf_1" || st.VerificationState != "state-1" || !st.VerifiedAt.Equal(t0) || !st.LastPoll.Equal(t0) {
		t.Fatalf("Status = %+v", st)
	}
	tr.push("ssf_1", tr.set(opaque("ssf_1"), signals.EventStreamUpdated, map[string]any{"status": "paused", "reason": "maintenance"}))
	tr.push("ssf_1", tr.set(opaque("ssf_other"), signals.EventVerification, map[string]any{"state": "not ours"}))
	pollOnce(t, r)
	st = r.Status()
	if st.StreamStatus != "paused" || st.StreamReason != "maintenance" || st.VerificationState != "state-1" {
		t.Fatalf("Status = %+v", st)
	}
}

func TestKeyRotation(t *testing.T) {
	k1, k2 := newES256(t, "k1"), newEdDSA(t, "k2")
	tr := newTransmitter(t, k1)
	clock := &fakeClock{now: t0}
	r := newReceiver(t, tr, clock, nil)
	st, err := r.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tr.push(st.ID, tr.set(jwtID(tr.srv.URL, "tok_1"), signals.EventSessionRevoked, nil))
	pollOnce(t, r) // fetches the JWKS with k1
	tr.mu.Lock()
	tr.keys = append(tr.keys, k2)
	tr.mu.Unlock()
	c := tr.set(jwtID(tr.srv.URL, "tok_2"), signals.EventSessionRevoked, nil)
	jti := tr.pushToken(st.ID, c["jti"].(string), sign(t, k2, c, nil))
	// Too soon to fetch the JWKS again: the SET is left to be delivered
	// again, not refused.
	if _, err := r.PollOnce(context.Background()); err == nil {
		t.Fatal("PollOnce hid a SET it could not verify yet")
	}
	if diff := cmp.Diff([]string{jti}, tr.pendingJTIs(st.ID)); diff != "" {
		t.Fatalf("pending (-want +got):\n%s", diff)
	}
	clock.Advance(signals.DefaultMinRefetchInterval)
	if n := pollOnce(t, r); n != 1 {
		t.Fatalf("applied %d after the refetch, want 1", n)
	}
	if tr.jwksHits != 2 {
		t.Fatalf("%d JWKS fetches, want 2", tr.jwksHits)
	}
}

func TestRun(t *testing.T) {
	tr := newTransmitter(t, newES256(t, "k1"))
	tr.unauthPoll = 2 // two failed polls first: Run backs off and retries
	r := newReceiver(t, tr, &fakeClock{now: t0}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for r.Status().StreamID == "" {
		if time.Now().After(deadline) {
			t.Fatal("no stream")
		}
		time.Sleep(5 * time.Millisecond)
	}
	tr.push("ssf_1", tr.set(jwtID(tr.srv.URL, "tok_1"), signals.EventSessionRevoked, nil))
	tok := tokenClaims(tr.srv.URL, func(c *resource.Claims) { c.JTI = "tok_1" })
	for {
		if ok, _ := r.Revoked(tok); ok && len(tr.pendingJTIs("ssf_1")) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not revoked and acknowledged in time; pending %v", tr.pendingJTIs("ssf_1"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range tr.pollCalls() {
		if c.ReturnImmediately {
			t.Fatalf("Run made a short poll: %+v", c)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// TestWithVerifier wires a Receiver into a resource.Verifier, as a
// resource server does.
func TestWithVerifier(t *testing.T) {
	k := newES256(t, "k1")
	tr := newTransmitter(t, k)
	clock := &fakeClock{now: t0}
	r := newReceiver(t, tr, clock, nil)
	v, err := resource.NewVerifier(context.Background(), resource.VerifierParams{
		Issuer: tr.srv.URL, Audience: "https://api.example.com", JWKSURL: tr.srv.URL + "/jwks",
		Clock: clock.Now, RevocationCheck: r.Check,
	})
	if err != nil {
		t.Fatal(err)
	}
	at := sign(t, k, map[string]any{
		"iss": tr.srv.URL, "sub": agentA, "aud": "https://api.example.com", "client_id": "agt_a",
		"jti": "tok_1", "iat": t0.Unix(), "exp": t0.Unix() + 300, "agent_instance": "ins_1",
	}, map[string]any{"typ": "at+jwt"})
	if _, err := v.Verify(context.Background(), at); err != nil {
		t.Fatalf("Verify before revocation: %v", err)
	}
	tr.push("ssf_1", tr.set(opaque("ins_1"), signals.EventSessionRevoked, nil))
	if _, err := r.Stream(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.push("ssf_1", tr.set(opaque("ins_1"), signals.EventSessionRevoked, nil))
	pollOnce(t, r)
	if _, err := v.Verify(context.Background(), at); !errors.Is(err, resource.ErrRevoked) || !errors.Is(err, signals.ErrRevoked) {
		t.Fatalf("Verify after revocation = %v, want ErrRevoked", err)
	}
}

func TestNewRejects(t *testing.T) {
	hc := &http.Client{}
	for _, cfg := range []signals.Config{
		{Client: hc, Audience: audience},
		{Issuer: "https://i.example.com", Audience: audience},
		{Issuer: "https://i.example.com", Client: hc},
		{Issuer: "ftp://i.example.com", Client: hc, Audience: audience},
		{Issuer: "https://i.example.com?x=1", Client: hc, Audience: audience},
	} {
		if _, err := signals.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
