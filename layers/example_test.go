package layers_test

import (
	"fmt"
	"log"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/layers"
	"github.com/vitgo/vit/layers/ops"
)

// A one-block ViT for 8×8 RGB images, built from the layers in timm's
// state-dict order: tokens, patch embedding, blocks, norm, head.
func Example() {
	const d, classes = 16, 10
	g := G.NewGraph()
	s := layers.NewScope(g, "", tensor.Float32, 1)
	noise := ops.NewNoise(1)
	cls, err := s.Param("cls_token", []int{1, 1, d}, layers.Normal(1e-6), layers.NoDecay)
	if err != nil {
		log.Fatal(err)
	}
	pos, err := s.Param("pos_embed", []int{1, 5, d}, layers.TruncNormal(0.02), layers.NoDecay) // 4 patches + class token
	if err != nil {
		log.Fatal(err)
	}
	pe, err := layers.NewPatchEmbed(s, "patch_embed", 3, 4, d)
	if err != nil {
		log.Fatal(err)
	}
	block, err := layers.NewBlock(s.Sub("blocks"), "0", layers.BlockConfig{Dim: d, Heads: 2, MLPDim: 4 * d, Eps: 1e-6, QKVBias: true}, noise)
	if err != nil {
		log.Fatal(err)
	}
	norm, err := layers.NewLayerNorm(s, "norm", d, 1e-6)
	if err != nil {
		log.Fatal(err)
	}
	head, err := layers.NewLinear(s, "head", d, classes, layers.WithBias)
	if err != nil {
		log.Fatal(err)
	}

	// The forward pass: each Forward adds nodes to g and returns them.
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 3, 8, 8), G.WithInit(G.Ones()), G.WithName("x"))
	h := G.Must(pe.Forward(x))              // (B, N, D)
	h = G.Must(ops.TokenEmbed(h, cls, pos)) // (B, N+1, D)
	h, probs, err := block.Forward(h)       // (B, N+1, D) and (B, H, N+1, N+1)
	if err != nil {
		log.Fatal(err)
	}
	f := G.Must(ops.Pool(h, ops.PoolClassToken)) // (B, D)
	logits := G.Must(head.Forward(G.Must(norm.Forward(f))))

	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("logits", logits.Shape(), "attention", probs.Shape())
	for _, p := range s.Params()[:4] {
		fmt.Println(p.Name, p.Node.Shape(), "decay:", p.Decay)
	}
	fmt.Println(len(s.Params()), "parameters")
	// Output:
	// logits (2, 10) attention (2, 2, 5, 5)
	// cls_token (1, 1, 16) decay: false
	// pos_embed (1, 5, 16) decay: false
	// patch_embed.proj.weight (16, 3, 4, 4) decay: true
	// patch_embed.proj.bias (16) decay: false
	// 20 parameters
}
