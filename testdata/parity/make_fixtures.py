#!/usr/bin/python3
"""Generate PyTorch reference fixtures for the Go ViT parity tests.

Run from the repository root:

    /usr/bin/python3 testdata/parity/make_fixtures.py

All outputs are written next to this script (testdata/parity/).  The script is
deterministic: fixed seeds, a single CPU thread, float32 everywhere, and the
safetensors files are written by hand (no `safetensors` package needed) with a
stable tensor order, so re-running it produces byte-identical files.

Outputs
  vit_torchvision.safetensors  weights under torchvision's state_dict names
  vit_timm.safetensors         the same weights under timm names (+ {"format": "pt"})
  vit_hf.safetensors           the same weights under Hugging Face ViTForImageClassification names
  io.safetensors               input batch, logits, pre-head features, attention probs
  pos_resize.safetensors       bicubic positional-embedding resampling cases
  VERSIONS.txt                 tool versions and the exact command
"""

import json
import math
import os
import platform
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.vision_transformer import VisionTransformer

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(OUT_DIR))  # testdata/, for fixturelib

# ----------------------------------------------------------------------------
# Model configuration (kept tiny so every file stays well under 200 KB).
# ----------------------------------------------------------------------------
IMAGE_SIZE = 16
PATCH_SIZE = 4
NUM_LAYERS = 2
NUM_HEADS = 4
HIDDEN_DIM = 32
MLP_DIM = 64
NUM_CLASSES = 5
IN_CHANNELS = 3
BATCH = 3
GRID = IMAGE_SIZE // PATCH_SIZE          # 4
NUM_TOKENS = GRID * GRID + 1             # 17 (class token first)
HEAD_DIM = HIDDEN_DIM // NUM_HEADS       # 8
LN_EPS = 1e-6                            # torchvision's default LayerNorm eps

torch.manual_seed(0)
torch.set_num_threads(1)


from fixturelib import read_safetensors, split_qkv, torchvision_to_hf, torchvision_to_timm, write_safetensors

# ----------------------------------------------------------------------------
# 1. Build the torchvision model and give every parameter non-trivial values.
# ----------------------------------------------------------------------------
model = VisionTransformer(
    image_size=IMAGE_SIZE,
    patch_size=PATCH_SIZE,
    num_layers=NUM_LAYERS,
    num_heads=NUM_HEADS,
    hidden_dim=HIDDEN_DIM,
    mlp_dim=MLP_DIM,
    num_classes=NUM_CLASSES,
    dropout=0.0,
    attention_dropout=0.0,
).float()
model.eval()

# torchvision zero-initialises class_token, head weight/bias and conv bias, and
# uses ~1e-6 MLP biases; none of that would catch a wiring bug. Overwrite all
# parameters. We classify each parameter by the module that owns it.
layernorm_params = set()
for mod in model.modules():
    if isinstance(mod, torch.nn.LayerNorm):
        layernorm_params.add(id(mod.weight))
        layernorm_params.add(id(mod.bias))

init_gen = torch.Generator().manual_seed(0)


def randn(shape):
    return torch.randn(shape, generator=init_gen, dtype=torch.float32)


with torch.no_grad():
    for name, p in model.named_parameters():  # deterministic registration order
        if name in ("class_token", "encoder.pos_embedding"):
            p.copy_(0.5 * randn(p.shape))
        elif id(p) in layernorm_params:
            if name.endswith("weight"):
                p.copy_(1.0 + 0.2 * randn(p.shape))
            else:
                p.copy_(0.1 * randn(p.shape))
        elif name.endswith("bias"):  # conv, linear, in_proj, out_proj biases
            p.copy_(0.1 * randn(p.shape))
        elif name == "conv_proj.weight":
            fan_in = p.shape[1] * p.shape[2] * p.shape[3]  # C * P * P
            p.copy_(randn(p.shape) / math.sqrt(fan_in))
        elif p.dim() == 2:  # Linear-like weight (out, in), incl. in_proj_weight (3D, D)
            fan_in = p.shape[1]
            p.copy_(randn(p.shape) / math.sqrt(fan_in))
        else:
            raise RuntimeError(f"unhandled parameter {name} {tuple(p.shape)}")

sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
# Only parameters, no buffers, are expected in this model.
assert set(sd) == {n for n, _ in model.named_parameters()}, "unexpected buffers"

# ----------------------------------------------------------------------------
# 2. Save the weights under three naming conventions.
# ----------------------------------------------------------------------------
tv_names = list(sd.keys())  # torchvision's own order
write_safetensors(
    os.path.join(OUT_DIR, "vit_torchvision.safetensors"),
    [(k, sd[k]) for k in tv_names],
)

D = HIDDEN_DIM

# timm VisionTransformer names, and Hugging Face ViTForImageClassification
# names (q, k, v split out of in_proj).
timm = torchvision_to_timm(sd, NUM_LAYERS)
write_safetensors(os.path.join(OUT_DIR, "vit_timm.safetensors"), timm, metadata={"format": "pt"})

hf = torchvision_to_hf(sd, NUM_LAYERS)
write_safetensors(os.path.join(OUT_DIR, "vit_hf.safetensors"), hf)

# ----------------------------------------------------------------------------
# 3. Run the model on a fixed batch; capture features and attention probs.
# ----------------------------------------------------------------------------
x = torch.randn((BATCH, IN_CHANNELS, IMAGE_SIZE, IMAGE_SIZE), generator=torch.Generator().manual_seed(1234))

captured = {}
hooks = []
for i in range(NUM_LAYERS):
    layer = model.encoder.layers[i]
    # Input to self-attention = output of ln_1.
    hooks.append(layer.ln_1.register_forward_hook(
        lambda m, inp, out, i=i: captured.__setitem__(f"ln1.{i}", out.detach().clone())))
    # nn.MultiheadAttention returns (attn_output, attn_weights=None).
    hooks.append(layer.self_attention.register_forward_hook(
        lambda m, inp, out, i=i: captured.__setitem__(f"sa.{i}", out[0].detach().clone())))
# encoder output = final LayerNorm output, (B, 17, D); token 0 is the class token.
hooks.append(model.encoder.register_forward_hook(
    lambda m, inp, out: captured.__setitem__("enc", out.detach().clone())))

with torch.no_grad():
    logits = model(x)
for hk in hooks:
    hk.remove()

features = captured["enc"][:, 0].contiguous()
with torch.no_grad():
    assert torch.equal(model.heads(features), logits), "features do not feed the head"


def attention_probs(layer, h):
    """Recompute softmax(q k^T / sqrt(head_dim)) and the attention output from
    the ln_1 output h (B, T, D) using the layer's packed in_proj weights."""
    mha = layer.self_attention
    B, T, _ = h.shape
    qkv = h @ mha.in_proj_weight.T + mha.in_proj_bias           # (B, T, 3D)
    q, k, v = qkv.split(D, dim=-1)
    heads = lambda t: t.reshape(B, T, NUM_HEADS, HEAD_DIM).transpose(1, 2)  # (B, H, T, hd)
    q, k, v = heads(q), heads(k), heads(v)
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HEAD_DIM), dim=-1)  # (B, H, Tq, Tk)
    ctx = (probs @ v).transpose(1, 2).reshape(B, T, D)
    out = ctx @ mha.out_proj.weight.T + mha.out_proj.bias
    return probs, out


# Config recorded in io.safetensors' __metadata__ (all values are strings).
IO_META = {
    "image_size": str(IMAGE_SIZE), "patch_size": str(PATCH_SIZE), "num_layers": str(NUM_LAYERS),
    "num_heads": str(NUM_HEADS), "hidden_dim": str(HIDDEN_DIM), "mlp_dim": str(MLP_DIM),
    "num_classes": str(NUM_CLASSES), "layer_norm_eps": "1e-6", "gelu": "exact (erf)",
    "attn_layout": "batch,head,query,key",
}

attn = {}
with torch.no_grad():
    for i in range(NUM_LAYERS):
        probs, out = attention_probs(model.encoder.layers[i], captured[f"ln1.{i}"])
        err = (out - captured[f"sa.{i}"]).abs().max().item()
        print(f"layer {i}: recomputed attention output max |diff| = {err:.3e}")
        assert err < 1e-5, f"attention recomputation mismatch in layer {i}: {err}"
        assert probs.shape == (BATCH, NUM_HEADS, NUM_TOKENS, NUM_TOKENS)
        assert torch.allclose(probs.sum(-1), torch.ones(()), atol=1e-6)
        attn[i] = probs.contiguous()

