package insight

import (
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// DPI is the resolution of the PNG files written here.
const DPI = 96

// dots converts a length to pixels at DPI.
func dots(l vg.Length) int { return max(1, int(math.Round(l.Dots(DPI)))) }

// render draws a width×height picture with fn and writes it as PNG. A
// panic in the plotting library becomes an error.
func render(w io.Writer, width, height vg.Length, fn func(c draw.Canvas) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("insight: drawing failed: %v", p)
		}
	}()
	cv := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(DPI), vgimg.UseBackgroundColor(color.White))
	if err := fn(draw.New(cv)); err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: cv}).WriteTo(w); err != nil {
		return fmt.Errorf("insight: writing PNG: %v", err)
	}
	return nil
}

func textStyle(size vg.Length) draw.TextStyle {
	return draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, size), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
}

// fillText writes txt centred on x with its top at y.
func fillText(c draw.Canvas, size vg.Length, x, y vg.Length, txt string) {
	c.FillText(textStyle(size), vg.Point{X: x, Y: y}, txt)
}

// valueRange returns the smallest and largest of vs, widened to a
// non-empty range; an error names the first value that is not finite.
func valueRange(what string, vs []float64) (lo, hi float64, err error) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for i, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, 0, fmt.Errorf("insight: %s value %d is %v, expected finite values", what, i, v)
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if len(vs) == 0 {
		return 0, 1, nil
	}
	if hi-lo < 1e-12 {
		lo = hi - 1
	}
	return lo, hi, nil
}

// colorBar returns a plot holding a vertical viridis colour bar over
// [lo, hi] with its axis labelled.
func colorBar(lo, hi float64, label string) *plot.Plot {
	p := plot.New()
	p.HideX()
	p.X.Padding, p.Y.Padding = 0, 0
	p.Y.Label.Text = label
	p.Add(&plotter.ColorBar{ColorMap: NewViridis(lo, hi), Vertical: true})
	return p
}

// posSimGap is the gap between the small maps, in small-map widths.
const posSimGap = 0.15

// posSimRaster draws the grid of small heat maps into a px×px image: the
// small map in row r, column c (of the grid of maps) shows sim[r·G+c][·],
// the similarity of position (r, c) with every position, laid out like the
// patches. Gaps between the maps are white.
func posSimRaster(sim []float64, grid, px int, cm *Viridis) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, px, px))
	n := grid * grid
	units := float64(grid) + float64(grid-1)*posSimGap
	locate := func(p int) (mapIdx, cell int, ok bool) {
		u := (float64(p) + 0.5) / float64(px) * units
		k := int(u / (1 + posSimGap))
		if k >= grid {
			k = grid - 1
		}
		in := u - float64(k)*(1+posSimGap)
		if in >= 1 {
			return 0, 0, false
		}
		return k, min(int(in*float64(grid)), grid-1), true
	}
	white := color.NRGBA{255, 255, 255, 255}
	for y := 0; y < px; y++ {
		mr, cr, oky := locate(y)
		for x := 0; x < px; x++ {
			mc, cc, okx := locate(x)
			if !oky || !okx {
				img.SetNRGBA(x, y, white)
				continue
			}
			img.SetNRGBA(x, y, cm.Norm(sim[(mr*grid+mc)*n+cr*grid+cc]))
		}
	}
	return img
}

// WritePosSimilarity draws, for each patch position, the cosine similarity
// of its positional embedding with every position (sim from PosSimilarity,
// N×N with N = grid²) as a grid of small heat maps laid out like the
// patches, as in Figure 7 of the ViT paper, with a colour bar. The colours
// span the smallest to the largest similarity.
func WritePosSimilarity(w io.Writer, sim []float64, grid int, title string) error {
	if grid < 1 || grid > 64 {
		return fmt.Errorf("insight: patch grid %d, expected 1..64", grid)
	}
	if len(sim) != grid*grid*grid*grid {
		return fmt.Errorf("insight: similarity matrix has %d values, expected %d (%d positions squared)", len(sim), grid*grid*grid*grid, grid*grid)
	}
	lo, hi, err := valueRange("similarity", sim)
	if err != nil {
		return err
	}
	cm := NewViridis(lo, hi)
	units := float64(grid) + float64(grid-1)*posSimGap
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = 10
	p.Title.TextStyle.Font.Size = 13
	p.X.Label.Text = "Input patch column"
	p.Y.Label.Text = "Input patch row"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, units, 0, units
	var xt, yt []plot.Tick
	for k := 0; k < grid; k++ {
		c := float64(k)*(1+posSimGap) + 0.5
		xt = append(xt, plot.Tick{Value: c, Label: strconv.Itoa(k + 1)})
		yt = append(yt, plot.Tick{Value: units - c, Label: strconv.Itoa(k + 1)})
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.ConstantTicks(xt), plot.ConstantTicks(yt)

	const width, height, barW, gap = 560, 500, 80, 12
	return render(w, width, height, func(c draw.Canvas) error {
		main := draw.Crop(c, 0, -(barW + gap), 0, 0)
		// Make the data area square: shrink the plot by the excess of its
		// data area's width over its height (or the other way round).
		da := p.DataCanvas(main)
		dw, dh := da.Max.X-da.Min.X, da.Max.Y-da.Min.Y
		if dw > dh {
			main = draw.Crop(main, 0, -(dw - dh), 0, 0)
		} else {
			main = draw.Crop(main, 0, 0, dh-dw, 0)
		}
		da = p.DataCanvas(main)
		side := min(da.Max.X-da.Min.X, da.Max.Y-da.Min.Y)
		if side <= 0 {
			return fmt.Errorf("insight: the picture is too small for a %d×%d grid", grid, grid)
		}
		p.Add(plotter.NewImage(posSimRaster(sim, grid, dots(side), cm), 0, 0, units, units))
		p.Draw(main)
		bar := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: main.Max.X + gap, Y: da.Min.Y},
			Max: vg.Point{X: main.Max.X + gap + barW, Y: da.Max.Y},
		}}
		cb := colorBar(lo, hi, "Cosine similarity")
		cb.Draw(bar)
		return nil
	})
}

