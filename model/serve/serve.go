// Package serve serves a model.Classifier over HTTP.
//
//	POST /v1/classify   one image as the body (PNG or JPEG) → {"top": [{"class", "label", "prob"}, …]}
//	                    or a multipart/form-data body of images → {"results": [{"file", "top"} or {"file", "error"}, …]}
//	                    query: topk=K (default Options.TopK)
//	GET  /v1/model      the config, class names, preprocessing and limits
//	GET  /healthz       200 while serving, 503 once shutting down
//	GET  /metrics       Prometheus text format
//
// Requests are decoded and converted in their own goroutines, then queue
// for a forward pass. Dynamic batching: each of the classifier's graphs
// (c.Workers()) takes, when it comes free, every image waiting, up to
// Options.MaxBatch; while another pass runs it keeps gathering until its
// batch is full or that pass ends, so requests that arrive during a
// forward pass share the next one. A request arriving at an idle server
// runs at once, alone (Options.MaxWait applies only while other requests
// are being decoded). Errors are JSON
// objects {"error": "…"} with a 4xx or 5xx status: 400 for a body that is
// not an image, 413 for a body over Options.MaxBodyBytes or an image over
// Options.MaxPixels (read from its header, before decoding), 408 for a body
// not read within Options.ReadTimeout, 503 with Retry-After when the queue
// or Options.MaxRequests is full.
//
// Server.ListenAndServe runs the HTTP server with the timeouts of Options
// and shuts down gracefully when its context ends: the listener closes,
// requests in flight are answered, then it returns. cmd/infer -serve runs
// it; docs/serving.md has the measurements.
package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/preprocess"
)

// Options configures a Server. A zero field takes its default.
type Options struct {
	// MaxBatch bounds the images of one forward pass (default: the
	// classifier's batch size). Build the classifier with
	// model.WithExactBatches so that smaller batches are not padded.
	MaxBatch int
	// MaxWait is how long a forward pass may wait for more images while
	// requests are already read and being decoded (default 2 ms). With
	// nothing on its way a batch runs at once.
	MaxWait time.Duration
	// NoBatching runs each request's images as their own forward pass,
	// never together with another request's.
	NoBatching bool
	// QueueSize bounds the images waiting for a forward pass (default 64).
	// A request whose images do not fit is refused: 503 with Retry-After.
	QueueSize int
	// MaxImages bounds the images of one multipart request (default 32,
	// at most QueueSize).
	MaxImages int
	// MaxBodyBytes bounds a request's body (default 16 MiB): 413 beyond.
	MaxBodyBytes int64
	// MaxPixels bounds an image's width × height, read from its header
	// before any pixel is decoded (default 4096×4096): 413 beyond.
	MaxPixels int64
	// MaxRequests bounds the classification requests handled at once,
	// from reading to answer (default 256): 503 beyond. With MaxBodyBytes
	// it bounds the memory bodies take.
	MaxRequests int
	// TopK is the number of classes answered when a request does not say
	// (default 5).
	TopK int
	// ReadTimeout bounds reading a request, headers and body (default
	// 10 s): a client that sends too slowly gets 408 and is disconnected.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the
	// end of its answer (default 60 s).
	WriteTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection's wait for its next
	// request (default 60 s).
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the wait for requests in flight once
	// ListenAndServe's context ends (default 30 s).
	ShutdownTimeout time.Duration
	// Logger receives one line per request (default slog.Default()).
	Logger *slog.Logger
	// Registry receives the server's metrics and is what /metrics serves
	// (default: a new registry with the Go runtime and process collectors).
	Registry *prometheus.Registry
}

