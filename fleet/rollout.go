package fleet

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowact/flowact/robot"
)

// BundleFile is the name of the bundle manifest inside a model bundle.
const BundleFile = "fleet.json"

// BundleVersion is the version of BundleManifest this build writes and reads.
const BundleVersion = 1

// MaxBundleBytes bounds a model bundle (the shipped checkpoints are a few MB).
const MaxBundleBytes = 1 << 30

// ErrRefused is wrapped by the error of a model the robot refused to install.
var ErrRefused = errors.New("fleet: model refused")

// BundleManifest describes a model bundle: the robot model it was made for (robot.Model.Name and
// its joint order) and the SHA-256 of every file of the checkpoint directory it carries.
type BundleManifest struct {
	Version int               `json:"version"`
	Robot   string            `json:"robot"`  // robot model name, e.g. "ur5"
	Joints  []string          `json:"joints"` // the model's joint order
	Files   map[string]string `json:"files"`  // file name -> SHA-256, lowercase hex
	Created time.Time         `json:"created"`
	Note    string            `json:"note,omitempty"`
}

// Installer is what the binary gives the rollout: Install loads the verified checkpoint in dir
// and swaps it in between chunks, or returns an error and keeps the running model. dir is
// removed when Install returns.
type Installer interface {
	Install(dir string, m *BundleManifest) error
}

// ModelKV returns (creating it if missing) the model bucket in js.
func ModelKV(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ModelBucket, Description: "flowact: the model each robot runs", History: 5})
	if err != nil {
		return nil, fmt.Errorf("fleet: bucket %s: %w", ModelBucket, err)
	}
	return kv, nil
}

// CheckpointStore returns (creating it if missing) the checkpoint Object Store in js.
func CheckpointStore(ctx context.Context, js jetstream.JetStream) (jetstream.ObjectStore, error) {
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: CheckpointBucket, Description: "flowact: model bundles"})
	if err != nil {
		return nil, fmt.Errorf("fleet: object store %s: %w", CheckpointBucket, err)
	}
	return obs, nil
}

// Bundle packs the regular files of the checkpoint directory dir (no subdirectories) and a
// manifest for robot model m into a tar archive.
func Bundle(dir string, m *robot.Model, note string) ([]byte, *BundleManifest, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: bundle: %w", err)
	}
	bm := &BundleManifest{Version: BundleVersion, Robot: m.Name, Joints: m.Names(), Files: map[string]string{}, Created: time.Now().UTC(), Note: note}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == BundleFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("fleet: bundle: %w", err)
		}
		sum := sha256.Sum256(b)
		bm.Files[e.Name()] = hex.EncodeToString(sum[:])
		if err := writeTar(tw, e.Name(), b); err != nil {
			return nil, nil, err
		}
	}
	if len(bm.Files) == 0 {
		return nil, nil, fmt.Errorf("fleet: bundle: %s holds no files", dir)
	}
	mb, err := json.MarshalIndent(bm, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: bundle: %w", err)
	}
	if err := writeTar(tw, BundleFile, mb); err != nil {
		return nil, nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, nil, fmt.Errorf("fleet: bundle: %w", err)
	}
	return buf.Bytes(), bm, nil
}

func writeTar(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("fleet: bundle: %w", err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("fleet: bundle: %w", err)
	}
	return nil
}

// Push uploads a bundle as object name to the checkpoint store and points robotID's key in the
// model bucket at it (creating the bucket and store if missing).
func Push(ctx context.Context, js jetstream.JetStream, robotID, name string, bundle []byte) (*jetstream.ObjectInfo, error) {
	if err := ValidName(robotID); err != nil {
		return nil, fmt.Errorf("fleet: push: robot: %w", err)
	}
	obs, err := CheckpointStore(ctx, js)
	if err != nil {
		return nil, err
	}
	kv, err := ModelKV(ctx, js)
	if err != nil {
		return nil, err
	}
	info, err := obs.PutBytes(ctx, name, bundle)
	if err != nil {
		return nil, fmt.Errorf("fleet: push %s: %w", name, err)
	}
	if _, err := kv.PutString(ctx, robotID, name); err != nil {
		return nil, fmt.Errorf("fleet: push: key %s: %w", robotID, err)
	}
	return info, nil
}

// RolloutStats counts the rollout's work.
type RolloutStats struct {
	Installed uint64 // models swapped in
	Refused   uint64 // models refused (digest, checksums, another robot, the installer)
}

// Rollout watches a robot's key in the model bucket and installs each model it names: download
// to a temporary directory, verify the Object Store digest (SHA-256 of the whole bundle) before
// anything is unpacked, unpack only plain files, check every file against the bundle manifest's
// SHA-256, check that the bundle was made for this robot's model and joint order, then hand the
// directory to the Installer. A refused model leaves the running one in place; report is told
// the running model and the last refusal.
type Rollout struct {
	cfg    Config
	model  *robot.Model
	inst   Installer
	report func(model, refusal string)
	log    *slog.Logger

	current            string
	installed, refused atomic.Uint64
}

// NewRollout returns a rollout for cfg.Robot running on model. report may be nil.
func NewRollout(cfg Config, model *robot.Model, inst Installer, report func(model, refusal string), log *slog.Logger) *Rollout {
	if report == nil {
		report = func(string, string) {}
	}
	return &Rollout{cfg: cfg.withDefaults(), model: model, inst: inst, report: report, log: orDiscard(log)}
}

// Stats returns the counters.
func (r *Rollout) Stats() RolloutStats {
	return RolloutStats{Installed: r.installed.Load(), Refused: r.refused.Load()}
}

