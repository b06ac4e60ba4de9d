package httpapi_test

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
	"github.com/agentid/agentid/sdk/admin"
)

// TestListNodeJoinTokens lists node join tokens in each state over HTTP,
// paged and filtered, on each backend: the wire form never holds a secret
// or a hash; an auditor is forbidden; an unknown state is a validation
// problem.
func TestListNodeJoinTokens(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			e, node := newNodeEnvOn(t, st)
			ctx := context.Background()
			// An expired token, written to the store as the registry would
			// have a while ago.
			now := time.Now().UTC().Truncate(time.Millisecond)
			h := sha256.Sum256([]byte("expired"))
			expired := store.JoinToken{ID: "njt_00000000000000000000000000", Hash: h[:], CreatedBy: "adm_earlier",
				CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-50 * time.Minute)}
			if err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.CreateJoinToken(ctx, expired)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var toks []admin.CreatedJoinToken
			for range 3 {
				tok, err := e.admin.CreateJoinToken(ctx, admin.CreateJoinTokenRequest{TTLSeconds: 300})
				if err != nil {
					t.Fatal(err)
				}
				toks = append(toks, tok)
				time.Sleep(2 * time.Millisecond) // ids sort in creation order to the millisecond
			}
			csr, _ := testCSR(t)
			att, err := node.AttestNode(ctx, admin.AttestNodeRequest{JoinToken: toks[0].Token, CSR: csr})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.admin.RevokeJoinToken(ctx, toks[1].ID); err != nil {
				t.Fatal(err)
			}

			type item struct{ ID, State, NodeID string }
			list := func(state string) []item {
				t.Helper()
				var out []item
				for tok := ""; ; {
					l, err := e.admin.ListJoinTokens(ctx, admin.ListJoinTokensParams{State: state, PageSize: 1, PageToken: tok})
					if err != nil {
						t.Fatalf("ListJoinTokens(%q): %v", state, err)
					}
					for _, x := range l.Items {
						if x.CreatedBy == "" || x.CreatedAt.IsZero() || !x.ExpiresAt.After(x.CreatedAt) || (x.UsedAt != nil) != (x.State == admin.JoinTokenUsed) {
							t.Errorf("listed %+v", x)
						}
						out = append(out, item{x.ID, x.State, x.NodeID})
					}
					if tok = l.NextPageToken; tok == "" {
						return out
					}
				}
			}
			want := []item{{expired.ID, admin.JoinTokenExpired, ""}, {toks[0].ID, admin.JoinTokenUsed, att.NodeID},
				{toks[1].ID, admin.JoinTokenRevoked, ""}, {toks[2].ID, admin.JoinTokenUnused, ""}}
			if diff := cmp.Diff(want, list("")); diff != "" {
				t.Errorf("GET /v1/node-tokens (-want +got):\n%s", diff)
			}
			for i, state := range []string{admin.JoinTokenExpired, admin.JoinTokenUsed, admin.JoinTokenRevoked, admin.JoinTokenUnused} {
				if diff := cmp.Diff(want[i:i+1], list(state)); diff != "" {
					t.Errorf("GET /v1/node-tokens?state=%s (-want +got):\n%s", state, diff)
				}
			}

			// The wire form: no secret, no hash.
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/v1/node-tokens", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+e.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "aidjt_") || strings.Contains(string(body), "hash") ||
				!strings.Contains(string(body), `"items":[`) {
				t.Errorf("GET /v1/node-tokens: %d %s", resp.StatusCode, body)
			}

			for _, tc := range []struct {
				name, url, token string
				status           int
				typ              string
			}{
				{"by an auditor", "/v1/node-tokens", e.auditor, 403, admin.ProblemForbidden},
				{"unknown state", "/v1/node-tokens?state=outstanding", e.token, 400, admin.ProblemValidation},
				{"bad page token", "/v1/node-tokens?page_token=nope", e.token, 400, admin.ProblemValidation},
				{"bad page size", "/v1/node-tokens?page_size=-1", e.token, 400, admin.ProblemBadRequest},
			} {
				status, p, _ := postJSON(t, http.MethodGet, e.url+tc.url, tc.token, "")
				if status != tc.status || p.Type != tc.typ {
					t.Errorf("%s: %d %s, want %d %s", tc.name, status, p.Type, tc.status, tc.typ)
				}
			}
		})
	}
}
