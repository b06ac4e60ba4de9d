package scim

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func TestParseUser(t *testing.T) {
	const s = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],`
	tests := []struct {
		name, body string
		cur        attrs
		want       attrs
	}{
		{"displayName wins over name", `{` + s + `"userName":"u","displayName":"D","name":{"formatted":"F"}}`, attrs{active: true},
			attrs{userName: "u", displayName: "D", active: true}},
		{"name.formatted", `{` + s + `"userName":"u","name":{"formatted":"F","givenName":"G"}}`, attrs{}, attrs{userName: "u", displayName: "F"}},
		{"given and family names", `{` + s + `"userName":"u","name":{"givenName":"Barbara","familyName":"Jensen"}}`, attrs{},
			attrs{userName: "u", displayName: "Barbara Jensen"}},
		{"active absent keeps the state", `{` + s + `"userName":"u"}`, attrs{active: true, email: "old@x.io"}, attrs{userName: "u", active: true}},
		{"active as a string", `{` + s + `"UserName":"u","Active":"FALSE"}`, attrs{active: true}, attrs{userName: "u"}},
		{"primary email", `{` + s + `"userName":"u","emails":[{"value":"w@x.io","type":"work"},{"value":"p@x.io","type":"other","primary":true}]}`, attrs{},
			attrs{userName: "u", email: "p@x.io"}},
		{"work email", `{` + s + `"userName":"u","emails":[{"value":"h@x.io","type":"home"},{"value":"w@x.io","type":"work"}]}`, attrs{},
			attrs{userName: "u", email: "w@x.io"}},
		{"ignored and read-only attributes", `{` + s + `"userName":"u","id":"own_x","meta":{},"password":"p","groups":[],"title":"t",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"d"}}`, attrs{}, attrs{userName: "u"}},
	}
	for _, tc := range tests {
		got, err := parseUser([]byte(tc.body), tc.cur)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(attrs{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	for _, body := range []string{`[]`, `null`, `{"userName":"u"}`, `{` + s + `"userName":""}`, `{` + s + `"userName":"u","emails":"x"}`,
		`{` + s + `"userName":"u","name":"x"}`, `{` + s + `"userName":"u","nick":"x"}`, `{` + s + `"userName":"u","emails":[{"value":"a","primary":"maybe"}]}`} {
		if _, err := parseUser([]byte(body), attrs{}); err == nil {
			t.Errorf("parseUser(%s) succeeded", body)
		} else if _, ok := errors.AsType[*Error](err); !ok {
			t.Errorf("parseUser(%s) = %v, want an *Error", body, err)
		}
	}
}

func TestFromOwner(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o := store.Owner{ID: "own_1", Kind: store.OwnerPerson, Email: "b@x.io", DisplayName: "B", ExternalID: "e",
		State: store.OwnerDeactivated, CreatedAt: at, UpdatedAt: at.Add(time.Hour), Version: 3}
	want := User{Schemas: []string{SchemaUser}, ID: "own_1", ExternalID: "e", UserName: "b@x.io", Name: &Name{Formatted: "B"},
		DisplayName: "B", Emails: []Email{{Value: "b@x.io", Type: "work", Primary: true}},
		Meta: Meta{ResourceType: "User", Created: at, LastModified: at.Add(time.Hour), Location: "https://h/scim/v2/Users/own_1", Version: `W/"3"`}}
	if diff := cmp.Diff(want, FromOwner(o, "https://h/scim/v2")); diff != "" {
		t.Errorf("FromOwner (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		o    store.Owner
		want string
	}{
		{store.Owner{ID: "own_1", UserName: "u", Email: "e@x", Subject: "s"}, "u"},
		{store.Owner{ID: "own_1", Email: "e@x", Subject: "s"}, "e@x"},
		{store.Owner{ID: "own_1", Subject: "s"}, "s"},
		{store.Owner{ID: "own_1"}, "own_1"},
	} {
		if got := UserName(tc.o); got != tc.want {
			t.Errorf("UserName(%+v) = %q, want %q", tc.o, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{{`W/"3"`, 3, true}, {`"3"`, 3, true}, {`3`, 3, true}, {`*`, 0, true}, {`W/"0"`, 0, false}, {`"x"`, 0, false}, {``, 0, false}} {
		if v, ok := ParseETag(tc.in); v != tc.want || ok != tc.ok {
			t.Errorf("ParseETag(%q) = %d, %v", tc.in, v, ok)
		}
	}
}
