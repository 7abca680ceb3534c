//go:build ignore

// make_ti16 writes a ViT-Ti/16 (224×224, 1000 classes, 5.7 M parameters)
// with random weights, in timm's names with timm's evaluation transform
// (bicubic resize to 248, centre crop 224, ImageNet normalisation), as a
// timm checkpoint would be served. docs/serving.md loads a server with it:
// its speed is a real Ti/16's; its answers mean nothing.
//
//	go run docs/serving/make_ti16.go [-out FILE]
package main

import (
	"flag"
	"fmt"
	"os"

	G "gorgonia.org/gorgonia"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/preprocess"
)

func main() {
	out := flag.String("out", "ti16.safetensors", "output `file`")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "make_ti16:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	cfg, err := model.Preset("Ti/16")
	if err != nil {
		return err
	}
	m, err := model.New(G.NewGraph(), cfg, model.WithSeed(1))
	if err != nil {
		return err
	}
	tr, err := preprocess.TimmEval(cfg.ImageSize, 0.9, preprocess.Bicubic, preprocess.ImageNet)
	if err != nil {
		return err
	}
	if err := m.Export(out, model.NamingTimm, model.ExportInfo{Transform: tr}); err != nil {
		return err
	}
	fmt.Printf("%s: ViT-Ti/16, %d parameters\n", out, m.NumParams())
	return nil
}
