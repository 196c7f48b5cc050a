package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowact/flowact/dataset"
	"github.com/flowact/flowact/fleet"
)

// TestTrainFromStream: `flowact collect --nats` records episodes into a robot's stream on a
// hub; `flowact train --data nats://HOST/STREAM` reads that stream as the dataset. The examples
// drawn from it equal, draw for draw with the same seed, those drawn from the bags `flowact
// export` writes from the same stream, and training on either gives the same data hash and the
// same weights bit for bit.
func TestTrainFromStream(t *testing.T) {
	url := startHub(t, "--domain", "hub")
	ctx := context.Background()
	code, _, stderr := runCLI(t, ctx, "collect", "--task", "reach", "--episodes", "4", "--out", t.TempDir(), "--seed", "60",
		"--nats", url, "--nats-domain", "hub", "--fleet-id", "sim1", "--spool", t.TempDir())
	if code != 0 {
		t.Fatalf("collect: exit %d: %s", code, stderr)
	}
	bags := t.TempDir()
	if code, _, stderr := runCLI(t, ctx, "export", "--nats", url, "--stream", fleet.EpisodeStream("sim1"), "--out", bags); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	data := url + "/" + fleet.EpisodeStream("sim1") + "?domain=hub&robot=sim1"

	// The examples, draw for draw.
	sd, err := parseStreamData(data)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := sd.export(ctx, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	examples := func(dir string) (*dataset.Examples, []string) {
		paths, err := dataset.List(dir)
		if err != nil || len(paths) != 4 {
			t.Fatalf("%s: %d bags, %v", dir, len(paths), err)
		}
		eps, err := dataset.LoadEpisodes(paths, dataset.Config{}, dataset.Successful)
		if err != nil {
			t.Fatal(err)
		}
		x, err := dataset.NewExamples(eps, dataset.ExamplesConfig{Horizon: 16, Relative: true})
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(paths))
		for i, p := range paths {
			names[i] = filepath.Base(p)
		}
		return x, names
	}
	xs, ns := examples(dir)
	xb, nb := examples(bags)
	if !slices.Equal(ns, nb) {
		t.Fatalf("episodes from the stream %v, from the exported bags %v", ns, nb)
	}
	h, d, tok, w, sdim := xb.Shape()
	draw := func(x *dataset.Examples, r *rand.Rand) ([]float32, []float64, []float64, int) {
		emb, st, act := make([]float32, tok*w), make([]float64, sdim), make([]float64, h*d)
		n := x.DrawTo(r, emb, st, act)
		return emb, st, act, n
	}
	rs, rb := rand.New(rand.NewPCG(7, 0)), rand.New(rand.NewPCG(7, 0))
	for i := range 500 {
		e1, s1, a1, n1 := draw(xs, rs)
		e2, s2, a2, n2 := draw(xb, rb)
		if !slices.Equal(e1, e2) || !slices.Equal(s1, s2) || !slices.Equal(a1, a2) || n1 != n2 {
			t.Fatalf("draw %d differs between the stream and the exported bags", i)
		}
	}

	// Training on either.
	train := func(data string) (trainSummary, []byte) {
		t.Helper()
		ck := filepath.Join(t.TempDir(), "ck")
		code, out, stderr := runCLI(t, ctx, "train", "--data", data, "--out", ck, "--steps", "4", "--batch", "8", "--hidden", "16",
			"--layers", "1", "--warmup", "1", "--ema", "0", "--val", "0.25", "--seed", "5", "--horizon", "16", "--json")
		if code != 0 {
			t.Fatalf("train --data %s: exit %d: %s", data, code, stderr)
		}
		var sum trainSummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatal(err)
		}
		w, err := os.ReadFile(filepath.Join(ck, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return sum, w
	}
	s1, w1 := train(data)
	s2, w2 := train(bags)
	if s1.DataHash != s2.DataHash || s1.Episodes != s2.Episodes || s1.Samples != s2.Samples || !bytes.Equal(w1, w2) {
		t.Errorf("train from the stream: %+v; from the exported bags: %+v; weights equal: %v", s1, s2, bytes.Equal(w1, w2))
	}

	// Bad URLs are usage errors naming what is wrong.
	for _, bad := range []string{url, url + "/a.b", url + "/" + fleet.HubStream + "?colour=red", url + "/" + fleet.HubStream + "?robot=a.b"} {
		code, _, stderr := runCLI(t, ctx, "train", "--data", bad, "--out", filepath.Join(t.TempDir(), "ck"))
		if code != 2 || !strings.Contains(stderr, "--data") {
			t.Errorf("train --data %s: exit %d: %s", bad, code, stderr)
		}
	}
}
