package oauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentid/agentid/internal/audit"
	"github.com/agentid/agentid/internal/credential"
	"github.com/agentid/agentid/internal/identity"
	"github.com/agentid/agentid/internal/keys"
	"github.com/agentid/agentid/internal/oauth"
	"github.com/agentid/agentid/internal/store"
	"github.com/agentid/agentid/internal/store/storetest"
)

const (
	testIssuer = "https://as.example.org"
	testTD     = "example.org"
	resourceA  = "https://api.example.org"
	resourceB  = "https://db.example.org"
)

// clock is a settable test clock.
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

// env is an authorization server on a real store, with one active agent
// ("bot") holding an ES256 client key and a client secret.
type env struct {
	t      testing.TB
	ctx    context.Context
	st     store.Store
	ids    *identity.Service
	keys   *keys.Manager
	srv    *oauth.Server
	params oauth.Params
	clk    *clock
	agent  store.Agent
	key    *ecdsa.PrivateKey
	kid    string
	secret string
}

func adminOrigin() audit.Origin {
	return audit.Origin{Actor: audit.Actor{Type: audit.ActorAdmin, ID: "adm_tester"}}
}

func newEnv(t testing.TB, st store.Store) *env {
	t.Helper()
	ctx := t.Context()
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	rec, err := audit.NewRecorder(audit.RecorderParams{Store: st, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := identity.New(identity.Params{Store: st, Recorder: rec, TrustDomain: testTD, MaxTTLCap: 2 * time.Hour, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	root, err := keys.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := keys.NewManager(ctx, keys.ManagerParams{
		Store: st, Root: root, Purpose: "oauth", MaxTokenTTL: 2 * time.Hour, Holder: "test", Clock: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := credential.NewIssuer(testIssuer, mgr, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, st: st, ids: ids, keys: mgr, clk: clk,
		params: oauth.Params{Store: st, Recorder: rec, Tokens: iss, Clock: clk.Now, Rand: rand.Reader}}
	e.srv = e.withParams(nil)
	e.agent, e.key, e.kid, e.secret = e.newAgent("bot", nil)
	return e
}

func sqliteEnv(t *testing.T) *env {
	t.Helper()
	st, _ := storetest.Backends(t)[0].Open(t)
	return newEnv(t, st)
}

// withParams returns a server built from the env's parameters, edited.
func (e *env) withParams(edit func(*oauth.Params)) *oauth.Server {
	e.t.Helper()
	p := e.params
	if edit != nil {
		edit(&p)
	}
	srv, err := oauth.New(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return srv
}

// newAgent registers an agent with scopes a/b, audiences A/B, an ES256 key
// and a secret; edit may change the create parameters.
func (e *env) newAgent(name string, edit func(*identity.CreateAgentParams)) (store.Agent, *ecdsa.PrivateKey, string, string) {
	e.t.Helper()
	owner, err := e.ids.CreateOwner(e.ctx, adminOrigin(), identity.CreateOwnerParams{
		Kind: store.OwnerPerson, Email: name + "@example.org", DisplayName: name,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	p := identity.CreateAgentParams{
		Name: name, Owners: []string{owner.ID}, Purpose: "tests",
		Scopes: []string{"tickets:read", "tickets:write"}, Audiences: []string{resourceA, resourceB},
		MaxTTL: time.Hour,
	}
	if edit != nil {
		edit(&p)
	}
	a, err := e.ids.CreateAgent(e.ctx, adminOrigin(), p)
	if err != nil {
		e.t.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		e.t.Fatal(err)
	}
	ck, err := e.ids.AddClientKey(e.ctx, adminOrigin(), identity.AddClientKeyParams{
		Ref: a.ID, PublicKey: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	_, secret, err := e.ids.CreateClientSecret(e.ctx, adminOrigin(), identity.CreateClientSecretParams{Ref: a.ID})
	if err != nil {
		e.t.Fatal(err)
	}
	return a, priv, ck.KeyID, secret
}

// assertion is a client assertion's parts, edited by tests.
type assertion struct {
	alg     jose.SignatureAlgorithm
	key     any
	headers map[jose.HeaderKey]any
	embed   bool
	claims  map[string]any
}

func (e *env) assertion(edit func(*assertion)) string {
	e.t.Helper()
	now := e.clk.Now()
	a := &assertion{
		alg: jose.ES256, key: e.key,
		headers: map[jose.HeaderKey]any{"kid": e.kid},
		claims: map[string]any{
			"iss": e.agent.ID, "sub": e.agent.ID, "aud": testIssuer,
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": randomID(e.t),
		},
	}
	if edit != nil {
		edit(a)
	}
	opts := &jose.SignerOptions{EmbedJWK: a.embed}
	for k, v := range a.headers {
		opts.WithHeader(k, v)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: a.alg, Key: a.key}, opts.WithType("JWT"))
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(a.claims).Serialize()
	if err != nil {
		e.t.Fatal(err)
	}
	return raw
}

func randomID(t testing.TB) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// form builds a request body.
func form(kv ...string) url.Values {
	f := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return f
}

// jwtRequest is a client_credentials request authenticated with raw.
func jwtRequest(raw string, kv ...string) *oauth.Request {
	f := form(append([]string{"grant_type", "client_credentials",
		"client_assertion_type", oauth.AssertionType, "client_assertion", raw}, kv...)...)
	return &oauth.Request{Form: f}
}

// basicRequest is a client_credentials request with HTTP Basic.
func (e *env) basicRequest(kv ...string) *oauth.Request {
	return &oauth.Request{
		Form:  form(append([]string{"grant_type", "client_credentials"}, kv...)...),
		Basic: &oauth.BasicCredentials{User: url.QueryEscape(e.agent.ID), Password: url.QueryEscape(e.secret)},
	}
}

// claims verifies an issued token with the published key, independently
// of credential.ParseAccessToken, and returns its claims.
func (e *env) claims(raw string) map[string]any {
	e.t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		e.t.Fatal(err)
	}
	if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		e.t.Fatalf("typ = %v, want at+jwt", typ)
	}
	pub, _, ok := e.keys.PublicKey(tok.Headers[0].KeyID)
	if !ok {
		e.t.Fatalf("kid %q is not published", tok.Headers[0].KeyID)
	}
	var m map[string]any
	if err := tok.Claims(pub, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// events returns every audit event of the given type in the trail.
func (e *env) events(typ string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	err := e.st.ScanAudit(e.ctx, store.AuditQuery{}, func(r store.AuditRecord) error {
		if r.Type != typ {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal(r.Body, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// trail is the whole audit trail as text.
func (e *env) trail() string {
	e.t.Helper()
	var b strings.Builder
	err := e.st.ScanAudit(e.ctx, store.AuditQuery{}, func(r store.AuditRecord) error {
		b.Write(r.Body)
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return b.String()
}

// failingAudit is a store whose audit appends fail.
type failingAudit struct{ store.Store }

func (f failingAudit) Update(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	return f.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return fn(ctx, failingTx{tx})
	})
}

type failingTx struct{ store.Tx }

func (failingTx) AppendAudit(context.Context, func(int64, []byte) (store.AuditRecord, error)) (store.AuditRecord, error) {
	return store.AuditRecord{}, errors.New("disk full")
}

var _ crypto.Signer = (*ecdsa.PrivateKey)(nil)
