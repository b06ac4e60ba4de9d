package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/store"
)

// Replay bounds (ADR 0013 addendum: the dry run).
const (
	// DefaultReplay is how many recorded decisions a dry run replays when
	// the caller does not say.
	DefaultReplay = 1000
	// MaxReplay bounds the decisions one dry run replays.
	MaxReplay = 10000
	// maxReplayScan bounds the audit events a dry run reads looking for
	// decisions, so that a long trail with few decisions costs a bounded
	// amount.
	maxReplayScan = 1_000_000
)

// ReplayParams asks for a dry run of a policy document.
type ReplayParams struct {
	// Text is the candidate policy document.
	Text string
	// Last is how many of the most recent recorded decisions to replay;
	// zero means DefaultReplay. At most MaxReplay.
	Last int
}

// Replay is the report of a dry run: the most recent recorded decisions
// evaluated again, with the active policies and with the candidate, at
// the time they were made, against the agents as they are now.
type Replay struct {
	// ActiveVersion is the version the candidate is compared with.
	ActiveVersion int64
	// Examined counts the recorded decisions read (at most Last).
	Examined int
	// Replayed counts those evaluated with both policy sets.
	Replayed int
	// Skipped counts those that could not be replayed: recorded before
	// decisions kept their inputs, for an unknown agent, or for an
	// action that is no longer in the registry.
	Skipped int
	// Changed lists, oldest first, the decisions the candidate would
	// answer differently (decision or obligations) from the active
	// policies.
	Changed []ReplayChange
}

// ReplayChange is one recorded decision that the candidate would change.
type ReplayChange struct {
	EventID string
	Seq     int64
	Time    time.Time
	Agent   string // the agent's name; "" for a user
	// User is the id of a user subject (ADR 0016); "" for an agent.
	User         string
	Action       string
	ResourceType string
	ResourceID   string
	// Recorded is the decision given then (an approval may have turned a
	// conditional decision into an allow).
	Recorded string
	// Current and Candidate are the decisions of the active policies and
	// of the candidate (policies only: approvals are not consulted).
	Current, Candidate Decision
}

// replayInput is what a decision.made event keeps so that a dry run can
// evaluate the request again (details "input"): the exact action and
// resource, the scalar properties of the resource and the action as the
// policies saw them, a user subject with the properties its caller
// asserted, and the context values the policies see that the event's axes
// do not hold. The rest of the context only reaches the context digest.
func replayInput(req Request, in input) map[string]any {
	res := map[string]any{"type": req.Resource.Type, "id": req.Resource.ID}
	in.resProps.record(res)
	m := map[string]any{"action": req.Action, "resource": res}
	if in.actionProps.tags.Len() > 0 {
		ap := map[string]any{}
		in.actionProps.record(ap)
		m["action_properties"] = ap
	}
	if in.user != "" {
		u := map[string]any{"type": SubjectUser, "id": in.user, "asserted_by": "pep"}
		in.userProps.record(u)
		m["subject"] = u
	}
	if !in.ctx.time.IsZero() {
		m["time"] = in.ctx.time.UTC().Format(time.RFC3339Nano)
	}
	if in.ctx.traceID != "" {
		m["trace_id"] = in.ctx.traceID
	}
	return m
}

// record adds the properties to an audit map: "properties" (the string
// tags), "longs" and "bools", each when not empty.
func (p props) record(m map[string]any) {
	if p.tags.Len() == 0 {
		return
	}
	strs := make(map[string]string, p.tags.Len())
	for k, v := range p.tags.All() {
		if sv, ok := v.(types.String); ok {
			strs[string(k)] = string(sv)
		}
	}
	m["properties"] = strs
	if p.longs.Len() > 0 {
		longs := make(map[string]int64, p.longs.Len())
		for k, v := range p.longs.All() {
			if n, ok := v.(types.Long); ok {
				longs[string(k)] = int64(n)
			}
		}
		m["longs"] = longs
	}
	if p.bools.Len() > 0 {
		bools := make(map[string]bool, p.bools.Len())
		for k, v := range p.bools.All() {
			if b, ok := v.(types.Boolean); ok {
				bools[string(k)] = bool(b)
			}
		}
		m["bools"] = bools
	}
}

