package ros

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowact/flowact/internal/rostest"
	"github.com/flowact/flowact/robot"
)

// envMap is a Getenv that sees only its own entries, so tests ignore the caller's ROS_*.
type envMap map[string]string

func (e envMap) get(k string) string { return e[k] }

// testConfig is a node config for master m with short periods so tests run fast.
func testConfig(t *testing.T, m testMaster, name string) Config {
	return Config{
		Name:              name,
		MasterURI:         m.URI(),
		Host:              "127.0.0.1",
		Getenv:            envMap{}.get,
		WatchPeriod:       150 * time.Millisecond,
		DiagnosticsPeriod: 200 * time.Millisecond,
		RetryMin:          20 * time.Millisecond,
		RetryMax:          200 * time.Millisecond,
		Logger:            rostest.Logger(t),
	}
}

// commandRate is the rate the tests publish commands at, and the rate rostopic hz must see.
const commandRate = 50

// commander writes pos to d at commandRate until the test ends.
func commander(t *testing.T, d *Driver, pos []float64) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second / commandRate)
		defer tick.Stop()
		c := robot.Command{Position: pos}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := d.WriteCommand(&c); err != nil && !errors.Is(err, robot.ErrClosed) {
				t.Error(err)
				return
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func waitReady(t *testing.T, n *Node) {
	t.Helper()
	select {
	case <-n.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("node did not register within 20 s")
	}
}

func hasNode(out, name string) bool {
	return slices.Contains(strings.Fields(out), name)
}

var avgRate = regexp.MustCompile(`average rate: ([0-9.]+)`)

func TestInterop(t *testing.T) {
	t.Parallel()
	rostest.Require(t, "rosmaster", "rostopic", "rosnode", "rosservice", "python3")
	msgFile, err := filepath.Abs("../../msgs/flowact_msgs/msg/Embedding.msg")
	if err != nil {
		t.Fatal(err)
	}
	forEachMaster(t, func(t *testing.T, m testMaster) {
		env := rostest.Env(t, m.URI())
		n, err := New(testConfig(t, m, "flowact"), testModel(), Handlers{
			Start: func() (string, error) { return "started", nil },
			Hold:  func() (string, error) { return "", errors.New("nothing to hold") },
			Reset: func() (string, error) { return "reset", nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		stop := runNode(t, n)
		// A second node takes the custom embedding message on its own topic.
		cc := testConfig(t, m, "flowact_custom")
		cc.Embedding = EmbeddingCustom
		cc.Topics = Topics{JointStates: "/peer/joint_states", Embedding: "/flowact/embedding_custom",
			Command: "~command", Trajectory: "~trajectory"}
		nc, err := New(cc, testModel(), Handlers{})
		if err != nil {
			t.Fatal(err)
		}
		stopC := runNode(t, nc)
		waitReady(t, n)
		waitReady(t, nc)
		commander(t, n.Driver(), []float64{0.1, 0.2, 0.3})

		// The tools are independent and mostly Python start-up: run them side by side.
		t.Run("tools", func(t *testing.T) {
			t.Run("rosnode list", func(t *testing.T) {
				t.Parallel()
				out := rostest.Run(t, env, 30*time.Second, "rosnode", "list")
				if !hasNode(out, "/flowact") || !hasNode(out, "/flowact_custom") {
					t.Errorf("rosnode list:\n%s", out)
				}
			})
			t.Run("rostopic echo command", func(t *testing.T) {
				t.Parallel()
				out := rostest.Run(t, env, 30*time.Second, "rostopic", "echo", "-n", "1", "/flowact/command")
				if !strings.Contains(out, "data: [0.1, 0.2, 0.3]") || !strings.Contains(out, "label: \"joints\"") {
					t.Errorf("rostopic echo:\n%s", out)
				}
			})
			t.Run("rostopic hz command", func(t *testing.T) {
				t.Parallel()
				p := rostest.Start(t, env, "rostopic", "hz", "/flowact/command")
				// Python's start-up takes seconds on a loaded machine: measure from its first
				// report on.
				rostest.Eventually(t, 60*time.Second, "rostopic hz to print a rate", func() bool {
					return avgRate.MatchString(p.Output())
				})
				before := n.Driver().Stats()
				time.Sleep(5 * time.Second)
				after := n.Driver().Stats()
				p.Stop(syscall.SIGINT)
				sent := float64(after.CommandsSent-before.CommandsSent) / 5
				all := avgRate.FindAllStringSubmatch(p.Output(), -1)
				if len(all) == 0 {
					t.Fatalf("no rate in rostopic hz output:\n%s", p.Output())
				}
				rate, _ := strconv.ParseFloat(all[len(all)-1][1], 64)
				// Wide tolerances: two cores shared with other test processes, -race, and
				// rostopic hz's own Python timing. A sender that blocked or a publisher that
				// lost messages would be far outside them.
				if sent < 0.3*commandRate {
					t.Errorf("flowact sent %.1f Hz, configured %d", sent, commandRate)
				}
				if rate < 0.5*sent || rate > 1.5*sent {
					t.Errorf("rostopic hz sees %.1f Hz; flowact sent %.1f Hz (configured %d)", rate, sent, commandRate)
				}
				t.Logf("rostopic hz: %.2f Hz; flowact sent %.2f Hz (configured %d Hz)", rate, sent, commandRate)
			})
			t.Run("rostopic pub joint_states", func(t *testing.T) {
				t.Parallel()
				p := rostest.Start(t, env, "rostopic", "pub", "-r", "10", "/joint_states", "sensor_msgs/JointState",
					"{name: [elbow, shoulder, wrist, gripper], position: [2, 1, 3, 7]}")
				var st robot.State
				rostest.Eventually(t, 30*time.Second, "joint state from rostopic pub", func() bool {
					return n.JointStates().ReadState(&st) == nil && slices.Equal(st.Position, []float64{1, 2, 3})
				})
				p.Stop(syscall.SIGINT)
				if s := n.JointStates().Stats(); s.Unknown == 0 {
					t.Errorf("unknown name gripper not counted: %+v", s)
				}
			})
			t.Run("rospy peer", func(t *testing.T) {
				t.Parallel()
				// The peer's joint states go to flowact_custom only (its own topic), so they do
				// not race with rostopic pub above.
				p := rostest.Start(t, env, "python3", "testdata/peer.py", "--custom", msgFile,
					"--embedding-topic", "/flowact/embedding_custom", "--also-multiarray",
					"--joint-states-topic", "/peer/joint_states")
				tr := robot.Trajectory{TimeFromStart: []time.Duration{250 * time.Millisecond, 1500 * time.Millisecond},
					Positions: []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}}
				for done := false; !done; {
					if err := n.Driver().WriteTrajectory(&tr); err != nil {
						t.Fatal(err)
					}
					select {
					case <-p.Done():
						done = true
					case <-time.After(100 * time.Millisecond):
					}
				}
				out := p.Wait(t, time.Second)
				for _, want := range []string{
					"COMMAND 0.1 0.2 0.3",
					"TRAJECTORY shoulder elbow wrist | 0.4 0.5 0.6 | 0.25 1.5",
					"DIAGNOSTICS 'flowact: ros'",
					"SERVICE /flowact/start True started",
					"SERVICE /flowact/hold False nothing to hold",
					"SERVICE /flowact/reset True reset",
				} {
					if !strings.Contains(out, want) {
						t.Errorf("peer output lacks %q:\n%s", want, out)
					}
				}
				if !strings.Contains(out, "MD5 a61357794751d6c92b9161c19847687c") {
					t.Errorf("peer's flowact_msgs/Embedding md5 differs:\n%s", out)
				}
				var st robot.State
				if err := nc.JointStates().ReadState(&st); err != nil || !slices.Equal(st.Position, []float64{0.5, -0.5, 0.25}) ||
					!slices.Equal(st.Velocity, []float64{0.1, 0.2, 0}) {
					t.Errorf("joint state from rospy: %+v, %v", st, err)
				}
				for _, src := range []*Node{n, nc} {
					e, err := src.Embeddings().Latest()
					if err != nil {
						t.Fatalf("%s: %v (last decode error %q)", src.Name(), err, src.Embeddings().LastError())
					}
					if e.Tokens != 4 || e.Width != 8 || e.Data[3] != 1.5 || e.Data[31] != 15.5 {
						t.Errorf("%s: embedding %d x %d %v", src.Name(), e.Tokens, e.Width, e.Data)
					}
				}
			})
		})
		t.Run("unregister on cancel, shut down by rosnode kill", func(t *testing.T) {
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			out := rostest.Run(t, env, 30*time.Second, "rosnode", "kill", "/flowact_custom")
			if !strings.Contains(out, "killed") {
				t.Errorf("rosnode kill:\n%s", out)
			}
			if err := stopC(); !errors.Is(err, ErrShutdown) {
				t.Errorf("Run after rosnode kill: %v, want ErrShutdown", err)
			}
			out = rostest.Run(t, env, 30*time.Second, "rosnode", "list")
			if hasNode(out, "/flowact") || hasNode(out, "/flowact_custom") {
				t.Errorf("rosnode list still shows flowact's nodes after cancel and kill:\n%s", out)
			}
			if err := n.Driver().WriteCommand(&robot.Command{Position: []float64{0, 0, 0}}); !errors.Is(err, robot.ErrClosed) {
				t.Errorf("WriteCommand after Run: %v", err)
			}
		})
	})
}

// TestMasterRestart starts the node before the master (it must wait), then kills and restarts
// the master: the node must register again, data must keep flowing with tools started before
// the restart (they never re-register) and flow both ways with tools started afterwards.
func TestMasterRestart(t *testing.T) {
	t.Parallel()
	rostest.Require(t, "rosmaster", "rostopic")
	forEachMaster(t, func(t *testing.T, m testMaster) {
		env := rostest.Env(t, m.URI())
		m.Stop(t)
		n, err := New(testConfig(t, m, "flowact"), testModel(), Handlers{})
		if err != nil {
			t.Fatal(err)
		}
		runNode(t, n)
		commander(t, n.Driver(), []float64{0.4, 0.5, 0.6})
		time.Sleep(300 * time.Millisecond)
		select {
		case <-n.Ready():
			t.Fatal("ready without a master")
		default:
		}
		m.Start(t)
		waitReady(t, n)

		check := func(pos []float64) {
			t.Helper()
			echo := rostest.Start(t, env, "rostopic", "echo", "-n", "1", "/flowact/command")
			p := rostest.Start(t, env, "rostopic", "pub", "-r", "10", "/joint_states", "sensor_msgs/JointState",
				fmt.Sprintf("{name: [shoulder, elbow, wrist], position: [%g, %g, %g]}", pos[0], pos[1], pos[2]))
			var st robot.State
			rostest.Eventually(t, 30*time.Second, "joint state from rostopic pub", func() bool {
				return n.JointStates().ReadState(&st) == nil && slices.Equal(st.Position, pos)
			})
			p.Stop(syscall.SIGINT)
			if out := echo.Wait(t, 30*time.Second); !strings.Contains(out, "data: [0.4, 0.5, 0.6]") {
				t.Errorf("rostopic echo:\n%s", out)
			}
		}
		check([]float64{1, 2, 3})

		// Peers that never re-register (rospy, roscpp) keep their connections through the
		// restart: the node registers again in place.
		echo := rostest.Start(t, env, "rostopic", "echo", "/flowact/command")
		old := rostest.Start(t, env, "rostopic", "pub", "-r", "20", "/joint_states", "sensor_msgs/JointState",
			"{name: [shoulder, elbow, wrist], position: [7, 8, 9]}")
		var st robot.State
		rostest.Eventually(t, 30*time.Second, "joint state from the old rostopic pub", func() bool {
			return n.JointStates().ReadState(&st) == nil && slices.Equal(st.Position, []float64{7, 8, 9})
		})
		rostest.Eventually(t, 30*time.Second, "commands at the old rostopic echo", func() bool {
			return strings.Contains(echo.Output(), "data: [0.4, 0.5, 0.6]")
		})

		m.Stop(t)
		rostest.Eventually(t, 10*time.Second, "node to notice the master is gone", func() bool { return !n.Connected() })
		m.Start(t)
		rostest.Eventually(t, 20*time.Second, "second registration", func() bool { return n.Registrations() >= 2 && n.Connected() })
		echoed, stored := strings.Count(echo.Output(), "---"), n.JointStates().Stats().Stored
		rostest.Eventually(t, 10*time.Second, "data over the connections made before the restart", func() bool {
			return strings.Count(echo.Output(), "---") >= echoed+5 && n.JointStates().Stats().Stored >= stored+5
		})
		old.Stop(syscall.SIGINT)
		echo.Stop(syscall.SIGINT)
		check([]float64{4, 5, 6})
	})
}
