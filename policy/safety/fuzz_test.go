package safety

import (
	"encoding/binary"
	"math"
	"testing"
)

// FuzzFilter feeds arbitrary targets (any float64 bit pattern: NaN, Inf, huge, subnormal) and
// holds to the filter and checks every command against the limits relative to the previous one.
func FuzzFilter(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0xf0, 0x7f}) // +Inf
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0xf8, 0x7f, 0, 0, 0, 0, 0, 0, 0x24, 0x40})
	f.Add(binary.LittleEndian.AppendUint64(nil, math.Float64bits(1e300)))
	f.Add(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.99)), math.Float64bits(-0.99)))
	lim, err := Resolve(testModel(), &Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const dt = 0.004
		flt := NewFilter(lim, dt)
		start := []float64{0.5, -1, 0}
		if err := flt.Reset(start); err != nil {
			t.Fatal(err)
		}
		c := newChecker(t, lim, dt, start)
		cmd, tg := make([]float64, 3), make([]float64, 3)
		for k := 0; len(data) >= 8; k++ {
			v := math.Float64frombits(binary.LittleEndian.Uint64(data))
			data = data[8:]
			// Each value drives one joint for a few ticks; the low bits pick hold or step.
			tg[k%3] = v
			for range 1 + int(data8(data)%16) {
				if math.Float64bits(v)&7 == 7 {
					flt.Hold(cmd)
				} else {
					flt.Step(cmd, tg)
				}
				c.check(k, cmd)
			}
		}
	})
}

func data8(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
