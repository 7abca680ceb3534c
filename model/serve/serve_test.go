package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/preprocess"
	"github.com/vitgo/vit/model/vittest"
)

// checkpoint is a trained Fashion-MNIST classifier shipped in the repo.
var checkpoint = filepath.Join("..", "..", "testdata", "classifier", "fashion-tiny.safetensors")

// photos are its test images, in class order of their names.
var photos = []string{"1-trouser.png", "7-sneaker.png", "8-bag.png"}

func readPhoto(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "classifier", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syncBuffer is a log destination tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testServer is a Server on a real TCP listener.
type testServer struct {
	*Server
	c   *model.Classifier
	url string
	log *syncBuffer
}

func newClassifier(t testing.TB, workers int) *model.Classifier {
	t.Helper()
	c, err := model.LoadClassifier(checkpoint, model.WithBatchSize(16), model.WithWorkers(workers),
		model.WithExactBatches(), model.WithTopK(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// start serves the fashion checkpoint with o and workers graphs; before,
// if set, is the hook run before each forward pass.
func start(t testing.TB, o Options, workers int, before func(n int)) *testServer {
	t.Helper()
	c := newClassifier(t, workers)
	logs := &syncBuffer{}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	s, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	s.beforeRun = before
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = s.HTTPServer("")
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return &testServer{Server: s, c: c, url: ts.URL, log: logs}
}

// post sends body to /v1/classify and returns the status, the decoded
// JSON answer and the response.
func post(t testing.TB, url, contentType string, body io.Reader) (int, map[string]any, *http.Response) {
	t.Helper()
	resp, err := http.Post(url+"/v1/classify", contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("status %d: the answer %q is not JSON: %v", resp.StatusCode, b, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, expected application/json", ct)
	}
	return resp.StatusCode, v, resp
}

// wantError checks an error answer: its status and a message holding each
// of parts.
func wantError(t testing.TB, code int, v map[string]any, wantCode int, parts ...string) {
	t.Helper()
	msg, _ := v["error"].(string)
	if code != wantCode {
		t.Fatalf("status %d (%q), expected %d", code, msg, wantCode)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not mention %q", msg, p)
		}
	}
}

// wantGood posts a real image and checks that it is classified as the
// classifier classifies it directly.
func wantGood(t testing.TB, ts *testServer) {
	t.Helper()
	b := readPhoto(t, photos[0])
	code, v, _ := post(t, ts.url, "image/png", bytes.NewReader(b))
	if code != http.StatusOK {
		t.Fatalf("a good image after: status %d, %v", code, v)
	}
	img, err := preprocess.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ts.c.Classify([]image.Image{img})
	if err != nil {
		t.Fatal(err)
	}
	wantTop(t, v["top"], want[0].Top[:5])
}

func wantTop(t testing.TB, got any, want []model.Class) {
	t.Helper()
	b, _ := json.Marshal(got)
	var top []model.Class
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatalf("top %s: %v", b, err)
	}
	if len(top) != len(want) {
		t.Fatalf("%d classes, expected %d: %s", len(top), len(want), b)
	}
	for i := range top {
		if top[i] != want[i] {
			t.Fatalf("class %d: %+v, expected %+v", i, top[i], want[i])
		}
	}
}

func TestClassify(t *testing.T) {
	ts := start(t, Options{}, 2, nil)
	wantGood(t, ts)
	b := readPhoto(t, photos[1])
	img, err := preprocess.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ts.c.Classify([]image.Image{img})
	if err != nil {
		t.Fatal(err)
	}
	// Any Content-Type but multipart is sniffed: curl --data-binary's too.
	for _, ct := range []string{"image/png", "", "application/octet-stream", "application/x-www-form-urlencoded"} {
		code, v, _ := post(t, ts.url, ct, bytes.NewReader(b))
		if code != http.StatusOK {
			t.Fatalf("Content-Type %q: status %d, %v", ct, code, v)
		}
		wantTop(t, v["top"], want[0].Top[:5])
	}
	for _, k := range []int{1, 3, 10, 50} {
		resp, err := http.Post(fmt.Sprintf("%s/v1/classify?topk=%d", ts.url, k), "image/png", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var r Result
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wantTop(t, r.Top, want[0].Top[:min(k, 10)])
	}
	for _, q := range []string{"0", "-1", "five"} {
		resp, err := http.Post(ts.url+"/v1/classify?topk="+q, "image/png", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		wantError(t, resp.StatusCode, v, http.StatusBadRequest, "topk=", "at least 1")
	}
}

// multipartBody builds a multipart/form-data body of files.
func multipartBody(t testing.TB, names []string, files [][]byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i, name := range names {
		w, err := mw.CreateFormFile("image", name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(files[i])
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func TestClassifyMultipart(t *testing.T) {
	ts := start(t, Options{MaxImages: 4}, 2, nil)
	var files [][]byte
	var imgs []image.Image
	for _, name := range photos {
		b := readPhoto(t, name)
		img, err := preprocess.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		files, imgs = append(files, b), append(imgs, img)
	}
	want, err := ts.c.Classify(imgs)
	if err != nil {
		t.Fatal(err)
	}
	names := append(append([]string(nil), photos...), "notes.txt")
	body, ct := multipartBody(t, names, append(files, []byte("not an image")))
	resp, err := http.Post(ts.url+"/v1/classify?topk=2", ct, body)
	if err != nil {
		t.Fatal(err)
	}
	var rs Results
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(rs.Results) != 4 {
		t.Fatalf("status %d, %d results, expected 200 and 4", resp.StatusCode, len(rs.Results))
	}
	for i, r := range rs.Results[:3] {
		if r.File != photos[i] || r.Error != "" {
			t.Errorf("result %d: %+v, expected file %s and no error", i, r, photos[i])
		}
		wantTop(t, r.Top, want[i].Top[:2])
	}
	if r := rs.Results[3]; r.File != "notes.txt" || r.Top != nil || !strings.Contains(r.Error, "cannot decode") {
		t.Errorf("the text part: %+v, expected its name and a decoding error", r)
	}
	// Five images when four are allowed; no part at all.
	body, ct = multipartBody(t, []string{"a", "b", "c", "d", "e"}, [][]byte{files[0], files[0], files[0], files[0], files[0]})
	code, v, _ := post(t, ts.url, ct, body)
	wantError(t, code, v, http.StatusRequestEntityTooLarge, "more than 4 images")
	body, ct = multipartBody(t, nil, nil)
	code, v, _ = post(t, ts.url, ct, body)
	wantError(t, code, v, http.StatusBadRequest, "no part")
	code, v, _ = post(t, ts.url, "multipart/form-data; boundary=xyz", strings.NewReader("--nonsense"))
	wantError(t, code, v, http.StatusBadRequest, "multipart")
	wantGood(t, ts)
}

func get(t testing.TB, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestEndpoints(t *testing.T) {
	ts := start(t, Options{QueueSize: 50}, 1, nil)
	if code, body, _ := get(t, ts.url+"/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: %d %s", code, body)
	}
	code, body, _ := get(t, ts.url+"/v1/model")
	var info ModelInfo
	if err := json.Unmarshal([]byte(body), &info); code != 200 || err != nil {
		t.Fatalf("/v1/model: %d %s (%v)", code, body, err)
	}
	if info.Config != ts.c.Config() || strings.Join(info.Classes, ",") != strings.Join(ts.c.Classes(), ",") ||
		info.Limits.QueueSize != 50 || info.Limits.MaxBatch != 16 || !info.Limits.Batching ||
		fmt.Sprint(info.Normalization) != fmt.Sprint(ts.c.Normalization()) {
		t.Errorf("/v1/model: %s", body)
	}
	wantGood(t, ts)
	code, body, _ = get(t, ts.url+"/metrics")
	for _, want := range []string{
		`vit_http_requests_total{code="200",handler="/v1/classify"} 1`,
		`vit_http_requests_total{code="200",handler="/healthz"} 1`,
		`vit_http_request_duration_seconds_bucket{handler="/v1/classify",le=`,
		"vit_batch_size_count 1", "vit_batch_size_sum 1", "vit_queue_depth 0", "vit_queue_capacity 50",
		"vit_forward_duration_seconds_count 1", "vit_images_classified_total 1", "vit_requests_in_flight 0",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (status %d) lacks %q", code, want)
		}
	}
	code, body, _ = get(t, ts.url+"/v2/nothing")
	if code != 404 || !strings.Contains(body, `"error":"no such path \"/v2/nothing\"`) {
		t.Errorf("unknown path: %d %s", code, body)
	}
	code, body, h := get(t, ts.url+"/v1/classify")
	if code != 405 || h.Get("Allow") != "POST" || !strings.Contains(body, "expected POST") {
		t.Errorf("GET /v1/classify: %d %s, Allow %q", code, body, h.Get("Allow"))
	}
	resp, err := http.Post(ts.url+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /healthz: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// One log line per request, with its status.
	lines := strings.Split(strings.TrimSpace(ts.log.String()), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d log lines for 7 requests:\n%s", len(lines), ts.log)
	}
	for _, want := range []string{"path=/healthz status=200", "path=/v1/classify status=200", "images=1", "status=404", "status=405"} {
		if !strings.Contains(ts.log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, ts.log)
		}
	}
}

func TestOptionsChecked(t *testing.T) {
	c := newClassifier(t, 1)
	for _, o := range []Options{{MaxBatch: -1}, {QueueSize: 8, MaxImages: 9}, {MaxBodyBytes: -5}, {MaxWait: -time.Second}, {TopK: -2}} {
		if _, err := New(c, o); err == nil || !strings.HasPrefix(err.Error(), "serve: ") {
			t.Errorf("%+v: error %v", o, err)
		}
	}
}

// allocated returns the bytes the process has allocated so far.
func allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestBadClients: each bad request gets its error quickly, allocates a
// bounded amount of memory, and the next good request succeeds.
func TestBadClients(t *testing.T) {
	ts := start(t, Options{}, 2, nil)
	good := readPhoto(t, photos[0])
	for _, tc := range []struct {
		name     string
		body     func() io.Reader
		code     int
		msg      string
		maxAlloc uint64
	}{
		{"garbage", func() io.Reader { return bytes.NewReader(vittest.RandBytes(1, 5000)) }, 400, "cannot decode it as PNG or JPEG", 1 << 20},
		{"truncated PNG", func() io.Reader { return bytes.NewReader(good[:len(good)/2]) }, 400, "cannot decode it as PNG", 1 << 20},
		{"bomb", func() io.Reader { return bytes.NewReader(vittest.PNGWithSize(t, 100000, 100000)) }, 413, "100000×100000", 1 << 20},
		{"empty", func() io.Reader { return bytes.NewReader(nil) }, 400, "empty body", 1 << 20},
		// Refused from its Content-Length, before reading.
		{"100 MB", func() io.Reader { return bytes.NewReader(make([]byte, 100<<20)) }, 413, "larger than 16777216 bytes (Content-Length 104857600)", 1 << 20},
		// Without a length (chunked): read up to the limit (16 MiB, in a
		// growing buffer), not beyond.
		{"100 MB chunked", func() io.Reader { return io.LimitReader(zeros{}, 100<<20) }, 413, "larger than 16777216 bytes", 80 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body()
			before, start := allocated(), time.Now()
			code, v, _ := post(t, ts.url, "image/png", body)
			took, grew := time.Since(start), allocated()-before
			wantError(t, code, v, tc.code, tc.msg)
			if took > 5*time.Second {
				t.Errorf("answered after %v", took)
			}
			if grew > tc.maxAlloc {
				t.Errorf("%d bytes allocated, expected at most %d", grew, tc.maxAlloc)
			}
			t.Logf("status %d in %v, %d bytes allocated: %v", code, took.Round(time.Millisecond), grew, v["error"])
			wantGood(t, ts)
		})
	}
}

// TestSlowClient: a client that sends its body one byte per second gets
// 408 once the read timeout passes, and one that never finishes its
// headers is disconnected; neither holds up others.
func TestSlowClient(t *testing.T) {
	ts := start(t, Options{ReadTimeout: time.Second}, 1, nil)
	addr := strings.TrimPrefix(ts.url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	begin := time.Now()
	fmt.Fprintf(conn, "POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n")
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("reading the answer: %v", err)
			close(answered)
			return
		}
		answered <- resp
	}()
	var resp *http.Response
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for resp == nil && time.Since(begin) < 10*time.Second {
		_, _ = conn.Write([]byte{0x89}) // may fail once the server hangs up
		wantGood(t, ts)                 // others are served meanwhile
		select {
		case resp = <-answered:
		case <-ticker.C:
		}
	}
	took := time.Since(begin)
	if resp == nil {
		t.Fatalf("no answer after %v", took)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "not read within 1s") {
		t.Errorf("status %d %s, expected 408", resp.StatusCode, b)
	}
	if took > 3*time.Second {
		t.Errorf("answered after %v, the read timeout is 1 s", took)
	}
	t.Logf("one byte a second: status %d after %v", resp.StatusCode, took.Round(time.Millisecond))
	// Headers never finished: the connection is closed after the timeout.
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	begin = time.Now()
	fmt.Fprintf(conn2, "POST /v1/classify HTTP/1.1\r\nHost: x\r\n")
	_ = conn2.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(conn2)
	took = time.Since(begin)
	if err != nil || took > 3*time.Second {
		t.Errorf("unfinished headers: connection ended after %v with %v, expected a close after about 1 s", took, err)
	}
	t.Logf("unfinished headers: connection closed after %v", took.Round(time.Millisecond))
	wantGood(t, ts)
}

// gate blocks forward passes until opened, and records batch sizes.
type gate struct {
	mu      sync.Mutex
	sizes   []int
	open    chan struct{}
	once    sync.Once
	waiting atomic.Int32 // images held by blocked forward passes
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

// release lets every pass go (idempotent).
func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// startGated is start with g's hook; a failing test releases the gate
// before the server closes (which waits for its requests).
func startGated(t testing.TB, o Options, workers int, g *gate) *testServer {
	ts := start(t, o, workers, g.before)
	t.Cleanup(g.release)
	return ts
}

func (g *gate) before(n int) {
	g.mu.Lock()
	g.sizes = append(g.sizes, n)
	g.mu.Unlock()
	g.waiting.Add(int32(n))
	<-g.open
}

func (g *gate) batches() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

// waitFor polls cond for up to 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestQueueFull: 1,000 requests at once when the queue holds 64 and the
// forward passes are held: those that fit are queued and answered once the
// passes resume, the others get 503 with Retry-After at once.
func TestQueueFull(t *testing.T) {
	g := newGate()
	ts := startGated(t, Options{QueueSize: 64, MaxRequests: 2000}, 2, g)
	good := readPhoto(t, photos[0])
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000}}
	defer client.CloseIdleConnections()
	const n = 1000
	var ok, busy, other atomic.Int32
	var wg sync.WaitGroup
	begin := time.Now()
	var lastBusy atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Post(ts.url+"/v1/classify", "image/png", bytes.NewReader(good))
			if err != nil {
				t.Error(err)
				other.Add(1)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				ok.Add(1)
			case resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "1" && strings.Contains(string(b), "busy"):
				busy.Add(1)
				lastBusy.Store(int64(time.Since(begin)))
			default:
				other.Add(1)
				t.Errorf("status %d %s", resp.StatusCode, b)
			}
		}()
	}
	// Every request is either refused or waiting: queued, or held by a
	// blocked forward pass.
	waitFor(t, "the refusals", func() bool {
		return int(busy.Load()+other.Load())+ts.q.depth()+int(g.waiting.Load()) == n
	})
	if d := ts.q.depth(); d != 64 {
		t.Errorf("%d images queued, expected the queue full (64)", d)
	}
	held := int(g.waiting.Load())
	refusedIn := time.Duration(lastBusy.Load())
	g.release()
	wg.Wait()
	t.Logf("%d answered, %d refused (the last after %v), %d held by the two blocked passes", ok.Load(), busy.Load(), refusedIn, held)
	if int(ok.Load()) != 64+held || int(busy.Load()) != n-64-held || other.Load() != 0 {
		t.Errorf("%d answered, %d refused, %d other; expected %d, %d, 0", ok.Load(), busy.Load(), other.Load(), 64+held, n-64-held)
	}
	if held < 1 || held > 32 {
		t.Errorf("%d images held by two forward passes of at most 16", held)
	}
	if refusedIn > 15*time.Second {
		t.Errorf("refusals took %v", refusedIn)
	}
	wantGood(t, ts)
}

// sendDuringPass posts one good image, waits until its forward pass is
// held by g, then posts n more; the returned group is done when all n+1
// are answered (each must be 200).
func sendDuringPass(t *testing.T, ts *testServer, g *gate, n int) *sync.WaitGroup {
	good := readPhoto(t, photos[0])
	wg := &sync.WaitGroup{}
	send := func() {
		defer wg.Done()
		if code, v, _ := post(t, ts.url, "image/png", bytes.NewReader(good)); code != 200 {
			t.Errorf("status %d, %v", code, v)
		}
	}
	wg.Add(1)
	go send()
	waitFor(t, "the first pass", func() bool { return g.waiting.Load() == 1 })
	for i := 0; i < n; i++ {
		wg.Add(1)
		go send()
	}
	return wg
}

// TestBatching: requests that arrive during a forward pass run together
// in the next one (up to MaxBatch); without batching each runs alone; a
// lone request does not wait for MaxWait.
func TestBatching(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want []int
	}{
		{"batching", Options{MaxBatch: 8, MaxWait: time.Hour}, []int{1, 8, 3}},
		{"off", Options{NoBatching: true}, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			ts := startGated(t, tc.o, 1, g)
			wg := sendDuringPass(t, ts, g, 11)
			waitFor(t, "11 queued", func() bool { return ts.q.depth() == 11 })
			g.release()
			wg.Wait()
			if got := g.batches(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("batches of %v, expected %v", got, tc.want)
			}
			// Alone, with a MaxWait of an hour: answered at once.
			begin := time.Now()
			wantGood(t, ts)
			if took := time.Since(begin); took > 5*time.Second {
				t.Errorf("a lone request took %v", took)
			}
		})
	}
}

