package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ms2d(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100) // 1ms … 100ms
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	thousand := make([]time.Duration, 1000) // 1µs … 1000µs
	for i := range thousand {
		thousand[i] = time.Duration(i+1) * time.Microsecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value p50", ms2d(7), 50, 7 * time.Millisecond},
		{"one value p99", ms2d(7), 99, 7 * time.Millisecond},
		{"1..100 p50", hundred, 50, 50 * time.Millisecond},
		{"1..100 p95", hundred, 95, 95 * time.Millisecond},
		{"1..100 p99", hundred, 99, 99 * time.Millisecond},
		{"1..100 p100", hundred, 100, 100 * time.Millisecond},
		{"1..1000µs p99.9", thousand, 99.9, 999 * time.Microsecond},
		{"1..1000µs p95", thousand, 95, 950 * time.Microsecond},
		// Nearest rank: ceil(0.5 × 4) = 2nd value; ceil(0.95 × 4) = 4th.
		{"four p50", ms2d(10, 20, 30, 40), 50, 20 * time.Millisecond},
		{"four p95", ms2d(10, 20, 30, 40), 95, 40 * time.Millisecond},
		// ceil(0.5 × 5) = 3rd.
		{"five p50", ms2d(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"skewed p99", ms2d(append(make([]int, 98), 500, 900)...), 99, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: percentile(…, %v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	a, b := newRecorder(), newRecorder()
	// 100 requests over two clients, out of order: 1ms … 100ms.
	for i := 100; i >= 1; i-- {
		r := a
		if i%2 == 0 {
			r = b
		}
		status := 200
		switch i {
		case 3, 4:
			status = 401
		case 5:
			status = statusTransport
		case 6:
			status = 429
		}
		r.add(status, time.Duration(i)*time.Millisecond)
	}
	got := summarize([]*recorder{a, b}, 2*time.Second)
	want := summary{
		Requests: 100,
		Errors:   4,
		ByStatus: map[string]int{"401": 2, "transport": 1, "429": 1},
		Elapsed:  2 * time.Second,
		PerSec:   50,
		P50:      50 * time.Millisecond,
		P95:      95 * time.Millisecond,
		P99:      99 * time.Millisecond,
		Max:      100 * time.Millisecond,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summarize mismatch (-want +got):\n%s", diff)
	}
	if got, want := errorDetail(got.ByStatus), "401×2 429×1 transport×1"; got != want {
		t.Errorf("errorDetail = %q, want %q", got, want)
	}

	a.reset()
	if len(a.latencies) != 0 || len(a.errors) != 0 {
		t.Errorf("after reset: %d latencies, %d error kinds, want none", len(a.latencies), len(a.errors))
	}
	if got := summarize([]*recorder{a}, time.Second); got.Requests != 0 || got.P99 != 0 || got.Max != 0 {
		t.Errorf("summarize(empty) = %+v, want zero counts and latencies", got)
	}
}
