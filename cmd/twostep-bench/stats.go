package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Outcomes that are not HTTP statuses. They count as errors.
const (
	statusTransport = -1 // no answer: connection error, timeout
	statusBadBody   = -2 // a 2xx answer without what the contract promises
	statusNoText    = -3 // a code was sent by text, says the server, but the fake provider got none
)

// statusLabel names an outcome in reports: the HTTP status, or what went wrong.
func statusLabel(status int) string {
	switch status {
	case statusTransport:
		return "transport"
	case statusBadBody:
		return "bad-body"
	case statusNoText:
		return "no-text"
	}
	return strconv.Itoa(status)
}

// isOK reports whether an outcome is a success.
func isOK(status int) bool { return status >= 200 && status < 300 }

// recorder holds one client's outcomes. It is used by one goroutine at a time.
type recorder struct {
	latencies []time.Duration // every answered or failed request, in order
	errors    map[int]int     // outcome → count, for failures only
}

func newRecorder() *recorder {
	return &recorder{latencies: make([]time.Duration, 0, 4096), errors: map[int]int{}}
}

// add records one request.
func (r *recorder) add(status int, latency time.Duration) {
	r.latencies = append(r.latencies, latency)
	if !isOK(status) {
		r.errors[status]++
	}
}

// reset forgets everything, keeping the allocated capacity.
func (r *recorder) reset() {
	r.latencies = r.latencies[:0]
	clear(r.errors)
}

// summary is the result of one timed operation.
type summary struct {
	Requests int            // answered and failed requests
	Errors   int            // requests without a 2xx answer
	ByStatus map[string]int // errors by statusLabel
	Elapsed  time.Duration  // wall time of the timed run
	PerSec   float64        // Requests / Elapsed
	P50      time.Duration
	P95      time.Duration
	P99      time.Duration
	Max      time.Duration
}

// summarize merges the recorders of all clients. Every latency is kept and sorted; elapsed is the
// wall time of the timed run.
func summarize(recs []*recorder, elapsed time.Duration) summary {
	n := 0
	for _, r := range recs {
		n += len(r.latencies)
	}
	all := make([]time.Duration, 0, n)
	s := summary{ByStatus: map[string]int{}, Elapsed: elapsed}
	for _, r := range recs {
		all = append(all, r.latencies...)
		for status, c := range r.errors {
			s.ByStatus[statusLabel(status)] += c
			s.Errors += c
		}
	}
	slices.Sort(all)
	s.Requests = len(all)
	if elapsed > 0 {
		s.PerSec = float64(s.Requests) / elapsed.Seconds()
	}
	s.P50 = percentile(all, 50)
	s.P95 = percentile(all, 95)
	s.P99 = percentile(all, 99)
	if len(all) > 0 {
		s.Max = all[len(all)-1]
	}
	return s
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of sorted: the smallest value
// that at least p percent of the values are less than or equal to. It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// Integer arithmetic on p×100 avoids float rounding (0.95×100 is 94.99…).
	rank := (int64(p*100+0.5)*int64(len(sorted)) + 9999) / 10000 // ceil(p/100 × n)
	rank = max(1, min(rank, int64(len(sorted))))
	return sorted[rank-1]
}

// errorDetail formats errors by status, most frequent first: "401×3 transport×1".
func errorDetail(byStatus map[string]int) string {
	keys := slices.SortedFunc(maps.Keys(byStatus), func(a, b string) int {
		return cmp.Or(cmp.Compare(byStatus[b], byStatus[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, byStatus[k])
	}
	return strings.Join(parts, " ")
}
