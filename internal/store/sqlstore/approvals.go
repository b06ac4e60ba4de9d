package sqlstore

import (
	"context"
	"fmt"

	"github.com/agentid/agentid/internal/store"
)

// approvalCols are the columns scanApproval reads; the agent id and the
// user id are NULL when not set.
const approvalCols = `id, state, scope_key, COALESCE(agent_id, ''), COALESCE(user_id, ''), agent_name, person,
	action, action_class, risk_tier, resource_type, resource_id, obligations, limits, policy_version, policy_ids,
	reason, requested_by, trace_id, created_at, expires_at, decided_at, decider_type, decider, decide_reason, version`

// approvalInsertCols are the columns CreateApproval writes, in
// approvalCols' order.
const approvalInsertCols = `id, state, scope_key, agent_id, user_id, agent_name, person,
	action, action_class, risk_tier, resource_type, resource_id, obligations, limits, policy_version, policy_ids,
	reason, requested_by, trace_id, created_at, expires_at, decided_at, decider_type, decider, decide_reason, version`

func scanApproval(s rowScanner) (store.Approval, error) {
	var a store.Approval
	if err := s.Scan(&a.ID, &a.State, &a.ScopeKey, &a.AgentID, &a.User, &a.AgentName, &a.Person, &a.Action, &a.ActionClass,
		&a.RiskTier, &a.ResourceType, &a.ResourceID, listCol{&a.Obligations}, mapCol{&a.Limits}, &a.PolicyVersion,
		listCol{&a.PolicyIDs}, &a.Reason, &a.RequestedBy, &a.TraceID,
		timeCol{&a.CreatedAt}, timeCol{&a.ExpiresAt}, timeCol{&a.DecidedAt},
		&a.DeciderType, &a.Decider, &a.DecideReason, &a.Version); err != nil {
		return store.Approval{}, err
	}
	return a, nil
}

// checkApproval enforces what the store requires of an approval.
func checkApproval(a store.Approval) error {
	switch {
	case a.ID == "" || a.State == "" || a.ScopeKey == "":
		return fmt.Errorf("%w: approval id, state and scope key are required", store.ErrInvalid)
	case (a.AgentID == "") == (a.User == ""):
		return fmt.Errorf("%w: an approval needs exactly one of an agent id and a user", store.ErrInvalid)
	case a.Action == "" || a.ResourceType == "" || a.ResourceID == "":
		return fmt.Errorf("%w: approval action and resource are required", store.ErrInvalid)
	case a.CreatedAt.IsZero() || a.ExpiresAt.IsZero():
		return fmt.Errorf("%w: approval creation and expiry times are required", store.ErrInvalid)
	}
	switch a.State {
	case store.ApprovalPending, store.ApprovalApproved, store.ApprovalDenied, store.ApprovalExpired:
		return nil
	}
	return fmt.Errorf("%w: unknown approval state %q", store.ErrInvalid, a.State)
}

// GetApproval implements store.ApprovalReader.
func (r *reader) GetApproval(ctx context.Context, id string) (store.Approval, error) {
	a, err := r.getApproval(ctx, id, "")
	if err != nil {
		return store.Approval{}, fmt.Errorf("store: get approval %q: %w", id, err)
	}
	return a, nil
}

func (r *reader) getApproval(ctx context.Context, id, suffix string) (store.Approval, error) {
	return getOne(ctx, r, scanApproval, `SELECT `+approvalCols+` FROM approvals WHERE id = $1`+suffix, id)
}

// approvalsToken is the page-token kind of ListApprovals; its key is the
// last id.
const approvalsToken = "approvals"

