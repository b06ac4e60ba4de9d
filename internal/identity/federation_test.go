package identity

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
)

func TestNormalizeFederatesWith(t *testing.T) {
	tooMany := make([]string, MaxFederatesWith+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("td%d.example", i)
	}
	for name, tc := range map[string]struct {
		in    []string
		want  []string
		field string
	}{
		"nil":              {nil, []string{}, ""},
		"sorted, deduped":  {[]string{"b.example", "a.example", "b.example"}, []string{"a.example", "b.example"}, ""},
		"own trust domain": {[]string{"a.example", "example.org"}, nil, "federates_with[1]"},
		"upper case":       {[]string{"Partner.example"}, nil, "federates_with[0]"},
		"with a port":      {[]string{"partner.example:443"}, nil, "federates_with[0]"},
		"empty":            {[]string{""}, nil, "federates_with[0]"},
		"a SPIFFE ID":      {[]string{"spiffe://partner.example"}, nil, "federates_with[0]"},
		"too long":         {[]string{strings.Repeat("a", MaxTrustDomainLen+1)}, nil, "federates_with[0]"},
		"too many":         {tooMany, nil, "federates_with"},
	} {
		got, err := NormalizeFederatesWith(tc.in, "example.org")
		if tc.field == "" {
			if err != nil || !cmp.Equal(got, tc.want) {
				t.Errorf("%s: NormalizeFederatesWith(%q) = %q, %v; want %q", name, tc.in, got, err, tc.want)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: NormalizeFederatesWith(%q) error = %v, want a ValidationError for %s", name, tc.in, err, tc.field)
		}
	}
}

// TestAgentFederatesWith sets, changes and clears the foreign trust
// domains an agent federates with, recording each change.
func TestAgentFederatesWith(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		alice := e.owner("alice@example.com")
		a := e.agent("federated", alice.ID)
		if a.FederatesWith != nil {
			t.Fatalf("new agent federates with %q", a.FederatesWith)
		}
		before := e.head()
		tds := []string{"partner.example", "acme.example"}
		got, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.Name, FederatesWith: &tds})
		if err != nil || !cmp.Equal(got.FederatesWith, []string{"acme.example", "partner.example"}) || got.Version != 2 {
			t.Fatalf("set: %+v, %v", got, err)
		}
		evs := e.eventsAfter(before)
		if len(evs) != 1 || !cmp.Equal(evs[0].Details["changed"], []any{FieldFederatesWith}) ||
			!cmp.Equal(evs[0].Details[FieldFederatesWith], []any{"acme.example", "partner.example"}) {
			t.Errorf("set: events %+v", evs)
		}

		// The same set in another order: no change.
		snap := e.snapshot()
		same := []string{"partner.example", "acme.example", "acme.example"}
		if _, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, FederatesWith: &same}); err != nil {
			t.Fatal(err)
		}
		e.unchanged(snap, "same federation")

		cleared, err := e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, FederatesWith: &[]string{}})
		if err != nil || cleared.FederatesWith != nil || cleared.Version != 3 {
			t.Fatalf("clear: %+v, %v", cleared, err)
		}

		snap = e.snapshot()
		own := []string{"example.org"}
		_, err = e.svc.UpdateAgent(e.ctx, testOrigin(), UpdateAgentParams{Ref: a.ID, FederatesWith: &own})
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "federates_with[0]" {
			t.Errorf("own trust domain: %v", err)
		}
		_, err = e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: "x", Owners: []string{alice.ID}, Purpose: "p",
			FederatesWith: []string{"Bad"}})
		if !errors.As(err, &ve) || ve.Field != "federates_with[0]" {
			t.Errorf("create with a bad trust domain: %v", err)
		}
		e.unchanged(snap, "refused federation")
	})
}
