package ckpt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleTensors() []Tensor {
	return []Tensor{
		{Name: "b", Shape: []int{3}, Data: []float32{1, -2, 3}},
		// Special values must survive bit for bit.
		{Name: "a.w", Shape: []int{2, 3}, Data: []float32{
			float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
			math.Float32frombits(0x7fc00001), math.Float32frombits(1), math.MaxFloat32}},
		{Name: "scalar", Shape: []int{}, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 4}, Data: []float32{}},
	}
}

func sampleManifest() Manifest {
	return Manifest{
		Architecture: "mlp",
		Config:       json.RawMessage(`{"h":4,"d":2}`),
		Scheduler:    Component{Name: "CondOT"},
		TimeDist:     Component{Name: "Uniform", Params: json.RawMessage(`{}`)},
		Norm:         json.RawMessage(`{"mean":[0,1]}`),
		Provenance:   Provenance{DataHash: "abc", Seed: 7, Steps: 100, Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
}

func TestSafetensorsRoundTripBitExact(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, sampleTensors(), map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if hl := binary.LittleEndian.Uint64(buf.Bytes()); (8+hl)%8 != 0 {
		t.Fatalf("data not 8-byte aligned: header length %d", hl)
	}
	ts, meta, err := ReadSafetensors(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if meta["k"] != "v" {
		t.Fatalf("metadata %v", meta)
	}
	want := map[string]Tensor{}
	for _, x := range sampleTensors() {
		want[x.Name] = x
	}
	if len(ts) != len(want) {
		t.Fatalf("%d tensors, want %d", len(ts), len(want))
	}
	for _, got := range ts {
		w := want[got.Name]
		if !equalShape(got.Shape, w.Shape) || len(got.Data) != len(w.Data) {
			t.Fatalf("%s: shape %v want %v", got.Name, got.Shape, w.Shape)
		}
		for i := range w.Data {
			if math.Float32bits(got.Data[i]) != math.Float32bits(w.Data[i]) {
				t.Fatalf("%s[%d]: bits %x want %x", got.Name, i, math.Float32bits(got.Data[i]), math.Float32bits(w.Data[i]))
			}
		}
	}
	// Writing is deterministic: the same tensors in another order give the same bytes.
	rev := sampleTensors()
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	var buf2 bytes.Buffer
	if err := WriteSafetensors(&buf2, rev, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Fatal("writer output depends on tensor order")
	}
}

// header builds a safetensors file from a raw JSON header and data.
func header(js string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	return append(append(b, js...), data...)
}

func TestReadSafetensorsErrors(t *testing.T) {
	four := make([]byte, 4)
	for _, tc := range []struct {
		name string
		file []byte
		want error
	}{
		{"short", []byte{1, 2, 3}, ErrTruncated},
		{"header past end", header(`{}`, nil)[:9], ErrTruncated},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<40), ErrFormat},
		{"not json", header(`[1]`, nil), ErrFormat},
		{"bad json", header(`{"a":`, nil), ErrFormat},
		{"dtype", header(`{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,4]}}`, four), ErrDType},
		{"no dtype", header(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, four), ErrDType},
		{"f16 shape vs offsets", header(`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, four), ErrShape},
		{"shape vs offsets", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, four), ErrShape},
		{"negative dim", header(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, four), ErrShape},
		{"past data", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, four), ErrTruncated},
		{"gap", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), ErrFormat},
		{"trailing data", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 8)), ErrFormat},
		{"overlap", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, four), ErrFormat},
		{"unknown field", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, four), ErrFormat},
		{"no shape", header(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, four), ErrFormat},
		{"bad metadata", header(`{"__metadata__":{"a":1}}`, nil), ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadSafetensors(tc.file)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := sampleManifest()
	train := []Tensor{{Name: "adam.m/a.w", Shape: []int{1}, Data: []float32{0.5}}}
	if err := Save(dir, m, sampleTensors(), train); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Manifest.Version != Version || c.Manifest.TimeConvention != TimeConvention || c.Manifest.Provenance != m.Provenance {
		t.Fatalf("manifest %+v", c.Manifest)
	}
	if compact(c.Manifest.Norm) != compact(m.Norm) || compact(c.Manifest.Config) != compact(m.Config) {
		t.Fatalf("raw fields changed: %s %s", c.Manifest.Norm, c.Manifest.Config)
	}
	d, err := c.Tensor("a.w", 2, 3)
	if err != nil || math.Float32bits(d[3]) != 0x7fc00001 {
		t.Fatalf("a.w: %v %v", d, err)
	}
	if _, err := c.Tensor("a.w", 3, 2); !errors.Is(err, ErrShape) {
		t.Fatalf("wrong shape: %v", err)
	}
	if _, err := c.Tensor("nope", 1); !errors.Is(err, ErrMissingTensor) {
		t.Fatalf("missing: %v", err)
	}
	if v, err := c.TrainTensor("adam.m/a.w", 1); err != nil || v[0] != 0.5 {
		t.Fatalf("train tensor %v %v", v, err)
	}
}

func TestLoadCorruption(t *testing.T) {
	dir := t.TempDir()
	if err := Save(dir, sampleManifest(), sampleTensors(), nil); err != nil {
		t.Fatal(err)
	}
	wpath := filepath.Join(dir, WeightsFile)
	orig, err := os.ReadFile(wpath)
	if err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(dir, ManifestFile)
	origM, _ := os.ReadFile(mpath)
	restore := func() {
		os.WriteFile(wpath, orig, 0o644)
		os.WriteFile(mpath, origM, 0o644)
	}
	// Every truncation and every byte flip of the weights is caught by the checksum.
	for n := 0; n < len(orig); n++ {
		os.WriteFile(wpath, orig[:n], 0o644)
		if _, err := Load(dir); !errors.Is(err, ErrChecksum) {
			t.Fatalf("truncated at %d: %v", n, err)
		}
	}
	for i := 0; i < len(orig); i++ {
		b := bytes.Clone(orig)
		b[i] ^= 0x5a
		os.WriteFile(wpath, b, 0o644)
		if _, err := Load(dir); !errors.Is(err, ErrChecksum) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	restore()
	// Without the checksum's help the parser alone rejects every truncation.
	for n := 0; n < len(orig); n++ {
		if _, _, err := ReadSafetensors(orig[:n]); err == nil {
			t.Fatalf("parser accepted truncation at %d", n)
		}
	}
	// The manifest: every truncation is an error, and so is every flipped byte (JSON breaks, a
	// field changes meaning, or the checksum no longer matches); none panics.
	for n := 0; n < len(origM)-1; n++ {
		os.WriteFile(mpath, origM[:n], 0o644)
		if _, err := Load(dir); err == nil {
			t.Fatalf("manifest truncated at %d accepted", n)
		}
	}
	restore()
	for _, tc := range []struct {
		edit func(*Manifest)
		want error
	}{
		{func(m *Manifest) { m.Version = 2 }, ErrVersion},
		{func(m *Manifest) { m.TimeConvention = "t2_noise" }, ErrConvention},
		{func(m *Manifest) { m.TimeConvention = "" }, ErrConvention},
		{func(m *Manifest) { m.Architecture = "" }, ErrArchitecture},
		{func(m *Manifest) { m.Weights.SHA256 = m.Weights.SHA256[:63] + "0" }, ErrChecksum},
		{func(m *Manifest) { m.Weights.File = "../x" }, ErrFormat},
	} {
		var m Manifest
		json.Unmarshal(origM, &m)
		if m.Weights.SHA256[63] == '0' {
			m.Weights.SHA256 = m.Weights.SHA256[:63] + "1"
		}
		tc.edit(&m)
		b, _ := json.Marshal(&m)
		os.WriteFile(mpath, b, 0o644)
		if _, err := Load(dir); !errors.Is(err, tc.want) {
			t.Fatalf("edited manifest: %v, want %v", err, tc.want)
		}
	}
	restore()
	if _, err := Load(dir); err != nil {
		t.Fatalf("restored checkpoint: %v", err)
	}
}

func FuzzReadSafetensors(f *testing.F) {
	var buf bytes.Buffer
	WriteSafetensors(&buf, sampleTensors(), map[string]string{"k": "v"})
	f.Add(buf.Bytes())
	f.Add(header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(header(`{}`, nil))
	f.Add(header(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, []byte{0x00, 0x3c, 0x01, 0x7c}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, _, err := ReadSafetensors(b)
		if err != nil {
			return
		}
		// Whatever parses writes back and parses to the same tensors.
		var out bytes.Buffer
		if err := WriteSafetensors(&out, ts, nil); err != nil {
			t.Fatalf("re-write: %v", err)
		}
		ts2, _, err := ReadSafetensors(out.Bytes())
		if err != nil || len(ts2) != len(ts) {
			t.Fatalf("re-read: %v", err)
		}
		for i := range ts {
			if ts2[i].DType != ts[i].DType {
				t.Fatalf("%s: dtype %s re-read as %s", ts[i].Name, ts[i].DType, ts2[i].DType)
			}
			for j := range ts[i].Data {
				if math.Float32bits(ts2[i].Data[j]) != math.Float32bits(ts[i].Data[j]) {
					t.Fatalf("%s[%d]: %x re-read as %x", ts[i].Name, j, math.Float32bits(ts[i].Data[j]), math.Float32bits(ts2[i].Data[j]))
				}
			}
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	dir := f.TempDir()
	Save(dir, sampleManifest(), sampleTensors(), []Tensor{{Name: "x", Shape: []int{1}, Data: []float32{1}}})
	b, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1,"time_convention":"t0_noise"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed manifest does not validate: %v", err)
		}
	})
}

func compact(b []byte) string {
	var buf bytes.Buffer
	json.Compact(&buf, b)
	return buf.String()
}

// TestF16EveryHalf converts every half-precision bit pattern to float32 and back: each is
// exact, NaNs included (their payloads survive).
func TestF16EveryHalf(t *testing.T) {
	for h := range 1 << 16 {
		v := fromF16(uint16(h))
		back, ok := toF16(v)
		if !ok || back != uint16(h) {
			t.Fatalf("half %#04x -> %g -> %#04x (ok %v)", h, v, back, ok)
		}
	}
	for _, c := range []struct {
		h uint16
		v float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 1.0 / (1 << 24)}, {0x0400, 1.0 / (1 << 14)}, {0x3555, 0.333251953125}} {
		if got := fromF16(c.h); got != c.v {
			t.Errorf("half %#04x is %g, want %g", c.h, got, c.v)
		}
	}
}

// TestF16Rounding checks that float32 values become the nearest half, ties to even, across the
// normal and subnormal ranges, and that values beyond the largest half are refused.
func TestF16Rounding(t *testing.T) {
	nearest := func(v float32) {
		t.Helper()
		h, ok := toF16(v)
		if !ok {
			t.Fatalf("%g refused", v)
		}
		d := math.Abs(float64(v) - float64(fromF16(h)))
		for _, n := range []uint16{h - 1, h + 1} {
			if n&0x7fff > 0x7bff || (h&0x7fff == 0 && n == h-1) {
				continue // past the largest half, or across zero
			}
			dn := math.Abs(float64(v) - float64(fromF16(n)))
			if dn < d || dn == d && h&1 == 1 {
				t.Fatalf("%g became %#04x (%g, off %g); %#04x (%g) is off %g", v, h, fromF16(h), d, n, fromF16(n), dn)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := float32(math.Exp(r.Float64()*math.Log(65504/1e-9)) * 1e-9)
		if r.IntN(2) == 0 {
			v = -v
		}
		nearest(v)
	}
	// Exact ties: halfway between two neighbouring halves, normal and subnormal.
	for _, h := range []uint16{0x0001, 0x0002, 0x03ff, 0x0400, 0x3c00, 0x3c01, 0x7bfe} {
		mid := (float64(fromF16(h)) + float64(fromF16(h+1))) / 2
		nearest(float32(mid))
		nearest(float32(-mid))
	}
	for _, v := range []float32{65519.99, 0x1p-26, float32(math.Copysign(0, -1))} {
		nearest(v)
	}
	for _, v := range []float32{65520, 1e6, -7e4, math.MaxFloat32} {
		if h, ok := toF16(v); ok {
			t.Errorf("%g became %#04x, want refused", v, h)
		}
	}
	if h, ok := toF16(float32(math.Inf(-1))); !ok || h != 0xfc00 {
		t.Errorf("-Inf became %#04x %v", h, ok)
	}
}

// TestSaveLoadF16 saves weights as F16: the manifest says so, the file holds 2 bytes per value,
// loading gives each weight rounded to the nearest half, a value beyond the half's range is
// refused, and a manifest that disagrees with the file is an error.
func TestSaveLoadF16(t *testing.T) {
	dir := t.TempDir()
	m := sampleManifest()
	m.Weights.DType = DTypeF16
	ws := []Tensor{{Name: "w", Shape: []int{2, 2}, Data: []float32{1, -0.1, 3e-6, 65504}}}
	train := []Tensor{{Name: "adam.m/w", Shape: []int{1}, Data: []float32{0.1}}}
	if err := Save(dir, m, ws, train); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Manifest.Weights.DType != DTypeF16 || c.Manifest.TrainState.DType != "" {
		t.Fatalf("weights dtype %q, train state %q", c.Manifest.Weights.DType, c.Manifest.TrainState.DType)
	}
	d, err := c.Tensor("w", 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float32{1, -0.0999755859375, 2.9802322387695312e-06, 65504} {
		if d[i] != want {
			t.Errorf("w[%d] = %g, want %g", i, d[i], want)
		}
	}
	if v, _ := c.TrainTensor("adam.m/w", 1); v[0] != 0.1 {
		t.Errorf("train state %g, want 0.1 exactly (F32)", v[0])
	}
	fi, err := os.Stat(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	hl := int64(binary.LittleEndian.Uint64(mustRead(t, filepath.Join(dir, WeightsFile))))
	if data := fi.Size() - 8 - hl; data != 8 {
		t.Errorf("%d data bytes for 4 halves", data)
	}
	// The manifest says F32 for an F16 file.
	mb := mustRead(t, filepath.Join(dir, ManifestFile))
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), bytes.Replace(mb, []byte(`"dtype": "F16"`), []byte(`"dtype": "F32"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrDType) {
		t.Errorf("F16 file under an F32 manifest: %v, want ErrDType", err)
	}
	ws[0].Data[1] = 1e5
	if err := Save(t.TempDir(), m, ws, nil); !errors.Is(err, ErrDType) {
		t.Errorf("1e5 as F16: %v, want ErrDType", err)
	}
	m.Weights.DType = "F8"
	if err := Save(t.TempDir(), m, ws, nil); !errors.Is(err, ErrDType) {
		t.Errorf("dtype F8: %v, want ErrDType", err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestManifestObjective: the objective round-trips, absent means flow matching, and an unknown
// one is refused by name.
func TestManifestObjective(t *testing.T) {
	for _, obj := range []string{"", ObjectiveFlowMatching, ObjectiveRegression} {
		dir := t.TempDir()
		m := sampleManifest()
		m.Objective = obj
		if err := Save(dir, m, sampleTensors(), nil); err != nil {
			t.Fatal(err)
		}
		c, err := Load(dir)
		if err != nil || c.Manifest.Objective != obj {
			t.Errorf("objective %q: loaded %q, %v", obj, c.Manifest.Objective, err)
		}
	}
	m := sampleManifest()
	m.Objective = "diffusion"
	m.Version, m.TimeConvention = Version, TimeConvention
	m.Weights = FileRef{File: WeightsFile, SHA256: strings.Repeat("0", 64), DType: DTypeF32}
	if err := m.Validate(); !errors.Is(err, ErrObjective) || !strings.Contains(err.Error(), "diffusion") {
		t.Errorf("objective diffusion: %v", err)
	}
	m.Objective, m.TimeConvention = ObjectiveRegression, TimeConventionT1Noise
	if err := m.Validate(); !errors.Is(err, ErrConvention) {
		t.Errorf("a regressor in the t1_noise convention: %v", err)
	}
}
