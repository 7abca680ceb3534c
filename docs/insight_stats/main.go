// Command insight_stats puts numbers on the pictures of docs/insight.md for
// a trained model: how its positional embeddings relate to the patch grid,
// and, over a dataset's test images, whether its attention goes to the
// object or to the background:
//
//	go run ./docs/insight_stats -model runs/tv/vit.safetensors -data /usr/share/datasets/fashion-mnist -n 1000
//
// Positional embeddings: for every patch position, the other position whose
// embedding is most similar (cosine, insight.PosSimilarity) — a direct
// neighbour (sharing a side), a diagonal one, the mirror image across the
// vertical axis, or other — and the mean similarity by grid distance.
//
// A patch counts as object when the mean of its pixels (in [0,1], before
// normalisation) exceeds -threshold; Fashion-MNIST's background is black.
// For each image it takes the attention rollout's class-token row over the
// patches (insight.Rollout, insight.ClassRow) and each block's own
// class-token attention (insight.ClassAttention, rescaled to sum to 1 over
// the patches), and reports their mean share on object patches against
// the object patches' share of all patches (what a uniform map would give),
// and how often the rollout's largest patch is an object patch.
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"os"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/insight"
	"github.com/vitgo/vit/train/data"
)

func main() {
	ckpt := flag.String("model", "", "checkpoint `file`")
	dir := flag.String("data", "", "dataset `dir` (its test split is used)")
	n := flag.Int("n", 1000, "number of test images (from the first)")
	thr := flag.Float64("threshold", 0.1, "mean pixel value above which a patch counts as object")
	flag.Parse()
	if err := run(*ckpt, *dir, *n, *thr); err != nil {
		fmt.Fprintln(os.Stderr, "insight_stats:", err)
		os.Exit(1)
	}
}

// toImage turns image i of d (C×H×W in [0,1]) into an image.Image.
func toImage(d *data.Dataset, i int) image.Image {
	px := d.Image(i)
	hw := d.H * d.W
	if d.C == 1 {
		g := image.NewGray(image.Rect(0, 0, d.W, d.H))
		for j := 0; j < hw; j++ {
			g.Pix[j] = uint8(px[j]*255 + 0.5)
		}
		return g
	}
	m := image.NewNRGBA(image.Rect(0, 0, d.W, d.H))
	for j := 0; j < hw; j++ {
		m.Set(j%d.W, j/d.W, color.NRGBA{uint8(px[j]*255 + 0.5), uint8(px[hw+j]*255 + 0.5), uint8(px[2*hw+j]*255 + 0.5), 255})
	}
	return m
}

func run(ckpt, dir string, n int, thr float64) error {
	if ckpt == "" || dir == "" {
		return fmt.Errorf("-model and -data are required")
	}
	c, err := model.LoadClassifier(ckpt, model.WithWorkers(1), model.WithBatchSize(1))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := posStats(c); err != nil {
		return err
	}
	_, test, _, err := data.Load(dir, data.Options{})
	if err != nil {
		return err
	}
	cfg := c.Config()
	grid, p, ch := cfg.ImageSize/cfg.PatchSize, cfg.PatchSize, cfg.Channels
	n = min(n, test.N)
	var rollMass, uniform, peakOn, correct float64
	blockMass := make([]float64, cfg.Depth)
	for i := 0; i < n; i++ {
		ex, err := c.Explain(toImage(test, i))
		if err != nil {
			return fmt.Errorf("test image %d: %v", i, err)
		}
		if ex.Top[0].Index == test.Labels[i] {
			correct++
		}
		// Object patches, from the input as the model saw it.
		obj := make([]bool, grid*grid)
		var nObj float64
		s := cfg.ImageSize
		for r := 0; r < grid; r++ {
			for q := 0; q < grid; q++ {
				var sum float64
				for k := 0; k < ch; k++ {
					for y := r * p; y < (r+1)*p; y++ {
						for x := q * p; x < (q+1)*p; x++ {
							sum += float64(ex.Input[k*s*s+y*s+x])
						}
					}
				}
				if sum/float64(ch*p*p) > thr {
					obj[r*grid+q] = true
					nObj++
				}
			}
		}
		uniform += nObj / float64(grid*grid)
		row, err := insight.ClassRollout(ex.Attention, ex.Heads, ex.Tokens)
		if err != nil {
			return err
		}
		best := 0
		for j, v := range row {
			if obj[j] {
				rollMass += v
			}
			if v > row[best] {
				best = j
			}
		}
		if obj[best] {
			peakOn++
		}
		for l, a := range ex.Attention {
			ca, err := insight.ClassAttention(a, ex.Heads, ex.Tokens)
			if err != nil {
				return err
			}
			var tot, on float64
			for j, v := range ca {
				tot += v
				if obj[j] {
					on += v
				}
			}
			if tot > 0 {
				blockMass[l] += on / tot
			}
		}
	}
	f := float64(n)
	fmt.Printf("%s on the first %d test images of %s (accuracy on them %.2f%%)\n", ckpt, n, dir, 100*correct/f)
	fmt.Printf("object patches (mean pixel > %g): %.1f%% of all patches — the share a uniform map puts on them\n", thr, 100*uniform/f)
	fmt.Printf("attention rollout: %.1f%% of its mass on object patches; its peak is an object patch for %.1f%% of the images\n", 100*rollMass/f, 100*peakOn/f)
	for l, m := range blockMass {
		fmt.Printf("block %d alone: %.1f%% of the class token's attention to patches goes to object patches\n", l+1, 100*m/f)
	}
	return nil
}

// posStats prints how the positional embeddings' similarities follow the grid.
func posStats(c *model.Classifier) error {
	pe, tokens, dim := c.PositionalEmbedding()
	sim, g, err := insight.PosSimilarity(pe, tokens, dim)
	if err != nil {
		return err
	}
	n := g * g
	var side, diag, mirror, other int
	byDist := map[int][2]float64{} // Manhattan distance → (sum, count)
	for i := 0; i < n; i++ {
		ri, ci := i/g, i%g
		best := -1
		for j := 0; j < n; j++ {
			if j == i {
				continue
			}
			rj, cj := j/g, j%g
			d := abs(ri-rj) + abs(ci-cj)
			e := byDist[d]
			byDist[d] = [2]float64{e[0] + sim[i*n+j], e[1] + 1}
			if best < 0 || sim[i*n+j] > sim[i*n+best] {
				best = j
			}
		}
		rb, cb := best/g, best%g
		switch dr, dc := abs(ri-rb), abs(ci-cb); {
		case dr+dc == 1:
			side++
		case dr == 1 && dc == 1:
			diag++
		case rb == ri && cb == g-1-ci:
			mirror++
		default:
			other++
		}
	}
	fmt.Printf("positional embeddings (%d×%d grid): the most similar other position is a side neighbour for %d of %d positions, "+
		"a diagonal neighbour for %d, the mirror image (same row, column %d−c) for %d, elsewhere for %d\n", g, g, side, n, diag, g-1, mirror, other)
	fmt.Print("mean cosine similarity by grid distance (|Δrow|+|Δcolumn|):")
	for d := 1; d <= 2*(g-1); d++ {
		if e := byDist[d]; e[1] > 0 {
			fmt.Printf(" %d: %.2f", d, e[0]/e[1])
		}
	}
	fmt.Println()
	return nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
