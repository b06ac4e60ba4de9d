package authzen

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/sdk/resource"
)

func TestTokenContext(t *testing.T) {
	own := &resource.Claims{Subject: "spiffe://example.org/agent/bot", Issuer: "https://agentid.example.org",
		AgentInstance: "ins_1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Raw: map[string]any{}}
	got, err := TokenContext(own)
	want := map[string]any{"instance": map[string]any{"id": "ins_1"}, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
	if err != nil || !cmp.Equal(want, got) {
		t.Errorf("TokenContext of an agent's own token = %v, %v; want %v", got, err, want)
	}
	if got, err := TokenContext(&resource.Claims{Subject: "spiffe://example.org/agent/bot", Raw: map[string]any{}}); err != nil || got != nil {
		t.Errorf("TokenContext of a bare token = %v, %v; want nil", got, err)
	}
	delegated := &resource.Claims{Subject: "alice", Issuer: "https://agentid.example.org",
		Act: json.RawMessage(`{"sub": "spiffe://example.org/agent/bot"}`), Raw: map[string]any{
			"grant_id": "grt_1", "act": map[string]any{"sub": "spiffe://example.org/agent/bot"},
			"sub_id": map[string]any{"format": "iss_sub", "iss": "https://idp.example.org", "sub": "alice"},
		}}
	got, err = TokenContext(delegated)
	want = map[string]any{"delegation": map[string]any{"subject": "alice", "actors": []string{"spiffe://example.org/agent/bot"}, "grant_id": "grt_1"}}
	if err != nil || !cmp.Equal(want, got) {
		t.Errorf("TokenContext of a delegated token = %v, %v; want %v", got, err, want)
	}
	if _, err := TokenContext(&resource.Claims{Subject: "alice", Raw: map[string]any{"grant_id": 7}}); !errors.Is(err, resource.ErrMalformedChain) {
		t.Errorf("TokenContext of a malformed chain = %v; want ErrMalformedChain", err)
	}
}