// Run watches the key until ctx ends, then returns nil. It waits for the bucket to exist.
func (r *Rollout) Run(ctx context.Context, nc *nats.Conn) error {
	js, err := newJetStream(nc, r.cfg.HubDomain)
	if err != nil {
		return err
	}
	var kv jetstream.KeyValue
	var w jetstream.KeyWatcher
	if err := retry(ctx, r.log, "watch the model key", func() error {
		c, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
		defer cancel()
		var err error
		if kv, err = js.KeyValue(c, ModelBucket); err != nil {
			return err
		}
		w, err = kv.Watch(ctx, r.cfg.Robot)
		return err
	}); err != nil {
		return nil
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			name := string(e.Value())
			if name == r.current {
				continue
			}
			if err := r.install(ctx, js, name); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.refused.Add(1)
				r.log.Warn("fleet: model refused", "robot", r.cfg.Robot, "model", name, "err", err)
				r.report(r.current, name+": "+err.Error())
				continue
			}
			r.current = name
			r.installed.Add(1)
			r.log.Info("fleet: model installed", "robot", r.cfg.Robot, "model", name)
			r.report(name, "")
		}
	}
}

func (r *Rollout) install(ctx context.Context, js jetstream.JetStream, name string) error {
	obs, err := js.ObjectStore(ctx, CheckpointBucket)
	if err != nil {
		return fmt.Errorf("fleet: object store %s: %w", CheckpointBucket, err)
	}
	tmp, err := os.MkdirTemp("", "flowact-model-")
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	defer os.RemoveAll(tmp)
	bundle := filepath.Join(tmp, "bundle.tar")
	if err := download(ctx, obs, name, bundle); err != nil {
		return err
	}
	dir := filepath.Join(tmp, "model")
	bm, err := unpack(bundle, dir)
	if err != nil {
		return err
	}
	if bm.Robot != r.model.Name || !slices.Equal(bm.Joints, r.model.Names()) {
		return fmt.Errorf("%w: made for robot %q with joints %v, this is %q with %v", ErrRefused, bm.Robot, bm.Joints, r.model.Name, r.model.Names())
	}
	if err := r.inst.Install(dir, bm); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil
}

// download writes object name to path and checks the SHA-256 of what was written against the
// object's digest; on any failure the file is removed.
func download(ctx context.Context, obs jetstream.ObjectStore, name, path string) (err error) {
	info, err := obs.GetInfo(ctx, name)
	if err != nil {
		return fmt.Errorf("fleet: model %s: %w", name, err)
	}
	if info.Size > MaxBundleBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrRefused, info.Size, MaxBundleBytes)
	}
	want, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("%w: object digest %q", ErrRefused, info.Digest)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("fleet: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	res, err := obs.Get(ctx, name)
	if err != nil {
		return fmt.Errorf("fleet: model %s: %w", name, err)
	}
	defer res.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(res, MaxBundleBytes+1))
	if err != nil {
		return fmt.Errorf("%w: download: %w", ErrRefused, err)
	}
	if n != int64(info.Size) {
		return fmt.Errorf("%w: downloaded %d bytes, the object has %d", ErrRefused, n, info.Size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("%w: SHA-256 %x, the object's digest says %x", ErrRefused, got, want)
	}
	return nil
}

// unpack extracts a verified bundle into dir: plain files with plain names only, each listed in
// the bundle manifest with its SHA-256, nothing missing.
func unpack(bundle, dir string) (*BundleManifest, error) {
	f, err := os.Open(bundle)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	defer f.Close()
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	sums := map[string]string{}
	var manifest []byte
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: bundle: %v", ErrRefused, err)
		}
		if h.Typeflag != tar.TypeReg || h.Name == "" || strings.ContainsAny(h.Name, `/\`) || h.Name == "." || h.Name == ".." || h.Size < 0 {
			return nil, fmt.Errorf("%w: bundle entry %q (type %c): only plain files", ErrRefused, h.Name, h.Typeflag)
		}
		if _, dup := sums[h.Name]; dup {
			return nil, fmt.Errorf("%w: bundle entry %q twice", ErrRefused, h.Name)
		}
		if h.Name == BundleFile {
			if manifest, err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
				return nil, fmt.Errorf("%w: bundle: %v", ErrRefused, err)
			}
			sums[h.Name] = ""
			continue
		}
		out, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		hs := sha256.New()
		_, err = io.Copy(io.MultiWriter(out, hs), tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("fleet: bundle %s: %w", h.Name, err)
		}
		sums[h.Name] = hex.EncodeToString(hs.Sum(nil))
	}
	if manifest == nil {
		return nil, fmt.Errorf("%w: bundle has no %s", ErrRefused, BundleFile)
	}
	var bm BundleManifest
	d := json.NewDecoder(bytes.NewReader(manifest))
	d.DisallowUnknownFields()
	if err := d.Decode(&bm); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrRefused, BundleFile, err)
	}
	if bm.Version != BundleVersion {
		return nil, fmt.Errorf("%w: %s version %d, want %d", ErrRefused, BundleFile, bm.Version, BundleVersion)
	}
	for name, want := range bm.Files {
		got, ok := sums[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s lists %s, the bundle lacks it", ErrRefused, BundleFile, name)
		}
		if got != strings.ToLower(want) {
			return nil, fmt.Errorf("%w: %s: SHA-256 %s, %s says %s", ErrRefused, name, got, BundleFile, want)
		}
	}
	for name := range sums {
		if _, ok := bm.Files[name]; !ok && name != BundleFile {
			return nil, fmt.Errorf("%w: %s is not in %s", ErrRefused, name, BundleFile)
		}
	}
	return &bm, nil
}
