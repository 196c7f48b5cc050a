package ckpt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Tensor is a named float32 tensor, row-major.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
	// DType is how the tensor is stored in a file: DTypeF32 (also "") or DTypeF16. Data is
	// float32 either way; reading sets it, writing converts to it.
	DType string
}

// The dtypes this package reads and writes. F16 (IEEE 754 half precision) halves a checkpoint;
// writing rounds to the nearest half, ties to even, and refuses a finite value beyond the
// half's range (65504) rather than write an infinity.
const (
	DTypeF32 = "F32"
	DTypeF16 = "F16"
)

// dtypeSize returns the bytes per value of a dtype this package handles, or 0.
func dtypeSize(dt string) int {
	switch dt {
	case "", DTypeF32:
		return 4
	case DTypeF16:
		return 2
	}
	return 0
}

// orF32 returns dt, or DTypeF32 for the unset dtype.
func orF32(dt string) string {
	if dt == "" {
		return DTypeF32
	}
	return dt
}

// maxHeader is the largest header accepted, as in the reference implementation (100 MB).
const maxHeader = 100 << 20

type tensorHeader struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// WriteSafetensors writes tensors (sorted by name) and optional metadata to w in the
// safetensors format. Names must be unique, non-empty and not "__metadata__", and every tensor's
// data must match its shape.
func WriteSafetensors(w io.Writer, tensors []Tensor, meta map[string]string) error {
	ts := slices.Clone(tensors)
	slices.SortFunc(ts, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	header := make(map[string]any, len(ts)+1)
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off int64
	for i, t := range ts {
		if t.Name == "" || t.Name == "__metadata__" {
			return fmt.Errorf("ckpt: write: bad tensor name %q: %w", t.Name, ErrFormat)
		}
		if i > 0 && ts[i-1].Name == t.Name {
			return fmt.Errorf("ckpt: write: tensor %q twice: %w", t.Name, ErrFormat)
		}
		n, ok := numel(t.Shape)
		if !ok || n != len(t.Data) {
			return fmt.Errorf("ckpt: write: tensor %q: shape %v holds %d values, data has %d: %w", t.Name, t.Shape, n, len(t.Data), ErrShape)
		}
		size := dtypeSize(t.DType)
		if size == 0 {
			return fmt.Errorf("ckpt: write: tensor %q: dtype %q, want %s or %s: %w", t.Name, t.DType, DTypeF32, DTypeF16, ErrDType)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		nb := int64(size) * int64(n)
		header[t.Name] = tensorHeader{DType: orF32(t.DType), Shape: shape, DataOffsets: [2]int64{off, off + nb}}
		off += nb
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("ckpt: write: %w", err)
	}
	// Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
	if pad := (8 - len(hj)%8) % 8; pad > 0 {
		hj = append(hj, bytes.Repeat([]byte(" "), pad)...)
	}
	buf := make([]byte, 8, 8+len(hj)+int(off))
	binary.LittleEndian.PutUint64(buf, uint64(len(hj)))
	buf = append(buf, hj...)
	for _, t := range ts {
		if t.DType != DTypeF16 {
			for _, v := range t.Data {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			}
			continue
		}
		for i, v := range t.Data {
			h, ok := toF16(v)
			if !ok {
				return fmt.Errorf("ckpt: write: tensor %q value %d is %g, beyond the range of %s: %w", t.Name, i, v, DTypeF16, ErrDType)
			}
			buf = binary.LittleEndian.AppendUint16(buf, h)
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("ckpt: write: %w", err)
	}
	return nil
}

// numel returns the number of elements of shape and whether it is valid (no negative dimension,
// no overflow past 2^31 elements).
func numel(shape []int) (int, bool) {
	n := 1
	for _, s := range shape {
		if s < 0 {
			return 0, false
		}
		if s != 0 && n > (1<<31)/s {
			return 0, false
		}
		n *= s
	}
	return n, true
}

// ReadSafetensors parses a safetensors file held in b. It returns the tensors sorted by name and
// the metadata. Every malformed input gives an error wrapping ErrTruncated, ErrFormat, ErrDType
// or ErrShape.
func ReadSafetensors(b []byte) ([]Tensor, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("ckpt: safetensors: %d bytes, need 8 for the header length: %w", len(b), ErrTruncated)
	}
	hl := binary.LittleEndian.Uint64(b)
	if hl > maxHeader {
		return nil, nil, fmt.Errorf("ckpt: safetensors: header length %d exceeds %d: %w", hl, maxHeader, ErrFormat)
	}
	if uint64(len(b)-8) < hl {
		return nil, nil, fmt.Errorf("ckpt: safetensors: header length %d but only %d bytes follow: %w", hl, len(b)-8, ErrTruncated)
	}
	hb := b[8 : 8+hl]
	data := b[8+hl:]
	if len(hb) == 0 || hb[0] != '{' {
		return nil, nil, fmt.Errorf("ckpt: safetensors: header does not start with '{': %w", ErrFormat)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(hb))
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, fmt.Errorf("ckpt: safetensors: header: %v: %w", err, ErrFormat)
	}
	if rest := bytes.TrimRight(hb[dec.InputOffset():], " "); len(rest) > 0 {
		return nil, nil, fmt.Errorf("ckpt: safetensors: %d bytes of junk after the header JSON: %w", len(rest), ErrFormat)
	}
	var meta map[string]string
	type span struct {
		begin, end int64
		name       string
	}
	var spans []span
	var ts []Tensor
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("ckpt: safetensors: __metadata__: %v: %w", err, ErrFormat)
			}
			continue
		}
		if name == "" {
			return nil, nil, fmt.Errorf("ckpt: safetensors: empty tensor name: %w", ErrFormat)
		}
		var th tensorHeader
		d := json.NewDecoder(bytes.NewReader(msg))
		d.DisallowUnknownFields()
		if err := d.Decode(&th); err != nil {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q: %v: %w", name, err, ErrFormat)
		}
		size := dtypeSize(th.DType)
		if size == 0 || th.DType == "" {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q has dtype %q, want %s or %s: %w", name, th.DType, DTypeF32, DTypeF16, ErrDType)
		}
		if th.Shape == nil {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q has no shape: %w", name, ErrFormat)
		}
		n, ok := numel(th.Shape)
		if !ok {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q: bad shape %v: %w", name, th.Shape, ErrShape)
		}
		be, en := th.DataOffsets[0], th.DataOffsets[1]
		if be < 0 || en < be {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q: bad data offsets [%d, %d]: %w", name, be, en, ErrFormat)
		}
		if need := int64(size) * int64(n); en-be != need {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q: shape %v needs %d bytes, offsets give %d: %w", name, th.Shape, need, en-be, ErrShape)
		}
		if en > int64(len(data)) {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q ends at byte %d of %d data bytes: %w", name, en, len(data), ErrTruncated)
		}
		spans = append(spans, span{be, en, name})
		t := Tensor{Name: name, Shape: th.Shape, Data: make([]float32, n), DType: th.DType}
		for i := range t.Data {
			if size == 2 {
				t.Data[i] = fromF16(binary.LittleEndian.Uint16(data[be+2*int64(i):]))
				continue
			}
			t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[be+4*int64(i):]))
		}
		ts = append(ts, t)
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.begin != b.begin {
			return int(min(max(a.begin-b.begin, -1), 1))
		}
		return int(min(max(a.end-b.end, -1), 1))
	})
	var pos int64
	for _, s := range spans {
		if s.begin != pos {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q starts at %d, expected %d (gap or overlap): %w", s.name, s.begin, pos, ErrFormat)
		}
		pos = s.end
	}
	if pos != int64(len(data)) {
		return nil, nil, fmt.Errorf("ckpt: safetensors: %d data bytes after the last tensor (ends at %d): %w", int64(len(data))-pos, pos, ErrFormat)
	}
	slices.SortFunc(ts, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	return ts, meta, nil
}

