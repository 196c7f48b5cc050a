package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/flowact/flowact/sim/task"
)

// File names in a report directory.
const (
	EpisodesFile = "episodes.jsonl"
	SummaryJSON  = "summary.json"
	SummaryText  = "summary.txt"
	IndexFile    = "index.html"
)

// ownFile matches the names Write gives files, which Prepare's overwrite removes: the fixed
// names, <task>-paths.png and <task>-<seed>-joints.png, and a write's temporary files.
var ownFile = regexp.MustCompile(`^(episodes\.jsonl|summary\.json|summary\.txt|index\.html|[A-Za-z0-9_.-]+-paths\.png|[A-Za-z0-9_.-]+-[0-9]+-joints\.png)(\.tmp)?$`)

// Episode is one line of episodes.jsonl.
type Episode struct {
	Task string `json:"task"`
	// TaskFile is the task file as the command was given it (a shipped task's name or a path).
	TaskFile    string `json:"task_file,omitempty"`
	Seed        uint64 `json:"seed"`
	Instruction string `json:"instruction,omitempty"`
	Target      string `json:"target,omitempty"`
	Success     bool   `json:"success"`
	// Reason says how the episode ended: "reached the goal", "tracked 93% of ticks", "collided
	// with the obstacle", "time limit: ..."
	Reason string `json:"reason"`
	// FinalDistance is from the end effector to the goal at the last task tick, m.
	FinalDistance float64 `json:"final_distance_m"`
	Collided      bool    `json:"collided"`
	// Clearance is detour's smallest end-effector surface distance to the obstacle, m.
	Clearance *float64 `json:"clearance_m,omitempty"`
	// Tracked is track's fraction of ticks after settling within tolerance.
	Tracked *float64 `json:"tracked,omitempty"`
	Elapsed float64  `json:"elapsed_s"` // simulated time the task ran
	// Loop figures of the episode (policy.Snapshot), when the report's command has them per
	// episode; nil otherwise.
	Loop *Loop `json:"loop,omitempty"`
	// Joints names the joint trajectory plot of a failed episode ("" when none was drawn).
	Joints string `json:"joints_plot,omitempty"`
}

// Loop is the control loop's figures over one episode.
type Loop struct {
	Ticks     uint64 `json:"ticks"`
	Chunks    uint64 `json:"chunks"`
	Late      uint64 `json:"late_chunks"`
	HoldTicks uint64 `json:"hold_ticks"`
	Clamps    uint64 `json:"clamps"`
	// Delay is each chunk's delay in ticks, from its request to its first executed row.
	// The maxima are left out (0) where the command has no per-episode histograms (demo: one
	// loop runs every episode).
	DelayMean float64 `json:"chunk_delay_mean_ticks"`
	DelayMax  float64 `json:"chunk_delay_max_ticks,omitempty"`
	// Seam figures: the jump and the jerk where a new chunk takes over.
	Seams        uint64  `json:"seams"`
	SeamJumpMean float64 `json:"seam_jump_mean_rad"`
	SeamJumpMax  float64 `json:"seam_jump_max_rad,omitempty"`
	SeamJerkMean float64 `json:"seam_jerk_mean_rad_s3"`
	SeamJerkMax  float64 `json:"seam_jerk_max_rad_s3,omitempty"`
	// InferenceMean is the wall-clock time of an inference on this machine, s.
	InferenceMean float64 `json:"inference_mean_s"`
}

// Robot is what the joint plots need of the robot: joint names and position limits (model
// order; Lower[i] > Upper[i] for a joint without limits).
type Robot struct {
	Joints       []string
	Lower, Upper []float64
}

// Run is one report: the episodes in the order they ran, each with its trace (nil when none
// was recorded), and the command's summary.
type Run struct {
	Title    string // "flowact eval" or "flowact demo"
	Command  string // the command line, shown in the page
	Robot    Robot
	Episodes []Episode
	Traces   []*task.Trace // parallel to Episodes
	// Summary is the report the command printed: as JSON (summary.json) and as text
	// (summary.txt, also shown in index.html).
	Summary     any
	SummaryText string
}

