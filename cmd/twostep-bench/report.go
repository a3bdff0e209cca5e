package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// report is everything a run prints.
type report struct {
	RunID    string
	Started  time.Time
	Cores    int
	Clients  int
	Duration time.Duration
	Warmup   time.Duration
	Targets  []string    // -url targets, or the started binary
	Servers  []*instance // started instances, with their peak memory
	Ops      []opResult
	Bounds   []opBound
	Notes    []string
}

// opBound compares an operation that hashes a password per request with the hashing ceiling.
type opBound struct {
	Op      string
	Phase   string
	OKPerS  float64 // successful requests per second
	Bound   hashBound
	Percent float64
	Err     string // the bound could not be measured
}

// writeText prints the human-readable report.
func (r *report) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "twostep-bench run %s, %s, %d cores, %d clients, %v per operation after %v warm-up\n",
		r.RunID, r.Started.Format(time.RFC3339), r.Cores, r.Clients, r.Duration, r.Warmup)
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "target: %s\n", t)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	b.WriteString("\n")

	const row = "%-12s %9s %7s %9s %9s %9s %9s %9s\n"
	fmt.Fprintf(&b, row, "operation", "requests", "errors", "req/s", "p50", "p95", "p99", "max")
	for _, o := range r.Ops {
		if o.Skipped != "" {
			fmt.Fprintf(&b, row, o.Op, "-", "-", "-", "-", "-", "-", "-")
			continue
		}
		fmt.Fprintf(&b, row, o.Op, strconv.Itoa(o.Requests), strconv.Itoa(o.Errors), fmt.Sprintf("%.1f", o.PerSec),
			fmtMS(o.P50), fmtMS(o.P95), fmtMS(o.P99), fmtMS(o.Max))
	}

	var details []string
	for _, o := range r.Ops {
		if o.Skipped != "" {
			details = append(details, fmt.Sprintf("%s: skipped, %s", o.Op, o.Skipped))
			continue
		}
		if o.Errors > 0 {
			details = append(details, fmt.Sprintf("%s: errors by status: %s", o.Op, errorDetail(o.ByStatus)))
		}
		if o.StoppedEarly != "" {
			details = append(details, fmt.Sprintf("%s: %s", o.Op, o.StoppedEarly))
		}
		for _, n := range o.Notes {
			details = append(details, fmt.Sprintf("%s: %s", o.Op, n))
		}
	}
	if len(details) > 0 {
		b.WriteString("\n")
		for _, d := range details {
			fmt.Fprintf(&b, "  %s\n", d)
		}
	}

	r.writeCPU(&b)

	if len(r.Bounds) > 0 {
		b.WriteString("\npassword-hash bound (one argon2id hash per request; hash time = median of 5 in this process, after 1 untimed):\n")
		for _, ob := range r.Bounds {
			if ob.Err != "" {
				fmt.Fprintf(&b, "  %s: not measured: %s\n", ob.Op, ob.Err)
				continue
			}
			p := ob.Bound.Params
			fmt.Fprintf(&b, "  %-12s argon2id m=%d KiB t=%d p=%d: hash %s, bound = %d cores / %s = %.1f/s; %s %.1f ok/s = %.1f%% of bound\n",
				ob.Op+":", p.MemoryKiB, p.Iterations, p.Parallelism, fmtMS(ob.Bound.HashTime),
				ob.Bound.Cores, fmtMS(ob.Bound.HashTime), ob.Bound.PerSec, ob.Op, ob.OKPerS, ob.Percent)
		}
	}

	if len(r.Servers) > 0 {
		b.WriteString("\nserver peak RSS (VmHWM, read before stopping):\n")
		for _, in := range r.Servers {
			rss := "unknown"
			if in.PeakKiB > 0 {
				rss = fmt.Sprintf("%.1f MiB", float64(in.PeakKiB)/1024)
			}
			if in.ExitedEarly != "" {
				rss += fmt.Sprintf(" (it exited on its own during the run, %s; log kept: %s)", in.ExitedEarly, in.LogPath)
			}
			fmt.Fprintf(&b, "  %s %s: %s\n", in.Phase, in.Addr, rss)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCPU prints what each timed operation cost the servers in CPU time.
func (r *report) writeCPU(b *strings.Builder) {
	var lines []string
	for _, o := range r.Ops {
		switch per, ok := o.cpuPerOK(); {
		case o.Skipped != "":
		case o.CPUErr != "":
			lines = append(lines, fmt.Sprintf("  %s: not measured: %s", o.Op, o.CPUErr))
		case !o.CPUMeasured:
		case !ok:
			lines = append(lines, fmt.Sprintf("  %s: %.2f s CPU, no successful operation", o.Op, o.ServerCPU.Seconds()))
		default:
			cores := 0.0
			if o.Elapsed > 0 {
				cores = o.ServerCPU.Seconds() / o.Elapsed.Seconds()
			}
			lines = append(lines, fmt.Sprintf("  server CPU per %s: %s (%.2f s CPU in %.2f s = %.2f cores busy; %d ok)",
				o.Op, fmtMS(per), o.ServerCPU.Seconds(), o.Elapsed.Seconds(), cores, o.ok()))
		}
		if o.Skipped == "" && o.HarnessCPUMeasured && o.ok() > 0 && o.Elapsed > 0 {
			lines = append(lines, fmt.Sprintf("  harness CPU per %s: %s (%.2f cores busy)",
				o.Op, fmtMS(o.HarnessCPU/time.Duration(o.ok())), o.HarnessCPU.Seconds()/o.Elapsed.Seconds()))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(b, "\nserver CPU (utime+stime of every started server process from /proc/PID/stat, over the timed run, "+
		"divided by its successful operations; it includes the servers' background work, and it is counted in ticks of 1/%d s, so short runs are coarse; "+
		"the harness's own CPU, from getrusage, is shown beside it, since both share the machine's cores):\n", clockTicks())
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
}

// fmtMS formats a latency in milliseconds.
func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// ms converts a duration to milliseconds for JSON.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeJSON prints the machine-readable report: one JSON document.
func (r *report) writeJSON(w io.Writer) error {
	type jsonOp struct {
		Op           string         `json:"op"`
		Phase        string         `json:"phase,omitempty"`
		Skipped      string         `json:"skipped,omitempty"`
		Requests     int            `json:"requests"`
		Errors       int            `json:"errors"`
		ByStatus     map[string]int `json:"errors_by_status,omitempty"`
		ElapsedS     float64        `json:"elapsed_s"`
		PerSec       float64        `json:"requests_per_s"`
		P50          float64        `json:"p50_ms"`
		P95          float64        `json:"p95_ms"`
		P99          float64        `json:"p99_ms"`
		Max          float64        `json:"max_ms"`
		StoppedEarly string         `json:"stopped_early,omitempty"`
		Notes        []string       `json:"notes,omitempty"`
		ServerCPUS   *float64       `json:"server_cpu_s,omitempty"`
		CPUPerOKMS   *float64       `json:"server_cpu_per_ok_ms,omitempty"`
		CPUErr       string         `json:"server_cpu_error,omitempty"`
		HarnessCPUS  *float64       `json:"harness_cpu_s,omitempty"`
	}
	type jsonBound struct {
		Op          string  `json:"op"`
		Phase       string  `json:"phase,omitempty"`
		MemoryKiB   uint32  `json:"memory_kib,omitempty"`
		Iterations  uint32  `json:"iterations,omitempty"`
		Parallelism uint8   `json:"parallelism,omitempty"`
		HashMS      float64 `json:"hash_ms,omitempty"`
		Cores       int     `json:"cores,omitempty"`
		BoundPerS   float64 `json:"bound_per_s,omitempty"`
		OKPerS      float64 `json:"ok_per_s"`
		Percent     float64 `json:"percent_of_bound,omitempty"`
		Err         string  `json:"error,omitempty"`
	}
	out := struct {
		RunID     string      `json:"run"`
		Started   time.Time   `json:"started"`
		Cores     int         `json:"cores"`
		Clients   int         `json:"clients"`
		DurationS float64     `json:"duration_s"`
		WarmupS   float64     `json:"warmup_s"`
		Targets   []string    `json:"targets"`
		Notes     []string    `json:"notes,omitempty"`
		Ops       []jsonOp    `json:"operations"`
		Bounds    []jsonBound `json:"hash_bounds,omitempty"`
		Servers   []*instance `json:"servers,omitempty"`
	}{
		RunID: r.RunID, Started: r.Started, Cores: r.Cores, Clients: r.Clients,
		DurationS: r.Duration.Seconds(), WarmupS: r.Warmup.Seconds(),
		Targets: r.Targets, Notes: r.Notes, Servers: r.Servers,
	}
	for _, o := range r.Ops {
		jo := jsonOp{
			Op: o.Op, Phase: o.Phase, Skipped: o.Skipped, Requests: o.Requests, Errors: o.Errors,
			ByStatus: o.ByStatus, ElapsedS: o.Elapsed.Seconds(), PerSec: o.PerSec,
			P50: ms(o.P50), P95: ms(o.P95), P99: ms(o.P99), Max: ms(o.Max),
			StoppedEarly: o.StoppedEarly, Notes: o.Notes, CPUErr: o.CPUErr,
		}
		if o.CPUMeasured {
			s := o.ServerCPU.Seconds()
			jo.ServerCPUS = &s
			if per, ok := o.cpuPerOK(); ok {
				m := ms(per)
				jo.CPUPerOKMS = &m
			}
		}
		if o.HarnessCPUMeasured {
			s := o.HarnessCPU.Seconds()
			jo.HarnessCPUS = &s
		}
		out.Ops = append(out.Ops, jo)
	}
	for _, ob := range r.Bounds {
		p := ob.Bound.Params
		out.Bounds = append(out.Bounds, jsonBound{
			Op: ob.Op, Phase: ob.Phase, MemoryKiB: p.MemoryKiB, Iterations: p.Iterations,
			Parallelism: p.Parallelism, HashMS: ms(ob.Bound.HashTime), Cores: ob.Bound.Cores,
			BoundPerS: ob.Bound.PerSec, OKPerS: ob.OKPerS, Percent: ob.Percent, Err: ob.Err,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
