package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/agentid/agentid/internal/adminauth"
	"github.com/agentid/agentid/internal/fault"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/scim"
	"github.com/agentid/agentid/internal/store"
)

// scimRoot is the path of the SCIM 2.0 service provider (ADR 0023).
const scimRoot = "/scim/v2"

// scimRoutes serves SCIM 2.0 provisioning of owners and agents under
// /scim/v2 (RFC 7643, RFC 7644, draft-wzdk-scim-agent-resource-00,
// docs/scim.md): Users, Agents and the discovery documents, for admin
// tokens of role admin, every answer application/scim+json and every
// error the SCIM error of RFC 7644 §3.12.
func (h *handler) scimRoutes() {
	users := scim.NewUsers(h.p.Identity)
	agents := scim.NewAgents(h.p.Identity)
	paths, allowed := http.NewServeMux(), map[string][]string{}
	handle := func(pattern string, fn func(http.ResponseWriter, *http.Request, *principal)) {
		h.mux.Handle(pattern, h.authenticatedWith(store.RoleAdmin, h.scimError, fn))
		method, path, _ := strings.Cut(pattern, " ")
		if allowed[path] == nil {
			paths.Handle(path, http.NotFoundHandler())
		}
		allowed[path] = append(allowed[path], method)
	}
	handle("GET "+scimRoot+"/ServiceProviderConfig", func(w http.ResponseWriter, r *http.Request, _ *principal) {
		h.scimReply(w, http.StatusOK, scim.Config(h.scimBase(r)))
	})
	handle("GET "+scimRoot+"/ResourceTypes", func(w http.ResponseWriter, r *http.Request, _ *principal) {
		base := h.scimBase(r)
		h.scimReply(w, http.StatusOK, scim.NewList([]scim.ResourceType{scim.UserResourceType(base), scim.AgentResourceType(base)}, 2, 1))
	})
	handle("GET "+scimRoot+"/ResourceTypes/{id}", func(w http.ResponseWriter, r *http.Request, _ *principal) {
		switch r.PathValue("id") {
		case "User":
			h.scimReply(w, http.StatusOK, scim.UserResourceType(h.scimBase(r)))
		case "Agent":
			h.scimReply(w, http.StatusOK, scim.AgentResourceType(h.scimBase(r)))
		default:
			h.scimError(w, r, &scim.Error{Status: http.StatusNotFound, Detail: "no such resource type; this provider serves User and Agent"})
		}
	})
	handle("GET "+scimRoot+"/Schemas", func(w http.ResponseWriter, r *http.Request, _ *principal) {
		base := h.scimBase(r)
		h.scimReply(w, http.StatusOK, scim.NewList([]scim.Schema{scim.UserSchema(base), scim.AgentSchema(base)}, 2, 1))
	})
	handle("GET "+scimRoot+"/Schemas/{id}", func(w http.ResponseWriter, r *http.Request, _ *principal) {
		switch id := r.PathValue("id"); {
		case strings.EqualFold(id, scim.SchemaUser):
			h.scimReply(w, http.StatusOK, scim.UserSchema(h.scimBase(r)))
		case strings.EqualFold(id, scim.SchemaAgent):
			h.scimReply(w, http.StatusOK, scim.AgentSchema(h.scimBase(r)))
		default:
			h.scimError(w, r, &scim.Error{Status: http.StatusNotFound,
				Detail: "no such schema; this provider serves " + scim.SchemaUser + " and " + scim.SchemaAgent})
		}
	})
	scimResourceRoutes(h, "/Users", users, scim.FromOwner, func(u scim.User) scim.Meta { return u.Meta }, handle)
	scimResourceRoutes(h, "/Agents", agents, scim.FromAgent, func(a scim.Agent) scim.Meta { return a.Meta }, handle)
	// Anything else under the root is a SCIM 405 or 404.
	h.mux.HandleFunc(scimRoot+"/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := paths.Handler(r); pattern != "" {
			w.Header().Set("Allow", strings.Join(allowed[pattern], ", "))
			h.scimError(w, r, &scim.Error{Status: http.StatusMethodNotAllowed,
				Detail: "the endpoint does not take this method; Allow lists those it does"})
			return
		}
		h.scimError(w, r, &scim.Error{Status: http.StatusNotFound, Detail: "no such endpoint"})
	})
}