// recordedProps are properties as an event recorded them.
type recordedProps struct {
	Properties map[string]string `json:"properties"`
	Longs      map[string]int64  `json:"longs"`
	Bools      map[string]bool   `json:"bools"`
}

// raw rebuilds the JSON properties that give the policies what they saw:
// the strings, with the integers and booleans in their JSON types.
func (p recordedProps) raw() json.RawMessage {
	if len(p.Properties) == 0 {
		return nil
	}
	m := make(map[string]any, len(p.Properties))
	for k, v := range p.Properties {
		m[k] = v
	}
	for k, v := range p.Longs {
		m[k] = v
	}
	for k, v := range p.Bools {
		m[k] = v
	}
	b, _ := json.Marshal(m) //nolint:errchkjson // strings, integers and booleans only
	return b
}

// recordedDecision is the part of a decision.made event a replay reads.
type recordedDecision struct {
	ID         string            `json:"id"`
	Time       string            `json:"time"`
	Outcome    string            `json:"outcome"`
	Decision   string            `json:"decision"`
	Agent      *audit.Agent      `json:"agent"`
	Instance   *audit.Instance   `json:"instance"`
	Delegation *audit.Delegation `json:"delegation"`
	Details    struct {
		Input *struct {
			Action   string `json:"action"`
			Resource struct {
				Type string `json:"type"`
				ID   string `json:"id"`
				recordedProps
			} `json:"resource"`
			Subject *struct {
				Type string `json:"type"`
				ID   string `json:"id"`
				recordedProps
			} `json:"subject"`
			ActionProperties *recordedProps `json:"action_properties"`
			Time             string         `json:"time"`
			TraceID          string         `json:"trace_id"`
		} `json:"input"`
	} `json:"details"`
	seq int64
}

// request rebuilds the request the event recorded; ok is false when the
// event cannot be replayed.
func (r recordedDecision) request() (Request, time.Time, bool) {
	in := r.Details.Input
	t, err := audit.ParseTime(r.Time)
	if in == nil || err != nil {
		return Request{}, time.Time{}, false
	}
	req := Request{Action: in.Action, Resource: Resource{Type: in.Resource.Type, ID: in.Resource.ID,
		Properties: in.Resource.raw()}}
	switch {
	case in.Subject != nil && in.Subject.Type == SubjectUser && in.Subject.ID != "":
		req.Subject = Subject{Type: SubjectUser, ID: in.Subject.ID, Properties: in.Subject.raw()}
	case r.Agent != nil && r.Agent.ID != "":
		req.Subject = Subject{Type: SubjectAgent, ID: r.Agent.ID}
	default:
		return Request{}, time.Time{}, false
	}
	if in.ActionProperties != nil {
		req.ActionProperties = in.ActionProperties.raw()
	}
	rc := map[string]any{}
	if in.Time != "" {
		rc["time"] = in.Time
	}
	if in.TraceID != "" {
		rc["trace_id"] = in.TraceID
	}
	if d := r.Delegation; d != nil && d.Subject != "" {
		dm := map[string]any{"subject": d.Subject}
		if d.GrantID != "" {
			dm["grant_id"] = d.GrantID
		}
		if len(d.Actors) > 0 {
			dm["actors"] = d.Actors
		}
		rc["delegation"] = dm
	}
	if i := r.Instance; i != nil && i.ID != "" {
		rc["instance"] = map[string]any{"id": i.ID, "attestation_method": i.Method}
	}
	if len(rc) > 0 {
		req.Context, _ = json.Marshal(rc)
	}
	return req, t, true
}

