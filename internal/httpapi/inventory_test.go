package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/sdk/admin"
)

// inventoryFixture registers, through the admin API:
//
//	invoice-bot  alice's (seed); alice is then deactivated, no credentials  orphaned, no_credentials
//	legacy       bob's; a secret without expiry, a key expiring in 3 days   client_secret, secret_without_expiry, credential_expiring
//	shared       alice's and bob's; a key without expiry, DPoP required     owner_deactivated
func inventoryFixture(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	e.seed(t)
	if _, err := e.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Email: "bob@example.com", DisplayName: "Bob"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []admin.CreateAgentRequest{
		{Name: "legacy", Purpose: "Old batch job", Owners: []string{"bob@example.com"}, ActionClasses: []string{"payments", "read"}},
		{Name: "shared", Purpose: "Shared helper", Owners: []string{"alice@example.com", "bob@example.com"}, RequireDPoP: true},
	} {
		// Ids order the inventory and are random within a millisecond:
		// create each agent in a later one, so that the order is the
		// creation order.
		time.Sleep(2 * time.Millisecond)
		if _, err := e.admin.CreateAgent(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.admin.CreateClientSecret(ctx, "legacy", admin.CreateClientSecretRequest{}); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(3 * 24 * time.Hour).UTC().Truncate(time.Second)
	for _, k := range []struct {
		agent string
		exp   *time.Time
	}{{"legacy", &soon}, {"shared", nil}} {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.admin.AddClientKey(ctx, k.agent, admin.AddClientKeyRequest{PublicKey: publicPEM(t, ec.Public()), ExpiresAt: k.exp}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.admin.DeactivateOwner(ctx, "alice@example.com", admin.TransitionRequest{Reason: "left"}); err != nil {
		t.Fatal(err)
	}
}

func inventoryCodes(items []admin.InventoryItem) map[string][]string {
	out := map[string][]string{}
	for _, it := range items {
		codes := []string{}
		for _, f := range it.Findings {
			codes = append(codes, f.Code)
		}
		out[it.Name] = codes
	}
	return out
}

func inventoryNames(items []admin.InventoryItem) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}

func TestInventoryThroughSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	inventoryFixture(t, e)
	before := e.snapshot(t)

	l, err := e.admin.Inventory(ctx, admin.InventoryParams{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"invoice-bot": {admin.FindingOrphaned, admin.FindingNoCredentials},
		"legacy":      {admin.FindingClientSecret, admin.FindingSecretWithoutExpiry, admin.FindingCredentialExpiring},
		"shared":      {admin.FindingOwnerDeactivated},
	}
	if diff := cmp.Diff(want, inventoryCodes(l.Items)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if l.NextPageToken != "" || len(l.Items) != 3 || l.Items[0].Name != "invoice-bot" {
		t.Fatalf("inventory = %v, next %q", inventoryNames(l.Items), l.NextPageToken)
	}
	bot, legacy, shared := l.Items[0], l.Items[1], l.Items[2]
	if !bot.Orphaned || bot.RiskTier != "low" || bot.Purpose != "Reconciles invoices" || bot.SPIFFEID != "spiffe://example.org/agent/invoice-bot" ||
		!cmp.Equal(bot.Owners, []admin.InventoryOwner{{ID: bot.Owners[0].ID, Kind: "person", Email: "alice@example.com", DisplayName: "Alice", State: "deactivated"}}) {
		t.Errorf("invoice-bot = %+v", bot)
	}
	if legacy.RiskTier != "high" || !cmp.Equal(legacy.ActionClasses, []admin.InventoryActionClass{{Name: "payments", RiskTier: "high"}, {Name: "read", RiskTier: "low"}}) {
		t.Errorf("legacy classes = %+v, tier %q", legacy.ActionClasses, legacy.RiskTier)
	}
	cs, ck := legacy.Credentials.ClientSecrets, legacy.Credentials.ClientKeys
	if cs.Count != 1 || cs.WithoutExpiry != 1 || cs.OldestCreatedAt == nil || cs.SoonestExpiry != nil {
		t.Errorf("legacy secrets = %+v", cs)
	}
	if ck.Count != 1 || ck.SoonestExpiry == nil || time.Until(*ck.SoonestExpiry) > 3*24*time.Hour {
		t.Errorf("legacy keys = %+v", ck)
	}
	if !shared.Credentials.RequireDPoP || shared.Credentials.ClientKeys.Count != 1 || shared.Orphaned || len(shared.Owners) != 2 {
		t.Errorf("shared = %+v", shared)
	}
	for _, it := range l.Items {
		for _, f := range it.Findings {
			if f.Message == "" {
				t.Errorf("%s: finding %s has no message", it.Name, f.Code)
			}
		}
	}

	// The wire shape: every documented field, lists never null.
	status, body := e.get(t, "/v1/inventory?page_size=1")
	if status != http.StatusOK {
		t.Fatalf("GET /v1/inventory: %d %s", status, body)
	}
	var raw struct {
		Items         []map[string]json.RawMessage `json:"items"`
		NextPageToken string                       `json:"next_page_token"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Items) != 1 || raw.NextPageToken == "" {
		t.Fatalf("page of 1: %v: %s", err, body)
	}
	for _, k := range []string{"id", "name", "spiffe_id", "state", "purpose", "created_at", "expired", "owners", "orphaned",
		"action_classes", "risk_tier", "credentials", "live_instances", "active_grants", "findings"} {
		if v, ok := raw.Items[0][k]; !ok || string(v) == "null" {
			t.Errorf("item lacks %q: %s", k, body)
		}
	}
	var creds map[string]json.RawMessage
	if err := json.Unmarshal(raw.Items[0]["credentials"], &creds); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"client_keys", "client_secrets", "attestation_rules", "selectors", "require_dpop"} {
		if _, ok := creds[k]; !ok {
			t.Errorf("credentials lack %q: %s", k, raw.Items[0]["credentials"])
		}
	}
	e.unchangedSince(t, before)
}

func (e *env) unchangedSince(t *testing.T, before snapshot) {
	t.Helper()
	if diff := cmp.Diff(before, e.snapshot(t)); diff != "" {
		t.Errorf("the inventory changed the store (-before +after):\n%s", diff)
	}
}

func TestInventoryFiltersAndPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	inventoryFixture(t, e)

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"finding=orphaned", []string{"invoice-bot"}},
		{"finding=client_secret,owner_deactivated", []string{"legacy", "shared"}},
		{"finding=owner_deactivated&finding=no_credentials", []string{"invoice-bot", "shared"}},
		{"finding=suspended", []string{}},
		{"owner=bob@example.com", []string{"legacy", "shared"}},
		{"owner=alice@example.com&finding=owner_deactivated", []string{"shared"}},
		{"state=active", []string{"invoice-bot", "legacy", "shared"}},
		{"state=suspended", []string{}},
	} {
		status, body := e.get(t, "/v1/inventory?"+tc.query)
		var l admin.List[admin.InventoryItem]
		if status != http.StatusOK || json.Unmarshal(body, &l) != nil || l.Items == nil {
			t.Errorf("%s: %d %s", tc.query, status, body)
			continue
		}
		if diff := cmp.Diff(tc.want, inventoryNames(l.Items)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.query, diff)
		}
	}

	// A narrower window: the key expiring in 3 days is not within 1 day.
	l, err := e.admin.Inventory(ctx, admin.InventoryParams{ExpiringWithin: 24 * time.Hour, Findings: []string{admin.FindingCredentialExpiring}})
	if err != nil || len(l.Items) != 0 {
		t.Errorf("credential_expiring within 1 day = %v, %v", inventoryNames(l.Items), err)
	}
	status, body := e.get(t, "/v1/inventory?finding=credential_expiring&expiring_within=4d")
	if status != http.StatusOK || !json.Valid(body) {
		t.Fatalf("expiring_within=4d: %d %s", status, body)
	}
	var l4 admin.List[admin.InventoryItem]
	if err := json.Unmarshal(body, &l4); err != nil || !cmp.Equal(inventoryNames(l4.Items), []string{"legacy"}) {
		t.Errorf("credential_expiring within 4 days = %s", body)
	}

	// Pages of 1 walk every agent once, in order.
	var got []string
	for tok, pages := "", 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pages do not end")
		}
		l, err := e.admin.Inventory(ctx, admin.InventoryParams{PageSize: 1, PageToken: tok})
		if err != nil || len(l.Items) > 1 {
			t.Fatalf("page %d = %v, %v", pages, inventoryNames(l.Items), err)
		}
		got = append(got, inventoryNames(l.Items)...)
		if tok = l.NextPageToken; tok == "" {
			break
		}
	}
	if diff := cmp.Diff([]string{"invoice-bot", "legacy", "shared"}, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

func TestInventoryRefusals(t *testing.T) {
	e := newEnv(t)
	inventoryFixture(t, e)
	before := e.snapshot(t)
	for _, tc := range []struct {
		query  string
		token  string
		status int
		typ    string
		field  string
	}{
		{"finding=bogus", e.token, http.StatusBadRequest, admin.ProblemBadRequest, "finding"},
		{"finding=orphaned,Orphaned", e.token, http.StatusBadRequest, admin.ProblemBadRequest, "finding"},
		{"state=asleep", e.token, http.StatusBadRequest, admin.ProblemBadRequest, "state"},
		{"expiring_within=forever", e.token, http.StatusBadRequest, admin.ProblemBadRequest, "expiring_within"},
		{"expiring_within=-1h", e.token, http.StatusBadRequest, admin.ProblemBadRequest, "expiring_within"},
		{"expiring_within=400d", e.token, http.StatusBadRequest, admin.ProblemBadRequest, "expiring_within"},
		{"page_size=0", e.token, http.StatusBadRequest, admin.ProblemBadRequest, "page_size"},
		{"page_token=garbage", e.token, http.StatusBadRequest, "", "page_token"},
		{"owner=not%20an%20owner", e.token, http.StatusBadRequest, admin.ProblemValidation, "owner"},
		{"owner=nobody@example.com", e.token, http.StatusNotFound, admin.ProblemNotFound, ""},
	} {
		status, _, p := e.raw(t, http.MethodGet, "/v1/inventory?"+tc.query, tc.token, "", nil, nil)
		if status != tc.status || (tc.typ != "" && p.Type != tc.typ) || p.Field != tc.field {
			t.Errorf("%q: %d %+v, want %d %s field %q", tc.query, status, p, tc.status, tc.typ, tc.field)
		}
	}
	e.unchangedSince(t, before)

	// Admin only: an auditor token is forbidden (and the refusal is
	// recorded), no token unauthenticated.
	if status, _, p := e.raw(t, http.MethodGet, "/v1/inventory", e.auditor, "", nil, nil); status != http.StatusForbidden || p.Type != admin.ProblemForbidden {
		t.Errorf("auditor: %d %+v", status, p)
	}
	if status, _, p := e.raw(t, http.MethodGet, "/v1/inventory", "", "", nil, nil); status != http.StatusUnauthorized || p.Type != admin.ProblemUnauthenticated {
		t.Errorf("no token: %d %+v", status, p)
	}

	// The SDK surfaces the problem.
	c, err := admin.New(e.url, e.auditor)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Inventory(context.Background(), admin.InventoryParams{})
	var p *admin.Problem
	if !errors.As(err, &p) || p.Status != http.StatusForbidden {
		t.Errorf("auditor Inventory = %v", err)
	}
	_, err = e.admin.Inventory(context.Background(), admin.InventoryParams{Findings: []string{"bogus"}})
	if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Field != "finding" {
		t.Errorf("Inventory(bogus finding) = %v", err)
	}
}

// TestInventoryFindingCodesMatchSDK fails when the registry's finding codes
// and the SDK's constants differ: the codes are a contract (ADR 0024).
func TestInventoryFindingCodesMatchSDK(t *testing.T) {
	sdk := []string{admin.FindingOrphaned, admin.FindingOwnerDeactivated, admin.FindingClientSecret,
		admin.FindingSecretWithoutExpiry, admin.FindingCredentialExpiring, admin.FindingAgentExpiring,
		admin.FindingAgentExpired, admin.FindingSuspended, admin.FindingNoCredentials, admin.FindingUnknownActionClass}
	var got []string
	for _, c := range identity.FindingCodes() {
		got = append(got, string(c))
	}
	if diff := cmp.Diff(sdk, got); diff != "" {
		t.Errorf("finding codes (-sdk +identity):\n%s", diff)
	}
}
