package report

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

	"github.com/flowact/flowact/sim"
	"github.com/flowact/flowact/sim/task"
)

// Colours: matplotlib's "tab" palette, so that successes, failures, goals and obstacles read
// as in most robotics plots.
var (
	colSuccess  = color.NRGBA{R: 31, G: 119, B: 180, A: 110} // blue, translucent: many overlap
	colFailure  = color.NRGBA{R: 214, G: 39, B: 40, A: 255}  // red
	colGoal     = color.NRGBA{R: 44, G: 160, B: 44, A: 255}  // green
	colObstacle = color.NRGBA{R: 127, G: 127, B: 127, A: 70} // grey fill
	colObsEdge  = color.NRGBA{R: 90, G: 90, B: 90, A: 200}
	colStart    = color.NRGBA{A: 255}
	colLimit    = color.NRGBA{R: 255, G: 127, B: 14, A: 255} // orange
)

// Figure sizes.
const (
	pathsWidth   = 12 * vg.Inch
	pathsHeight  = 5.6 * vg.Inch
	legendStrip  = 2.1 * vg.Inch
	jointsWidth  = 8 * vg.Inch
	jointsPanelH = 1.5 * vg.Inch
)

// PlotPaths writes to w a PNG of the end effector's paths of one task's episodes (eps and trs
// parallel): the top view (x, y) beside the side view (x, z) on equal scales, successes in
// translucent blue, failures in red on top of them with a cross where they ended, each
// episode's start, its goal (a ring of the success tolerance; a moving goal's path dashed) and
// its obstacles. The legend sits right of the panels.
func PlotPaths(w io.Writer, taskName string, eps []Episode, trs []*task.Trace) error {
	if len(eps) != len(trs) || len(eps) == 0 {
		return fmt.Errorf("report: paths of %s: %d episodes, %d traces", taskName, len(eps), len(trs))
	}
	views := []struct {
		name   string
		ax, ay int // coordinates of a position shown
		ylabel string
	}{{"top view", 0, 1, "y (m)"}, {"side view", 0, 2, "z (m)"}}
	// One scale for both views: the bounds of everything drawn, padded to the same span.
	lo, hi := [3]float64{math.Inf(1), math.Inf(1), math.Inf(1)}, [3]float64{math.Inf(-1), math.Inf(-1), math.Inf(-1)}
	grow := func(p [3]float64, r float64) {
		for k := range 3 {
			lo[k], hi[k] = math.Min(lo[k], p[k]-r), math.Max(hi[k], p[k]+r)
		}
	}
	nFail := 0
	for i, tr := range trs {
		for _, p := range tr.EE {
			grow(p, 0)
		}
		for _, g := range tr.Goal {
			grow(g, tr.Tolerance)
		}
		for _, o := range tr.Obstacles {
			grow(o.A, o.Radius)
			grow(o.B, o.Radius)
		}
		if !eps[i].Success {
			nFail++
		}
	}
	span := 0.0
	for k := range 3 {
		span = math.Max(span, hi[k]-lo[k])
	}
	span = span*1.08 + 0.02
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	var plots [][]*plot.Plot
	row := []*plot.Plot{}
	for vi, v := range views {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: %s", taskName, v.name)
		p.X.Label.Text = "x (m)"
		p.Y.Label.Text = v.ylabel
		for _, a := range []struct {
			ax  *plot.Axis
			dim int
		}{{&p.X, v.ax}, {&p.Y, v.ay}} {
			c := (lo[a.dim] + hi[a.dim]) / 2
			a.ax.Min, a.ax.Max = c-span/2, c+span/2
		}
		p.Add(plotter.NewGrid())
		first := vi == 0
		// Obstacles and goals under the paths.
		for _, tr := range trs {
			for _, o := range tr.Obstacles {
				poly, err := capsule(o, v.ax, v.ay)
				if err != nil {
					return err
				}
				p.Add(poly)
				if first {
					first = false
					legend.Add("obstacle", poly)
				}
			}
		}
		var goalGlyph *plotter.Scatter
		for _, tr := range trs {
			g := tr.Goal[len(tr.Goal)-1]
			if moving(tr.Goal) {
				l, err := plotter.NewLine(project(tr.Goal, v.ax, v.ay))
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				l.Color, l.Width, l.Dashes = colGoal, vg.Points(0.8), []vg.Length{vg.Points(3), vg.Points(2)}
				p.Add(l)
			} else if tr.Tolerance > 0 {
				ring, err := circle(g[v.ax], g[v.ay], tr.Tolerance, colGoal, nil)
				if err != nil {
					return err
				}
				p.Add(ring)
			}
			s, err := plotter.NewScatter(plotter.XYs{{X: g[v.ax], Y: g[v.ay]}})
			if err != nil {
				return fmt.Errorf("report: %w", err)
			}
			s.Color, s.Shape, s.Radius = colGoal, draw.CircleGlyph{}, vg.Points(2.5)
			p.Add(s)
			goalGlyph = s
		}
		// Successes, then failures on top.
		var okLine, failLine *plotter.Line
		for pass := range 2 {
			for i, tr := range trs {
				if eps[i].Success != (pass == 0) {
					continue
				}
				l, err := plotter.NewLine(project(tr.EE, v.ax, v.ay))
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				if eps[i].Success {
					l.Color, l.Width = colSuccess, vg.Points(1)
					okLine = l
				} else {
					l.Color, l.Width = colFailure, vg.Points(1.6)
					failLine = l
				}
				p.Add(l)
			}
		}
		var startGlyph, endGlyph *plotter.Scatter
		for i, tr := range trs {
			st, err := plotter.NewScatter(plotter.XYs{{X: tr.EE[0][v.ax], Y: tr.EE[0][v.ay]}})
			if err != nil {
				return fmt.Errorf("report: %w", err)
			}
			st.Color, st.Shape, st.Radius = colStart, draw.BoxGlyph{}, vg.Points(2)
			p.Add(st)
			startGlyph = st
			if !eps[i].Success {
				e := tr.EE[len(tr.EE)-1]
				en, err := plotter.NewScatter(plotter.XYs{{X: e[v.ax], Y: e[v.ay]}})
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				en.Color, en.Shape, en.Radius = colFailure, draw.CrossGlyph{}, vg.Points(4)
				en.GlyphStyle.Color = colFailure
				p.Add(en)
				endGlyph = en
			}
		}
		if vi == 0 {
			if okLine != nil {
				legend.Add(fmt.Sprintf("success (%d)", len(eps)-nFail), okLine)
			}
			if failLine != nil {
				legend.Add(fmt.Sprintf("failed (%d)", nFail), failLine)
			}
			if endGlyph != nil {
				legend.Add("where it failed", endGlyph)
			}
			legend.Add("start", startGlyph)
			if goalGlyph != nil {
				legend.Add(goalLabel(trs), goalGlyph)
			}
		}
		row = append(row, p)
	}
	plots = append(plots, row)
	img := vgimg.New(pathsWidth, pathsHeight)
	c := draw.New(img)
	area := draw.Crop(c, 0, -legendStrip, 0, 0)
	cs := plot.Align(plots, draw.Tiles{Rows: 1, Cols: 2, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadX: vg.Points(18)}, area)
	for i, p := range plots[0] {
		// Equal scales: the y range spans what the x range does per unit of length, so that
		// circles stay circles.
		r := p.DataCanvas(cs[0][i]).Rectangle
		if w, h := float64(r.Max.X-r.Min.X), float64(r.Max.Y-r.Min.Y); w > 0 && h > 0 {
			c, half := (p.Y.Min+p.Y.Max)/2, (p.X.Max-p.X.Min)*h/w/2
			p.Y.Min, p.Y.Max = c-half, c+half
		}
		p.Draw(cs[0][i])
	}
	top := plots[0][1].DataCanvas(cs[0][1]).Rectangle
	legend.Draw(draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
		Min: vg.Point{X: area.Max.X + vg.Points(8), Y: top.Min.Y},
		Max: vg.Point{X: c.Max.X, Y: top.Max.Y},
	}})
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("report: paths of %s: %w", taskName, err)
	}
	return nil
}