// scimBase is the absolute URL of the SCIM root for meta.location: under
// the configured issuer's origin, else the request's.
func (h *handler) scimBase(r *http.Request) string {
	if u, err := url.Parse(h.p.Issuer); err == nil && u.Scheme != "" && u.Host != "" {
		return u.Scheme + "://" + u.Host + scimRoot
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + scimRoot
}

// scimBody reads a request body: SCIM or plain JSON (or no media type),
// at most MaxBodyBytes.
func (h *handler) scimBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != scim.MediaType && mt != "application/json") {
			return nil, &scim.Error{Status: http.StatusUnsupportedMediaType,
				Detail: "the body must be " + scim.MediaType + " or application/json"}
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.p.MaxBodyBytes))
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, &scim.Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the body exceeds %d bytes", mbe.Limit)}
	}
	if err != nil {
		return nil, &scim.Error{Status: http.StatusBadRequest, ScimType: scim.TypeInvalidSyntax, Detail: "the body could not be read"}
	}
	if !json.Valid(b) {
		return nil, &scim.Error{Status: http.StatusBadRequest, ScimType: scim.TypeInvalidSyntax, Detail: "the body is not one JSON value"}
	}
	return b, nil
}

// scimChange reads the If-Match and body of a PUT or PATCH.
func (h *handler) scimChange(w http.ResponseWriter, r *http.Request) (int64, []byte, error) {
	ifMatch, err := scimIfMatch(r)
	if err != nil {
		return 0, nil, err
	}
	body, err := h.scimBody(w, r)
	return ifMatch, body, err
}

// scimIfMatch reads If-Match (RFC 7644 §3.14): an entity tag this
// provider issued, or "*"; 0 means none.
func scimIfMatch(r *http.Request) (int64, error) {
	v := r.Header.Get("If-Match")
	if strings.TrimSpace(v) == "" {
		return 0, nil
	}
	n, ok := scim.ParseETag(v)
	if !ok {
		return 0, &scim.Error{Status: http.StatusPreconditionFailed, Detail: "If-Match names no version of this resource"}
	}
	return n, nil
}

// scimInt reads an optional integer query parameter.
func scimInt(q url.Values, name string, def int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, &scim.Error{Status: http.StatusBadRequest, ScimType: scim.TypeInvalidValue, Detail: name + " must be an integer"}
	}
	return n, nil
}

// scimReply writes v as application/scim+json.
func (h *handler) scimReply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", scim.MediaType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// scimErrorOf maps an error to the SCIM error a client sees; internal is
// true for an unexpected error, whose detail is never returned.
func scimErrorOf(err error) (e *scim.Error, internal bool) {
	if se, ok := errors.AsType[*scim.Error](err); ok {
		return se, false
	}
	if ve, ok := errors.AsType[*fault.ValidationError](err); ok {
		detail := ve.Reason
		if ve.Field != "" {
			detail = scimAttrOf(ve.Field) + ": " + ve.Reason
		}
		return &scim.Error{Status: http.StatusBadRequest, ScimType: scim.TypeInvalidValue, Detail: detail}, false
	}
	switch {
	case errors.Is(err, adminauth.ErrUnauthenticated):
		return &scim.Error{Status: http.StatusUnauthorized, Detail: "a valid admin token is required: Authorization: Bearer <token>"}, false
	case errors.Is(err, adminauth.ErrForbidden):
		return &scim.Error{Status: http.StatusForbidden, Detail: "this token's role may not do this; SCIM needs an admin token of role admin"}, false
	case errors.Is(err, identity.ErrNotFound):
		return &scim.Error{Status: http.StatusNotFound, Detail: "no such User"}, false
	case errors.Is(err, identity.ErrAlreadyExists):
		return &scim.Error{Status: http.StatusConflict, ScimType: scim.TypeUniqueness,
			Detail: "another User has this userName or email"}, false
	case errors.Is(err, identity.ErrVersionMismatch), errors.Is(err, identity.ErrIllegalTransition):
		return &scim.Error{Status: http.StatusConflict, Detail: "the resource changed while the request ran; retry it"}, false
	}
	return &scim.Error{Status: http.StatusInternalServerError,
		Detail: "the request failed and changed nothing; the server log has the cause under this trace id"}, true
}

// scimAttrOf names the SCIM attribute of an identity field.
func scimAttrOf(field string) string {
	switch field {
	case identity.FieldOwnerUserName:
		return "userName"
	case identity.FieldOwnerExternalID:
		return "externalId"
	case identity.FieldOwnerDisplayName:
		return "displayName"
	case identity.FieldOwnerEmail:
		return "emails"
	case "name":
		return "name"
	case identity.FieldPurpose:
		return "description"
	}
	if field == identity.FieldOwners || strings.HasPrefix(field, identity.FieldOwners+"[") {
		return "owners"
	}
	return field
}

// scimError writes err as a SCIM error (RFC 7644 §3.12).
func (h *handler) scimError(w http.ResponseWriter, r *http.Request, err error) {
	e, internal := scimErrorOf(err)
	if internal {
		h.p.Logger.ErrorContext(r.Context(), "request failed", "err", err, "path", r.URL.Path,
			"trace_id", traceOf(r.Context()).traceID)
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentid"`)
	}
	w.Header().Set("Content-Type", scim.MediaType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e.Response())
}