// TestBatchWaitsForBusyPass: while one pass runs, a second graph gathers
// the images that arrive (instead of starting on the first) until the
// running pass ends or its batch is full.
func TestBatchWaitsForBusyPass(t *testing.T) {
	g := newGate()
	ts := startGated(t, Options{MaxBatch: 16}, 2, g)
	wg := sendDuringPass(t, ts, g, 11)
	waitFor(t, "11 more taken from the queue", func() bool {
		return ts.active.Load() == 12 && ts.decoding.Load() == 0 && ts.q.depth() == 0
	})
	time.Sleep(50 * time.Millisecond) // time to start a pass too early
	if got := g.batches(); fmt.Sprint(got) != "[1]" {
		t.Errorf("passes of %v while the first was held, expected [1]", got)
	}
	g.release()
	wg.Wait()
	if got := g.batches(); fmt.Sprint(got) != "[1 11]" {
		t.Errorf("passes of %v, expected [1 11]", got)
	}
}

// TestPanicInForwardPass: a panic during a pass fails its requests with
// 500, and the server goes on.
func TestPanicInForwardPass(t *testing.T) {
	var once atomic.Bool
	ts := start(t, Options{}, 1, func(int) {
		if once.CompareAndSwap(false, true) {
			panic("boom")
		}
	})
	code, v, _ := post(t, ts.url, "image/png", bytes.NewReader(readPhoto(t, photos[0])))
	wantError(t, code, v, http.StatusInternalServerError, "forward pass failed: boom")
	wantGood(t, ts)
}

