package insight

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"

	"github.com/vitgo/vit/model/vittest"
)

// wantErr fails unless err is non-nil, starts with "insight: " and contains every
// one of parts.
var wantErr = vittest.WantErrFrom("insight: ")

// attention builds one block's probabilities (heads×T×T) from a function
// giving row i's weight on token j for head h (rows normalised here).
func attention(heads, T int, w func(h, i, j int) float64) []float32 {
	a := make([]float32, heads*T*T)
	for h := 0; h < heads; h++ {
		for i := 0; i < T; i++ {
			var s float64
			for j := 0; j < T; j++ {
				s += w(h, i, j)
			}
			for j := 0; j < T; j++ {
				a[(h*T+i)*T+j] = float32(w(h, i, j) / s)
			}
		}
	}
	return a
}

func TestRolloutAllOnOnePatch(t *testing.T) {
	const heads, grid, depth = 2, 3, 3
	T := grid*grid + 1
	const target = 5 // token 5 = patch 4 = row 1, column 1 (the centre)
	var att [][]float32
	for l := 0; l < depth; l++ {
		att = append(att, attention(heads, T, func(h, i, j int) float64 {
			if h == 1 && l == 1 { // one head of one block looks everywhere
				return 1
			}
			if j == target {
				return 1
			}
			return 0
		}))
	}
	r, err := Rollout(att, heads, T)
	if err != nil {
		t.Fatal(err)
	}
	row, err := ClassRow(r, T)
	if err != nil {
		t.Fatal(err)
	}
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	if best != target-1 {
		t.Fatalf("rollout peaks on patch %d (%v), expected patch %d", best, row, target-1)
	}
	if row[best] < 0.8 {
		t.Errorf("patch %d has %.3f of the mass, expected most of it", best, row[best])
	}
	// Without the uniform head the mass left on the class token is exactly
	// 0.5^depth, and the rest is on the target.
	for l := range att {
		att[l] = attention(heads, T, func(h, i, j int) float64 { return b2f(j == target) })
	}
	r, err = Rollout(att, heads, T)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r[0]-0.125) > 1e-12 || math.Abs(r[target]-0.875) > 1e-12 {
		t.Errorf("class row %v, expected 0.125 on the class token and 0.875 on token %d", r[:T], target)
	}
	row, _ = ClassRow(r, T)
	if math.Abs(row[target-1]-1) > 1e-12 {
		t.Errorf("class row over the patches %v, expected all of it on patch %d", row, target-1)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestRolloutOrder checks R = Ã₂·Ã₁ (later blocks on the left) against a
// product worked out by hand, for two tokens.
func TestRolloutOrder(t *testing.T) {
	a1 := []float32{0.2, 0.8, 0.6, 0.4} // one head
	a2 := []float32{1, 0, 0.5, 0.5}
	// Ã₁ = ½A₁ + ½I = [[.6 .4] [.3 .7]], Ã₂ = [[1 0] [.25 .75]]
	// Ã₂·Ã₁ = [[.6 .4] [.375 .625]]; Ã₁·Ã₂ would be [[.7 .3] [.475 .525]].
	r, err := Rollout([][]float32{a1, a2}, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0.6, 0.4, 0.375, 0.625}
	for i := range want {
		if math.Abs(r[i]-want[i]) > 1e-7 {
			t.Fatalf("rollout %v, expected %v", r, want)
		}
	}
	// Heads are averaged before the residual is added.
	two := append(append([]float32(nil), a1...), a2...) // one block, two heads
	r, err = Rollout([][]float32{two}, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	want = []float64{0.8, 0.2, 0.275, 0.725} // ½·mean + ½I, mean = [[.6 .4] [.55 .45]]
	for i := range want {
		if math.Abs(r[i]-want[i]) > 1e-7 {
			t.Fatalf("two-head rollout %v, expected %v", r, want)
		}
	}
	ca, err := ClassAttention(two, 2, 2)
	if err != nil || len(ca) != 1 || math.Abs(ca[0]-0.4) > 1e-7 {
		t.Errorf("class attention %v, %v; expected [0.4]", ca, err)
	}
}

func TestRolloutErrors(t *testing.T) {
	ok := attention(1, 2, func(h, i, j int) float64 { return 1 })
	_, err := Rollout(nil, 1, 2)
	wantErr(t, err, "no attention maps")
	_, err = Rollout([][]float32{ok, ok[:3]}, 1, 2)
	wantErr(t, err, "block 1", "3 values", "expected 4")
	bad := append([]float32(nil), ok...)
	bad[2] = float32(math.NaN())
	_, err = Rollout([][]float32{bad}, 1, 2)
	wantErr(t, err, "block 0", "value 2", "NaN")
	bad[2] = -0.5
	_, err = Rollout([][]float32{bad}, 1, 2)
	wantErr(t, err, "-0.5")
	_, err = Rollout([][]float32{ok}, 0, 2)
	wantErr(t, err, "0 heads")
	_, err = ClassRow([]float64{1, 2, 3}, 2)
	wantErr(t, err, "3 values")
	_, err = HeadMean(ok, 2, 2)
	wantErr(t, err, "expected 8")
}

// smoothPos is a positional embedding that is a smooth function of (row,
// column): Fourier features whose cosine similarity falls with distance.
func smoothPos(grid, dim int) []float32 {
	pos := make([]float32, (grid*grid+1)*dim)
	for k := range pos[:dim] {
		pos[k] = 5 // the class token: must not take part
	}
	for r := 0; r < grid; r++ {
		for c := 0; c < grid; c++ {
			v := pos[(1+r*grid+c)*dim : (2+r*grid+c)*dim]
			for f := 0; f < dim/4; f++ {
				w := 0.5 / float64(f+1)
				v[4*f] = float32(math.Cos(w * float64(r)))
				v[4*f+1] = float32(math.Sin(w * float64(r)))
				v[4*f+2] = float32(math.Cos(w * float64(c)))
				v[4*f+3] = float32(math.Sin(w * float64(c)))
			}
		}
	}
	return pos
}

func TestPosSimilaritySmooth(t *testing.T) {
	const grid, dim = 5, 16
	sim, g, err := PosSimilarity(smoothPos(grid, dim), grid*grid+1, dim)
	if err != nil {
		t.Fatal(err)
	}
	if g != grid {
		t.Fatalf("grid %d, expected %d", g, grid)
	}
	n := grid * grid
	for i := 0; i < n; i++ {
		if math.Abs(sim[i*n+i]-1) > 1e-6 {
			t.Fatalf("position %d: self-similarity %v, expected 1", i, sim[i*n+i])
		}
		best := -1
		for j := 0; j < n; j++ {
			if sim[i*n+j] != sim[j*n+i] {
				t.Fatalf("similarity not symmetric at (%d, %d)", i, j)
			}
			if j != i && (best < 0 || sim[i*n+j] > sim[i*n+best]) {
				best = j
			}
		}
		ri, ci, rb, cb := i/grid, i%grid, best/grid, best%grid
		if d := abs(ri-rb) + abs(ci-cb); d != 1 {
			t.Errorf("position (%d, %d): most similar other position is (%d, %d), %d steps away, expected a neighbour", ri, ci, rb, cb, d)
		}
		// And similarity falls along a row as the distance grows.
		for c := ci + 1; c+1 < grid; c++ {
			if sim[i*n+ri*grid+c+1] >= sim[i*n+ri*grid+c] {
				t.Errorf("position (%d, %d): similarity does not fall from column %d to %d", ri, ci, c, c+1)
			}
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestPosSimilarityErrors(t *testing.T) {
	_, _, err := PosSimilarity(make([]float32, 6*2), 6, 2)
	wantErr(t, err, "5 patch positions", "square")
	_, _, err = PosSimilarity(make([]float32, 9), 5, 2)
	wantErr(t, err, "9 values", "expected 10")
	pos := smoothPos(2, 4)
	pos[7] = float32(math.Inf(1))
	_, _, err = PosSimilarity(pos, 5, 4)
	wantErr(t, err, "patch 0", "+Inf")
	_, _, err = PosSimilarity(nil, 1, 4)
	wantErr(t, err, "at least 2 tokens")
	// A zero vector has similarity 0, not NaN.
	sim, _, err := PosSimilarity(make([]float32, 5*4), 5, 4)
	if err != nil || sim[0] != 0 {
		t.Errorf("zero embeddings: %v, %v; expected similarity 0", sim, err)
	}
}

func TestViridis(t *testing.T) {
	if c := viridis(0); c != (color.NRGBA{0x44, 0x01, 0x54, 255}) {
		t.Errorf("viridis(0) = %v, expected #440154", c)
	}
	if c := viridis(1); c != (color.NRGBA{0xFD, 0xE7, 0x25, 255}) {
		t.Errorf("viridis(1) = %v, expected #FDE725", c)
	}
	// Perceptual order: the luminance rises all the way.
	lum := func(c color.NRGBA) float64 {
		lin := func(u uint8) float64 {
			v := float64(u) / 255
			if v <= 0.04045 {
				return v / 12.92
			}
			return math.Pow((v+0.055)/1.055, 2.4)
		}
		return 0.2126*lin(c.R) + 0.7152*lin(c.G) + 0.0722*lin(c.B)
	}
	prev := -1.0
	for i := 0; i <= 100; i++ {
		l := lum(viridis(float64(i) / 100))
		if l <= prev {
			t.Fatalf("luminance falls at %d/100: %v after %v", i, l, prev)
		}
		prev = l
	}
	cm := NewViridis(-1, 1)
	if _, err := cm.At(1.5); err == nil {
		t.Errorf("At(1.5) on [-1, 1]: no error")
	}
	if c, err := cm.At(-1); err != nil || c != color.Color(viridis(0)) {
		t.Errorf("At(-1) = %v, %v; expected the first colour", c, err)
	}
	if n := len(cm.Palette(7).Colors()); n != 7 {
		t.Errorf("Palette(7) has %d colours", n)
	}
}

func TestPosSimRasterLayout(t *testing.T) {
	const grid = 3
	n := grid * grid
	sim := make([]float64, n*n) // identity: each map lights only its own position
	for i := 0; i < n; i++ {
		sim[i*n+i] = 1
	}
	const px = 300
	img := posSimRaster(sim, grid, px, NewViridis(0, 1))
	units := grid + (grid-1)*posSimGap
	// centre of cell (cr, cc) of the map in row mr, column mc, in pixels
	at := func(mr, mc, cr, cc int) color.NRGBA {
		u := func(m, c int) int {
			return int((float64(m)*(1+posSimGap) + (float64(c)+0.5)/grid) / units * px)
		}
		return img.NRGBAAt(u(mc, cc), u(mr, cr))
	}
	hot, cold := viridis(1), viridis(0)
	for mr := 0; mr < grid; mr++ {
		for mc := 0; mc < grid; mc++ {
			for cr := 0; cr < grid; cr++ {
				for cc := 0; cc < grid; cc++ {
					want := cold
					if cr == mr && cc == mc {
						want = hot
					}
					if got := at(mr, mc, cr, cc); got != want {
						t.Fatalf("map (%d, %d), cell (%d, %d): colour %v, expected %v", mr, mc, cr, cc, got, want)
					}
				}
			}
		}
	}
	gapPx := int((1 + posSimGap/2) / units * px) // middle of the first gap
	if c := img.NRGBAAt(gapPx, px/2); c != (color.NRGBA{255, 255, 255, 255}) {
		t.Errorf("gap pixel %v, expected white", c)
	}
}

func TestHeatRaster(t *testing.T) {
	vals := make([]float64, 16) // 4×4, one hot patch at row 1, column 2
	vals[1*4+2] = 1
	// 36 pixels: 9 per patch, so pixel 13 is the centre of row 1 and
	// pixel 22 the centre of column 2.
	img := heatRaster(vals, 4, 36, NewViridis(0, 1), false)
	if c := img.NRGBAAt(22, 13); c != viridis(1) {
		t.Errorf("pixel (22, 13) in patch (1, 2) is %v, expected the hot colour", c)
	}
	if c := img.NRGBAAt(13, 22); c != viridis(0) {
		t.Errorf("pixel (13, 22) in patch (2, 1) is %v, expected the cold colour", c)
	}
	smooth := heatRaster(vals, 4, 36, NewViridis(0, 1), true)
	if c := smooth.NRGBAAt(22, 13); c != viridis(1) {
		t.Errorf("smooth: pixel at the hot patch's centre is %v, expected the hot colour", c)
	}
	if c := smooth.NRGBAAt(18, 13); c == viridis(1) || c == viridis(0) {
		t.Errorf("smooth: pixel between patches is %v, expected a blend", c)
	}
	if c := smooth.NRGBAAt(4, 31); c != viridis(0) {
		t.Errorf("smooth: pixel far from the hot patch is %v, expected the cold colour", c)
	}
}

func TestReadMetrics(t *testing.T) {
	in := `{"epoch":1,"step":10,"train_loss":2,"train_acc":0.1,"test_loss":1.9,"test_acc":0.2,"lr":0.001}

{"epoch":3,"train_loss":1,"train_acc":0.5,"test_loss":1.1,"test_acc":0.45}
{"epoch":2,"train_loss":1.5,"train_acc":0.3,"test_loss":1.4,"test_acc":0.3}
{"epoch":3,"train_loss":0.9,"train_acc":0.55,"test_loss":1.0,"test_acc":0.5}
`
	es, err := ReadMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 || es[0].Epoch != 1 || es[1].Epoch != 2 || es[2].Epoch != 3 {
		t.Fatalf("epochs %+v, expected 1, 2, 3 in order", es)
	}
	if es[2].TrainLoss != 0.9 || es[2].TestAcc != 0.5 {
		t.Errorf("epoch 3 is %+v, expected the later line (train loss 0.9, test acc 0.5)", es[2])
	}
	if es[0].HasVal {
		t.Error("a line without validation figures read as having them")
	}
	vs, err := ReadMetrics(strings.NewReader(`{"epoch":1,"train_loss":2,"train_acc":0.1,"val_loss":1.8,"val_acc":0.25,"test_loss":1.9,"test_acc":0.2}`))
	if err != nil || !vs[0].HasVal || vs[0].ValAcc != 0.25 || vs[0].ValLoss != 1.8 {
		t.Errorf("validation figures read as %+v (%v)", vs, err)
	}
	for _, tc := range []struct{ in, part string }{
		{"", "no epochs"},
		{"\n\n", "no epochs"},
		{`{"epoch":1,"train_loss":1,"train_acc":0.5,"test_loss":1}`, `"test_acc"`},
		{"{\"epoch\":1,\"train_loss\":1,\"train_acc\":0.5,\"test_loss\":1,\"test_acc\":1}\nnot json", "line 2"},
		{`{"epoch":0,"train_loss":1,"train_acc":0.5,"test_loss":1,"test_acc":1}`, "epoch 0"},
		{`{"epoch":"x","train_loss":1,"train_acc":0.5,"test_loss":1,"test_acc":1}`, "line 1"},
		{`{"epoch":1,"train_loss":1,"train_acc":0.5,"val_acc":0.5,"test_loss":1,"test_acc":1}`, "val_loss and val_acc"},
	} {
		_, err := ReadMetrics(strings.NewReader(tc.in))
		wantErr(t, err, tc.part)
	}
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	return img
}

func TestWritePictures(t *testing.T) {
	var b bytes.Buffer
	sim, grid, err := PosSimilarity(smoothPos(4, 8), 17, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePosSimilarity(&b, sim, grid, "test"); err != nil {
		t.Fatal(err)
	}
	if img := decodePNG(t, b.Bytes()); img.Bounds().Dx() < 400 || img.Bounds().Dy() < 400 {
		t.Errorf("similarity picture is %v, expected at least 400×400", img.Bounds())
	}

	fig := AttentionFigure{Title: "x", Image: make([]float32, 3*8*8), Channels: 3, Size: 8, Grid: 2, Rollout: []float64{0.1, 0.2, 0.3, 0.4}}
	b.Reset()
	if err := WriteAttention(&b, fig); err != nil {
		t.Fatal(err)
	}
	one := decodePNG(t, b.Bytes()).Bounds()
	fig.Layers = [][]float64{{0, 0, 0, 0}, {1, 0, 0, 0}, {0.5, 0.5, 0, 0}}
	b.Reset()
	if err := WriteAttention(&b, fig); err != nil {
		t.Fatal(err)
	}
	if two := decodePNG(t, b.Bytes()).Bounds(); two.Dy() <= one.Dy() || two.Dx() != one.Dx() {
		t.Errorf("with per-block maps the picture is %v, without %v: expected the same width and more height", two, one)
	}

	b.Reset()
	two := []Epoch{{Epoch: 1, TrainLoss: 2, TrainAcc: 0.1, TestLoss: 1.9, TestAcc: 0.2}, {Epoch: 2, TrainLoss: 1.5, TrainAcc: 0.3, TestLoss: 1.4, TestAcc: 0.35}}
	if err := WriteCurves(&b, two, "run"); err != nil {
		t.Fatal(err)
	}
	plain := decodePNG(t, b.Bytes())
	b.Reset()
	if err := WriteCurves(&b, two[:1], ""); err != nil { // one epoch: flat ranges
		t.Fatal(err)
	}
	decodePNG(t, b.Bytes())
	// With validation figures a third line is drawn: another picture.
	for i := range two {
		two[i].ValLoss, two[i].ValAcc, two[i].HasVal = 1.7-0.2*float64(i), 0.25+0.1*float64(i), true
	}
	b.Reset()
	if err := WriteCurves(&b, two, "run"); err != nil {
		t.Fatal(err)
	}
	if withVal := decodePNG(t, b.Bytes()); imagesEqual(plain, withVal) {
		t.Error("the curves with validation figures are the picture without them")
	}

	// Bad inputs are errors, not panics.
	wantErr(t, WritePosSimilarity(&b, sim[:10], grid, ""), "10 values")
	bad := append([]float64(nil), sim...)
	bad[3] = math.NaN()
	wantErr(t, WritePosSimilarity(&b, bad, grid, ""), "value 3", "NaN")
	flat := make([]float64, len(sim)) // a constant similarity: an empty colour range is widened
	if err := WritePosSimilarity(&b, flat, grid, ""); err != nil {
		t.Errorf("constant similarity: %v", err)
	}
	f2 := fig
	f2.Rollout = []float64{1, 2}
	wantErr(t, WriteAttention(&b, f2), "2 values", "expected 4")
	f2 = fig
	f2.Channels = 2
	wantErr(t, WriteAttention(&b, f2), "2 channels")
	f2 = fig
	f2.Image = f2.Image[:5]
	wantErr(t, WriteAttention(&b, f2), "5 values")
	f2 = fig
	f2.Layers = [][]float64{{1}}
	wantErr(t, WriteAttention(&b, f2), "block 0", "1 values")
	f2 = fig
	f2.Rollout = []float64{0, 0, 0, 0}
	if err := WriteAttention(&b, f2); err != nil {
		t.Errorf("all-zero rollout: %v", err)
	}
	wantErr(t, WriteCurves(&b, nil, ""), "no epochs")
}

// imagesEqual reports whether two pictures have the same size and pixels.
func imagesEqual(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}
