package ros

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowact/flowact/internal/rostest"
)

// Helpers for the tests against ROS masters; the tools and rosmaster come from internal/rostest.

// testMaster is a ROS master the tests can stop and start again on the same port.
type testMaster interface {
	URI() string
	Stop(t testing.TB)
	Start(t testing.TB)
}

// masterKinds are the masters every interop test runs against: Debian's rosmaster and
// flowact's embedded one (robot/ros/master).
var masterKinds = []struct {
	name string
	new  func(t testing.TB) testMaster
}{
	{"rosmaster", func(t testing.TB) testMaster { return rostest.StartRosmaster(t) }},
	{"embedded", newEmbeddedMaster},
}

// forEachMaster runs f as a parallel subtest per master kind, each with a fresh master.
func forEachMaster(t *testing.T, f func(t *testing.T, m testMaster)) {
	for _, k := range masterKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			m := k.new(t)
			f(t, m)
		})
	}
}

// runNode starts n.Run in the background and stops it at cleanup; the returned stop cancels it
// and returns Run's error (a test that calls stop checks that error itself).
func runNode(t *testing.T, n *Node) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	var once sync.Once
	var err error
	var explicit atomic.Bool
	wait := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(20 * time.Second):
				err = fmt.Errorf("Run did not return 20 s after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := wait(); err != nil && !explicit.Load() {
			t.Error(err)
		}
	})
	return func() error {
		explicit.Store(true)
		return wait()
	}
}