func (o *Options) defaults(c *model.Classifier) error {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&o.MaxBatch, c.BatchSize())
	set(&o.QueueSize, 64)
	set(&o.MaxImages, min(32, o.QueueSize))
	set(&o.MaxRequests, 256)
	set(&o.TopK, 5)
	setD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setD(&o.MaxWait, 2*time.Millisecond)
	setD(&o.ReadTimeout, 10*time.Second)
	setD(&o.WriteTimeout, 60*time.Second)
	setD(&o.IdleTimeout, 60*time.Second)
	setD(&o.ShutdownTimeout, 30*time.Second)
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 16 << 20
	}
	if o.MaxPixels == 0 {
		o.MaxPixels = 4096 * 4096
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = defaultRegistry()
	}
	switch {
	case o.MaxBatch < 1, o.QueueSize < 1, o.MaxImages < 1, o.MaxRequests < 1, o.TopK < 1:
		return errors.Errorf("serve: max batch %d, queue %d, max images %d, max requests %d, top-k %d: expected each at least 1",
			o.MaxBatch, o.QueueSize, o.MaxImages, o.MaxRequests, o.TopK)
	case o.MaxImages > o.QueueSize:
		return errors.Errorf("serve: at most %d images per request, but the queue holds %d: such a request could never run", o.MaxImages, o.QueueSize)
	case o.MaxBodyBytes < 1, o.MaxPixels < 1:
		return errors.Errorf("serve: max body %d bytes, max pixels %d: expected each at least 1", o.MaxBodyBytes, o.MaxPixels)
	case o.MaxWait < 0, o.ReadTimeout < 0, o.WriteTimeout < 0, o.IdleTimeout < 0, o.ShutdownTimeout < 0:
		return errors.New("serve: negative wait or timeout")
	}
	return nil
}

// Server answers classification requests with a classifier. It is an
// http.Handler; ListenAndServe runs it with its timeouts.
type Server struct {
	c    *model.Classifier
	o    Options
	q    *queue
	m    *metrics
	log  *slog.Logger
	mux  *http.ServeMux
	info []byte // the answer of /v1/model

	decoders chan struct{} // a token per image being decoded: bounds decoding memory
	active   atomic.Int64  // classification requests being handled
	decoding atomic.Int64  // requests read, not yet queued: the batcher expects them
	running  atomic.Int64  // forward passes running
	draining atomic.Bool
	accepted atomic.Int64 // requests of any kind whose handler started
	answered atomic.Int64 // and finished

	workers   sync.WaitGroup
	closeOnce sync.Once
	beforeRun func(n int) // tests: runs before each forward pass of n images
}

// New starts the batcher, one goroutine per graph of c (c.Workers()), and
// returns the server. Close stops it; c stays the caller's to close.
func New(c *model.Classifier, o Options) (*Server, error) {
	if err := o.defaults(c); err != nil {
		return nil, err
	}
	s := &Server{c: c, o: o, q: newQueue(o.QueueSize), log: o.Logger, decoders: make(chan struct{}, runtime.GOMAXPROCS(0))}
	var err error
	if s.m, err = newMetrics(o.Registry, s); err != nil {
		return nil, errors.Wrap(err, "serve: metrics")
	}
	if s.info, err = json.Marshal(s.modelInfo()); err != nil {
		return nil, errors.Wrap(err, "serve: model info")
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/v1/classify", s.classify)
	s.mux.HandleFunc("/v1/model", s.getOnly(func(w http.ResponseWriter, r *http.Request) { writeJSONBytes(w, s.info) }))
	s.mux.HandleFunc("/healthz", s.getOnly(s.health))
	s.mux.Handle("/metrics", s.getOnly(promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}).ServeHTTP))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such path %q: expected /v1/classify, /v1/model, /healthz or /metrics", r.URL.Path))
	})
	chw := c.Config().Channels * c.Config().ImageSize * c.Config().ImageSize
	for i := 0; i < c.Workers(); i++ {
		s.workers.Add(1)
		go s.work(make([]float32, o.MaxBatch*chw))
	}
	return s, nil
}

// Close refuses new images, waits for the queued ones to be classified
// and stops the batcher.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.draining.Store(true)
		s.q.close()
		s.workers.Wait()
	})
}

// work is one batcher goroutine: it gathers batches and classifies them.
func (s *Server) work(buf []float32) {
	defer s.workers.Done()
	cfg := s.c.Config()
	chw := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	expecting := func() bool { return s.decoding.Load() > 0 }
	busy := func() bool { return s.running.Load() > 0 }
	var batch []item
	for {
		batch = s.q.gather(batch, s.o.MaxBatch, s.o.MaxWait, s.o.NoBatching, busy, expecting)
		if batch == nil {
			return
		}
		s.runBatch(batch, buf[:len(batch)*chw], chw)
	}
}

