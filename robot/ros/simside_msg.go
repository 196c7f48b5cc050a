package ros

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/goroslib/v2/pkg/msgs/std_msgs"
	"github.com/bluenviron/goroslib/v2/pkg/msgs/trajectory_msgs"

	"github.com/flowact/flowact/robot"
)

// ErrJointNames is wrapped by the errors of a JointTrajectory whose joint_names do not name the
// model's joints exactly once each (an unknown, repeated or missing name).
var ErrJointNames = errors.New("ros: trajectory joint names do not match the model")

// queue is an outgoing FIFO: put never blocks; a message that finds it full is dropped and
// counted.
type queue[T any] struct {
	ch      chan *T
	dropped atomic.Uint64
}

func (q *queue[T]) init() { q.ch = make(chan *T, JointStateQueue) }

func (q *queue[T]) put(m *T) {
	select {
	case q.ch <- m:
	default:
		q.dropped.Add(1)
	}
}

// discard drops the messages stored while no connection existed.
func (q *queue[T]) discard() {
	for {
		select {
		case <-q.ch:
			q.dropped.Add(1)
		default:
			return
		}
	}
}

// commandDecoder turns Float64MultiArray messages into robot.Commands, reusing one Command (the
// subscriber calls it from one goroutine at a time; the sink copies).
type commandDecoder struct {
	cmd robot.Command
}

// decode checks m holds dof finite values after its data_offset (the layout is otherwise
// ignored, as ros_control's group position controllers do) and returns them as a Command. The
// Stamp is zero: Float64MultiArray has no header.
func (d *commandDecoder) decode(m *std_msgs.Float64MultiArray, dof int) (*robot.Command, error) {
	off := int(m.Layout.DataOffset)
	if off > len(m.Data) || len(m.Data)-off != dof {
		return nil, fmt.Errorf("ros: command has %d values after data_offset %d, want %d", len(m.Data)-min(off, len(m.Data)), off, dof)
	}
	data := m.Data[off:]
	for i, v := range data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("ros: command value %d is %v", i, v)
		}
	}
	copy(d.cmd.Position, data)
	return &d.cmd, nil
}

// trajectoryDecoder maps JointTrajectory messages into model order, reusing its buffers.
type trajectoryDecoder struct {
	index map[string]int // model index by joint name
	dof   int
	perm  []int  // perm[k] = model index of the message's joint k
	seen  []bool // by model index
	tr    robot.Trajectory
}

func newTrajectoryDecoder(m *robot.Model) trajectoryDecoder {
	d := trajectoryDecoder{index: make(map[string]int, m.DoF()), dof: m.DoF(), seen: make([]bool, m.DoF())}
	for i, j := range m.Joints {
		d.index[j.Name] = i
	}
	return d
}

// decode returns m as a Trajectory in model order: Start is header.stamp (zero means on
// arrival), TimeFromStart and Positions from the points; velocities, accelerations and efforts
// are not used (the simulator interpolates positions linearly). joint_names must name every
// model joint exactly once (ErrJointNames); each point must carry one position per name.
// The sink checks times and values.
func (d *trajectoryDecoder) decode(m *trajectory_msgs.JointTrajectory) (*robot.Trajectory, error) {
	if len(m.JointNames) != d.dof {
		for _, n := range m.JointNames {
			if _, ok := d.index[n]; !ok {
				return nil, fmt.Errorf("%w: unknown joint %q", ErrJointNames, n)
			}
		}
		return nil, fmt.Errorf("%w: %d joint names for %d joints", ErrJointNames, len(m.JointNames), d.dof)
	}
	clear(d.seen)
	d.perm = d.perm[:0]
	for _, n := range m.JointNames {
		i, ok := d.index[n]
		if !ok {
			return nil, fmt.Errorf("%w: unknown joint %q", ErrJointNames, n)
		}
		if d.seen[i] {
			return nil, fmt.Errorf("%w: joint %q named twice", ErrJointNames, n)
		}
		d.seen[i] = true
		d.perm = append(d.perm, i)
	}
	k := len(m.Points)
	d.tr.Start = m.Header.Stamp
	d.tr.TimeFromStart = d.tr.TimeFromStart[:0]
	if cap(d.tr.Positions) < k*d.dof {
		d.tr.Positions = make([]float64, k*d.dof)
	}
	d.tr.Positions = d.tr.Positions[:k*d.dof]
	for p := range m.Points {
		pt := &m.Points[p]
		if len(pt.Positions) != d.dof {
			return nil, fmt.Errorf("ros: trajectory point %d has %d positions for %d joint names", p, len(pt.Positions), d.dof)
		}
		row := d.tr.Positions[p*d.dof : (p+1)*d.dof]
		for j, v := range pt.Positions {
			row[d.perm[j]] = v
		}
		d.tr.TimeFromStart = append(d.tr.TimeFromStart, pt.TimeFromStart)
	}
	return &d.tr, nil
}

// rateLog logs rejected inputs at warn level, at most once per second per kind, with the count so
// far: a flood of bad messages is counted in full but does not flood the log.
type rateLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *rateLog) log(l *slog.Logger, kind string, count uint64, err error) {
	now := time.Now()
	r.mu.Lock()
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	if t, ok := r.last[kind]; ok && now.Sub(t) < time.Second {
		r.mu.Unlock()
		return
	}
	r.last[kind] = now
	r.mu.Unlock()
	l.Warn("ros: dropped a "+kind, "err", err, "dropped_so_far", count)
}
