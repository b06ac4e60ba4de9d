package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

func ptr[T any](v T) *T { return &v }

// TestOwnerUpdateAndReactivate changes an owner through the admin API
// (PATCH with If-Match, as agents) and deactivates and reactivates it.
func TestOwnerUpdateAndReactivate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	o, a := e.seed(t)
	u, err := e.admin.UpdateOwner(ctx, o.ID, admin.UpdateOwnerRequest{Version: 1, DisplayName: ptr("Alice L"),
		UserName: ptr("ALiddell"), ExternalID: ptr("00u1")})
	if err != nil || u.Version != 2 || u.DisplayName != "Alice L" || u.UserName != "ALiddell" || u.ExternalID != "00u1" {
		t.Fatalf("UpdateOwner = %+v, %v", u, err)
	}
	// The owner is a SCIM User under its new user name.
	if total, ids := e.scimList(t, "/Users", "filter="+urlQuery(`userName eq "aliddell"`)); total != 1 || ids[0] != o.ID {
		t.Errorf("SCIM filter by the new user name: %d %v", total, ids)
	}
	if _, err := e.admin.DeactivateOwner(ctx, "alice@example.com", admin.TransitionRequest{}); err != nil {
		t.Fatal(err)
	}
	r, err := e.admin.ReactivateOwner(ctx, o.ID, admin.TransitionRequest{Version: 3, Reason: "back"})
	if err != nil || r.State != "active" || r.Version != 4 {
		t.Fatalf("ReactivateOwner = %+v, %v", r, err)
	}
	if got, err := e.admin.GetAgent(ctx, a.ID); err != nil || got.Orphaned {
		t.Errorf("agent after its owner's reactivation: orphaned %v, %v", got.Orphaned, err)
	}
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		typ, field               string
	}{
		{"reactivate an active owner", "POST", "/v1/owners/" + o.ID + "/reactivate", "", nil, 409, admin.ProblemIllegalTransition, ""},
		{"stale If-Match", "PATCH", "/v1/owners/" + o.ID, `{"display_name":"x"}`, map[string]string{"If-Match": `"2"`}, 409, admin.ProblemVersionMismatch, ""},
		{"nothing to update", "PATCH", "/v1/owners/" + o.ID, `{}`, nil, 400, admin.ProblemValidation, ""},
		{"kind cannot change", "PATCH", "/v1/owners/" + o.ID, `{"kind":"team"}`, nil, 400, admin.ProblemBadRequest, "kind"},
		{"bad email", "PATCH", "/v1/owners/" + o.ID, `{"email":"nope"}`, nil, 400, admin.ProblemValidation, "email"},
		{"unknown owner", "PATCH", "/v1/owners/nobody@example.com", `{"display_name":"x"}`, nil, 404, admin.ProblemNotFound, ""},
		{"auditor", "POST", "/v1/owners/" + o.ID + "/reactivate", "", nil, 403, admin.ProblemForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot(t)
			tok := e.token
			if tc.name == "auditor" {
				tok = e.auditor
			}
			var body *strings.Reader
			ct := ""
			if tc.body != "" {
				body, ct = strings.NewReader(tc.body), "application/json"
			}
			var status int
			var p admin.Problem
			if body != nil {
				status, _, p = e.raw(t, tc.method, tc.path, tok, ct, body, tc.hdr)
			} else {
				status, _, p = e.raw(t, tc.method, tc.path, tok, ct, nil, tc.hdr)
			}
			if status != tc.status || p.Type != tc.typ || p.Field != tc.field {
				t.Fatalf("got %d %s %q (%s), want %d %s %q", status, p.Type, p.Field, p.Detail, tc.status, tc.typ, tc.field)
			}
			after := e.snapshot(t)
			if tc.name == "auditor" {
				after.HeadSeq = before.HeadSeq // the denial's event
			}
			if before.HeadSeq != after.HeadSeq || len(before.Owners) != len(after.Owners) || before.Owners[0] != after.Owners[0] {
				t.Errorf("a refused request changed the owners or the trail")
			}
		})
	}
}