// AttentionFigure is what WriteAttention draws.
type AttentionFigure struct {
	Title    string    // drawn at the top (e.g. the file and the prediction)
	Image    []float32 // the input as the model sees it: Channels×Size×Size in [0,1]
	Channels int       // 1 or 3
	Size     int
	Grid     int         // patches per side
	Rollout  []float64   // Grid² values: the class token's rollout over the patches (ClassRow)
	Layers   [][]float64 // optional: per block, Grid² values of class-token attention (ClassAttention)
}

// inputRaster draws the C×S×S image at px×px, nearest neighbour.
func inputRaster(pix []float32, ch, s, px int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, px, px))
	plane := s * s
	b := func(v float32) uint8 { return uint8(math.Round(255 * math.Max(0, math.Min(1, float64(v))))) }
	for y := 0; y < px; y++ {
		sy := min(y*s/px, s-1)
		for x := 0; x < px; x++ {
			o := sy*s + min(x*s/px, s-1)
			if ch == 3 {
				img.SetNRGBA(x, y, color.NRGBA{b(pix[o]), b(pix[plane+o]), b(pix[2*plane+o]), 255})
			} else {
				v := b(pix[o])
				img.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
			}
		}
	}
	return img
}

// heatRaster draws grid×grid values at px×px in the colour map: nearest
// neighbour (each patch a square), or smooth (bilinear between patch
// centres, edges clamped).
func heatRaster(vals []float64, grid, px int, cm *Viridis, smooth bool) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, px, px))
	at := func(r, c int) float64 { return vals[min(max(r, 0), grid-1)*grid+min(max(c, 0), grid-1)] }
	for y := 0; y < px; y++ {
		for x := 0; x < px; x++ {
			var v float64
			if smooth {
				u := (float64(x)+0.5)*float64(grid)/float64(px) - 0.5
				t := (float64(y)+0.5)*float64(grid)/float64(px) - 0.5
				c0, r0 := int(math.Floor(u)), int(math.Floor(t))
				fu, ft := u-float64(c0), t-float64(r0)
				v = (1-ft)*((1-fu)*at(r0, c0)+fu*at(r0, c0+1)) + ft*((1-fu)*at(r0+1, c0)+fu*at(r0+1, c0+1))
			} else {
				v = at(y*grid/px, x*grid/px)
			}
			img.SetNRGBA(x, y, cm.Norm(v))
		}
	}
	return img
}

// blend mixes b over a with weight alpha.
func blend(a, b *image.NRGBA, alpha float64) *image.NRGBA {
	out := image.NewNRGBA(a.Rect)
	for i := range out.Pix {
		if i%4 == 3 {
			out.Pix[i] = 255
			continue
		}
		out.Pix[i] = uint8(math.Round((1-alpha)*float64(a.Pix[i]) + alpha*float64(b.Pix[i])))
	}
	return out
}

