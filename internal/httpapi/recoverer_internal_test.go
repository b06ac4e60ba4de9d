package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRecovererAnswersInTheEndpointsFormat: a handler that panics gets a
// 500 in the error format of its endpoint family, with no detail of the
// panic, and the server goes on.
func TestRecovererAnswersInTheEndpointsFormat(t *testing.T) {
	h := &handler{p: Params{Logger: slog.New(slog.DiscardHandler)}}
	boom := h.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret detail") }))
	for _, tc := range []struct{ path, contentType, statusField string }{
		{"/v1/agents", "application/problem+json", "status"},
		{"/scim/v2/Users", "application/scim+json", "status"},
	} {
		w := httptest.NewRecorder()
		boom.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if w.Code != http.StatusInternalServerError || w.Header().Get("Content-Type") != tc.contentType {
			t.Errorf("%s: %d %q, want 500 %q", tc.path, w.Code, w.Header().Get("Content-Type"), tc.contentType)
		}
		if strings.Contains(w.Body.String(), "secret detail") {
			t.Errorf("%s: the panic's value reached the client: %s", tc.path, w.Body)
		}
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v: %s", tc.path, err, w.Body)
		}
		if got := body[tc.statusField]; got != float64(500) && got != "500" {
			t.Errorf("%s: status field %v", tc.path, got)
		}
	}
	// http.ErrAbortHandler is net/http's own way to abort: passed on.
	abort := h.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	defer func() {
		if err, _ := recover().(error); !errors.Is(err, http.ErrAbortHandler) {
			t.Errorf("recovered %v, want http.ErrAbortHandler passed on", err)
		}
	}()
	abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/agents", nil))
}
