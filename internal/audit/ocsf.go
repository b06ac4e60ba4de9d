package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// OCSFVersion is the version of the Open Cybersecurity Schema Framework the
// OCSF export conforms to (docs/adr/0021-ocsf-export.md).
const OCSFVersion = "1.7.0"

// OCSF categories and classes the export uses.
const (
	ocsfCategoryNone = 0 // Uncategorized, for Base Event
	ocsfCategoryIAM  = 3 // Identity & Access Management
	ocsfCategoryApp  = 6 // Application Activity

	ocsfClassBase           = 0    // Base Event
	ocsfClassAccountChange  = 3001 // Account Change
	ocsfClassAuthentication = 3002 // Authentication
	ocsfClassEntity         = 3004 // Entity Management
	ocsfClassAPI            = 6003 // API Activity

	ocsfActivityOther = 99
)

// ocsfClass is the OCSF class and activity of one agentid event type.
type ocsfClass struct {
	class    int
	activity int
	name     string // activity_name
}

// ocsfClassOf maps an event type to its OCSF class and activity. ok is
// false for a type the table does not know: it is exported as a Base Event.
// The table is docs/adr/0021-ocsf-export.md; change both together.
func ocsfClassOf(typ string) (c ocsfClass, ok bool) {
	switch typ {
	// Authentication [3002]: 1 Logon, 2 Logoff, 3 Authentication Ticket.
	case "client.authenticated", "admin.authenticated", "person.authenticated",
		"token.authenticated", "node.authenticated", "node.attested", "instance.attested", "auth.rate_limited":
		return ocsfClass{ocsfClassAuthentication, 1, "Logon"}, true
	case "credential.issued":
		return ocsfClass{ocsfClassAuthentication, 3, "Authentication Ticket"}, true
	case "credential.revoked", "instance.revoked":
		return ocsfClass{ocsfClassAuthentication, 2, "Logoff"}, true

	// Account Change [3001]: agents and owners are the accounts.
	case "agent.created", "owner.created":
		return ocsfClass{ocsfClassAccountChange, 1, "Create"}, true
	case "agent.resumed", "owner.reactivated":
		return ocsfClass{ocsfClassAccountChange, 2, "Enable"}, true
	case "agent.suspended", "owner.deactivated":
		return ocsfClass{ocsfClassAccountChange, 5, "Disable"}, true
	case "agent.deprovisioned":
		return ocsfClass{ocsfClassAccountChange, 6, "Delete"}, true
	case "grant.created":
		return ocsfClass{ocsfClassAccountChange, 7, "Attach Policy"}, true
	case "grant.revoked":
		return ocsfClass{ocsfClassAccountChange, 8, "Detach Policy"}, true
	case "agent.updated", "owner.updated":
		return ocsfClass{ocsfClassAccountChange, ocsfActivityOther, "Update"}, true
	case "agent.orphaned":
		return ocsfClass{ocsfClassAccountChange, ocsfActivityOther, "Orphan"}, true

	// Entity Management [3004]: everything else an administrator manages.
	case "client_key.added", "client_secret.created", "admin_token.created", "key.created",
		"join_token.created", "agent.join_token.created", "action_class.created", "approval.requested",
		"ssf.stream.created":
		return ocsfClass{ocsfClassEntity, 1, "Create"}, true
	case "key.rotated", "federation.bundle_updated", "federation.bundle_refresh_failed",
		"policy.applied", "policy.rolled_back", "action_class.updated",
		"approval.approved", "approval.denied", "approval.expired",
		"ssf.stream.updated", "ssf.stream.status_changed", "ssf.stream.verification_requested":
		return ocsfClass{ocsfClassEntity, 3, "Update"}, true
	case "client_key.removed", "client_secret.removed", PrunedType, "ssf.stream.deleted":
		return ocsfClass{ocsfClassEntity, 4, "Delete"}, true
	case "node.evicted":
		return ocsfClass{ocsfClassEntity, 7, "Unenroll"}, true
	case "admin_token.revoked", "key.tainted", "join_token.revoked", "agent.join_token.revoked":
		return ocsfClass{ocsfClassEntity, 9, "Disable"}, true

	// API Activity [6003]: questions put to the decision point.
	case "decision.made", "admin.authorized":
		return ocsfClass{ocsfClassAPI, ocsfActivityOther, "Authorize"}, true
	case "decision.searched":
		return ocsfClass{ocsfClassAPI, 2, "Read"}, true
	}
	return ocsfClass{ocsfClassBase, ocsfActivityOther, "Other"}, false
}

