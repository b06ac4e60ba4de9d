package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentid/agentid/internal/store"
)

// querier is what *sql.DB and *sql.Conn have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// timeArg encodes t for the dialect: NULL for the zero time, otherwise UTC
// truncated to the microsecond.
func (d *Dialect) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if d.TimeMicros {
		return t.UnixMicro()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// timeCol scans a time column of either encoding into a UTC time.Time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC().Truncate(time.Microsecond)
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", src)
	}
	return nil
}

// bytesCol scans a BLOB/BYTEA column, reading empty as nil.
type bytesCol struct{ b *[]byte }

func (c bytesCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.b = nil
	case []byte:
		if len(v) == 0 {
			*c.b = nil
		} else {
			*c.b = slices.Clone(v)
		}
	case string:
		if v == "" {
			*c.b = nil
		} else {
			*c.b = []byte(v)
		}
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into bytes", src)
	}
	return nil
}

// listCol scans a column listArg wrote into a []string (parseList).
type listCol struct{ l *[]string }

func (c listCol) Scan(src any) error {
	s, err := textOf(src, "a list")
	if err != nil {
		return err
	}
	*c.l, err = parseList(s)
	return err
}

// mapCol scans a column mapArg wrote into a map[string]string (parseMap).
type mapCol struct{ m *map[string]string }

func (c mapCol) Scan(src any) error {
	s, err := textOf(src, "a map")
	if err != nil {
		return err
	}
	*c.m, err = parseMap(s)
	return err
}

// textOf is a text column's value as the drivers return it.
func textOf(src any, what string) (string, error) {
	switch v := src.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	return "", fmt.Errorf("sqlstore: cannot scan %T into %s", src, what)
}

// bytesArg stores nil and empty slices alike as an empty blob.
func bytesArg(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// nullIfEmpty stores "" as NULL, so that unique indexes ignore it.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func listArg(l []string) (string, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("encode list: %w", err)
	}
	return string(b), nil
}

func mapArg(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode map: %w", err)
	}
	return string(b), nil
}

func parseList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decode list: %w", err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

func parseMap(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode map: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// Page tokens are base64url("<kind>:<last key>"), so a token of one list is
// rejected by another.
func encodeToken(kind, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + key))
}

func badToken(kind string) error {
	return fmt.Errorf("store: list %s: %w: %w", kind, store.ErrInvalid, store.ErrBadPageToken)
}

// decodeToken returns the last key of the previous page, "" for no token.
func decodeToken(kind, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", badToken(kind)
	}
	key, ok := strings.CutPrefix(string(b), kind+":")
	if !ok || key == "" {
		return "", badToken(kind)
	}
	return key, nil
}

func decodeSeqToken(kind, token string) (int64, error) {
	key, err := decodeToken(kind, token)
	if err != nil || key == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(key, 10, 64)
	if err != nil || n <= 0 {
		return 0, badToken(kind)
	}
	return n, nil
}

// classify turns a database error into one that wraps the matching store
// sentinel (keeping the driver's message as text only), sql.ErrNoRows into
// store.ErrNotFound, and leaves other errors as they are.
func (d *Dialect) classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if d.Classify != nil {
		if s := d.Classify(err); s != nil {
			return fmt.Errorf("%w (%s: %v)", s, d.Name, err) //nolint:errorlint // the driver error is deliberately not wrapped
		}
	}
	return err
}
