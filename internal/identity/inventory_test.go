package identity

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
)

// inventoryAll pages through the whole inventory with p, checking that no
// page exceeds its size.
func (e *env) inventoryAll(p InventoryParams) []InventoryItem {
	e.t.Helper()
	var all []InventoryItem
	for pages := 0; ; pages++ {
		if pages > 100 {
			e.t.Fatal("inventory does not end")
		}
		items, next, err := e.svc.Inventory(e.ctx, p)
		if err != nil {
			e.t.Fatalf("Inventory(%+v): %v", p, err)
		}
		if p.Page.PageSize > 0 && len(items) > p.Page.PageSize {
			e.t.Fatalf("page of %d items, asked %d", len(items), p.Page.PageSize)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		p.Page.PageToken = next
	}
}

// findingsByName is each item's finding codes by agent name.
func findingsByName(items []InventoryItem) map[string][]FindingCode {
	out := map[string][]FindingCode{}
	for _, it := range items {
		codes := []FindingCode{}
		for _, f := range it.Findings {
			codes = append(codes, f.Code)
			if f.Message == "" {
				panic("finding " + string(f.Code) + " without a message")
			}
		}
		out[it.Agent.Name] = codes
	}
	return out
}

func names(items []InventoryItem) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.Agent.Name)
	}
	return out
}