// ocsfClassName returns the class caption and category of class.
func ocsfClassName(class int) (name string, category int, categoryName string) {
	switch class {
	case ocsfClassAccountChange:
		return "Account Change", ocsfCategoryIAM, "Identity & Access Management"
	case ocsfClassAuthentication:
		return "Authentication", ocsfCategoryIAM, "Identity & Access Management"
	case ocsfClassEntity:
		return "Entity Management", ocsfCategoryIAM, "Identity & Access Management"
	case ocsfClassAPI:
		return "API Activity", ocsfCategoryApp, "Application Activity"
	}
	return "Base Event", ocsfCategoryNone, "Uncategorized"
}

// The OCSF objects the export writes, members in output order. Only the
// attributes filled are written.
type (
	ocsfRecord struct {
		ActivityID     int              `json:"activity_id"`
		ActivityName   string           `json:"activity_name"`
		CategoryUID    int              `json:"category_uid"`
		CategoryName   string           `json:"category_name"`
		ClassUID       int              `json:"class_uid"`
		ClassName      string           `json:"class_name"`
		TypeUID        int              `json:"type_uid"`
		TypeName       string           `json:"type_name"`
		Time           int64            `json:"time"`
		SeverityID     int              `json:"severity_id"`
		Severity       string           `json:"severity"`
		StatusID       int              `json:"status_id"`
		Status         string           `json:"status"`
		StatusDetail   string           `json:"status_detail,omitempty"`
		Message        string           `json:"message,omitempty"`
		ActionID       *int             `json:"action_id,omitempty"`
		Action         string           `json:"action,omitempty"`
		Metadata       ocsfMetadata     `json:"metadata"`
		Actor          *ocsfActor       `json:"actor,omitempty"`
		User           *ocsfUser        `json:"user,omitempty"`
		Entity         *ocsfEntity      `json:"entity,omitempty"`
		Policy         *ocsfPolicy      `json:"policy,omitempty"`
		API            *ocsfAPI         `json:"api,omitempty"`
		Resources      []ocsfResource   `json:"resources,omitempty"`
		Service        *ocsfService     `json:"service,omitempty"`
		AuthProtocolID *int             `json:"auth_protocol_id,omitempty"`
		AuthProtocol   string           `json:"auth_protocol,omitempty"`
		Comment        string           `json:"comment,omitempty"`
		SrcEndpoint    *ocsfEndpoint    `json:"src_endpoint,omitempty"`
		HTTPRequest    *ocsfHTTPRequest `json:"http_request,omitempty"`
		RawData        string           `json:"raw_data,omitempty"`
		Unmapped       json.RawMessage  `json:"unmapped"`
	}
	ocsfMetadata struct {
		Version          string      `json:"version"`
		Product          ocsfProduct `json:"product"`
		UID              string      `json:"uid,omitempty"`
		OriginalEventUID string      `json:"original_event_uid,omitempty"`
		Sequence         int64       `json:"sequence"`
		CorrelationUID   string      `json:"correlation_uid,omitempty"`
		EventCode        string      `json:"event_code,omitempty"`
		LogName          string      `json:"log_name"`
		Profiles         []string    `json:"profiles,omitempty"`
	}
	ocsfProduct struct {
		Name       string `json:"name"`
		VendorName string `json:"vendor_name"`
		Version    string `json:"version,omitempty"`
	}
	ocsfActor struct {
		User           *ocsfUser           `json:"user,omitempty"`
		Authorizations []ocsfAuthorization `json:"authorizations,omitempty"`
	}
	ocsfUser struct {
		UID    string `json:"uid,omitempty"`
		Name   string `json:"name,omitempty"`
		UIDAlt string `json:"uid_alt,omitempty"`
		TypeID int    `json:"type_id"`
		Type   string `json:"type"`
	}
	ocsfAuthorization struct {
		Decision string      `json:"decision"`
		Policy   *ocsfPolicy `json:"policy,omitempty"`
	}
	ocsfPolicy struct {
		UID     string `json:"uid,omitempty"`
		Name    string `json:"name,omitempty"`
		Version string `json:"version,omitempty"`
	}
	ocsfEntity struct {
		UID     string `json:"uid,omitempty"`
		Name    string `json:"name,omitempty"`
		Type    string `json:"type"`
		Version string `json:"version,omitempty"`
	}
	ocsfAPI struct {
		Operation string      `json:"operation"`
		Service   ocsfService `json:"service"`
	}
	ocsfResource struct {
		UID  string `json:"uid,omitempty"`
		Type string `json:"type,omitempty"`
	}
	ocsfService struct {
		Name string `json:"name"`
	}
	ocsfEndpoint struct {
		IP string `json:"ip,omitempty"`
	}
	ocsfHTTPRequest struct {
		UserAgent string `json:"user_agent"`
	}
)