// PlotJoints writes to w a PNG of one episode's joint trajectories: on top its distance to the
// goal with the success tolerance (and, with obstacles, the end effector's clearance to them),
// below it one panel per joint with its position limits
// (dashed) where they are near the trajectory, all on one time axis.
func PlotJoints(w io.Writer, ep Episode, tr *task.Trace, rb Robot) error {
	n := len(rb.Joints)
	if n == 0 || len(tr.T) == 0 || len(tr.Q[0]) != n {
		return fmt.Errorf("report: joints of %s seed %d: %d joint names, %d ticks", ep.Task, ep.Seed, n, len(tr.T))
	}
	t0, t1 := tr.T[0].Seconds(), tr.T[len(tr.T)-1].Seconds()
	panel := func(ylabel string) *plot.Plot {
		p := plot.New()
		p.X.Min, p.X.Max = t0, math.Max(t1, t0+1e-3)
		p.Y.Label.Text = ylabel
		p.Y.Tick.Marker = plot.TickerFunc(fineTicks)
		p.Add(plotter.NewGrid())
		return p
	}
	var plots [][]*plot.Plot
	dp := panel("distance to goal (m)")
	dp.Title.Text = fmt.Sprintf("%s seed %d: %s", ep.Task, ep.Seed, ep.Reason)
	dist := make(plotter.XYs, len(tr.T))
	for i := range tr.T {
		dist[i] = plotter.XY{X: tr.T[i].Seconds(), Y: norm3(tr.EE[i], tr.Goal[i])}
	}
	dl, err := plotter.NewLine(dist)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	dl.Color, dl.Width = colFailure, vg.Points(1.4)
	dp.Add(dl)
	if tr.Tolerance > 0 {
		tl, err := plotter.NewLine(plotter.XYs{{X: t0, Y: tr.Tolerance}, {X: t1, Y: tr.Tolerance}})
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		tl.Color, tl.Dashes = colGoal, []vg.Length{vg.Points(4), vg.Points(2)}
		dp.Add(tl)
		dp.Y.Min = 0
	}
	plots = append(plots, []*plot.Plot{dp})
	if len(tr.Obstacles) > 0 {
		// The end effector's clearance: its collision sphere's distance to the nearest obstacle
		// (the obstacles as at the last tick; detour's do not move). Below 0 is a collision.
		cp := panel("obstacle clearance (m)")
		cl := make(plotter.XYs, len(tr.T))
		for i := range tr.T {
			c := math.Inf(1)
			for k := range tr.Obstacles {
				c = math.Min(c, tr.Obstacles[k].Dist(tr.EE[i])-tr.EERadius)
			}
			cl[i] = plotter.XY{X: tr.T[i].Seconds(), Y: c}
		}
		l, err := plotter.NewLine(cl)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		l.Color, l.Width = colObsEdge, vg.Points(1.4)
		zero, err := plotter.NewLine(plotter.XYs{{X: t0, Y: 0}, {X: t1, Y: 0}})
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		zero.Color, zero.Dashes = colFailure, []vg.Length{vg.Points(4), vg.Points(2)}
		cp.Add(l, zero)
		plots = append(plots, []*plot.Plot{cp})
	}
	for j := range n {
		jp := panel(rb.Joints[j] + " (rad)")
		q := make(plotter.XYs, len(tr.T))
		qlo, qhi := math.Inf(1), math.Inf(-1)
		for i := range tr.T {
			q[i] = plotter.XY{X: tr.T[i].Seconds(), Y: tr.Q[i][j]}
			qlo, qhi = math.Min(qlo, tr.Q[i][j]), math.Max(qhi, tr.Q[i][j])
		}
		l, err := plotter.NewLine(q)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		l.Color, l.Width = color.NRGBA{R: 31, G: 119, B: 180, A: 255}, vg.Points(1.4)
		jp.Add(l)
		// A limit is drawn when it is within the trajectory's span (at least 0.2 rad) of it,
		// so that a far limit does not squash the curve into a line.
		near := math.Max(qhi-qlo, 0.2)
		if j < len(rb.Lower) && rb.Lower[j] <= rb.Upper[j] {
			for _, lim := range []float64{rb.Lower[j], rb.Upper[j]} {
				if lim < qlo-near || lim > qhi+near {
					continue
				}
				ll, err := plotter.NewLine(plotter.XYs{{X: t0, Y: lim}, {X: t1, Y: lim}})
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				ll.Color, ll.Dashes = colLimit, []vg.Length{vg.Points(4), vg.Points(2)}
				jp.Add(ll)
			}
		}
		if j == n-1 {
			jp.X.Label.Text = "time (s)"
		}
		plots = append(plots, []*plot.Plot{jp})
	}
	img := vgimg.New(jointsWidth, jointsPanelH*vg.Length(len(plots))+0.3*vg.Inch)
	c := draw.New(img)
	cs := plot.Align(plots, draw.Tiles{Rows: len(plots), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(10), PadY: vg.Points(8)}, c)
	for i := range plots {
		plots[i][0].Draw(cs[i][0])
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("report: joints of %s seed %d: %w", ep.Task, ep.Seed, err)
	}
	return nil
}