// inventoryFixture registers agents that between them have every finding:
//
//	orphan    owned by alice alone; alice is deactivated      orphaned
//	shared    owned by alice and bob                          owner_deactivated
//	secretive bob's; a secret without expiry, a key expiring   client_secret, secret_without_expiry, credential_expiring
//	keyed     bob's; a key, an attestation rule, classes       (none)
//	idle      bob's; nothing to authenticate with              no_credentials
//	paused    bob's; suspended                                 suspended
//	ending    bob's; expires in 5 days, a selector             agent_expiring
//	odd       bob's; an unregistered action class, a selector  unknown_action_class
//	gone      bob's; deprovisioned with a secret               (none)
func inventoryFixture(e *env) (alice, bob store.Owner) {
	e.t.Helper()
	ctx, t, o := e.ctx, e.t, testOrigin()
	alice, bob = e.owner("alice@example.org"), e.owner("bob@example.org")
	create := func(p CreateAgentParams) store.Agent {
		t.Helper()
		e.clk.Advance(time.Millisecond)
		if p.Purpose == "" {
			p.Purpose = "inventory test " + p.Name
		}
		if p.Owners == nil {
			p.Owners = []string{bob.ID}
		}
		a, err := e.svc.CreateAgent(ctx, o, p)
		if err != nil {
			t.Fatalf("create %s: %v", p.Name, err)
		}
		return a
	}
	key := func(ref, kid string, exp time.Time) {
		t.Helper()
		if _, err := e.svc.AddClientKey(ctx, o, AddClientKeyParams{Ref: ref, PublicKey: freshP256JWK(t, kid), ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	secret := func(ref string, exp time.Time) {
		t.Helper()
		if _, _, err := e.svc.CreateClientSecret(ctx, o, CreateClientSecretParams{Ref: ref, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	now := e.clk.Now()
	rule := []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments"}}}

	create(CreateAgentParams{Name: "orphan", Owners: []string{alice.ID}, AttestationRules: rule})
	create(CreateAgentParams{Name: "shared", Owners: []string{alice.ID, bob.ID}, AttestationRules: rule})
	create(CreateAgentParams{Name: "secretive"})
	secret("secretive", time.Time{})
	key("secretive", "soon", now.Add(3*24*time.Hour))
	key("secretive", "later", now.Add(60*24*time.Hour))
	keyed := create(CreateAgentParams{Name: "keyed", ActionClasses: []string{"read", "write"}, AttestationRules: rule, RequireDPoP: true})
	key("keyed", "k1", time.Time{})
	create(CreateAgentParams{Name: "idle", ActionClasses: []string{"read"}})
	create(CreateAgentParams{Name: "paused", AttestationRules: rule})
	if _, err := e.svc.SuspendAgent(ctx, o, TransitionParams{Ref: "paused"}); err != nil {
		t.Fatal(err)
	}
	create(CreateAgentParams{Name: "ending", ExpiresAt: now.Add(5 * 24 * time.Hour), Selectors: []string{"unix:uid:1000"}})
	create(CreateAgentParams{Name: "odd", ActionClasses: []string{"payments", "telepathy"}, Selectors: []string{"unix:uid:1001"}})
	create(CreateAgentParams{Name: "gone"})
	secret("gone", time.Time{})
	if _, err := e.svc.DeprovisionAgent(ctx, o, TransitionParams{Ref: "gone"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DeactivateOwner(ctx, o, TransitionParams{Ref: alice.ID}); err != nil {
		t.Fatal(err)
	}

	// keyed has two live instances, a revoked one, and an active and an
	// expired grant.
	if err := e.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for i, revoked := range []bool{false, false, true} {
			id, err := recordid.New(recordid.Instance, now, rand.Reader)
			if err != nil {
				return err
			}
			in := store.Instance{ID: id, AgentID: keyed.ID, Method: "kubernetes", Attestor: "prod", Key: "pod-" + string(rune('a'+i)),
				FirstSeenAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
			if revoked {
				in.RevokedAt, in.RevokedBy = now, "adm_tester"
			}
			if _, err := tx.CreateInstance(ctx, in); err != nil {
				return err
			}
		}
		for _, exp := range []time.Time{now.Add(24 * time.Hour), now.Add(time.Minute)} {
			id, err := recordid.New(recordid.Grant, now, rand.Reader)
			if err != nil {
				return err
			}
			if _, err := tx.CreateGrant(ctx, store.Grant{ID: id, SubjectIssuer: "https://idp.example.org", Subject: "carol",
				AgentID: keyed.ID, ExpiresAt: exp, MaxDepth: 1, CreatedByType: "admin", CreatedBy: "adm_tester", CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(2 * time.Minute) // the second grant has expired
	return alice, bob
}

func TestInventoryFindings(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		_, bob := inventoryFixture(e)
		before := e.snapshot()

		items := e.inventoryAll(InventoryParams{})
		want := map[string][]FindingCode{
			"orphan":    {FindingOrphaned},
			"shared":    {FindingOwnerDeactivated},
			"secretive": {FindingClientSecret, FindingSecretWithoutExpiry, FindingCredentialExpiring},
			"keyed":     {},
			"idle":      {FindingNoCredentials},
			"paused":    {FindingSuspended},
			"ending":    {FindingAgentExpiring},
			"odd":       {FindingUnknownActionClass},
			"gone":      {},
		}
		if diff := cmp.Diff(want, findingsByName(items)); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"orphan", "shared", "secretive", "keyed", "idle", "paused", "ending", "odd", "gone"}, names(items)); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		byName := map[string]InventoryItem{}
		for _, it := range items {
			byName[it.Agent.Name] = it
		}

		// What each item says beyond its findings.
		keyed := byName["keyed"]
		if keyed.RiskTier != "medium" || !cmp.Equal(keyed.ActionClasses, []ClassTier{{Name: "read", RiskTier: "low"}, {Name: "write", RiskTier: "medium"}}) {
			t.Errorf("keyed classes = %+v, tier %q", keyed.ActionClasses, keyed.RiskTier)
		}
		if keyed.ClientKeys.Count != 1 || keyed.ClientKeys.WithoutExpiry != 1 || !keyed.ClientKeys.SoonestExpiry.IsZero() {
			t.Errorf("keyed keys = %+v", keyed.ClientKeys)
		}
		if got, want := keyed.LiveInstances, (BoundedCount{N: 2}); got != want {
			t.Errorf("keyed live instances = %+v, want %+v", got, want)
		}
		if got, want := keyed.ActiveGrants, (BoundedCount{N: 1}); got != want {
			t.Errorf("keyed active grants = %+v, want %+v", got, want)
		}
		sec := byName["secretive"]
		if sec.ClientSecrets.Count != 1 || sec.ClientSecrets.WithoutExpiry != 1 || sec.ClientSecrets.OldestCreatedAt.IsZero() {
			t.Errorf("secretive secrets = %+v", sec.ClientSecrets)
		}
		if sec.ClientKeys.Count != 2 || sec.ClientKeys.SoonestExpiry.IsZero() ||
			sec.ClientKeys.SoonestExpiry.Sub(e.clk.Now()) > 3*24*time.Hour {
			t.Errorf("secretive keys = %+v", sec.ClientKeys)
		}
		if odd := byName["odd"]; odd.RiskTier != "high" || odd.ActionClasses[1] != (ClassTier{Name: "telepathy"}) {
			t.Errorf("odd = %+v, tier %q", odd.ActionClasses, odd.RiskTier)
		}
		if idle := byName["idle"]; idle.RiskTier != "low" {
			t.Errorf("idle tier = %q", idle.RiskTier)
		}
		if n := byName["ending"]; n.RiskTier != "" || len(n.ActionClasses) != 0 {
			t.Errorf("ending classes = %+v, tier %q", n.ActionClasses, n.RiskTier)
		}
		orphan := byName["orphan"]
		if !orphan.Agent.Orphaned || len(orphan.Owners) != 1 || orphan.Owners[0].State != store.OwnerDeactivated ||
			!strings.Contains(orphan.Findings[0].Message, "alice@example.org") {
			t.Errorf("orphan = %+v", orphan)
		}
		shared := byName["shared"]
		if shared.Agent.Orphaned || len(shared.Owners) != 2 || shared.Owners[1].ID != bob.ID || shared.Owners[1].State != store.OwnerActive {
			t.Errorf("shared owners = %+v", shared.Owners)
		}

		// A narrower window drops the expiring findings; a wider one adds
		// the key expiring in 60 days (but it is the soonest that is named).
		narrow := findingsByName(e.inventoryAll(InventoryParams{ExpiringWithin: 48 * time.Hour}))
		if got := narrow["secretive"]; slices.Contains(got, FindingCredentialExpiring) {
			t.Errorf("48h window: secretive findings %v", got)
		}
		if got := narrow["ending"]; len(got) != 0 {
			t.Errorf("48h window: ending findings %v", got)
		}

		// Time passes: ending expires; the soon key expires (and no longer
		// counts), the later one is not yet within the default window.
		e.clk.Advance(6 * 24 * time.Hour)
		later := findingsByName(e.inventoryAll(InventoryParams{}))
		if diff := cmp.Diff([]FindingCode{FindingAgentExpired}, later["ending"]); diff != "" {
			t.Errorf("ending after its expiry (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]FindingCode{FindingClientSecret, FindingSecretWithoutExpiry}, later["secretive"]); diff != "" {
			t.Errorf("secretive after the key's expiry (-want +got):\n%s", diff)
		}
		for _, it := range e.inventoryAll(InventoryParams{Findings: []FindingCode{FindingClientSecret}}) {
			if it.Agent.Name == "secretive" && (it.ClientKeys.Count != 1 || it.ClientKeys.Expired != 1) {
				t.Errorf("secretive keys after expiry = %+v", it.ClientKeys)
			}
		}
		e.unchanged(before, "Inventory")
	})
}

func TestInventoryFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		alice, bob := inventoryFixture(e)
		for _, tc := range []struct {
			name string
			p    InventoryParams
			want []string
		}{
			{"one finding", InventoryParams{Findings: []FindingCode{FindingOrphaned}}, []string{"orphan"}},
			{"any of two findings", InventoryParams{Findings: []FindingCode{FindingSuspended, FindingNoCredentials}}, []string{"idle", "paused"}},
			{"state", InventoryParams{State: store.AgentDeprovisioned}, []string{"gone"}},
			{"owner by email", InventoryParams{Owner: "ALICE@example.org"}, []string{"orphan", "shared"}},
			{"owner by id and finding", InventoryParams{Owner: bob.ID, Findings: []FindingCode{FindingOwnerDeactivated, FindingOrphaned}}, []string{"shared"}},
			{"owner and state", InventoryParams{Owner: alice.ID, State: store.AgentSuspended}, []string{}},
			{"pages of 2, filtered", InventoryParams{Findings: []FindingCode{FindingClientSecret, FindingNoCredentials, FindingSuspended, FindingUnknownActionClass},
				Page: store.Page{PageSize: 2}}, []string{"secretive", "idle", "paused", "odd"}},
			{"pages of 1", InventoryParams{State: store.AgentActive, Page: store.Page{PageSize: 1}},
				[]string{"orphan", "shared", "secretive", "keyed", "idle", "ending", "odd"}},
		} {
			if diff := cmp.Diff(tc.want, names(e.inventoryAll(tc.p))); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, diff)
			}
		}

		// A page of 2 holds 2 items and a token; the token goes on.
		items, next, err := e.svc.Inventory(e.ctx, InventoryParams{Page: store.Page{PageSize: 2}})
		if err != nil || len(items) != 2 || next == "" {
			t.Fatalf("first page = %d items, %q, %v", len(items), next, err)
		}
		items, _, err = e.svc.Inventory(e.ctx, InventoryParams{Page: store.Page{PageSize: 2, PageToken: next}})
		if err != nil || len(items) != 2 || items[0].Agent.Name != "secretive" {
			t.Fatalf("second page = %v, %v", names(items), err)
		}

		// Bad parameters.
		for _, tc := range []struct {
			name  string
			p     InventoryParams
			field string
			want  error
		}{
			{"bad state", InventoryParams{State: "asleep"}, "state", nil},
			{"bad owner ref", InventoryParams{Owner: "not an owner"}, "owner", nil},
			{"negative window", InventoryParams{ExpiringWithin: -time.Hour}, "expiring_within", nil},
			{"huge window", InventoryParams{ExpiringWithin: MaxExpiringWithin + time.Second}, "expiring_within", nil},
			{"bad page token", InventoryParams{Page: store.Page{PageToken: "garbage"}}, "page_token", nil},
			{"unknown owner", InventoryParams{Owner: "nobody@example.org"}, "", ErrNotFound},
		} {
			_, _, err := e.svc.Inventory(e.ctx, tc.p)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Errorf("%s: error = %v, want %v", tc.name, err, tc.want)
				}
				continue
			}
			checkValidation(t, err, tc.field)
		}
	})
}

func TestInventoryCountsAreCapped(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) { testInventoryCountsAreCapped(t, newEnv(t, st)) })
}

