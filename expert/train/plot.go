package train

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Size of the figure PlotLoss draws: three panels of 8 x 3 in, and a strip of legendWidth to the
// right of them for the legends, so that no legend covers a curve.
const (
	figWidth    = 8 * vg.Inch
	figHeight   = 9 * vg.Inch
	legendWidth = 1.3 * vg.Inch
)

// PlotLoss writes to w a PNG of a run's logged points (train.jsonl has the same figures) in
// three panels that share the step axis: the training loss (the mean since the previous point)
// and the validation loss (marked where computed), the learning rate (linear axis), and the
// gradient norm before clipping. A loss or gradient norm that is positive and spans more than a
// factor of 1.5 is drawn on a log axis with labelled ticks (logTicks), else on a linear one.
// The legend sits in a strip right of the panels, outside the data.
func PlotLoss(w io.Writer, hist []Point) error {
	img := vgimg.New(figWidth, figHeight)
	if _, err := drawLoss(draw.New(img), hist); err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("train: plot: %w", err)
	}
	return nil
}

// lossLayout is where drawLoss put things, for tests: each panel's data area and y label, and
// the legend's extent.
type lossLayout struct {
	data   []vg.Rectangle
	ylabel []string
	legend vg.Rectangle
}

// drawLoss draws the three panels of PlotLoss on c.
func drawLoss(c draw.Canvas, hist []Point) (lossLayout, error) {
	var lay lossLayout
	var loss, val, lr, gn plotter.XYs
	for _, h := range hist {
		x := float64(h.Step)
		if finite(h.Loss) {
			loss = append(loss, plotter.XY{X: x, Y: h.Loss})
		}
		if h.ValLoss != 0 && finite(h.ValLoss) {
			val = append(val, plotter.XY{X: x, Y: h.ValLoss})
		}
		if finite(h.LR) {
			lr = append(lr, plotter.XY{X: x, Y: h.LR})
		}
		if finite(h.GradNorm) {
			gn = append(gn, plotter.XY{X: x, Y: h.GradNorm})
		}
	}
	if len(loss) == 0 {
		return lay, fmt.Errorf("train: plot: no finite losses in %d points: %w", len(hist), ErrConfig)
	}
	// One step axis for the three panels: from the first logged step to the last.
	xmin, xmax := hist[0].Step, hist[len(hist)-1].Step
	panel := func(ylabel string, logOK bool, series ...plotter.XYs) *plot.Plot {
		p := plot.New()
		p.X.Min, p.X.Max = float64(xmin), float64(max(xmax, xmin+1))
		p.X.Label.Text = "step"
		p.Y.Label.Text = ylabel
		p.Y.Tick.Marker = plot.TickerFunc(linTicks)
		p.Add(plotter.NewGrid())
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range series {
			for _, q := range s {
				lo, hi = math.Min(lo, q.Y), math.Max(hi, q.Y)
			}
		}
		if logOK && lo > 0 && hi/lo > 1.5 {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = plot.TickerFunc(logTicks)
			p.Y.Label.Text += " (log)"
		}
		return p
	}
	// Training, validation, learning rate, gradient norm: matplotlib's first four "tab" colours.
	colors := []color.Color{color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 214, G: 39, B: 40, A: 255},
		color.RGBA{R: 44, G: 160, B: 44, A: 255}, color.RGBA{R: 148, G: 103, B: 189, A: 255}}

	lp := panel("loss", true, loss, val)
	lp.Title.Text = "flow-matching loss"
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	lt, err := plotter.NewLine(loss)
	if err != nil {
		return lay, fmt.Errorf("train: plot: %w", err)
	}
	lt.Color, lt.Width = colors[0], vg.Points(1.5)
	lp.Add(lt)
	legend.Add("training", lt)
	if len(val) > 0 {
		vl, vp, err := plotter.NewLinePoints(val)
		if err != nil {
			return lay, fmt.Errorf("train: plot: %w", err)
		}
		vl.Color, vl.Width, vl.Dashes = colors[1], vg.Points(1.5), []vg.Length{vg.Points(4), vg.Points(2)}
		vp.Color, vp.Shape, vp.Radius = colors[1], draw.CircleGlyph{}, vg.Points(2.5)
		lp.Add(vl, vp)
		legend.Add("validation", vl, vp)
	}
	pp := panel("learning rate", false, lr) // linear from 0: warmup and cosine decay are linear shapes
	pp.Y.Min = 0
	pg := panel("gradient norm before clipping", true, gn)
	for i, s := range []struct {
		p  *plot.Plot
		xy plotter.XYs
	}{{pp, lr}, {pg, gn}} {
		if len(s.xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			return lay, fmt.Errorf("train: plot: %w", err)
		}
		l.Color, l.Width = colors[2+i], vg.Points(1.2)
		s.p.Add(l)
	}
	plots := [][]*plot.Plot{{lp}, {pp}, {pg}}
	area := draw.Crop(c, 0, -legendWidth, 0, 0)
	cs := plot.Align(plots, draw.Tiles{Rows: 3, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadY: vg.Points(14)}, area)
	for i, row := range plots {
		row[0].Draw(cs[i][0])
		lay.data = append(lay.data, row[0].DataCanvas(cs[i][0]).Rectangle)
		lay.ylabel = append(lay.ylabel, row[0].Y.Label.Text)
	}
	// The legend, right of the loss panel's data area, level with its top.
	top := lay.data[0]
	lc := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
		Min: vg.Point{X: area.Max.X + vg.Points(8), Y: top.Min.Y},
		Max: vg.Point{X: c.Max.X, Y: top.Max.Y},
	}}
	legend.Draw(lc)
	lay.legend = legend.Rectangle(lc)
	return lay, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// logTicks is a plot.Ticker for log axes that labels at least three ticks: the first of the
