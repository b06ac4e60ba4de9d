package jointoken_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentid/agentid/internal/attest/jointoken"
)

func codec(t testing.TB, key string) *jointoken.Codec {
	t.Helper()
	c, err := jointoken.New([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	c := codec(t, strings.Repeat("k", 32))
	want := jointoken.Claims{ID: "ajt_01", AgentID: "agt_01", ExpiresAt: time.Unix(1_900_000_000, 0).UTC()}
	s := c.Mint(want)
	if !strings.HasPrefix(s, jointoken.Prefix) || !jointoken.WellFormed(s) {
		t.Fatalf("token %q", s)
	}
	got, err := c.Parse(s)
	if err != nil || got != want {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
	other := codec(t, strings.Repeat("x", 32))
	for name, bad := range map[string]string{
		"other key":   other.Mint(want),
		"no prefix":   strings.TrimPrefix(s, jointoken.Prefix),
		"flipped mac": s[:len(s)-2] + map[bool]string{true: "A", false: "B"}[s[len(s)-2] != 'A'] + s[len(s)-1:],
		"no mac":      strings.Split(s, ".")[0],
		"long":        s + strings.Repeat("A", jointoken.MaxLen),
		"bad agent":   c.Mint(jointoken.Claims{ID: "ajt_01", AgentID: "x", ExpiresAt: want.ExpiresAt}),
		"bad id":      c.Mint(jointoken.Claims{ID: "njt_01", AgentID: "agt_01", ExpiresAt: want.ExpiresAt}),
		"dotted id":   c.Mint(jointoken.Claims{ID: "ajt_0.1", AgentID: "agt_01", ExpiresAt: want.ExpiresAt}),
	} {
		if _, err := c.Parse(bad); !errors.Is(err, jointoken.ErrMalformed) {
			t.Errorf("%s: Parse = %v", name, err)
		}
	}
	if _, err := jointoken.New([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
}

// FuzzParse: never panics; whatever parses was minted by the key (a
// re-mint gives the same string).
func FuzzParse(f *testing.F) {
	c := codec(f, strings.Repeat("k", 32))
	f.Add(c.Mint(jointoken.Claims{ID: "ajt_01", AgentID: "agt_01", ExpiresAt: time.Unix(1_900_000_000, 0)}))
	f.Add("aidajt_.")
	f.Add("aidajt_YWp0XzAxLmFndF8wMS4x.")
	f.Fuzz(func(t *testing.T, s string) {
		cl, err := c.Parse(s)
		if err != nil {
			return
		}
		if c.Mint(cl) != s {
			t.Fatalf("%q parsed as %+v, which mints otherwise", s, cl)
		}
	})
}