// runBatch classifies one batch and hands each image its prediction. A
// panic fails the batch's requests (500), not the server.
func (s *Server) runBatch(batch []item, x []float32, chw int) {
	var preds []model.Prediction
	var err error
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in a forward pass", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			preds, err = nil, errors.Errorf("the forward pass failed: %v", p)
		}
		for k, it := range batch {
			if err != nil {
				it.j.finish(it.i, model.Prediction{}, err)
			} else {
				it.j.finish(it.i, preds[k], nil)
			}
		}
	}()
	for k, it := range batch {
		copy(x[k*chw:(k+1)*chw], it.j.x[it.i])
	}
	start := time.Now()
	preds, err = s.forward(x, len(batch))
	s.m.forward.Observe(time.Since(start).Seconds())
	s.m.batch.Observe(float64(len(batch)))
	if err == nil {
		s.m.images.Add(float64(len(batch)))
	}
}

// forward runs one pass, counted in running while it runs.
func (s *Server) forward(x []float32, n int) ([]model.Prediction, error) {
	s.running.Add(1)
	defer func() {
		s.running.Add(-1)
		s.q.poke() // a batch waiting for this pass to end may go
	}()
	if s.beforeRun != nil {
		s.beforeRun(n)
	}
	return s.c.ClassifyTensor(x, n)
}

// ServeHTTP answers one request and logs it in one line.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.accepted.Add(1)
	rec := &recorder{ResponseWriter: w}
	handler := handlerName(r.URL.Path)
	defer func() {
		if p := recover(); p != nil {
			rec.err = fmt.Sprintf("panic: %v", p)
			s.log.Error("panic", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.wrote {
				writeError(rec, http.StatusInternalServerError, "internal error")
			}
		}
		d := time.Since(start)
		s.m.answered(handler, rec.code(), d.Seconds())
		attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.code()), slog.Int64("bytes", rec.n), slog.Float64("ms", float64(d.Microseconds())/1000),
			slog.String("remote", r.RemoteAddr)}
		if rec.images > 0 {
			attrs = append(attrs, slog.Int("images", rec.images))
		}
		if rec.err != "" {
			attrs = append(attrs, slog.String("error", rec.err))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
		s.answered.Add(1)
	}()
	s.mux.ServeHTTP(rec, r)
}

// handlerName is the metrics label of a path: a fixed set, whatever
// clients send.
func handlerName(path string) string {
	switch path {
	case "/v1/classify", "/v1/model", "/healthz", "/metrics":
		return path
	}
	return "other"
}

// recorder remembers what a handler answered, for the log and metrics.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	n      int64
	images int
	err    string
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status, r.wrote = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.n += int64(n)
	return n, err
}

func (r *recorder) code() int {
	if !r.wrote {
		return http.StatusOK
	}
	return r.status
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// statusError is an error with the HTTP status it answers.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &statusError{code, fmt.Sprintf(format, args...)}
}

