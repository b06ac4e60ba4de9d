package cli

import (
	"fmt"
	"strings"
	"time"
)

// timeArg is a point in time given on the command line, either absolute
// (RFC 3339, e.g. 2025-06-01T12:00:00Z, or a date, 2025-06-01, meaning
// midnight UTC) or relative to now as a Go duration (1h, 30m, 72h: that long
// ago). The zero value means "not given".
type timeArg struct {
	abs time.Time
	ago time.Duration
	set bool
}

// UnmarshalText implements encoding.TextUnmarshaler for kong.
func (a *timeArg) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		*a = timeArg{abs: t.UTC(), set: true}
		return nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		*a = timeArg{abs: t.UTC(), set: true}
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is neither an RFC 3339 time, a date nor a duration", s)
	}
	if d < 0 {
		return fmt.Errorf("%q: a relative time is a positive duration (how long ago)", s)
	}
	*a = timeArg{ago: d, set: true}
	return nil
}

// at resolves the argument against now; the zero time when not given.
func (a timeArg) at(now time.Time) time.Time {
	switch {
	case !a.set:
		return time.Time{}
	case a.ago != 0 || a.abs.IsZero():
		return now.Add(-a.ago).UTC()
	default:
		return a.abs
	}
}

// parseLabels turns repeated k=v flags into a map. Keys must be non-empty
// and unique.
func parseLabels(kvs []string) (map[string]string, error) {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &exitError{code: ExitUsage, msg: fmt.Sprintf("--label %q: want KEY=VALUE", kv)}
		}
		if _, dup := m[k]; dup {
			return nil, &exitError{code: ExitUsage, msg: fmt.Sprintf("--label: key %q given twice", k)}
		}
		m[k] = v
	}
	return m, nil
}
