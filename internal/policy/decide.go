package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// Subject types.
const (
	// SubjectAgent is a registered agent: its attributes come from the
	// registry.
	SubjectAgent = "agent"
	// SubjectUser is a person the caller (the PEP) asserts, with the
	// properties it asserts (ADR 0016): the Cedar principal Person::"<id>".
	SubjectUser = "user"
)

// Request is one question: may the subject do the action on the
// resource, in this context? Properties, ActionProperties and Context are
// JSON objects as the caller sent them (nil when absent).
type Request struct {
	Subject  Subject
	Action   string
	Resource Resource
	Context  json.RawMessage
	// ActionProperties are the AuthZEN action's properties: the tags of
	// context.action_properties (integers and booleans also typed).
	ActionProperties json.RawMessage
}

// Subject names the subject. Type SubjectAgent: ID is the agent's id
// (agt_…), name or SPIFFE ID, and Properties are recorded in the context
// digest and not trusted (the agent's attributes come from the registry).
// Type SubjectUser: ID is the person's id as the caller knows it, and the
// scalar Properties, asserted by the caller, are the Person's tags.
type Subject struct {
	Type       string
	ID         string
	Properties json.RawMessage
}

// Resource is what the action is on. Its scalar Properties become the
// Cedar resource's tags (strings as they are, numbers and booleans as
// their JSON text), integers also Long tags of resource.longs and
// booleans Bool tags of resource.bools; nested values are recorded in the
// context digest only.
type Resource struct {
	Type       string
	ID         string
	Properties json.RawMessage
}

// Decision is the answer to a Request.
type Decision struct {
	// Decision is Allow, Deny or Conditional.
	Decision string
	// PolicyIDs are the policies that determined it: the satisfied
	// forbids of a deny, the satisfied permits of an allow or a
	// conditional, none for a default deny.
	PolicyIDs []string
	// ErroredPolicyIDs are the policies whose evaluation failed (Cedar
	// skips them).
	ErroredPolicyIDs []string
	// Obligations are what a conditional decision needs first.
	Obligations []string
	// Reasons are the @reason of the determining policies, or why the
	// request was denied before the policies (an unknown or inactive
	// agent).
	Reasons []string
	// PolicyVersion is the version decided with (0: none active).
	PolicyVersion int64
	ActionClass   string
	RiskTier      string
	// Agent is the subject agent's id; "" when unknown.
	Agent string
	// EventID is the id of the audit event that records the decision.
	EventID string
	// ApprovalID is the approval request of a conditional decision that
	// needs one (pending, new or reused), or the approval that turned the
	// request into an allow; "" otherwise.
	ApprovalID string
	// ApprovalState is the state of that approval: pending or approved.
	ApprovalState string
}

// Allowed reports whether the decision lets the action go ahead now.
func (d Decision) Allowed() bool { return d.Decision == Allow }

// Decide answers one request and records the decision, as caller o,
// before returning it. A malformed request (an unknown subject type or
// action, bad context or properties) is a *ValidationError and records
// nothing. An unknown, suspended, deprovisioned or expired agent is a
// deny; a user is whoever the caller says. If the decision cannot be
// recorded, Decide fails.
func (s *Service) Decide(ctx context.Context, o audit.Origin, req Request) (Decision, error) {
	c, err := s.current(ctx)
	if err != nil {
		return Decision{}, err
	}
	now := s.now()
	// The agent's cached copy is confirmed by the transaction that records
	// the decision; if it moved, the decision is made again on a fresh read.
	for _, deferCheck := range []bool{true, false} {
		memo := &agentMemo{deferCheck: deferCheck}
		d, ev, ap, err := s.evaluateWith(ctx, c, o, req, now, true, memo)
		if err != nil {
			return Decision{}, err
		}
		ds, evs := []*Decision{&d}, []audit.Event{ev}
		err = s.record(ctx, o, ds, evs, []*store.Approval{ap}, memo.checks)
		if errors.Is(err, errAgentMoved) {
			continue
		}
		if err != nil {
			return Decision{}, err
		}
		d.EventID = evs[0].ID
		return d, nil
	}
	return Decision{}, fmt.Errorf("policy: record decision: %w", errAgentMoved)
}

