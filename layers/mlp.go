package layers

import (
	G "gorgonia.org/gorgonia"
)

// MLP is fc1, GELU, dropout, fc2, dropout.
type MLP struct {
	FC1, FC2 *Linear
	Act      GELU
	Drop     Dropout
}

// NewMLP creates name.fc1 and name.fc2 in s.
func NewMLP(s *Scope, name string, dim, hidden int, act GELU, drop Dropout) (*MLP, error) {
	sc := s.Sub(name)
	fc1, err := NewLinear(sc, "fc1", dim, hidden, WithBias)
	if err != nil {
		return nil, err
	}
	fc2, err := NewLinear(sc, "fc2", hidden, dim, WithBias)
	if err != nil {
		return nil, err
	}
	return &MLP{FC1: fc1, FC2: fc2, Act: act, Drop: drop}, nil
}

// Forward maps (..., D) to (..., D).
func (m *MLP) Forward(x *G.Node) (*G.Node, error) {
	h, err := m.FC1.Forward(x) // (..., hidden)
	if err != nil {
		return nil, err
	}
	if h, err = m.Act.Forward(h); err != nil {
		return nil, err
	}
	if h, err = m.Drop.Forward(h); err != nil {
		return nil, err
	}
	if h, err = m.FC2.Forward(h); err != nil { // (..., D)
		return nil, err
	}
	return m.Drop.Forward(h)
}