// ocsfEvent is what the export reads from a stored body. Every member is
// read on its own and one of the wrong type is ignored (it still travels in
// unmapped), so any body a store holds maps to something.
type ocsfEvent struct {
	id, time, typ, outcome, decision, reason string
	actorType, actorID                       string
	agentID, agentName, agentSPIFFE          string
	grantID, traceID                         string
	hasActor, hasAgent                       bool
	sourceIP, userAgent                      string
	details                                  map[string]json.RawMessage
}

// AppendOCSFLine appends the OCSF record of rec (OCSFVersion, one JSON
// object) and a newline to dst. productVersion is agentid's version, for
// metadata.product.version. The record is derived from the stored body
// alone: the class and activity come from the event type (an unknown type
// is a Base Event), the four axes, the source and the outcome go to their
// OCSF attributes where OCSF has one, and unmapped holds the whole export
// line of rec — seq, every member of the body, prev_hash and hash — so an
// OCSF record can be verified against the chain (ParseExportLine accepts
// it). A body that is not a canonical JSON object is kept as raw_data. It
// never fails and never panics, whatever rec holds.
func AppendOCSFLine(dst []byte, rec store.AuditRecord, productVersion string) []byte {
	body, ev, ok := readOCSFEvent(rec.Body)
	out := buildOCSF(rec, ev, productVersion)
	if ok {
		out.Unmapped = AppendExportLine(make([]byte, 0, len(body)+192), store.AuditRecord{
			Seq: rec.Seq, Body: body, PrevHash: rec.PrevHash, Hash: rec.Hash,
		})
	} else {
		out.Unmapped = AppendExportLine(nil, store.AuditRecord{Seq: rec.Seq, PrevHash: rec.PrevHash, Hash: rec.Hash})
		if len(rec.Body) > 0 {
			out.RawData = strings.ToValidUTF8(string(rec.Body), "\uFFFD")
		}
	}
	out.Unmapped = bytes.TrimRight(out.Unmapped, "\n")
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		// Unreachable: every value is a string, an integer or a JSON
		// object built above. Still, never fail: the bare record.
		buf.Truncate(len(dst))
		out = buildOCSF(rec, ocsfEvent{}, productVersion)
		out.Unmapped = bytes.TrimRight(AppendExportLine(nil, store.AuditRecord{Seq: rec.Seq, PrevHash: rec.PrevHash, Hash: rec.Hash}), "\n")
		_ = enc.Encode(out)
	}
	return buf.Bytes()
}

// WriteOCSFLine writes the OCSF record of rec (see AppendOCSFLine) in one
// Write call.
func WriteOCSFLine(w io.Writer, rec store.AuditRecord, productVersion string) error {
	if _, err := w.Write(AppendOCSFLine(make([]byte, 0, 2*len(rec.Body)+1024), rec, productVersion)); err != nil {
		return fmt.Errorf("audit: write OCSF line: %w", err)
	}
	return nil
}