// Prepare makes dir ready for a report before the run starts: it creates it when missing and
// refuses one that holds anything unless overwrite is set, in which case the files of a former
// report are removed (any other file is left and keeps the directory refused).
func Prepare(dir string, overwrite bool) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	if len(ents) == 0 {
		return nil
	}
	if !overwrite {
		return fmt.Errorf("%s is not empty (%d entries, %s first): give --overwrite to replace the report it holds, or another --out", dir, len(ents), ents[0].Name())
	}
	var other []string
	for _, e := range ents {
		if e.Type().IsRegular() && ownFile.MatchString(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
			continue
		}
		other = append(other, e.Name())
	}
	if len(other) > 0 {
		return fmt.Errorf("%s holds %d entries that are not a report's (%s first): --overwrite removes only a former report's files; give another --out", dir, len(other), other[0])
	}
	return nil
}

// Write writes r into dir (prepared with Prepare): episodes.jsonl, summary.json, summary.txt,
// the plots and index.html, one section and one path plot per task file (grouped by
// Episode.TaskFile). Episodes[i].Joints is set for each failed episode whose plot was drawn.
func Write(dir string, r *Run) error {
	if len(r.Traces) != len(r.Episodes) {
		return fmt.Errorf("report: %d traces for %d episodes", len(r.Traces), len(r.Episodes))
	}
	// Plots first: the JSONL names each failed episode's joint plot.
	groups := groupEpisodes(r.Episodes)
	for _, g := range groups {
		var eps []Episode
		var trs []*task.Trace
		for _, i := range g.index {
			if r.Traces[i] != nil && len(r.Traces[i].T) > 0 {
				eps, trs = append(eps, r.Episodes[i]), append(trs, r.Traces[i])
			}
		}
		if len(eps) == 0 {
			continue
		}
		var b bytes.Buffer
		if err := PlotPaths(&b, g.title, eps, trs); err != nil {
			return err
		}
		if err := writeFile(dir, g.base+"-paths.png", b.Bytes()); err != nil {
			return err
		}
		g.paths = g.base + "-paths.png"
		for _, i := range g.index {
			ep, tr := &r.Episodes[i], r.Traces[i]
			if ep.Success || tr == nil || len(tr.T) == 0 {
				continue
			}
			b.Reset()
			if err := PlotJoints(&b, *ep, tr, r.Robot); err != nil {
				return err
			}
			ep.Joints = g.base + "-" + strconv.FormatUint(ep.Seed, 10) + "-joints.png"
			if err := writeFile(dir, ep.Joints, b.Bytes()); err != nil {
				return err
			}
		}
	}
	var lines bytes.Buffer
	enc := json.NewEncoder(&lines)
	for i := range r.Episodes {
		if err := enc.Encode(&r.Episodes[i]); err != nil {
			return fmt.Errorf("report: episode %d: %w", i, err)
		}
	}
	if err := writeFile(dir, EpisodesFile, lines.Bytes()); err != nil {
		return err
	}
	sum, err := json.MarshalIndent(r.Summary, "", "  ")
	if err != nil {
		return fmt.Errorf("report: summary: %w", err)
	}
	if err := writeFile(dir, SummaryJSON, append(sum, '\n')); err != nil {
		return err
	}
	if err := writeFile(dir, SummaryText, []byte(r.SummaryText)); err != nil {
		return err
	}
	var page bytes.Buffer
	if err := indexPage.Execute(&page, indexData(r, groups)); err != nil {
		return fmt.Errorf("report: index: %w", err)
	}
	return writeFile(dir, IndexFile, page.Bytes())
}

// group is the episodes of one task file, in the order they ran: a report's section and plot.
type group struct {
	key   string // the task file as given, else the task's name
	title string // "reach", or "reach (short.yaml)" when several files share a task
	base  string // file names' stem: the task's name, "-2", "-3"... for later files of one task
	index []int  // into the run's episodes
	paths string // the path plot's file, once written
}

// groupEpisodes groups episodes by task file, in order of first appearance. Each group's
// files are named after its task; a second file of the same task gets "<task>-2", so that no
// plot overwrites another.
func groupEpisodes(eps []Episode) []*group {
	var gs []*group
	byKey := map[string]*group{}
	perTask := map[string]int{}
	for i, e := range eps {
		key := e.TaskFile
		if key == "" {
			key = e.Task
		}
		g, ok := byKey[key]
		if !ok {
			perTask[e.Task]++
			g = &group{key: key, title: e.Task, base: e.Task}
			if n := perTask[e.Task]; n > 1 {
				g.base = fmt.Sprintf("%s-%d", e.Task, n)
			}
			byKey[key] = g
			gs = append(gs, g)
		}
		g.index = append(g.index, i)
	}
	for _, g := range gs {
		if perTask[g.title] > 1 && g.key != g.title {
			g.title = fmt.Sprintf("%s (%s)", g.title, g.key)
		}
	}
	return gs
}

