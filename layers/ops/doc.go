// Package ops holds the differentiable Gorgonia ops a Vision Transformer is
// made of. Each function below adds one node to a graph (and, through
// gorgonia.Grad, the nodes of its backward pass); a tape machine runs them
// like Gorgonia's own ops. They replace Gorgonia's built-ins where those are
// wrong or slow in v0.9.18: its SoftMax returns NaN on large logits, its
// InverseSqrt and Dropout gradients are wrong, and its broadcasts and
// transposes copy whole tensors.
//
// Start with Linear, LayerNorm and Attention, the ops of a transformer
// block; package layers wraps them, with their parameters, into the layers
// of a ViT. Read "The op contract" below before writing an op of your own or
// calling ShareBuffers.
//
// # Ops
//
// Shapes are row-major; B is the batch, N the tokens, D the features, H the
// heads. "Backward" is what SymDiff adds to the graph.
//
//   - Linear(x, w, b): y = x·Wᵀ + b over the last axis, x (..., in), W (out,
//     in) as PyTorch stores it, b (out) or nil, added row by row or inside
//     the GEMM (never broadcast into a copy). Backward: dx = dy·W,
//     dW = dyᵀ·x, db = dy summed over the rows. (linear.go)
//   - LayerNorm(x, gamma, beta, eps): y = (x − mean)/√(var + eps)·γ + β over
//     the last axis, biased variance, as PyTorch. Backward: dx = rstd·(g −
//     mean(g) − x̂·mean(g·x̂)) with g = dy·γ, dγ = Σ dy·x̂, dβ = Σ dy over the
//     rows. In float32 the forward keeps each row's mean and 1/σ for the
//     backward; float64 recomputes them. (layernorm.go)
//   - GELU(x, form): x·Φ(x) (GELUExact) or its tanh approximation
//     (GELUTanh), element-wise. Backward: dy·GELU′(x) of that form.
//     (gelu.go)
//   - AttentionProbs(qkv, H): P (B, H, N, N) = softmax(Q·Kᵀ/√Dh) per row,
//     stable (each row subtracts its own maximum), from the fused projection
//     qkv (B, N, 3·D). Backward: dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ =
//     dS·K/√Dh and dK = dSᵀ·Q/√Dh into the q and k slots of dqkv.
//   - AttentionApply(P, qkv, H): O (B, N, D), head h's columns = P[b,h]·V.
//     Backward: dP = dO·Vᵀ, and dV = Pᵀ·dO into the v slots of dqkv.
//   - Attention(qkv, H): P and O of the two ops above with one fused
//     backward that writes all of dqkv at once. (attention.go, which also
//     describes the qkv layout: q, k and v are read in place, never
//     transposed or copied.)
//   - Add(a, b): a + b, the residual connection. Backward: dy to both.
//     (add.go)
//   - Patchify(x, p): images (B, C, H, W) → patches (B, N, C·p·p), the
//     input of the patch embedding. Backward: the adjoint, patches back into
//     images. (patch.go)
//   - TokenEmbed(x, cls, pos): prepends the class token (1, 1, D) and adds
//     the positional embedding (1, N+1, D): (B, N, D) → (B, N+1, D).
//     Backward: dx = rows 1..N of dy, dcls and dpos = dy summed over the
//     batch. (tokens.go)
//   - Pool(x, pooling): tokens (B, T, D) → (B, D), the class token
//     (PoolClassToken) or the mean of the patch tokens (PoolMean).
//     Backward: dy spread back over the tokens pooled. (tokens.go)
//   - Dropout(x, p, unit, noise): inverted dropout of elements
//     (DropElements) or of whole samples (DropSamples, stochastic depth)
//     while noise is training, the identity otherwise; the masks are a pure
//     function of the Noise's seed and step. Backward: dy times the forward
//     pass's mask. (dropout.go)
//   - CrossEntropy(logits, target): the batch mean of −Σ t·log softmax(z)
//     for targets (B, K) that are one-hot or smoothed, stable per row.
//     Backward: dL·(softmax(z)·Σt − t)/B to the logits only. (xent.go)
//
// ShareBuffers(g, keep...) plans the memory of a finished graph (share.go);
// BLAS names the matrix-multiply library of this build: this module's SGEMM
// (package sgemm) by default, OpenBLAS with -tags openblas (gemm.go,
// blas_*.go).
//
// # The op contract
//
// What every op of this package does, and what a new one must do.
//
// Inputs are read, never written, and nothing is aliased. Do returns a
// tensor of the op's own: no op returns a view of an input or writes over
// one (ReturnsPtr false, OverwritesInput −1, CallsExtern false), and none
// implements Gorgonia's UnsafeDoer, UsePreallocDoer or IncrDoer, so
// Gorgonia never asks an op to compute in place or into a buffer of its
// choosing. Inputs may be views: Do materialises them.
//
// Outputs are kept. Each application of an op owns one output slot: Do
// writes into the tensor it returned on the previous run (same dtype and
// shape) instead of allocating one, so a training step allocates almost
// nothing. Gorgonia's tape machine keeps no reference to an op's result
// beyond the run and never pools it, so this is safe; but a value read after
// a run is overwritten by the next run of the same graph: copy what must
// outlive it. An op whose computation writes every element asks for its
// output unzeroed (output); one that accumulates or leaves elements unset
// asks for it zeroed (zeroed), since a kept or shared buffer holds old
// values.
//
// An op is a struct that embeds base, made with newBase(name, ranks...):
// base answers Arity, Type (a → … → a over one float type, with the input
// and output ranks), ReturnsPtr, CallsExtern, OverwritesInput, String,
// WriteHash and Hashcode. The name must spell out every parameter: it is the
// hash, and Gorgonia merges two applications of ops with the same hash to
// the same inputs into one node (a Dropout's name carries an id of its own,
// so that two dropouts are never merged). The op then implements:
//
//   - InferShape, as infer(ds, rule), rule returning the output shape or an
//     error naming the op ("ops.Name: ...");
//   - Do, as run(op, vs, fooDo[float32], fooDo[float64]), fooDo being one
//     generic function over the element type that calls the kernels;
//   - for an op with a gradient: DiffWRT, accepting any arity (allDiff), and
//     SymDiff, which builds the gradient from further ops of this package
//     (gradNode, oneGrad), never from Gorgonia's. The backward ops implement
//     Op only. No op implements ADOp (DoDiff): graphs are differentiated
//     with gorgonia.Grad and run by a tape machine, not by the LispMachine.
//
// float32 and float64. Every op takes inputs of one dtype, float32 or
// float64. float32 is the path that trains and infers: AVX2/FMA kernels
// (packages sgemm and vec), and sums over rows in float32 blocks added in
// float64 in a fixed order, so results do not depend on the number of
// cores. float64 is the reference path: plain Go and gonum's BLAS, with the
// textbook formulas (math.Erf, LayerNorm statistics recomputed). The
// gradient checks run in float64, and TestFloat32KernelsMatchFloat64 checks
// the float32 path against it.
//
// Buffer sharing. ShareBuffers(g, keep...) lets ops of this package whose
// outputs are never alive at the same time write into one buffer, as a
// register allocator does: the backward pass's gradients, as large as the activations, are
// each dead a few instructions after they are written. An output is alive
// from the instruction that writes it to the last one that reads it, or
// reads a value that may alias it (a Gorgonia op that returns a view of an
// input, such as Reshape, or overwrites one); liveness follows the order a
// tape machine runs the graph in. Two outputs of the same dtype share a
// buffer only when their lives do not overlap. Outputs that nothing reads
// are alive to the end of the run; so are those passed in keep, which must
// therefore list every node whose value the caller reads after a run
// (logits, loss, features, attention maps...): any other intermediate value
// may have been overwritten by then. Call ShareBuffers once the graph,
// gradient included, is complete; run the graph with G.NewTapeMachine and
// do not change it afterwards.
//
// Gradient check. Every op with a gradient is covered by a central
// finite-difference check in float64, which also checks its backward ops
// (package gradcheck): gradcheck.Assert builds cost = Σ out ⊙ R for a fixed random R, and compares Gorgonia's
// gradient of every input with (f(x+ε) − f(x−ε))/2ε, failing on a
// relative error above the tolerance (1e-6 or less for the ops here) or on an
// input whose gradient is identically zero. Ops with randomness freeze
// their masks for the check (Noise.Freeze). A new op gets such a test in
// the same change.
package ops
