package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/preprocess"
	"github.com/vitgo/vit/model/vittest"
	"github.com/vitgo/vit/train"
	"github.com/vitgo/vit/train/data"
)

var testCfg = model.Config{ImageSize: 8, PatchSize: 4, Channels: 3, Dim: 16, Depth: 2, Heads: 2, MLPDim: 32, NumClasses: 3}

var testClasses = []string{"red", "green", "blue"}

// writeCheckpoint writes a small model with class names and normalisation
// in its metadata; the head and patch projection are scaled up so that
// images get different answers.
func writeCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	m, err := model.New(G.NewGraph(), testCfg, model.WithSeed(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range [][]float32{m.Head.Weight.Value().Data().([]float32), m.PatchEmbed.Weight.Value().Data().([]float32)} {
		for i := range v {
			v[i] *= 60
		}
	}
	c, _ := json.Marshal(testClasses)
	n, _ := json.Marshal(preprocess.Normalization{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}})
	path := filepath.Join(dir, "m.safetensors")
	if err := m.SaveCheckpoint(path, nil, map[string]string{model.MetaClasses: string(c), model.MetaNormalization: string(n)}); err != nil {
		t.Fatal(err)
	}
	return path
}

// solid is a w×h image of one colour with a darker square in the middle.
func solid(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := c
			if x > w/3 && x < 2*w/3 && y > h/3 && y < 2*h/3 {
				p = color.NRGBA{c.R / 3, c.G / 3, c.B / 3, 255}
			}
			img.SetNRGBA(x, y, p)
		}
	}
	return img
}