// Reason says how an episode of a task ended, from its metadata: timeLimit is the task's, tol
// its success distance (m).
func Reason(m task.Meta, timeLimit time.Duration, tol float64) string {
	switch {
	case m.Collided:
		return fmt.Sprintf("collided with the obstacle at %.2f s", m.Elapsed.Seconds())
	case m.Task == "track" && m.Success:
		return fmt.Sprintf("tracked the target %.1f%% of the ticks", 100*m.Tracked)
	case m.Task == "track":
		return fmt.Sprintf("tracked the target only %.1f%% of the ticks", 100*m.Tracked)
	case m.Success:
		return fmt.Sprintf("reached the goal at %.2f s", m.Elapsed.Seconds())
	case m.Elapsed >= timeLimit:
		return fmt.Sprintf("time limit %.3g s: %.1f mm from the goal (tolerance %.1f mm)", timeLimit.Seconds(), 1000*m.Distance, 1000*tol)
	}
	return fmt.Sprintf("stopped at %.2f s, %.1f mm from the goal", m.Elapsed.Seconds(), 1000*m.Distance)
}

// totals are a group's sums, as index.html shows them.
type totals struct {
	Task       string
	Episodes   int
	Successes  int
	Rate       string
	Paths      string // "" when no path was recorded
	Rows       []Episode
	Collisions int
}

type pageData struct {
	Title, Command, Summary string
	Tasks                   []totals
}

func indexData(r *Run, groups []*group) pageData {
	d := pageData{Title: r.Title, Command: r.Command, Summary: r.SummaryText}
	for _, g := range groups {
		t := totals{Task: g.title, Paths: g.paths}
		for _, i := range g.index {
			e := r.Episodes[i]
			t.Episodes++
			if e.Success {
				t.Successes++
			}
			if e.Collided {
				t.Collisions++
			}
			t.Rows = append(t.Rows, e)
		}
		t.Rate = fmt.Sprintf("%.1f%%", 100*float64(t.Successes)/float64(t.Episodes))
		d.Tasks = append(d.Tasks, t)
	}
	return d
}

var indexPage = template.Must(template.New("index").Funcs(template.FuncMap{
	"mm": func(m float64) string { return fmt.Sprintf("%.1f", 1000*m) },
}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
td.l{text-align:left}tr.fail{background:#fdd}pre{background:#f4f4f4;padding:1em}img{max-width:100%}</style></head>
<body>
<h1>{{.Title}}</h1>
{{if .Command}}<p><code>{{.Command}}</code></p>{{end}}
<pre>{{.Summary}}</pre>
<p>Per episode: <a href="episodes.jsonl">episodes.jsonl</a>; summary: <a href="summary.json">summary.json</a>, <a href="summary.txt">summary.txt</a>.</p>
{{range .Tasks}}
<h2>{{.Task}}: {{.Successes}}/{{.Episodes}} ({{.Rate}}){{if .Collisions}}, {{.Collisions}} collisions{{end}}</h2>
{{if .Paths}}<p><a href="{{.Paths}}"><img src="{{.Paths}}" alt="{{.Task}}: end-effector paths, top and side view"></a></p>{{end}}
<table><tr><th>seed</th><th>success</th><th class="l">reason</th><th>final distance (mm)</th><th class="l">joints</th></tr>
{{range .Rows}}<tr{{if not .Success}} class="fail"{{end}}><td>{{.Seed}}</td><td>{{.Success}}</td><td class="l">{{.Reason}}</td><td>{{mm .FinalDistance}}</td><td class="l">{{if .Joints}}<a href="{{.Joints}}">{{.Joints}}</a>{{end}}</td></tr>
{{end}}</table>
{{end}}
</body></html>
`))

// writeFile writes data to dir/name through a temporary file renamed into place.
func writeFile(dir, name string, data []byte) error {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p+".tmp", data, 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
