package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// How long a started server may take to answer /healthz, and to exit after SIGTERM.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 15 * time.Second
)

// serverEnv returns the environment the harness gives the servers it starts, on top of its own,
// as K=V in order (a later entry wins): the fixed benchmark settings, then phaseEnv, then the
// user's -env. TWOSTEP_ADDR is added per instance.
func serverEnv(cfg config, dir string, phaseEnv []string) []string {
	db := cfg.db
	if db == "" {
		db = "sqlite://" + filepath.Join(dir, "bench.db")
	}
	env := []string{
		"TWOSTEP_DATABASE_URL=" + db,
		"TWOSTEP_LOG_FORMAT=json",
		"TWOSTEP_ACCESS_LOG=false",
		// Every client is 127.0.0.1: a per-IP login ceiling would measure itself, not the server.
		"TWOSTEP_LOGIN_IP_LIMIT=0",
	}
	if cfg.redis != "" {
		env = append(env, "TWOSTEP_REDIS_URL="+cfg.redis)
	}
	env = append(env, phaseEnv...)
	return append(env, cfg.env...)
}

// envLookup returns a getenv over env (K=V, later entries win), falling back to fallback.
func envLookup(env []string, fallback func(string) string) func(string) string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return fallback(k)
	}
}

// instance is one started twostep server.
type instance struct {
	Addr    string `json:"addr"`
	Phase   string `json:"phase"`
	PeakKiB int64  `json:"peak_rss_kib"` // VmHWM, read just before stopping; 0 if unknown
	LogPath string `json:"log"`
	// ExitedEarly, if set, says how the process ended before the harness stopped it.
	ExitedEarly string `json:"exited_early,omitempty"`

	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{} // closed once the process has been waited for
	waitErr error         // valid after exited is closed
}

// url is the instance's base URL.
func (in *instance) url() string { return "http://" + in.Addr }

// startServers runs "path migrate" once, then starts n instances of "path serve", each on its
// own free 127.0.0.1 port with env on top of the harness's environment, and waits until each
// answers GET /healthz with 200. Output goes to log files in dir, named after phase. On error
// the instances already started are stopped.
func startServers(ctx context.Context, logger *slog.Logger, path string, n int, env []string, dir, phase string) ([]*instance, error) {
	addrs, err := freeAddrs(n)
	if err != nil {
		return nil, err
	}
	base := append(os.Environ(), env...)
	if err := migrate(ctx, path, base, filepath.Join(dir, phase+"-migrate.log")); err != nil {
		return nil, err
	}
	var started []*instance
	for i, addr := range addrs {
		in := &instance{Addr: addr, Phase: phase, LogPath: filepath.Join(dir, fmt.Sprintf("%s-server-%d.log", phase, i+1))}
		err := in.start(path, append(base[:len(base):len(base)], "TWOSTEP_ADDR="+addr))
		if err == nil {
			started = append(started, in)
			logger.Info("started server", "phase", phase, "addr", addr, "pid", in.cmd.Process.Pid, "log", in.LogPath)
			err = in.waitHealthy(ctx)
		}
		if err != nil {
			stopServers(logger, started)
			return nil, fmt.Errorf("start %s serve on %s: %w", path, addr, err)
		}
	}
	return started, nil
}

// freeAddrs finds n distinct free ports on 127.0.0.1. All are held until all are found.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// migrate runs "path migrate" to completion with env, output to logPath.
func migrate(ctx context.Context, path string, env []string, logPath string) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, path, "migrate")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s migrate: %w%s", path, err, logTail(logPath))
	}
	return nil
}

