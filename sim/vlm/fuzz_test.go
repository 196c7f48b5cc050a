package vlm

import (
	"math"
	"testing"
)

// FuzzEncode encodes arbitrary instructions and goals: no panic, and finite goals give values
// in [-1, 1] (noiseless).
func FuzzEncode(f *testing.F) {
	f.Add("reach the red target", 0.4, -0.1, 0.3, 2)
	f.Add("", 0.0, 0.0, 0.0, 0)
	f.Add("ÜBER  \x00\xff the Blue-ball!!", 1e6, -1e6, 3.0, 9)
	e, err := NewEncoder(Config{Tokens: 2, Width: 32})
	if err != nil {
		f.Fatal(err)
	}
	dst := make([]float32, 64)
	f.Fuzz(func(t *testing.T, instr string, x, y, z float64, objects int) {
		sc := Scene{Instruction: instr, Goal: [3]float64{x, y, z}}
		for i := range objects % 10 {
			sc.Objects = append(sc.Objects, Object{Pos: [3]float64{x, float64(i), z}, Size: 0.1})
		}
		e.EncodeTo(dst, &sc, nil)
		finite := !math.IsNaN(x+y+z) && !math.IsInf(x+y+z, 0) && math.Abs(x)+math.Abs(y)+math.Abs(z) < 1e30
		for i, v := range dst {
			if finite && !(v >= -1 && v <= 1) {
				t.Fatalf("value %d is %v for finite input", i, v)
			}
		}
	})
}
