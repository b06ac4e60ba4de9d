package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/policy"
	"github.com/agentid/agentid/sdk/admin"
)

// The OpenID AuthZEN Authorization API 1.0 (ADR 0013): the access
// evaluation endpoints and the PDP metadata. Decisions are always 200 with
// a boolean decision (a conditional decision is false until its
// obligations are met; context.decision says "conditional"); errors that
// concern the whole request are RFC 9457 problems with the status codes
// of AuthZEN's error table (400, 401, 403, 500), and an item of a batch
// that cannot be evaluated is decision false with AuthZEN's
// context.error {status, message}.
const (
	authzenEvaluationPath  = "/access/v1/evaluation"
	authzenEvaluationsPath = "/access/v1/evaluations"
	authzenMetadataPath    = "/.well-known/authzen-configuration"
	// MaxEvaluations bounds the evaluations of one batch.
	MaxEvaluations = 1000
	// maxRequestID bounds an echoed X-Request-ID.
	maxRequestID = 256
)

// authzenRoutes mounts the AuthZEN endpoints when Params.Policy is set.
func (h *handler) authzenRoutes() {
	if h.p.Policy == nil {
		return
	}
	h.mux.HandleFunc("POST "+authzenEvaluationPath, h.authzen(h.evaluation))
	h.mux.HandleFunc("POST "+authzenEvaluationsPath, h.authzen(h.evaluations))
	h.mux.HandleFunc("GET "+authzenMetadataPath, h.authzenMetadata)
	h.authzenSearchRoutes()
	if u, err := url.Parse(h.p.Issuer); err == nil && strings.Trim(u.Path, "/") != "" {
		h.mux.HandleFunc("GET "+authzenMetadataPath+"/"+strings.Trim(u.Path, "/"), h.authzenMetadata)
	}
	for _, p := range []string{authzenEvaluationPath, authzenEvaluationsPath} {
		h.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			echoRequestID(w, r)
			w.Header().Set("Allow", http.MethodPost)
			h.problem(w, r, errMethod)
		})
	}
}

// echoRequestID copies the caller's X-Request-ID to the answer (AuthZEN
// 1.0 §10.1.3) when it is printable ASCII of at most maxRequestID bytes.
func echoRequestID(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-ID")
	if id == "" || len(id) > maxRequestID {
		return
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return
		}
	}
	w.Header().Set("X-Request-ID", id)
}

// authzenMetadata is the PDP metadata (AuthZEN 1.0 §9).
func (h *handler) authzenMetadata(w http.ResponseWriter, r *http.Request) {
	body, err := json.Marshal(struct {
		PDP            string `json:"policy_decision_point"`
		Evaluation     string `json:"access_evaluation_endpoint"`
		Evaluations    string `json:"access_evaluations_endpoint"`
		SearchSubject  string `json:"search_subject_endpoint"`
		SearchResource string `json:"search_resource_endpoint"`
		SearchAction   string `json:"search_action_endpoint"`
	}{h.p.Issuer, h.p.Issuer + authzenEvaluationPath, h.p.Issuer + authzenEvaluationsPath,
		h.p.Issuer + authzenSearchSubjectPath, h.p.Issuer + authzenSearchResourcePath, h.p.Issuer + authzenSearchActionPath})
	if err != nil {
		h.problem(w, r, err)
		return
	}
	h.publicDocument(w, r, "application/json", body)
}

// authzen authenticates the caller (an admin token of role admin, or an
// agentid access token whose agent holds the evaluate permission) and
// reads the body.
func (h *handler) authzen(fn func(http.ResponseWriter, *http.Request, audit.Origin, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		echoRequestID(w, r)
		o, ok := h.agentOrAdmin(w, r, oauth.PermissionEvaluate)
		if !ok {
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				// AuthZEN's error table has no 415: a body that is not JSON is a 400.
				h.problem(w, r, &requestError{status: http.StatusBadRequest, typ: admin.ProblemUnsupportedMediaType,
					title: "Unsupported media type", detail: "the body must be application/json"})
				return
			}
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.p.MaxBodyBytes))
		if err != nil {
			h.problem(w, r, jsonError(err, h.p.MaxBodyBytes))
			return
		}
		fn(w, r, o, body)
	}
}

