package identity

import (
	"slices"
	"testing"
	"time"
)

// FuzzInventoryQuery feeds the parsers of GET /v1/inventory's untrusted
// query parameters (finding, expiring_within) arbitrary input: they never
// panic, and what they accept is within bounds.
func FuzzInventoryQuery(f *testing.F) {
	for _, s := range []string{"", "orphaned", "orphaned,suspended", " client_secret ,,", "14d", "72h", "-1h", "366d", "1.5h", "+3d", "\x00d"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, findings, window string) {
		codes, err := ParseFindingCodes([]string{findings, window})
		if err == nil {
			if !slices.IsSortedFunc(codes, func(a, b FindingCode) int {
				return slices.Index(FindingCodes(), a) - slices.Index(FindingCodes(), b)
			}) || len(slices.Compact(slices.Clone(codes))) != len(codes) {
				t.Errorf("ParseFindingCodes(%q, %q) = %v: not in order or not unique", findings, window, codes)
			}
			for _, c := range codes {
				if !slices.Contains(FindingCodes(), c) {
					t.Errorf("ParseFindingCodes accepted unknown code %q", c)
				}
			}
		} else {
			checkValidation(t, err, "finding")
		}
		d, err := ParseExpiringWithin(window)
		if err != nil {
			checkValidation(t, err, "expiring_within")
			return
		}
		if d < time.Second || d > MaxExpiringWithin {
			t.Errorf("ParseExpiringWithin(%q) = %v, out of bounds", window, d)
		}
	})
}