// errAgentMoved aborts the recording of decisions made on a cached agent
// whose stored version is no longer the copy's.
var errAgentMoved = errors.New("policy: the subject agent changed while deciding") //nolint:gochecknoglobals // sentinel

// Semantic is how DecideBatch goes through its requests (AuthZEN
// options.evaluations_semantic).
type Semantic string

// Batch semantics.
const (
	// ExecuteAll answers every request.
	ExecuteAll Semantic = "execute_all"
	// DenyOnFirstDeny stops after the first request not allowed.
	DenyOnFirstDeny Semantic = "deny_on_first_deny"
	// PermitOnFirstPermit stops after the first request allowed.
	PermitOnFirstPermit Semantic = "permit_on_first_permit"
)

// Result is one answer of a batch: a Decision, or Err (a
// *ValidationError) when the request could not be evaluated.
type Result struct {
	Decision Decision
	Err      error
}

// DecideBatch answers requests in order under the semantic and records
// every answer given (requests that could not be evaluated too, as
// failed denies) in one transaction before returning. The results stop
// where the semantic stops. It fails only when the decisions cannot be
// recorded or the policies cannot be loaded.
func (s *Service) DecideBatch(ctx context.Context, o audit.Origin, reqs []Request, sem Semantic) ([]Result, error) {
	switch sem {
	case "", ExecuteAll, DenyOnFirstDeny, PermitOnFirstPermit:
	default:
		return nil, invalid("options.evaluations_semantic", "must be %s, %s or %s", ExecuteAll, DenyOnFirstDeny, PermitOnFirstPermit)
	}
	c, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, deferCheck := range []bool{true, false} {
		out, err := s.decideBatch(ctx, c, o, reqs, sem, now, deferCheck)
		if errors.Is(err, errAgentMoved) {
			continue // decided on a cached agent that changed: again, on fresh reads
		}
		return out, err
	}
	return nil, fmt.Errorf("policy: record decision: %w", errAgentMoved)
}

// decideBatch is one attempt of DecideBatch; with deferCheck, cached
// subject agents are confirmed by the recording transaction, and
// errAgentMoved says one was not.
func (s *Service) decideBatch(ctx context.Context, c *compiled, o audit.Origin, reqs []Request, sem Semantic, now time.Time,
	deferCheck bool) ([]Result, error) {
	out := make([]Result, 0, len(reqs))
	evs := make([]audit.Event, 0, len(reqs))
	aps := make([]*store.Approval, 0, len(reqs))
	// One look-up per subject for the whole batch, decided at one now.
	memo := &agentMemo{byRef: map[string]memoAgent{}, deferCheck: deferCheck,
		grants: map[string]memoRecord[store.Grant]{}, instances: map[string]memoRecord[store.Instance]{}}
	for i, req := range reqs {
		d, ev, ap, err := s.evaluateWith(ctx, c, o, req, now, true, memo)
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			ev = s.failedEvent(c, o, req, now, ve)
			d = Decision{Decision: Deny, PolicyVersion: c.version}
		case err != nil:
			return nil, err
		}
		ev.Details["index"] = i
		evs = append(evs, ev)
		aps = append(aps, ap)
		out = append(out, Result{Decision: d, Err: err})
		if (sem == DenyOnFirstDeny && !d.Allowed()) || (sem == PermitOnFirstPermit && d.Allowed()) {
			break
		}
	}
	ds := make([]*Decision, len(out))
	for i := range out {
		ds[i] = &out[i].Decision
	}
	if err := s.record(ctx, o, ds, evs, aps, memo.checks); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Decision.EventID = evs[i].ID
	}
	return out, nil
}