// ListApprovals implements store.ApprovalReader.
func (r *reader) ListApprovals(ctx context.Context, f store.ApprovalFilter, p store.Page) ([]store.Approval, string, error) {
	after, err := decodeToken(approvalsToken, p.PageToken)
	if err != nil {
		return nil, "", err
	}
	args := queryArgs{after}
	q := `SELECT ` + approvalCols + ` FROM approvals WHERE id > $1`
	if f.State != "" {
		q += ` AND state = ` + args.add(string(f.State))
	}
	if f.AgentID != "" {
		q += ` AND agent_id = ` + args.add(f.AgentID)
	}
	if f.User != "" {
		q += ` AND user_id = ` + args.add(f.User)
	}
	if f.ScopeKey != "" {
		q += ` AND scope_key = ` + args.add(f.ScopeKey)
	}
	if !f.DueAt.IsZero() {
		q += ` AND state IN ('pending', 'approved') AND expires_at <= ` + args.add(r.d.timeArg(f.DueAt))
	}
	out, err := queryAll(ctx, r, scanApproval, q+` ORDER BY id`+limit(p.Size()), args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list approvals: %w", err)
	}
	out, next := nextPage(out, p.Size(), approvalsToken, func(a store.Approval) string { return a.ID })
	return out, next, nil
}

// CreateApproval implements store.ApprovalWriter.
func (t *txn) CreateApproval(ctx context.Context, a store.Approval) (store.Approval, error) {
	var out store.Approval
	err := t.write(ctx, true, func(ctx context.Context) error {
		if err := checkApproval(a); err != nil {
			return err
		}
		obligations, err := listArg(a.Obligations)
		if err != nil {
			return err
		}
		ids, err := listArg(a.PolicyIDs)
		if err != nil {
			return err
		}
		limits, err := mapArg(a.Limits)
		if err != nil {
			return err
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO approvals (`+approvalInsertCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
			$21, $22, $23, $24, $25, 1)`,
			a.ID, string(a.State), a.ScopeKey, nullIfEmpty(a.AgentID), nullIfEmpty(a.User), a.AgentName, a.Person, a.Action, a.ActionClass, a.RiskTier,
			a.ResourceType, a.ResourceID, obligations, limits, a.PolicyVersion, ids, a.Reason, a.RequestedBy, a.TraceID,
			t.d.timeArg(a.CreatedAt), t.d.timeArg(a.ExpiresAt), t.d.timeArg(a.DecidedAt), a.DeciderType, a.Decider,
			a.DecideReason); err != nil {
			return agentMissing(a.AgentID, t.d.classify(err))
		}
		out, err = t.getApproval(ctx, a.ID, "")
		return err
	})
	if err != nil {
		return store.Approval{}, fmt.Errorf("store: create approval %q: %w", a.ID, err)
	}
	return out, nil
}

// UpdateApproval implements store.ApprovalWriter. Only the state, the
// expiry and the decision fields are written; fn's changes to any other
// field are ignored.
func (t *txn) UpdateApproval(ctx context.Context, id string, fn func(store.Approval) (store.Approval, error)) (store.Approval, error) {
	var out store.Approval
	err := t.write(ctx, false, func(ctx context.Context) error {
		old, err := t.getApproval(ctx, id, t.d.ForUpdate)
		if err != nil {
			return err
		}
		a, err := fn(old)
		if err != nil {
			return &fnError{err}
		}
		old.State, old.ExpiresAt = a.State, a.ExpiresAt
		if err := checkApproval(old); err != nil {
			return err
		}
		res, err := t.q.ExecContext(ctx, `UPDATE approvals SET state = $2, expires_at = $3, decided_at = $4,
			decider_type = $5, decider = $6, decide_reason = $7, version = $8 WHERE id = $1 AND version = $9`,
			id, string(a.State), t.d.timeArg(a.ExpiresAt), t.d.timeArg(a.DecidedAt), a.DeciderType, a.Decider,
			a.DecideReason, old.Version+1, old.Version)
		if err := checkOne(t.d, res, err); err != nil {
			return err
		}
		out, err = t.getApproval(ctx, id, "")
		return err
	})
	if err != nil {
		return store.Approval{}, unwrapFn(err, "store: update approval %q", id)
	}
	return out, nil
}