# Sanity: logits O(1) and layer-0 attention clearly non-uniform (uniform = 1/17).
lmin, lmax = logits.min().item(), logits.max().item()
print(f"logits range [{lmin:.4f}, {lmax:.4f}], std {logits.std().item():.4f}")
for i in range(NUM_LAYERS):
    print(f"attn.{i}: max prob {attn[i].max().item():.4f}, min prob {attn[i].min().item():.2e} (uniform = {1 / NUM_TOKENS:.4f})")
assert 0.1 < logits.abs().max().item() < 20, "logits not O(1)"
assert attn[0].max().item() > 0.3, "layer-0 attention too close to uniform"

write_safetensors(
    os.path.join(OUT_DIR, "io.safetensors"),
    [("input", x), ("logits", logits), ("features", features)]
    + [(f"attn.{i}", attn[i]) for i in range(NUM_LAYERS)],
    metadata=IO_META,
)

# ----------------------------------------------------------------------------
# 4. Positional-embedding resampling (bicubic, align_corners=False, no antialias).
# ----------------------------------------------------------------------------
def resize_pos(pos, new_h, new_w):
    """pos: (1, 1 + g*g, D), class token first then a g x g row-major grid."""
    cls_tok, grid = pos[:, :1], pos[:, 1:]
    g = int(math.isqrt(grid.shape[1]))
    assert g * g == grid.shape[1]
    grid = grid.reshape(1, g, g, D).permute(0, 3, 1, 2)               # (1, D, g, g)
    grid = F.interpolate(grid, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_h * new_w, D)      # row-major (h, w)
    return torch.cat([cls_tok, grid], dim=1).contiguous()


POS_META = {"mode": "bicubic", "align_corners": "false", "antialias": "false",
            "layout": "class token first, then grid rows (height) x cols (width), row-major",
            "cubic_coeff_a": "-0.75"}

src = sd["encoder.pos_embedding"]
with torch.no_grad():
    pos_cases = [
        ("src", src),
        ("dst_6x6", resize_pos(src, 6, 6)),
        ("dst_3x3", resize_pos(src, 3, 3)),
        ("dst_5x7", resize_pos(src, 5, 7)),   # 5 rows (height) x 7 columns (width)
    ]
# Same-size resampling must be the identity (cheap self-check of the reshapes).
assert torch.allclose(resize_pos(src, GRID, GRID), src, atol=1e-6)
write_safetensors(
    os.path.join(OUT_DIR, "pos_resize.safetensors"),
    pos_cases,
    metadata=POS_META,
)

# ----------------------------------------------------------------------------
# 5. VERSIONS.txt
# ----------------------------------------------------------------------------
with open(os.path.join(OUT_DIR, "VERSIONS.txt"), "w") as f:
    f.write(f"python {platform.python_version()}\n")
    f.write(f"torch {torch.__version__}\n")
    f.write(f"torchvision {torchvision.__version__}\n")
    f.write(f"numpy {np.__version__}\n")
    f.write("command: /usr/bin/python3 testdata/parity/make_fixtures.py  (run from the repository root)\n")

# ----------------------------------------------------------------------------
# Verification: read every file back with the independent reader.
# ----------------------------------------------------------------------------
def check_file(fname, expected, meta=None):
    got, got_meta, order = read_safetensors(os.path.join(OUT_DIR, fname))
    assert order == [n for n, _ in expected], f"{fname}: order/names differ"
    assert got_meta == meta, f"{fname}: metadata {got_meta!r} != {meta!r}"
    for name, t in expected:
        a = got[name]
        assert tuple(a.shape) == tuple(t.shape), (fname, name, a.shape, t.shape)
        # Bit-exact round trip.
        assert torch.equal(torch.from_numpy(a.copy()), t), f"{fname}: {name} values differ"
    size = os.path.getsize(os.path.join(OUT_DIR, fname))
    assert size < 200 * 1024, f"{fname} too large ({size} bytes)"
    print(f"OK {fname} ({size} bytes, {len(expected)} tensors)")
    return got


