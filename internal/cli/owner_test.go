package cli

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/agentid/agentid/sdk/admin"
)

func TestOwnerListTable(t *testing.T) {
	f := newFakeAPI()
	f.owners = []admin.Owner{
		{ID: "own_alice", Kind: "person", Email: "alice@example.org", DisplayName: "Alice Liddell", State: "active", CreatedAt: t0, UpdatedAt: t0, Version: 1},
		{ID: "own_sre", Kind: "team", Subject: "okta|00g1sre", DisplayName: "SRE", State: "deactivated", CreatedAt: t0, UpdatedAt: t0, Version: 2},
	}
	srv := f.serve(t)
	r := run(t, srv.URL, "owner", "list", "--state", "active")
	wantCode(t, r, ExitOK)
	golden(t, "owner_list", r.stdout)
	if want := "GET /v1/owners?state=active"; f.requests[0] != want {
		t.Errorf("request %s, want %s", f.requests[0], want)
	}
}

func TestOwnerCreate(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "-o", "json", "owner", "create", "--email", "dana@example.org", "--name", "Dana", "--kind", "team")
	wantCode(t, r, ExitOK)
	if got, want := f.body("POST /v1/owners"), `{"kind":"team","email":"dana@example.org","display_name":"Dana"}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	var o admin.Owner
	if err := json.Unmarshal([]byte(r.stdout), &o); err != nil || o.ID != "own_new" {
		t.Errorf("json output %q: %v", r.stdout, err)
	}

	r = run(t, srv.URL, "owner", "create", "--name", "Nobody")
	wantCode(t, r, ExitUsage)
}

func TestAdminTokenCreate(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "admin-token", "create", "ci", "--role", "auditor", "--ttl", "24h")
	wantCode(t, r, ExitOK)
	golden(t, "admin_token_create", r.stdout)
	if got, want := f.body("POST /v1/admin-tokens"), `{"name":"ci","role":"auditor","ttl_seconds":86400}`; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}

	r = run(t, srv.URL, "-o", "json", "admin-token", "create", "ci", "--role", "admin")
	wantCode(t, r, ExitOK)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "name", "role", "token", "created_at"} {
		if _, ok := got[k]; !ok {
			t.Errorf("json output has no %q: %s", k, r.stdout)
		}
	}
	if got["token"] != "aid_secret_value" {
		t.Errorf("token = %v", got["token"])
	}

	r = run(t, srv.URL, "admin-token", "create", "ci", "--role", "root")
	wantCode(t, r, ExitUsage)
}

func TestAdminTokenList(t *testing.T) {
	f := newFakeAPI()
	exp, rev := t0.Add(24*time.Hour), t0.Add(time.Hour)
	f.tokens = []admin.AdminToken{
		{ID: "adt_boot", Name: "bootstrap", Role: "admin", CreatedBy: "system", CreatedAt: t0, Version: 1},
		{ID: "adt_ci", Name: "ci", Role: "auditor", CreatedBy: "adt_boot", CreatedAt: t0, ExpiresAt: &exp, RevokedAt: &rev, Version: 2},
	}
	srv := f.serve(t)
	r := run(t, srv.URL, "admin-token", "list")
	wantCode(t, r, ExitOK)
	golden(t, "admin_token_list", r.stdout)
}

func TestVersion(t *testing.T) {
	f := newFakeAPI()
	srv := f.serve(t)
	r := run(t, srv.URL, "version")
	wantCode(t, r, ExitOK)
	golden(t, "version", r.stdout)

	srv.Close() // the server is down: still exit 0
	r = run(t, srv.URL, "version")
	wantCode(t, r, ExitOK)
	contains(t, "stdout", r.stdout, "Client version:", "Server:", "unreachable")

	r = run(t, srv.URL, "-o", "json", "version")
	wantCode(t, r, ExitOK)
	var out versionOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Server != nil || out.ServerError == "" || out.Client.Version == "" {
		t.Errorf("json = %+v", out)
	}
}
