package bench

import (
	"bufio"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Env describes the machine and runtime a measurement ran on.
type Env struct {
	Time       time.Time `json:"time"` // UTC, when ReadEnv ran
	GoVersion  string    `json:"go_version"`
	GOOS       string    `json:"goos"`
	GOARCH     string    `json:"goarch"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	NumCPU     int       `json:"num_cpu"`
	// CPU is the processor model from /proc/cpuinfo ("" when it is absent or names none).
	CPU string `json:"cpu_model,omitempty"`
	// LoadAvg is the 1, 5 and 15 minute load averages from /proc/loadavg (nil when absent): on a
	// shared machine it says how much of the CPU others were using.
	LoadAvg []float64 `json:"load_average,omitempty"`
}

// ReadEnv returns the runtime's description and reads /proc/cpuinfo and /proc/loadavg where they
// exist.
func ReadEnv() Env {
	e := Env{
		Time:       time.Now().UTC().Truncate(time.Second),
		GoVersion:  runtime.Version(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		e.CPU = CPUModel(f)
		f.Close()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		e.LoadAvg = LoadAvg(string(b))
	}
	return e
}

// CPUModel returns the processor model named in /proc/cpuinfo's text r, or "" if it names none.
func CPUModel(r io.Reader) string {
	// The keys that name the processor, in order of preference: x86's "model name", then what
	// arm64 and older ARM kernels give.
	cpuKeys := [...]string{"model name", "Hardware", "Processor"}
	found := make(map[string]string, len(cpuKeys))
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.Join(strings.Fields(v), " ")
		if v == "" {
			continue
		}
		if _, seen := found[k]; !seen {
			found[k] = v
		}
	}
	for _, k := range cpuKeys {
		if v := found[k]; v != "" {
			return v
		}
	}
	return ""
}

// LoadAvg parses /proc/loadavg's text ("0.52 0.58 0.59 1/467 1234") into the 1, 5 and 15
// minute load averages, or nil if it does not start with three non-negative numbers.
func LoadAvg(s string) []float64 {
	f := strings.Fields(s)
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || !(v >= 0) || v > 1e9 {
			return nil
		}
		out[i] = v
	}
	return out
}
