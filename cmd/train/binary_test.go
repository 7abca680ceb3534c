package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vitgo/vit/model"
)

// These tests run the real commands: cmd/train and cmd/infer are built
// once into a temporary directory and run as separate processes.

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// goTool is the go command: go test puts its GOROOT/bin first on PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// binaries builds both commands and returns the paths of train and infer.
func binaries(t *testing.T) (trainBin, inferBin string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "vit-bin-")
		if buildErr != nil {
			return
		}
		for _, cmd := range []string{"train", "infer"} {
			out, err := exec.Command(goTool(), "build", "-o", filepath.Join(binDir, cmd), "../"+cmd).CombinedOutput()
			if err != nil {
				buildErr = err
				binDir = string(out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("building the commands: %v\n%s", buildErr, binDir)
	}
	return filepath.Join(binDir, "train"), filepath.Join(binDir, "infer")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" && buildErr == nil {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// runBin runs a command to completion and returns its exit status, stdout
// and stderr.
func runBin(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var so, se bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	return code, so.String(), se.String()
}

// trainTiny runs the tiny training run of tinyRun to out, failing the
// test (what names the run) unless it succeeds.
func trainTiny(t *testing.T, bin, out, epochs, what string) {
	t.Helper()
	if code, so, se := runBin(t, bin, tinyRun(out, epochs)...); code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", what, code, so, se)
	}
}

// tinyRun are the flags of a fast training run on part of the shipped sample.
func tinyRun(out string, epochs string) []string {
	return []string{"-data", "../../testdata/fashion-sample", "-out", out, "-epochs", epochs,
		"-dim", "16", "-depth", "1", "-heads", "2", "-mlp-dim", "16", "-batch", "100", "-eval-batch", "500",
		"-patch", "4", "-stem", "conv",
		// Every source of state and randomness a resume must reproduce.
		"-val", "500", "-ema", "0.99", "-augment", "randaugment", "-erase", "0.25", "-mixup", "0.8", "-cutmix", "1"}
}

// TestBinaryMistakes: every command-line mistake is one line on stderr and
// a non-zero exit status, never a panic or a stack trace.
func TestBinaryMistakes(t *testing.T) {
	trainBin, inferBin := binaries(t)
	dir := t.TempDir()
	ck := filepath.Join(dir, "vit.safetensors")
	trainTiny(t, trainBin, ck, "1", "training the checkpoint for the test")
	corrupt := filepath.Join(dir, "corrupt.safetensors")
	b, _ := os.ReadFile(ck)
	b[len(b)-3] ^= 0x40
	os.WriteFile(corrupt, b, 0o644)
	notImage := filepath.Join(dir, "notimage.png")
	os.WriteFile(notImage, []byte("this is text"), 0o644)
	readOnlyParent := filepath.Join(dir, "file")
	os.WriteFile(readOnlyParent, nil, 0o644)

	const sample = "../../testdata/fashion-sample"
	cases := []struct {
		bin  string
		args []string
		want string
	}{
		{trainBin, []string{"-nosuch"}, "flag provided but not defined: -nosuch"},
		{trainBin, []string{"-epochs", "two"}, `invalid value "two" for flag -epochs`},
		{trainBin, []string{"-data", sample, "-lr", "-1"}, "learning rate must be positive"},
		{trainBin, []string{"-data", filepath.Join(dir, "missing")}, "missing"},
		{trainBin, []string{"-data", sample, "-resume", filepath.Join(dir, "missing.safetensors")}, "missing.safetensors"},
		{trainBin, []string{"-data", sample, "-resume", ck, "-out", ck, "-dim", "32"}, "drop -dim"},
		{trainBin, []string{"-data", sample, "-resume", corrupt, "-out", corrupt}, "checksum mismatch"},
		{trainBin, []string{"-data", sample, "-out", filepath.Join(readOnlyParent, "vit.safetensors")}, "checkpoint directory"},
		{trainBin, []string{"-data", sample, "-classes", filepath.Join(dir, "none.txt")}, "none.txt"},
		{inferBin, []string{"-nosuch"}, "flag provided but not defined: -nosuch"},
		{inferBin, []string{"-topk", "many"}, `invalid value "many" for flag -topk`},
		{inferBin, []string{"-model", filepath.Join(dir, "missing.safetensors"), notImage}, "missing.safetensors"},
		{inferBin, []string{"-model", corrupt, notImage}, "checksum mismatch"},
		{inferBin, []string{"-model", ck, filepath.Join(dir, "missing.png")}, "missing.png"},
		{inferBin, []string{"-model", ck, notImage}, "notimage.png"},
		{inferBin, []string{"-model", ck, "-data", filepath.Join(dir, "missing")}, "missing"},
	}
	for _, c := range cases {
		code, so, se := runBin(t, c.bin, c.args...)
		name := filepath.Base(c.bin)
		lines := strings.Split(strings.TrimRight(se, "\n"), "\n")
		switch {
		case code == 0:
			t.Errorf("%s %q: exit status 0, want an error", name, c.args)
		case len(lines) != 1 || !strings.Contains(se, c.want):
			t.Errorf("%s %q: stderr %q, want one line containing %q", name, c.args, se, c.want)
		case strings.Contains(se+so, "panic") || strings.Contains(se+so, "goroutine "):
			t.Errorf("%s %q: a panic or stack trace:\n%s%s", name, c.args, so, se)
		}
	}
}

// tensorsOf reads a checkpoint's tensors (weights and optimizer state).
func tensorsOf(t *testing.T, path string) map[string]model.Tensor {
	t.Helper()
	f, err := model.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f.Tensors
}

// TestSIGKILLResume: a run killed with SIGKILL at a random step and resumed
// from its last checkpoint ends with the same weights and optimizer state,
// bit for bit, as a run that was never interrupted.
func TestSIGKILLResume(t *testing.T) {
	trainBin, _ := binaries(t)
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.safetensors")
	trainTiny(t, trainBin, whole, "2", "uninterrupted run")

	seed := time.Now().UnixNano()
	kill := 1 + rand.New(rand.NewSource(seed)).Intn(6) // progress lines come every quarter epoch: 8 in all
	t.Logf("killing after progress line %d (seed %d)", kill, seed)
	cut := filepath.Join(dir, "cut.safetensors")
	cmd, killedAt := signalAfter(t, trainBin, append(tinyRun(cut, "2"), "-save-every", "1ns"), nil, kill, syscall.SIGKILL)
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the run was not killed (%v)", err)
	}
	t.Logf("killed after %q", killedAt)
	code, so, se := runBin(t, trainBin, "-data", "../../testdata/fashion-sample", "-out", cut, "-resume", cut)
	if code != 0 || !strings.Contains(so, "resumed") {
		t.Fatalf("resume: exit %d\n%s%s", code, so, se)
	}
	for _, p := range []string{whole, cut} {
		m, err := os.ReadFile(strings.TrimSuffix(p, ".safetensors") + ".metrics.jsonl")
		if err != nil || strings.Count(string(m), "\n") != 2 {
			t.Errorf("%s: metrics file %q (%v), want one line per epoch", p, m, err)
		}
	}
	a, b := tensorsOf(t, whole), tensorsOf(t, cut)
	if len(a) != len(b) {
		t.Fatalf("%d tensors after the uninterrupted run, %d after the resumed one", len(a), len(b))
	}
	for name, x := range a {
		if !reflect.DeepEqual(x, b[name]) {
			t.Fatalf("tensor %s differs between the uninterrupted and the killed-and-resumed run", name)
		}
	}
}

