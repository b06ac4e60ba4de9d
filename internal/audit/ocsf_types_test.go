package audit

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// eventTypeInSource finds the event types the code writes: the type of an
// Origin.Event call, and Event… constants.
var eventTypeInSource = regexp.MustCompile(`(?:\.Event\([A-Za-z.]+, |\b[A-Za-z]*Event[A-Za-z]*\s*=\s*)"([a-z_]+(?:\.[a-z_]+)+)"`)

// TestOCSFMapsEveryEventType reads the source of internal/ for the event
// types agentid writes and checks that the OCSF table knows each one, so
// that a new event type is not exported as a Base Event unnoticed.
func TestOCSFMapsEveryEventType(t *testing.T) {
	found := map[string]string{} // type → a file that writes it
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range eventTypeInSource.FindAllSubmatch(src, -1) {
			found[string(m[1])] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 30 { // the scan itself must work
		t.Fatalf("found only %d event types in the source: %v", len(found), found)
	}
	for typ, path := range found {
		if _, ok := ocsfClassOf(typ); !ok {
			t.Errorf("event type %q (%s) has no OCSF class: add it to ocsfClassOf and ADR 0021", typ, path)
		}
	}
}
