package authzen

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
)

// MiddlewareParams configures Middleware.
type MiddlewareParams struct {
	// Client asks the PDP. Required.
	Client *Client
	// Request builds the question of an HTTP request: typically the
	// subject from the verified token (sdk/resource.ClaimsFromContext),
	// the action from the method and route, the resource from the path.
	// An error answers 400 with the error's text (keep it fit for the
	// caller). Required.
	Request func(r *http.Request) (Request, error)
	// Cache, when set, keeps allow and deny answers (never conditional
	// ones) for its TTL.
	Cache *Cache
	// Logger receives PDP failures; nil discards them.
	Logger *slog.Logger
}

// ProblemConditional is the problem type Middleware answers a
// conditional decision with (403, with "obligations" and "approval_id").
const ProblemConditional = "urn:agentid:problem:decision-conditional"

// decisionKey carries the decision in a request's context.
type decisionKey struct{}

// DecisionFromContext returns the decision that let the request through
// Middleware.
func DecisionFromContext(ctx context.Context) (Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(Decision)
	return d, ok
}

// Middleware asks the PDP whether each request may go ahead before it
// reaches next, and fails closed:
//
//   - allow: next runs, with the decision in its context;
//   - deny: 403 problem+json;
//   - conditional: 403 problem+json of type
//     ProblemConditional with the
//     obligations and the approval id (when the PDP gave one), so that the
//     caller can get the approval and retry;
//   - the PDP unreachable or failing: 503 problem+json.
//
// The request's X-Request-ID, when present, is passed to the PDP.
func Middleware(p MiddlewareParams) func(http.Handler) http.Handler {
	if p.Client == nil || p.Request == nil {
		panic("authzen: Middleware needs Client and Request")
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q, err := p.Request(r)
			if err != nil {
				problem(w, http.StatusBadRequest, "urn:agentid:problem:validation", "Bad request", err.Error(), nil)
				return
			}
			ctx := r.Context()
			if id := r.Header.Get("X-Request-ID"); id != "" && len(id) <= 256 {
				ctx = WithRequestID(ctx, id)
			}
			d, _, err := p.Client.CachedEvaluate(ctx, p.Cache, q)
			switch {
			case err != nil:
				log.LogAttrs(ctx, slog.LevelWarn, "authzen: the PDP could not decide", slog.String("error", err.Error()))
				problem(w, http.StatusServiceUnavailable, "urn:agentid:problem:unavailable", "Service unavailable",
					"the authorization decision could not be obtained", nil)
			case d.Decision:
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), decisionKey{}, d)))
			case d.Conditional():
				ext := map[string]any{"obligations": d.Obligations()}
				if id, _ := d.Context["approval_id"].(string); id != "" {
					ext["approval_id"] = id
				}
				problem(w, http.StatusForbidden, ProblemConditional, "Forbidden",
					"the request needs "+strings.Join(d.Obligations(), ", ")+" first", ext)
			default:
				problem(w, http.StatusForbidden, "urn:agentid:problem:forbidden", "Forbidden", "the request is not allowed", nil)
			}
		})
	}
}

// problem writes an RFC 9457 problem.
func problem(w http.ResponseWriter, status int, typ, title, detail string, ext map[string]any) {
	body := map[string]any{"type": typ, "title": title, "status": status, "detail": detail}
	for k, v := range ext {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