// WriteAttention draws the input image, the class token's attention
// rollout over the patch grid (a heat map with a colour bar), and the
// rollout upsampled (bilinear) and overlaid on the image; with f.Layers,
// also each block's own class-token attention, each map scaled to its own
// maximum.
func WriteAttention(w io.Writer, f AttentionFigure) error {
	if f.Channels != 1 && f.Channels != 3 {
		return fmt.Errorf("insight: image of %d channels, expected 1 or 3", f.Channels)
	}
	if f.Size < 1 || len(f.Image) != f.Channels*f.Size*f.Size {
		return fmt.Errorf("insight: image has %d values, expected %d (%d×%d×%d)", len(f.Image), f.Channels*f.Size*f.Size, f.Channels, f.Size, f.Size)
	}
	if f.Grid < 1 || len(f.Rollout) != f.Grid*f.Grid {
		return fmt.Errorf("insight: rollout has %d values, expected %d (a %d×%d patch grid)", len(f.Rollout), f.Grid*f.Grid, f.Grid, f.Grid)
	}
	_, hi, err := valueRange("rollout", f.Rollout)
	if err != nil {
		return err
	}
	if hi <= 0 {
		hi = 1
	}
	layerMax := make([]float64, len(f.Layers))
	for l, m := range f.Layers {
		if len(m) != f.Grid*f.Grid {
			return fmt.Errorf("insight: block %d map has %d values, expected %d", l, len(m), f.Grid*f.Grid)
		}
		if _, layerMax[l], err = valueRange(fmt.Sprintf("block %d attention", l), m); err != nil {
			return err
		}
		if layerMax[l] <= 0 {
			layerMax[l] = 1
		}
	}

	const (
		margin, panel, gap, barW = 16, 180, 16, 72
		titleH, labelH, headingH = 26, 18, 22
		perRow                   = 6
		smallGap                 = 8
	)
	width := vg.Length(margin + 3*panel + 3*gap + barW + margin)
	height := vg.Length(margin + titleH + labelH + panel + margin)
	nl := len(f.Layers)
	var small vg.Length
	rows := 0
	if nl > 0 {
		cols := min(nl, perRow)
		rows = (nl + cols - 1) / cols
		small = (width - 2*margin - vg.Length(cols-1)*smallGap) / vg.Length(cols)
		small = min(small, panel)
		height += vg.Length(headingH) + vg.Length(rows)*(labelH+small+smallGap)
	}
	cm := NewViridis(0, hi)
	return render(w, width, height, func(c draw.Canvas) error {
		top := height - margin
		fillText(c, 13, width/2, top, f.Title)
		top -= titleH
		px := dots(panel)
		input := inputRaster(f.Image, f.Channels, f.Size, px)
		heat := heatRaster(f.Rollout, f.Grid, px, cm, false)
		overlay := blend(input, heatRaster(f.Rollout, f.Grid, px, cm, true), 0.55)
		labels := []string{"input (as the model sees it)", "attention rollout", "rollout over the input"}
		for i, img := range []image.Image{input, heat, overlay} {
			x := vg.Length(margin + i*(panel+gap))
			fillText(c, 11, x+panel/2, top, labels[i])
			c.DrawImage(vg.Rectangle{Min: vg.Point{X: x, Y: top - labelH - panel}, Max: vg.Point{X: x + panel, Y: top - labelH}}, img)
		}
		bar := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: vg.Length(margin + 3*(panel+gap)), Y: top - labelH - panel},
			Max: vg.Point{X: vg.Length(margin+3*(panel+gap)) + barW, Y: top - labelH},
		}}
		colorBar(0, hi, "share of class-token input").Draw(bar)
		top -= labelH + panel + margin
		if nl == 0 {
			return nil
		}
		fillText(c, 11, width/2, top, "class-token attention of each block alone (mean over heads; each map scaled to its own maximum)")
		top -= headingH
		cols := min(nl, perRow)
		spx := dots(small)
		for l, m := range f.Layers {
			r, k := l/cols, l%cols
			x := vg.Length(margin) + vg.Length(k)*(small+smallGap)
			y := top - vg.Length(r)*(labelH+small+smallGap)
			fillText(c, 10, x+small/2, y, fmt.Sprintf("block %d", l+1))
			img := heatRaster(m, f.Grid, spx, NewViridis(0, layerMax[l]), false)
			c.DrawImage(vg.Rectangle{Min: vg.Point{X: x, Y: y - labelH - small}, Max: vg.Point{X: x + small, Y: y - labelH}}, img)
		}
		return nil
	})
}

// WriteCurves draws the loss and the accuracy per epoch, train, validation
// (when every epoch has it) and test, in two panels.
func WriteCurves(w io.Writer, epochs []Epoch, title string) error {
	if len(epochs) == 0 {
		return fmt.Errorf("insight: no epochs to draw")
	}
	val := true
	for _, e := range epochs {
		val = val && e.HasVal
	}
	loss := []curve{{"train", series(epochs, func(e Epoch) float64 { return e.TrainLoss })}}
	acc := []curve{{"train", series(epochs, func(e Epoch) float64 { return 100 * e.TrainAcc })}}
	if val {
		loss = append(loss, curve{"validation", series(epochs, func(e Epoch) float64 { return e.ValLoss })})
		acc = append(acc, curve{"validation", series(epochs, func(e Epoch) float64 { return 100 * e.ValAcc })})
	}
	loss = append(loss, curve{"test", series(epochs, func(e Epoch) float64 { return e.TestLoss })})
	acc = append(acc, curve{"test", series(epochs, func(e Epoch) float64 { return 100 * e.TestAcc })})
	return writePanels(w, title, epochTicks(epochs),
		panelSpec{"Loss", "cross-entropy", true, loss}, panelSpec{"Accuracy", "accuracy (%)", false, acc})
}

