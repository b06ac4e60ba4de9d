package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx database/sql driver, to make the test's schema

	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/server"
	"github.com/agentid/agentid/internal/store/storetest"
	"github.com/agentid/agentid/sdk/admin"
)

// joinTokenBackends are the store configurations of the end-to-end join
// token tests: SQLite, and PostgreSQL (a fresh schema) when
// storetest.PostgresDSNEnv is set. Each sets up the store of the
// subtest t.
func joinTokenBackends(t *testing.T) map[string]func(*testing.T, *server.Config) {
	t.Helper()
	out := map[string]func(*testing.T, *server.Config){"sqlite": func(*testing.T, *server.Config) {}}
	dsn := os.Getenv(storetest.PostgresDSNEnv)
	if dsn == "" {
		t.Log("PostgreSQL skipped: " + storetest.PostgresDSNEnv + " not set")
		return out
	}
	out["postgres"] = func(t *testing.T, c *server.Config) {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		var b [8]byte
		_, _ = rand.Read(b[:])
		schema := "t_" + hex.EncodeToString(b[:])
		if _, err := db.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
		c.Store.Driver, c.Store.Path, c.Store.DSN = "postgres", "", storetest.WithSearchPath(dsn, schema)
	}
	return out
}

// TestJoinTokenRevokeEndToEnd: over HTTP, on each backend, a revoked
// agent join token is refused at the token endpoint (invalid_grant, with
// a failed instance.attested event saying it was revoked), the revoke
// endpoint answers 409, 404, 400 and 403 where it must, and the list
// shows each token's state.
func TestJoinTokenRevokeEndToEnd(t *testing.T) {
	for name, setup := range joinTokenBackends(t) {
		t.Run(name, func(t *testing.T) {
			cp := startDev(t, func(c *server.Config) { setup(t, c) })
			ctx := t.Context()
			owner, err := cp.admin.CreateOwner(ctx, admin.CreateOwnerRequest{Kind: "person", Email: "o@example.org"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cp.admin.CreateAgent(ctx, admin.CreateAgentRequest{Name: "batch", Purpose: "p", Owners: []string{owner.ID},
				Audiences: []string{"https://api.example.org"}}); err != nil {
				t.Fatal(err)
			}
			redeem := func(token string) (int, map[string]any) {
				t.Helper()
				resp, err := http.PostForm(cp.url+"/oauth2/token", url.Values{"grant_type": {oauth.GrantJoinToken}, "join_token": {token}})
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&body)
				return resp.StatusCode, body
			}

			jt, err := cp.admin.CreateAgentJoinToken(ctx, "batch", admin.CreateJoinTokenRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := cp.admin.RevokeAgentJoinToken(ctx, jt.ID)
			if err != nil || got.ID != jt.ID || got.AgentID != jt.AgentID || !got.ExpiresAt.Equal(jt.ExpiresAt) || got.RevokedBy == "" {
				t.Fatalf("revoke = %+v, %v", got, err)
			}
			if status, body := redeem(jt.Token); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Fatalf("redeem a revoked token: %d %v", status, body)
			}
			evs, err := cp.admin.ListAuditEvents(ctx, admin.AuditQuery{Agent: jt.AgentID})
			if err != nil {
				t.Fatal(err)
			}
			var revoked, refused int
			for _, ev := range evs.Items {
				switch {
				case ev.Type == oauth.EventJoinTokenRevoked && strings.Contains(string(ev.Details), jt.ID):
					revoked++
				case ev.Type == oauth.EventInstanceAttested && ev.Outcome == "failure" && ev.Reason == jt.ID+" was revoked":
					refused++
				}
				if strings.Contains(string(ev.Details), jt.Token) || strings.Contains(ev.Reason, jt.Token) {
					t.Errorf("event %s holds the token", ev.Type)
				}
			}
			if revoked != 1 || refused != 1 {
				t.Errorf("%d revoked and %d refused-redemption events, want 1 and 1", revoked, refused)
			}

			var p *admin.Problem
			if _, err := cp.admin.RevokeAgentJoinToken(ctx, jt.ID); !errors.As(err, &p) || p.Status != http.StatusConflict ||
				p.Type != admin.ProblemIllegalTransition || !strings.Contains(p.Detail, "was revoked") {
				t.Errorf("revoke twice: %v", err)
			}
			used, err := cp.admin.CreateAgentJoinToken(ctx, "batch", admin.CreateJoinTokenRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if status, body := redeem(used.Token); status != http.StatusOK {
				t.Fatalf("redeem: %d %v", status, body)
			}
			if _, err := cp.admin.RevokeAgentJoinToken(ctx, used.ID); !errors.As(err, &p) || p.Status != http.StatusConflict ||
				!strings.Contains(p.Detail, "already used") {
				t.Errorf("revoke a used token: %v", err)
			}
			if _, err := cp.admin.RevokeAgentJoinToken(ctx, "ajt_01jbz9q0000000000000000000"); !errors.As(err, &p) ||
				p.Status != http.StatusNotFound || p.Type != admin.ProblemNotFound {
				t.Errorf("revoke an unknown id: %v", err)
			}
			if _, err := cp.admin.RevokeAgentJoinToken(ctx, "njt_01jbz9q0000000000000000000"); !errors.As(err, &p) ||
				p.Status != http.StatusBadRequest || p.Type != admin.ProblemValidation || p.Field != "id" {
				t.Errorf("revoke a bad id: %v", err)
			}

			aud, err := cp.admin.CreateAdminToken(ctx, admin.CreateAdminTokenRequest{Name: "siem", Role: "auditor"})
			if err != nil {
				t.Fatal(err)
			}
			ac, err := admin.New(cp.url, aud.Token)
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := cp.admin.CreateAgentJoinToken(ctx, "batch", admin.CreateJoinTokenRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ac.RevokeAgentJoinToken(ctx, fresh.ID); !errors.As(err, &p) || p.Status != http.StatusForbidden {
				t.Errorf("revoke with an auditor token: %v", err)
			}
			l, err := cp.admin.ListAgentJoinTokens(ctx, "batch")
			if err != nil {
				t.Fatal(err)
			}
			var states []string
			for _, s := range l.Items {
				states = append(states, s.ID+" "+s.State)
			}
			if want := []string{fresh.ID + " unused", used.ID + " used", jt.ID + " revoked"}; strings.Join(states, ", ") != strings.Join(want, ", ") ||
				l.Items[1].InstanceID == "" || l.Items[2].RevokedAt == nil {
				t.Errorf("listed %v, want %v", states, want)
			}
			if _, err := ac.ListAgentJoinTokens(ctx, "batch"); !errors.As(err, &p) || p.Status != http.StatusForbidden {
				t.Errorf("list with an auditor token: %v", err)
			}
			if _, err := cp.admin.ListAgentJoinTokens(ctx, "nobody"); !errors.As(err, &p) || p.Status != http.StatusNotFound {
				t.Errorf("list for an unknown agent: %v", err)
			}
			if status, body := redeem(fresh.Token); status != http.StatusOK {
				t.Errorf("the auditor's refused revocation changed the token: %d %v", status, body)
			}
		})
	}
}

// TestNodeJoinTokenRevokeEndToEnd: over HTTP, on each backend, a revoked
// node join token does not attest (401, with a failed node.attested event
// saying it was revoked), and the revoke endpoint answers 409, 404, 400
// and 403 where it must.
func TestNodeJoinTokenRevokeEndToEnd(t *testing.T) {
	for name, setup := range joinTokenBackends(t) {
		t.Run(name, func(t *testing.T) {
			cp := startDev(t, func(c *server.Config) { setup(t, c) })
			ctx := t.Context()
			node, err := admin.New(cp.url, "")
			if err != nil {
				t.Fatal(err)
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
			if err != nil {
				t.Fatal(err)
			}
			csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))

			tok, err := cp.admin.CreateJoinToken(ctx, admin.CreateJoinTokenRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := cp.admin.RevokeJoinToken(ctx, tok.ID)
			if err != nil || got.ID != tok.ID || !got.ExpiresAt.Equal(tok.ExpiresAt) || got.RevokedBy == "" || got.CreatedBy == "" {
				t.Fatalf("revoke = %+v, %v", got, err)
			}
			if _, err := node.AttestNode(ctx, admin.AttestNodeRequest{JoinToken: tok.Token, CSR: csr}); !admin.IsProblem(err, admin.ProblemUnauthenticated) {
				t.Fatalf("attest with a revoked token: %v, want unauthenticated", err)
			}
			evs, err := cp.admin.ListAuditEvents(ctx, admin.AuditQuery{})
			if err != nil {
				t.Fatal(err)
			}
			var revoked, refused int
			for _, ev := range evs.Items {
				switch {
				case ev.Type == "join_token.revoked" && strings.Contains(string(ev.Details), tok.ID):
					revoked++
				case ev.Type == "node.attested" && ev.Outcome == "failure" && ev.Reason == "revoked token" && strings.Contains(string(ev.Details), tok.ID):
					refused++
				}
				if strings.Contains(string(ev.Details), tok.Token) {
					t.Errorf("event %s holds the token", ev.Type)
				}
			}
			if revoked != 1 || refused != 1 {
				t.Errorf("%d revoked and %d refused-attestation events, want 1 and 1", revoked, refused)
			}
			if l, err := cp.admin.ListNodes(ctx, admin.ListNodesParams{}); err != nil || len(l.Items) != 0 {
				t.Errorf("nodes = %+v, %v; want none", l, err)
			}

			var p *admin.Problem
			if _, err := cp.admin.RevokeJoinToken(ctx, tok.ID); !errors.As(err, &p) || p.Status != http.StatusConflict ||
				p.Type != admin.ProblemIllegalTransition || !strings.Contains(p.Detail, "was revoked") {
				t.Errorf("revoke twice: %v", err)
			}
			used, err := cp.admin.CreateJoinToken(ctx, admin.CreateJoinTokenRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := node.AttestNode(ctx, admin.AttestNodeRequest{JoinToken: used.Token, CSR: csr}); err != nil {
				t.Fatal(err)
			}
			if _, err := cp.admin.RevokeJoinToken(ctx, used.ID); !errors.As(err, &p) || p.Status != http.StatusConflict ||
				!strings.Contains(p.Detail, "already used by node nod_") {
				t.Errorf("revoke a used token: %v", err)
			}
			if _, err := cp.admin.RevokeJoinToken(ctx, "njt_01jbz9q0000000000000000000"); !errors.As(err, &p) ||
				p.Status != http.StatusNotFound || p.Type != admin.ProblemNotFound {
				t.Errorf("revoke an unknown id: %v", err)
			}
			if _, err := cp.admin.RevokeJoinToken(ctx, tok.Token); !errors.As(err, &p) ||
				p.Status != http.StatusBadRequest || p.Type != admin.ProblemValidation || p.Field != "id" || strings.Contains(p.Detail, tok.Token) {
				t.Errorf("revoke a bad id: %v", err)
			}
			aud, err := cp.admin.CreateAdminToken(ctx, admin.CreateAdminTokenRequest{Name: "siem", Role: "auditor"})
			if err != nil {
				t.Fatal(err)
			}
			ac, err := admin.New(cp.url, aud.Token)
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := cp.admin.CreateJoinToken(ctx, admin.CreateJoinTokenRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ac.RevokeJoinToken(ctx, fresh.ID); !errors.As(err, &p) || p.Status != http.StatusForbidden {
				t.Errorf("revoke with an auditor token: %v", err)
			}
		})
	}
}
