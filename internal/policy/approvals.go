package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// Approval audit events (family authorization): details "approval_id",
// "action", "resource" {"type", "id"}, "obligations", "limits",
// "expires_at"; "reason" is the approver's reason. The events of an
// agent's approval carry the agent axis; those of a user subject's (ADR
// 0020) carry none, and details "subject" {"type": "user", "id"} as the
// decision events do.
const (
	// EventApprovalRequested records a new pending approval request,
	// created by a conditional decision.
	EventApprovalRequested = "approval.requested"
	// EventApprovalApproved records an approval (actor: the approver).
	EventApprovalApproved = "approval.approved"
	// EventApprovalDenied records a refusal (actor: the approver).
	EventApprovalDenied = "approval.denied"
	// EventApprovalExpired records a pending or approved approval that
	// ran out (actor: system).
	EventApprovalExpired = "approval.expired"
)

// Approval defaults and bounds.
const (
	// DefaultApprovalPendingTTL is how long a request waits for an
	// approver.
	DefaultApprovalPendingTTL = 24 * time.Hour
	// DefaultApprovalTTL is how long an approval covers requests once
	// given, and the most an approver may choose.
	DefaultApprovalTTL = time.Hour
	// MaxApprovalReasonLen bounds an approver's reason.
	MaxApprovalReasonLen = 1024
	// maxScopeApprovals bounds the approvals of one scope a decision
	// looks through (newest last; older ones are expired by then).
	maxScopeApprovals = store.MaxPageSize
)

// More sentinel errors of approvals; transports map them:
//
//	ErrForbidden         → 403
//	ErrIllegalTransition → 409 (also matches store.ErrConflict)
var (
	// ErrForbidden means the approver may not act on the approval: not an
	// owner of the agent, not a designated approver, or the user subject
	// whose request it is.
	ErrForbidden = errors.New("policy: not an approver of this request")
	// ErrIllegalTransition means the approval is no longer pending
	// (already decided, or expired).
	ErrIllegalTransition = fault.NewSentinel("policy: illegal approval transition", store.ErrConflict)
)

// ApprovalParams configures approvals; the zero value is the defaults.
type ApprovalParams struct {
	// PendingTTL is how long a request waits (DefaultApprovalPendingTTL).
	PendingTTL time.Duration
	// TTL is how long an approval covers requests once approved, and the
	// longest an approver may choose (DefaultApprovalTTL).
	TTL time.Duration
	// Approvers are people who may act on every approval, except a user
	// subject's own (ADR 0020); owners of the agent may act on its
	// approvals anyway. Each is a verified email, "<issuer>#<subject>",
	// or a bare subject, which matches only while one issuer is trusted
	// (ADR 0027; ApproverMatches).
	Approvers []string
	// Webhook, when set, is notified of every approval event.
	Webhook *Webhook
}

// Approver is who acts on an approval: an admin token, or a person
// authenticated by a trusted issuer.
type Approver struct {
	Type    string // audit.ActorAdmin or audit.ActorPerson
	ID      string // the admin token id, or the person's subject
	Email   string // the person's verified email, "" when unknown
	Subject string // the person's subject ("" for an admin)
	// Issuer is the trusted issuer of the person's token; SoleIssuer says
	// it is the only trusted one (ADR 0027).
	Issuer     string
	SoleIssuer bool
}

// hasSubject reports whether subject, of issuer ("" when not tied to
// one), names the person: the same subject under the same issuer, or an
// untied subject while the person's issuer is the only trusted one
// (ADR 0027).
func (who Approver) hasSubject(subject, issuer string) bool {
	return who.Type == audit.ActorPerson && subject != "" && subject == who.Subject &&
		(issuer == who.Issuer || issuer == "" && who.SoleIssuer)
}

// hasEmail reports whether email is the person's verified email, ASCII
// case aside.
func (who Approver) hasEmail(email string) bool {
	return who.Email != "" && strings.EqualFold(email, who.Email)
}