func writeImage(t *testing.T, path string, img image.Image) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	var err error
	if strings.HasSuffix(strings.ToLower(path), ".png") {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 95})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runInfer(args ...string) (code int, stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	code, err = run(args, &out, &errb)
	return code, out.String(), errb.String(), err
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("output line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	ckpt := writeCheckpoint(t, dir)
	img := writeImage(t, filepath.Join(dir, "a.png"), solid(8, 8, color.NRGBA{200, 10, 10, 255}))
	for _, tc := range []struct {
		args []string
		part string
	}{
		{[]string{"-nosuch"}, "flag provided but not defined: -nosuch (run with -h"},
		{[]string{"-topk", "x"}, `invalid value "x" for flag -topk`},
		{[]string{}, "nothing to do"},
		{[]string{img}, "no -model"},
		{[]string{"-model", ckpt, "-topk", "0", img}, "-topk 0"},
		{[]string{"-model", ckpt, "-batch", "0", img}, "-batch 0"},
		{[]string{"-model", ckpt, "-workers", "0", img}, "-workers 0"},
		{[]string{"-model", ckpt, "-attention-layers", img}, "-attention-layers needs -attention"},
		{[]string{"-model", ckpt, "-attention", filepath.Join(dir, "att.png")}, "none was given"},
		{[]string{"-curves", filepath.Join(dir, "c.png")}, "-curves needs -metrics"},
		{[]string{"-model", ckpt, "-metrics", "m.jsonl", img}, "-metrics is read by -curves"},
		{[]string{"-model", ckpt, "-format", "idx", img}, "apply to -data"},
		{[]string{"-model", ckpt, "-max-wait", "1ms", img}, "-max-wait applies to -serve"},
		{[]string{"-model", ckpt, "-batching=false", img}, "-batching applies to -serve"},
		{[]string{"-model", ckpt, "-serve", "127.0.0.1:0", img}, "-serve runs a server and does nothing else"},
		{[]string{"-model", ckpt, "-serve", "127.0.0.1:0", "-json"}, "does nothing else"},
		{[]string{"-serve", "127.0.0.1:0"}, "no -model"},
		{[]string{"-model", ckpt, "-serve", ":0", "-queue", "8"}, "-max-images 32 is more than -queue 8"},
		{[]string{"-model", ckpt, "-serve", ":0", "-max-body", "0"}, "-max-body 0"},
		{[]string{"-model", ckpt, "-serve", ":0", "-read-timeout", "0s"}, "must be positive"},
		{[]string{"-model", ckpt, "-serve", ":0", "-log", "xml"}, `-log "xml", expected text or json`},
	} {
		code, _, stderr, err := runInfer(tc.args...)
		if code != 2 {
			t.Errorf("%q: exit code %d, expected 2", tc.args, code)
		}
		if stderr != "" {
			t.Errorf("%q: stderr %q; expected nothing but the one-line error", tc.args, stderr)
		}
		if err == nil {
			t.Errorf("%q: no error, expected one containing %q", tc.args, tc.part)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.part) || strings.Contains(msg, "\n") {
			t.Errorf("%q: error %q, expected one line containing %q", tc.args, msg, tc.part)
		}
	}
	if code, _, _, err := runInfer("-h"); code != 0 || err != nil {
		t.Errorf("-h: code %d, error %v; expected 0 and none", code, err)
	}
}

func TestClassifyFilesJSON(t *testing.T) {
	dir := t.TempDir()
	ckpt := writeCheckpoint(t, dir)
	imgs := filepath.Join(dir, "imgs")
	writeImage(t, filepath.Join(imgs, "b.png"), solid(8, 8, color.NRGBA{10, 200, 10, 255}))
	writeImage(t, filepath.Join(imgs, "A.JPG"), solid(30, 20, color.NRGBA{200, 10, 10, 255})) // wrong size: converted
	writeImage(t, filepath.Join(imgs, "c.jpeg"), solid(5, 9, color.NRGBA{10, 10, 200, 255}))
	writeImage(t, filepath.Join(imgs, ".hidden.png"), solid(8, 8, color.NRGBA{1, 2, 3, 255}))
	if err := os.WriteFile(filepath.Join(imgs, "notes.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	gray := image.NewGray(image.Rect(0, 0, 16, 16)) // gray into an RGB model: converted
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i)
	}
	single := writeImage(t, filepath.Join(dir, "gray.png"), gray)

	// Flags after the arguments are read too.
	code, stdout, stderr, err := runInfer("-model", ckpt, imgs, single, "-json", "-topk", "2")
	if code != 0 || err != nil {
		t.Fatalf("code %d, error %v, stderr %q", code, err, stderr)
	}
	lines := jsonLines(t, stdout)
	want := []string{filepath.Join(imgs, "A.JPG"), filepath.Join(imgs, "b.png"), filepath.Join(imgs, "c.jpeg"), single}
	if len(lines) != len(want) {
		t.Fatalf("%d JSON lines, expected %d:\n%s", len(lines), len(want), stdout)
	}
	for i, l := range lines {
		if l["file"] != want[i] {
			t.Errorf("line %d is for %v, expected %s", i, l["file"], want[i])
		}
		top, ok := l["top"].([]any)
		if !ok || len(top) != 2 {
			t.Fatalf("line %d: top is %v, expected 2 classes", i, l["top"])
		}
		prev := 2.0
		for _, e := range top {
			m := e.(map[string]any)
			cls, label, prob := m["class"].(float64), m["label"].(string), m["prob"].(float64)
			if testClasses[int(cls)] != label || prob > prev || prob <= 0 {
				t.Errorf("line %d: entry %v inconsistent (labels %q, probabilities falling)", i, m, testClasses)
			}
			prev = prob
		}
	}

	// The text output has the same answers.
	code, text, _, err := runInfer("-model", ckpt, "-topk", "1", want[1])
	if code != 0 || err != nil {
		t.Fatalf("text output: code %d, error %v", code, err)
	}
	label := lines[1]["top"].([]any)[0].(map[string]any)["label"].(string)
	if !strings.HasPrefix(text, want[1]+"\n  "+label+" ") {
		t.Errorf("text output %q, expected the file then %q", text, label)
	}
}

// pngWithSize encodes a small PNG and rewrites its header to claim w×h
// pixels (with a valid checksum).
func pngWithSize(t *testing.T, w, h uint32) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	p := b.Bytes()
	// 8-byte signature, then IHDR: length (4), "IHDR" (4), width, height, …
	binary.BigEndian.PutUint32(p[16:], w)
	binary.BigEndian.PutUint32(p[20:], h)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	ckpt := writeCheckpoint(t, dir)
	good := writeImage(t, filepath.Join(dir, "good.png"), solid(8, 8, color.NRGBA{200, 10, 10, 255}))
	var full bytes.Buffer
	if err := png.Encode(&full, solid(20, 20, color.NRGBA{9, 9, 9, 255})); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"garbage.png":   []byte("this is not an image at all"),
		"truncated.png": full.Bytes()[:full.Len()/2],
		"huge.png":      pngWithSize(t, 100000, 100000),
		"empty.jpg":     nil,
	}
	var args []string
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	args = append(args, good, filepath.Join(dir, "missing.png"))
	code, stdout, stderr, err := runInfer(append([]string{"-model", ckpt, "-json"}, args...)...)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "5 of the images") {
		t.Fatalf("code %d, error %v; expected 1 and \"5 of the images\"", code, err)
	}
	for name := range files {
		if !strings.Contains(stderr, name) {
			t.Errorf("stderr does not name %s:\n%s", name, stderr)
		}
	}
	if !strings.Contains(stderr, "expected 1 to") {
		t.Errorf("the huge image is not refused by its size:\n%s", stderr)
	}
	ok := 0
	for _, l := range jsonLines(t, stdout) {
		if l["file"] == good && l["top"] != nil {
			ok++
		}
		if l["file"] != good && l["error"] == nil {
			t.Errorf("JSON line for %v has no error", l["file"])
		}
	}
	if ok != 1 {
		t.Errorf("the good image was classified %d times, expected once:\n%s", ok, stdout)
	}

	// A corrupt checkpoint is an error, not a panic.
	for name, b := range map[string][]byte{"junk.safetensors": []byte("0123456789abcdef"), "empty.safetensors": nil} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, _, err := runInfer("-model", p, good)
		if code != 1 || err == nil || !strings.HasPrefix(err.Error(), "model: ") {
			t.Errorf("%s: code %d, error %v; expected 1 and a model: error", name, code, err)
		}
	}
	// A directory without images.
	empty := filepath.Join(dir, "none")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, stderr, err = runInfer("-model", ckpt, empty)
	if code != 1 || err != nil || !strings.Contains(stderr, "no .png, .jpg or .jpeg files") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("empty directory: code %d, error %v, stderr %q; want status 1 and one line", code, err, stderr)
	}
	// -attention on an unreadable first image.
	code, _, _, err = runInfer("-model", ckpt, "-attention", filepath.Join(dir, "att.png"), filepath.Join(dir, "garbage.png"))
	if code != 1 || err == nil || !strings.Contains(err.Error(), "garbage.png") {
		t.Errorf("-attention on garbage: code %d, error %v", code, err)
	}
}

