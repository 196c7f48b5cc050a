package path_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/flowact/flowact/expert/path"
)

// TestNamesRoundTrip encodes each scheduler and distribution as a checkpoint manifest does (Go
// type name, JSON of the exported fields) and decodes it back.
func TestNamesRoundTrip(t *testing.T) {
	for _, s := range []path.Scheduler{path.CondOT{}, path.Cosine{}, path.LinearVP{}, path.Polynomial{N: 3},
		path.VP{BetaMin: 0.2, BetaMax: 15}, path.VE{SigmaMin: 0.02, SigmaMax: 30}, path.VP{}} {
		params, _ := json.Marshal(s)
		got, err := path.NewScheduler(reflect.TypeOf(s).Name(), params)
		if err != nil || got != s {
			t.Errorf("%#v: decoded %#v, %v", s, got, err)
		}
	}
	for _, d := range []path.TimeDist{path.Uniform{}, path.LogitNormal{M: 0.5, S: 2}, path.Pi0Beta()} {
		params, _ := json.Marshal(d)
		got, err := path.NewTimeDist(reflect.TypeOf(d).Name(), params)
		if err != nil || got != d {
			t.Errorf("%#v: decoded %#v, %v", d, got, err)
		}
	}
}

func TestNamesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, params string
		want         error
	}{
		{"Linear", ``, path.ErrUnknown},
		{"VP", `{"BetaMin": 1, "Beta": 2}`, path.ErrConfig},
		{"VP", `{"BetaMin": 5, "BetaMax": 1}`, path.ErrConfig},
		{"Polynomial", `{"N": -2}`, path.ErrConfig},
		{"CondOT", `{"N": 2}`, path.ErrConfig},
		{"VE", `[1, 2]`, path.ErrConfig},
		{"VE", `{} {}`, path.ErrConfig},
	} {
		if _, err := path.NewScheduler(tc.name, []byte(tc.params)); !errors.Is(err, tc.want) {
			t.Errorf("%s %s: %v, want %v", tc.name, tc.params, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, params string }{{"Gamma", ``}, {"Beta", `{"A": -1}`}, {"Uniform", `{"x": 1}`}, {"LogitNormal", `{"S": -3}`}} {
		if _, err := path.NewTimeDist(tc.name, []byte(tc.params)); err == nil {
			t.Errorf("%s %s: no error", tc.name, tc.params)
		}
	}
	if s, err := path.NewScheduler("VP", nil); err != nil || s != (path.VP{}) {
		t.Errorf("VP with no params: %v, %v", s, err)
	}
}

// FuzzNewScheduler: any name and params either fail cleanly or give a scheduler whose
// coefficients inside (0, 1) are finite with alpha increasing and sigma decreasing.
func FuzzNewScheduler(f *testing.F) {
	f.Add("VP", []byte(`{"BetaMin": 0.1, "BetaMax": 20}`))
	f.Add("VE", []byte(`{"SigmaMin": 0.01, "SigmaMax": 50}`))
	f.Add("Polynomial", []byte(`{"N": 2}`))
	f.Add("CondOT", []byte(``))
	f.Add("VE", []byte(`{"SigmaMin": 1e-300, "SigmaMax": 1e300}`))
	f.Fuzz(func(t *testing.T, name string, params []byte) {
		s, err := path.NewScheduler(name, params)
		if err != nil {
			return
		}
		for _, tm := range []float64{0.25, 0.5, 0.75} {
			c := s.At(tm)
			for _, v := range []float64{c.Alpha, c.Sigma, c.DAlpha, c.DSigma} {
				if v != v {
					t.Fatalf("%s %s: NaN coefficient at t=%v: %+v", name, params, tm, c)
				}
			}
			if c.DAlpha < 0 || c.DSigma > 0 {
				t.Fatalf("%s %s at t=%v: %+v", name, params, tm, c)
			}
		}
	})
}
