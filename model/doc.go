// Package model is the Vision Transformer of "An Image is Worth 16x16
// Words" (Dosovitskiy et al., 2020) as nodes of a Gorgonia graph, its
// weights in safetensors files, and a classifier that runs it on images.
//
// # Where to start
//
//   - To classify images with a checkpoint written by cmd/train:
//     LoadClassifier, then Classifier.Classify (or Evaluate on a labelled
//     set, Explain for the attention).
//   - To build a model: a Config (Preset names the paper's models and small
//     ones), then New(g, cfg) in your own graph; Forward gives logits,
//     Features the pooled features for a head of your own, ForwardAll every
//     block's attention too. NewInput makes an image input node.
//   - To read weights: Open rebuilds a model from a file this package wrote;
//     ViT.LoadWeights reads timm's, torchvision's and Hugging Face's names
//     into a model you built. ReadFile is the one reader under both.
//
// Training is package train; images become tensors in package
// model/preprocess; the layers and ops are packages layers and layers/ops.
//
// # The paper's equations in the forward pass
//
// ViT.ForwardAll is the paper's Eqs. 1–4, marked in its comments:
//
//	(1) z₀ = [x_class; x¹E; …; xᴺE] + E_pos     PatchEmbed.Forward (patches xⁱ, flattened, times E),
//	                                              then ops.TokenEmbed (prepend ClsToken, add PosEmbed)
//	(2) z'ℓ = MSA(LN(zℓ₋₁)) + zℓ₋₁, ℓ = 1…L     Blocks[ℓ−1].Forward: Norm1, Attn, residual
//	(3) zℓ = MLP(LN(z'ℓ)) + z'ℓ                  the same block: Norm2, MLP, residual
//	(4) y = LN(z_L⁰)                            ops.Pool (the class token), then Norm
//	    logits = y·W_headᵀ + b                  Head
//
// E is patch_embed.proj (D, C, P, P), a P×P convolution of stride P; E_pos
// is pos_embed (1, N+1, D); MSA is softmax(QKᵀ/√(D/heads))·V per head.
// Config.Pool = PoolMean takes the mean of the patch tokens instead of the
// class token (timm's fc_norm).
//
// # Files
//
// SaveWeights writes safetensors under timm's names, with the Config in the
// metadata (MetaConfig) and a SHA-256 checksum (MetaChecksum); atomically.
// A training checkpoint adds tensors named ExtraPrefix… and metadata of its
// own, and still opens as weights. The metadata keys of this package
// (MetaConfig, MetaClasses, MetaNormalization, MetaFormat, MetaChecksum)
// are declared once, here.
//
// Errors start with "model:". A missing file satisfies errors.Is(err,
// fs.ErrNotExist); a damaged one ErrChecksum or ErrFormat; plain weights
// without a config ErrNoConfig.
package model
