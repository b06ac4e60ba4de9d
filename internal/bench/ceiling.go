package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Paths the ceiling server answers, the same as agentid's.
const (
	tokenPath    = "/oauth2/token" //nolint:gosec // a URL path, not a credential
	jwksPath     = "/oauth2/jwks"
	metadataPath = "/.well-known/oauth-authorization-server"
)

// Ceiling is the machine's ceiling for one private_key_jwt token: an
// http.Handler that does only the work no token server can avoid. For a
// POST to /oauth2/token it reads the form body, verifies the client
// assertion's ES256 signature with the one known public key (crypto/ecdsa,
// plus the parsing needed to find the client id), mints an ES256 JWS of a
// claim set shaped like agentid's access tokens, and answers a token
// response. No store, no audit, no replay check, no logging. It also serves
// its JWKS and a minimal RFC 8414 metadata document, so that the load
// generator treats it like agentid. It is safe for concurrent use.
type Ceiling struct {
	clientKey *ecdsa.PublicKey
	signKey   *ecdsa.PrivateKey
	header    string // encoded token header
	issuer    string
	jwks      []byte
	metadata  []byte
	clock     func() time.Time
	rand      io.Reader
}

// CeilingParams configure a Ceiling.
type CeilingParams struct {
	// ClientKey verifies client assertions. Required.
	ClientKey *ecdsa.PublicKey
	// Issuer is the ceiling's base URL; assertions must name it as aud.
	Issuer string
	// Clock and Rand are required.
	Clock func() time.Time
	Rand  io.Reader
}

// ceilingKeyID is the kid of the ceiling's token signing key.
const ceilingKeyID = "ceiling-1"

// NewCeiling returns a Ceiling with a fresh P-256 signing key.
func NewCeiling(p CeilingParams) (*Ceiling, error) {
	if p.ClientKey == nil || p.Clock == nil || p.Rand == nil || p.Issuer == "" {
		return nil, errors.New("bench: ceiling: ClientKey, Issuer, Clock and Rand are required")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), p.Rand)
	if err != nil {
		return nil, fmt.Errorf("bench: ceiling key: %w", err)
	}
	header, err := encodeHeader(ceilingKeyID, "at+jwt")
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: key.Public(), KeyID: ceilingKeyID, Algorithm: "ES256", Use: "sig",
	}}})
	if err != nil {
		return nil, fmt.Errorf("bench: ceiling jwks: %w", err)
	}
	md, err := json.Marshal(Metadata{Issuer: p.Issuer, TokenEndpoint: p.Issuer + tokenPath, JWKSURI: p.Issuer + jwksPath})
	if err != nil {
		return nil, fmt.Errorf("bench: ceiling metadata: %w", err)
	}
	return &Ceiling{clientKey: p.ClientKey, signKey: key, header: header, issuer: p.Issuer,
		jwks: jwks, metadata: md, clock: p.Clock, rand: p.Rand}, nil
}

