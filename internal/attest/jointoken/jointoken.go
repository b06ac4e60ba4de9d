// Package jointoken is the codec of agents' join tokens (ADR 0015
// addendum C): a one-time, short-lived secret bound to one agent, which
// an instance redeems once at the token endpoint for an instance and an
// access token. The token is self-contained — its id, agent and expiry,
// authenticated with HMAC-SHA256 under a key every replica derives from
// the root key — so creating one stores nothing; redeeming records its id
// with store.Tx.UseOnce, which lets exactly one of concurrent uses win,
// across replicas.
package jointoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Prefix starts every agent join token, so that secret scanners recognise
// a leaked one (node join tokens start with aidjt_).
const Prefix = "aidajt_"

// IDPrefix starts a join token's id.
const IDPrefix = "ajt_"

// MaxLen bounds a join token.
const MaxLen = 256

// ErrMalformed means a string is not a join token of this key: wrong
// shape, or a MAC that does not verify.
var ErrMalformed = errors.New("jointoken: not a valid join token")

// Claims is what a join token says.
type Claims struct {
	ID        string // ajt_…: its one-time identifier
	AgentID   string // agt_…: the agent it is bound to
	ExpiresAt time.Time
}

// Codec mints and parses join tokens under one key. Safe for concurrent
// use.
type Codec struct {
	key []byte
}

// New returns a codec; key is at least 32 bytes.
func New(key []byte) (*Codec, error) {
	if len(key) < 32 {
		return nil, errors.New("jointoken: the key must be at least 32 bytes")
	}
	return &Codec{key: append([]byte(nil), key...)}, nil
}

// Mint returns the token of c: Prefix, the base64url payload
// "id.agent.exp", '.', the base64url HMAC-SHA256 of the payload.
func (c *Codec) Mint(cl Claims) string {
	payload := cl.ID + "." + cl.AgentID + "." + strconv.FormatInt(cl.ExpiresAt.Unix(), 10)
	enc := base64.RawURLEncoding.EncodeToString([]byte(payload))
	return Prefix + enc + "." + base64.RawURLEncoding.EncodeToString(c.mac(enc))
}

func (c *Codec) mac(enc string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("agentid agent join token\x00" + enc))
	return m.Sum(nil)
}

// Parse verifies s's MAC and shape and returns its claims; expiry is the
// caller's to check. The error is ErrMalformed, with no detail of s.
func (c *Codec) Parse(s string) (Claims, error) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok || len(s) > MaxLen {
		return Claims{}, ErrMalformed
	}
	enc, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return Claims{}, ErrMalformed
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, c.mac(enc)) {
		return Claims{}, ErrMalformed
	}
	payload, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return Claims{}, ErrMalformed
	}
	parts := strings.Split(string(payload), ".")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], IDPrefix) || !strings.HasPrefix(parts[1], "agt_") {
		return Claims{}, ErrMalformed
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || exp <= 0 {
		return Claims{}, ErrMalformed
	}
	return Claims{ID: parts[0], AgentID: parts[1], ExpiresAt: time.Unix(exp, 0).UTC()}, nil
}

// WellFormed reports whether s looks like an agent join token (prefix and
// length), without verifying it.
func WellFormed(s string) bool {
	return strings.HasPrefix(s, Prefix) && len(s) <= MaxLen
}

// String is a safe description of a join token for errors: its id, never
// the secret.
func (cl Claims) String() string { return fmt.Sprintf("join token %s of %s", cl.ID, cl.AgentID) }

// IDTime returns the creation time, to the millisecond, that a join
// token's id encodes (an ajt_… id is a record id: its first ten base32
// characters are a millisecond timestamp); ok is false when id is not a
// well-formed ajt_… id. The time is only as trustworthy as the id: a
// caller that has not verified a token uses it to narrow a search, never
// as evidence.
func IDTime(id string) (t time.Time, ok bool) {
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	rest, found := strings.CutPrefix(id, IDPrefix)
	if !found || len(rest) != 26 || rest[0] > '7' {
		return time.Time{}, false
	}
	var ms uint64
	for i := range len(rest) {
		v := strings.IndexByte(alphabet, rest[i])
		if v < 0 {
			return time.Time{}, false
		}
		if i < 10 {
			ms = ms<<5 | uint64(v) //nolint:gosec // G115: v is 0 to 31
		}
	}
	return time.UnixMilli(int64(ms)).UTC(), true //nolint:gosec // G115: ms < 2^48
}
