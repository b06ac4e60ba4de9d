package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

// TestInventoryAgainstServer drives agentid inventory against a real
// server: the table and its summary, -o json, the filters, paging, --fail-on
// and the usage errors.
func TestInventoryAgainstServer(t *testing.T) {
	url, tok := realServer(t, nil)
	ctx := t.Context()
	cl, alice := newOwner(t, url, tok, "alice@example.org")
	if _, err := cl.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "team", Email: "payments@example.org", DisplayName: "Payments"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []admin.CreateAgentRequest{
		{Name: "invoice-bot", Owners: []string{alice}, Purpose: "Reconciles invoices", ActionClasses: []string{"read"}},
		{Name: "legacy-sync", Owners: []string{"payments@example.org"}, Purpose: "Nightly sync", ActionClasses: []string{"payments", "read"}},
		{Name: "helper", Owners: []string{alice, "payments@example.org"}, Purpose: "Helps", RequireDPoP: true,
			AttestationRules: []admin.AttestationRule{{Attestor: "prod", Matchers: []string{"k8s:ns:payments"}}}},
	} {
		if _, err := cl.CreateAgent(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.CreateClientSecret(ctx, "legacy-sync", admin.CreateClientSecretRequest{}); err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(48 * time.Hour)
	if _, err := cl.AddClientKey(ctx, "legacy-sync", admin.AddClientKeyRequest{
		PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), ExpiresAt: &soon,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeactivateOwner(ctx, alice, admin.TransitionRequest{Reason: "left"}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) result { return runAs(t, url, tok, args...) }

	r := run("inventory")
	wantCode(t, r, ExitOK)
	golden(t, "inventory", r.stdout)

	// -o json prints every item as one array, following the pages.
	r = run("inventory", "-o", "json", "--page-size", "1")
	wantCode(t, r, ExitOK)
	var items []admin.InventoryItem
	if err := json.Unmarshal([]byte(r.stdout), &items); err != nil {
		t.Fatalf("inventory -o json: %v\n%s", err, r.stdout)
	}
	if len(items) != 3 || items[1].Name != "legacy-sync" || items[1].RiskTier != "high" ||
		items[1].Credentials.ClientSecrets.WithoutExpiry != 1 || items[1].Credentials.ClientKeys.SoonestExpiry == nil {
		t.Errorf("json items = %+v", items)
	}

	r = run("inventory", "--finding", "orphaned,owner_deactivated")
	wantCode(t, r, ExitOK)
	contains(t, "inventory --finding", r.stdout, "invoice-bot", "helper", "2 agents, 2 with findings: orphaned 1, owner_deactivated 1, no_credentials 1.")
	if strings.Contains(r.stdout, "legacy-sync") {
		t.Errorf("--finding orphaned lists legacy-sync:\n%s", r.stdout)
	}
	r = run("inventory", "--owner", "payments@example.org", "--expiring-within", "1d", "-o", "json")
	wantCode(t, r, ExitOK)
	if err := json.Unmarshal([]byte(r.stdout), &items); err != nil || len(items) != 2 {
		t.Fatalf("--owner: %v\n%s", err, r.stdout)
	}
	for _, f := range items[0].Findings {
		if f.Code == admin.FindingCredentialExpiring {
			t.Errorf("a key expiring in 2 days is credential_expiring within 1d: %+v", items[0])
		}
	}
	r = run("inventory", "--state", "suspended")
	wantCode(t, r, ExitOK)
	contains(t, "inventory --state suspended", r.stdout, "NAME", "0 agents, no findings.")

	// --fail-on: exit 1 when a listed finding is present, 0 otherwise.
	r = run("inventory", "--fail-on", "client_secret", "--fail-on", "suspended")
	wantCode(t, r, ExitError)
	contains(t, "inventory --fail-on stderr", r.stderr, "client_secret (1 agent)")
	contains(t, "inventory --fail-on stdout", r.stdout, "legacy-sync")
	r = run("inventory", "--fail-on", "suspended,agent_expired")
	wantCode(t, r, ExitOK)

	// Usage errors never reach the server.
	for _, args := range [][]string{
		{"inventory", "--finding", "bogus"},
		{"inventory", "--fail-on", "Orphaned"},
		{"inventory", "--expiring-within", "forever"},
		{"inventory", "--expiring-within", "400d"},
		{"inventory", "--state", "asleep"},
	} {
		r = run(args...)
		wantCode(t, r, ExitUsage)
	}
	// A server-side refusal is readable.
	r = run("inventory", "--owner", "nobody@example.org")
	wantCode(t, r, ExitError)
	contains(t, "inventory --owner unknown", r.stderr, "Not found")
}
