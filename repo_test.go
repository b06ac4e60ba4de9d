package agentid_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/agentid/agentid"

// goPackages returns every directory holding non-test Go files, relative
// to the module root, mapped to its non-test files.
func goPackages(t *testing.T) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "agentid-data") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestPackageDocs: every package has exactly one file carrying its
// package doc comment.
func TestPackageDocs(t *testing.T) {
	fset := token.NewFileSet()
	for dir, files := range goPackages(t) {
		var withDoc []string
		for _, f := range files {
			af, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				withDoc = append(withDoc, f)
			}
		}
		if len(withDoc) != 1 {
			t.Errorf("package %s: %d files carry a package doc (%v), want exactly 1", dir, len(withDoc), withDoc)
		}
	}
}

// imports returns the module-internal imports of the non-test files of a
// package directory.
func imports(t *testing.T, files []string) []string {
	t.Helper()
	fset := token.NewFileSet()
	seen := map[string]bool{}
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range af.Imports {
			p, _ := strconv.Unquote(is.Path.Value)
			seen[p] = true
		}
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// TestDependencyDirection enforces store ← domain ← transports ← server ←
// cli ← cmd, and that sdk/ stands alone.
func TestDependencyDirection(t *testing.T) {
	layer := func(dir string) int {
		dir = filepath.ToSlash(dir)
		switch {
		case dir == "internal/store", dir == "internal/recordid", dir == "internal/buildinfo":
			return 0
		case strings.HasPrefix(dir, "internal/store/"):
			return 1
		case dir == "internal/httpapi":
			return 3
		case dir == "internal/server":
			return 4
		case dir == "internal/cli":
			return 5
		case strings.HasPrefix(dir, "cmd/"):
			return 6
		case strings.HasPrefix(dir, "internal/"):
			return 2 // domain packages
		}
		return -1
	}
	for dir, files := range goPackages(t) {
		dir = filepath.ToSlash(dir)
		for _, imp := range imports(t, files) {
			if strings.HasPrefix(dir, "sdk") && strings.HasPrefix(imp, module+"/internal/") {
				t.Errorf("%s imports %s: sdk/ must import nothing from internal/", dir, imp)
			}
			if dir == "internal/store" && strings.HasPrefix(imp, module+"/internal/") {
				t.Errorf("internal/store imports %s: the storage seam imports no other internal package", imp)
			}
			if !strings.HasPrefix(imp, module+"/internal/") || strings.HasPrefix(dir, "sdk") {
				continue
			}
			from, to := layer(dir), layer(strings.TrimPrefix(imp, module+"/"))
			if from == 1 && to == 1 && (dir == "internal/store/storetest" || imp == module+"/internal/store/sqlstore") {
				continue // backends share sqlstore; the conformance suite opens every backend
			}
			if from >= 0 && to >= from && (from != 2 || to != 2) {
				t.Errorf("%s (layer %d) imports %s (layer %d): dependencies point toward the store", dir, from, imp, to)
			}
		}
	}
}

// TestSDKHasNoDatabaseDriver checks the SDK's whole import graph.
func TestSDKHasNoDatabaseDriver(t *testing.T) {
	if _, err := os.Stat("sdk"); err != nil {
		t.Skip("no sdk/")
	}
	out, err := exec.Command("go", "list", "-deps", "./sdk/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "modernc.org/sqlite") || strings.Contains(dep, "jackc/pgx") ||
			strings.HasPrefix(dep, module+"/internal/") {
			t.Errorf("sdk/ depends on %s", dep)
		}
	}
}
