package insight

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot/palette"
)

// viridisAnchors are matplotlib's viridis colour map (van der Walt and
// Smith, 2015) sampled at ten evenly spaced points, 0, 1/9, …, 1 — the
// published ten-colour viridis palette #440154 … #FDE725.
var viridisAnchors = [...][3]uint8{
	{0x44, 0x01, 0x54},
	{0x48, 0x28, 0x78},
	{0x3E, 0x4A, 0x89},
	{0x31, 0x68, 0x8E},
	{0x26, 0x82, 0x8E},
	{0x1F, 0x9E, 0x89},
	{0x35, 0xB7, 0x79},
	{0x6D, 0xCD, 0x59},
	{0xB4, 0xDE, 0x2C},
	{0xFD, 0xE7, 0x25},
}

// viridis returns the colour of t in [0,1] (clamped; NaN is gray),
// interpolating linearly between the anchors.
func viridis(t float64) color.NRGBA {
	if math.IsNaN(t) {
		return color.NRGBA{128, 128, 128, 255}
	}
	t = math.Max(0, math.Min(1, t))
	x := t * float64(len(viridisAnchors)-1)
	i := int(x)
	if i >= len(viridisAnchors)-1 {
		i = len(viridisAnchors) - 2
	}
	f := x - float64(i)
	a, b := viridisAnchors[i], viridisAnchors[i+1]
	mix := func(p, q uint8) uint8 { return uint8(math.Round(float64(p)*(1-f) + float64(q)*f)) }
	return color.NRGBA{mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2]), 255}
}

// Viridis is the viridis colour map over [Min, Max] as a
// gonum.org/v1/plot/palette.ColorMap (for plotter.ColorBar and
// plotter.HeatMap).
type Viridis struct {
	min, max, alpha float64
}

var _ palette.ColorMap = (*Viridis)(nil)

// NewViridis returns the viridis map over [min, max], opaque.
func NewViridis(min, max float64) *Viridis { return &Viridis{min: min, max: max, alpha: 1} }

// At returns the colour of v, or an error if v is outside [Min, Max] or the
// range is empty.
func (v *Viridis) At(x float64) (color.Color, error) {
	if !(v.max > v.min) {
		return nil, fmt.Errorf("insight: viridis range [%v, %v] is empty", v.min, v.max)
	}
	if !(x >= v.min && x <= v.max) {
		return nil, fmt.Errorf("insight: value %v outside the colour map's range [%v, %v]", x, v.min, v.max)
	}
	c := viridis((x - v.min) / (v.max - v.min))
	c.A = uint8(math.Round(255 * v.alpha))
	return c, nil
}

// Norm returns the colour of x clamped to the range (NaN gray), for
// drawing rasters without error handling.
func (v *Viridis) Norm(x float64) color.NRGBA {
	if !(v.max > v.min) {
		return viridis(0.5)
	}
	return viridis((x - v.min) / (v.max - v.min))
}

func (v *Viridis) Max() float64     { return v.max }
func (v *Viridis) SetMax(x float64) { v.max = x }
func (v *Viridis) Min() float64     { return v.min }
func (v *Viridis) SetMin(x float64) { v.min = x }
func (v *Viridis) Alpha() float64   { return v.alpha }

// SetAlpha sets the opacity, clamped to [0, 1].
func (v *Viridis) SetAlpha(a float64) { v.alpha = math.Max(0, math.Min(1, a)) }

// Palette returns n colours evenly spaced over the map.
func (v *Viridis) Palette(n int) palette.Palette {
	cs := make([]color.Color, max(n, 0))
	for i := range cs {
		t := 0.0
		if n > 1 {
			t = float64(i) / float64(n-1)
		}
		cs[i] = viridis(t)
	}
	return colors(cs)
}

type colors []color.Color

func (c colors) Colors() []color.Color { return c }
