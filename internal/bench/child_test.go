package bench

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shChild starts `sh -c script` as a child.
func shChild(t *testing.T, script string) (*child, error) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	return startChild(t.Context(), "test", sh, []string{"-c", script}, filepath.Join(t.TempDir(), "child.log"))
}

func TestChildLifeCycle(t *testing.T) {
	c, err := shChild(t, `trap 'exit 0' INT; echo '{"url":"http://127.0.0.1:1","admin_token":"t"}'; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	if c.hello != (Hello{URL: "http://127.0.0.1:1", AdminToken: "t"}) {
		t.Errorf("hello %+v", c.hello)
	}
	if _, err := c.cpu(); err != nil && !errors.Is(err, ErrUnsupported) {
		t.Errorf("cpu: %v", err)
	}
	if err := c.stop(); err != nil {
		t.Fatalf("stop after a clean exit: %v", err)
	}
}

func TestChildFailures(t *testing.T) {
	for _, tt := range []struct {
		name, script, want string
	}{
		{"exits before its hello", `echo 'no database' >&2; exit 3`, "no database"},
		{"prints no hello", `echo 'listening'; exec sleep 5`, `printed "listening"`},
		{"hello without a URL", `echo '{}'; exec sleep 5`, "not a hello line"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := shChild(t, tt.script)
			if !errors.Is(err, ErrChild) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("startChild = %v, want ErrChild naming %q", err, tt.want)
			}
		})
	}
}

func TestChildCrashIsReported(t *testing.T) {
	c, err := shChild(t, `echo '{"url":"http://127.0.0.1:1"}'; echo 'panic: boom' >&2; exit 2`)
	if err != nil {
		t.Fatal(err)
	}
	<-c.done
	if err := c.stop(); !errors.Is(err, ErrChild) || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("stop after a crash = %v, want ErrChild with the log tail", err)
	}
}
