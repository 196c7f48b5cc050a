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
}

// DTypeF32 is the only dtype this package reads and writes.
const DTypeF32 = "F32"

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
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = tensorHeader{DType: DTypeF32, Shape: shape, DataOffsets: [2]int64{off, off + 4*int64(n)}}
		off += 4 * int64(n)
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
		for _, v := range t.Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
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
		if th.DType != DTypeF32 {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q has dtype %q, want %s: %w", name, th.DType, DTypeF32, ErrDType)
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
		if en-be != 4*int64(n) {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q: shape %v needs %d bytes, offsets give %d: %w", name, th.Shape, 4*n, en-be, ErrShape)
		}
		if en > int64(len(data)) {
			return nil, nil, fmt.Errorf("ckpt: safetensors: tensor %q ends at byte %d of %d data bytes: %w", name, en, len(data), ErrTruncated)
		}
		spans = append(spans, span{be, en, name})
		t := Tensor{Name: name, Shape: th.Shape, Data: make([]float32, n)}
		for i := range t.Data {
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
