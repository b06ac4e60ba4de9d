package audit

import (
	"time"
)

// Family is one of the four event families.
type Family string

// Event families.
const (
	Issuance       Family = "issuance"
	Authentication Family = "authentication"
	Authorization  Family = "authorization"
	Admin          Family = "admin"
)

// Outcome says whether the recorded action succeeded.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	Failure Outcome = "failure"
)

// Actor types.
const (
	ActorAdmin  = "admin"
	ActorAgent  = "agent"
	ActorPerson = "person"
	ActorNode   = "node"
	ActorSystem = "system"
)

// Event is one audit event before it is sealed into the chain: the shape of
// ../shared/design.md without seq, prev_hash and hash. Absent axes are nil
// and omitted from the encoding, never faked. Details holds type-specific
// facts and never a secret.
type Event struct {
	ID         string         `json:"id"`
	Time       time.Time      `json:"time"`
	Family     Family         `json:"family"`
	Type       string         `json:"type"`
	Outcome    Outcome        `json:"outcome"`
	Decision   string         `json:"decision,omitempty"`
	Actor      *Actor         `json:"actor,omitempty"`
	Agent      *Agent         `json:"agent,omitempty"`
	Instance   *Instance      `json:"instance,omitempty"`
	Delegation *Delegation    `json:"delegation,omitempty"`
	Task       *Task          `json:"task,omitempty"`
	Source     *Source        `json:"source,omitempty"`
	Details    map[string]any `json:"details,omitempty"`
	Reason     string         `json:"reason,omitempty"`
}

// Actor is who did the thing.
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Agent is the agent axis.
type Agent struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	SPIFFEID string `json:"spiffe_id,omitempty"`
}

// Instance is the instance axis.
type Instance struct {
	ID     string `json:"id"`
	Method string `json:"method,omitempty"`
}

// Delegation is the delegation axis.
type Delegation struct {
	Subject string   `json:"subject,omitempty"`
	Actors  []string `json:"actors,omitempty"`
	GrantID string   `json:"grant_id,omitempty"`
}

// Task is the task axis.
type Task struct {
	Scope         string   `json:"scope,omitempty"`
	ActionClasses []string `json:"action_classes,omitempty"`
	TraceID       string   `json:"trace_id,omitempty"`
	Txn           string   `json:"txn,omitempty"`
	ReasoningRef  string   `json:"reasoning_ref,omitempty"`
}

// Source is where the request came from.
type Source struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Node      string `json:"node,omitempty"`
}

// Origin is the request context every event of one request shares: who
// asked, from where, under which trace. Transports build it; domain services
// stamp it on the events they record.
type Origin struct {
	Actor        Actor
	Source       Source
	TraceID      string
	ReasoningRef string
}

// Event returns an event of the family and type stamped with o: its actor,
// source and trace id (as the task axis). Outcome defaults to Success.
func (o Origin) Event(f Family, typ string) Event {
	ev := Event{Family: f, Type: typ, Outcome: Success}
	if o.Actor != (Actor{}) {
		a := o.Actor
		ev.Actor = &a
	}
	if o.Source != (Source{}) {
		s := o.Source
		ev.Source = &s
	}
	if o.TraceID != "" || o.ReasoningRef != "" {
		ev.Task = &Task{TraceID: o.TraceID, ReasoningRef: o.ReasoningRef}
	}
	return ev
}
