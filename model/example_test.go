package model_test

import (
	"fmt"
	"log"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/model"
)

// A ViT is a set of nodes in the caller's graph: here it is the backbone of
// a regression model whose head and loss are the caller's own, and one
// training step updates both.
func Example_embed() {
	g := G.NewGraph()
	cfg := model.Config{ImageSize: 8, PatchSize: 4, Channels: 1, Dim: 16, Depth: 1, Heads: 2, MLPDim: 32, NumClasses: 4}
	vit, err := model.New(g, cfg, model.WithPrefix("backbone/"), model.WithSeed(1))
	if err != nil {
		log.Fatal(err)
	}

	pixels := make([]float32, 4*1*8*8)
	for i := range pixels {
		pixels[i] = float32(i%13) / 13
	}
	images := G.NewTensor(g, tensor.Float32, 4, G.WithShape(4, 1, 8, 8), G.WithName("images"),
		G.WithValue(tensor.New(tensor.WithShape(4, 1, 8, 8), tensor.WithBacking(pixels))))
	features, err := vit.Features(images) // (4, 16)
	if err != nil {
		log.Fatal(err)
	}

	// The caller's own head and loss: mean squared error of one output.
	w := G.NewMatrix(g, tensor.Float32, G.WithShape(16, 1), G.WithName("my_head"), G.WithInit(G.ValuesOf(float32(0.1))))
	target := G.NewMatrix(g, tensor.Float32, G.WithShape(4, 1), G.WithName("target"), G.WithInit(G.Ones()))
	pred := G.Must(G.Mul(features, w)) // (4, 1)
	loss := G.Must(G.Mean(G.Must(G.Square(G.Must(G.Sub(pred, target))))))

	params := append(vit.BackboneLearnables(), w)
	if _, err := G.Grad(loss, params...); err != nil {
		log.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(params...))
	defer vm.Close()
	solver := G.NewAdamSolver(G.WithLearnRate(0.001))

	var losses []float32
	for step := 0; step < 3; step++ {
		if err := vm.RunAll(); err != nil {
			log.Fatal(err)
		}
		losses = append(losses, loss.Value().Data().(float32))
		if err := solver.Step(G.NodesToValueGrads(params)); err != nil {
			log.Fatal(err)
		}
		vm.Reset()
	}
	fmt.Println("parameters:", len(params), "features:", features.Shape())
	fmt.Println("loss went down:", losses[2] < losses[0])
	// Output:
	// parameters: 19 features: (4, 16)
	// loss went down: true
}
