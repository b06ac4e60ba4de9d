package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// TestSCIMUserNameIsAnotherOwnersEmail checks, over SCIM, that a userName
// equal (in any case) to the email an admin-created owner without a user
// name shows as its userName is refused with 409 uniqueness on POST, PUT
// and PATCH, and that nothing changes.
func TestSCIMUserNameIsAnotherOwnersEmail(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	legacy, err := e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "legacy@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	user := func(members string) string { return `{"schemas":["` + scimUserURN + `"],` + members + `}` }
	patch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],` +
		`"Operations":[{"op":"replace","path":"userName","value":"Legacy@Example.com"}]}`

	for _, name := range []string{"legacy@example.com", "LEGACY@EXAMPLE.COM"} {
		a := e.scim(t, "POST", "/Users", e.token, user(`"userName":"`+name+`"`), nil)
		a.want(t, "POST userName "+name, 409, "uniqueness")
		if d, _ := a.body["detail"].(string); !strings.Contains(d, "userName") {
			t.Errorf("POST userName %s: detail %q does not name userName", name, d)
		}
	}
	a := e.scim(t, "POST", "/Users", e.token, user(`"userName":"bjensen"`), nil)
	a.want(t, "seed", 201, "")
	id := a.user(t).ID
	e.scim(t, "PUT", "/Users/"+id, e.token, user(`"userName":"LEGACY@example.com"`), nil).want(t, "PUT to the email", 409, "uniqueness")
	e.scim(t, "PATCH", "/Users/"+id, e.token, patch, nil).want(t, "PATCH to the email", 409, "uniqueness")

	if u := e.scim(t, "GET", "/Users/"+id, e.token, "", nil).user(t); u.UserName != "bjensen" || u.Meta.Version != `W/"1"` {
		t.Errorf("the User after the refusals: userName %q, version %s", u.UserName, u.Meta.Version)
	}
	if total, ids := e.scimList(t, "/Users", "filter="+urlQuery(`userName eq "Legacy@example.com"`)); total != 1 || ids[0] != legacy.ID {
		t.Errorf("filter by the email shown as userName: %d %v, want %s alone", total, ids, legacy.ID)
	}
}

// TestOwnerUserNameIsAnotherOwnersEmail checks the same rule on the admin
// API, in both orders: a user name equal to an email another owner shows,
// and an email (without a user name) equal to another owner's user name,
// are 409 already-exists on create and update.
func TestOwnerUserNameIsAnotherOwnersEmail(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "legacy@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{UserName: "BJensen@Example.com"}); err != nil {
		t.Fatal(err)
	}
	carol, err := e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "carol@example.com", UserName: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	wantConflict := func(what string, err error) {
		t.Helper()
		var p *admin.Problem
		if !errors.As(err, &p) || p.Status != http.StatusConflict || p.Type != admin.ProblemAlreadyExists ||
			!strings.Contains(p.Detail, "another owner's user name or email") {
			t.Errorf("%s: %v; want 409 %s naming the rule", what, err, admin.ProblemAlreadyExists)
		}
	}
	_, err = e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "x@example.com", UserName: "Legacy@Example.COM"})
	wantConflict("create with a user name that is another's email", err)
	_, err = e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "bjensen@example.com"})
	wantConflict("create without a user name, with an email that is another's user name", err)
	_, err = e.admin.UpdateOwner(ctx, carol.ID, admin.UpdateOwnerRequest{UserName: ptr("LEGACY@example.com")})
	wantConflict("update to a user name that is another's email", err)
	_, err = e.admin.UpdateOwner(ctx, carol.ID, admin.UpdateOwnerRequest{UserName: ptr(""), Email: ptr("bjensen@example.com")})
	wantConflict("update clearing the user name, with an email that is another's user name", err)
	if got, err := e.admin.GetOwner(ctx, carol.ID); err != nil || got.UserName != "carol" || got.Version != 1 {
		t.Errorf("the owner after the refusals = %+v, %v", got, err)
	}
	// An email is free when its owner shows a user name instead.
	if _, err := e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "dave@example.com", UserName: "carol@example.com"}); err != nil {
		t.Errorf("create with a user name that is the email of an owner showing a user name: %v", err)
	}
}
