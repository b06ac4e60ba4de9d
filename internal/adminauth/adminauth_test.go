package adminauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	secretpkg "github.com/agentid/agentid/internal/secret"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/recordid"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t   *testing.T
	st  store.Store
	svc *Service
	clk *clock
}

func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, _ := b.Open(t)
			fn(t, newEnv(t, st))
		})
	}
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Params{Store: st, Recorder: rec, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, svc: svc, clk: clk}
}

func origin() audit.Origin {
	return audit.Origin{
		Actor:   audit.Actor{Type: audit.ActorAdmin, ID: "adm_root"},
		Source:  audit.Source{IP: "198.51.100.9", UserAgent: "curl/8"},
		TraceID: "0af7651916cd43dd8448eb211c80319c",
	}
}

// anon is the origin of an unauthenticated request.
func anon() audit.Origin {
	return audit.Origin{Source: audit.Source{IP: "203.0.113.5"}, TraceID: "11111111111111111111111111111111"}
}

type event struct {
	Family  audit.Family
	Type    string
	Outcome audit.Outcome
	Actor   *audit.Actor
	Source  *audit.Source
	Details map[string]any
	Reason  string
}

// events returns the events after seq and their raw bodies.
func (e *env) events(after int64) ([]event, [][]byte) {
	e.t.Helper()
	recs, _, err := e.st.ListAudit(e.t.Context(), store.AuditQuery{AfterSeq: after}, store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []event
	var bodies [][]byte
	for _, r := range recs {
		var ev audit.Event
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, event{ev.Family, ev.Type, ev.Outcome, ev.Actor, ev.Source, ev.Details, ev.Reason})
		bodies = append(bodies, r.Body)
	}
	return out, bodies
}

func (e *env) head() int64 {
	e.t.Helper()
	seq, _, err := e.st.AuditHead(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

// tokens returns every stored token.
func (e *env) tokens() []store.AdminToken {
	e.t.Helper()
	toks, _, err := e.st.ListAdminTokens(e.t.Context(), store.Page{PageSize: store.MaxPageSize})
	if err != nil {
		e.t.Fatal(err)
	}
	return toks
}

func details(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestNew(t *testing.T) {
	if _, err := New(Params{}); err == nil {
		t.Error("New without store succeeded")
	}
	forEachBackend(t, func(t *testing.T, e *env) {
		if _, err := New(Params{Store: e.st}); err == nil {
			t.Error("New without recorder succeeded")
		}
	})
}

func TestBootstrap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		secret, created, err := e.svc.Bootstrap(ctx)
		if err != nil || !created {
			t.Fatalf("Bootstrap = %v, %v", created, err)
		}
		if !secretpkg.WellFormed(SecretPrefix, secret) || !strings.HasPrefix(secret, "aida_") || len(secret) != 48 {
			t.Errorf("secret %q is not well formed", secret)
		}
		toks := e.tokens()
		if len(toks) != 1 {
			t.Fatalf("tokens = %+v", toks)
		}
		tok := toks[0]
		sum := sha256.Sum256([]byte(secret))
		want := store.AdminToken{ID: tok.ID, Name: "bootstrap", Role: store.RoleAdmin, Hash: sum[:], CreatedBy: "system",
			CreatedAt: e.clk.Now(), Version: 1}
		if diff := cmp.Diff(want, tok); diff != "" {
			t.Errorf("bootstrap token (-want +got):\n%s", diff)
		}
		evs, bodies := e.events(0)
		wantEv := event{Family: audit.Admin, Type: EventTokenCreated, Outcome: audit.Success,
			Actor:   &audit.Actor{Type: "system", ID: "system"},
			Details: details(map[string]any{"id": tok.ID, "name": "bootstrap", "role": "admin", "expires_at": nil})}
		if diff := cmp.Diff([]event{wantEv}, evs); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if bytes.Contains(bodies[0], []byte(secret[len(SecretPrefix):len(SecretPrefix)+8])) {
			t.Error("audit event contains part of the secret")
		}
		got, err := e.svc.Authenticate(ctx, anon(), secret)
		if err != nil || got.ID != tok.ID || got.Hash != nil {
			t.Errorf("Authenticate(bootstrap) = %+v, %v", got, err)
		}

		// Again: nothing happens.
		secret2, created, err := e.svc.Bootstrap(ctx)
		if err != nil || created || secret2 != "" {
			t.Errorf("second Bootstrap = %q, %v, %v", secret2, created, err)
		}
		if n := len(e.tokens()); n != 1 {
			t.Errorf("%d tokens after second bootstrap", n)
		}
	})
}

