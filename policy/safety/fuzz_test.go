package safety

import (
	"encoding/binary"
	"math"
	"testing"
)

// FuzzFilter feeds arbitrary target streams (any float64 bit pattern: NaN, Inf, huge,
// subnormal), holds and starting velocities to the filter, on joints with and without jerk
// limits, and checks the command stream with a Monitor: no violation of any kind.
func FuzzFilter(f *testing.F) {
	f.Add(byte(0), []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x7f}) // +Inf
	f.Add(byte(3), []byte{1, 0, 0, 0, 0, 0, 0xf8, 0x7f, 0, 0, 0, 0, 0, 0, 0x24, 0x40})
	f.Add(byte(1), binary.LittleEndian.AppendUint64(nil, math.Float64bits(1e300)))
	f.Add(byte(200), binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.99)), math.Float64bits(-0.99)))
	f.Add(byte(77), binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, math.Float64bits(3.2)), math.Float64bits(-3.2)))
	lim, err := Resolve(jerkModel(), &Config{})
	if err != nil {
		f.Fatal(err)
	}
	n := len(lim)
	f.Fuzz(func(t *testing.T, start byte, data []byte) {
		dt := [...]float64{0.02, 0.002, 0.001, 0.004}[start%4]
		flt := NewFilter(lim, dt)
		pos := make([]float64, n)
		vel := make([]float64, n)
		for j, l := range lim {
			lo, hi := span(l)
			pos[j] = lo + (hi-lo)*float64(start)/255
			// A starting velocity within the limit, toward a limit when start is large.
			vel[j] = l.Velocity * (float64(start)/255*2 - 1) * 0.9
		}
		if err := flt.ResetMoving(pos, vel); err != nil {
			t.Fatal(err)
		}
		// A start moving toward a nearby limit may have to pass it (counted StartBeyond): the
		// monitor checks the band widened to where braking from the start ends.
		mlim := append([]Limit(nil), lim...)
		for j := range mlim {
			if mlim[j].HasPosition {
				mlim[j].Lower, mlim[j].Upper = flt.loB[j], flt.hiB[j]
			}
		}
		mon := NewMonitor(mlim, dt)
		mon.ResetMoving(pos, vel, nil)
		cmd, tg := make([]float64, n), append([]float64(nil), pos...)
		ticks := 0
		for k := 0; len(data) >= 8 && ticks < 20000; k++ { // bounded: a fuzz input runs in well under a second
			v := math.Float64frombits(binary.LittleEndian.Uint64(data))
			data = data[8:]
			// Each value drives one joint (or all, scaled to their bands) for a few ticks; the
			// low bits pick hold or step.
			if math.Float64bits(v)&8 != 0 {
				for j, l := range lim {
					lo, hi := span(l)
					tg[j] = lo + (hi-lo)*math.Mod(math.Abs(v), 1.6) - 0.3*(hi-lo)
				}
			} else {
				tg[k%n] = v
			}
			for range 1 + int(data8(data))*4 {
				if math.Float64bits(v)&7 == 7 {
					flt.Hold(cmd)
				} else {
					flt.Step(cmd, tg)
				}
				mon.Observe(cmd)
				ticks++
			}
		}
		if mon.Violations() != 0 {
			t.Fatalf("%v", mon)
		}
	})
}

func data8(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
