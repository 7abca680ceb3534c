package model_test

import (
	"fmt"
	"image"
	"log"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/preprocess"
)

// A checkpoint written by cmd/train holds the model, its class names and
// its normalisation: LoadClassifier needs nothing else, and Classify takes
// decoded images of any size.
func ExampleLoadClassifier() {
	c, err := model.LoadClassifier("../testdata/classifier/fashion-tiny.safetensors", model.WithTopK(2))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	var imgs []image.Image
	for _, name := range []string{"1-trouser.png", "7-sneaker.png", "8-bag.png"} {
		img, err := preprocess.DecodeFile("../testdata/classifier/" + name)
		if err != nil {
			log.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	preds, err := c.Classify(imgs)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range preds {
		fmt.Println(p.Top[0].Label, p.Top[0].Prob > 0.5)
	}
	// Output:
	// Trouser true
	// Sneaker true
	// Bag true
}

// Preset gives the paper's models by their short names; NumParams counts
// their parameters without building them.
func ExamplePreset() {
	cfg, err := model.Preset("Ti/16")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg)
	fmt.Println(cfg.NumParams(), "parameters")
	// Output:
	// ViT image 224×224×3, patch 16 (197 tokens), dim 192, depth 12, heads 3, mlp 768, classes 1000
	// 5717416 parameters
}

// LoadWeights reads timm's, torchvision's or Hugging Face's names. Here a
// small model's weights saved by PyTorch under Hugging Face's names give
// the logits PyTorch computed for the same images.
func ExampleViT_LoadWeights() {
	g := G.NewGraph()
	cfg := model.Config{ImageSize: 16, PatchSize: 4, Channels: 3, Dim: 32, Depth: 2, Heads: 4, MLPDim: 64, NumClasses: 5}
	vit, err := model.New(g, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := vit.LoadWeights("../testdata/parity/vit_hf.safetensors"); err != nil {
		log.Fatal(err)
	}
	ref, err := model.ReadFile("../testdata/parity/io.safetensors") // PyTorch's inputs and outputs
	if err != nil {
		log.Fatal(err)
	}
	vit.SetTraining(false)
	x, err := vit.NewInput(3, "images")
	if err != nil {
		log.Fatal(err)
	}
	pixels := x.Value().Data().([]float32)
	for i, v := range ref.Tensors["input"].Data {
		pixels[i] = float32(v)
	}
	logits, err := vit.Forward(x)
	if err != nil {
		log.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		log.Fatal(err)
	}
	worst := 0.0
	for i, v := range logits.Value().Data().([]float32) {
		worst = math.Max(worst, math.Abs(float64(v)-ref.Tensors["logits"].Data[i]))
	}
	fmt.Println("logits", logits.Shape(), "within 1e-5 of PyTorch's:", worst < 1e-5)
	// Output:
	// logits (3, 5) within 1e-5 of PyTorch's: true
}

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
