package sim

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/flowact/flowact/robot"
)

// FuzzCommands feeds the simulator trajectories and commands decoded from arbitrary bytes, as a
// ROS node would from the network: nothing may panic, and no joint may leave its limits.
func FuzzCommands(f *testing.F) {
	le := binary.LittleEndian
	seed := func(vals ...uint64) []byte {
		b := make([]byte, 0, 8*len(vals))
		for _, v := range vals {
			b = le.AppendUint64(b, v)
		}
		return b
	}
	f.Add(seed(2, uint64(10*time.Millisecond), uint64(20*time.Millisecond), math.Float64bits(1), 0, 0, math.Float64bits(3), 0, 0))
	f.Add(seed(1, 0, math.Float64bits(math.NaN()), 0, 0))
	f.Add(seed(3, 5, 4, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := New(arm(2, 10), Config{Lag: Lag{Order: 2, Damping: 0.3}, Faults: Faults{CommandDelay: 15 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		var st robot.State
		for len(data) >= 8 {
			k := int(le.Uint64(data) % 5)
			data = data[8:]
			tr := robot.Trajectory{}
			for i := 0; i < k && len(data) >= 8; i++ {
				tr.TimeFromStart = append(tr.TimeFromStart, time.Duration(int64(le.Uint64(data))))
				data = data[8:]
			}
			for i := 0; i < 3*k && len(data) >= 8; i++ {
				tr.Positions = append(tr.Positions, math.Float64frombits(le.Uint64(data)))
				data = data[8:]
			}
			_ = s.WriteTrajectory(&tr)
			if len(tr.Positions) >= 3 {
				_ = s.WriteCommand(&robot.Command{Position: tr.Positions[:3]})
			}
			s.Step(7 * time.Millisecond)
			s.TrueStateTo(&st)
			for i, q := range st.Position {
				if !(q >= -2 && q <= 2) {
					t.Fatalf("joint %d at %v", i, q)
				}
			}
		}
	})
}
