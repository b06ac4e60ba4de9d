package identity

import (
	"slices"
	"strings"

	"github.com/agentid/agentid/internal/attest"
	"github.com/agentid/agentid/internal/store"
)

// normalizeRules validates an agent's attestation rules (ADR 0015 §2)
// and returns them with canonical matchers.
func normalizeRules(rs []store.AttestationRule) ([]store.AttestationRule, error) {
	out, err := attest.CheckRules(rs)
	if err != nil {
		return nil, invalid(FieldAttestation, "%s", ruleReason(err))
	}
	return out, nil
}

// ruleReason is the client-facing reason of an attest.CheckRules error:
// its text without the package and sentinel prefixes.
func ruleReason(err error) string {
	s := strings.ReplaceAll(err.Error(), attest.ErrBadRule.Error()+": ", "")
	return strings.ReplaceAll(s, "attest: ", "")
}

// rulesEqual reports whether two rule lists are the same.
func rulesEqual(a, b []store.AttestationRule) bool {
	return slices.EqualFunc(a, b, func(x, y store.AttestationRule) bool {
		return x.Attestor == y.Attestor && slices.Equal(x.Matchers, y.Matchers)
	})
}

// rulesDetail is the audit detail value of attestation rules: a list of
// "attestor: m1, m2" strings, empty when none.
func rulesDetail(rs []store.AttestationRule) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, attest.RuleString(r))
	}
	return out
}
