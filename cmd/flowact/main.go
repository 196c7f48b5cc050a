// Command flowact is the one binary of flowact: the onboard runtime, the simulator node, the
// embedded ROS master, and the tools that collect demonstrations, train, evaluate and benchmark
// the action expert. Run `flowact --help` for the subcommands.
//
// Errors are one line on stderr and a non-zero exit: 1 for a failure, 2 for bad usage (an
// unknown flag, a bad argument, an invalid config). SIGINT and SIGTERM cancel the command's
// context: long-running subcommands hold the robot, unregister from ROS and exit 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError marks an error as the caller's: a bad flag, argument or config (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run executes one command line and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "flowact: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "flowact",
		Short:         "On-robot runtime for flow-matching action experts",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	addCheckConfig(root)
	root.AddCommand(
		newMasterCmd(),
		newSimCmd(),
		newRunCmd(),
		newDemoCmd(),
		newCollectCmd(),
		newTrainCmd(),
		newEvalCmd(),
		newBenchCmd(),
		newCalibCmd(),
	)
	return root
}