// ceilingClaims has the shape and size of agentid's access token claims
// (docs/tokens.md) without delegation or DPoP.
type ceilingClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	ClientID string `json:"client_id"`
	Iat      int64  `json:"iat"`
	Nbf      int64  `json:"nbf"`
	Exp      int64  `json:"exp"`
	JTI      string `json:"jti"`
	Scope    string `json:"scope,omitempty"`
	Agent    struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"agent"`
	TraceID string `json:"trace_id"`
}

// tokenResponse is a successful token response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// ceilingTTL is the lifetime of a ceiling token, agentid's default.
const ceilingTTL = 5 * time.Minute

// maxBody bounds a request body the ceiling reads, as agentid does.
const maxBody = 64 << 10

// ServeHTTP implements http.Handler.
func (c *Ceiling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == tokenPath && r.Method == http.MethodPost:
		c.token(w, r)
	case r.URL.Path == jwksPath && r.Method == http.MethodGet:
		writeRaw(w, http.StatusOK, c.jwks)
	case r.URL.Path == metadataPath && r.Method == http.MethodGet:
		writeRaw(w, http.StatusOK, c.metadata)
	default:
		http.NotFound(w, r)
	}
}

func (c *Ceiling) token(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body could not be read")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("grant_type") != "client_credentials" || form.Get("client_assertion_type") != AssertionType {
		oauthError(w, http.StatusBadRequest, "invalid_request", "want a client_credentials request with a client assertion")
		return
	}
	now := c.clock()
	claims, err := c.verify(form.Get("client_assertion"), now)
	if err != nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	tok, err := c.mint(claims.Iss, form.Get("scope"), now)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	resp := tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(ceilingTTL / time.Second), Scope: form.Get("scope")}
	b, err := json.Marshal(resp) //nolint:gosec // answering with a token is the endpoint's job
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeRaw(w, http.StatusOK, b)
}

// verify checks the assertion's signature with the client key and the
// claims a token needs: iss = sub, aud = the issuer, not expired, a jti.
func (c *Ceiling) verify(raw string, now time.Time) (assertionClaims, error) {
	payload, err := verifyES256(c.clientKey, raw)
	if err != nil {
		return assertionClaims{}, err
	}
	var cl assertionClaims
	switch err := json.Unmarshal(payload, &cl); {
	case err != nil:
		return cl, fmt.Errorf("%w: claims are not a JSON object", ErrAssertion)
	case cl.Iss == "" || cl.Iss != cl.Sub:
		return cl, fmt.Errorf("%w: iss and sub must both be the client id", ErrAssertion)
	case cl.Aud != c.issuer:
		return cl, fmt.Errorf("%w: aud is not the issuer", ErrAssertion)
	case cl.Exp <= now.Unix():
		return cl, fmt.Errorf("%w: expired", ErrAssertion)
	case cl.Jti == "":
		return cl, fmt.Errorf("%w: no jti", ErrAssertion)
	}
	return cl, nil
}

// mint returns an ES256 access token for the client.
func (c *Ceiling) mint(clientID, scope string, now time.Time) (string, error) {
	var rnd [16 + 13]byte
	if _, err := io.ReadFull(c.rand, rnd[:]); err != nil {
		return "", fmt.Errorf("bench: read random: %w", err)
	}
	cl := ceilingClaims{
		Iss: c.issuer, Sub: "spiffe://bench.invalid/agent/bench-agent", Aud: "https://api.example.com",
		ClientID: clientID, Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(ceilingTTL).Unix(),
		JTI: "tok_" + hex.EncodeToString(rnd[16:]), Scope: scope, TraceID: hex.EncodeToString(rnd[:16]),
	}
	cl.Agent.ID, cl.Agent.Name = clientID, "bench-agent"
	payload, err := json.Marshal(cl)
	if err != nil {
		return "", fmt.Errorf("bench: encode claims: %w", err)
	}
	return signES256(c.rand, c.signKey, c.header, payload)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
	writeRaw(w, status, b)
}

// ServeCeilingParams configure ServeCeiling.
type ServeCeilingParams struct {
	// Listen is the loopback address to listen on ("127.0.0.1:0").
	Listen string
	// ClientKeyPEM is the client's public key (PEM "PUBLIC KEY", P-256).
	ClientKeyPEM []byte
	// Hello receives the one-line Hello once the server listens.
	Hello io.Writer
	Clock func() time.Time
	Rand  io.Reader
}

// ServeCeiling runs a Ceiling on a loopback listener until ctx ends; it is
// the body of the hidden child command the bench starts.
func ServeCeiling(ctx context.Context, p ServeCeilingParams) error {
	pub, err := ParsePublicKey(p.ClientKeyPEM)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", p.Listen)
	if err != nil {
		return fmt.Errorf("bench: ceiling: %w", err)
	}
	base := "http://" + ln.Addr().String()
	c, err := NewCeiling(CeilingParams{ClientKey: pub, Issuer: base, Clock: p.Clock, Rand: p.Rand})
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if err := WriteHello(p.Hello, Hello{URL: base}); err != nil {
		_ = srv.Close()
		return err
	}
	select {
	case err := <-errc:
		return fmt.Errorf("bench: ceiling: %w", err)
	case <-ctx.Done():
	}
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		return fmt.Errorf("bench: ceiling shutdown: %w", err)
	}
	return nil
}

// ParsePublicKey parses a PEM "PUBLIC KEY" block holding a P-256 key.
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("bench: want a PEM PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bench: public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("bench: want a P-256 public key")
	}
	return pub, nil
}

// encodePublicKey returns the PEM "PUBLIC KEY" of pub.
func encodePublicKey(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("bench: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