// writeError answers {"error": msg}; 503 says when to retry.
func writeError(w http.ResponseWriter, code int, msg string) {
	if rec, ok := w.(*recorder); ok {
		rec.err = msg
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// statusClientClosed is nginx's status for a request whose client went
// away before its answer; it is logged and counted, the client sees nothing.
const statusClientClosed = 499

// writeFailure answers err with its status (500 if it has none).
func writeFailure(w http.ResponseWriter, err error) {
	var se *statusError
	switch {
	case errors.As(err, &se):
		writeError(w, se.code, se.msg)
	case errors.Is(err, context.Canceled):
		writeError(w, statusClientClosed, "the client closed the request")
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// countImages records the images of a request for its log line.
func countImages(w http.ResponseWriter, n int) {
	if rec, ok := w.(*recorder); ok {
		rec.images = n
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSONBytes(w, buf.Bytes())
}

func writeJSONBytes(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// getOnly refuses methods other than GET and HEAD.
func (s *Server) getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s on %s: expected GET", r.Method, r.URL.Path))
			return
		}
		h(w, r)
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	writeJSON(w, map[string]string{"status": "ok"})
}

// ModelInfo is the answer of GET /v1/model.
type ModelInfo struct {
	Config        model.Config             `json:"config"`
	Classes       []string                 `json:"classes"`
	Normalization preprocess.Normalization `json:"normalization"`
	Transform     preprocess.Transform     `json:"transform"`
	Limits        Limits                   `json:"limits"`
}

// Limits are the server's bounds, as GET /v1/model reports them.
type Limits struct {
	MaxBatch     int    `json:"max_batch"`
	MaxWaitMs    int64  `json:"max_wait_ms"`
	Batching     bool   `json:"batching"`
	QueueSize    int    `json:"queue_size"`
	MaxImages    int    `json:"max_images"`
	MaxBodyBytes int64  `json:"max_body_bytes"`
	MaxPixels    int64  `json:"max_pixels"`
	MaxRequests  int    `json:"max_requests"`
	TopK         int    `json:"top_k"`
	ReadTimeout  string `json:"read_timeout"`
}

func (s *Server) modelInfo() ModelInfo {
	o := s.o
	return ModelInfo{Config: s.c.Config(), Classes: s.c.Classes(), Normalization: s.c.Normalization(), Transform: s.c.Transform(),
		Limits: Limits{MaxBatch: o.MaxBatch, MaxWaitMs: o.MaxWait.Milliseconds(), Batching: !o.NoBatching, QueueSize: o.QueueSize,
			MaxImages: o.MaxImages, MaxBodyBytes: o.MaxBodyBytes, MaxPixels: o.MaxPixels, MaxRequests: o.MaxRequests,
			TopK: o.TopK, ReadTimeout: o.ReadTimeout.String()}}
}

// Result is the answer for one image: its top classes, or why it could not
// be classified. File names the part of a multipart request.
type Result struct {
	File  string        `json:"file,omitempty"`
	Top   []model.Class `json:"top,omitempty"`
	Error string        `json:"error,omitempty"`
}

// Results is the answer to a multipart request, in the order of its parts.
type Results struct {
	Results []Result `json:"results"`
}

// classify answers POST /v1/classify.
func (s *Server) classify(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s on /v1/classify: expected POST with an image as the body", r.Method))
		return
	}
	if n := s.active.Add(1); n > int64(s.o.MaxRequests) {
		s.active.Add(-1)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("busy: %d requests in flight, at most %d", n-1, s.o.MaxRequests))
		return
	}
	defer s.active.Add(-1)
	topK, err := s.topK(r)
	if err != nil {
		writeFailure(w, err)
		return
	}
	if d := s.q.depth(); d >= s.o.QueueSize { // refuse before reading the body
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("busy: the queue holds %d images, at most %d", d, s.o.QueueSize))
		return
	}
	if r.ContentLength > s.o.MaxBodyBytes { // refuse before reading the body
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes (Content-Length %d)", s.o.MaxBodyBytes, r.ContentLength))
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
	// A multipart body holds several images; any other is one image,
	// whatever its Content-Type says (curl --data-binary sends
	// application/x-www-form-urlencoded): the decoder reads its header.
	if mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mediaType == "multipart/form-data" {
		s.classifyMany(w, r, multipart.NewReader(body, params["boundary"]), topK)
		return
	}
	s.classifyOne(w, r, body, topK)
}

// topK reads the topk query parameter.
func (s *Server) topK(r *http.Request) (int, error) {
	q := r.URL.Query().Get("topk")
	if q == "" {
		return s.o.TopK, nil
	}
	k, err := strconv.Atoi(q)
	if err != nil || k < 1 {
		return 0, fail(http.StatusBadRequest, "topk=%q: expected a whole number of at least 1", q)
	}
	return k, nil
}

// readBody reads a whole body or part.
func (s *Server) readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, s.bodyError(err, "reading the body")
	}
	return b, nil
}

// bodyError gives a failure to read the body its status: 413 over the size
// limit, 408 when the client is too slow, 400 otherwise.
func (s *Server) bodyError(err error, what string) error {
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		return fail(http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", tooBig.Limit)
	case errors.As(err, &ne) && ne.Timeout():
		return fail(http.StatusRequestTimeout, "the body was not read within %v", s.o.ReadTimeout)
	}
	return fail(http.StatusBadRequest, "%s: %v", what, err)
}

// prepare decodes one image and converts it to the model's normalised
// input. At most GOMAXPROCS images are decoded at once.
func (s *Server) prepare(ctx context.Context, b []byte) ([]float32, error) {
	if len(b) == 0 {
		return nil, fail(http.StatusBadRequest, "empty body: expected a PNG or JPEG image")
	}
	select {
	case s.decoders <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.decoders }()
	img, err := preprocess.DecodeLimit(bytes.NewReader(b), s.o.MaxPixels)
	if errors.Is(err, preprocess.ErrTooManyPixels) {
		return nil, fail(http.StatusRequestEntityTooLarge, "%v", err)
	}
	if err != nil {
		return nil, fail(http.StatusBadRequest, "%v", err)
	}
	x, err := s.c.Pixels(img)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "%v", err)
	}
	if err := s.c.Normalize(x); err != nil {
		return nil, err
	}
	return x, nil
}

