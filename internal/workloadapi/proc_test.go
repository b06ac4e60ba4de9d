package workloadapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agentid/agentid/internal/workloadapi"
)

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path) //nolint:gosec // a test file
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestProcReader reads executables from a fake proc root: a process's exe
// link, a process whose link is dangling (hash unknown) and one that is
// gone.
func TestProcReader(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "ticket-triage")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for pid, target := range map[string]string{"42": bin, "43": bin + ".gone"} {
		if err := os.Mkdir(filepath.Join(root, pid), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, pid, "exe")); err != nil {
			t.Fatal(err)
		}
	}
	read := workloadapi.ProcReader(root)

	got, err := read(42)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(workloadapi.Executable{Path: bin, SHA256: sha256File(t, bin)}, got); diff != "" {
		t.Errorf("process 42 (-want +got):\n%s", diff)
	}
	got, err = read(43)
	if err == nil || got != (workloadapi.Executable{Path: bin + ".gone"}) {
		t.Errorf("process 43 = %+v, %v; want the path alone and an error", got, err)
	}
	for _, pid := range []int32{44, 0, -1} {
		if got, err := read(pid); err == nil || got != (workloadapi.Executable{}) {
			t.Errorf("process %d = %+v, %v; want an error", pid, got, err)
		}
	}
}

// TestProcReaderSelf reads this test process from the real /proc.
func TestProcReaderSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		t.Fatal(err)
	}
	got, err := workloadapi.ProcReader("/proc")(int32(os.Getpid())) //nolint:gosec // a pid fits in an int32
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(workloadapi.Executable{Path: self, SHA256: sha256File(t, self)}, got); diff != "" {
		t.Errorf("this process (-want +got):\n%s", diff)
	}
}

// TestProcReaderRehashesChangedFile: a reader remembers hashes, but a file
// rewritten in place (same inode, same size, even the same mtime) is
// hashed again.
func TestProcReaderRehashesChangedFile(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "ticket-triage")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "42"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(root, "42", "exe")); err != nil {
		t.Fatal(err)
	}
	read := workloadapi.ProcReader(root)
	for range 2 {
		got, err := read(42)
		if err != nil || got.SHA256 != sha256File(t, bin) {
			t.Fatalf("read = %+v, %v; want the file's hash", got, err)
		}
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(bin, os.O_WRONLY, 0) //nolint:gosec // a test file
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("#!/bin/echo"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bin, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	got, err := read(42)
	if err != nil || got.SHA256 != sha256File(t, bin) {
		t.Fatalf("after a rewrite: read = %+v, %v; want the new hash %s", got, err, sha256File(t, bin))
	}
}
