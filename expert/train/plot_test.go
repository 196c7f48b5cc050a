package train

import (
	"math"
	"strconv"
	"testing"

	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// TestLogTicks: a log axis gets at least three labelled ticks inside its range, whatever the
// range (gonum's LogTicks labels only powers of ten: one label or none within a decade), and
// each label reads back as its tick's value.
func TestLogTicks(t *testing.T) {
	for _, tc := range []struct {
		min, max float64
		labels   []string // nil: only count them
	}{
		{0.05, 0.2, []string{"0.05", "0.1", "0.2"}},
		{0.3, 0.9, []string{"0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"}},
		{1e-3, 10, []string{"0.001", "0.01", "0.1", "1", "10"}},
		{0.04, 3.8, []string{"0.05", "0.1", "0.2", "0.5", "1", "2"}},
		{2e-6, 3e-5, []string{"2e-06", "5e-06", "1e-05", "2e-05"}},
		{2.05, 2.3, nil}, // too narrow for m 10^k: plot's linear ticks
	} {
		var labels []string
		for _, tk := range logTicks(tc.min, tc.max) {
			if tk.Label == "" {
				continue
			}
			v, err := strconv.ParseFloat(tk.Label, 64)
			if err != nil || math.Abs(v-tk.Value) > 1e-9*tk.Value || tk.Value < tc.min*(1-1e-9) || tk.Value > tc.max*(1+1e-9) {
				t.Errorf("[%v, %v]: tick %v labelled %q (%v)", tc.min, tc.max, tk.Value, tk.Label, err)
			}
			labels = append(labels, tk.Label)
		}
		if len(labels) < 2 || tc.labels != nil && len(labels) < 3 {
			t.Errorf("[%v, %v]: labels %q, want at least three", tc.min, tc.max, labels)
		}
		if tc.labels != nil && !equalStrings(labels, tc.labels) {
			t.Errorf("[%v, %v]: labels %q, want %q", tc.min, tc.max, labels, tc.labels)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPlotLayout: the figure has the loss (log), learning-rate and gradient-norm panels, their
// data areas one above the other on one step axis, and the legend right of every data area.
func TestPlotLayout(t *testing.T) {
	var hist []Point
	for s := 10; s <= 1000; s += 10 {
		p := Point{Step: s, Loss: 3*math.Exp(-float64(s)/200) + 0.05, LR: 1e-3 * math.Min(1, float64(s)/100), GradNorm: 2 / math.Sqrt(float64(s))}
		if s%100 == 0 {
			p.ValLoss = p.Loss * 1.2
		}
		hist = append(hist, p)
	}
	img := vgimg.New(figWidth, figHeight)
	lay, err := drawLoss(draw.New(img), hist)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"loss (log)", "learning rate", "gradient norm before clipping (log)"}; !equalStrings(lay.ylabel, want) {
		t.Errorf("panels %q, want %q", lay.ylabel, want)
	}
	for i, d := range lay.data {
		if lay.legend.Min.X <= d.Max.X || lay.legend.Max.X > figWidth {
			t.Errorf("legend x [%v, %v] overlaps panel %d's data [%v, %v] or leaves the figure", lay.legend.Min.X, lay.legend.Max.X, i, d.Min.X, d.Max.X)
		}
		if i > 0 && (d.Min.X != lay.data[0].Min.X || d.Max.X != lay.data[0].Max.X || d.Max.Y >= lay.data[i-1].Min.Y) {
			t.Errorf("panel %d's data area %v is not below panel %d's %v on the same step axis", i, d, i-1, lay.data[i-1])
		}
	}
	if lay.legend.Max.Y-lay.legend.Min.Y <= 0 {
		t.Errorf("empty legend %v", lay.legend)
	}
}