// fineTicks is plot.DefaultTicks with each label the tick's value to 6 significant digits:
// DefaultTicks rounds its labels so that ticks 0.005 apart on a narrow joint range read alike.
func fineTicks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', 6, 64)
		}
	}
	return ticks
}

func norm3(a, b [3]float64) float64 {
	dx, dy, dz := a[0]-b[0], a[1]-b[1], a[2]-b[2]
	return math.Sqrt(dx*dx + dy*dy + dz*dz)
}

// goalLabel names the goal glyph: a ring of the tolerance around a fixed goal, or the end of a
// moving goal's dashed path.
func goalLabel(trs []*task.Trace) string {
	for _, tr := range trs {
		if moving(tr.Goal) {
			return "goal, its path dashed"
		}
	}
	return "goal, tolerance ring"
}

// moving reports whether a goal moved during the episode (track's does).
func moving(goal [][3]float64) bool {
	for _, g := range goal[1:] {
		if g != goal[0] {
			return true
		}
	}
	return false
}

func project(ps [][3]float64, ax, ay int) plotter.XYs {
	xy := make(plotter.XYs, len(ps))
	for i, p := range ps {
		xy[i] = plotter.XY{X: p[ax], Y: p[ay]}
	}
	return xy
}

// circle is a polygon approximating the circle of radius r about (cx, cy), drawn with edge
// colour edge and filled with fill (nil: not filled).
func circle(cx, cy, r float64, edge, fill color.Color) (*plotter.Polygon, error) {
	const n = 48
	pts := make(plotter.XYs, n)
	for i := range pts {
		a := 2 * math.Pi * float64(i) / n
		pts[i] = plotter.XY{X: cx + r*math.Cos(a), Y: cy + r*math.Sin(a)}
	}
	poly, err := plotter.NewPolygon(pts)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	poly.Color = fill
	poly.LineStyle.Color, poly.LineStyle.Width = edge, vg.Points(0.8)
	return poly, nil
}

