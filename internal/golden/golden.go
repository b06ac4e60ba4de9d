// Package golden compares what a test produced with a golden file in the
// test's testdata/ directory, and rewrites the file instead when the test
// binary runs with -update. Import it only from tests.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// update is the -update flag of every test binary that imports golden.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/") //nolint:gochecknoglobals // a test flag

// Check compares got with testdata/<name>.golden, or writes it there under
// -update.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	File(t, name+".golden", got)
}

// File compares got with testdata/<file>, or writes it there under -update.
func File(t testing.TB, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.MkdirAll("testdata", 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path) //nolint:gosec // a test's own testdata
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}
