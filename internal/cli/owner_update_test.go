package cli

import (
	"encoding/json"
	"net/http"
	neturl "net/url"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/admin"
)

// TestOwnerUpdateReactivate runs owner create, update, deactivate and
// reactivate against a real server.
func TestOwnerUpdateReactivate(t *testing.T) {
	url, token := realServer(t, nil)
	r := runAs(t, url, token, "owner", "create", "--user-name", "BJensen", "--external-id", "00u1", "--name", "Babs")
	wantCode(t, r, ExitOK)
	if !strings.Contains(r.stdout, "User name:       BJensen") || !strings.Contains(r.stdout, "External ID:     00u1") {
		t.Errorf("owner create output:\n%s", r.stdout)
	}
	cl, err := admin.New(url, token)
	if err != nil {
		t.Fatal(err)
	}
	owners, err := cl.ListOwners(t.Context(), admin.ListOwnersParams{})
	if err != nil || len(owners.Items) != 1 {
		t.Fatalf("owners = %+v, %v", owners, err)
	}
	id := owners.Items[0].ID

	r = runAs(t, url, token, "-o", "json", "owner", "update", id, "--email", "Babs@Example.com", "--external-id", "", "--if-version", "1")
	wantCode(t, r, ExitOK)
	var o admin.Owner
	if err := json.Unmarshal([]byte(r.stdout), &o); err != nil {
		t.Fatal(err)
	}
	if o.Email != "babs@example.com" || o.ExternalID != "" || o.UserName != "BJensen" || o.DisplayName != "Babs" || o.Version != 2 {
		t.Errorf("owner update = %+v", o)
	}
	r = runAs(t, url, token, "owner", "update", id, "--name", "B", "--if-version", "1")
	wantCode(t, r, ExitError)
	if !strings.Contains(r.stderr, "version") {
		t.Errorf("stale update: stderr %q, want the version conflict", r.stderr)
	}
	r = runAs(t, url, token, "owner", "update", id)
	wantCode(t, r, ExitUsage)

	r = runAs(t, url, token, "owner", "reactivate", "babs@example.com")
	wantCode(t, r, ExitError)
	if !strings.Contains(r.stderr, "already active") {
		t.Errorf("reactivating an active owner: stderr %q", r.stderr)
	}
	wantCode(t, runAs(t, url, token, "owner", "deactivate", id, "--reason", "left"), ExitOK)
	r = runAs(t, url, token, "owner", "reactivate", "babs@example.com", "--reason", "back", "--if-version", "3")
	wantCode(t, r, ExitOK)
	if !strings.Contains(r.stdout, "is now active") {
		t.Errorf("owner reactivate output: %s", r.stdout)
	}
	got, err := cl.GetOwner(t.Context(), id)
	if err != nil || got.State != "active" || got.Version != 4 {
		t.Errorf("owner after reactivate = %+v, %v", got, err)
	}

	// The server serves the owner as a SCIM User, located under the issuer.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		url+"/scim/v2/Users?filter="+neturl.QueryEscape(`userName eq "bjensen"`), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct {
		TotalResults int `json:"totalResults"`
		Resources    []struct {
			ID   string `json:"id"`
			Meta struct {
				Location string `json:"location"`
			} `json:"meta"`
		} `json:"Resources"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || resp.StatusCode != http.StatusOK ||
		resp.Header.Get("Content-Type") != "application/scim+json" {
		t.Fatalf("SCIM list: %d %s, %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	if l.TotalResults != 1 || l.Resources[0].ID != id || l.Resources[0].Meta.Location != url+"/scim/v2/Users/"+id {
		t.Errorf("SCIM list = %+v", l)
	}
}

// TestOwnerSubjectIssuer ties an owner's subject to an identity provider
// with owner create and owner update, and unties it (ADR 0027); a subject
// issuer that is no issuer URL is refused with the field named.
func TestOwnerSubjectIssuer(t *testing.T) {
	url, token := realServer(t, nil)
	const iss = "https://login.example.com/oauth2/default"
	r := runAs(t, url, token, "owner", "create", "--subject", "00u-erin", "--subject-issuer", iss)
	wantCode(t, r, ExitOK)
	if !strings.Contains(r.stdout, "Subject issuer:  "+iss) {
		t.Errorf("owner create output:\n%s", r.stdout)
	}
	cl, err := admin.New(url, token)
	if err != nil {
		t.Fatal(err)
	}
	owners, err := cl.ListOwners(t.Context(), admin.ListOwnersParams{})
	if err != nil || len(owners.Items) != 1 || owners.Items[0].SubjectIssuer != iss {
		t.Fatalf("owners = %+v, %v", owners, err)
	}
	id := owners.Items[0].ID
	for _, want := range []string{"", iss} {
		r = runAs(t, url, token, "-o", "json", "owner", "update", id, "--subject-issuer", want)
		wantCode(t, r, ExitOK)
		var o admin.Owner
		if err := json.Unmarshal([]byte(r.stdout), &o); err != nil || o.SubjectIssuer != want {
			t.Errorf("owner update --subject-issuer %q = %+v, %v", want, o, err)
		}
	}
	r = runAs(t, url, token, "owner", "update", id, "--subject-issuer", "http://login.example.com")
	wantCode(t, r, ExitError)
	if !strings.Contains(r.stderr, "subject_issuer") {
		t.Errorf("an http subject issuer: stderr %q, want the field named", r.stderr)
	}
	r = runAs(t, url, token, "owner", "create", "--email", "f@example.com", "--subject-issuer", iss)
	wantCode(t, r, ExitError)
	if !strings.Contains(r.stderr, "subject_issuer") {
		t.Errorf("a subject issuer without a subject: stderr %q", r.stderr)
	}
}