// errEnough stops an audit scan.
var errEnough = errors.New("policy: enough events")

// recentDecisions returns up to n of the most recent decision.made events
// that were evaluated (outcome success), oldest first. It reads the trail
// backwards in growing windows of sequence numbers.
func (s *Service) recentDecisions(ctx context.Context, n int) ([]recordedDecision, error) {
	head, _, err := s.store.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: read the audit head: %w", err)
	}
	var out []recordedDecision
	upper, window, scanned := head, int64(max(4*n, 256)), int64(0)
	for upper > 0 && len(out) < n && scanned < maxReplayScan {
		after := max(upper-window, 0)
		var batch []recordedDecision
		err := s.store.ScanAudit(ctx, store.AuditQuery{AfterSeq: after, Family: string(audit.Authorization)},
			func(rec store.AuditRecord) error {
				if rec.Seq > upper {
					return errEnough
				}
				if rec.Type != EventDecisionMade || rec.Outcome != string(audit.Success) {
					return nil
				}
				var d recordedDecision
				if err := json.Unmarshal(rec.Body, &d); err != nil {
					return fmt.Errorf("policy: decode event %d: %w", rec.Seq, err)
				}
				d.seq = rec.Seq
				batch = append(batch, d)
				return nil
			})
		if err != nil && !errors.Is(err, errEnough) {
			return nil, fmt.Errorf("policy: read recorded decisions: %w", err)
		}
		out = append(batch, out...)
		scanned += upper - after
		upper, window = after, window*2
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// DryRun checks a candidate policy document against the current action
// classes (a *PolicyError when it does not validate) and replays the most
// recent recorded decisions with the active policies and with the
// candidate, reporting those the candidate would change. Nothing is
// stored or recorded. Each decision is evaluated at the time it was made
// (time-based policies see that time), against the agents as they are in
// the registry now, without approvals; comparing the candidate with the
// active policies on the same inputs isolates the policy change from
// changes of the registry since.
func (s *Service) DryRun(ctx context.Context, p ReplayParams) (Replay, error) {
	switch {
	case p.Last < 0 || p.Last > MaxReplay:
		return Replay{}, invalid("last", "must be between 1 and %d", MaxReplay)
	case p.Last == 0:
		p.Last = DefaultReplay
	}
	cur, err := s.refresh(ctx, true)
	if err != nil {
		return Replay{}, err
	}
	pol, err := parse([]byte(p.Text), cur.reg)
	if err != nil {
		return Replay{}, err
	}
	cand := &compiled{generation: cur.generation, version: -1, reg: cur.reg, pol: pol}
	recs, err := s.recentDecisions(ctx, p.Last)
	if err != nil {
		return Replay{}, err
	}
	out := Replay{ActiveVersion: cur.version, Examined: len(recs), Changed: []ReplayChange{}}
	for _, r := range recs {
		req, t, ok := r.request()
		if !ok {
			out.Skipped++
			continue
		}
		a, _, _, err := s.evaluate(ctx, cur, audit.Origin{}, req, t, false)
		if err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				out.Skipped++
				continue
			}
			return Replay{}, err
		}
		b, _, _, err := s.evaluate(ctx, cand, audit.Origin{}, req, t, false)
		if err != nil {
			return Replay{}, err
		}
		out.Replayed++
		if a.Decision == b.Decision && slices.Equal(a.Obligations, b.Obligations) {
			continue
		}
		b.PolicyVersion = 0
		ch := ReplayChange{EventID: r.ID, Seq: r.seq, Time: t,
			Action: req.Action, ResourceType: req.Resource.Type, ResourceID: req.Resource.ID,
			Recorded: r.Decision, Current: a, Candidate: b}
		if req.Subject.Type == SubjectUser {
			ch.User = req.Subject.ID
		} else if r.Agent != nil {
			ch.Agent = r.Agent.Name
		}
		out.Changed = append(out.Changed, ch)
	}
	return out, nil
}
