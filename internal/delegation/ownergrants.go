package delegation

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/store"
)

// ReasonOwnerDeactivated is the revocation reason of the grants revoked
// because the person who gave them was deactivated as an owner.
const ReasonOwnerDeactivated = "owner deactivated"

var _ identity.OwnerGrantRevoker = (*Service)(nil)

// RevokeOwnerGrants implements identity.OwnerGrantRevoker: inside tx, the
// transaction that deactivates p.Owner, it revokes every grant that is
// active at p.Now and whose delegating person is the owner: its subject is
// the owner's Subject, under the owner's SubjectIssuer when it has one and
// under any trusted issuer when not (ADR 0027), or its subject email
// equals the owner's Email up to the case of ASCII letters
// (store.FoldEmail). Grants under agentid's own issuer name agents, not
// people, and are left alone, as is everything when the owner is a team.
// Each revoked grant gets what an admin revocation gives it: RevokedAt,
// RevokedBy (o's actor), reason ReasonOwnerDeactivated, and grant.revoked
// with tokens_affected and owner_id; introspection then finds the tokens
// exchanged under it inactive (ADR 0014 §5). It returns the revoked ids in
// id order.
//
// Both matches are index lookups (the subject, and the email's ASCII case
// folding, store.FoldEmail: migration 0019), so the work inside the
// deactivation's transaction grows with the person's grants only.
func (s *Service) RevokeOwnerGrants(ctx context.Context, tx store.Tx, o audit.Origin, p identity.RevokeOwnerGrantsParams) ([]string, error) {
	own := p.Owner
	if own.Kind != store.OwnerPerson || (own.Subject == "" && own.Email == "") {
		return nil, nil
	}
	now := p.Now
	if now.IsZero() {
		now = s.now()
	}
	ids, err := s.ownerGrants(ctx, tx, own, now)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, _, err := s.revoke(ctx, tx, o, id, now, nil, map[string]any{
			"reason": ReasonOwnerDeactivated, "owner_id": own.ID,
		}); err != nil {
			return nil, fmt.Errorf("delegation: revoke grant %q of owner %s: %w", id, own.ID, err)
		}
	}
	return ids, nil
}

// ownerGrants returns the ids, sorted and distinct, of the grants active
// at now that own (a person) gave.
func (s *Service) ownerGrants(ctx context.Context, r store.GrantReader, own store.Owner, now time.Time) ([]string, error) {
	var ids []string
	scan := func(f store.GrantFilter) error {
		f.ActiveAt = now
		page := store.Page{PageSize: store.MaxPageSize}
		for {
			gs, next, err := r.ListGrants(ctx, f, page)
			if err != nil {
				return fmt.Errorf("delegation: list the grants of owner %s: %w", own.ID, err)
			}
			for _, g := range gs {
				if g.SubjectIssuer != s.issuer {
					ids = append(ids, g.ID)
				}
			}
			if next == "" {
				return nil
			}
			page.PageToken = next
		}
	}
	if own.Subject != "" {
		if err := scan(store.GrantFilter{Subject: own.Subject, SubjectIssuer: own.SubjectIssuer}); err != nil {
			return nil, err
		}
	}
	if own.Email != "" {
		if err := scan(store.GrantFilter{SubjectEmail: own.Email}); err != nil {
			return nil, err
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}