// ApproverMatches reports whether the designated approver entry names
// who: an email (with "@" and no "#") names a verified email; an entry
// "<issuer>#<subject>" (issuer identifiers have no fragment) a subject of
// that issuer; any other entry a subject of the only trusted issuer. An
// email-shaped entry is also tried as a bare subject, as some IdPs use
// addresses as subjects.
func ApproverMatches(entry string, who Approver) bool {
	if iss, sub, ok := strings.Cut(entry, "#"); ok {
		return iss != "" && who.hasSubject(sub, iss)
	}
	return (strings.Contains(entry, "@") && who.hasEmail(entry)) || who.hasSubject(entry, "")
}

// BareSubjectApprover reports whether a designated approver entry is a
// subject not tied to an issuer (no "#" and no "@"): with several trusted
// issuers it can match no one.
func BareSubjectApprover(entry string) bool {
	return !strings.ContainsAny(entry, "#@")
}

// approvalScope is what an approval is for; its digest is the store's
// scope key. User is a user subject's id (ADR 0020), with AgentID "";
// omitted when empty, so that the keys of agents' approvals stay what they
// were before.
type approvalScope struct {
	AgentID      string   `json:"agent_id"`
	User         string   `json:"user,omitempty"`
	Person       string   `json:"person"`
	Action       string   `json:"action"`
	ResourceType string   `json:"resource_type"`
	ResourceID   string   `json:"resource_id"`
	Obligations  []string `json:"obligations"`
}

func (sc approvalScope) key() string {
	b, _ := json.Marshal(sc) //nolint:errchkjson // strings only: cannot fail
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// limitsOf returns the numeric top-level values of a request's context:
// an approval for them covers later requests whose values do not exceed
// them.
func limitsOf(m map[string]any) map[string]string {
	var out map[string]string
	for k, v := range m {
		if n, ok := v.(json.Number); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = n.String()
		}
	}
	return out
}

// covers reports whether an approval with limits approved covers a request
// with limits asked: the same keys, each asked value at most the approved
// one. A request without a limit the approval has, or with one it lacks,
// is another request.
func covers(approved, asked map[string]string) bool {
	if len(approved) != len(asked) {
		return false
	}
	for k, a := range asked {
		p, ok := approved[k]
		if !ok {
			return false
		}
		x, ok1 := new(big.Rat).SetString(a)
		y, ok2 := new(big.Rat).SetString(p)
		if !ok1 || !ok2 || x.Cmp(y) > 0 {
			return false
		}
	}
	return true
}

// applyApprovals looks for an approval of a conditional decision that
// needs one: an approved one that covers the request turns the decision
// into an allow (or a conditional on the other obligations), a pending
// one that covers it is reused, else a new pending request is returned to
// be created with the decision's event. The subject is the agent a, or
// the user subject in.user (a is then the zero Agent).
func (s *Service) applyApprovals(ctx context.Context, a store.Agent, req Request, in input, d *Decision, now time.Time) (*store.Approval, error) {
	if d.Decision != Conditional || !slices.Contains(d.Obligations, ObligationApproval) {
		return nil, nil
	}
	sc := approvalScope{AgentID: a.ID, User: in.user, Action: req.Action, ResourceType: req.Resource.Type,
		ResourceID: req.Resource.ID, Obligations: d.Obligations}
	if in.user != "" {
		sc.AgentID = ""
	}
	if in.ctx.delegation != nil {
		sc.Person = in.ctx.delegation.Subject
	}
	key := sc.key()
	list, _, err := s.store.ListApprovals(ctx, store.ApprovalFilter{ScopeKey: key}, store.Page{PageSize: maxScopeApprovals})
	if err != nil {
		return nil, fmt.Errorf("policy: look up approvals: %w", err)
	}
	var pending *store.Approval
	for i := len(list) - 1; i >= 0; i-- { // newest first
		ap := list[i]
		if !now.Before(ap.ExpiresAt) || !covers(ap.Limits, in.limits) {
			continue
		}
		switch ap.State {
		case store.ApprovalApproved:
			d.ApprovalID, d.ApprovalState = ap.ID, string(ap.State)
			d.Obligations = slices.DeleteFunc(d.Obligations, func(o string) bool { return o == ObligationApproval })
			if len(d.Obligations) == 0 {
				d.Decision, d.Obligations = Allow, nil
			}
			d.Reasons = append(d.Reasons, "approved by "+ap.DeciderType+" "+ap.Decider)
			return nil, nil
		case store.ApprovalPending:
			if pending == nil {
				pending = &ap
			}
		}
	}
	if pending != nil {
		d.ApprovalID, d.ApprovalState = pending.ID, string(pending.State)
		return nil, nil
	}
	id, err := recordid.New(recordid.Approval, now, s.approvals.rand)
	if err != nil {
		return nil, fmt.Errorf("policy: approval id: %w", err)
	}
	d.ApprovalID, d.ApprovalState = id, string(store.ApprovalPending)
	ap := &store.Approval{
		ID: id, State: store.ApprovalPending, ScopeKey: key, AgentID: sc.AgentID, User: sc.User, Person: sc.Person,
		Action: req.Action, ActionClass: in.action.class, RiskTier: in.action.tier,
		ResourceType: req.Resource.Type, ResourceID: req.Resource.ID,
		Obligations: slices.Clone(d.Obligations), Limits: in.limits, PolicyVersion: d.PolicyVersion,
		PolicyIDs: slices.Clone(d.PolicyIDs), Reason: strings.Join(d.Reasons, "; "), TraceID: in.ctx.traceID,
		CreatedAt: now, ExpiresAt: now.Add(s.approvals.pendingTTL),
	}
	if sc.AgentID != "" {
		ap.AgentName = a.Name
	}
	return ap, nil
}

