package identity

import (
	"errors"
	"strings"

	"github.com/agentid/agentid/internal/selector"
)

// MaxSelectors is the most workload selectors one agent may have.
const MaxSelectors = 32

// NormalizeSelectors validates an agent's workload selectors and returns
// them deduplicated and sorted (never nil). Each is a selector in its
// canonical spelling (see selector.Parse): unix:uid:<0..4294967295>,
// unix:gid:<…>, unix:path:<absolute clean path> or unix:sha256:<64
// lowercase hex>. At most MaxSelectors, and at most one of each kind: a
// process has one uid, one gid, one executable and one hash, and an
// agent's selectors must all hold (AND), so two of a kind could never
// match. It returns a *ValidationError for field "selectors[i]" (naming
// the selector) or "selectors".
func NormalizeSelectors(sels []string) ([]string, error) {
	out, err := normalizeSet(FieldSelectors, sels, MaxSelectors, func(s string) error {
		if _, err := selector.Parse(s); err != nil {
			if se, ok := errors.AsType[*selector.Error](err); ok {
				return invalid("", "%s: %s", quote(s), se.Reason)
			}
			return invalid("", "%s: %s", quote(s), err.Error())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Sorted, so selectors of one kind are neighbours.
	for i := 1; i < len(out); i++ {
		if kindPrefix(out[i]) == kindPrefix(out[i-1]) {
			return nil, invalid(FieldSelectors, "%s and %s: a workload has one %s, and every selector of an agent must hold, so the agent would match no workload; give at most one selector of each kind",
				quote(out[i-1]), quote(out[i]), strings.TrimPrefix(kindPrefix(out[i]), selector.TypeUnix+":"))
		}
	}
	return out, nil
}

// kindPrefix returns "type:kind" of a valid selector.
func kindPrefix(s string) string {
	typ, rest, _ := strings.Cut(s, ":")
	kind, _, _ := strings.Cut(rest, ":")
	return typ + ":" + kind
}