// record appends the decisions' events in one transaction, ids assigned
// first so that the caller can name them. aps[i], when not nil, is a new
// approval request of decision ds[i], created (or replaced by a covering
// one created meanwhile) in the same transaction before its event. checks
// are the cached agents (id → version) the decisions used without reading
// their version: when one is not at it, nothing is recorded and the error
// is errAgentMoved.
func (s *Service) record(ctx context.Context, o audit.Origin, ds []*Decision, evs []audit.Event, aps []*store.Approval,
	checks map[string]int64) error {
	used := make([]string, len(evs))
	var created []store.Approval
	err := s.store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for id, v := range checks {
			stored, err := tx.GetAgentVersion(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound), err == nil && stored != v:
				return errAgentMoved
			case err != nil:
				return err
			}
		}
		created = created[:0]
		for i := range evs {
			if i < len(aps) && aps[i] != nil {
				ap, isNew, err := s.createApproval(ctx, tx, o, *aps[i])
				if err != nil {
					return err
				}
				if isNew {
					created = append(created, ap)
				}
				used[i] = ap.ID
				evs[i].Details["approval_id"] = ap.ID
			}
			rec, err := s.rec.Append(ctx, tx, evs[i])
			if err != nil {
				return err
			}
			evs[i].ID = rec.ID
		}
		return nil
	})
	if errors.Is(err, errAgentMoved) {
		return errAgentMoved
	}
	if err != nil {
		return fmt.Errorf("policy: record decision: %w", err)
	}
	for i, d := range ds {
		if i < len(used) && used[i] != "" {
			d.ApprovalID = used[i]
		}
	}
	for _, ap := range created {
		s.notify(ap)
	}
	return nil
}

// input is a request checked and resolved against the registry.
type input struct {
	action     actionInfo
	actionName string
	resource   types.EntityUID
	// user is the id of a user subject ("" for an agent), and userProps
	// the properties its caller asserted.
	user        string
	userProps   props
	resProps    props
	actionProps props
	ctx         requestContext
	digest      string
	limits      map[string]string // numeric top-level context values
}

// check validates a request's shape and resolves its action.
func check(c *compiled, req Request) (input, error) {
	var in input
	switch {
	case req.Subject.Type == "":
		return in, invalid("subject.type", "is required")
	case req.Subject.Type != SubjectAgent && req.Subject.Type != SubjectUser:
		return in, invalid("subject.type", "must be %q or %q", SubjectAgent, SubjectUser)
	case req.Subject.ID == "":
		return in, invalid("subject.id", "is required")
	case len(req.Subject.ID) > MaxIDLen:
		return in, invalid("subject.id", "exceeds %d bytes", MaxIDLen)
	case req.Action == "":
		return in, invalid("action.name", "is required")
	case req.Resource.Type == "":
		return in, invalid("resource.type", "is required")
	case req.Resource.ID == "":
		return in, invalid("resource.id", "is required")
	case len(req.Resource.Type) > MaxIDLen || len(req.Resource.ID) > MaxIDLen:
		return in, invalid("resource", "type and id must not exceed %d bytes", MaxIDLen)
	}
	a, ok := c.reg.actions[req.Action]
	if !ok {
		return in, invalid("action.name", "unknown action %q: not an action class or an action of one", truncated(req.Action))
	}
	in.action, in.actionName = a, req.Action
	if n := len(req.Context) + len(req.Resource.Properties) + len(req.Subject.Properties) + len(req.ActionProperties); n > MaxRequestBytes {
		return in, invalid("context", "context and properties exceed %d bytes", MaxRequestBytes)
	}
	props, err := decodeObject("resource.properties", req.Resource.Properties)
	if err != nil {
		return in, err
	}
	subjectProps, err := decodeObject("subject.properties", req.Subject.Properties)
	if err != nil {
		return in, err
	}
	actionProps, err := decodeObject("action.properties", req.ActionProperties)
	if err != nil {
		return in, err
	}
	rctx, err := decodeObject("context", req.Context)
	if err != nil {
		return in, err
	}
	if in.ctx, err = parseContext(rctx); err != nil {
		return in, err
	}
	in.limits = limitsOf(rctx)
	in.resProps, in.actionProps = scalarProps(props), scalarProps(actionProps)
	if req.Subject.Type == SubjectUser {
		// The caller's assertion (ADR 0016); an agent's properties never
		// reach the policies.
		in.user, in.userProps = req.Subject.ID, scalarProps(subjectProps)
	}
	in.resource = types.NewEntityUID(TypeResource, types.String(req.Resource.Type+"/"+req.Resource.ID))
	// Canonical JSON (encoding/json sorts map keys) of what was decided on;
	// the action's properties only when given, so that the digests of
	// requests without them stay what they were before ADR 0016.
	digested := map[string]any{"context": rctx, "resource": props, "subject": subjectProps}
	if actionProps != nil {
		digested["action"] = actionProps
	}
	sum, err := json.Marshal(digested)
	if err != nil {
		return in, fmt.Errorf("policy: digest: %w", err)
	}
	h := sha256.Sum256(sum)
	in.digest = hex.EncodeToString(h[:])
	return in, nil
}