// createApproval stores a new approval request in tx unless another
// pending one of the scope that covers it was created meanwhile (a
// concurrent decision, or an earlier item of the batch); it returns the
// approval used and whether it is new.
func (s *Service) createApproval(ctx context.Context, tx store.Tx, o audit.Origin, ap store.Approval) (store.Approval, bool, error) {
	list, _, err := tx.ListApprovals(ctx, store.ApprovalFilter{ScopeKey: ap.ScopeKey, State: store.ApprovalPending},
		store.Page{PageSize: maxScopeApprovals})
	if err != nil {
		return store.Approval{}, false, err
	}
	for _, p := range slices.Backward(list) {
		if ap.CreatedAt.Before(p.ExpiresAt) && covers(p.Limits, ap.Limits) {
			return p, false, nil
		}
	}
	ap.RequestedBy = o.Actor.ID
	created, err := tx.CreateApproval(ctx, ap)
	if err != nil {
		return store.Approval{}, false, err
	}
	ev := approvalEvent(o, EventApprovalRequested, created, ap.CreatedAt)
	ev.Reason = created.Reason
	if _, err := s.rec.Append(ctx, tx, ev); err != nil {
		return store.Approval{}, false, err
	}
	return created, true, nil
}

// approvalEvent is the audit event of an approval's transition.
func approvalEvent(o audit.Origin, typ string, a store.Approval, now time.Time) audit.Event {
	ev := o.Event(audit.Authorization, typ)
	ev.Time = now
	if a.AgentID != "" {
		ev.Agent = &audit.Agent{ID: a.AgentID, Name: a.AgentName}
	}
	if a.Person != "" {
		ev.Delegation = &audit.Delegation{Subject: a.Person}
	}
	task := audit.Task{}
	if ev.Task != nil {
		task = *ev.Task
	}
	if a.ActionClass != "" {
		task.ActionClasses = []string{a.ActionClass}
	}
	if task.TraceID == "" {
		task.TraceID = a.TraceID
	}
	ev.Task = &task
	limits := map[string]string{}
	for k, v := range a.Limits {
		limits[k] = v
	}
	ev.Details = map[string]any{
		"approval_id": a.ID,
		"action":      truncated(a.Action),
		"resource":    map[string]any{"type": truncated(a.ResourceType), "id": truncated(a.ResourceID)},
		"obligations": nonNil(a.Obligations),
		"limits":      limits,
		"expires_at":  a.ExpiresAt.UTC().Format(time.RFC3339),
		"state":       string(a.State),
	}
	if a.User != "" {
		ev.Details["subject"] = map[string]any{"type": SubjectUser, "id": truncated(a.User)}
	}
	return ev
}

// GetApproval returns an approval; a pending or approved one past its
// expiry is returned as expired (the collector records the transition).
func (s *Service) GetApproval(ctx context.Context, id string) (store.Approval, error) {
	a, err := s.store.GetApproval(ctx, id)
	if err != nil {
		return store.Approval{}, fmt.Errorf("policy: get approval: %w", err)
	}
	return s.effective(a), nil
}