check_file("vit_torchvision.safetensors", [(k, sd[k]) for k in tv_names])
tm_read = check_file("vit_timm.safetensors", timm, meta={"format": "pt"})
hf_read = check_file("vit_hf.safetensors", hf)
io_expected = [("input", x), ("logits", logits), ("features", features)] + [
    (f"attn.{i}", attn[i]) for i in range(NUM_LAYERS)]
check_file("io.safetensors", io_expected, meta=IO_META)
check_file("pos_resize.safetensors", pos_cases, meta=POS_META)

# The three weight files must hold the same numbers (q|k|v re-stack to in_proj).
for i in range(NUM_LAYERS):
    h = f"vit.encoder.layer.{i}.attention.attention."
    for kind in ("weight", "bias"):
        stacked = np.concatenate([hf_read[h + "query." + kind], hf_read[h + "key." + kind],
                                  hf_read[h + "value." + kind]], axis=0)
        assert np.array_equal(stacked, tm_read[f"blocks.{i}.attn.qkv.{kind}"])

# Reload the torchvision file into a fresh model: logits must match exactly.
tv_read, _, _ = read_safetensors(os.path.join(OUT_DIR, "vit_torchvision.safetensors"))
fresh = VisionTransformer(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, num_layers=NUM_LAYERS,
                          num_heads=NUM_HEADS, hidden_dim=HIDDEN_DIM, mlp_dim=MLP_DIM,
                          num_classes=NUM_CLASSES).eval()
fresh.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tv_read.items()}, strict=True)
with torch.no_grad():
    assert torch.equal(fresh(x), logits), "reloaded torchvision weights give different logits"


# Independent plain-tensor forward pass from the *timm* file (no nn modules),
# mirroring what the Go implementation has to do. Must agree within 1e-5.
def manual_forward(w, img):
    t = lambda n: torch.from_numpy(w[n].copy())
    B = img.shape[0]
    patches = F.conv2d(img, t("patch_embed.proj.weight"), t("patch_embed.proj.bias"), stride=PATCH_SIZE)
    tok = patches.flatten(2).transpose(1, 2)                          # (B, 16, D) row-major patches
    tok = torch.cat([t("cls_token").expand(B, -1, -1), tok], dim=1) + t("pos_embed")
    probs_all = []
    for i in range(NUM_LAYERS):
        p = f"blocks.{i}."
        hh = F.layer_norm(tok, (D,), t(p + "norm1.weight"), t(p + "norm1.bias"), eps=LN_EPS)
        qkv = hh @ t(p + "attn.qkv.weight").T + t(p + "attn.qkv.bias")
        q, k, v = [z.reshape(B, NUM_TOKENS, NUM_HEADS, HEAD_DIM).transpose(1, 2) for z in qkv.split(D, -1)]
        pr = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HEAD_DIM), -1)
        probs_all.append(pr)
        ctx = (pr @ v).transpose(1, 2).reshape(B, NUM_TOKENS, D)
        tok = tok + ctx @ t(p + "attn.proj.weight").T + t(p + "attn.proj.bias")
        hh = F.layer_norm(tok, (D,), t(p + "norm2.weight"), t(p + "norm2.bias"), eps=LN_EPS)
        hh = F.gelu(hh @ t(p + "mlp.fc1.weight").T + t(p + "mlp.fc1.bias"))  # exact erf GELU
        tok = tok + hh @ t(p + "mlp.fc2.weight").T + t(p + "mlp.fc2.bias")
    tok = F.layer_norm(tok, (D,), t("norm.weight"), t("norm.bias"), eps=LN_EPS)
    feat = tok[:, 0]
    return feat @ t("head.weight").T + t("head.bias"), feat, probs_all


with torch.no_grad():
    m_logits, m_feat, m_probs = manual_forward(tm_read, x)
errs = {
    "logits": (m_logits - logits).abs().max().item(),
    "features": (m_feat - features).abs().max().item(),
    **{f"attn.{i}": (m_probs[i] - attn[i]).abs().max().item() for i in range(NUM_LAYERS)},
}
print("manual forward from timm names, max |diff|:", {k: f"{v:.2e}" for k, v in errs.items()})
assert all(v < 1e-5 for v in errs.values()), errs

print("all fixtures written and verified in", OUT_DIR)
