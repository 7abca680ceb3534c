package model

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers"
	"github.com/vitgo/vit/layers/ops"
)

// ViT is a Vision Transformer whose parameters live in a Gorgonia graph.
// It stores parameters only: Forward adds nodes to the graph and returns
// them, so one ViT can be applied to several inputs, and other nodes of
// the caller's own can sit beside it.
type ViT struct {
	Config Config

	PatchEmbed *layers.PatchEmbed // the paper's patch projection, or nil with a conv stem
	Stem       *layers.ConvStem   // with Config.Stem "conv", else nil
	ClsToken   *G.Node            // (1, 1, D)
	PosEmbed   *G.Node            // (1, N+1, D)
	PosDrop    layers.Dropout
	Blocks     []*layers.Block
	Norm       *layers.LayerNorm // "norm", or "fc_norm" with mean pooling
	Head       *layers.Linear    // (NumClasses, D)

	g      *G.ExprGraph
	dtype  tensor.Dtype
	prefix string
	params []*layers.Param
	noise  *ops.Noise
}

type options struct {
	share  *ViT
	prefix string
	seed   int64
	dtype  tensor.Dtype
}

// Option changes how New builds a model.
type Option func(*options)

// WithPrefix prefixes every parameter's node name, so that two models can
// live in one graph ("teacher/", "student/").
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithSeed sets the seed of the initial weights and of the dropout masks
// (default 0). The same seed gives the same weights.
func WithSeed(s int64) Option { return func(o *options) { o.seed = s } }

// SharingWeights makes the new model use src's parameter tensors (same
// memory, nothing copied) instead of new ones. src must have the same
// config and dtype. This is how an inference graph sees the weights a
// training graph updates.
func SharingWeights(src *ViT) Option { return func(o *options) { o.share = src } }

// WithDtype sets the parameter dtype: tensor.Float32 (default) or
// tensor.Float64 (for gradient checks).
func WithDtype(dt tensor.Dtype) Option { return func(o *options) { o.dtype = dt } }