// Run is one training run's metrics, named for a legend.
type Run struct {
	Name   string
	Epochs []Epoch
}

// WriteComparison draws the test loss and the test accuracy per epoch of
// several runs, one line each, in two panels.
func WriteComparison(w io.Writer, runs []Run, title string) error {
	if len(runs) == 0 {
		return fmt.Errorf("insight: no runs to draw")
	}
	var loss, acc []curve
	longest := runs[0].Epochs
	for _, r := range runs {
		if len(r.Epochs) == 0 {
			return fmt.Errorf("insight: run %q has no epochs", r.Name)
		}
		if len(r.Epochs) > len(longest) {
			longest = r.Epochs
		}
		loss = append(loss, curve{r.Name, series(r.Epochs, func(e Epoch) float64 { return e.TestLoss })})
		acc = append(acc, curve{r.Name, series(r.Epochs, func(e Epoch) float64 { return 100 * e.TestAcc })})
	}
	return writePanels(w, title, epochTicks(longest),
		panelSpec{"Test loss", "cross-entropy", true, loss}, panelSpec{"Test accuracy", "accuracy (%)", false, acc})
}

// curve is one named line of a panel.
type curve struct {
	name string
	xy   plotter.XYs
}

// panelSpec is one panel of writePanels.
type panelSpec struct {
	name, ylabel string
	legendTop    bool
	curves       []curve
}

func series(epochs []Epoch, get func(Epoch) float64) plotter.XYs {
	xy := make(plotter.XYs, len(epochs))
	for i, e := range epochs {
		xy[i].X, xy[i].Y = float64(e.Epoch), get(e)
	}
	return xy
}

// epochTicks labels every epoch up to 20 epochs (nil: gonum's ticks).
func epochTicks(epochs []Epoch) []plot.Tick {
	var ticks []plot.Tick
	if last := epochs[len(epochs)-1].Epoch; last <= 20 {
		for e := 1; e <= last; e++ {
			ticks = append(ticks, plot.Tick{Value: float64(e), Label: strconv.Itoa(e)})
		}
	}
	return ticks
}

// palette of the curves, in order; the first dashes and glyphs follow it.
var curveColors = []color.Color{color.NRGBA{0x1f, 0x77, 0xb4, 255}, color.NRGBA{0xd6, 0x5f, 0x0e, 255},
	color.NRGBA{0x2c, 0xa0, 0x2c, 255}, color.NRGBA{0x94, 0x67, 0xbd, 255}}

// writePanels draws panels side by side under a title.
func writePanels(w io.Writer, title string, ticks []plot.Tick, specs ...panelSpec) error {
	var plots []*plot.Plot
	for _, sp := range specs {
		p := plot.New()
		p.Title.Text = sp.name
		p.X.Label.Text = "epoch"
		p.Y.Label.Text = sp.ylabel
		if ticks != nil {
			p.X.Tick.Marker = plot.ConstantTicks(ticks)
		}
		p.Add(plotter.NewGrid())
		p.Legend.Top = sp.legendTop
		for i, cv := range sp.curves {
			l, pts, err := plotter.NewLinePoints(cv.xy)
			if err != nil {
				return fmt.Errorf("insight: %s %s: %v", cv.name, sp.name, err)
			}
			col := curveColors[i%len(curveColors)]
			l.Color, pts.Color = col, col
			l.Width = vg.Points(1.5)
			pts.Shape = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PlusGlyph{}}[i%4]
			if i%2 == 1 {
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			}
			pts.Radius = vg.Points(2.5)
			if len(cv.xy) > 40 {
				pts.Radius = vg.Points(1)
			}
			p.Add(l, pts)
			p.Legend.Add(cv.name, l, pts)
		}
		plots = append(plots, p)
	}
	const width, height, titleH = 760, 330, 26
	return render(w, width, height, func(c draw.Canvas) error {
		body := c
		if title != "" {
			fillText(c, 13, width/2, height-8, title)
			body = draw.Crop(c, 0, 0, 0, -titleH)
		}
		tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: 24, PadLeft: 8, PadRight: 12, PadTop: 8, PadBottom: 8}
		for i, p := range plots {
			p.Draw(tiles.At(body, i, 0))
		}
		return nil
	})
}
