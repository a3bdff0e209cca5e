package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the server's Prometheus collectors in a registry of its
// own (no global registry).
type Metrics struct {
	registry   *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	logins     *prometheus.CounterVec
	smsSent    *prometheus.CounterVec
	smsRefused *prometheus.CounterVec
}

// NewMetrics returns collectors registered in a fresh registry, with the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twostep_http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "twostep_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twostep_logins_total",
			Help: "Login attempts by step and outcome.",
		}, []string{"step", "outcome"}),
	}
	m.smsSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "twostep_sms_sent_total",
		Help: "Codes a provider took, by channel (sms or call).",
	}, []string{"channel"})
	m.smsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "twostep_sms_refused_total",
		Help: "Sends refused before or at a provider, by reason; reason=\"daily_limit\" means the deployment's daily SMS ceiling is reached and nothing is sent.",
	}, []string{"reason"})
	m.registry.MustRegister(m.requests, m.latency, m.logins, m.smsSent, m.smsRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) observe(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// login counts one login outcome: step is "password" or "second_factor".
func (m *Metrics) login(step, outcome string) {
	m.logins.WithLabelValues(step, outcome).Inc()
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// SMSSent counts a code a provider took (auth.SMSMetrics).
func (m *Metrics) SMSSent(channel string) { m.smsSent.WithLabelValues(channel).Inc() }

// SMSRefused counts a refused send by reason (auth.SMSMetrics).
func (m *Metrics) SMSRefused(reason string) { m.smsRefused.WithLabelValues(reason).Inc() }
