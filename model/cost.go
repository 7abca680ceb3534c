package model

import "fmt"

// Cost is what a model costs to run, for sizing a run before starting it.
type Cost struct {
	Params       int     // learnable scalars
	ForwardFLOPs float64 // per image, one multiply-add counted as 2 FLOPs
	TrainFLOPs   float64 // per image: forward + backward (about 3× forward)
	// ActivationBytes estimates the float32 activations a training step keeps
	// for the backward pass, for the given batch.
	ActivationBytes float64
}

// Cost returns the cost of this config at the given batch size. FLOPs count
// the matrix products (patch projection or conv stem, qkv, attention scores and
// weighted sums, projection, MLP, head), which are nearly all of the work.
func (c Config) Cost(batch int) Cost {
	n := float64(c.Tokens())
	d, h := float64(c.Dim), float64(c.MLPDim)
	k := float64(c.Channels * c.PatchSize * c.PatchSize)
	patches := n - 1
	perBlock := 2 * n * (d*3*d + d*d + 2*d*h) // qkv, proj, fc1, fc2
	perBlock += 2 * 2 * n * n * d             // QKᵀ and P·V over all heads
	embed := 2 * patches * k * d
	var stemActs float64
	if c.ConvStem() {
		in, size := float64(c.Channels), float64(c.ImageSize)
		embed = 0
		for _, w := range c.StemWidths() {
			size /= 2
			embed += 2 * size * size * in * 9 * float64(w)
			stemActs += size*size*in*9 + 3*size*size*float64(w) // windows; conv, norm and GELU outputs
			in = float64(w)
		}
		embed += 2 * patches * in * d
		k = 0 // no patches kept: the windows above are
	}
	fwd := embed + float64(c.Depth)*perBlock + 2*d*float64(c.NumClasses)
	// Per block the backward keeps: LayerNorm inputs and outputs (4·N·D),
	// qkv (3·N·D), attention probabilities (H·N²), attention output (N·D),
	// projection output (N·D), MLP hidden before and after GELU (2·N·H).
	perImage := float64(c.Depth)*(9*n*d+float64(c.Heads)*n*n+2*n*h) + patches*k + 2*n*d + stemActs
	return Cost{
		Params:          c.NumParams(),
		ForwardFLOPs:    fwd,
		TrainFLOPs:      3 * fwd,
		ActivationBytes: 4 * perImage * float64(batch),
	}
}

func (c Cost) String() string {
	return fmt.Sprintf("%d parameters, %.1f MFLOP per image forward, %.1f MFLOP per image training, ~%.0f MB of activations per step",
		c.Params, c.ForwardFLOPs/1e6, c.TrainFLOPs/1e6, c.ActivationBytes/1e6)
}
