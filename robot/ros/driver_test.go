package ros

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot"
)

// newOffline returns a node that has not run (no master needed).
func newOffline(t *testing.T) *Node {
	t.Helper()
	n, err := New(Config{Getenv: envMap{}.get, Logger: rostest.Logger(t)}, testModel(), Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWriteCommand(t *testing.T) {
	n := newOffline(t)
	d := n.Driver()
	for _, bad := range []robot.Command{
		{Position: []float64{1, 2}},
		{Position: []float64{1, math.NaN(), 3}},
		{Position: []float64{1, 2, math.Inf(1)}},
		{Position: []float64{1, 2, 3}, Velocity: []float64{0}},
	} {
		if err := d.WriteCommand(&bad); err == nil {
			t.Errorf("WriteCommand(%v) accepted", bad)
		}
	}
	// Commands queue in order, none replaced by the next (a robot differencing the stream would
	// see two steps in one); a full queue refuses the newest with robot.ErrBusy while a sender
	// runs.
	n.cmd.sending.Store(true)
	c := robot.Command{Position: []float64{1, 2, 3}, Velocity: []float64{0, 0, 0}}
	for i := range commandQueue + 1 {
		c.Position[0] = float64(i)
		err := d.WriteCommand(&c)
		if i < commandQueue && err != nil || i == commandQueue && !errors.Is(err, robot.ErrBusy) {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	c.Position[0] = 99 // the driver copied the commands
	for i := range commandQueue {
		m := n.cmd.take()
		if m == nil || m.Data[0] != float64(i) || m.Layout.Dim[0].Size != 3 {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	if n.cmd.take() != nil {
		t.Error("a command taken twice")
	}
	// Without a sender (no master connection) the oldest gives way.
	n.cmd.sending.Store(false)
	for i := range commandQueue + 1 {
		c.Position[0] = float64(i)
		if err := d.WriteCommand(&c); err != nil {
			t.Fatalf("offline write %d: %v", i, err)
		}
	}
	if m := n.cmd.take(); m == nil || m.Data[0] != 1 {
		t.Errorf("offline: oldest left %+v, want command 1", m)
	}
	n.cmd.discard()
	if a := testing.AllocsPerRun(100, func() {
		if err := d.WriteCommand(&c); err != nil {
			t.Fatal(err)
		}
		n.cmd.discard()
	}); a != 0 {
		t.Errorf("WriteCommand allocates %v per call", a)
	}
	s := d.Stats()
	// 2 (commandQueue + 1) + 101 writes (AllocsPerRun runs once more to warm up): one refused,
	// one given way, commandQueue - 1 + 101 discarded.
	if s.Commands != 2*(commandQueue+1)+101 || s.CommandsDropped != commandQueue+102 {
		t.Errorf("stats %+v", s)
	}
}

func TestWriteTrajectory(t *testing.T) {
	n := newOffline(t)
	d := n.Driver()
	start := time.Unix(50, 0)
	tests := []struct {
		name    string
		tr      robot.Trajectory
		wantErr string
	}{
		{"ok", robot.Trajectory{Start: start, TimeFromStart: []time.Duration{0, 100 * time.Millisecond},
			Positions: []float64{1, 2, 3, 4, 5, 6}}, ""},
		{"empty", robot.Trajectory{}, "no points"},
		{"short", robot.Trajectory{TimeFromStart: []time.Duration{time.Second}, Positions: []float64{1, 2}}, "2 positions"},
		{"not increasing", robot.Trajectory{TimeFromStart: []time.Duration{time.Second, time.Second},
			Positions: []float64{1, 2, 3, 4, 5, 6}}, "not after"},
		{"negative", robot.Trajectory{TimeFromStart: []time.Duration{-time.Second},
			Positions: []float64{1, 2, 3}}, "not after"},
		{"nan", robot.Trajectory{TimeFromStart: []time.Duration{time.Second},
			Positions: []float64{1, math.NaN(), 3}}, "elbow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := d.WriteTrajectory(&tc.tr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := n.traj.take()
			if !slices.Equal(m.JointNames, []string{"shoulder", "elbow", "wrist"}) || !m.Header.Stamp.Equal(start) ||
				len(m.Points) != 2 || m.Points[1].TimeFromStart != 100*time.Millisecond ||
				!slices.Equal(m.Points[1].Positions, []float64{4, 5, 6}) {
				t.Errorf("message %+v", m)
			}
		})
	}
}

func TestClosedAfterRun(t *testing.T) {
	n := newOffline(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Run(ctx); err != nil {
		t.Fatalf("Run with a done context: %v", err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
	if err := n.Driver().WriteCommand(&robot.Command{Position: []float64{0, 0, 0}}); !errors.Is(err, robot.ErrClosed) {
		t.Errorf("WriteCommand: %v", err)
	}
	if err := n.Driver().WriteTrajectory(&robot.Trajectory{}); !errors.Is(err, robot.ErrClosed) {
		t.Errorf("WriteTrajectory: %v", err)
	}
	var st robot.State
	if err := n.Driver().ReadState(&st); !errors.Is(err, robot.ErrNoState) {
		t.Errorf("ReadState: %v", err)
	}
}

func TestWallClock(t *testing.T) {
	c := newClock()
	if c.Sim() {
		t.Fatal("sim before any connection")
	}
	start := time.Now()
	if err := c.SleepUntil(context.Background(), start.Add(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Errorf("woke after %v", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.SleepUntil(ctx, start.Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled sleep: %v", err)
	}
}

// BenchmarkDriverTick is what the control loop pays per tick: read the merged state, write a
// command (publication happens on the node's sender goroutine).
func BenchmarkDriverTick(b *testing.B) {
	n, err := New(Config{Getenv: envMap{}.get}, testModel(), Handlers{})
	if err != nil {
		b.Fatal(err)
	}
	d := n.Driver()
	n.JointStates().Store(js(time.Unix(1, 0), []string{"shoulder", "elbow", "wrist"}, []float64{1, 2, 3}, nil, nil))
	st := robot.NewState(3)
	c := robot.Command{Position: []float64{1, 2, 3}}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.ReadState(&st); err != nil {
			b.Fatal(err)
		}
		if err := d.WriteCommand(&c); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	env := envMap{}.get
	for _, tc := range []struct {
		name  string
		cfg   Config
		model *robot.Model
	}{
		{"nil model", Config{Getenv: env}, nil},
		{"model without joints", Config{Getenv: env}, &robot.Model{Name: "empty"}},
		{"bad config", Config{Getenv: env, Name: "a b"}, testModel()},
	} {
		if _, err := New(tc.cfg, tc.model, Handlers{}); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", tc.name, err)
		}
	}
}
