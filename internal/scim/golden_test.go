package scim

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/golden"
	"github.com/agentid/agentid/internal/store"
)

// TestWireGolden pins the wire shape of the discovery documents, of a
// User and of an Agent (go test -update rewrites testdata/).
func TestWireGolden(t *testing.T) {
	const base = "https://agentid.example.com/scim/v2"
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	own := store.Owner{ID: "own_01jndy7x5p0000000000000001", Kind: store.OwnerPerson, Email: "bjensen@example.com",
		DisplayName: "Barbara Jensen", UserName: "bjensen@example.com", ExternalID: "00u1abcd", State: store.OwnerActive,
		CreatedAt: at, UpdatedAt: at.Add(time.Hour), Version: 2}
	agent := store.Agent{ID: "agt_01jndy7x5p0000000000000002", Name: "helpdesk-bot", Purpose: "Answers helpdesk tickets",
		Owners: []string{own.ID}, ExternalID: "8ccc535b-716d-4d32-b3e9-57c8be449c82", ActionClasses: []string{"read"},
		Labels: map[string]string{"team": "it"}, State: store.AgentSuspended, CreatedAt: at, UpdatedAt: at.Add(2 * time.Hour), Version: 3}
	for name, v := range map[string]any{
		"service_provider_config": Config(base),
		"resource_types":          NewList([]ResourceType{UserResourceType(base), AgentResourceType(base)}, 2, 1),
		"schemas":                 NewList([]Schema{UserSchema(base), AgentSchema(base)}, 2, 1),
		"user":                    FromOwner(own, base),
		"agent":                   FromAgent(agent, base),
		"users_empty":             NewList([]User(nil), 0, 1),
		"error":                   badRequest(TypeInvalidFilter, "filter: operator %q is not supported", "co").Response(),
	} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, name, append(b, '\n'))
	}
}
