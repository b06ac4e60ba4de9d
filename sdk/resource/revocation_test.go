package resource_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agentid/agentid/sdk/resource"
)

func TestRevocationCheck(t *testing.T) {
	ec := newES256(t, "k-ec")
	is := newIssuer(t, ec)
	clock := &fakeClock{now: t0}
	errGone := errors.New("jti revoked")
	var checked []string
	v := newVerifier(t, is, clock, func(p *resource.VerifierParams) {
		p.RevocationCheck = func(_ context.Context, c *resource.Claims) error {
			checked = append(checked, c.JTI)
			if c.JTI == "tok_revoked" {
				return errGone
			}
			return nil
		}
	})
	good := mint(t, ec, is.claims(t0), nil)
	c := is.claims(t0)
	c["jti"] = "tok_revoked"
	revoked := mint(t, ec, c, nil)

	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatalf("Verify(good) = %v", err)
	}
	_, err := v.Verify(context.Background(), revoked)
	var e *resource.Error
	if !errors.As(err, &e) || !errors.Is(err, resource.ErrRevoked) || !errors.Is(err, resource.ErrInvalidToken) || !errors.Is(err, errGone) {
		t.Fatalf("Verify(revoked) = %v, want an *Error of kind ErrRevoked wrapping the check's error", err)
	}
	// A token that fails verification never reaches the check.
	_, _ = v.Verify(context.Background(), mint(t, ec, is.claims(t0), map[string]any{"typ": "JWT"}))
	if got := strings.Join(checked, ","); got != "tok_1,tok_revoked" {
		t.Fatalf("checked %q, want the two verified tokens", got)
	}

	h := resource.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, tc := range []struct {
		token string
		want  int
	}{{good, http.StatusOK}, {revoked, http.StatusUnauthorized}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, request(http.MethodGet, "https://api.example.com/x", "Bearer "+tc.token))
		if rec.Code != tc.want {
			t.Fatalf("middleware status %d, want %d", rec.Code, tc.want)
		}
		if tc.want == http.StatusUnauthorized && !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("challenge %q, want invalid_token", rec.Header().Get("WWW-Authenticate"))
		}
	}
}