// agentOrAdmin authenticates the caller of an endpoint that takes either
// an admin token of role admin or an agentid access token whose agent
// holds perm, and returns the origin with the caller as actor. On false
// it has answered.
func (h *handler) agentOrAdmin(w http.ResponseWriter, r *http.Request, perm string) (audit.Origin, bool) {
	o := h.origin(r)
	bearer, ok := bearerToken(r)
	switch {
	case !ok:
		h.problem(w, r, &requestError{status: http.StatusUnauthorized, typ: admin.ProblemUnauthenticated, title: "Unauthenticated",
			detail: "an admin token or an agentid access token is required: Authorization: Bearer <token>"})
		return o, false
	case strings.Count(bearer, ".") == 2 && h.p.OAuth != nil: // a JWT: an agent's access token
		var oerr *oauth.Error
		if o, oerr = h.p.OAuth.AuthenticateBearer(r.Context(), o, bearer, perm); oerr != nil {
			h.bearerProblem(w, r, oerr)
			return o, false
		}
	default:
		tok, err := h.p.Auth.Authenticate(r.Context(), o, bearer)
		if err != nil {
			h.problem(w, r, err)
			return o, false
		}
		o.Actor = audit.Actor{Type: audit.ActorAdmin, ID: tok.ID}
		if err := h.p.Auth.Check(r.Context(), o, tok, true); err != nil {
			h.problem(w, r, err)
			return o, false
		}
	}
	return o, true
}

// bearerProblem answers a refused access token with its RFC 6750 challenge.
func (h *handler) bearerProblem(w http.ResponseWriter, r *http.Request, e *oauth.Error) {
	switch {
	case e.Code == oauth.CodeServerError:
		h.problem(w, r, e)
	case e.Status == http.StatusForbidden:
		w.Header().Set("WWW-Authenticate", e.Challenge)
		h.problem(w, r, &requestError{status: http.StatusForbidden, typ: admin.ProblemForbidden, title: "Forbidden", detail: e.Description})
	default:
		w.Header().Set("WWW-Authenticate", e.Challenge)
		h.problem(w, r, &requestError{status: http.StatusUnauthorized, typ: admin.ProblemUnauthenticated, title: "Unauthenticated", detail: e.Description})
	}
}

// AuthZEN 1.0 §5 information model, as decoded. Pointers tell an absent
// member from an empty one; unknown members are ignored (the API is
// extensible).
type (
	azEntity struct {
		Type       *string         `json:"type"`
		ID         *string         `json:"id"`
		Properties json.RawMessage `json:"properties"`
	}
	azAction struct {
		Name       *string         `json:"name"`
		Properties json.RawMessage `json:"properties"`
	}
	azRequest struct {
		Subject  *azEntity       `json:"subject"`
		Action   *azAction       `json:"action"`
		Resource *azEntity       `json:"resource"`
		Context  json.RawMessage `json:"context"`
	}
	azBatch struct {
		azRequest
		Evaluations []azRequest `json:"evaluations"`
		Options     struct {
			Semantic string `json:"evaluations_semantic"`
		} `json:"options"`
	}
)

// azContext is the context of a decision in a response (AuthZEN 1.0
// §6.2.2): agentid's explanation, and for a batch item that could not be
// evaluated the error.
type azContext struct {
	ID            string            `json:"id,omitempty"` // the audit event of the decision
	Decision      string            `json:"decision,omitempty"`
	PolicyVersion int64             `json:"policy_version,omitempty"`
	PolicyIDs     []string          `json:"policy_ids,omitempty"`
	Obligations   []string          `json:"obligations,omitempty"`
	ActionClass   string            `json:"action_class,omitempty"`
	RiskTier      string            `json:"risk_tier,omitempty"`
	ReasonAdmin   map[string]string `json:"reason_admin,omitempty"`
	// ApprovalID and ApprovalState name the approval request of a
	// conditional decision, or the approval an allow stands on.
	ApprovalID    string   `json:"approval_id,omitempty"`
	ApprovalState string   `json:"approval_state,omitempty"`
	Error         *azError `json:"error,omitempty"`
}