// TestGracefulShutdown: when the context ends, requests in flight (queued
// behind a held pass) are answered, new connections are refused, /healthz
// says 503 meanwhile, and ListenAndServe returns nil.
func TestGracefulShutdown(t *testing.T) {
	g := newGate()
	c := newClassifier(t, 1)
	logs := &syncBuffer{}
	s, err := New(c, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.beforeRun = g.before
	t.Cleanup(g.release)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	url := "http://" + <-addrc
	good := readPhoto(t, photos[0])
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, v, _ := post(t, url, "image/png", bytes.NewReader(good)); code == 200 {
				ok.Add(1)
			} else {
				t.Errorf("status %d, %v", code, v)
			}
		}()
	}
	waitFor(t, "5 requests in", func() bool { return s.q.depth()+int(g.waiting.Load()) == 5 })
	cancel()
	waitFor(t, "draining", s.draining.Load)
	if _, err := http.Post(url+"/v1/classify", "image/png", bytes.NewReader(good)); err == nil {
		t.Error("a new request was accepted during shutdown")
	}
	select {
	case err := <-done:
		t.Fatalf("ListenAndServe returned %v with requests in flight", err)
	default:
	}
	g.release()
	wg.Wait()
	if err := <-done; err != nil {
		t.Errorf("ListenAndServe: %v", err)
	}
	if ok.Load() != 5 {
		t.Errorf("%d of 5 requests in flight answered", ok.Load())
	}
	if !strings.Contains(logs.String(), "msg=stopped accepted=5 answered=5") {
		t.Errorf("log:\n%s", logs)
	}
}

