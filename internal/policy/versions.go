package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// maxAttempts bounds the retries of a change whose check raced another
// replica's change.
const maxAttempts = 3

// errStale is returned inside a change's transaction when the head moved
// since the change was checked; the change is checked again.
var errStale = errors.New("policy: the policy head moved")

// Check parses and validates a policy document against the current action
// classes without storing anything. It returns the policy ids, or a
// *PolicyError.
func (s *Service) Check(ctx context.Context, text string) ([]string, error) {
	c, err := s.refresh(ctx, true)
	if err != nil {
		return nil, err
	}
	p, err := parse([]byte(text), c.reg)
	if err != nil {
		return nil, err
	}
	return p.ids, nil
}

// Apply stores text as a new version and activates it, with an
// EventPolicyApplied event, in one transaction. The document is checked
// first (a *PolicyError, wrapping ErrInvalid, lists every problem with its
// line and column). ErrConflict when policies kept changing elsewhere.
func (s *Service) Apply(ctx context.Context, o audit.Origin, text, comment string) (store.PolicyVersion, error) {
	if len(comment) > MaxCommentLen || !utf8.ValidString(comment) {
		return store.PolicyVersion{}, invalid("comment", "must be valid UTF-8 of at most %d bytes", MaxCommentLen)
	}
	if !utf8.ValidString(text) {
		return store.PolicyVersion{}, &PolicyError{[]Problem{{Message: "the document is not valid UTF-8"}}}
	}
	var out store.PolicyVersion
	err := s.change(ctx, func(c *compiled) (func(ctx context.Context, tx store.Tx, h store.PolicyHead) (*compiled, error), error) {
		p, err := parse([]byte(text), c.reg)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, tx store.Tx, h store.PolicyHead) (*compiled, error) {
			now := s.now()
			sum := sha256.Sum256([]byte(text))
			v, err := tx.CreatePolicyVersion(ctx, store.PolicyVersion{
				Version: h.LatestVersion + 1, Text: text, SHA256: sum[:], PolicyIDs: p.ids,
				Author: o.Actor.ID, Comment: comment, CreatedAt: now,
			})
			if err != nil {
				return nil, err
			}
			if _, err := tx.SetPolicyHead(ctx, h.Generation, store.PolicyHead{
				ActiveVersion: v.Version, UpdatedAt: now, UpdatedBy: o.Actor.ID}); err != nil {
				return nil, err
			}
			if _, err := s.rec.Append(ctx, tx, versionEvent(o, EventPolicyApplied, v, h.ActiveVersion, now)); err != nil {
				return nil, err
			}
			out = v
			return &compiled{generation: h.Generation + 1, version: v.Version, reg: c.reg, pol: p}, nil
		}, nil
	})
	if err != nil {
		return store.PolicyVersion{}, err
	}
	return out, nil
}

// Rollback activates an earlier version again, with an
// EventPolicyRolledBack event. The version is checked against the current
// action classes first. ErrNotFound when there is no such version.
func (s *Service) Rollback(ctx context.Context, o audit.Origin, version int64) (store.PolicyVersion, error) {
	v, err := s.Get(ctx, version)
	if err != nil {
		return store.PolicyVersion{}, err
	}
	err = s.change(ctx, func(c *compiled) (func(ctx context.Context, tx store.Tx, h store.PolicyHead) (*compiled, error), error) {
		p, err := parse([]byte(v.Text), c.reg)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, tx store.Tx, h store.PolicyHead) (*compiled, error) {
			if h.ActiveVersion == v.Version {
				return nil, invalid("version", "version %d is already active", v.Version)
			}
			now := s.now()
			if _, err := tx.SetPolicyHead(ctx, h.Generation, store.PolicyHead{
				ActiveVersion: v.Version, UpdatedAt: now, UpdatedBy: o.Actor.ID}); err != nil {
				return nil, err
			}
			if _, err := s.rec.Append(ctx, tx, versionEvent(o, EventPolicyRolledBack, v, h.ActiveVersion, now)); err != nil {
				return nil, err
			}
			return &compiled{generation: h.Generation + 1, version: v.Version, reg: c.reg, pol: p}, nil
		}, nil
	})
	if err != nil {
		return store.PolicyVersion{}, err
	}
	return v, nil
}