type azError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

type azDecision struct {
	Decision bool       `json:"decision"`
	Context  *azContext `json:"context,omitempty"`
}

// decodeEvaluation decodes an access evaluation request (§6.1).
func decodeEvaluation(body []byte) (policy.Request, error) {
	var in azRequest
	if err := decodeAuthZEN(body, &in); err != nil {
		return policy.Request{}, err
	}
	return toPolicyRequest(in)
}

// decodeEvaluations decodes an access evaluations request (§7.1): without
// evaluations it is one evaluation; with them, the top-level subject,
// action, resource and context are defaults each item may replace.
func decodeEvaluations(body []byte) ([]azRequest, policy.Semantic, error) {
	var in azBatch
	if err := decodeAuthZEN(body, &in); err != nil {
		return nil, "", err
	}
	if len(in.Evaluations) > MaxEvaluations {
		return nil, "", badRequest("evaluations", "at most %d evaluations per request", MaxEvaluations)
	}
	switch sem := policy.Semantic(in.Options.Semantic); sem {
	case "", policy.ExecuteAll, policy.DenyOnFirstDeny, policy.PermitOnFirstPermit:
	default:
		return nil, "", badRequest("options.evaluations_semantic", "options.evaluations_semantic must be %s, %s or %s",
			policy.ExecuteAll, policy.DenyOnFirstDeny, policy.PermitOnFirstPermit)
	}
	if len(in.Evaluations) == 0 {
		return nil, policy.Semantic(in.Options.Semantic), nil
	}
	out := make([]azRequest, len(in.Evaluations))
	for i, e := range in.Evaluations {
		e.Subject = mergeEntity(e.Subject, in.Subject)
		e.Resource = mergeEntity(e.Resource, in.Resource)
		switch {
		case e.Action == nil:
			e.Action = in.Action
		case e.Action.Name == nil && in.Action != nil:
			a := *e.Action
			a.Name = in.Action.Name
			e.Action = &a
		}
		if e.Context == nil {
			e.Context = in.Context
		}
		out[i] = e
	}
	return out, policy.Semantic(in.Options.Semantic), nil
}

// mergeEntity is an item's subject or resource over the batch's default:
// the item's replaces the default as a whole, except that a required
// member it lacks (type, id) is the default's (the AuthZEN certification
// scenario's entity-level replacement).
func mergeEntity(item, def *azEntity) *azEntity {
	switch {
	case item == nil:
		return def
	case def == nil || (item.Type != nil && item.ID != nil):
		return item
	}
	e := *item
	if e.Type == nil {
		e.Type = def.Type
	}
	if e.ID == nil {
		e.ID = def.ID
	}
	return &e
}

// decodeAuthZEN decodes one JSON object, strictly in shape (nothing after
// it, members of the right JSON types) and leniently in members.
func decodeAuthZEN(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("", "the body is empty; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonError(err, 0)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("", "the body must hold exactly one JSON object")
	}
	return nil
}

// toPolicyRequest checks that the required members are present (§5) and
// converts. Properties are passed as sent: the decision point checks
// their shape and decides what policies see (ADR 0016: a user's and the
// action's properties; an agent's are never trusted).
func toPolicyRequest(in azRequest) (policy.Request, error) {
	switch {
	case in.Subject == nil:
		return policy.Request{}, badRequest("subject", "subject is required")
	case in.Subject.Type == nil:
		return policy.Request{}, badRequest("subject.type", "subject.type is required")
	case in.Subject.ID == nil:
		return policy.Request{}, badRequest("subject.id", "subject.id is required")
	case in.Action == nil:
		return policy.Request{}, badRequest("action", "action is required")
	case in.Action.Name == nil:
		return policy.Request{}, badRequest("action.name", "action.name is required")
	case in.Resource == nil:
		return policy.Request{}, badRequest("resource", "resource is required")
	case in.Resource.Type == nil:
		return policy.Request{}, badRequest("resource.type", "resource.type is required")
	case in.Resource.ID == nil:
		return policy.Request{}, badRequest("resource.id", "resource.id is required")
	}
	return policy.Request{
		Subject:          policy.Subject{Type: *in.Subject.Type, ID: *in.Subject.ID, Properties: in.Subject.Properties},
		Action:           *in.Action.Name,
		ActionProperties: in.Action.Properties,
		Resource:         policy.Resource{Type: *in.Resource.Type, ID: *in.Resource.ID, Properties: in.Resource.Properties},
		Context:          in.Context,
	}, nil
}