// writeFolderDataset writes train/ and test/ image folders of the three
// colour classes, n images each.
func writeFolderDataset(t *testing.T, dir string, n int) {
	t.Helper()
	cols := map[string]color.NRGBA{"blue": {20, 30, 220, 255}, "green": {20, 210, 40, 255}, "red": {230, 20, 30, 255}}
	for split, sz := range map[string]int{"train": 8, "test": 12} {
		for name, c := range cols {
			for i := 0; i < n; i++ {
				cc := c
				cc.R += uint8(7 * i)
				writeImage(t, filepath.Join(dir, split, name, string(rune('a'+i))+".png"), solid(sz+i, sz, cc))
			}
		}
	}
}

func TestEvaluate(t *testing.T) {
	dir := t.TempDir()
	ds := filepath.Join(dir, "ds")
	writeFolderDataset(t, ds, 3)
	// A checkpoint written by the trainer itself (class names and
	// normalisation as train.Run.Save writes them).
	trainSet, testSet, _, err := data.Load(ds, data.Options{ImageSize: 8, Channels: 3})
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.Config{Model: testCfg, Epochs: 1, Batch: 3, LR: 1e-3, Seed: 1}
	r, err := train.New(cfg, trainSet, testSet, data.ComputeNormalization(trainSet))
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "run.safetensors")
	err = r.Save(ckpt)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr, err := runInfer("-model", ckpt, "-data", ds, "-json")
	if code != 0 || err != nil {
		t.Fatalf("code %d, error %v, stderr %q", code, err, stderr)
	}
	if strings.Contains(stderr, "note") {
		t.Errorf("notes for a training checkpoint: %q", stderr)
	}
	var ev evaluation
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatalf("-data -json output %q: %v", stdout, err)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(stdout), &raw)
	for _, k := range []string{"accuracy", "per_class", "confusion"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("-data -json has no %q", k)
		}
	}
	if ev.Images != 9 || strings.Join(ev.Classes, ",") != "blue,green,red" {
		t.Fatalf("evaluation of %d images, classes %q; expected 9 and blue,green,red", ev.Images, ev.Classes)
	}
	// The evaluation agrees with classifying the same test files one by one.
	correct, total := 0, 0
	confusion := [3][3]int{}
	for ci, name := range ev.Classes {
		code, out, _, err := runInfer("-model", ckpt, "-json", "-topk", "1", filepath.Join(ds, "test", name))
		if code != 0 || err != nil {
			t.Fatalf("classifying %s: %d, %v", name, code, err)
		}
		for _, l := range jsonLines(t, out) {
			pred := int(l["top"].([]any)[0].(map[string]any)["class"].(float64))
			confusion[ci][pred]++
			total++
			if pred == ci {
				correct++
			}
		}
	}
	for i := range confusion {
		for j := range confusion[i] {
			if ev.Confusion[i][j] != confusion[i][j] {
				t.Fatalf("confusion matrix %v, classifying the files gives %v", ev.Confusion, confusion)
			}
		}
		if pc := ev.PerClass[i]; pc.Images != 3 || pc.Correct != confusion[i][i] || pc.Accuracy == nil || *pc.Accuracy != float64(confusion[i][i])/3 {
			t.Errorf("per-class result %+v, expected %d/3", pc, confusion[i][i])
		}
	}
	if ev.Correct != correct || ev.Accuracy != float64(correct)/float64(total) {
		t.Errorf("accuracy %v (%d correct), classifying the files gives %d/%d", ev.Accuracy, ev.Correct, correct, total)
	}

	// Text output.
	code, stdout, _, err = runInfer("-model", ckpt, "-data", ds)
	if code != 0 || err != nil {
		t.Fatalf("text: code %d, error %v", code, err)
	}
	for _, part := range []string{"accuracy:", "confusion matrix", "blue", "9 test images"} {
		if !strings.Contains(stdout, part) {
			t.Errorf("text evaluation lacks %q:\n%s", part, stdout)
		}
	}
	// A dataset whose class count differs from the model's.
	code, _, _, err = runInfer("-model", writeCheckpointClasses(t, dir, 4), "-data", ds)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "3 classes") {
		t.Errorf("class count mismatch: code %d, error %v", code, err)
	}
}

