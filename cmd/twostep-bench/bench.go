package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// opResult is what one operation produced.
type opResult struct {
	Op      string
	Phase   string // the servers it ran on: "main" or "2fa" when the harness started them
	Skipped string // set-up failed: why; nothing was timed
	summary
	// StoppedEarly says why timing ended before -d, if it did.
	StoppedEarly string
	Notes        []string
	// ServerCPU is the CPU time the servers used from the start to the end of timing, when
	// CPUMeasured; CPUErr says why it was not.
	ServerCPU   time.Duration
	CPUMeasured bool
	CPUErr      string
	// HarnessCPU is the CPU time the harness itself used over the same span, when
	// HarnessCPUMeasured: with ServerCPU it tells whether the machine's cores were the limit.
	HarnessCPU         time.Duration
	HarnessCPUMeasured bool
}

// ok is how many timed operations succeeded.
func (o opResult) ok() int { return o.Requests - o.Errors }

// cpuPerOK is the servers' CPU time per successful operation.
func (o opResult) cpuPerOK() (time.Duration, bool) {
	if !o.CPUMeasured || o.ok() <= 0 {
		return 0, false
	}
	return o.ServerCPU / time.Duration(o.ok()), true
}

// measure runs step on every worker until d has passed (a request in flight then is finished and
// counted), ctx ends, or a worker finds its pool empty. It returns the wall time from start until
// the last worker stopped, and whether a pool ran out.
func measure(ctx context.Context, workers []*worker, d time.Duration, step stepFunc) (elapsed time.Duration, exhausted bool) {
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for _, w := range workers {
		w.n = 0
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil && time.Now().Before(deadline) {
				status, lat, more := step(ctx, w)
				if !more {
					stop.Store(true)
					return
				}
				if status == statusTransport && ctx.Err() != nil {
					return // cut off by the interrupt, not failed
				}
				w.rec.add(status, lat)
				w.n++
			}
		})
	}
	wg.Wait()
	return time.Since(start), stop.Load()
}

// runOp sets up op, warms it up and times it.
func (b *bench) runOp(ctx context.Context, phase, op string) opResult {
	res := opResult{Op: op, Phase: phase}
	b.logger.Info("preparing", "op", op)
	p, err := b.prepare(ctx, op)
	if err != nil {
		res.Skipped = fmt.Sprintf("set-up failed: %v", err)
		b.logger.Error("set-up failed", "op", op, "err", err)
		return res
	}
	for _, w := range b.workers {
		w.err = nil
		w.rec.reset()
	}
	if b.cfg.warmup > 0 && !p.pooled {
		b.logger.Info("warming up", "op", op, "for", b.cfg.warmup)
		measure(ctx, b.workers, b.cfg.warmup, p.step)
		for _, w := range b.workers {
			w.rec.reset()
		}
	}
	if p.pooled && b.cfg.warmup > 0 {
		res.Notes = append(res.Notes, "no warm-up: it would use up single-use codes; the set-up requests warmed the connections")
	}
	if p.beforeTiming != nil {
		if err := p.beforeTiming(ctx); err != nil {
			res.Skipped = err.Error()
			return res
		}
	}
	b.logger.Info("timing", "op", op, "for", b.cfg.duration, "clients", len(b.workers))
	var (
		cpu0   time.Duration
		cpuErr error
	)
	if b.serverCPU != nil {
		cpu0, cpuErr = b.serverCPU()
	}
	self0, selfErr := selfCPU()
	elapsed, exhausted := measure(ctx, b.workers, b.cfg.duration, p.step)
	if self1, err := selfCPU(); selfErr == nil && err == nil {
		res.HarnessCPU, res.HarnessCPUMeasured = self1-self0, true
	}
	if b.serverCPU != nil {
		if cpuErr == nil {
			var cpu1 time.Duration
			if cpu1, cpuErr = b.serverCPU(); cpuErr == nil {
				res.ServerCPU, res.CPUMeasured = cpu1-cpu0, true
			}
		}
		if cpuErr != nil {
			res.CPUErr = cpuErr.Error()
		}
	}
	if p.after != nil {
		p.after()
	}
	recs := make([]*recorder, len(b.workers))
	for i, w := range b.workers {
		recs[i] = w.rec
	}
	res.summary = summarize(recs, elapsed)
	switch {
	case exhausted:
		res.StoppedEarly = fmt.Sprintf("stopped after %v: %s", elapsed.Round(time.Millisecond), p.exhausted)
	case ctx.Err() != nil:
		res.StoppedEarly = fmt.Sprintf("stopped after %v: interrupted", elapsed.Round(time.Millisecond))
	}
	res.Notes = append(res.Notes, p.notes...)
	for _, w := range b.workers {
		if w.err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("first transport error: %v", w.err))
			break
		}
	}
	args := []any{"op", op, "requests", res.Requests, "errors", res.Errors, "per_s", fmt.Sprintf("%.1f", res.PerSec), "p99", res.P99}
	if per, ok := res.cpuPerOK(); ok {
		args = append(args, "server_cpu_per_ok", per.Round(time.Microsecond))
	}
	b.logger.Info("done", args...)
	return res
}
