package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/flowact/flowact/expert/ckpt"
	"github.com/flowact/flowact/expert/nn"
	"github.com/flowact/flowact/expert/path"
)

func newImportCmd() *cobra.Command {
	var src, out string
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "import --checkpoint DIR --out DIR",
		Short: "Convert a checkpoint trained with t = 1 as noise (openpi, LeRobot) to flowact's convention",
		Long: `Read a checkpoint whose manifest says "time_convention": "t1_noise" (a network trained with
flow time tau = 1 as noise and tau = 0 as data, as openpi's pi0 and LeRobot's policies are) and
write it as a flowact checkpoint (t = 0 noise): the same velocity field with time running the
other way, v(x, t) = -v_tau(x, 1 - t). The weights are rewritten exactly (nn.ReverseTime: the
first time layer absorbs the map from the time features of t to those of 1 - t, the output
layer is negated), so the imported expert gives the same chunks to float32 rounding. The
manifest's path and training-time distribution are rewritten for the reversed axis: CondOT
stays CondOT, Uniform stays Uniform, Beta(a, b) becomes Beta(b, a) and LogitNormal(m, s)
becomes LogitNormal(-m, s); others are refused, as is a Beta with a cutoff (not a Beta on the
reversed axis). The optimizer state, if any, is not carried over (its moments belong to the
weights before conversion). flowact also loads a t1_noise checkpoint directly, converting it
as it loads; import writes the converted checkpoint once.

--out must be empty or missing unless --overwrite is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if src == "" || out == "" {
				return usagef("import: --checkpoint and --out are required")
			}
			n, err := importCheckpoint(src, out, overwrite)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s (%s) to %s (%s): %d tensors; time.fc1 folded, out negated\n",
				src, ckpt.TimeConventionT1Noise, out, ckpt.TimeConvention, n)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&src, "checkpoint", "", "checkpoint directory in the t1_noise convention")
	f.StringVar(&out, "out", "", "directory for the flowact checkpoint")
	f.BoolVar(&overwrite, "overwrite", false, "replace a checkpoint in --out")
	return cmd
}

// importCheckpoint converts the t1_noise checkpoint in src and writes it to out; it returns the
// number of tensors written.
func importCheckpoint(src, out string, overwrite bool) (int, error) {
	c, err := ckpt.Load(src)
	if err != nil {
		return 0, usagef("import: --checkpoint %s: %v", src, err)
	}
	m := c.Manifest
	if m.TimeConvention != ckpt.TimeConventionT1Noise {
		return 0, usagef("import: --checkpoint %s: time convention %q is flowact's already: nothing to import", src, m.TimeConvention)
	}
	if m.Scheduler, err = reverseScheduler(m.Scheduler); err != nil {
		return 0, usagef("import: %s: %v", src, err)
	}
	if m.TimeDist, err = reverseTimeDist(m.TimeDist); err != nil {
		return 0, usagef("import: %s: %v", src, err)
	}
	net, err := nn.Load(c, 1) // converts: the manifest says t1_noise
	if err != nil {
		return 0, usagef("import: --checkpoint %s: %v", src, err)
	}
	defer net.Close()
	if err := checkImportOut(out, overwrite); err != nil {
		return 0, err
	}
	note := fmt.Sprintf("imported by flowact import from a %s checkpoint (weights sha256 %s): time.fc1 folded, out negated",
		ckpt.TimeConventionT1Noise, m.Weights.SHA256)
	if m.Provenance.Note != "" {
		note = m.Provenance.Note + "; " + note
	}
	m.Provenance.Note = note
	m.Weights = ckpt.FileRef{DType: m.Weights.DType} // Save fills in the file and its checksum
	m.TrainState = nil
	ts := nn.Tensors(net)
	if err := ckpt.Save(out, m, ts, nil); err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	return len(ts), nil
}

// checkImportOut refuses an --out that holds files unless overwrite is set, which removes a
// checkpoint's files there.
func checkImportOut(out string, overwrite bool) error {
	ents, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(ents) == 0) {
		return nil
	}
	if err != nil {
		return usagef("import: --out: %v", err)
	}
	if !overwrite {
		return usagef("import: --out %s is not empty (%d entries, %s first); give --overwrite to replace the checkpoint it holds, or another --out", out, len(ents), ents[0].Name())
	}
	for _, name := range []string{ckpt.ManifestFile, ckpt.WeightsFile, ckpt.TrainStateFile} {
		if err := os.RemoveAll(filepath.Join(out, name)); err != nil {
			return fmt.Errorf("import: --overwrite: %w", err)
		}
	}
	return nil
}

// reverseScheduler names the path a t1_noise checkpoint was trained on, stated on its own time
// axis, on flowact's (t = 1 - tau). CondOT (x = tau x0 + (1 - tau) x1 there, t x1 + (1 - t) x0
// here) is its own reverse; no other scheduler's reverse is one of flowact's.
func reverseScheduler(c ckpt.Component) (ckpt.Component, error) {
	if _, err := path.NewScheduler(c.Name, c.Params); err != nil {
		return c, fmt.Errorf("scheduler: %w", err)
	}
	if c.Name != "CondOT" {
		return c, fmt.Errorf("scheduler %s: only CondOT (openpi's and LeRobot's path) is defined on the reversed time axis", c.Name)
	}
	return c, nil
}

// reverseTimeDist is the training-time distribution of 1 - tau when tau follows c.
func reverseTimeDist(c ckpt.Component) (ckpt.Component, error) {
	d, err := path.NewTimeDist(c.Name, c.Params)
	if err != nil {
		return c, fmt.Errorf("time distribution: %w", err)
	}
	var r any
	switch d := d.(type) {
	case path.Uniform:
		return c, nil
	case path.LogitNormal:
		// logit(1 - tau) = -logit(tau).
		r = path.LogitNormal{M: -d.M, S: d.S}
	case path.Beta:
		if d.S != 0 && d.S != 1 {
			return c, fmt.Errorf("time distribution Beta with cutoff %g: 1 - tau is not a Beta with a cutoff on the reversed axis", d.S)
		}
		r = path.Beta{A: d.B, B: d.A, S: d.S}
	default:
		return c, fmt.Errorf("time distribution %s: no reverse defined", c.Name)
	}
	params, err := json.Marshal(r)
	if err != nil {
		return c, err
	}
	return ckpt.Component{Name: c.Name, Params: params}, nil
}
