// Command memcheck trains a model on random images for a number of steps
// and prints the process's resident memory as it goes, to show that memory
// stays flat and to measure the peak of a run (docs/performance.md):
//
//	go run ./docs/memcheck -config cifar-tiny -steps 10 -every 2
//	go run ./docs/memcheck -config mnist-small -steps 1000 -every 100
//
// -config names a model preset; -patch overrides its patch size (the
// Fashion-MNIST recipe's model is mnist-small with -patch 4).
//
// It builds what cmd/train builds (the training graph and the evaluation
// graph over the same weights) and evaluates once at the end.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/vitgo/vit/layers/ops"
	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/train"
	"github.com/vitgo/vit/train/data"
)

// status returns VmRSS and VmHWM (peak) from /proc/self/status, in MiB.
func status() (rss, peak float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1, -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb float64
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%f", &kb)
			rss = kb / 1024
		case strings.HasPrefix(line, "VmHWM:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmHWM:"), "%f", &kb)
			peak = kb / 1024
		}
	}
	return rss, peak
}

func main() {
	name := flag.String("config", "mnist-small", "model preset: "+strings.Join(model.Presets(), ", "))
	patch := flag.Int("patch", 0, "patch size (overrides the preset's)")
	steps := flag.Int("steps", 1000, "training steps")
	every := flag.Int("every", 100, "print memory every this many steps")
	batch := flag.Int("batch", 128, "batch size")
	only := flag.Bool("plan", false, "print the buffer plan and stop")
	flag.Parse()
	fmt.Printf("GC target %d%% (train.TuneGC, as in cmd/train)\n", train.TuneGC())
	mc, err := model.Preset(*name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memcheck:", err)
		os.Exit(2)
	}
	if *patch > 0 {
		mc.PatchSize = *patch
	}
	if *steps < 1 || *every < 1 || *batch < 1 {
		fmt.Fprintln(os.Stderr, "memcheck: -steps, -every and -batch must be positive")
		os.Exit(2)
	}
	n := 4 * *batch
	d := &data.Dataset{N: n, C: mc.Channels, H: mc.ImageSize, W: mc.ImageSize, Labels: make([]int, n)}
	d.Images = make([]float32, n*mc.Channels*mc.ImageSize*mc.ImageSize)
	for i := range d.Images {
		d.Images[i] = float32((i*7919)%256) / 255
	}
	for i := range d.Labels {
		d.Labels[i] = i % mc.NumClasses
	}
	for k := 0; k < mc.NumClasses; k++ {
		d.Classes = append(d.Classes, fmt.Sprint(k))
	}
	cfg := train.Config{Model: mc, Epochs: *steps, Batch: *batch, LR: 1e-3, WeightDecay: 0.05, ClipNorm: 1}
	r, err := train.New(cfg, d, d, data.ComputeNormalization(d))
	if err != nil {
		fmt.Fprintln(os.Stderr, "memcheck:", err)
		os.Exit(1)
	}
	defer r.Close()
	fmt.Printf("%s, batch %d: %v\n", *name, *batch, mc.Cost(*batch))
	for _, g := range []struct {
		name string
		st   ops.ShareStats
	}{{"training", r.Buffers.Train}, {"evaluation", r.Buffers.Eval}} {
		fmt.Printf("%s graph: %d op outputs in %d shared buffers, %.1f MiB instead of %.1f MiB (at most %.1f MiB alive at once)\n",
			g.name, g.st.Outputs, g.st.Buffers, float64(g.st.BytesAfter)/(1<<20), float64(g.st.BytesBefore)/(1<<20), float64(g.st.BytesLive)/(1<<20))
	}
	if *only {
		return
	}
	fmt.Printf("%6s %10s %10s %10s %6s\n", "step", "rss MiB", "peak MiB", "heap MiB", "GCs")
	report := func(step int) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rss, peak := status()
		fmt.Printf("%6d %10.1f %10.1f %10.1f %6d\n", step, rss, peak, float64(ms.HeapAlloc)/(1<<20), ms.NumGC)
	}
	report(0)
	for s := 1; s <= *steps; s++ {
		if _, err := r.TrainStep(); err != nil {
			fmt.Fprintln(os.Stderr, "memcheck:", err)
			os.Exit(1)
		}
		if s%*every == 0 {
			report(s)
		}
	}
	if _, _, err := r.Evaluate(); err != nil {
		fmt.Fprintln(os.Stderr, "memcheck:", err)
		os.Exit(1)
	}
	fmt.Print("after evaluation: ")
	rss, peak := status()
	fmt.Printf("rss %.1f MiB, peak %.1f MiB\n", rss, peak)
}
