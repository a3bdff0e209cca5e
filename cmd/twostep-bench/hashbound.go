package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/twostep-auth/twostep/internal/password"
)

// hashBound is the ceiling that password hashing puts on operations that run one argon2id hash
// per request: with every core hashing, cores / hash time requests per second.
type hashBound struct {
	Params   password.Params
	HashTime time.Duration // median of 5 hashes in this process
	Cores    int
	PerSec   float64 // Cores / HashTime
}

// argon2Params returns the argon2id parameters a server with this environment uses: the
// defaults, overridden by TWOSTEP_ARGON2_MEMORY_KIB, _ITERATIONS and _PARALLELISM.
func argon2Params(lookup func(string) string) (password.Params, error) {
	p := password.Default()
	for _, v := range []struct {
		name string
		bits int
		set  func(uint64)
	}{
		{"TWOSTEP_ARGON2_MEMORY_KIB", 32, func(n uint64) { p.MemoryKiB = uint32(n) }},
		{"TWOSTEP_ARGON2_ITERATIONS", 32, func(n uint64) { p.Iterations = uint32(n) }},
		{"TWOSTEP_ARGON2_PARALLELISM", 8, func(n uint64) { p.Parallelism = uint8(n) }},
	} {
		s := lookup(v.name)
		if s == "" {
			continue
		}
		n, err := strconv.ParseUint(s, 10, v.bits)
		if err != nil {
			return p, fmt.Errorf("%s=%q: %w", v.name, s, err)
		}
		v.set(n)
	}
	return p, p.Validate(true)
}

// measureHash times one argon2id hash with p in this process: the median of runs hashes, after
// one untimed hash (the first ones also pay for faulting in fresh memory, which a running
// server's heap has long done).
func measureHash(ctx context.Context, p password.Params, runs int) (time.Duration, error) {
	if err := p.Validate(true); err != nil {
		return 0, err
	}
	h := password.NewHasher(p, 1)
	if _, err := h.Hash(ctx, "bench-hash-bound-warm-up"); err != nil {
		return 0, err
	}
	times := make([]time.Duration, 0, runs)
	for range runs {
		start := time.Now()
		if _, err := h.Hash(ctx, "bench-hash-bound-password"); err != nil {
			return 0, err
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// newHashBound measures the bound for the parameters a server with this environment uses.
func newHashBound(ctx context.Context, lookup func(string) string) (hashBound, error) {
	p, err := argon2Params(lookup)
	if err != nil {
		return hashBound{}, err
	}
	d, err := measureHash(ctx, p, 5)
	if err != nil {
		return hashBound{}, err
	}
	cores := runtime.NumCPU()
	return hashBound{Params: p, HashTime: d, Cores: cores, PerSec: float64(cores) / d.Seconds()}, nil
}

// hashesPerRequest is how many argon2id runs one timed request of op costs the server.
func hashesPerRequest(op string) int {
	switch op {
	case opRegister, opLogin, opLoginTOTP, opSMSLogin:
		return 1
	}
	return 0
}
