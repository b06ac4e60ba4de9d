package fault

import (
	"errors"
	"testing"
)

func TestValidationError(t *testing.T) {
	base := errors.New("store: invalid")
	kind := NewSentinel("pkg: invalid request", base)
	tests := []struct {
		name  string
		field string
		want  string
	}{
		{"field", "name", "pkg: invalid name: must not be empty"},
		{"no field", "", "pkg: invalid request: must not be empty"},
	}
	for _, tc := range tests {
		err := error(Invalid(kind, "pkg", tc.field, "must not be %s", "empty"))
		if got := err.Error(); got != tc.want {
			t.Errorf("%s: Error() = %q, want %q", tc.name, got, tc.want)
		}
		if !errors.Is(err, kind) || !errors.Is(err, base) {
			t.Errorf("%s: %v does not match its kind and the store sentinel", tc.name, err)
		}
		ve, ok := errors.AsType[*ValidationError](err)
		if !ok || ve.Field != tc.field || ve.Reason != "must not be empty" {
			t.Errorf("%s: errors.AsType = %+v, %v", tc.name, ve, ok)
		}
	}
	if other := NewSentinel("pkg: not found", nil); errors.Is(Invalid(kind, "pkg", "x", "y"), other) {
		t.Error("a validation error matches an unrelated sentinel")
	}
}

func TestSentinel(t *testing.T) {
	base := errors.New("store: not found")
	err := NewSentinel("pkg: not found", base)
	if got, want := err.Error(), "pkg: not found"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, base) {
		t.Errorf("%v does not match %v", err, base)
	}
	if errors.Is(base, err) {
		t.Errorf("%v matches the refinement %v", base, err)
	}
}
