package main

import (
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vitgo/vit/model"
	"github.com/vitgo/vit/model/insight"
)

func writePNG(path string, draw func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	return draw(f)
}

func drawCurves(o *options) error {
	var runs []insight.Run
	for _, path := range strings.Split(o.metrics, ",") {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("-curves: %v", err)
		}
		epochs, err := insight.ReadMetrics(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		runs = append(runs, insight.Run{Name: strings.TrimSuffix(filepath.Base(path), ".metrics.jsonl"), Epochs: epochs})
	}
	return writePNG(o.curves, func(w io.Writer) error {
		if len(runs) > 1 {
			return insight.WriteComparison(w, runs, "Test curves")
		}
		return insight.WriteCurves(w, runs[0].Epochs, "Training curves: "+o.metrics)
	})
}

func drawPosSimilarity(c *model.Classifier, o *options) error {
	pe, tokens, dim := c.PositionalEmbedding()
	sim, grid, err := insight.PosSimilarity(pe, tokens, dim)
	if err != nil {
		return err
	}
	return writePNG(o.posSim, func(w io.Writer) error {
		return insight.WritePosSimilarity(w, sim, grid, "Position embedding similarity: "+o.model)
	})
}

func drawAttention(c *model.Classifier, o *options, file string, img image.Image) error {
	ex, err := c.Explain(img)
	if err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	row, err := insight.ClassRollout(ex.Attention, ex.Heads, ex.Tokens)
	if err != nil {
		return err
	}
	cfg := c.Config()
	top := ex.Top[0]
	fig := insight.AttentionFigure{
		Title:    fmt.Sprintf("%s: %s (%.1f%%)", filepath.Base(file), top.Label, 100*top.Prob),
		Image:    ex.Input,
		Channels: cfg.Channels,
		Size:     cfg.ImageSize,
		Grid:     cfg.Grid(),
		Rollout:  row,
	}
	if o.attentionLayers {
		for l, a := range ex.Attention {
			m, err := insight.ClassAttention(a, ex.Heads, ex.Tokens)
			if err != nil {
				return fmt.Errorf("block %d: %v", l+1, err)
			}
			fig.Layers = append(fig.Layers, m)
		}
	}
	return writePNG(o.attention, func(w io.Writer) error { return insight.WriteAttention(w, fig) })
}
