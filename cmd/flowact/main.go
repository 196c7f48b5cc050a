// Command flowact is the one binary of flowact: the onboard runtime, the simulator node, the
// embedded ROS master, and the tools that collect demonstrations, train, evaluate and benchmark
// the action expert. Run `flowact --help` for the subcommands.
//
// Errors are one line on stderr and a non-zero exit: 1 for a failure, 2 for bad usage (an
// unknown command or flag, a bad argument, an invalid config), 130 for a run that a signal cut
// short after reporting what it did. `flowact --version` prints the module version and the VCS
// commit the binary was built from. SIGINT and SIGTERM cancel the command's context, and every
// subcommand ends within a second: the ones that serve until stopped (run, sim, master, demo)
// hold the robot, unregister from ROS, print their summary and exit 0; the ones cut short in a
// batch of work (eval, collect, bench) print the summary of what they finished, marked
// interrupted, and exit 130 (128 + SIGINT, as a shell reports it).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
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

// errInterrupted is wrapped by the error of a command that a signal ended early after reporting
// what it did (exit status exitInterrupted).
var errInterrupted = errors.New("interrupted")

// exitInterrupted is the exit status of an interrupted batch command: 128 + SIGINT, as a shell
// reports it.
const exitInterrupted = 130

// run executes one command line and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "flowact: %v\n", err)
	if errors.Is(err, errInterrupted) {
		return exitInterrupted
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	bi, ok := debug.ReadBuildInfo()
	root := &cobra.Command{
		Use:           "flowact",
		Short:         "On-robot runtime for flow-matching action experts",
		Version:       version(bi, ok),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("flowact {{.Version}}\n")
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
		newHubCmd(),
		newFleetCmd(),
		newExportCmd(),
		newCalibCmd(),
		newImportCmd(),
	)
	usageArgs(root)
	return root
}

// usageArgs makes every argument error of cmd and its subcommands a usage error (exit 2), as
// the README says: cobra's "unknown command" and "accepts N arg(s)" are plain errors.
func usageArgs(cmd *cobra.Command) {
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			err := args(c, a)
			switch {
			case err == nil:
				return nil
			case c.HasSubCommands() && len(a) > 0:
				return usagef("unknown command %q (flowact --help lists them)", a[0])
			}
			return usageError{err}
		}
	}
	for _, c := range cmd.Commands() {
		usageArgs(c)
	}
}

// version describes the build from its module version and VCS stamps (go build stamps them by
// default in a git checkout): "v0.3.0 (commit 1a2b3c4d5e6f, 2026-12-07T05:00:00Z, modified)".
// A binary built by go run or go test, or outside a checkout, has "(devel)" and fewer stamps.
func version(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return "unknown (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var stamps []string
	for _, key := range []string{"vcs.revision", "vcs.time", "vcs.modified"} {
		for _, s := range bi.Settings {
			switch {
			case s.Key != key:
			case key == "vcs.revision":
				stamps = append(stamps, "commit "+s.Value[:min(len(s.Value), 12)])
			case key == "vcs.modified":
				if s.Value == "true" {
					stamps = append(stamps, "modified")
				}
			default:
				stamps = append(stamps, s.Value)
			}
		}
	}
	if len(stamps) > 0 {
		v += " (" + strings.Join(stamps, ", ") + ")"
	}
	return v
}