// capsule is the outline of obstacle o (the points within Radius of the segment A-B) seen
// along the axis that is neither ax nor ay: a stadium, or a circle when A and B project
// together.
func capsule(o sim.Obstacle, ax, ay int) (*plotter.Polygon, error) {
	a := plotter.XY{X: o.A[ax], Y: o.A[ay]}
	b := plotter.XY{X: o.B[ax], Y: o.B[ay]}
	dx, dy := b.X-a.X, b.Y-a.Y
	l := math.Hypot(dx, dy)
	if l < 1e-9 {
		return circle(a.X, a.Y, o.Radius, colObsEdge, colObstacle)
	}
	base := math.Atan2(dy, dx)
	const half = 24
	var pts plotter.XYs
	// Around B from the left normal through the segment's direction to the right normal, then
	// around A back.
	for i := 0; i <= half; i++ {
		t := base + math.Pi/2 - math.Pi*float64(i)/half
		pts = append(pts, plotter.XY{X: b.X + o.Radius*math.Cos(t), Y: b.Y + o.Radius*math.Sin(t)})
	}
	for i := 0; i <= half; i++ {
		t := base - math.Pi/2 - math.Pi*float64(i)/half
		pts = append(pts, plotter.XY{X: a.X + o.Radius*math.Cos(t), Y: a.Y + o.Radius*math.Sin(t)})
	}
	poly, err := plotter.NewPolygon(pts)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	poly.Color = colObstacle
	poly.LineStyle.Color, poly.LineStyle.Width = colObsEdge, vg.Points(0.8)
	return poly, nil
}
