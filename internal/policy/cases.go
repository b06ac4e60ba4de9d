package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentid/agentid/internal/audit"
)

// MaxCases bounds the test cases of one TestCases call.
const MaxCases = 1000

// Case is a request and the decision a policy document should give it.
type Case struct {
	Name    string
	Request Request
	Expect  string // Allow, Deny or Conditional
}

// CaseResult is the outcome of one Case: the decision given, or Err (a
// *ValidationError) when the request could not be evaluated; Pass when the
// decision is the one expected.
type CaseResult struct {
	Name     string
	Expect   string
	Decision Decision
	Err      error
	Pass     bool
}

// TestCases checks a policy document against the current action classes
// and evaluates each case with it, against the agents as they are in the
// registry, without activating it or recording decisions (nothing is
// decided for anyone). A document that does not validate is a
// *PolicyError.
func (s *Service) TestCases(ctx context.Context, text string, cases []Case) ([]CaseResult, error) {
	if len(cases) > MaxCases {
		return nil, invalid("cases", "at most %d cases", MaxCases)
	}
	for i, cs := range cases {
		switch cs.Expect {
		case Allow, Deny, Conditional:
		default:
			return nil, invalid(fmt.Sprintf("cases[%d].expect", i), "must be %s, %s or %s", Allow, Deny, Conditional)
		}
	}
	cur, err := s.refresh(ctx, true)
	if err != nil {
		return nil, err
	}
	p, err := parse([]byte(text), cur.reg)
	if err != nil {
		return nil, err
	}
	c := &compiled{generation: cur.generation, reg: cur.reg, pol: p}
	now := s.now()
	out := make([]CaseResult, len(cases))
	for i, cs := range cases {
		out[i] = CaseResult{Name: cs.Name, Expect: cs.Expect}
		d, _, _, err := s.evaluate(ctx, c, audit.Origin{}, cs.Request, now, false)
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			out[i].Err = err
		case err != nil:
			return nil, err
		default:
			out[i].Decision, out[i].Pass = d, d.Decision == cs.Expect
		}
	}
	return out, nil
}
