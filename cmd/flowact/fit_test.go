package main

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/flowact/flowact/policy"
	"github.com/flowact/flowact/policy/chunk"
	"github.com/flowact/flowact/sim/episode"
	"github.com/flowact/flowact/sim/task"
)

// TestDetourFit measures how well the shipped expert imitates the detour demonstrator on the
// demonstrator's own states, open loop: at every third tick of clean scripted episodes (seeds
// from 1000000, not trained on), it samples chunks without a prefix and compares the end
// effector's lateral motion over the next 10 ticks (toward the demonstrator's side, m) with the
// demonstrator's, by how far along the way the end effector is. The checkpoint README's figures
// come from FLOWACT_FIT_EPISODES=40 FLOWACT_FIT_SAMPLES=4 `go test -run TestDetourFit -v
// ./cmd/flowact/` (FLOWACT_FIT_CHECKPOINT=DIR measures another checkpoint). Asserted, while the
// end effector is 10-30% of the way: the expert heads to the demonstrator's side in at least 60%
// of the samples (measured: 97% with the README's settings, 92% with this test's, 79% under the
// race detector's 2 episodes; an expert that ignored its state and embedding would be at 50%)
// with at least 30% of its lateral motion (85%, 75%, 55%).
func TestDetourFit(t *testing.T) {
	episodes, samples := 4, 2
	if raceBuild() {
		episodes, samples = 2, 1
	}
	if v, err := strconv.Atoi(os.Getenv("FLOWACT_FIT_EPISODES")); err == nil {
		episodes = v
	}
	if v, err := strconv.Atoi(os.Getenv("FLOWACT_FIT_SAMPLES")); err == nil {
		samples = v
	}
	lp, tfs, err := loadPolicyTasks("eval", DefaultPolicy, "", "", os.Getenv("FLOWACT_FIT_CHECKPOINT"), []string{"detour"})
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	runner, err := episode.New(tfs[0].Episode, lp.rb)
	if err != nil {
		t.Fatal(err)
	}
	inf, err := lp.expert(5)
	if err != nil {
		t.Fatal(err)
	}
	h, d := lp.ck.Shape()
	c := chunk.Chunk{Data: make([]float64, h*d)}
	const ahead = 10
	type bucket struct{ demo, model, n, agree float64 }
	var buckets [5]bucket // tenths of the way
	seq := uint64(0)
	start := lp.rb.EEPos(lp.rb.Home)
	for i := range episodes {
		tk, err := task.New(tfs[0].Task)
		if err != nil {
			t.Fatal(err)
		}
		res, err := runner.Run(context.Background(), tk, 1000000+uint64(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		det := tk.(*task.Detour)
		var tr task.Truth
		det.TruthTo(&tr, 0)
		lat, side := det.Lateral(), float64(res.Side)
		dir := [3]float64{tr.Goal[0] - start[0], tr.Goal[1] - start[1], tr.Goal[2] - start[2]}
		l2 := dir[0]*dir[0] + dir[1]*dir[1] + dir[2]*dir[2]
		lateral := func(from, to [3]float64) float64 {
			return side * ((to[0]-from[0])*lat[0] + (to[1]-from[1])*lat[1])
		}
		for k := 0; k+ahead < len(res.Records); k += 3 {
			rec := &res.Records[k]
			if rec.Embedding == nil {
				continue
			}
			p := lp.rb.EEPos(rec.Position)
			s := ((p[0]-start[0])*dir[0] + (p[1]-start[1])*dir[1] + (p[2]-start[2])*dir[2]) / l2
			b := int(s * 10)
			if b < 0 || b >= len(buckets) {
				continue
			}
			demo := lateral(p, lp.rb.EEPos(res.Records[k+ahead].Command))
			for range samples {
				seq++
				req := policy.Request{Seq: seq, Position: rec.Position,
					Embedding: policy.Embedding{Tokens: res.Tokens, Width: res.Width, Data: rec.Embedding}}
				if err := inf.Infer(&c, &req); err != nil {
					t.Fatal(err)
				}
				model := lateral(p, lp.rb.EEPos(c.Row(ahead)))
				bk := &buckets[b]
				bk.demo += demo
				bk.model += model
				bk.n++
				if model > 0 {
					bk.agree++
				}
			}
		}
	}
	var mid bucket
	for b, bk := range buckets {
		if bk.n == 0 {
			continue
		}
		t.Logf("%d-%d%% of the way: %4.0f samples, lateral motion demonstrator %5.1f mm, expert %5.1f mm (%.2f), expert on the demonstrator's side %.0f%%",
			10*b, 10*b+10, bk.n, 1000*bk.demo/bk.n, 1000*bk.model/bk.n, bk.model/bk.demo, 100*bk.agree/bk.n)
		if b == 1 || b == 2 {
			mid.demo, mid.model, mid.n, mid.agree = mid.demo+bk.demo, mid.model+bk.model, mid.n+bk.n, mid.agree+bk.agree
		}
	}
	if mid.n == 0 {
		t.Fatal("no samples 10-30% of the way")
	}
	if agree, ratio := mid.agree/mid.n, mid.model/mid.demo; agree < 0.6 || ratio < 0.3 {
		t.Errorf("10-30%% of the way: the expert heads to the demonstrator's side in %.0f%% of %0.f samples with %.2f of its lateral motion; want at least 60%% and 0.30", 100*agree, mid.n, ratio)
	}
}