// signalAfter starts bin, sends sig once it has printed n progress lines
// ("step …"), and returns the command (still to be waited for; its stdout is
// drained) and the line after which the signal went.
func signalAfter(t *testing.T, bin string, args []string, stderr *bytes.Buffer, n int, sig os.Signal) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if stderr != nil {
		cmd.Stderr = stderr
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	seen, at := 0, ""
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "step ") {
			if seen++; seen == n {
				at = sc.Text()
				cmd.Process.Signal(sig)
				break
			}
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return cmd, at
}

// TestSIGINTSaves: Ctrl-C saves a checkpoint, says how to resume, and exits
// with status 130.
func TestSIGINTSaves(t *testing.T) {
	trainBin, _ := binaries(t)
	out := filepath.Join(t.TempDir(), "vit.safetensors")
	var se bytes.Buffer
	cmd, _ := signalAfter(t, trainBin, tinyRun(out, "50"), &se, 1, os.Interrupt)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit status %d after SIGINT, want 130; stderr:\n%s", code, se.String())
	}
	if !strings.Contains(se.String(), "resume with: go run ./cmd/train") || !strings.Contains(se.String(), "-resume "+out) {
		t.Errorf("stderr does not say how to resume:\n%s", se.String())
	}
	if _, _, err := model.Open(nil, out); err != nil && !strings.Contains(err.Error(), "graph") {
		t.Errorf("the saved checkpoint does not open: %v", err)
	}
	if st := tensorsOf(t, out); len(st) == 0 {
		t.Error("the saved checkpoint holds no tensors")
	}
}

// TestDiskFull: a checkpoint write that fails because the disk is full (here
// the file-size limit, RLIMIT_FSIZE, set below the checkpoint's size: writes
// past it fail with EFBIG as on a full disk) is reported in one line, leaves
// no temporary file, and leaves the previous checkpoint intact.
func TestDiskFull(t *testing.T) {
	trainBin, _ := binaries(t)
	dir := t.TempDir()
	ck := filepath.Join(dir, "vit.safetensors")
	trainTiny(t, trainBin, ck, "1", "first run")
	before, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	limit := len(before) / 2 / 1024 // in 1024-byte blocks, as ulimit -f counts
	script := fmt.Sprintf("ulimit -f %d && exec %q \"$@\"", limit, trainBin)
	args := append([]string{"-c", script, "train"}, "-data", "../../testdata/fashion-sample", "-out", ck, "-resume", ck, "-epochs", "2", "-save-every", "1ns")
	code, so, se := runBin(t, "/bin/sh", args...)
	if code == 0 {
		t.Fatalf("the run with a %d KiB file-size limit succeeded; want a write error\n%s", limit, so)
	}
	lines := strings.Split(strings.TrimRight(se, "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(se, "vit.safetensors") || !strings.Contains(se, "file too large") {
		t.Errorf("stderr %q: want one line naming the checkpoint and the write error", se)
	}
	after, err := os.ReadFile(ck)
	if err != nil || !bytes.Equal(after, before) {
		t.Fatalf("the previous checkpoint changed (%v)", err)
	}
	if _, err := model.ReadFile(ck); err != nil {
		t.Fatalf("the previous checkpoint no longer reads: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
