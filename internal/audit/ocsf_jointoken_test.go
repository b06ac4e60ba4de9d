package audit

import (
	"encoding/json"
	"testing"
)

// TestOCSFAgentJoinTokens: agents' join token events (three-part types the
// source scan of TestOCSFMapsEveryEventType does not match) are Entity
// Management records of an agent_join_token entity.
func TestOCSFAgentJoinTokens(t *testing.T) {
	for typ, want := range map[string]ocsfClass{
		"agent.join_token.created": {ocsfClassEntity, 1, "Create"},
		"agent.join_token.revoked": {ocsfClassEntity, 9, "Disable"},
	} {
		got, ok := ocsfClassOf(typ)
		if !ok || got != want {
			t.Errorf("ocsfClassOf(%s) = %+v, %v; want %+v", typ, got, ok, want)
		}
		ev := ocsfEvent{details: map[string]json.RawMessage{"id": json.RawMessage(`"ajt_01jndy7x5p0000000000000001"`)}}
		if e := ocsfEntityOf(typ, ev); e.Type != "agent_join_token" || e.UID != "ajt_01jndy7x5p0000000000000001" {
			t.Errorf("ocsfEntityOf(%s) = %+v", typ, e)
		}
	}
}