// TestBootstrapRace starts several "replicas" on one store at once: exactly
// one creates the token.
func TestBootstrapRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		const n = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created int
			secrets []string
		)
		for range n {
			wg.Go(func() {
				// Each replica has its own Service and Recorder.
				replica := newEnv(t, e.st)
				secret, ok, err := replica.svc.Bootstrap(t.Context())
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("Bootstrap: %v", err)
				}
				if ok {
					created++
					secrets = append(secrets, secret)
				} else if secret != "" {
					t.Error("a losing Bootstrap returned a secret")
				}
			})
		}
		wg.Wait()
		if created != 1 {
			t.Fatalf("%d replicas created the bootstrap token, want 1", created)
		}
		if n := len(e.tokens()); n != 1 {
			t.Errorf("%d tokens stored, want 1", n)
		}
		if got := e.head(); got != 1 {
			t.Errorf("%d events recorded, want 1", got)
		}
		if _, err := e.svc.Authenticate(t.Context(), anon(), secrets[0]); err != nil {
			t.Errorf("winner's secret does not authenticate: %v", err)
		}
	})
}

func TestCreateListRevoke(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		if _, _, err := e.svc.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Second) // ids order by millisecond
		before := e.head()
		tok, secret, err := e.svc.Create(ctx, origin(), CreateParams{Name: "ci-reader", Role: store.RoleAuditor, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		want := store.AdminToken{ID: tok.ID, Name: "ci-reader", Role: store.RoleAuditor, CreatedBy: "adm_root",
			CreatedAt: e.clk.Now(), ExpiresAt: e.clk.Now().Add(time.Hour), Version: 1}
		if diff := cmp.Diff(want, tok); diff != "" {
			t.Errorf("Create (-want +got):\n%s", diff)
		}
		if recordid.Valid(recordid.AdminToken, tok.ID) != nil || !secretpkg.WellFormed(SecretPrefix, secret) {
			t.Errorf("id %q / secret malformed", tok.ID)
		}
		evs, bodies := e.events(before)
		o := origin()
		wantEv := event{Family: audit.Admin, Type: EventTokenCreated, Outcome: audit.Success, Actor: &o.Actor,
			Source:  &o.Source,
			Details: details(map[string]any{"id": tok.ID, "name": "ci-reader", "role": "auditor", "expires_at": "2030-01-02T04:04:06Z"})}
		if diff := cmp.Diff([]event{wantEv}, evs); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if bytes.Contains(bodies[0], []byte(secret)) {
			t.Error("event contains the secret")
		}

		list, next, err := e.svc.List(ctx, store.Page{PageSize: 1})
		if err != nil || len(list) != 1 || next == "" || list[0].Name != "bootstrap" || list[0].Hash != nil {
			t.Fatalf("List page 1 = %+v, %q, %v", list, next, err)
		}
		list, next, err = e.svc.List(ctx, store.Page{PageSize: 1, PageToken: next})
		if err != nil || len(list) != 1 || next != "" || list[0].ID != tok.ID || list[0].Hash != nil {
			t.Fatalf("List page 2 = %+v, %q, %v", list, next, err)
		}
		if _, _, err := e.svc.List(ctx, store.Page{PageToken: "bogus"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("List(bad token) = %v", err)
		}

		e.clk.Advance(time.Minute)
		before = e.head()
		revoked, err := e.svc.Revoke(ctx, origin(), tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		want.RevokedAt, want.Version = e.clk.Now(), 2
		if diff := cmp.Diff(want, revoked); diff != "" {
			t.Errorf("Revoke (-want +got):\n%s", diff)
		}
		evs, _ = e.events(before)
		wantEv.Type = EventTokenRevoked
		if diff := cmp.Diff([]event{wantEv}, evs); diff != "" {
			t.Errorf("revoke events (-want +got):\n%s", diff)
		}
		if _, err := e.svc.Authenticate(ctx, anon(), secret); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("revoked token authenticates: %v", err)
		}
	})
}

func TestCreateRevokeInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		boot, _, err := e.svc.Bootstrap(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bootTok, _ := e.svc.Authenticate(ctx, anon(), boot)
		second, _, err := e.svc.Create(ctx, origin(), CreateParams{Name: "second", Role: store.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Revoke(ctx, origin(), second.ID); err != nil {
			t.Fatal(err)
		}
		auditor, _, err := e.svc.Create(ctx, origin(), CreateParams{Name: "auditor", Role: store.RoleAuditor})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			call func() error
			want error
		}{
			{"empty name", func() error {
				_, _, err := e.svc.Create(ctx, origin(), CreateParams{Role: store.RoleAdmin})
				return err
			}, ErrInvalid},
			{"bad name", func() error {
				_, _, err := e.svc.Create(ctx, origin(), CreateParams{Name: "Bad Name", Role: store.RoleAdmin})
				return err
			}, ErrInvalid},
			{"long name", func() error {
				_, _, err := e.svc.Create(ctx, origin(), CreateParams{Name: strings.Repeat("a", 64), Role: store.RoleAdmin})
				return err
			}, ErrInvalid},
			{"bad role", func() error {
				_, _, err := e.svc.Create(ctx, origin(), CreateParams{Name: "x", Role: "root"})
				return err
			}, ErrInvalid},
			{"no role", func() error { _, _, err := e.svc.Create(ctx, origin(), CreateParams{Name: "x"}); return err }, ErrInvalid},
			{"negative ttl", func() error {
				_, _, err := e.svc.Create(ctx, origin(), CreateParams{Name: "x", Role: store.RoleAdmin, TTL: -time.Hour})
				return err
			}, ErrInvalid},
			{"short ttl", func() error {
				_, _, err := e.svc.Create(ctx, origin(), CreateParams{Name: "x", Role: store.RoleAdmin, TTL: time.Second})
				return err
			}, ErrInvalid},
			{"name taken", func() error {
				_, _, err := e.svc.Create(ctx, origin(), CreateParams{Name: "second", Role: store.RoleAdmin})
				return err
			}, ErrAlreadyExists},
			{"revoke malformed id", func() error { _, err := e.svc.Revoke(ctx, origin(), "bootstrap"); return err }, ErrInvalid},
			{"revoke unknown", func() error { _, err := e.svc.Revoke(ctx, origin(), "adm_01j00000000000000000000000"); return err }, ErrNotFound},
			{"revoke twice", func() error { _, err := e.svc.Revoke(ctx, origin(), second.ID); return err }, ErrIllegalTransition},
			{"revoke last admin", func() error { _, err := e.svc.Revoke(ctx, origin(), bootTok.ID); return err }, ErrIllegalTransition},
		}
		for _, tt := range tests {
			toks, head := e.tokens(), e.head()
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
			}
			if diff := cmp.Diff(toks, e.tokens()); diff != "" || e.head() != head {
				t.Errorf("%s changed the store:\n%s", tt.name, diff)
			}
		}
		// An auditor token is not an admin: the last-admin guard ignores it,
		// and it can be revoked.
		if _, err := e.svc.Revoke(ctx, origin(), auditor.ID); err != nil {
			t.Errorf("revoke auditor: %v", err)
		}
		// With a second usable admin the bootstrap token can go.
		if _, _, err := e.svc.Create(ctx, origin(), CreateParams{Name: "third", Role: store.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Revoke(ctx, origin(), bootTok.ID); err != nil {
			t.Errorf("revoke bootstrap with another admin present: %v", err)
		}
	})
}

