// Package layers holds the layers of a Vision Transformer, one type per
// layer, with timm's parameter names, built on the differentiable ops of
// package ops.
//
// A layer is a noun: a struct that holds its parameters (Gorgonia nodes)
// and its options, and nothing else. Its constructor, NewX(s, name, ...),
// creates the parameters in a Scope under name, with the names of timm's
// state dict ("blocks.0.attn.qkv.weight"), so that weights map to the
// reference implementations by name. Its Forward method adds the layer's
// computation to the graph and returns the new nodes: it stores no result,
// so one layer can be applied to several inputs, and the caller's own nodes
// can sit beside it.
//
// Start with Scope: NewScope(g, prefix, dtype, seed) gives the root scope of
// a model in graph g. Sub names a child scope, Param creates one learnable
// tensor (refusing a name that already exists), and Params lists every
// parameter created, in creation order, with its name and whether weight
// decay applies to it (WeightDecay: Decay or NoDecay). Creation draws from
// the scope's one seeded generator, so a seed and a creation order give the
// same weights every time; ShareValues makes a second graph use the tensors
// of a first.
//
// # Layers
//
//   - Linear (linear.go): y = x·Wᵀ + b; "weight" (out, in), "bias" (out)
//     unless NoBias (BiasTerm).
//   - LayerNorm (layernorm.go): normalisation over the last axis with a
//     learnable scale and shift; "weight", "bias".
//   - GELU (gelu.go): the MLP's activation, exact or tanh; no parameters.
//   - Dropout (dropout.go): dropout, or with PerSample stochastic depth
//     (DropPath), driven by an ops.Noise; no parameters.
//   - Attention (attention.go): multi-head self-attention; "qkv" and "proj"
//     Linear layers. Forward also returns the attention probabilities.
//   - MLP (mlp.go): fc1, GELU, dropout, fc2, dropout; "fc1" and "fc2".
//   - Block (block.go): the pre-norm encoder block, x + Attn(Norm1(x)) then
//     x + MLP(Norm2(x)), each branch with DropPath; "norm1", "attn",
//     "norm2", "mlp", sized by a BlockConfig.
//   - PatchEmbed (patch_embed.go): P×P patches projected to D features, a
//     convolution of stride P; "proj.weight" (D, C, P, P), "proj.bias".
//
// Initialisers (init.go) fill new parameters: TruncNormal, Normal and
// Constant are Init functions for Scope.Param.
//
// # Composing a model
//
// A model creates its layers in one scope, in its state dict's order, and
// chains their Forward methods; the class token and positional embedding are
// plain Scope.Param tensors that ops.TokenEmbed joins to the patches, and
// ops.Pool takes the features. The package example (example_test.go) builds
// and runs a one-block ViT this way; package model's ViT is the full one
// (model/vit.go). Scope.Params then lists the model's parameters, by name,
// for the optimiser and for saving. Errors are wrapped once per layer with
// the layer's path.
package layers
