package configs_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/configs"
)

type joint struct {
	Velocity float64 `yaml:"velocity"`
	Jerk     float64 `yaml:"jerk"`
}

type cfg struct {
	Name   string           `yaml:"name"`
	Rate   int              `yaml:"rate"`
	Joints map[string]joint `yaml:"joints"`
	Steps  []joint          `yaml:"steps"`
	Tags   []string         `yaml:"tags"`
}

// Inner is inlined into rich: its keys are rich's.
type Inner struct {
	Depth int `yaml:"depth"`
}

type rich struct {
	Inner   `yaml:",inline"`
	Timeout time.Duration `yaml:"timeout"`
	On      bool
	Ptr     *joint `yaml:"ptr"`
}

// checked has a Validate method that Decode must call.
type checked struct {
	Rate int `yaml:"rate"`
}

func (c *checked) Validate() error {
	if c.Rate <= 0 {
		return fmt.Errorf("rate %d: must be positive", c.Rate)
	}
	return nil
}

func TestDecode(t *testing.T) {
	var c cfg
	err := configs.Decode("ok.yaml", []byte(`# a comment
name: arm
rate: 500
joints:
  elbow: {velocity: 2, jerk: 100}
steps:
  - velocity: 1
tags: [a, b]
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "arm" || c.Rate != 500 || c.Joints["elbow"] != (joint{2, 100}) || len(c.Steps) != 1 || len(c.Tags) != 2 {
		t.Errorf("decoded %+v", c)
	}
	var k checked
	if err := configs.Decode("k.yaml", []byte("rate: 3\n"), &k); err != nil || k.Rate != 3 {
		t.Errorf("Decode with Validate: %v, %+v", err, k)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		v         any
		want      []string // substrings of the message
		is        error
	}{
		{"unknown top-level key", "name: a\ncolour: red\n", &cfg{},
			[]string{`configs: t.yaml:2: colour: unknown key "colour" (want one of: name, rate, joints, steps, tags)`}, nil},
		{"unknown nested key", "joints:\n  elbow:\n    velocity: 1\n    jerkk: 3\n", &cfg{},
			[]string{`t.yaml:4: joints.elbow.jerkk: unknown key "jerkk" (want one of: velocity, jerk)`}, nil},
		{"unknown key in flow mapping", "joints:\n  elbow: {velocty: 1}\n", &cfg{},
			[]string{`t.yaml:2: joints.elbow.velocty: unknown key "velocty"`}, nil},
		{"unknown key after a known one in a flow mapping", "joints:\n  elbow: {velocity: 1, jerkk: 2}\n", &cfg{},
			[]string{`t.yaml:2: joints.elbow.jerkk: unknown key "jerkk"`}, nil},
		{"wrong type", "joints:\n  elbow:\n    velocity: fast\n", &cfg{},
			[]string{"t.yaml:3: joints.elbow.velocity: `fast` is a string, want a number"}, nil},
		{"wrong type after a known key in a flow mapping", "joints:\n  elbow: {velocity: 1, jerk: fast}\n", &cfg{},
			[]string{"t.yaml:2: joints.elbow.jerk: `fast` is a string, want a number"}, nil},
		{"wrong type in a sequence", "steps:\n  - velocity: 1\n  - velocity: [1]\n", &cfg{},
			[]string{"t.yaml:3: steps[1].velocity: got a list, want a number"}, nil},
		{"mapping for a scalar", "rate:\n  hz: 5\n", &cfg{},
			[]string{"t.yaml:2: rate: got a mapping, want an integer"}, nil},
		{"repeated key", "name: a\nrate: 1\nname: b\n", &cfg{},
			[]string{`t.yaml:3: name: key "name" repeated (first at line 1)`}, nil},
		{"several errors", "name: a\nrate: x\nfoo: 1\n", &cfg{},
			[]string{"t.yaml:2: rate: `x` is a string, want an integer", `t.yaml:3: foo: unknown key "foo"`}, nil},
		{"syntax error", "name: a\n  rate: 5\n", &cfg{},
			[]string{"configs: t.yaml:2: mapping values are not allowed in this context"}, nil},
		{"bad indentation", "joints:\n  elbow: {velocity: 1\n", &cfg{},
			[]string{"configs: t.yaml:"}, nil},
		{"empty file", "", &cfg{}, []string{"configs: t.yaml: empty file"}, configs.ErrEmpty},
		{"only comments", "# nothing here\n\n  # still nothing\n", &cfg{}, []string{"empty file"}, configs.ErrEmpty},
		{"only a document marker", "---\n", &cfg{}, []string{"empty file"}, configs.ErrEmpty},
		{"two documents", "name: a\n---\nname: b\n", &cfg{}, []string{"t.yaml:2: a second YAML document"}, nil},
		{"a scalar document", "just text\n", &cfg{}, []string{"t.yaml:1: `just text` is a string, want a mapping of keys to values"}, nil},
		// Messages speak YAML: the keys allowed (inline fields included, untagged ones lowercased as
		// yaml.v3 reads them) and the kind of value a key takes, never a Go type's name.
		{"unknown key beside inline fields", "depthh: 1\n", &rich{},
			[]string{`t.yaml:1: depthh: unknown key "depthh" (want one of: depth, timeout, on, ptr)`}, nil},
		{"unknown key under a pointer", "ptr: {velocityy: 1}\n", &rich{},
			[]string{`t.yaml:1: ptr.velocityy: unknown key "velocityy" (want one of: velocity, jerk)`}, nil},
		{"wrong duration", "timeout: soon\n", &rich{}, []string{"t.yaml:1: timeout: `soon` is a string, want a duration (like 1.5s or 300ms)"}, nil},
		{"wrong boolean", "on: maybe\n", &rich{}, []string{"t.yaml:1: on: `maybe` is a string, want true or false"}, nil},
		{"validate fails", "rate: -1\n", &checked{}, []string{"configs: t.yaml: rate -1: must be positive"}, nil},
		{"too large", "name: " + strings.Repeat("x", configs.MaxSize) + "\n", &cfg{}, []string{"larger than"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := configs.Decode("t.yaml", []byte(tc.doc), tc.v)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant it to contain\n%s", err, w)
				}
			}
			if strings.Contains(err.Error(), "configs_test.") || strings.Contains(err.Error(), "float64") {
				t.Errorf("error %v names a Go type", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			var ce *configs.Error
			if !errors.As(err, &ce) || ce.File != "t.yaml" {
				t.Errorf("error %v is not a *configs.Error for t.yaml", err)
			}
		})
	}
}

func TestFS(t *testing.T) {
	names, err := configs.Robots()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, " "); got != "arm5 panda ur5" {
		t.Errorf("robots %q", got)
	}
	for _, name := range names {
		for _, f := range []string{name + ".urdf", "robot.yaml"} {
			if _, err := fs.Stat(configs.FS, "robots/"+name+"/"+f); err != nil {
				t.Error(err)
			}
		}
	}
	for _, dir := range []string{"policies", "tasks"} {
		if _, err := fs.ReadDir(configs.FS, dir); err != nil {
			t.Error(err)
		}
	}
	// Every shipped YAML file is one non-empty document (its schema is checked where its Go type
	// lives, e.g. robot/urdf's LoadConfig test for robot.yaml).
	err = fs.WalkDir(configs.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := fs.ReadFile(configs.FS, path)
		if err != nil {
			return err
		}
		var v map[string]any
		return configs.Decode(path, data, &v)
	})
	if err != nil {
		t.Error(err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("name: arm\nrate: 500\njoints:\n  elbow: {velocity: 2, jerk: 100}\nsteps:\n  - velocity: 1\n")
	f.Add("name: a\nrate: x\nfoo: 1\n")
	f.Add("a: &x [*x]\n")
	f.Add("---\n---\n")
	f.Add("joints: {a: {velocity: !!float 1e400}}\n")
	for _, name := range []string{"ur5", "panda", "arm5"} {
		data, err := fs.ReadFile(configs.FS, "robots/"+name+"/robot.yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var c cfg
		err := configs.Decode("fuzz.yaml", []byte(doc), &c)
		if err != nil && !strings.HasPrefix(err.Error(), "configs: fuzz.yaml") {
			t.Fatalf("error %q does not name the file", err)
		}
		// TopKeys: the same file, its keys, each with its line, or an error naming the file.
		keys, lines, kerr := configs.TopKeys("fuzz.yaml", []byte(doc))
		if kerr != nil && !strings.HasPrefix(kerr.Error(), "configs: fuzz.yaml") {
			t.Fatalf("TopKeys error %q does not name the file", kerr)
		}
		if len(keys) != len(lines) {
			t.Fatalf("TopKeys: %d keys, %d lines", len(keys), len(lines))
		}
	})
}

// TestTopKeysAndKeys: the top-level keys of a file with their lines, and a schema's keys.
func TestTopKeysAndKeys(t *testing.T) {
	keys, lines, err := configs.TopKeys("t.yaml", []byte("# c\nname: a\njoints: {elbow: {velocity: 1}}\n\nrate: 5\n"))
	if err != nil || strings.Join(keys, ",") != "name,joints,rate" || fmt.Sprint(lines) != "[2 3 5]" {
		t.Errorf("TopKeys: %q %v %v", keys, lines, err)
	}
	if _, _, err := configs.TopKeys("t.yaml", []byte("- a\n")); err == nil || !strings.Contains(err.Error(), "t.yaml:1: not a mapping") {
		t.Errorf("a list: %v", err)
	}
	if _, _, err := configs.TopKeys("t.yaml", []byte("# only\n")); !errors.Is(err, configs.ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	if got := strings.Join(configs.Keys(&cfg{}), ","); got != "name,rate,joints,steps,tags" {
		t.Errorf("Keys(cfg) = %s", got)
	}
	if configs.Keys(3) != nil {
		t.Error("Keys of an int is not nil")
	}
}

func ExampleDecode() {
	type topics struct {
		Command string `yaml:"command"`
	}
	var v struct {
		Topics topics `yaml:"topics"`
	}
	err := configs.Decode("robot.yaml", []byte("topics:\n  comand: /cmd\n"), &v)
	fmt.Println(err)
	// Output:
	// configs: robot.yaml:2: topics.comand: unknown key "comand" (want one of: command)
}
