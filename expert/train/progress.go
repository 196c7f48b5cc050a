package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
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

// PlotLoss writes a PNG of the training (and, where present, validation) loss against the step,
// on a log scale, to w.
func PlotLoss(w io.Writer, hist []Point) error {
	if len(hist) == 0 {
		return fmt.Errorf("train: plot: no points: %w", ErrConfig)
	}
	p := plot.New()
	p.Title.Text = "flow-matching loss"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var tr, va plotter.XYs
	for _, h := range hist {
		if h.Loss > 0 {
			tr = append(tr, plotter.XY{X: float64(h.Step), Y: h.Loss})
		}
		if h.ValLoss > 0 {
			va = append(va, plotter.XY{X: float64(h.Step), Y: h.ValLoss})
		}
	}
	if len(tr) == 0 {
		return fmt.Errorf("train: plot: no positive losses: %w", ErrConfig)
	}
	lt, err := plotter.NewLine(tr)
	if err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	p.Add(lt)
	p.Legend.Add("train", lt)
	if len(va) > 0 {
		lv, err := plotter.NewLine(va)
		if err != nil {
			return fmt.Errorf("train: plot: %w", err)
		}
		lv.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		p.Add(lv)
		p.Legend.Add("validation", lv)
	}
	wt, err := p.WriterTo(6*vg.Inch, 4*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}