// New creates a ViT's parameters in g, initialised as timm does: truncated
// normal (std 0.02) for weight matrices and the positional embedding,
// N(0, 1e-6²) for the class token, zero biases, unit LayerNorm scales; or,
// with Config.Init "torchvision", as torchvision's VisionTransformer does
// (larger weights, which small models learn from faster).
// The batch size is not fixed here: it is whatever Forward's input has.
func New(g *G.ExprGraph, cfg Config, opts ...Option) (*ViT, error) {
	if g == nil {
		return nil, errors.New("model: nil graph")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{dtype: tensor.Float32}
	for _, f := range opts {
		f(&o)
	}
	if o.dtype != tensor.Float32 && o.dtype != tensor.Float64 {
		return nil, errors.Errorf("model: dtype must be float32 or float64, got %v", o.dtype)
	}
	s := layers.NewScope(g, o.prefix, o.dtype, o.seed)
	if o.share != nil {
		if o.share.Config != cfg || o.share.dtype != o.dtype {
			return nil, errors.Errorf("model: cannot share weights of a %v %v model with a %v %v one", o.share.dtype, o.share.Config, o.dtype, cfg)
		}
		vals := make(map[string]*tensor.Dense, len(o.share.params))
		for _, p := range o.share.params {
			vals[p.Name] = p.Node.Value().(*tensor.Dense)
		}
		s.ShareValues(vals)
	}
	m := &ViT{Config: cfg, g: g, dtype: o.dtype, prefix: o.prefix, noise: ops.NewNoise(uint64(o.seed))}
	m.PosDrop = layers.Dropout{P: cfg.Dropout, Noise: m.noise}
	var err error
	// Creation order is timm's state-dict order, which Learnables keeps.
	if m.ClsToken, err = s.Param("cls_token", []int{1, 1, cfg.Dim}, layers.Normal(1e-6), layers.NoDecay); err != nil {
		return nil, err
	}
	if m.PosEmbed, err = s.Param("pos_embed", []int{1, cfg.Tokens(), cfg.Dim}, layers.TruncNormal(0.02), layers.NoDecay); err != nil {
		return nil, err
	}
	if cfg.ConvStem() {
		if m.Stem, err = layers.NewConvStem(s, "patch_embed", cfg.Channels, cfg.ImageSize, cfg.StemWidths(), cfg.Dim, cfg.LayerNormEps()); err != nil {
			return nil, err
		}
	} else if m.PatchEmbed, err = layers.NewPatchEmbed(s, "patch_embed", cfg.Channels, cfg.PatchSize, cfg.Dim); err != nil {
		return nil, err
	}
	bc := layers.BlockConfig{
		Dim: cfg.Dim, Heads: cfg.Heads, MLPDim: cfg.MLPDim, Eps: cfg.LayerNormEps(), QKVBias: !cfg.NoQKVBias,
		GELU: layers.GELU{Tanh: cfg.GELU == GELUTanh}, Dropout: cfg.Dropout, AttnDropout: cfg.AttnDropout,
	}
	blocks := s.Sub("blocks")
	for i := 0; i < cfg.Depth; i++ {
		if cfg.Depth > 1 {
			bc.DropPath = cfg.DropPath * float64(i) / float64(cfg.Depth-1)
		}
		b, err := layers.NewBlock(blocks, fmt.Sprint(i), bc, m.noise)
		if err != nil {
			return nil, err
		}
		m.Blocks = append(m.Blocks, b)
	}
	normName := "norm"
	if cfg.MeanPool() {
		normName = "fc_norm"
	}
	if m.Norm, err = layers.NewLayerNorm(s, normName, cfg.Dim, cfg.LayerNormEps()); err != nil {
		return nil, err
	}
	if m.Head, err = layers.NewLinear(s, "head", cfg.Dim, cfg.NumClasses, layers.WithBias); err != nil {
		return nil, err
	}
	m.params = s.Params()
	if cfg.Init == InitTorchvision && o.share == nil {
		if err := m.initTorchvision(o.seed); err != nil {
			return nil, err
		}
	}
	if cfg.FixedPositions() && o.share == nil {
		pe := SinCos2D(cfg.Grid(), cfg.Grid(), cfg.Dim)
		switch v := m.PosEmbed.Value().Data().(type) {
		case []float32:
			copy(v[cfg.Dim:], pe) // the class token's row stays 0
			clear(v[:cfg.Dim])
		case []float64:
			for i, x := range pe {
				v[cfg.Dim+i] = float64(x)
			}
			clear(v[:cfg.Dim])
		}
	}
	return m, nil
}

// SinCos2D returns the fixed 2-D sin-cos positional embedding of an h×w
// grid of patches, d values per patch, row by row: for the patch at row y,
// column x and ω_i = 10000^(−i/(d/4 − 1)), i < d/4, the values
// sin(x·ω_i), cos(x·ω_i), sin(y·ω_i), cos(y·ω_i) in four blocks of d/4, as
// big_vision's posemb_sincos_2d ("Better plain ViT baselines for
// ImageNet-1k"). Computed in float64, rounded once.
func SinCos2D(h, w, d int) []float32 {
	q := d / 4
	out := make([]float32, h*w*d)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			row := out[(y*w+x)*d : (y*w+x+1)*d]
			for i := 0; i < q; i++ {
				omega := 1 / math.Pow(10000, float64(i)/float64(q-1))
				row[i] = float32(math.Sin(float64(x) * omega))
				row[q+i] = float32(math.Cos(float64(x) * omega))
				row[2*q+i] = float32(math.Sin(float64(y) * omega))
				row[3*q+i] = float32(math.Cos(float64(y) * omega))
			}
		}
	}
	return out
}

// Graph returns the graph the model's parameters live in.
func (m *ViT) Graph() *G.ExprGraph { return m.g }

// Dtype returns the dtype of the parameters and of the expected input.
func (m *ViT) Dtype() tensor.Dtype { return m.dtype }

// Learnables returns the parameter nodes in timm's state-dict order, the
// order to hand to Grad and to a solver.
func (m *ViT) Learnables() G.Nodes {
	ns := make(G.Nodes, len(m.params))
	for i, p := range m.params {
		ns[i] = p.Node
	}
	return ns
}

// BackboneLearnables is Learnables without the classifier head: the
// parameters that Features depends on, for a caller who puts a head of
// their own on the features.
func (m *ViT) BackboneLearnables() G.Nodes {
	var ns G.Nodes
	for _, p := range m.params {
		if p.Node != m.Head.Weight && p.Node != m.Head.Bias {
			ns = append(ns, p.Node)
		}
	}
	return ns
}

// Params returns the parameters with their timm names and whether weight
// decay should apply (weight matrices only; not biases, norms, the class
// token or the positional embedding).
func (m *ViT) Params() []*layers.Param { return m.params }

// NumParams returns the number of learnable scalars.
func (m *ViT) NumParams() int {
	n := 0
	for _, p := range m.params {
		n += p.Node.Shape().TotalSize()
	}
	return n
}