// run queues the images and waits for their predictions.
func (s *Server) run(ctx context.Context, x [][]float32) ([]model.Prediction, error) {
	j := newJob(ctx, x)
	// No longer expected once queued: counted down first, so that a
	// batcher woken by the push does not wait for this very request.
	s.decoding.Add(-1)
	err := s.q.push(j)
	switch {
	case errors.Is(err, errQueueFull):
		return nil, fail(http.StatusServiceUnavailable, "busy: the queue cannot take %d more images (it holds at most %d)", len(x), s.o.QueueSize)
	case errors.Is(err, errClosed):
		return nil, fail(http.StatusServiceUnavailable, "shutting down")
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := j.failure(); err != nil {
		return nil, err
	}
	return j.preds, nil
}

func top(p model.Prediction, k int) []model.Class { return p.Top[:min(k, len(p.Top))] }

func (s *Server) classifyOne(w http.ResponseWriter, r *http.Request, body io.Reader, topK int) {
	b, err := s.readBody(body)
	if err != nil {
		writeFailure(w, err)
		return
	}
	s.decoding.Add(1)
	x, err := s.prepare(r.Context(), b)
	if err != nil {
		s.decoding.Add(-1)
		writeFailure(w, err)
		return
	}
	countImages(w, 1)
	preds, err := s.run(r.Context(), [][]float32{x})
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, Result{Top: top(preds[0], topK)})
}

func (s *Server) classifyMany(w http.ResponseWriter, r *http.Request, mr *multipart.Reader, topK int) {
	var names []string
	var bodies [][]byte
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeFailure(w, s.bodyError(err, "multipart body"))
			return
		}
		if len(bodies) == s.o.MaxImages {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d images in one request", s.o.MaxImages))
			return
		}
		name := part.FileName()
		if name == "" {
			name = part.FormName()
		}
		b, err := s.readBody(part)
		if err != nil {
			writeFailure(w, err)
			return
		}
		names, bodies = append(names, name), append(bodies, b)
	}
	if len(bodies) == 0 {
		writeError(w, http.StatusBadRequest, "the multipart body holds no part: expected one image per part")
		return
	}
	s.decoding.Add(1)
	res := make([]Result, len(bodies))
	var xs [][]float32
	var which []int
	for i, b := range bodies {
		res[i].File = names[i]
		x, err := s.prepare(r.Context(), b)
		if err != nil {
			res[i].Error = err.Error()
			continue
		}
		xs, which = append(xs, x), append(which, i)
	}
	bodies = nil
	countImages(w, len(xs))
	if len(xs) == 0 {
		s.decoding.Add(-1)
		writeJSON(w, Results{res})
		return
	}
	preds, err := s.run(r.Context(), xs)
	if err != nil {
		writeFailure(w, err)
		return
	}
	for k, i := range which {
		res[i].Top = top(preds[k], topK)
	}
	writeJSON(w, Results{res})
}

// HTTPServer returns an http.Server for s on addr, with the timeouts of
// Options.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: s.o.ReadTimeout,
		ReadTimeout:       s.o.ReadTimeout,
		WriteTimeout:      s.o.WriteTimeout,
		IdleTimeout:       s.o.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// ListenAndServe serves on addr until ctx ends, then shuts down
// gracefully: the listener closes (new connections are refused), /healthz
// answers 503, every request already accepted is answered (for at most
// ShutdownTimeout), the batcher stops (Close), and it returns nil. ready,
// if not nil, is called with the address listened on (useful with port 0).
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errors.Wrap(err, "serve")
	}
	hs := s.HTTPServer(addr)
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return errors.Wrap(err, "serve")
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("shutting down", "in_flight", s.accepted.Load()-s.answered.Load(), "queued_images", s.q.depth())
	sctx, cancel := context.WithTimeout(context.Background(), s.o.ShutdownTimeout)
	defer cancel()
	err = hs.Shutdown(sctx)
	<-errc // http.ErrServerClosed
	s.Close()
	s.log.Info("stopped", "accepted", s.accepted.Load(), "answered", s.answered.Load())
	return errors.Wrap(err, "serve: shutdown")
}
