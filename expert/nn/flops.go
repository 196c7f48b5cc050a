package nn

// FLOPs returns the floating-point operations of Bind and of one Velocity evaluation for one
// chunk whose condition has the given number of embedding tokens, counted analytically: a
// multiply-add is 2 operations, and only matrix products and attention are counted (layer norms,
// activations and modulation add a few percent at the reference sizes).
func (m *MLP) FLOPs(tokens int) (bind, velocity int64) {
	c := m.cfg
	hd, w, tw, cw := int64(c.H*c.D), int64(c.Hidden), int64(c.TimeWidth), int64(c.CondWidth)
	L := int64(c.Layers)
	bind = 2 * (int64(c.Embed+c.State)*cw + L*2*cw*w)
	velocity = 2 * (int64(c.TimeFeatures)*tw + tw*tw + (hd+int64(c.H))*w + L*(2*tw*w+w*w) + w*hd)
	return bind, velocity
}

// FLOPs returns the floating-point operations of Bind and of one Velocity evaluation for one
// chunk whose condition has the given number of embedding tokens (see MLP.FLOPs).
func (m *Transformer) FLOPs(tokens int) (bind, velocity int64) {
	c := m.cfg
	w, T, tk, L := int64(c.Width), int64(c.H+1), int64(tokens), int64(c.Layers)
	rw := int64(c.MLPRatio) * w
	timeAndMods := 2 * (int64(c.TimeFeatures)*w + w*w + (9*L+2)*w*w)
	bind = 2*int64(c.State)*w + L*2*2*tk*int64(c.Embed)*w + timeAndMods
	perLayer := 2*4*T*w*w + 2*2*T*T*w + // self-attention projections and attention
		2*2*T*w*w + 2*2*T*tk*w + // cross-attention query and output projections and attention
		2*2*T*w*rw // MLP
	velocity = timeAndMods + 2*int64(c.H*c.D)*w + L*perLayer + 2*int64(c.H)*w*int64(c.D)
	return bind, velocity
}