// mantissa sets {1}, {1, 2, 5}, {1, ..., 9} that puts three or more of m 10^k inside [min, max]
// is labelled, the other integer multiples of the powers of ten are unlabelled minor ticks; a
// range too narrow for three such labels (less than a factor of about 1.3) gets plot's linear
// ticks. gonum's plot.LogTicks labels only the powers of ten, so a loss curve within one decade
// had one label or none.
func logTicks(min, max float64) []plot.Tick {
	if !(min > 0) || !(max > min) {
		return linTicks(min, max)
	}
	k0, k1 := int(math.Floor(math.Log10(min))), int(math.Ceil(math.Log10(max)))
	in := func(v float64) bool { return v >= min*(1-1e-9) && v <= max*(1+1e-9) }
	for _, set := range [][]int{{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}} {
		var ticks []plot.Tick
		labels := 0
		for k := k0; k <= k1; k++ {
			for m := 1; m <= 9; m++ {
				v := float64(m) * math.Pow10(k)
				if !in(v) {
					continue
				}
				t := plot.Tick{Value: v}
				for _, s := range set {
					if m == s {
						t.Label = tickLabel(v, 3)
						labels++
					}
				}
				ticks = append(ticks, t)
			}
		}
		if labels >= 3 {
			return ticks
		}
	}
	return linTicks(min, max)
}

// linTicks is plot.DefaultTicks with each label the tick's value to 6 significant digits:
// DefaultTicks rounds its labels further, so that a tick at 2.05 could read "2.1".
func linTicks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = tickLabel(ticks[i].Value, 6)
		}
	}
	return ticks
}

// tickLabel formats a tick value to at most digits significant digits, without trailing zeros:
// 0.05, 2, 300, 2.05; 2e-05 and 5e+06 outside [1e-4, 1e5).
func tickLabel(v float64, digits int) string {
	if math.Abs(v) < 1e-12*math.Max(1, math.Abs(v)) {
		return "0"
	}
	g := strconv.FormatFloat(v, 'g', digits, 64)
	if a := math.Abs(v); a >= 1e-4 && a < 1e5 {
		f, _ := strconv.ParseFloat(g, 64)
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return g
}