// start starts "path serve" with env.
func (in *instance) start(path string, env []string) error {
	f, err := os.Create(in.LogPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	in.cmd, in.logFile, in.exited = cmd, f, make(chan struct{})
	go func() {
		in.waitErr = cmd.Wait()
		close(in.exited)
	}()
	return nil
}

// waitHealthy polls GET /healthz until it answers 200, the process exits, ctx ends or
// startTimeout passes.
func (in *instance) waitHealthy(ctx context.Context) error {
	hc := &http.Client{Timeout: time.Second}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.url()+pathHealth, nil); err == nil {
			if resp, err := hc.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		select {
		case <-in.exited:
			return fmt.Errorf("exited before it was healthy: %v%s", in.waitErr, logTail(in.LogPath))
		case <-ctx.Done():
			return fmt.Errorf("not healthy after %v: %w%s", startTimeout, ctx.Err(), logTail(in.LogPath))
		case <-tick.C:
		}
	}
}

// readPeak records the process's peak resident set size (VmHWM).
func (in *instance) readPeak() {
	select {
	case <-in.exited:
		return
	default:
	}
	if kib, err := peakRSS(in.cmd.Process.Pid); err == nil {
		in.PeakKiB = kib
	}
}

// cpu returns the CPU time the process has used so far, user and system.
func (in *instance) cpu() (time.Duration, error) {
	select {
	case <-in.exited:
		return 0, fmt.Errorf("server %s exited", in.Addr)
	default:
	}
	return cpuTime(in.cmd.Process.Pid)
}

// instancesCPU returns a function that sums the CPU time of every instance.
func instancesCPU(ins []*instance) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		var sum time.Duration
		for _, in := range ins {
			d, err := in.cpu()
			if err != nil {
				return 0, err
			}
			sum += d
		}
		return sum, nil
	}
}

// stop sends SIGTERM and waits for the process to exit, killing it after stopTimeout.
func (in *instance) stop(logger *slog.Logger) {
	defer in.logFile.Close()
	select {
	case <-in.exited:
		in.ExitedEarly = "exit status 0"
		if in.waitErr != nil {
			in.ExitedEarly = in.waitErr.Error()
		}
		logger.Warn("server had exited on its own", "addr", in.Addr, "err", in.waitErr, "log", in.LogPath)
		return
	default:
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-in.exited:
	case <-t.C:
		logger.Warn("server ignored SIGTERM; killing it", "addr", in.Addr, "after", stopTimeout)
		_ = in.cmd.Process.Kill()
		<-in.exited
	}
}

// stopServers stops every instance, concurrently.
func stopServers(logger *slog.Logger, ins []*instance) {
	done := make(chan struct{}, len(ins))
	for _, in := range ins {
		go func() {
			in.stop(logger)
			done <- struct{}{}
		}()
	}
	for range ins {
		<-done
	}
}

// peakRSS reads VmHWM, in KiB, from /proc/PID/status.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmHWM(b)
}

// parseVmHWM finds the "VmHWM:  123456 kB" line of a /proc/PID/status file.
func parseVmHWM(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		num, ok := strings.CutSuffix(strings.TrimSpace(rest), " kB")
		if !ok {
			break
		}
		return strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	}
	return 0, errors.New("no VmHWM line")
}

// cpuTime reads the CPU time, utime + stime, that process pid has used from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b, clockTicks())
}

// clockTicks is the unit of the times in /proc/PID/stat (USER_HZ): getconf CLK_TCK, asked once,
// else 100, which it is on every common Linux architecture.
var clockTicks = sync.OnceValue(func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
})

// parseStatCPU returns utime + stime (fields 14 and 15, in ticks of 1/hz s) of a /proc/PID/stat
// line. The command name, field 2, is in parentheses and may hold spaces and parentheses
// itself, so the fields are counted from the last ')'.
func parseStatCPU(stat []byte, hz int64) (time.Duration, error) {
	s := string(stat)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(s[end+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / time.Duration(hz), nil
}

// logTail returns the last lines of a log file, formatted to end an error message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-10):]
	return fmt.Sprintf("\n--- last lines of %s ---\n%s", path, strings.Join(lines, "\n"))
}