// toPolicyRequestLenient converts a batch item with its missing members
// empty, for the decision point to refuse item by item.
func toPolicyRequestLenient(in azRequest) policy.Request {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	var req policy.Request
	if e := in.Subject; e != nil {
		req.Subject = policy.Subject{Type: str(e.Type), ID: str(e.ID), Properties: e.Properties}
	}
	if in.Action != nil {
		req.Action, req.ActionProperties = str(in.Action.Name), in.Action.Properties
	}
	if e := in.Resource; e != nil {
		req.Resource = policy.Resource{Type: str(e.Type), ID: str(e.ID), Properties: e.Properties}
	}
	req.Context = in.Context
	return req
}

func (h *handler) evaluation(w http.ResponseWriter, r *http.Request, o audit.Origin, body []byte) {
	req, err := decodeEvaluation(body)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	d, err := h.p.Policy.Decide(r.Context(), o, req)
	if err != nil {
		h.problem(w, r, authzenProblem(err))
		return
	}
	h.reply(w, http.StatusOK, decisionOut(d))
}

func (h *handler) evaluations(w http.ResponseWriter, r *http.Request, o audit.Origin, body []byte) {
	items, sem, err := decodeEvaluations(body)
	if err != nil {
		h.problem(w, r, err)
		return
	}
	if items == nil {
		// Without evaluations the endpoint is the single evaluation
		// (AuthZEN 1.0 §7.1: backwards compatible), answered as one.
		h.evaluation(w, r, o, body)
		return
	}
	// An item missing a required member after the defaults is an item
	// error (decision false, context.error), not an error of the whole
	// request: the decision point reports the member missing.
	reqs := make([]policy.Request, len(items))
	for i, it := range items {
		reqs[i] = toPolicyRequestLenient(it)
	}
	results, err := h.p.Policy.DecideBatch(r.Context(), o, reqs, sem)
	if err != nil {
		h.problem(w, r, authzenProblem(err))
		return
	}
	out := struct {
		Evaluations []azDecision `json:"evaluations"`
	}{make([]azDecision, len(results))}
	for i, res := range results {
		if res.Err != nil {
			out.Evaluations[i] = azDecision{Context: &azContext{ID: res.Decision.EventID,
				Error: &azError{Status: http.StatusBadRequest, Message: clientMessage(res.Err)}}}
			continue
		}
		out.Evaluations[i] = decisionOut(res.Decision)
	}
	h.reply(w, http.StatusOK, out)
}

// decisionOut is the wire form of a decision.
func decisionOut(d policy.Decision) azDecision {
	c := &azContext{ID: d.EventID, Decision: d.Decision, PolicyVersion: d.PolicyVersion, PolicyIDs: d.PolicyIDs,
		Obligations: d.Obligations, ActionClass: d.ActionClass, RiskTier: d.RiskTier,
		ApprovalID: d.ApprovalID, ApprovalState: d.ApprovalState}
	if len(d.Reasons) > 0 {
		c.ReasonAdmin = map[string]string{"en": strings.Join(d.Reasons, "; ")}
	}
	return azDecision{Decision: d.Allowed(), Context: c}
}

// authzenProblem maps the decision point's errors.
func authzenProblem(err error) error {
	var ve *fault.ValidationError
	if errors.As(err, &ve) {
		return badRequest(ve.Field, "%s", ve.Detail())
	}
	return err
}

// clientMessage is a validation error's message for a client.
func clientMessage(err error) string {
	var ve *fault.ValidationError
	if errors.As(err, &ve) {
		return ve.Detail()
	}
	return "the request could not be evaluated"
}