func writeCheckpointClasses(t *testing.T, dir string, k int) string {
	cfg := testCfg
	cfg.NumClasses = k
	m, err := model.New(G.NewGraph(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "k.safetensors")
	if err := m.SaveWeights(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEvaluateConverts evaluates a 1×4×4 IDX dataset with a 3×8×8 model:
// each image is converted as an image file would be, so the answers equal
// those for the same images written as PNG files.
func TestEvaluateConverts(t *testing.T) {
	dir := t.TempDir()
	ckpt := writeCheckpoint(t, dir)
	ds := filepath.Join(dir, "idx")
	if err := os.MkdirAll(ds, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 4
	pix := make([]byte, n*16)
	for i := range pix {
		pix[i] = byte(i * 37 % 251)
	}
	labels := []byte{0, 1, 2, 1}
	idx := func(magic uint32, dims []uint32, body []byte) []byte {
		var b bytes.Buffer
		_ = binary.Write(&b, binary.BigEndian, magic)
		for _, d := range dims {
			_ = binary.Write(&b, binary.BigEndian, d)
		}
		b.Write(body)
		return b.Bytes()
	}
	for _, pre := range []string{"train", "t10k"} {
		if err := os.WriteFile(filepath.Join(ds, pre+"-images-idx3-ubyte"), idx(0x803, []uint32{n, 4, 4}, pix), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ds, pre+"-labels-idx1-ubyte"), idx(0x801, []uint32{n}, labels), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ds, "classes.txt"), []byte("red\ngreen\nblue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr, err := runInfer("-model", ckpt, "-data", ds, "-json")
	if code != 0 || err != nil {
		t.Fatalf("code %d, error %v, stderr %q", code, err, stderr)
	}
	if !strings.Contains(stderr, "1×4×4") || !strings.Contains(stderr, "converted") {
		t.Errorf("no note about converting 1×4×4 images: %q", stderr)
	}
	var ev evaluation
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i := 0; i < n; i++ {
		g := image.NewGray(image.Rect(0, 0, 4, 4))
		copy(g.Pix, pix[i*16:(i+1)*16])
		files = append(files, writeImage(t, filepath.Join(dir, "png", string(rune('a'+i))+".png"), g))
	}
	code, out, _, err := runInfer(append([]string{"-model", ckpt, "-json", "-topk", "1"}, files...)...)
	if code != 0 || err != nil {
		t.Fatalf("classifying the PNG files: %d, %v", code, err)
	}
	confusion := make([][]int, 3)
	for i := range confusion {
		confusion[i] = make([]int, 3)
	}
	for i, l := range jsonLines(t, out) {
		confusion[labels[i]][int(l["top"].([]any)[0].(map[string]any)["class"].(float64))]++
	}
	for i := range confusion {
		for j := range confusion[i] {
			if confusion[i][j] != ev.Confusion[i][j] {
				t.Fatalf("confusion %v, the PNG files give %v", ev.Confusion, confusion)
			}
		}
	}
}

func TestPictures(t *testing.T) {
	dir := t.TempDir()
	ckpt := writeCheckpoint(t, dir)
	img := writeImage(t, filepath.Join(dir, "a.png"), solid(12, 8, color.NRGBA{200, 10, 10, 255}))
	metrics := filepath.Join(dir, "m.metrics.jsonl")
	if err := os.WriteFile(metrics, []byte(`{"epoch":1,"train_loss":2,"train_acc":0.2,"test_loss":1.8,"test_acc":0.3}
{"epoch":2,"train_loss":1.5,"train_acc":0.4,"test_loss":1.4,"test_acc":0.45}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	pos, att, curves := filepath.Join(dir, "pos.png"), filepath.Join(dir, "att.png"), filepath.Join(dir, "curves.png")
	code, stdout, stderr, err := runInfer("-model", ckpt, "-pos-similarity", pos, "-attention", att, "-attention-layers",
		"-curves", curves, "-metrics", metrics, img)
	if code != 0 || err != nil {
		t.Fatalf("code %d, error %v, stderr %q", code, err, stderr)
	}
	if !strings.HasPrefix(stdout, img) {
		t.Errorf("the image was not classified too: %q", stdout)
	}
	for _, p := range []string{pos, att, curves} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < 300 || cfg.Height < 200 {
			t.Errorf("%s: %v, %dx%d; expected a PNG picture", p, err, cfg.Width, cfg.Height)
		}
	}
	// -curves alone, with the metrics file found beside -model.
	base := filepath.Join(dir, "m.safetensors")
	if base != ckpt {
		t.Fatalf("checkpoint at %s", ckpt)
	}
	if err := os.Remove(curves); err != nil {
		t.Fatal(err)
	}
	code, _, _, err = runInfer("-model", ckpt, "-curves", curves)
	if code != 0 || err != nil {
		t.Fatalf("-curves with the default metrics file: %d, %v", code, err)
	}
	if _, err := os.Stat(curves); err != nil {
		t.Errorf("no curves written: %v", err)
	}
	// A bad metrics file is an error naming it.
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, _, err = runInfer("-curves", curves, "-metrics", bad)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "bad.jsonl") {
		t.Errorf("bad metrics: code %d, error %v", code, err)
	}
}

// TestPublishedWeights: a Hugging Face directory runs with no flag but
// -model and gives PyTorch's top-5 probabilities on real photos within
// 1e-3; timm and torchvision files run without a config; mistakes in the
// preprocessing flags are one line and exit status 2.
func TestPublishedWeights(t *testing.T) {
	var want struct {
		Expect struct {
			HF map[string]struct {
				Top []model.Class `json:"top"`
			} `json:"hf"`
		} `json:"expect"`
	}
	vittest.ReadJSON(t, "../../testdata/published/model_outputs.json", &want)
	photos := "../../testdata/photos/"
	hf := "../../testdata/published/hf-vit" // the directory stands for its model.safetensors
	code, stdout, stderr, err := runInfer("-model", hf, "-json", photos+"chelsea.png", photos+"rocket.jpg", photos+"coffee.jpg")
	if code != 0 || err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, stderr)
	}
	for _, part := range []string{"config.json", "id2label", "preprocessor_config.json"} {
		if !strings.Contains(stderr, part) {
			t.Errorf("the notes do not mention %s:\n%s", part, stderr)
		}
	}
	lines := jsonLines(t, stdout)
	if len(lines) != 3 {
		t.Fatalf("%d JSON lines, expected 3:\n%s", len(lines), stdout)
	}
	for _, l := range lines {
		w := want.Expect.HF[filepath.Base(l["file"].(string))]
		top := l["top"].([]any)
		if len(top) != 5 || len(w.Top) != 5 {
			t.Fatalf("%v: %d classes, expected 5", l["file"], len(top))
		}
		for i, c := range top {
			got := c.(map[string]any)
			if got["label"] != w.Top[i].Label || math.Abs(got["prob"].(float64)-float64(w.Top[i].Prob)) > 1e-3 {
				t.Errorf("%v: class %d is %v %v, PyTorch's %q %v", l["file"], i+1, got["label"], got["prob"], w.Top[i].Label, w.Top[i].Prob)
			}
		}
	}
	for _, f := range []string{"vit_timm.safetensors", "vit_torchvision.safetensors"} {
		code, _, stderr, err := runInfer("-model", "../../testdata/published/"+f, "-topk", "2", photos+"coffee.jpg")
		if code != 0 || err != nil || !strings.Contains(stderr, "evaluation transform") {
			t.Errorf("%s: exit %d, %v\n%s", f, code, err, stderr)
		}
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-preprocess", "pil"}, 2, `-preprocess "pil"`},
		{[]string{"-norm", "half/"}, 2, "-norm"},
		{[]string{"-norm", "0.5/0.5"}, 1, "1 means and 1 stds, expected 3"},
		{[]string{"-interpolation", "nearest"}, 2, `filter "nearest"`},
		{[]string{"-crop-pct", "2"}, 2, "-crop-pct"},
		{[]string{"-preprocess", "torchvision", "-crop-pct", "0.8"}, 1, "crop fraction is for timm"},
		{[]string{"-heads", "3"}, 1, "not divisible by Config.Heads 3"},
		{[]string{"-classes", "../../testdata/parity/VERSIONS.txt"}, 1, "7 class names for a model of 10 classes"},
	} {
		args := append([]string{"-model", hf}, c.args...)
		code, _, _, err := runInfer(append(args, photos+"coffee.jpg")...)
		if code != c.code || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: exit %d, %v; expected %d and %q", c.args, code, err, c.code, c.want)
		}
	}
}

// TestExportFlag: -export writes weights that classify as the checkpoint
// does, in each naming; -names without -export is a mistake.
func TestExportFlag(t *testing.T) {
	ck := "../../testdata/classifier/fashion-tiny.safetensors"
	img := "../../testdata/classifier/1-trouser.png"
	_, want, _, err := runInfer("-model", ck, "-json", img)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct{ names, path string }{
		{"timm", "a.safetensors"}, {"torchvision", "b.safetensors"}, {"hf", "c"},
	} {
		out := filepath.Join(dir, c.path)
		code, _, stderr, err := runInfer("-model", ck, "-export", out, "-names", c.names)
		if code != 0 || err != nil || !strings.Contains(stderr, "exported") {
			t.Fatalf("-names %s: exit %d, %v\n%s", c.names, code, err, stderr)
		}
		_, got, _, err := runInfer("-model", out, "-json", img)
		if err != nil || got != want {
			t.Errorf("-names %s: the export classifies as %q (%v), the checkpoint as %q", c.names, got, err, want)
		}
	}
	if code, _, _, err := runInfer("-model", ck, "-names", "hf", img); code != 2 || err == nil || !strings.Contains(err.Error(), "add -export") {
		t.Errorf("-names without -export: exit %d, %v", code, err)
	}
	if code, _, _, err := runInfer("-model", ck, "-export", filepath.Join(dir, "d"), "-names", "onnx"); code != 2 || err == nil || !strings.Contains(err.Error(), `"onnx"`) {
		t.Errorf("-names onnx: exit %d, %v", code, err)
	}
}

// TestDDPRoundTrip: weights written by docs/pytorch/ddp_train.py after
// two-process DistributedDataParallel training (testdata/ddp) evaluate on
// the same test split, with no flag but -model and -data, to the test
// accuracy the script reported (within 0.05 points) and loss.
func TestDDPRoundTrip(t *testing.T) {
	io, err := model.ReadFile("../../testdata/ddp/io.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"continued", "scratch"} {
		want, err := strconv.ParseFloat(io.Meta[name+"_test_acc"], 64)
		if err != nil {
			t.Fatalf("%s: the fixture's test accuracy %q: %v", name, io.Meta[name+"_test_acc"], err)
		}
		code, stdout, stderr, err := runInfer("-model", "../../testdata/ddp/"+name+".safetensors", "-data", "../../testdata/fashion-sample", "-json")
		if code != 0 || err != nil {
			t.Fatalf("%s: code %d, error %v, stderr %q", name, code, err, stderr)
		}
		var ev evaluation
		if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
			t.Fatalf("%s: -data -json output %q: %v", name, stdout, err)
		}
		t.Logf("%s: Go %.2f%% of %d images, PyTorch %.2f%%", name, 100*ev.Accuracy, ev.Images, 100*want)
		if ev.Images != 1000 || math.Abs(ev.Accuracy-want) > 0.0005 {
			t.Errorf("%s: accuracy %.4f on %d images; the script reported %.4f on the 1000 test images", name, ev.Accuracy, ev.Images, want)
		}
	}
}