func testInventoryCountsAreCapped(t *testing.T, e *env) {
	own := e.owner("o@example.org")
	a := e.agent("busy", own.ID)
	now := e.clk.Now()
	if err := e.st.Update(e.ctx, func(ctx context.Context, tx store.Tx) error {
		for i := range InventoryCountCap + 1 {
			id, err := recordid.New(recordid.Instance, now, rand.Reader)
			if err != nil {
				return err
			}
			if _, err := tx.CreateInstance(ctx, store.Instance{ID: id, AgentID: a.ID, Method: "kubernetes", Attestor: "prod",
				Key: "pod-" + id + string(rune('a'+i%26)), FirstSeenAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	items := e.inventoryAll(InventoryParams{})
	if len(items) != 1 || items[0].LiveInstances != (BoundedCount{N: InventoryCountCap, Capped: true}) {
		t.Errorf("live instances = %+v", items[0].LiveInstances)
	}
}

func TestParseFindingCodes(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []FindingCode
		ok   bool
	}{
		{nil, nil, true},
		{[]string{""}, nil, true},
		{[]string{"orphaned"}, []FindingCode{FindingOrphaned}, true},
		{[]string{"suspended, orphaned", "orphaned,,"}, []FindingCode{FindingOrphaned, FindingSuspended}, true},
		{[]string{"client_secret", "no_credentials,unknown_action_class"}, []FindingCode{FindingClientSecret, FindingNoCredentials, FindingUnknownActionClass}, true},
		{[]string{"Orphaned"}, nil, false},
		{[]string{"orphaned,stale"}, nil, false},
		{[]string{strings.Repeat("orphaned,", maxFindingValues+1)}, nil, false},
	} {
		got, err := ParseFindingCodes(tc.in)
		if !tc.ok {
			checkValidation(t, err, "finding")
			continue
		}
		if err != nil || !cmp.Equal(got, tc.want) {
			t.Errorf("ParseFindingCodes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseExpiringWithin(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", DefaultExpiringWithin},
		{"14d", 14 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"366d", MaxExpiringWithin},
		{"72h", 72 * time.Hour},
		{"90m", 90 * time.Minute},
		{"336h0m0s", 14 * 24 * time.Hour},
		{"1s", time.Second},
	} {
		got, err := ParseExpiringWithin(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseExpiringWithin(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"0", "0d", "-1h", "-3d", "+3d", "367d", "8785h", "d", "1.5d", "3 d", " 3d", "3w", "1ms", "soon",
		"99999999999999999999d", strings.Repeat("1", 40) + "h"} {
		_, err := ParseExpiringWithin(in)
		checkValidation(t, err, "expiring_within")
	}
}

// TestInventoryScanIsBounded: filtering by finding reads at most
// MaxInventoryScan agents per call, returning a short (here empty) page
// with a token that goes on.
func TestInventoryScanIsBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		own := e.owner("o@example.org")
		rule := []store.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments"}}}
		for i := range MaxInventoryScan + 1 {
			if _, err := e.svc.CreateAgent(e.ctx, testOrigin(), CreateAgentParams{Name: "a" + strconv.Itoa(1000+i),
				Owners: []string{own.ID}, Purpose: "p", AttestationRules: rule}); err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(time.Millisecond)
		}
		last := "a" + strconv.Itoa(1000+MaxInventoryScan)
		if _, err := e.svc.SuspendAgent(e.ctx, testOrigin(), TransitionParams{Ref: last}); err != nil {
			t.Fatal(err)
		}
		p := InventoryParams{Findings: []FindingCode{FindingSuspended}, Page: store.Page{PageSize: 10}}
		items, next, err := e.svc.Inventory(e.ctx, p)
		if err != nil || len(items) != 0 || next == "" {
			t.Fatalf("first call = %v, %q, %v; want no items and a token", names(items), next, err)
		}
		p.Page.PageToken = next
		items, next, err = e.svc.Inventory(e.ctx, p)
		if err != nil || !cmp.Equal(names(items), []string{last}) || next != "" {
			t.Fatalf("second call = %v, %q, %v", names(items), next, err)
		}
	})
}