// decodeObject decodes an optional JSON object, bounding its depth.
func decodeObject(field string, raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	if err := checkDepth(raw); err != nil {
		return nil, invalid(field, "%s", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, invalid(field, "must be a JSON object")
	}
	return m, nil
}

// checkDepth refuses JSON nested deeper than MaxDepth (before decoding, so
// that a deep document costs nothing).
func checkDepth(raw []byte) error {
	depth, inString, escaped := 0, false, false
	for _, b := range raw {
		switch {
		case escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
		case inString:
		case b == '{' || b == '[':
			if depth++; depth > MaxDepth {
				return fmt.Errorf("nests deeper than %d levels", MaxDepth)
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return nil
}

// requestContext is what the PDP reads from a request's context.
type requestContext struct {
	time           time.Time // zero: now
	traceID        string
	delegation     *audit.Delegation
	instanceID     string
	instanceMethod string
}

// parseContext reads the keys the schema knows; others only reach the
// digest.
func parseContext(m map[string]any) (requestContext, error) {
	var rc requestContext
	str := func(field string, v any) (string, error) {
		s, ok := v.(string)
		if !ok || s == "" || len(s) > MaxIDLen {
			return "", invalid(field, "must be a non-empty string of at most %d bytes", MaxIDLen)
		}
		return s, nil
	}
	var err error
	if v, ok := m["time"]; ok {
		s, _ := v.(string)
		if rc.time, err = time.Parse(time.RFC3339Nano, s); err != nil {
			// AuthZEN's examples leave the seconds out ("1985-10-26T01:22-07:00").
			if rc.time, err = time.Parse("2006-01-02T15:04Z07:00", s); err != nil {
				return rc, invalid("context.time", "must be an RFC 3339 time")
			}
		}
	}
	if v, ok := m["trace_id"]; ok {
		if rc.traceID, err = str("context.trace_id", v); err != nil {
			return rc, err
		}
	}
	if v, ok := m["delegation"]; ok {
		d, ok := v.(map[string]any)
		if !ok {
			return rc, invalid("context.delegation", "must be an object with subject, actors and grant_id")
		}
		rc.delegation = &audit.Delegation{}
		if rc.delegation.Subject, err = str("context.delegation.subject", d["subject"]); err != nil {
			return rc, err
		}
		if g, ok := d["grant_id"]; ok {
			if rc.delegation.GrantID, err = str("context.delegation.grant_id", g); err != nil {
				return rc, err
			}
		}
		if a, ok := d["actors"]; ok {
			list, ok := a.([]any)
			if !ok || len(list) > 16 {
				return rc, invalid("context.delegation.actors", "must be an array of at most 16 strings")
			}
			for _, x := range list {
				s, err := str("context.delegation.actors", x)
				if err != nil {
					return rc, err
				}
				rc.delegation.Actors = append(rc.delegation.Actors, s)
			}
		}
	}
	if v, ok := m["instance"]; ok {
		in, ok := v.(map[string]any)
		if !ok {
			return rc, invalid("context.instance", "must be an object with an id (and optionally attestation_method)")
		}
		if rc.instanceID, err = str("context.instance.id", in["id"]); err != nil {
			return rc, err
		}
		// The method is the instance record's (checkRecords); a caller's
		// value, optional, must still be a string.
		if v, ok := in["attestation_method"]; ok {
			if rc.instanceMethod, err = str("context.instance.attestation_method", v); err != nil {
				return rc, err
			}
		}
	}
	return rc, nil
}

// evaluate decides one request with c and returns the decision, the
// event that will record it and, withApprovals, the approval request to
// create with it (nil when none).
func (s *Service) evaluate(ctx context.Context, c *compiled, o audit.Origin, req Request, now time.Time,
	withApprovals bool) (Decision, audit.Event, *store.Approval, error) {
	return s.evaluateWith(ctx, c, o, req, now, withApprovals, nil)
}

// evaluateWith is evaluate looking the subject agent up through memo
// (nil: none).
func (s *Service) evaluateWith(ctx context.Context, c *compiled, o audit.Origin, req Request, now time.Time,
	withApprovals bool, memo *agentMemo) (Decision, audit.Event, *store.Approval, error) {
	in, err := check(c, req)
	if err != nil {
		return Decision{}, audit.Event{}, nil, err
	}
	var (
		d     Decision
		a     store.Agent
		found bool
	)
	if in.user == "" {
		if a, found, err = memo.lookup(ctx, s, req.Subject.ID); err != nil {
			return Decision{}, audit.Event{}, nil, err
		}
	}
	// Why the request is denied before the policies, if it is.
	var deny string
	switch {
	case in.user != "":
	case !found:
		deny = "unknown agent"
	case a.State != store.AgentActive:
		deny = "the agent is " + string(a.State)
	case !a.ExpiresAt.IsZero() && !now.Before(a.ExpiresAt):
		deny = "the agent has expired"
	}
	if deny == "" {
		subject := &a
		if in.user != "" {
			subject = nil
		}
		if deny, err = s.checkRecords(ctx, subject, &in, now, memo); err != nil {
			return Decision{}, audit.Event{}, nil, err
		}
	}
	switch {
	case deny != "":
		d = Decision{Decision: Deny, Reasons: []string{deny}}
	case in.user != "":
		d = decideAs(c, personEntity(in.user, in.userProps), in, now)
	default:
		d = decideWith(c, a, in, now)
	}
	d.PolicyVersion, d.ActionClass, d.RiskTier = c.version, in.action.class, in.action.tier
	var ap *store.Approval
	if withApprovals && (found || in.user != "") { // an agent's or a user's (ADR 0020)
		if ap, err = s.applyApprovals(ctx, a, req, in, &d, now); err != nil {
			return Decision{}, audit.Event{}, nil, err
		}
	}
	ev := s.decisionEvent(c, o, req, in, d, now)
	if found {
		d.Agent = a.ID
		ev.Agent = &audit.Agent{ID: a.ID, Name: a.Name, SPIFFEID: a.SPIFFEID}
	}
	return d, ev, ap, nil
}

// decideWith evaluates the policies for an active agent: pure, no I/O.
func decideWith(c *compiled, a store.Agent, in input, now time.Time) Decision {
	return decideAs(c, agentEntity(a), in, now)
}

// decideAs evaluates the policies for a principal (an active agent or a
// user): pure, no I/O.
func decideAs(c *compiled, principal types.Entity, in input, now time.Time) Decision {
	ents := entities{own: types.EntityMap{
		principal.UID: principal,
		in.resource: {UID: in.resource, Attributes: types.NewRecord(types.RecordMap{
			"type":  types.String(strings.SplitN(string(in.resource.ID), "/", 2)[0]),
			"longs": resourceLongs, "bools": resourceBools,
		}), Tags: in.resProps.tags},
	}, actions: c.reg.entities, in: &in}
	t := in.ctx.time
	if t.IsZero() {
		t = now
	}
	rc := types.RecordMap{
		"action_properties": actionBag,
		"action_class":      types.String(in.action.class),
		"risk_tier":         types.String(in.action.tier),
		"time":              types.NewDatetime(t),
	}
	if in.ctx.traceID != "" {
		rc["trace_id"] = types.String(in.ctx.traceID)
	}
	if dl := in.ctx.delegation; dl != nil {
		actors := make([]types.Value, len(dl.Actors))
		for i, x := range dl.Actors {
			actors[i] = types.String(x)
		}
		rec := types.RecordMap{"subject": types.NewEntityUID(TypePerson, types.String(dl.Subject)), "actors": types.NewSet(actors...)}
		if dl.GrantID != "" {
			rec["grant_id"] = types.String(dl.GrantID)
		}
		rc["delegation"] = types.NewRecord(rec)
	}
	if in.ctx.instanceID != "" {
		uid := types.NewEntityUID(TypeInstance, types.String(in.ctx.instanceID))
		ents.own[uid] = types.Entity{UID: uid, Attributes: types.NewRecord(types.RecordMap{
			"attestation_method": types.String(in.ctx.instanceMethod)})}
		rc["instance"] = uid
		rc["attestation_method"] = types.String(in.ctx.instanceMethod)
	}
	dec, diag := cedar.Authorize(c.policies().lookup(in.action.uid, principal.UID), ents, cedar.Request{
		Principal: principal.UID, Action: in.action.uid, Resource: in.resource, Context: types.NewRecord(rc),
	})
	d := Decision{Decision: Deny}
	for _, r := range diag.Reasons {
		d.PolicyIDs = append(d.PolicyIDs, string(r.PolicyID))
	}
	for _, e := range diag.Errors {
		d.ErroredPolicyIDs = append(d.ErroredPolicyIDs, string(e.PolicyID))
	}
	slices.Sort(d.PolicyIDs)
	slices.Sort(d.ErroredPolicyIDs)
	for _, id := range d.PolicyIDs {
		m := c.pol.meta[cedar.PolicyID(id)]
		if m.reason != "" {
			d.Reasons = append(d.Reasons, m.reason)
		}
		if dec == cedar.Allow && m.conditional && !slices.Contains(d.Obligations, m.obligation) {
			d.Obligations = append(d.Obligations, m.obligation)
		}
	}
	switch {
	case dec != cedar.Allow:
	case len(d.Obligations) > 0:
		d.Decision = Conditional
		slices.Sort(d.Obligations)
	default:
		d.Decision = Allow
	}
	return d
}

// decisionEvent is the audit event of a decision.
func (s *Service) decisionEvent(c *compiled, o audit.Origin, req Request, in input, d Decision, now time.Time) audit.Event {
	ev := o.Event(audit.Authorization, EventDecisionMade)
	ev.Time, ev.Decision = now, d.Decision
	if len(d.Reasons) > 0 {
		ev.Reason = d.Reasons[0]
	}
	task := audit.Task{ActionClasses: []string{in.action.class}}
	if ev.Task != nil {
		task.TraceID, task.ReasoningRef = ev.Task.TraceID, ev.Task.ReasoningRef
	}
	if in.ctx.traceID != "" {
		task.TraceID = in.ctx.traceID
	}
	ev.Task = &task
	ev.Delegation = in.ctx.delegation
	if in.ctx.instanceID != "" {
		ev.Instance = &audit.Instance{ID: in.ctx.instanceID, Method: in.ctx.instanceMethod}
	}
	ev.Details = map[string]any{
		"action":             truncated(req.Action),
		"action_class":       in.action.class,
		"risk_tier":          in.action.tier,
		"resource":           map[string]any{"type": truncated(req.Resource.Type), "id": truncated(req.Resource.ID)},
		"subject":            map[string]any{"type": truncated(req.Subject.Type), "id": truncated(req.Subject.ID)},
		"policy_version":     c.version,
		"policy_ids":         nonNil(d.PolicyIDs),
		"errored_policy_ids": nonNil(d.ErroredPolicyIDs),
		"obligations":        nonNil(d.Obligations),
		"context_sha256":     in.digest,
		"input":              replayInput(req, in),
	}
	if d.ApprovalID != "" {
		ev.Details["approval_id"] = d.ApprovalID
	}
	return ev
}

// failedEvent records a batch item that could not be evaluated.
func (s *Service) failedEvent(c *compiled, o audit.Origin, req Request, now time.Time, ve *ValidationError) audit.Event {
	ev := o.Event(audit.Authorization, EventDecisionMade)
	ev.Time, ev.Decision, ev.Outcome, ev.Reason = now, Deny, audit.Failure, ve.Detail()
	ev.Details = map[string]any{
		"action":         truncated(req.Action),
		"resource":       map[string]any{"type": truncated(req.Resource.Type), "id": truncated(req.Resource.ID)},
		"subject":        map[string]any{"type": truncated(req.Subject.Type), "id": truncated(req.Subject.ID)},
		"policy_version": c.version,
	}
	return ev
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
