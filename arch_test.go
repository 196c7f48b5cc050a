package flowact

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/flowact/flowact"

type pkgInfo struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkgInfo
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// rel returns a package path relative to the module ("" for the root).
func rel(path string) string {
	if path == module {
		return ""
	}
	return strings.TrimPrefix(path, module+"/")
}

// under reports whether rel path p is dir or below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func ours(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// rule is one architecture rule: a package matching who may not depend on anything matching what.
type rule struct {
	name       string
	who        func(p string) bool // rel path of the importing package
	what       func(dep string) bool
	directOnly bool // check Imports, not Deps
}

func prefix(pfx string) func(string) bool {
	return func(dep string) bool { return dep == pfx || strings.HasPrefix(dep, pfx+"/") }
}

func ourDir(dir string) func(string) bool {
	return func(dep string) bool { return ours(dep) && under(rel(dep), dir) }
}

func anyOf(fs ...func(string) bool) func(string) bool {
	return func(s string) bool {
		for _, f := range fs {
			if f(s) {
				return true
			}
		}
		return false
	}
}

func TestImportRules(t *testing.T) {
	robotSide := anyOf(ourDir("robot"), ourDir("sim"), ourDir("calib"), ourDir("dataset"))
	rules := []rule{
		{name: "expert sees no robot, policy, sim, calib, dataset or fleet",
			who:  func(p string) bool { return under(p, "expert") },
			what: anyOf(ourDir("robot"), ourDir("policy"), ourDir("sim"), ourDir("calib"), ourDir("fleet"), ourDir("cmd"), prefix("github.com/bluenviron/goroslib"))},
		{name: "expert (but train) sees no dataset",
			who:  func(p string) bool { return under(p, "expert") && !under(p, "expert/train") },
			what: ourDir("dataset")},
		{name: "the robot stack sees no expert",
			who:  robotSide,
			what: ourDir("expert")},
		{name: "only expert/train reaches gorgonia",
			who:  func(p string) bool { return !under(p, "expert/train") && !under(p, "cmd") },
			what: prefix("gorgonia.org")},
		{name: "the control loop does not reach expert/train",
			who:  func(p string) bool { return under(p, "policy") },
			what: ourDir("expert/train")},
		{name: "only robot/ros imports goroslib",
			who:        func(p string) bool { return !under(p, "robot/ros") },
			what:       prefix("github.com/bluenviron/goroslib"),
			directOnly: true},
		{name: "only fleet imports nats.go",
			who:        func(p string) bool { return !under(p, "fleet") },
			what:       prefix("github.com/nats-io/nats.go"),
			directOnly: true},
		{name: "nothing outside cmd imports cmd",
			who:  func(p string) bool { return !under(p, "cmd") },
			what: ourDir("cmd")},
		{name: "robot is a leaf of ours",
			who:  func(p string) bool { return p == "robot" },
			what: anyOf(ours)},
		{name: "expert is a leaf of ours",
			who:  func(p string) bool { return p == "expert" },
			what: anyOf(ours)},
		{name: "the control loop and the expert link no testing, no bag library, no testify",
			who:  func(p string) bool { return under(p, "policy") || under(p, "expert") },
			what: anyOf(prefix("testing"), prefix("github.com/foxglove/go-rosbag"), prefix("github.com/pierrec/lz4"), prefix("github.com/stretchr/testify"))},
		{name: "dataset imports nothing of ours but robot (robot.Embedding)",
			who:  func(p string) bool { return p == "dataset" },
			what: func(dep string) bool { return ours(dep) && dep != module+"/robot" }},
		{name: "calib/norm is a leaf of ours (statistics from bags are the training side's)",
			who:  func(p string) bool { return p == "calib/norm" },
			what: anyOf(ours)},
	}
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		for _, ru := range rules {
			if !ru.who(r) {
				continue
			}
			deps := p.Deps
			if ru.directOnly {
				deps = p.Imports
			}
			for _, d := range deps {
				if d != p.ImportPath && ru.what(d) {
					t.Errorf("%s imports %s: breaks %q", p.ImportPath, d, ru.name)
				}
			}
		}
	}
}

// TestNoInit keeps package state explicit: no init functions anywhere in the module. It walks the
// tree itself (rather than asking go list) so that go test's cache sees every file it read.
func TestNoInit(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range file.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "init" {
				t.Errorf("%s: func init", fset.Position(fd.Pos()))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