// FuzzClassify: whatever the body and Content-Type, the answer is JSON
// with a status of 200, 400 or 413, and nothing panics.
func FuzzClassify(f *testing.F) {
	good := readPhoto(f, photos[0])
	f.Add(good, "image/png")
	f.Add(good[:len(good)/3], "")
	f.Add(vittest.PNGWithSize(f, 100000, 3), "image/png")
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.png\"\r\n\r\n"+string(good)+"\r\n--x--\r\n"), "multipart/form-data; boundary=x")
	f.Add([]byte("--x\r\n\r\n--x--"), "multipart/form-data; boundary=x")
	f.Add([]byte{0xff, 0xd8, 0xff, 0xc0, 0, 0x11, 8, 0xff, 0xff, 0xff, 0xff, 3}, "image/jpeg")
	c := newClassifier(f, 1)
	logs := &syncBuffer{}
	s, err := New(c, Options{MaxBodyBytes: 1 << 16, MaxPixels: 1 << 16, MaxImages: 4,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/classify", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if c := rec.Code; c != 200 && c != 400 && c != 413 {
			t.Errorf("status %d: %s", c, rec.Body)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Errorf("status %d, not JSON: %q", rec.Code, rec.Body)
		}
		if strings.Contains(logs.String(), "panic") {
			t.Fatalf("a panic:\n%s", logs)
		}
	})
}