// toF16 returns the IEEE 754 half-precision bits nearest to v (ties to even), keeping
// infinities and NaNs (a NaN stays a NaN); ok is false for a finite v that rounds beyond the
// largest half, 65504.
func toF16(v float32) (h uint16, ok bool) {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		m := uint16(man >> 13)
		if man != 0 && m == 0 {
			m = 0x200 // a NaN whose payload is all in the dropped bits
		}
		return sign | 0x7c00 | m, true
	}
	e := exp - 127 + 15 // the half's biased exponent
	if e <= 0 {
		// A subnormal half (or zero): the value is m * 2^-24.
		if e < -10 {
			return sign, true // below half the smallest subnormal
		}
		full := man | 0x800000
		shift := uint(14 - e)
		return sign | uint16(roundShift(full, shift)), true // a carry into 0x400 is the smallest normal
	}
	m := roundShift(man, 13)
	if m == 0x400 { // the mantissa rounded up to the next power of two
		m, e = 0, e+1
	}
	if e >= 0x1f {
		return 0, false
	}
	return sign | uint16(e)<<10 | uint16(m), true
}

// roundShift returns x >> s rounded to the nearest integer, ties to even.
func roundShift(x uint32, s uint) uint32 {
	q, rem, half := x>>s, x&(1<<s-1), uint32(1)<<(s-1)
	if rem > half || rem == half && q&1 == 1 {
		q++
	}
	return q
}

// fromF16 returns the float32 equal to half-precision bits h (every half is a float32).
func fromF16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch exp {
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case 0:
		v := float32(man) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}
