package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestServeSIGTERM runs the real command with -serve, loads it with 16
// concurrent clients, sends SIGTERM mid-load and checks that every request
// the server accepted was answered (and answered 200), that clients saw
// only 200s or refused connections, and that the process exits 0.
func TestServeSIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM is a POSIX signal")
	}
	bin := filepath.Join(t.TempDir(), "infer")
	goBin, err := exec.LookPath("go") // go test puts its GOROOT/bin first on PATH
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ckpt := filepath.Join("..", "..", "testdata", "classifier", "fashion-tiny.safetensors")
	png, err := os.ReadFile(filepath.Join("..", "..", "testdata", "classifier", "8-bag.png"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-model", ckpt, "-serve", "127.0.0.1:0", "-batch", "8")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	var url string
	for url == "" && lines.Scan() {
		if m := regexp.MustCompile(`msg=serving url=(\S+)`).FindStringSubmatch(lines.Text()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatal("the server did not say where it listens")
	}
	var logMu sync.Mutex
	var log strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		for lines.Scan() {
			logMu.Lock()
			log.WriteString(lines.Text() + "\n")
			logMu.Unlock()
		}
	}()
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(url+"/v1/classify", "image/png", bytes.NewReader(png))
				if err != nil {
					// The listener is closed: refused, or a keep-alive
					// connection the server closed before reading a
					// request on it.
					refused.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"label":"Bag"`)) {
					t.Errorf("status %d: %s", resp.StatusCode, b)
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() {
		<-logDone
		waitErr <- cmd.Wait()
	}()
	select {
	case err = <-waitErr:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit within 30 s of SIGTERM")
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("exit: %v, expected status 0\n%s", err, log.String())
	}
	logMu.Lock()
	defer logMu.Unlock()
	m := regexp.MustCompile(`msg=stopped accepted=(\d+) answered=(\d+)`).FindStringSubmatch(log.String())
	if m == nil || m[1] != m[2] {
		t.Fatalf("no stop line with accepted = answered:\n%s", lastLines(log.String(), 5))
	}
	served := strings.Count(log.String(), "path=/v1/classify status=200")
	if others := strings.Count(log.String(), "path=/v1/classify status=") - served; others != 0 {
		t.Errorf("%d requests answered other than 200", others)
	}
	if int(ok.Load()) != served || served == 0 {
		t.Errorf("clients got %d answers, the server answered %d (accepted %s)", ok.Load(), served, m[1])
	}
	inFlight := regexp.MustCompile(`msg="shutting down" in_flight=(\d+)`).FindStringSubmatch(log.String())
	if inFlight == nil {
		t.Fatalf("no shutdown line:\n%s", lastLines(log.String(), 5))
	}
	t.Logf("%d requests answered (%s in flight at SIGTERM), %d refused after it; %s", served, inFlight[1], refused.Load(), m[0])
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
