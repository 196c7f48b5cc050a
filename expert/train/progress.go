package train

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// reporter shows a run's progress: a progress bar on a terminal, plain lines on other writers,
// and JSON lines on the log writer.
type reporter struct {
	cfg        Config
	start      time.Time
	first      int
	bar        *progressbar.ProgressBar
	lastStep   int
	enc        *json.Encoder
	lastReport time.Time
}

func newReporter(cfg Config, step int) *reporter {
	r := &reporter{cfg: cfg, start: cfg.Now(), first: step, lastStep: step}
	r.lastReport = r.start
	if f, ok := cfg.Progress.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.bar = progressbar.NewOptions(cfg.Steps,
			progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription("train"),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("steps"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
		r.bar.Set(step)
	}
	if cfg.Log != nil {
		r.enc = json.NewEncoder(cfg.Log)
	}
	return r
}

func (r *reporter) elapsed() float64 { return r.cfg.Now().Sub(r.start).Seconds() }

func (r *reporter) point(p Point) error {
	now := r.cfg.Now()
	switch {
	case r.bar != nil:
		desc := fmt.Sprintf("loss %.4f", p.Loss)
		if p.ValLoss != 0 {
			desc += fmt.Sprintf(" val %.4f", p.ValLoss)
		}
		r.bar.Describe(desc)
		r.bar.Set(p.Step)
	case r.cfg.Progress != nil:
		rate := float64(p.Step-r.lastStep) / now.Sub(r.lastReport).Seconds()
		line := fmt.Sprintf("step %d/%d loss %.5f", p.Step, r.cfg.Steps, p.Loss)
		if p.ValLoss != 0 {
			line += fmt.Sprintf(" val %.5f", p.ValLoss)
		}
		line += fmt.Sprintf(" lr %.3g", p.LR)
		if rate > 0 && !isInf(rate) {
			eta := time.Duration(float64(r.cfg.Steps-p.Step) / rate * float64(time.Second))
			line += fmt.Sprintf(" %.1f steps/s eta %s", rate, eta.Round(time.Second))
		}
		if _, err := fmt.Fprintln(r.cfg.Progress, line); err != nil {
			return fmt.Errorf("train: progress: %w", err)
		}
	}
	r.lastStep, r.lastReport = p.Step, now
	if r.enc != nil {
		if err := r.enc.Encode(p); err != nil {
			return fmt.Errorf("train: log: %w", err)
		}
	}
	return nil
}

func isInf(x float64) bool { return x > 1e300 || x < -1e300 }

func (r *reporter) finish() {
	if r.bar != nil {
		r.bar.Finish()
		fmt.Fprintln(r.cfg.Progress)
	}
}