// SetTraining turns dropout and drop path on (true, the state after New,
// as in PyTorch) or off for inference. It affects every graph node this
// model has made, at the time the graph runs.
func (m *ViT) SetTraining(on bool) { m.noise.SetTraining(on) }

// SetNoiseStep sets the position in the dropout mask stream, so that a
// resumed run draws the masks an uninterrupted run would have.
func (m *ViT) SetNoiseStep(step uint64) { m.noise.SetStep(step) }

// Outputs are the nodes of one forward pass.
type Outputs struct {
	Logits    *G.Node   // (B, NumClasses)
	Features  *G.Node   // (B, D): pooled and normalised, the head's input
	Tokens    *G.Node   // (B, N+1, D): the last block's output
	Attention []*G.Node // per block, (B, Heads, N+1, N+1) softmax probabilities; token 0 is the class token
}

// checkInput refuses an input that is not float (B, C, H, W) of the model.
func (m *ViT) checkInput(x *G.Node) error {
	if x == nil {
		return errors.New("model: nil input")
	}
	c := m.Config
	s := x.Shape()
	want := fmt.Sprintf("(B, %d, %d, %d)", c.Channels, c.ImageSize, c.ImageSize)
	if x.Dims() != 4 || s[1] != c.Channels || s[2] != c.ImageSize || s[3] != c.ImageSize || s[0] < 1 {
		return errors.Errorf("model: input shape %v, want %s", s, want)
	}
	if x.Dtype() != m.dtype {
		return errors.Errorf("model: input dtype %v, want %v", x.Dtype(), m.dtype)
	}
	if x.Graph() != m.g {
		return errors.New("model: input node belongs to another graph than the model")
	}
	return nil
}

// ForwardAll adds the forward pass for images x (B, C, H, W) to the graph
// and returns its logits, features, tokens and every block's attention.
func (m *ViT) ForwardAll(x *G.Node) (*Outputs, error) {
	if err := m.checkInput(x); err != nil {
		return nil, err
	}
	// Eq. 1: z₀ = [x_class; x¹E; …; xᴺE] + E_pos.
	embed := m.PatchEmbed.Forward
	if m.Stem != nil {
		embed = m.Stem.Forward
	}
	h, err := embed(x) // (B, N, D): the patches xⁱ, flattened, times E (or the conv stem's tokens)
	if err != nil {
		return nil, err
	}
	if h, err = ops.TokenEmbed(h, m.ClsToken, m.PosEmbed); err != nil { // (B, N+1, D): prepend x_class, add E_pos
		return nil, errors.Wrap(err, "model: embedding")
	}
	if h, err = m.PosDrop.Forward(h); err != nil {
		return nil, err
	}
	out := &Outputs{}
	// Eqs. 2 and 3, for ℓ = 1…L: z'ℓ = MSA(LN(zℓ₋₁)) + zℓ₋₁, zℓ = MLP(LN(z'ℓ)) + z'ℓ.
	for _, b := range m.Blocks {
		var p *G.Node
		if h, p, err = b.Forward(h); err != nil { // (B, N+1, D)
			return nil, err
		}
		out.Attention = append(out.Attention, p)
	}
	out.Tokens = h
	// Eq. 4: y = LN(z_L⁰), then the head. The final LayerNorm acts on each
	// token alone, so pooling first and normalising the pooled vector is the
	// same as timm's norm-then-take-the-class-token, and for mean pooling it
	// is timm's fc_norm.
	pool := ops.PoolClassToken
	if m.Config.MeanPool() {
		pool = ops.PoolMean
	}
	f, err := ops.Pool(h, pool) // (B, D)
	if err != nil {
		return nil, errors.Wrap(err, "model: pooling")
	}
	if out.Features, err = m.Norm.Forward(f); err != nil {
		return nil, err
	}
	if out.Logits, err = m.Head.Forward(out.Features); err != nil { // (B, NumClasses)
		return nil, err
	}
	return out, nil
}

// Forward returns the logits (B, NumClasses) for float images (B, C, H, W).
func (m *ViT) Forward(x *G.Node) (*G.Node, error) {
	o, err := m.ForwardAll(x)
	if err != nil {
		return nil, err
	}
	return o.Logits, nil
}

// Features returns the pooled pre-head features (B, D).
func (m *ViT) Features(x *G.Node) (*G.Node, error) {
	o, err := m.ForwardAll(x)
	if err != nil {
		return nil, err
	}
	return o.Features, nil
}
