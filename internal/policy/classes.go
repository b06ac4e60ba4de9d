package policy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// actionPattern is an action name: letters, digits and . _ : / -,
// starting and ending with a letter or digit.
var actionPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._:/-]{0,62}[A-Za-z0-9])?$`)

// ClassParams changes or creates an action class. Nil fields keep the
// class's value (a new class needs RiskTier).
type ClassParams struct {
	Name        string
	RiskTier    *string
	Description *string
	// Actions replaces the class's actions.
	Actions *[]string
}

// Classes returns the action classes in name order.
func (s *Service) Classes(ctx context.Context) ([]store.ActionClass, error) {
	cs, err := s.store.ListActionClasses(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return cs, nil
}

// SetClass creates or changes an action class, with an
// EventActionClassCreated or EventActionClassUpdated event. It refuses
// (ErrInvalid) a malformed name, tier or action, an action that belongs to
// another class, and a change under which the active policy set would not
// validate (a *PolicyError naming the policies). Classes are never
// deleted.
func (s *Service) SetClass(ctx context.Context, o audit.Origin, p ClassParams) (store.ActionClass, error) {
	if _, err := identity.NormalizeActionClasses([]string{p.Name}); err != nil {
		return store.ActionClass{}, invalid("name", "%s", reason(err))
	}
	var out store.ActionClass
	err := s.change(ctx, func(c *compiled) (func(ctx context.Context, tx store.Tx, h store.PolicyHead) (*compiled, error), error) {
		classes := slices.Clone(c.reg.classes)
		i := slices.IndexFunc(classes, func(x store.ActionClass) bool { return x.Name == p.Name })
		created := i < 0
		var next store.ActionClass
		if created {
			next = store.ActionClass{Name: p.Name}
		} else {
			next = classes[i]
		}
		if err := applyClassParams(&next, p, classes); err != nil {
			return nil, err
		}
		if created {
			classes = append(classes, next)
			slices.SortFunc(classes, func(a, b store.ActionClass) int { return strings.Compare(a.Name, b.Name) })
		} else {
			classes[i] = next
		}
		reg, err := newRegistry(classes)
		if err != nil {
			return nil, invalid("actions", "%s", err)
		}
		pol := c.pol
		if c.version > 0 {
			v, err := s.store.GetPolicyVersion(ctx, c.version)
			if err != nil {
				return nil, fmt.Errorf("policy: %w", err)
			}
			if pol, err = parse([]byte(v.Text), reg); err != nil {
				return nil, fmt.Errorf("the active policy version %d would not validate: %w", c.version, err)
			}
		}
		return func(ctx context.Context, tx store.Tx, h store.PolicyHead) (*compiled, error) {
			next.UpdatedAt, next.UpdatedBy = s.now(), o.Actor.ID
			stored, err := tx.PutActionClass(ctx, h.Generation, next)
			if err != nil {
				return nil, err
			}
			typ := EventActionClassUpdated
			if created {
				typ = EventActionClassCreated
			}
			ev := o.Event(audit.Admin, typ)
			ev.Time = next.UpdatedAt
			ev.Details = map[string]any{"name": stored.Name, "risk_tier": stored.RiskTier,
				"description": stored.Description, "actions": nonNil(stored.Actions), "version": stored.Version}
			if _, err := s.rec.Append(ctx, tx, ev); err != nil {
				return nil, err
			}
			out = stored
			reg.classes[slices.IndexFunc(reg.classes, func(x store.ActionClass) bool { return x.Name == p.Name })] = stored
			return &compiled{generation: h.Generation + 1, version: c.version, reg: reg, pol: pol}, nil
		}, nil
	})
	if err != nil {
		return store.ActionClass{}, err
	}
	return out, nil
}

// applyClassParams validates p and applies it to c; others are the
// current classes (c's own included).
func applyClassParams(c *store.ActionClass, p ClassParams, others []store.ActionClass) error {
	if p.RiskTier != nil {
		if !slices.Contains(Tiers(), *p.RiskTier) {
			return invalid("risk_tier", "must be %s, %s or %s", TierLow, TierMedium, TierHigh)
		}
		c.RiskTier = *p.RiskTier
	}
	if c.RiskTier == "" {
		return invalid("risk_tier", "is required for a new action class")
	}
	for _, o := range others {
		if slices.Contains(o.Actions, c.Name) {
			return invalid("name", "%q is an action of action class %q", c.Name, o.Name)
		}
	}
	if p.Description != nil {
		if len(*p.Description) > MaxDescriptionLen || !utf8.ValidString(*p.Description) {
			return invalid("description", "must be valid UTF-8 of at most %d bytes", MaxDescriptionLen)
		}
		c.Description = *p.Description
	}
	if p.Actions == nil {
		return nil
	}
	if len(*p.Actions) > MaxActionsPerClass {
		return invalid("actions", "at most %d actions per class", MaxActionsPerClass)
	}
	acts := slices.Clone(*p.Actions)
	slices.Sort(acts)
	acts = slices.Compact(acts)
	for i, a := range acts {
		field := fmt.Sprintf("actions[%d]", i)
		if !actionPattern.MatchString(a) {
			return invalid(field, "%q must be 1 to %d of A-Z a-z 0-9 . _ : / -, starting and ending with a letter or digit", truncated(a), MaxNameLen)
		}
		for _, o := range others {
			if o.Name == c.Name {
				continue
			}
			if a == o.Name || slices.Contains(o.Actions, a) {
				return invalid(field, "%q already belongs to action class %q", a, o.Name)
			}
		}
		if a == c.Name {
			return invalid(field, "%q is the class itself", a)
		}
	}
	if len(acts) == 0 {
		acts = nil
	}
	c.Actions = acts
	return nil
}

// reason is the client-safe reason of a validation error.
func reason(err error) string {
	var ve *fault.ValidationError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return err.Error()
}