// ListApprovalsParams selects approvals.
type ListApprovalsParams struct {
	State   store.ApprovalState // "" for all
	AgentID string              // "" for all
	User    string              // a user subject's id; "" for all
	Page    store.Page
}

// ListApprovals lists approvals in creation order.
func (s *Service) ListApprovals(ctx context.Context, p ListApprovalsParams) ([]store.Approval, string, error) {
	switch p.State {
	case "", store.ApprovalPending, store.ApprovalApproved, store.ApprovalDenied, store.ApprovalExpired:
	default:
		return nil, "", invalid("state", "must be pending, approved, denied or expired")
	}
	if len(p.User) > MaxIDLen {
		return nil, "", invalid("user", "exceeds %d bytes", MaxIDLen)
	}
	list, next, err := s.store.ListApprovals(ctx, store.ApprovalFilter{State: p.State, AgentID: p.AgentID, User: p.User}, p.Page)
	if err != nil {
		return nil, "", fmt.Errorf("policy: list approvals: %w", err)
	}
	for i := range list {
		list[i] = s.effective(list[i])
	}
	return list, next, nil
}

func (s *Service) effective(a store.Approval) store.Approval {
	if (a.State == store.ApprovalPending || a.State == store.ApprovalApproved) && !s.now().Before(a.ExpiresAt) {
		a.State = store.ApprovalExpired
	}
	return a
}

// DecideApprovalParams is an approver's answer.
type DecideApprovalParams struct {
	ID       string
	Approver Approver
	// Reason is why (required to deny, optional to approve).
	Reason string
	// TTL is how long an approval covers requests: 0 for the configured
	// TTL, at most it.
	TTL time.Duration
}

// Approve approves a pending approval: requests within its scope are
// allowed until it expires. ErrForbidden when the approver may not act on
// it, ErrIllegalTransition when it is not pending (or has expired),
// ErrNotFound when there is none.
func (s *Service) Approve(ctx context.Context, o audit.Origin, p DecideApprovalParams) (store.Approval, error) {
	if p.TTL < 0 || p.TTL > s.approvals.ttl {
		return store.Approval{}, invalid("ttl", "must be positive and at most %s", s.approvals.ttl)
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = s.approvals.ttl
	}
	return s.decideApproval(ctx, o, p, store.ApprovalApproved, ttl)
}

// DenyApproval refuses a pending approval, with a reason.
func (s *Service) DenyApproval(ctx context.Context, o audit.Origin, p DecideApprovalParams) (store.Approval, error) {
	if strings.TrimSpace(p.Reason) == "" {
		return store.Approval{}, invalid("reason", "is required to deny")
	}
	return s.decideApproval(ctx, o, p, store.ApprovalDenied, 0)
}

func (s *Service) decideApproval(ctx context.Context, o audit.Origin, p DecideApprovalParams, to store.ApprovalState, ttl time.Duration) (store.Approval, error) {
	if len(p.Reason) > MaxApprovalReasonLen {
		return store.Approval{}, invalid("reason", "exceeds %d bytes", MaxApprovalReasonLen)
	}
	if p.Approver.Type != audit.ActorAdmin && p.Approver.Type != audit.ActorPerson || p.Approver.ID == "" {
		return store.Approval{}, fmt.Errorf("%w: no approver", ErrForbidden)
	}
	cur, err := s.store.GetApproval(ctx, p.ID)
	if err != nil {
		return store.Approval{}, fmt.Errorf("policy: approval %s: %w", p.ID, notFound(err))
	}
	if err := s.mayApprove(ctx, p.Approver, cur); err != nil {
		return store.Approval{}, err
	}
	now := s.now()
	o.Actor = audit.Actor{Type: p.Approver.Type, ID: p.Approver.ID}
	var out store.Approval
	err = s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		out, err = tx.UpdateApproval(ctx, p.ID, func(a store.Approval) (store.Approval, error) {
			switch {
			case a.State != store.ApprovalPending:
				return a, fmt.Errorf("%w: the approval is %s", ErrIllegalTransition, a.State)
			case !now.Before(a.ExpiresAt):
				return a, fmt.Errorf("%w: the approval expired at %s", ErrIllegalTransition, a.ExpiresAt.Format(time.RFC3339))
			}
			a.State, a.DecidedAt, a.DeciderType, a.Decider, a.DecideReason = to, now, p.Approver.Type, p.Approver.ID, p.Reason
			if to == store.ApprovalApproved {
				a.ExpiresAt = now.Add(ttl)
			}
			return a, nil
		})
		if err != nil {
			return err
		}
		typ := EventApprovalApproved
		if to == store.ApprovalDenied {
			typ = EventApprovalDenied
		}
		ev := approvalEvent(o, typ, out, now)
		ev.Reason = p.Reason
		if p.Approver.Issuer != "" {
			ev.Details["decider_issuer"] = p.Approver.Issuer
		}
		_, err = s.rec.Append(ctx, tx, ev)
		return err
	})
	if err != nil {
		return store.Approval{}, fmt.Errorf("policy: %s approval %s: %w", strings.TrimSuffix(string(to), "d"), p.ID, notFound(err))
	}
	s.notify(out)
	return out, nil
}

