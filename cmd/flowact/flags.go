package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flowact/flowact/robot/ros"
)

// Flag names are one per concept across the subcommands (the README's "Flag names" table).
// A flag that was renamed keeps its former name as a hidden alias: it still parses, is not
// listed by --help, and using it prints one note on stderr naming the new flag.

// renameFlags makes each old name in renames (old -> new) parse as the new flag of cmd: the
// same value, and Changed(new) reports it (pflag normalization), so the command's code only
// knows the new names. The old names never appear in --help.
func renameFlags(cmd *cobra.Command, renames map[string]string) {
	used := map[string]bool{}
	f := cmd.Flags()
	prev := f.GetNormalizeFunc()
	f.SetNormalizeFunc(func(fs *pflag.FlagSet, name string) pflag.NormalizedName {
		if n, ok := renames[name]; ok {
			used[name] = true
			name = n
		}
		return prev(fs, name)
	})
	onPreRun(cmd, func(c *cobra.Command) {
		for _, old := range sortedKeys(used) {
			fmt.Fprintf(c.ErrOrStderr(), "flowact: --%s is deprecated; use --%s\n", old, renames[old])
		}
	})
}

// legacyFlag hides cmd's flag name, a former name whose value does not map one to one onto
// its replacement (a bool that became a level, a flag split in two); the command reads it
// itself. Using it prints one note on stderr: "use instead".
func legacyFlag(cmd *cobra.Command, name, instead string) {
	if err := cmd.Flags().MarkHidden(name); err != nil {
		panic(err) // a programmer error: no such flag
	}
	onPreRun(cmd, func(c *cobra.Command) {
		if c.Flags().Changed(name) {
			fmt.Fprintf(c.ErrOrStderr(), "flowact: --%s is deprecated; use %s\n", name, instead)
		}
	})
}

// onPreRun runs fn before cmd's PreRunE (and its RunE).
func onPreRun(cmd *cobra.Command, fn func(*cobra.Command)) {
	prevE, prev := cmd.PreRunE, cmd.PreRun
	cmd.PreRun = nil
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		fn(c)
		if prevE != nil {
			return prevE(c, args)
		}
		if prev != nil {
			prev(c, args)
		}
		return nil
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ROS private parameters. A roscpp or rospy node reads its settings from private parameters,
// and `_key:=value` on its command line sets one (~key). `flowact run` and `flowact sim` take
// them the same way: each private parameter on the command line sets the flag of the same name
// (`_sim_time:=true` is --sim-time true), the table of each command's settable parameters is
// privateParams, and it is still set on the parameter server as ~key, where rosparam sees it.
// A parameter that names no setting is refused with an error naming it; a parameter and a flag
// for one setting must agree.

// privateParams are, per command, the flags a private parameter may set (its key is the flag's
// name with '_' for '-'). Node name, namespace and master have their own ROS arguments
// (__name:=, __ns:=, __master:=).
var privateParams = map[string][]string{
	"sim": {"robot", "rate", "sim-time", "speed", "task", "seed", "publish-embedding", "embedding-type",
		"config", "connect-timeout", "log-level"},
	"run": {"policy", "checkpoint", "robot", "calib", "embedding-type", "nats-embedding", "nats", "fleet-id",
		"record", "episode-max", "start", "connect-timeout", "log-level"},
}

// paramName is the private parameter that sets flag.
func paramName(flag string) string { return strings.ReplaceAll(flag, "-", "_") }

// applyPrivateParams sets cmd's flags from the private parameters (_key:=value) among its ROS
// arguments args; the other arguments are left for the command's own ROS parsing.
func applyPrivateParams(cmd *cobra.Command, args []string) error {
	var rc ros.Config
	if _, err := rc.ParseArgs(args); err != nil {
		return usageError{err}
	}
	settable := privateParams[cmd.Name()]
	keys := make([]string, 0, len(rc.Params))
	for k := range rc.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		value := rc.Params[key]
		flag := ""
		for _, f := range settable {
			if paramName(f) == key {
				flag = f
			}
		}
		if flag == "" {
			known := make([]string, len(settable))
			for i, f := range settable {
				known[i] = "_" + paramName(f)
			}
			return usagef("%s: private parameter _%s:=%s sets nothing (settable: %s)", cmd.Name(), key, value, strings.Join(known, ", "))
		}
		f := cmd.Flags().Lookup(flag)
		given, was := f.Changed, f.Value.String()
		if err := cmd.Flags().Set(flag, value); err != nil {
			return usagef("%s: private parameter _%s:=%s: %v", cmd.Name(), key, value, err)
		}
		if given && f.Value.String() != was {
			return usagef("%s: private parameter _%s:=%s and --%s %s disagree", cmd.Name(), key, value, flag, was)
		}
	}
	return nil
}
