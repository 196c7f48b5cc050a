package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