// readOCSFEvent canonicalises body and reads the members the mapping uses.
// ok is false when body is not a JSON object that can travel in unmapped:
// not canonicalisable, or holding a member named like a chain member.
func readOCSFEvent(body []byte) (canon []byte, ev ocsfEvent, ok bool) {
	canon, err := CanonicalJSON(body)
	if err != nil || len(canon) < 2 || canon[0] != '{' {
		return nil, ev, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(canon, &m) != nil {
		return nil, ev, false
	}
	for _, k := range []string{"seq", "prev_hash", "hash"} {
		if _, dup := m[k]; dup {
			return nil, ev, false
		}
	}
	ev.id, ev.time = str(m, "id"), str(m, "time")
	ev.typ, ev.outcome, ev.decision, ev.reason = str(m, "type"), str(m, "outcome"), str(m, "decision"), str(m, "reason")
	if a := obj(m, "actor"); a != nil {
		ev.hasActor, ev.actorType, ev.actorID = true, str(a, "type"), str(a, "id")
	}
	if a := obj(m, "agent"); a != nil {
		ev.hasAgent, ev.agentID, ev.agentName, ev.agentSPIFFE = true, str(a, "id"), str(a, "name"), str(a, "spiffe_id")
	}
	if d := obj(m, "delegation"); d != nil {
		ev.grantID = str(d, "grant_id")
	}
	if t := obj(m, "task"); t != nil {
		ev.traceID = str(t, "trace_id")
	}
	if s := obj(m, "source"); s != nil {
		ev.sourceIP, ev.userAgent = str(s, "ip"), str(s, "user_agent")
	}
	ev.details = obj(m, "details")
	return canon, ev, true
}

// str returns member k of m when it is a string, else "".
func str(m map[string]json.RawMessage, k string) string {
	var s string
	if raw, ok := m[k]; !ok || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// obj returns member k of m when it is an object, else nil.
func obj(m map[string]json.RawMessage, k string) map[string]json.RawMessage {
	var o map[string]json.RawMessage
	if raw, ok := m[k]; !ok || json.Unmarshal(raw, &o) != nil {
		return nil
	}
	return o
}

// strs returns member k of m when it is an array of strings, else nil.
func strs(m map[string]json.RawMessage, k string) []string {
	var s []string
	if raw, ok := m[k]; !ok || json.Unmarshal(raw, &s) != nil {
		return nil
	}
	return s
}

// scalar returns member k of m, a string or a number, as a string.
func scalar(m map[string]json.RawMessage, k string) string {
	if s := str(m, k); s != "" {
		return s
	}
	var n json.Number
	if raw, ok := m[k]; !ok || json.Unmarshal(raw, &n) != nil {
		return ""
	}
	return n.String()
}

// buildOCSF maps ev, read from rec's body, to its OCSF record without
// unmapped.
func buildOCSF(rec store.AuditRecord, ev ocsfEvent, productVersion string) ocsfRecord {
	typ := ev.typ
	if typ == "" {
		typ = rec.Type
	}
	c, known := ocsfClassOf(typ)
	className, category, categoryName := ocsfClassName(c.class)
	out := ocsfRecord{
		ActivityID: c.activity, ActivityName: c.name,
		CategoryUID: category, CategoryName: categoryName,
		ClassUID: c.class, ClassName: className,
		TypeUID: c.class*100 + c.activity, TypeName: className + ": " + c.name,
		Time: ocsfTime(ev.time, rec.Time),
		Metadata: ocsfMetadata{
			Version:        OCSFVersion,
			Product:        ocsfProduct{Name: "agentid", VendorName: "agentid", Version: productVersion},
			UID:            firstNonEmpty(ev.id, rec.ID),
			Sequence:       rec.Seq,
			CorrelationUID: firstNonEmpty(ev.traceID, rec.TraceID),
			EventCode:      typ,
			LogName:        "audit",
		},
	}
	out.Metadata.OriginalEventUID = out.Metadata.UID
	outcome := firstNonEmpty(ev.outcome, rec.Outcome)
	switch Outcome(outcome) {
	case Success:
		out.StatusID, out.Status = 1, "Success"
		out.SeverityID, out.Severity = 1, "Informational"
	case Failure:
		out.StatusID, out.Status = 2, "Failure"
		out.SeverityID, out.Severity = 2, "Low"
		out.StatusDetail = ev.reason
	default:
		out.StatusID, out.Status = 0, "Unknown"
		out.SeverityID, out.Severity = 0, "Unknown"
	}
	if typ == "key.tainted" {
		out.SeverityID, out.Severity = 4, "High" // a signing or CA key is compromised
	}
	out.Message = ocsfMessage(typ, outcome, ev.reason)
	if !known {
		// Base Event has none of the attributes below: everything is in
		// unmapped.
		return out
	}
	if ev.hasActor {
		out.Actor = &ocsfActor{User: ocsfUserOf(ev.actorType, ev.actorID, "", "")}
	}
	if ev.sourceIP != "" {
		out.SrcEndpoint = &ocsfEndpoint{IP: ev.sourceIP}
	}
	if ev.userAgent != "" {
		out.HTTPRequest = &ocsfHTTPRequest{UserAgent: ev.userAgent}
	}
	switch c.class {
	case ocsfClassAuthentication:
		out.User = ocsfSubject(ev)
		out.Service = &ocsfService{Name: "agentid"}
		id, name := ocsfAuthProtocol(typ, ev)
		out.AuthProtocolID, out.AuthProtocol = &id, name
	case ocsfClassAccountChange:
		out.User = ocsfSubject(ev)
		if c.activity == 7 || c.activity == 8 { // Attach / Detach Policy: the grant
			out.Policy = &ocsfPolicy{UID: firstNonEmpty(ev.grantID, str(ev.details, "id")), Name: "delegation grant"}
		}
	case ocsfClassEntity:
		out.Entity = ocsfEntityOf(typ, ev)
		out.Comment = ocsfComment(outcome, ev.reason)
	case ocsfClassAPI:
		op := str(ev.details, "action")
		if op == "" {
			op = typ
		}
		out.API = &ocsfAPI{Operation: op, Service: ocsfService{Name: "agentid"}}
		if r := obj(ev.details, "resource"); r != nil {
			if res := (ocsfResource{UID: str(r, "id"), Type: str(r, "type")}); res != (ocsfResource{}) {
				out.Resources = []ocsfResource{res}
			}
		}
	}
	if ev.decision != "" {
		ocsfDecision(&out, ev)
	}
	return out
}

// ocsfDecision records a decision: actor.authorizations (one per policy
// that determined it) and the Security Control profile's action.
func ocsfDecision(out *ocsfRecord, ev ocsfEvent) {
	if out.Actor == nil {
		out.Actor = &ocsfActor{}
	}
	version := scalar(ev.details, "policy_version")
	ids := strs(ev.details, "policy_ids")
	if len(ids) == 0 {
		a := ocsfAuthorization{Decision: ev.decision}
		if version != "" {
			a.Policy = &ocsfPolicy{Version: version}
		}
		out.Actor.Authorizations = []ocsfAuthorization{a}
	}
	for _, id := range ids {
		out.Actor.Authorizations = append(out.Actor.Authorizations,
			ocsfAuthorization{Decision: ev.decision, Policy: &ocsfPolicy{UID: id, Version: version}})
	}
	action, name := ocsfActivityOther, "Other"
	switch ev.decision {
	case DecisionAllow:
		action, name = 1, "Allowed"
	case DecisionDeny:
		action, name = 2, "Denied"
	}
	out.ActionID, out.Action = &action, name
	out.Metadata.Profiles = []string{"security_control"}
}

// ocsfUserOf is an OCSF user object for an agentid principal.
func ocsfUserOf(typ, id, name, spiffeID string) *ocsfUser {
	u := &ocsfUser{UID: id, Name: name, UIDAlt: spiffeID}
	switch typ {
	case ActorPerson:
		u.TypeID, u.Type = 1, "User"
	case ActorAdmin:
		u.TypeID, u.Type = 2, "Admin"
	case ActorNode, ActorSystem:
		u.TypeID, u.Type = 3, "System"
	case ActorAgent:
		u.TypeID, u.Type = 4, "Service"
	case "":
		u.TypeID, u.Type = 0, "Unknown"
	default:
		u.TypeID, u.Type = 99, typ
	}
	return u
}

// ocsfSubject is the user an Authentication or Account Change is about:
// the agent axis, else the owner or the actor the event names, else the
// identity a failed attempt claimed (unknown type).
func ocsfSubject(ev ocsfEvent) *ocsfUser {
	switch {
	case ev.hasAgent:
		return ocsfUserOf(ActorAgent, ev.agentID, ev.agentName, ev.agentSPIFFE)
	case strings.HasPrefix(ev.typ, "owner."):
		u := ocsfUserOf(ActorPerson, str(ev.details, "id"), str(ev.details, "display_name"), "")
		if str(ev.details, "kind") != "person" {
			u.TypeID, u.Type = 99, firstNonEmpty(str(ev.details, "kind"), "Other")
		}
		return u
	case ev.hasActor:
		return ocsfUserOf(ev.actorType, ev.actorID, "", "")
	}
	claimed := firstNonEmpty(str(ev.details, "client_id"), str(ev.details, "node_id"), str(ev.details, "token_name"))
	return &ocsfUser{Name: claimed, Type: "Unknown"}
}

// ocsfEntityOf is the managed entity of an Entity Management record: its
// type is the event type's prefix, its uid the details' id (or the agent's
// for an agent's client credentials).
func ocsfEntityOf(typ string, ev ocsfEvent) *ocsfEntity {
	kind, _, _ := strings.Cut(typ, ".")
	uid := str(ev.details, "id")
	switch {
	case strings.HasPrefix(typ, "agent.join_token."):
		kind = "agent_join_token"
	case strings.HasPrefix(typ, "ssf.stream."):
		kind, uid = "ssf_stream", str(ev.details, "stream_id")
	}
	e := &ocsfEntity{Type: kind, UID: uid, Name: str(ev.details, "name"), Version: scalar(ev.details, "version")}
	switch kind {
	case "client_key", "key":
		e.UID = firstNonEmpty(str(ev.details, "kid"), e.UID)
		e.Name = firstNonEmpty(e.Name, str(ev.details, "purpose"))
	case "approval":
		e.UID = firstNonEmpty(str(ev.details, "approval_id"), e.UID)
	case "node":
		e.UID = firstNonEmpty(str(ev.details, "node_id"), e.UID)
	case "federation":
		e.Type = "trust_bundle"
		e.Name = firstNonEmpty(str(ev.details, "trust_domain"), e.Name)
	case "policy":
		e.Type = "policy_set"
	case "audit":
		e.Type, e.UID = "audit_events", scalar(ev.details, "through_seq")
	}
	return e
}

// ocsfAuthProtocol is the auth_protocol_id and auth_protocol of an
// Authentication record.
func ocsfAuthProtocol(typ string, ev ocsfEvent) (int, string) {
	const oauth, other = 6, 99
	switch typ {
	case "client.authenticated", "token.authenticated", "instance.attested":
		return oauth, "OAUTH 2.0"
	case "person.authenticated":
		return 4, "OpenID"
	case "admin.authenticated":
		return other, "bearer token"
	case "node.attested", "node.authenticated":
		return other, "SPIFFE"
	}
	switch kind := str(ev.details, "kind"); {
	case strings.HasSuffix(kind, "_svid"):
		return other, "SPIFFE"
	case kind != "":
		return oauth, "OAUTH 2.0"
	}
	return 0, "Unknown"
}

// ocsfTime is the event time in milliseconds since the epoch: the body's,
// else the indexed column's, else 0.
func ocsfTime(s string, indexed time.Time) int64 {
	if t, err := ParseTime(s); err == nil {
		return t.UnixMilli()
	}
	if !indexed.IsZero() {
		return indexed.UnixMilli()
	}
	return 0
}

func ocsfMessage(typ, outcome, reason string) string {
	if typ == "" {
		typ = "event"
	}
	msg := typ
	if outcome != "" {
		msg += " " + outcome
	}
	if reason != "" {
		msg += ": " + reason
	}
	return msg
}

func ocsfComment(outcome, reason string) string {
	if Outcome(outcome) == Failure {
		return "" // status_detail has it
	}
	return reason
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
