package serve

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series, all named vit_*.
type metrics struct {
	requests *prometheus.CounterVec   // by handler and status code
	latency  *prometheus.HistogramVec // by handler, seconds from the request's start to its answer
	batch    prometheus.Histogram     // images per forward pass
	forward  prometheus.Histogram     // seconds per forward pass
	images   prometheus.Counter       // images classified
}

func newMetrics(reg *prometheus.Registry, s *Server) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vit_http_requests_total",
			Help: "HTTP requests answered, by handler and status code.",
		}, []string{"handler", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vit_http_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer, by handler.",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16), // 0.25 ms … 8 s
		}, []string{"handler"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vit_batch_size",
			Help:    "Images per forward pass.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9), // 1 … 256
		}),
		forward: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vit_forward_duration_seconds",
			Help:    "Time of one forward pass (one batch).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 0.1 ms … 13 s
		}),
		images: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vit_images_classified_total",
			Help: "Images classified.",
		}),
	}
	cs := []prometheus.Collector{m.requests, m.latency, m.batch, m.forward, m.images,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vit_queue_depth",
			Help: "Images waiting for a forward pass.",
		}, func() float64 { return float64(s.q.depth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vit_queue_capacity",
			Help: "Images the queue holds at most; requests beyond it get 503.",
		}, func() float64 { return float64(s.o.QueueSize) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vit_requests_in_flight",
			Help: "Classification requests being read, decoded, queued or classified.",
		}, func() float64 { return float64(s.active.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// defaultRegistry is a new registry with the Go runtime's and the
// process's collectors.
func defaultRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func (m *metrics) answered(handler string, code int, seconds float64) {
	m.requests.WithLabelValues(handler, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(handler).Observe(seconds)
}