func TestAuthenticateFailures(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		if _, _, err := e.svc.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		expiring, expSecret, err := e.svc.Create(ctx, origin(), CreateParams{Name: "short", Role: store.RoleAdmin, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		revoked, revSecret, err := e.svc.Create(ctx, origin(), CreateParams{Name: "revoked", Role: store.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Revoke(ctx, origin(), revoked.ID); err != nil {
			t.Fatal(err)
		}
		// Still valid one tick before expiry.
		e.clk.Advance(time.Minute - time.Microsecond)
		if _, err := e.svc.Authenticate(ctx, anon(), expSecret); err != nil {
			t.Errorf("token rejected before expiry: %v", err)
		}
		e.clk.Advance(time.Microsecond)

		unknown, err := secretpkg.New(SecretPrefix, strings.NewReader(strings.Repeat("z", 32)))
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, bearer, reason string
			tok                  *store.AdminToken
		}{
			{"empty", "", ReasonMalformed, nil},
			{"no prefix", strings.TrimPrefix(unknown, SecretPrefix), ReasonMalformed, nil},
			{"wrong prefix", "aidx_" + unknown[5:], ReasonMalformed, nil},
			{"truncated", unknown[:len(unknown)-1], ReasonMalformed, nil},
			{"padded", unknown + "=", ReasonMalformed, nil},
			{"bad alphabet", unknown[:len(unknown)-1] + "+", ReasonMalformed, nil},
			{"non-canonical", unknown[:len(unknown)-1] + "B", ReasonMalformed, nil},
			{"huge", strings.Repeat("a", 1<<20), ReasonMalformed, nil},
			{"bearer scheme included", "Bearer " + unknown, ReasonMalformed, nil},
			{"unknown", unknown, ReasonUnknown, nil},
			{"revoked", revSecret, ReasonRevoked, &revoked},
			{"expired", expSecret, ReasonExpired, &expiring},
		}
		for _, tt := range tests {
			before := e.head()
			toks := e.tokens()
			got, err := e.svc.Authenticate(ctx, anon(), tt.bearer)
			if err != ErrUnauthenticated { //nolint:errorlint // the exact, opaque error is the contract
				t.Errorf("%s: Authenticate = %+v, %v; want ErrUnauthenticated exactly", tt.name, got, err)
			}
			if diff := cmp.Diff(toks, e.tokens()); diff != "" {
				t.Errorf("%s changed tokens:\n%s", tt.name, diff)
			}
			evs, bodies := e.events(before)
			src := anon().Source
			want := event{Family: audit.Authentication, Type: EventAuthenticated, Outcome: audit.Failure,
				Source: &src, Reason: tt.reason, Details: map[string]any{"method": "bearer"}}
			if tt.tok != nil {
				want.Actor = &audit.Actor{Type: audit.ActorAdmin, ID: tt.tok.ID}
				want.Details["token_name"] = tt.tok.Name
			}
			if diff := cmp.Diff([]event{want}, evs); diff != "" {
				t.Errorf("%s: events (-want +got):\n%s", tt.name, diff)
				continue
			}
			if len(tt.bearer) >= 16 && bytes.Contains(bodies[0], []byte(tt.bearer[len(tt.bearer)-16:])) {
				t.Errorf("%s: event contains part of the presented secret", tt.name)
			}
		}
		rep, err := audit.Verify(ctx, e.st, audit.VerifyParams{})
		if err != nil || !rep.OK {
			t.Errorf("trail does not verify: %+v, %v", rep, err)
		}
	})
}

// TestAuthenticateFailClosed checks that a failure that cannot be recorded
// still fails, and says why.
func TestAuthenticateFailClosed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		if err := e.st.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.Authenticate(t.Context(), anon(), "nope")
		if !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, store.ErrClosed) {
			t.Errorf("Authenticate on a closed store = %v", err)
		}
	})
}

func TestAuthorize(t *testing.T) {
	tests := []struct {
		role      store.Role
		needAdmin bool
		ok        bool
	}{
		{store.RoleAdmin, true, true},
		{store.RoleAdmin, false, true},
		{store.RoleAuditor, false, true},
		{store.RoleAuditor, true, false},
		{"", false, false},
		{"root", true, false},
	}
	for _, tt := range tests {
		err := Authorize(store.AdminToken{ID: "adm_x", Role: tt.role}, tt.needAdmin)
		if tt.ok != (err == nil) {
			t.Errorf("Authorize(%q, %v) = %v, want ok=%v", tt.role, tt.needAdmin, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrForbidden) {
			t.Errorf("Authorize(%q, %v) = %v, want ErrForbidden", tt.role, tt.needAdmin, err)
		}
	}
}

func TestSecretFormat(t *testing.T) {
	seen := map[string]bool{}
	for i := range 100 {
		s, err := secretpkg.New(SecretPrefix, bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 32)))
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != SecretLen || !secretpkg.WellFormed(SecretPrefix, s) || seen[s] {
			t.Fatalf("secret %q", s)
		}
		seen[s] = true
	}
	if _, err := secretpkg.New(SecretPrefix, strings.NewReader("short")); err == nil {
		t.Error("newSecret accepted a short random read")
	}
}

func FuzzWellFormed(f *testing.F) {
	s, _ := secretpkg.New(SecretPrefix, bytes.NewReader(make([]byte, 32)))
	f.Add(s)
	f.Add("aida_")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		if !secretpkg.WellFormed(SecretPrefix, in) {
			return
		}
		if len(in) != SecretLen || !strings.HasPrefix(in, SecretPrefix) {
			t.Fatalf("secretpkg.WellFormed(SecretPrefix, %q) accepted", in)
		}
		raw, err := base64.RawURLEncoding.DecodeString(in[len(SecretPrefix):])
		if err != nil || len(raw) != 32 {
			t.Fatalf("secretpkg.WellFormed(SecretPrefix, %q) accepted undecodable", in)
		}
		again, _ := secretpkg.New(SecretPrefix, bytes.NewReader(raw))
		if again != in {
			t.Fatalf("not canonical: %q vs %q", in, again)
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"bootstrap", "ci-reader", "-x", "X", strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ValidateName(%q) = %v", name, err)
			}
			return
		}
		if name == "" || len(name) > MaxNameLen || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" ||
			name[0] == '-' || name[len(name)-1] == '-' {
			t.Fatalf("ValidateName(%q) accepted", name)
		}
	})
}
