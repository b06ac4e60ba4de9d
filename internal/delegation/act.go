package delegation

import (
	"encoding/json"
	"errors"
	"slices"
)

// MaxDepthCap is the largest chain depth any configuration allows.
const MaxDepthCap = 10

// Act is the RFC 8693 §4.1 actor claim: Sub is the current actor, Act the
// prior chain (the actor that held the subject token), nested.
type Act struct {
	Sub string `json:"sub"`
	Act *Act   `json:"act,omitempty"`
}

// ParseAct decodes an act claim as agentid mints it: nested objects each
// with a non-empty sub, at most MaxDepthCap deep. A nil or empty raw is a
// nil Act (no chain).
func ParseAct(raw json.RawMessage) (*Act, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var a Act
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, errors.New("delegation: act claim is malformed")
	}
	n := 0
	for p := &a; p != nil; p = p.Act {
		n++
		if p.Sub == "" || n > MaxDepthCap {
			return nil, errors.New("delegation: act claim is malformed")
		}
	}
	return &a, nil
}

// Actors lists the chain's actors, the current one first; nil for a nil
// Act.
func (a *Act) Actors() []string {
	var out []string
	for p := a; p != nil; p = p.Act {
		out = append(out, p.Sub)
	}
	return out
}

// Depth is the number of actors in the chain.
func (a *Act) Depth() int { return len(a.Actors()) }

// Push returns the chain with actor as the new current actor and a as the
// prior chain (a is not modified).
func (a *Act) Push(actor string) *Act {
	return &Act{Sub: actor, Act: a}
}

// Marshal encodes the chain as an act claim value.
func (a *Act) Marshal() (json.RawMessage, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, errors.New("delegation: encode act claim")
	}
	return b, nil
}

// Contains reports whether actor is anywhere in the chain.
func (a *Act) Contains(actor string) bool { return slices.Contains(a.Actors(), actor) }

// MayAct is the RFC 8693 §4.4 may_act claim of a subject token: who may
// act for its subject. Sub is required; Iss, when set, names the issuer of
// Sub.
type MayAct struct {
	Sub string `json:"sub"`
	Iss string `json:"iss,omitempty"`
}
