package scim

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		filter string
		want   Query
	}{
		{``, Query{}},
		{`  `, Query{}},
		{`userName eq "bjensen"`, Query{Filter: store.OwnerFilter{UserName: "bjensen"}}},
		{`UserName EQ "bjensen"`, Query{Filter: store.OwnerFilter{UserName: "bjensen"}}},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "b"`, Query{Filter: store.OwnerFilter{UserName: "b"}}},
		{`URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:externalId eq "b"`, Query{Filter: store.OwnerFilter{ExternalID: "b"}}},
		{`externalId eq "00u1"`, Query{Filter: store.OwnerFilter{ExternalID: "00u1"}}},
		{`id eq "own_1"`, Query{Filter: store.OwnerFilter{ID: "own_1"}}},
		{`active eq true`, Query{Filter: store.OwnerFilter{State: store.OwnerActive}}},
		{`active eq False`, Query{Filter: store.OwnerFilter{State: store.OwnerDeactivated}}},
		{`emails eq "B@Example.com"`, Query{Filter: store.OwnerFilter{Email: "b@example.com"}}},
		{`emails.value eq "b@example.com"`, Query{Filter: store.OwnerFilter{Email: "b@example.com"}}},
		{`emails[type eq "work"].value eq "b@example.com"`, Query{Filter: store.OwnerFilter{Email: "b@example.com"}}},
		{`emails[Type EQ "Work"].Value eq "b@example.com"`, Query{Filter: store.OwnerFilter{Email: "b@example.com"}}},
		{`emails[primary eq true].value eq "b@example.com"`, Query{Filter: store.OwnerFilter{Email: "b@example.com"}}},
		{`emails[type eq "home"].value eq "b@example.com"`, Query{Filter: store.OwnerFilter{Email: "b@example.com"}, Empty: true}},
		{`userName eq "a\"b\u00e9"`, Query{Filter: store.OwnerFilter{UserName: `a"bé`}}},
		{`userName eq "a" and externalId eq "x"`, Query{Filter: store.OwnerFilter{UserName: "a", ExternalID: "x"}}},
		{`(userName eq "a") AND (externalId eq "x" and (id eq "own_1"))`, Query{Filter: store.OwnerFilter{UserName: "a", ExternalID: "x", ID: "own_1"}}},
		{`userName eq "A" and userName eq "a"`, Query{Filter: store.OwnerFilter{UserName: "a"}}},
		{`userName eq "a" and userName eq "b"`, Query{Filter: store.OwnerFilter{UserName: "b"}, Empty: true}},
		{`externalId eq "a" and externalId eq "A"`, Query{Filter: store.OwnerFilter{ExternalID: "A"}, Empty: true}},
		{`userName eq ""`, Query{Empty: true}},
	}
	for _, tc := range tests {
		got, err := ParseFilter(tc.filter)
		if err != nil {
			t.Errorf("ParseFilter(%s): %v", tc.filter, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseFilter(%s) (-want +got):\n%s", tc.filter, diff)
		}
	}
}

func TestParseFilterRefuses(t *testing.T) {
	for _, f := range []string{
		`userName`, `userName eq`, `userName eq "open`, `userName eq "\x"`, `eq "a"`, `"a" eq "a"`,
		`userName ne "a"`, `userName co "a"`, `userName sw "a"`, `userName pr`, `meta.created gt "2020-01-01"`,
		`userName eq "a" or userName eq "b"`, `not (userName eq "a")`, `userName eq "a" and`,
		`(userName eq "a"`, `userName eq "a")`, `userName eq "a" userName eq "b"`,
		`title eq "x"`, `name.givenName eq "x"`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"`,
		`emails.type eq "work"`, `emails[type eq "work"]`, `emails[type eq "work"] eq "x"`, `emails[value eq "x"].value eq "x"`,
		`emails[type eq "work"`, `active eq "true"`, `active eq 1`, `userName eq true`, `userName eq 7`, `externalId eq null`,
		`userName [ eq "a"`, `((((((((((((((((((userName eq "a"))))))))))))))))))`,
	} {
		_, err := ParseFilter(f)
		e, ok := errors.AsType[*Error](err)
		if !ok || e.Status != http.StatusBadRequest || e.ScimType != TypeInvalidFilter {
			t.Errorf("ParseFilter(%s) = %v, want invalidFilter", f, err)
		}
	}
}

// FuzzParseFilter: any input parses or is refused with invalidFilter,
// never a panic or another error.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`userName eq "bjensen"`, `emails[type eq "work"].value eq "a@b.c"`,
		`(userName eq "a") and (externalId eq "x" and active eq true)`, `userName co "x"`, `title eq "x"`, `"`, `((`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseFilter(s)
		if err != nil {
			e, ok := errors.AsType[*Error](err)
			if !ok || e.Status != http.StatusBadRequest || e.ScimType != TypeInvalidFilter || len(e.Detail) > 512 {
				t.Fatalf("ParseFilter(%q) = %v, want a short invalidFilter", s, err)
			}
			return
		}
		if q.Filter.Kind != "" {
			t.Fatalf("ParseFilter(%q) set the kind", s)
		}
		again, err := ParseFilter(s)
		if err != nil || again != q {
			t.Fatalf("ParseFilter(%q) is not deterministic", s)
		}
	})
}
