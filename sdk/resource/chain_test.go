package resource_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/resource"
)

func claimsOf(t testing.TB, raw string) *resource.Claims {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	c := &resource.Claims{Issuer: "https://as.example.org", Raw: m}
	c.Subject, _ = m["sub"].(string)
	if a, ok := m["act"]; ok {
		c.Act, _ = json.Marshal(a)
	}
	return c
}

func TestChain(t *testing.T) {
	for name, tc := range map[string]struct {
		claims string
		want   resource.Chain
	}{
		"own token": {`{"sub": "spiffe://example.org/agent/bot"}`, resource.Chain{
			Subject: "spiffe://example.org/agent/bot", SubjectIssuer: "https://as.example.org", Actor: "spiffe://example.org/agent/bot"}},
		"delegated": {`{"sub": "alice", "sub_id": {"format": "iss_sub", "iss": "https://idp.example", "sub": "alice"},
			"grant_id": "grt_1", "act": {"sub": "spiffe://example.org/agent/pricer", "act": {"sub": "spiffe://example.org/agent/booker"}}}`,
			resource.Chain{Subject: "alice", SubjectIssuer: "https://idp.example", Actor: "spiffe://example.org/agent/pricer",
				Actors: []string{"spiffe://example.org/agent/pricer", "spiffe://example.org/agent/booker"}, GrantID: "grt_1"}},
		"impersonation": {`{"sub": "alice", "sub_id": {"format": "iss_sub", "iss": "https://idp.example", "sub": "alice"}, "grant_id": "grt_1"}`,
			resource.Chain{Subject: "alice", SubjectIssuer: "https://idp.example", GrantID: "grt_1", Impersonation: true}},
	} {
		got, err := claimsOf(t, tc.claims).Chain()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if ch, _ := claimsOf(t, `{"sub": "alice", "grant_id": "grt_1", "act": {"sub": "a", "act": {"sub": "b"}}}`).Chain(); ch.Depth() != 2 || !ch.Delegated() {
		t.Errorf("depth %d, delegated %v", ch.Depth(), ch.Delegated())
	}
	for name, raw := range map[string]string{
		"act without grant":  `{"sub": "alice", "act": {"sub": "a"}}`,
		"act without sub":    `{"sub": "alice", "grant_id": "grt_1", "act": {"act": {"sub": "a"}}}`,
		"act not an object":  `{"sub": "alice", "grant_id": "grt_1", "act": "a"}`,
		"grant_id number":    `{"sub": "alice", "grant_id": 7}`,
		"sub_id another sub": `{"sub": "alice", "sub_id": {"iss": "https://idp", "sub": "bob"}}`,
		"too deep":           `{"sub": "alice", "grant_id": "g", "act": ` + nest(resource.MaxChainDepth+1) + `}`,
	} {
		if _, err := claimsOf(t, raw).Chain(); !errors.Is(err, resource.ErrMalformedChain) {
			t.Errorf("%s: err = %v, want ErrMalformedChain", name, err)
		}
	}
}

func nest(n int) string {
	s := `{"sub": "a"}`
	for range n - 1 {
		s = `{"sub": "a", "act": ` + s + `}`
	}
	return s
}

func FuzzChain(f *testing.F) {
	f.Add(`{"sub": "alice", "grant_id": "grt_1", "act": {"sub": "a", "act": {"sub": "b"}}}`)
	f.Add(`{"sub": "alice", "sub_id": {"iss": 1}}`)
	f.Add(`{"sub": "alice", "grant_id": "g", "act": ` + nest(20) + `}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var m map[string]any
		if json.Unmarshal([]byte(raw), &m) != nil {
			return
		}
		c := &resource.Claims{Raw: m}
		c.Subject, _ = m["sub"].(string)
		if a, ok := m["act"]; ok {
			c.Act, _ = json.Marshal(a)
		}
		ch, err := c.Chain()
		if err == nil && len(ch.Actors) > resource.MaxChainDepth {
			t.Fatalf("%d actors", len(ch.Actors))
		}
	})
}