// change checks a change against the newest policy set (prepare, outside
// any transaction), then commits it (the function prepare returns) if the
// head has not moved since, and installs the policy set it returns. When
// the head moved, the change is checked again, up to maxAttempts times.
func (s *Service) change(ctx context.Context,
	prepare func(c *compiled) (func(ctx context.Context, tx store.Tx, h store.PolicyHead) (*compiled, error), error)) error {
	for range maxAttempts {
		c, err := s.refresh(ctx, true)
		if err != nil {
			return err
		}
		commit, err := prepare(c)
		if err != nil {
			return err
		}
		var next *compiled
		err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			h, err := tx.GetPolicyHead(ctx)
			if err != nil {
				return err
			}
			if h.Generation != c.generation {
				return errStale
			}
			next, err = commit(ctx, tx, h)
			return err
		})
		switch {
		case errors.Is(err, errStale), errors.Is(err, store.ErrConflict):
			continue
		case err != nil:
			return mapStoreError(err)
		}
		s.install(next)
		return nil
	}
	return ErrConflict
}

// mapStoreError gives store sentinels this package's sentinels; other
// errors (this package's own, failures) pass unchanged.
func mapStoreError(err error) error {
	var ve *ValidationError
	var pe *PolicyError
	switch {
	case errors.As(err, &ve), errors.As(err, &pe):
		return err
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	default:
		return fmt.Errorf("policy: %w", err)
	}
}

func versionEvent(o audit.Origin, typ string, v store.PolicyVersion, previous int64, now time.Time) audit.Event {
	ev := o.Event(audit.Admin, typ)
	ev.Time = now
	ev.Details = map[string]any{
		"version":          v.Version,
		"previous_version": previous,
		"sha256":           hex.EncodeToString(v.SHA256),
		"policy_ids":       nonNil(v.PolicyIDs),
		"comment":          v.Comment,
	}
	return ev
}

// Get returns a version; ErrNotFound when there is none.
func (s *Service) Get(ctx context.Context, version int64) (store.PolicyVersion, error) {
	v, err := s.store.GetPolicyVersion(ctx, version)
	if errors.Is(err, store.ErrNotFound) {
		return store.PolicyVersion{}, fmt.Errorf("%w: no policy version %d", ErrNotFound, version)
	}
	if err != nil {
		return store.PolicyVersion{}, fmt.Errorf("policy: %w", err)
	}
	return v, nil
}

// Head returns the policy head: the active and latest versions.
func (s *Service) Head(ctx context.Context) (store.PolicyHead, error) {
	h, err := s.store.GetPolicyHead(ctx)
	if err != nil {
		return store.PolicyHead{}, fmt.Errorf("policy: %w", err)
	}
	return h, nil
}

// History lists versions newest first.
func (s *Service) History(ctx context.Context, p store.Page) ([]store.PolicyVersion, string, error) {
	vs, next, err := s.store.ListPolicyVersions(ctx, p)
	if err != nil {
		return nil, "", fmt.Errorf("policy: %w", err)
	}
	return vs, next, nil
}

// Diff is how two policy documents differ, policy by policy (by @id).
type Diff struct {
	Added   []string // ids only in the second
	Removed []string // ids only in the first
	Changed []string // ids in both whose text differs
	// From and To hold the text of every added, removed or changed
	// policy in the first and the second document.
	From, To map[string]string
}

// DiffTexts compares two documents, each parsed (not validated: a version
// stored earlier may predate the current action classes). An empty
// document counts as no policies.
func DiffTexts(from, to string) (Diff, error) {
	a, err := policyTexts(from)
	if err != nil {
		return Diff{}, err
	}
	b, err := policyTexts(to)
	if err != nil {
		return Diff{}, err
	}
	d := Diff{From: map[string]string{}, To: map[string]string{}}
	for id, t := range a {
		switch u, ok := b[id]; {
		case !ok:
			d.Removed = append(d.Removed, id)
			d.From[id] = t
		case u != t:
			d.Changed = append(d.Changed, id)
			d.From[id], d.To[id] = t, u
		}
	}
	for id, u := range b {
		if _, ok := a[id]; !ok {
			d.Added = append(d.Added, id)
			d.To[id] = u
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	slices.Sort(d.Changed)
	return d, nil
}

// policyTexts maps each policy's @id (or its position, without one) to
// its canonical text.
func policyTexts(doc string) (map[string]string, error) {
	out := map[string]string{}
	if doc == "" {
		return out, nil
	}
	if len(doc) > MaxPolicyBytes {
		return nil, &PolicyError{[]Problem{{Message: fmt.Sprintf("the document exceeds %d bytes", MaxPolicyBytes)}}}
	}
	list, err := parseList(doc)
	if err != nil {
		return nil, err
	}
	for i, p := range list {
		_, id, _ := annotations(p)
		if id == "" {
			id = fmt.Sprintf("#%d", i+1)
		}
		out[id] = string(p.MarshalCedar())
	}
	return out, nil
}