// mayApprove checks that the approver may act on a: an admin, an owner of
// the agent (matched by the owner's IdP subject, under its issuer, or by
// a verified email; ADR 0027) or a designated approver. A user subject's
// approval has no owners, and its user may not approve it, designated
// approver or not (ADR 0020).
func (s *Service) mayApprove(ctx context.Context, who Approver, a store.Approval) error {
	if who.Type == audit.ActorAdmin {
		return nil
	}
	if a.User != "" && (who.Subject == a.User || who.ID == a.User || (who.Email != "" && strings.EqualFold(who.Email, a.User))) {
		return fmt.Errorf("%w: the request is the approver's own", ErrForbidden)
	}
	for _, x := range s.approvals.approvers {
		if ApproverMatches(x, who) {
			return nil
		}
	}
	if a.User != "" {
		return fmt.Errorf("%w: not a designated approver", ErrForbidden)
	}
	agent, err := s.store.GetAgent(ctx, a.AgentID)
	if err != nil {
		return fmt.Errorf("policy: look up the approval's agent: %w", err)
	}
	for _, id := range agent.Owners {
		ow, err := s.store.GetOwner(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("policy: look up an owner: %w", err)
		}
		if ow.State != store.OwnerActive {
			continue
		}
		if who.hasSubject(ow.Subject, ow.SubjectIssuer) || (ow.Email != "" && who.hasEmail(ow.Email)) {
			return nil
		}
	}
	return fmt.Errorf("%w: neither an owner of agent %s nor a designated approver", ErrForbidden, a.AgentName)
}

// ExpireApprovals marks the pending and approved approvals past their
// expiry as expired, each with an approval.expired event, and reports how
// many. The holder argument names the replica (for the collector's
// signature); expiring twice is harmless, as a racer finds the approval
// no longer due.
func (s *Service) ExpireApprovals(ctx context.Context, _ string) (int64, error) {
	now := s.now()
	due, _, err := s.store.ListApprovals(ctx, store.ApprovalFilter{DueAt: now}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		return 0, fmt.Errorf("policy: list due approvals: %w", err)
	}
	o := audit.Origin{Actor: audit.Actor{Type: audit.ActorSystem, ID: "approval-expiry"}}
	var n int64
	for _, d := range due {
		var out store.Approval
		err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			var err error
			out, err = tx.UpdateApproval(ctx, d.ID, func(a store.Approval) (store.Approval, error) {
				if (a.State != store.ApprovalPending && a.State != store.ApprovalApproved) || now.Before(a.ExpiresAt) {
					return a, errNotDue
				}
				a.State = store.ApprovalExpired
				return a, nil
			})
			if err != nil {
				return err
			}
			_, err = s.rec.Append(ctx, tx, approvalEvent(o, EventApprovalExpired, out, now))
			return err
		})
		switch {
		case errors.Is(err, errNotDue):
			continue
		case err != nil:
			return n, fmt.Errorf("policy: expire approval %s: %w", d.ID, err)
		}
		n++
		s.notify(out)
	}
	return n, nil
}

var errNotDue = errors.New("policy: approval not due")

// notify hands an approval's new state to the webhook, if any; it never
// blocks.
func (s *Service) notify(a store.Approval) {
	if s.approvals.webhook != nil {
		s.approvals.webhook.Notify(a)
	}
}

// notFound maps the store's not-found to this package's.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
