package sqlstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/agentid/agentid/internal/store"
)

func TestMigrations(t *testing.T) {
	ok := fstest.MapFS{
		"0002_more.sql": {Data: []byte("B")},
		"0001_init.sql": {Data: []byte("A")},
	}
	ms, err := Migrations(ok)
	if err != nil || len(ms) != 2 || ms[0].Version != 1 || ms[1].Name != "more" || ms[1].SQL != "B" {
		t.Fatalf("Migrations = %+v, %v", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"0001_init.sql": {}, "0003_x.sql": {}},
		"bad name": {"0001_init.sql": {}, "2_x.sql": {}},
		"no one":   {"0002_x.sql": {}},
	} {
		if _, err := Migrations(fsys); err == nil {
			t.Errorf("%s: Migrations accepted it", name)
		}
	}
}

func TestPageTokens(t *testing.T) {
	tok := encodeToken("agents", "agt_01")
	if key, err := decodeToken("agents", tok); err != nil || key != "agt_01" {
		t.Errorf("decodeToken = %q, %v", key, err)
	}
	if key, err := decodeToken("agents", ""); err != nil || key != "" {
		t.Errorf("decodeToken(\"\") = %q, %v", key, err)
	}
	for _, bad := range []string{"%%%", tok + "=", encodeToken("owners", "own_1"), encodeToken("agents", "")} {
		if _, err := decodeToken("agents", bad); !errors.Is(err, store.ErrBadPageToken) || !errors.Is(err, store.ErrInvalid) {
			t.Errorf("decodeToken(%q) = %v, want ErrBadPageToken and ErrInvalid", bad, err)
		}
	}
	if _, err := decodeSeqToken("audit", encodeToken("audit", "-3")); !errors.Is(err, store.ErrBadPageToken) {
		t.Errorf("decodeSeqToken(-3) = %v", err)
	}
}

func TestAuditColsE(t *testing.T) {
	if want := "e." + strings.ReplaceAll(auditCols, ", ", ", e."); auditColsE != want {
		t.Fatalf("auditColsE = %q, want %q", auditColsE, want)
	}
}

func TestErrRetryIsAConflict(t *testing.T) {
	err := fmt.Errorf("store: update agent: %w", fmt.Errorf("%w (postgres: deadlock)", ErrRetry))
	if !errors.Is(err, ErrRetry) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("%v: want both ErrRetry and store.ErrConflict", err)
	}
	if errors.Is(fmt.Errorf("x: %w", store.ErrConflict), ErrRetry) {
		t.Fatal("a plain conflict (a refused compare-and-swap) must not be retried")
	}
	for n := 1; n <= MaxRetries; n++ {
		if d := retryDelay(n); d < time.Millisecond<<(n-1) || d >= 2*time.Millisecond<<(n-1) {
			t.Errorf("retryDelay(%d) = %v", n, d)
		}
	}
}
