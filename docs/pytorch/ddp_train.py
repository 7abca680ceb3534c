#!/usr/bin/python3
"""Train torchvision's VisionTransformer with PyTorch's DistributedDataParallel
on weights the Go package reads and writes.

    torchrun --nproc_per_node 2 docs/pytorch/ddp_train.py --pretrained A.safetensors --data D --epochs N --out B.safetensors
    /usr/bin/python3 docs/pytorch/ddp_train.py ...          (one process: world size 1)
    /usr/bin/python3 docs/pytorch/ddp_train.py --nproc-per-node 2 ...
                     (starts the 2 processes itself: Debian's torchrun fails under Python 3.11, see launch)

The round trip: a checkpoint written by `go run ./cmd/train` (or any weights
the Go package reads: timm's, torchvision's or Hugging Face's names) goes in
with --pretrained, is trained further on several processes, and comes out in
--out as a safetensors file in timm's names with the Go package's metadata
("vit.config", "classes", "normalization", "format"), which
`go run ./cmd/infer -model B.safetensors -data D` reads with no other flag.
Without --pretrained the model is built from the flags: a run that starts in
PyTorch and ends in Go.

The recipe is train_torch.py's (the Go trainer's), whose helpers this script
imports: AdamW with weight decay on weight matrices only, warmup + cosine,
label smoothing, gradient clipping, crop/flip, RandAugment, erasing,
Mixup/CutMix. --batch is the GLOBAL batch: each of the W processes trains on
batch/W images per step, drawn by a torch.utils.data.distributed.
DistributedSampler (disjoint shards of each epoch's permutation), and DDP
averages the gradients, so one step equals one single-process step on the
whole batch (docs/pytorch/ddp_check.py checks it).

stdout carries only JSON (rank 0): one line per epoch, then a last line with
test_acc, images_per_s (all processes together), world_size, epochs and
wall_seconds. Everything else goes to stderr. Bad input: one line on stderr
starting with "ddp_train:", exit status 2 (a bad flag) or 1 (bad data or
weights, a diverged run).

Written for Python 3, torch 1.13 and torchvision 0.14; CPU (gloo) or CUDA
(nccl). See README.md beside this file.
"""

import argparse
import datetime
import gc
import json
import math
import os
import re
import socket
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "testdata")))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402
from torch.utils.data.distributed import DistributedSampler  # noqa: E402

import train_torch as tt  # noqa: E402
from fixturelib import read_safetensors, write_safetensors  # noqa: E402

PROG = "ddp_train"
UsageError, DataError = tt.UsageError, tt.DataError
EXTRA_PREFIX = "train."  # Go checkpoints' training state (model.ExtraPrefix): ignored
DEFAULT_EPS = 1e-6

# ---------------------------------------------------------------------------
# Tensor names: the maps of model/convert.go
# ---------------------------------------------------------------------------

TV_TOP = {
    "class_token": "cls_token",
    "encoder.pos_embedding": "pos_embed",
    "conv_proj.weight": "patch_embed.proj.weight",
    "conv_proj.bias": "patch_embed.proj.bias",
    "conv_proj.conv_last.weight": "patch_embed.proj.weight",
    "conv_proj.conv_last.bias": "patch_embed.proj.bias",
    "encoder.ln.weight": "norm.weight",
    "encoder.ln.bias": "norm.bias",
    "heads.head.weight": "head.weight",
    "heads.head.bias": "head.bias",
}
TV_STEM = {"0.weight": "conv.weight", "1.weight": "norm.weight", "1.bias": "norm.bias"}
TV_BLOCK = {
    "ln_1.weight": "norm1.weight",
    "ln_1.bias": "norm1.bias",
    "self_attention.in_proj_weight": "attn.qkv.weight",
    "self_attention.in_proj_bias": "attn.qkv.bias",
    "self_attention.out_proj.weight": "attn.proj.weight",
    "self_attention.out_proj.bias": "attn.proj.bias",
    "ln_2.weight": "norm2.weight",
    "ln_2.bias": "norm2.bias",
    "mlp.0.weight": "mlp.fc1.weight",
    "mlp.0.bias": "mlp.fc1.bias",
    "mlp.3.weight": "mlp.fc2.weight",
    "mlp.3.bias": "mlp.fc2.bias",
    "mlp.linear_1.weight": "mlp.fc1.weight",
    "mlp.linear_1.bias": "mlp.fc1.bias",
    "mlp.linear_2.weight": "mlp.fc2.weight",
    "mlp.linear_2.bias": "mlp.fc2.bias",
}
HF_TOP = {
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
    "classifier.weight": "head.weight",
    "classifier.bias": "head.bias",
}
HF_BLOCK = {
    "layernorm_before.weight": "norm1.weight",
    "layernorm_before.bias": "norm1.bias",
    "attention.output.dense.weight": "attn.proj.weight",
    "attention.output.dense.bias": "attn.proj.bias",
    "layernorm_after.weight": "norm2.weight",
    "layernorm_after.bias": "norm2.bias",
    "intermediate.dense.weight": "mlp.fc1.weight",
    "intermediate.dense.bias": "mlp.fc1.bias",
    "output.dense.weight": "mlp.fc2.weight",
    "output.dense.bias": "mlp.fc2.bias",
}
HF_QKV = {  # suffix -> (position in the packed q, k, v; "weight" or "bias")
    "attention.attention.query.weight": (0, "weight"),
    "attention.attention.key.weight": (1, "weight"),
    "attention.attention.value.weight": (2, "weight"),
    "attention.attention.query.bias": (0, "bias"),
    "attention.attention.key.bias": (1, "bias"),
    "attention.attention.value.bias": (2, "bias"),
}
LAYER_INDEX = re.compile(r"(0|[1-9][0-9]*)\.(.+)")


def split_layer(name, prefix):
    """"{prefix}{i}.{rest}" -> (i, rest), or None (canonical decimal i only)."""
    if not name.startswith(prefix):
        return None
    m = LAYER_INDEX.fullmatch(name[len(prefix):])
    return (int(m.group(1)), m.group(2)) if m else None


def is_torchvision_name(name):
    return name in TV_TOP or name.startswith(("encoder.layers.encoder_layer_", "conv_proj.", "heads."))


def is_hf_name(name):
    n = name[4:] if name.startswith("vit.") else name
    return n in HF_TOP or n.startswith(("embeddings.", "encoder.layer.", "pooler.", "layernorm."))


def tv_to_timm_name(name):
    """One torchvision name in timm's naming; unknown names unchanged."""
    if name in TV_TOP:
        return TV_TOP[name]
    s = split_layer(name, "encoder.layers.encoder_layer_")
    if s and s[1] in TV_BLOCK:
        return f"blocks.{s[0]}.{TV_BLOCK[s[1]]}"
    s = split_layer(name, "conv_proj.conv_bn_relu_")
    if s and s[1] in TV_STEM:
        return f"patch_embed.stem.{s[0]}.{TV_STEM[s[1]]}"
    return name


def to_timm_names(tensors):
    """The Go package's toTimmNames: tensors renamed to timm's names, and the
    naming they were in ("timm", "torchvision" or "huggingface"). Hugging
    Face's q, k, v are concatenated into attn.qkv; its pooler is dropped;
    names of no known mapping pass through (to be reported as unexpected)."""
    names = sorted(tensors)
    tv = next((n for n in names if is_torchvision_name(n)), None)
    hf = next((n for n in names if is_hf_name(n)), None)
    if tv and hf:
        raise DataError(f"the tensor names mix torchvision ({tv!r}) and Hugging Face ({hf!r}) conventions")
    naming = "torchvision" if tv else "huggingface" if hf else "timm"
    out, source = {}, {}

    def put(new, old, t):
        if new in source:
            raise DataError(f"tensors {source[new]!r} and {old!r} both map to {new!r}")
        source[new] = old
        out[new] = t

    qkv = {}  # (layer, "weight"|"bias") -> [q, k, v] as (name, tensor)
    for name in names:
        t, new = tensors[name], name
        if naming == "torchvision":
            new = tv_to_timm_name(name)
        elif naming == "huggingface":
            n = name[4:] if name.startswith("vit.") else name
            if n.startswith("pooler."):
                continue
            s = split_layer(n, "encoder.layer.")
            if n in HF_TOP:
                new = HF_TOP[n]
            elif s and s[1] in HF_BLOCK:
                new = f"blocks.{s[0]}.{HF_BLOCK[s[1]]}"
            elif s and s[1] in HF_QKV:
                pos, kind = HF_QKV[s[1]]
                parts = qkv.setdefault((s[0], kind), [None, None, None])
                if parts[pos] is not None:
                    raise DataError(f"tensors {parts[pos][0]!r} and {name!r} are the same query/key/value part of layer {s[0]}")
                parts[pos] = (name, t)
                continue
        put(new, name, t)
    for (i, kind), parts in sorted(qkv.items()):
        if all(p is not None for p in parts):
            shapes = {p[1].shape[1:] for p in parts}
            if len(shapes) != 1:
                raise DataError(f"cannot concatenate {[p[0] for p in parts]} with shapes {[p[1].shape for p in parts]}")
            put(f"blocks.{i}.attn.qkv.{kind}", "+".join(p[0] for p in parts), np.concatenate([p[1] for p in parts]))
        else:  # incomplete: passed through, reported as unexpected (attn.qkv as missing)
            for p in parts:
                if p is not None:
                    put(p[0], p[0], p[1])
    return out, naming


# ---------------------------------------------------------------------------
# Weight files and model configs
# ---------------------------------------------------------------------------

# Config keys the Go reader accepts (model.Config's JSON; it refuses others).
CONFIG_INTS = ("image_size", "patch_size", "channels", "dim", "depth", "heads", "mlp_dim", "num_classes")
CONFIG_KEYS = set(CONFIG_INTS) | {"dropout", "attn_dropout", "drop_path", "pool", "eps", "gelu", "no_qkv_bias", "init",
                                  "pos_embed", "stem"}
DROPOUTS = ("dropout", "attn_dropout", "drop_path")
TIMM_PREFIXES = ("patch_embed.", "blocks.", "norm.", "fc_norm.", "head.")
CONFIG_ORDER = CONFIG_INTS + DROPOUTS + ("pool", "eps", "gelu", "no_qkv_bias", "init", "pos_embed", "stem")  # model.Config's


def read_weights(path):
    """(tensors in timm's names without the "train." ones, metadata, naming,
    the file read). A directory stands for its model.safetensors."""
    if os.path.isdir(path):
        path = os.path.join(path, "model.safetensors")
    if not os.path.isfile(path):
        raise DataError(f"--pretrained {path}: no such file")
    try:
        tensors, meta, _ = read_safetensors(path)
    except KeyError as e:
        raise DataError(f"--pretrained {path}: a tensor has dtype {e}; this script reads F32 and F16 (convert it, e.g. "
                        "go run ./cmd/infer -model FILE -export F32FILE)")
    except (AssertionError, ValueError, UnicodeDecodeError, OSError, TypeError) as e:
        raise DataError(f"--pretrained {path}: not a readable safetensors file ({e or type(e).__name__})")
    meta = dict(meta or {})
    tensors = {k: v for k, v in tensors.items() if not k.startswith(EXTRA_PREFIX)}
    if not tensors:
        raise DataError(f"--pretrained {path}: the file holds no weights")
    timm, naming = to_timm_names(tensors)
    if naming == "timm" and not any(n in ("cls_token", "pos_embed") or n.startswith(TIMM_PREFIXES) for n in timm):
        raise DataError(f"--pretrained {path}: unknown tensor naming (e.g. {sorted(timm)[0]!r}): expected timm's "
                        "(cls_token, blocks.0…), torchvision's (class_token, encoder.layers…) or Hugging Face's "
                        "(vit.embeddings…) ViT names")
    return timm, meta, naming, path


def parse_config(s, path):
    """The "vit.config" metadata, checked as the Go reader checks it
    (unknown keys refused) and for what torchvision's model can be."""
    try:
        cfg = json.loads(s)
    except ValueError as e:
        raise DataError(f"{path}: \"vit.config\" metadata is not JSON: {e}")
    if not isinstance(cfg, dict):
        raise DataError(f"{path}: \"vit.config\" metadata is not a JSON object")
    unknown = sorted(set(cfg) - CONFIG_KEYS)
    if unknown:
        raise DataError(f"{path}: \"vit.config\" has unknown keys {unknown} (the Go reader refuses them too)")
    for k in CONFIG_INTS:
        v = cfg.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise DataError(f"{path}: \"vit.config\" {k} is {v!r}, expected a positive integer")
    if cfg["image_size"] % cfg["patch_size"] or cfg["dim"] % cfg["heads"]:
        raise DataError(f"{path}: \"vit.config\" {cfg}: the patch does not divide the image or the heads the width")
    return cfg


def unsupported(cfg):
    """Why torchvision's VisionTransformer cannot be this config, or None."""
    if cfg.get("pool", "cls") not in ("", "cls", "mean"):
        return f"pool {cfg['pool']!r}"
    if cfg.get("gelu", "exact") not in ("", "exact"):
        return f"gelu {cfg['gelu']!r} (torchvision's model has the exact GELU only)"
    if cfg.get("no_qkv_bias"):
        return "no_qkv_bias (torchvision's attention always has a qkv bias)"
    if cfg.get("pos_embed", "learned") not in ("", "learned", "sincos"):
        return f"pos_embed {cfg['pos_embed']!r}"
    if cfg.get("stem", "patch") not in ("", "patch", "conv"):
        return f"stem {cfg['stem']!r}"
    eps = cfg.get("eps", 0) or DEFAULT_EPS
    if not (isinstance(eps, (int, float)) and 0 < eps < 1):
        return f"eps {eps!r}"
    if cfg.get("stem") == "conv" and (cfg["patch_size"] < 2 or cfg["patch_size"] & (cfg["patch_size"] - 1)
                                      or cfg["dim"] < cfg["patch_size"] // 2):
        return f"a conv stem with patch {cfg['patch_size']} and dim {cfg['dim']}"
    if cfg.get("pos_embed") == "sincos" and (cfg["dim"] % 4 or cfg["dim"] < 8):
        return f"sin-cos positions with dim {cfg['dim']} (need a multiple of 4, at least 8)"
    return None


def read_hf_config(weights_path):
    """The Hugging Face config.json beside the weights (None if absent)."""
    p = os.path.join(os.path.dirname(weights_path), "config.json")
    if not os.path.isfile(p):
        return None
    try:
        with open(p, encoding="utf-8") as f:
            c = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"{p}: not a JSON config: {e}")
    if not isinstance(c, dict) or c.get("model_type", "vit") not in ("", "vit"):
        raise DataError(f"{p}: not a Hugging Face ViT config (model_type {c.get('model_type')!r} expected \"vit\")")
    return c, p


def config_from_hf(c, classes):
    """model.configFromHF: ViTConfig's defaults for missing fields."""
    cfg = {"image_size": c.get("image_size") or 224, "patch_size": c.get("patch_size") or 16,
           "channels": c.get("num_channels") or 3, "dim": c.get("hidden_size") or 768,
           "depth": c.get("num_hidden_layers") or 12, "heads": c.get("num_attention_heads") or 12,
           "mlp_dim": c.get("intermediate_size") or 3072, "num_classes": classes, "pool": "cls",
           "eps": c.get("layer_norm_eps") or 1e-12}
    act = c.get("hidden_act") or "gelu"
    if act != "gelu":
        cfg["gelu"] = "tanh" if act in ("gelu_new", "gelu_pytorch_tanh") else act
    if c.get("qkv_bias") is False:
        cfg["no_qkv_bias"] = True
    return cfg


def shape_hint(st):
    """What the tensors say about the architecture, for error messages."""
    out = []
    pe = st.get("patch_embed.proj.weight")
    if pe is not None and pe.ndim == 4:
        n = 0
        while f"patch_embed.stem.{n}.conv.weight" in st and n < 20:
            n += 1
        patch = 1 << n if n else pe.shape[2]
        ch = st["patch_embed.stem.0.conv.weight"].shape[1] if n else pe.shape[1]
        out.append(f"--patch {patch} --dim {pe.shape[0]}" + (" --stem conv" if n else "") + f" (and {ch} input channels)")
    depth = 0
    while f"blocks.{depth}.norm1.weight" in st:
        depth += 1
    out.append(f"--depth {depth}")
    fc1 = st.get("blocks.0.mlp.fc1.weight")
    if fc1 is not None and fc1.ndim == 2:
        out.append(f"--mlp-dim {fc1.shape[0]}")
    return " ".join(out)


def build_from_config(cfg, init="torchvision"):
    """torchvision's VisionTransformer for a Go config (train_torch's
    build_model); fixed sin-cos positions are set and frozen."""
    model = tt.build_model(cfg["image_size"], cfg["patch_size"], cfg["channels"], cfg["dim"], cfg["depth"], cfg["heads"],
                           cfg["mlp_dim"], cfg["num_classes"], init, cfg.get("stem") or "patch",
                           eps=cfg.get("eps") or DEFAULT_EPS, pool=cfg.get("pool") or "cls")
    if cfg.get("pos_embed") == "sincos":
        tt.set_sincos(model, cfg["image_size"] // cfg["patch_size"], cfg["dim"])  # not trained, as in the Go model
    return model


def model_timm_name(model, name):
    """tv_to_timm_name for this model's tensors: with mean pooling the
    final LayerNorm (encoder.ln, applied to the pooled vector) is timm's and
    the Go model's fc_norm."""
    n = tv_to_timm_name(name)
    if isinstance(model, tt.MeanPoolViT) and n.startswith("norm."):
        n = "fc_" + n
    return n


def timm_state(model):
    """The model's tensors in timm's names, in the Go model's order."""
    sd = model.state_dict()
    named = [(model_timm_name(model, k), v.detach().to("cpu", torch.float32).contiguous()) for k, v in sd.items()]

    def key(item):
        n = item[0]
        top = ["cls_token", "pos_embed"]
        if n in top:
            return (top.index(n), 0, n)
        if n.startswith("patch_embed."):
            return (2, 0, n)
        s = split_layer(n, "blocks.")
        if s:
            return (3, s[0], n)
        return (4 if n.startswith("norm.") else 5, 0, n)
    return sorted(named, key=key)


def load_into(model, st, path, skip_head):
    """Checks the file's timm tensors against the model's names and shapes
    (every problem listed, as model.checkTensors) and loads them."""
    want = {model_timm_name(model, k): (k, tuple(v.shape)) for k, v in model.state_dict().items()}
    if skip_head:
        want = {k: v for k, v in want.items() if not k.startswith("head.")}
        st = {k: v for k, v in st.items() if not k.startswith("head.")}
    missing = sorted(f"missing {n}: expected shape {list(s)}" for n, (_, s) in want.items() if n not in st)
    unexpected = sorted(f"unexpected {n}: shape {list(t.shape)}" for n, t in st.items() if n not in want)
    wrong = sorted(f"wrong shape {n}: expected {list(want[n][1])}, found {list(t.shape)}"
                   for n, t in st.items() if n in want and tuple(t.shape) != want[n][1])
    if missing or unexpected or wrong:
        lines = (missing + unexpected + wrong)
        more = f" … and {len(lines) - 6} more" if len(lines) > 6 else ""
        raise DataError(f"{path}: the weights do not fit the model: {len(missing)} missing, {len(unexpected)} unexpected, "
                        f"{len(wrong)} with the wrong shape: " + "; ".join(lines[:6]) + more)
    sd = {tvname: torch.from_numpy(np.array(st[n], np.float32)) for n, (tvname, _) in want.items()}
    model.load_state_dict(sd, strict=not skip_head)


# ---------------------------------------------------------------------------
# Data: train_torch's readers, plus CIFAR-100 and image folders
# ---------------------------------------------------------------------------


def detect_format(d):
    """The Go reader's detection order (data.DetectFormat)."""
    try:
        entries = list(os.scandir(d))
    except OSError as e:
        raise DataError(f"reading dataset directory {d}: {e}")
    files = {e.name for e in entries if e.is_file()}
    if any(n == "test_batch.bin" or (n.startswith("data_batch_") and n.endswith(".bin")) for n in files):
        return "cifar10"
    if "train.bin" in files and "test.bin" in files:
        return "cifar100"
    if any(n.endswith("-idx3-ubyte") or n.endswith("-idx3-ubyte.gz") for n in files):
        return "idx"
    tr = os.path.join(d, "train")
    if os.path.isdir(tr) and any(e.is_dir() for e in os.scandir(tr)):
        return "folder"
    raise DataError(f"cannot tell the dataset format of {d}: looked for CIFAR-10 (data_batch_1.bin … test_batch.bin), "
                    "CIFAR-100 (train.bin and test.bin), IDX (train-images-idx3-ubyte[.gz], …) and an image folder "
                    "(train/<class>/*.png|jpg|jpeg) and found none")


def read_cifar100_file(path, use):
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise DataError(f"cifar100 file {path}: {e}")
    rec = 2 + tt.CIFAR_PIXELS
    if raw.size == 0 or raw.size % rec:
        raise DataError(f"cifar100 file {path}: size {raw.size} bytes is not a positive multiple of the {rec}-byte record")
    raw = raw.reshape(-1, rec)
    for j, (what, k) in enumerate((("coarse label", 20), ("fine label", 100))):
        bad = np.nonzero(raw[:, j] >= k)[0]
        if bad.size:
            raise DataError(f"cifar100 file {path} record {bad[0]}: {what} {raw[bad[0], j]}, expected 0..{k - 1}")
    return tt.Split(np.ascontiguousarray(raw[:, 2:]).reshape(-1, 3, 32, 32), raw[:, use].astype(np.int64))


def load_cifar100(d, coarse):
    use, k, names_file = (0, 20, "coarse_label_names.txt") if coarse else (1, 100, "fine_label_names.txt")
    names = tt.read_names(os.path.join(d, names_file), k) or [str(i) for i in range(k)]
    return read_cifar100_file(os.path.join(d, "train.bin"), use), read_cifar100_file(os.path.join(d, "test.bin"), use), names


IMAGE_EXT = (".png", ".jpg", ".jpeg")


def folder_image(path, size, ch):
    """One image of a folder dataset as ch×size×size bytes, converted as the
    Go reader (preprocess.ToCHW) converts it, in the cases where that gives
    8-bit values: the centred square crop must already be size×size (the Go
    reader resamples others), and a colour image cannot become gray (the Go
    reader's BT.601 luma is not a byte)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            w, h = im.size
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode == "1":
                im = im.convert("L")
            if im.mode in ("RGBA", "LA", "PA"):
                alpha = np.asarray(im.getchannel("A"))
                if alpha.min() != 255:
                    raise DataError(f"image {path} has transparent pixels; the Go reader premultiplies them by alpha, "
                                    "which this script does not: flatten it first")
                im = im.convert("RGB" if im.mode == "RGBA" else "L")
            if im.mode not in ("L", "RGB"):
                raise DataError(f"image {path}: PIL mode {mode}; this script reads 8-bit gray, RGB and palette images")
            a = np.asarray(im)
    except DataError:
        raise
    except Exception as e:  # PIL raises many kinds
        raise DataError(f"image {path}: cannot decode: {e}")
    s = min(w, h)
    if s != size:
        raise DataError(f"image {path} is {w}×{h}: its centred square is {s}×{s}, the model takes {size}×{size}; the Go reader "
                        "resamples it (area averaging), this script does not: resize the images first (or set --image-size)")
    y0, x0 = (h - s) // 2, (w - s) // 2
    a = a[y0:y0 + s, x0:x0 + s]
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    if ch == 3 and a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)  # gray copied to R, G and B, as the Go reader
    elif ch == 1 and a.shape[0] == 3:
        if not ((a[0] == a[1]).all() and (a[1] == a[2]).all()):
            raise DataError(f"image {path} is in colour and the model takes 1 channel; the Go reader computes BT.601 luma "
                            "in floating point, which this script does not: convert the images to gray first")
        a = a[:1]
    return np.ascontiguousarray(a, dtype=np.uint8)


def load_folder(d, size, ch):
    """data.loadFolder's layout: DIR/train/<class>/*.png|jpg|jpeg and
    DIR/test/<class>/…, classes the sorted sub-folders of train/, files in
    name order; names starting with "." skipped."""
    def class_dirs(p):
        try:
            return sorted(e.name for e in os.scandir(p) if not e.name.startswith(".") and e.is_dir())
        except OSError as e:
            raise DataError(f"folder dataset split {p}: {e}")

    classes = class_dirs(os.path.join(d, "train"))
    if not classes:
        raise DataError(f"folder dataset {d}/train: no class sub-folders, expected train/<class>/*.png|jpg|jpeg")
    test_classes = class_dirs(os.path.join(d, "test"))
    if test_classes != classes:
        raise DataError(f"folder dataset {d}: the class sub-folders of test/ {test_classes} differ from those of train/ {classes}")
    splits = []
    for split, need_each in (("train", True), ("test", False)):
        imgs, labels = [], []
        for label, c in enumerate(classes):
            cdir = os.path.join(d, split, c)
            files = sorted(n for n in os.listdir(cdir) if not n.startswith(".") and n.lower().endswith(IMAGE_EXT)
                           and not os.path.isdir(os.path.join(cdir, n)))
            if not files and need_each:
                raise DataError(f"folder dataset class {cdir}: no .png, .jpg or .jpeg files, expected at least one training image")
            for n in files:
                imgs.append(folder_image(os.path.join(cdir, n), size, ch))
                labels.append(label)
        if not imgs:
            raise DataError(f"folder dataset split {d}/{split}: no images")
        splits.append(tt.Split(np.stack(imgs), np.array(labels, np.int64)))
    return splits[0], splits[1], classes


def load_data(d, fmt, coarse, size, ch):
    """(train, test, class names, format) in any format the Go trainer reads;
    size and ch are the folder reader's geometry."""
    if not os.path.isdir(d):
        raise DataError(f"dataset directory {d} does not exist or is not a directory")
    fmt = fmt or detect_format(d)
    if fmt == "cifar10":
        train, test, names = tt.load_cifar10(d)
    elif fmt == "cifar100":
        train, test, names = load_cifar100(d, coarse)
    elif fmt == "idx":
        train, test, names = tt.load_idx(d)
    else:
        train, test, names = load_folder(d, size, ch)
    return train, test, names, fmt


# ---------------------------------------------------------------------------
# Distributed pieces (ddp_check.py uses these too)
# ---------------------------------------------------------------------------


# DDP's performance note for the conv stem's 1×1 projection, whose gradient
# has other (equivalent, the kernel being 1×1) strides than its bucket view;
# the gradient is copied into the bucket and back, correctly.
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")


def make_sampler(n, world, rank, seed):
    """The training sampler: epoch e's order is torch.randperm(n) seeded
    seed + e; rank r takes every world-th index from position r; the last
    n % world indices are dropped so that no image is seen twice."""
    return DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)


def rank_batches(sampler, epoch, per_rank):
    """This rank's batches of an epoch (the last partial batch dropped). At
    step k the ranks' batches together are exactly positions
    k·batch … (k+1)·batch − 1 of the epoch's permutation."""
    sampler.set_epoch(epoch)
    idx = np.fromiter(iter(sampler), dtype=np.int64)
    return [idx[k * per_rank:(k + 1) * per_rank] for k in range(len(idx) // per_rank)]


def make_optimizer(model, wd, layer_decay=0.0):
    """AdamW with train_torch's parameter groups (decay on matrices only)."""
    depth = len(model.encoder.layers)
    groups, decay_names, no_decay_names = tt.param_groups(model, wd, layer_decay, depth)
    return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8), decay_names, no_decay_names


def all_finite(ok):
    """Every rank's ok, so that a diverged run stops on all ranks at once."""
    t = torch.tensor([1.0 if ok else 0.0], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item() == 1.0)


def ddp_step(ddp_model, opt, criterion, x, target, clip, lr, where=""):
    """One step of the recipe on a DistributedDataParallel model: train_torch's
    train_step (its backward averages the ranks' gradients before clipping)."""
    params = [p for p in ddp_model.module.parameters() if p.requires_grad]
    return tt.train_step(ddp_model, opt, params, criterion, x, target, clip, lr, where=where, agree=all_finite)


_DEVICE = torch.device("cpu")


def _collective_device():
    return _DEVICE if dist.get_backend() == "nccl" else torch.device("cpu")


def all_sum(values):
    """values summed over the ranks, in float64."""
    t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    return t.cpu().tolist()


def init_distributed(backend, device):
    """Joins the process group torchrun describes (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT), or a group of one on a free local port when
    started without torchrun. Returns (rank, world size)."""
    global _DEVICE
    _DEVICE = device
    if "WORLD_SIZE" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    dist.init_process_group(backend, init_method="env://", timeout=datetime.timedelta(minutes=10))
    return dist.get_rank(), dist.get_world_size()


def evaluate_sharded(model, split, lut, batch, rank, world, device):
    """Mean cross-entropy (no smoothing) and accuracy over the whole split:
    rank r evaluates images r, r+world, r+2·world, …, and the sums are
    all-reduced (every rank gets the result)."""
    model.eval()
    mine = np.arange(rank, split.n, world)
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(mine), batch):
            x, y = tt.make_batch(split, mine[s:s + batch], lut)
            logits = model(x.to(device)).cpu()
            loss_sum += nn.functional.cross_entropy(logits.double(), y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    loss_sum, correct, n = all_sum([loss_sum, correct, len(mine)])
    return loss_sum / n, correct / n


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def parse_args(argv):
    default_data = os.path.normpath(os.path.join(HERE, "..", "..", "testdata", "fashion-sample"))
    p = argparse.ArgumentParser(
        prog="ddp_train.py",
        description="Train torchvision's VisionTransformer with DistributedDataParallel (launch with torchrun "
                    "--nproc_per_node N, or with --nproc-per-node N, or run as one process) from and to weight files "
                    "the Go package reads. JSON lines on stdout (rank 0), everything else on stderr.")
    a = p.add_argument
    a("--classes", default="", metavar="FILE", help="class names, one per line, in label order (Go -classes; IDX files carry none)")
    a("--data", default=default_data, metavar="DIR", help="dataset: CIFAR-10/100 binary, IDX or image folders (default: testdata/fashion-sample)")
    a("--format", choices=["cifar10", "cifar100", "idx", "folder"], default=None, help="data format (default: detected as the Go reader does)")
    a("--coarse", action="store_true", help="CIFAR-100: the 20 coarse labels (Go -coarse)")
    a("--pretrained", default="", metavar="FILE", help="start from these weights: a Go checkpoint or weights file, or timm, torchvision "
      "or Hugging Face names (a directory: its model.safetensors). Architecture, normalisation and class names from its metadata")
    a("--new-head", action="store_true", help="with --pretrained: a new head even for the same classes")
    a("--out", default="", metavar="FILE", help="write the trained weights here (rank 0; atomically), timm names + Go metadata")
    a("--image-size", type=int, default=0, help="image side; must match the data (folders: the size they are read at, default 32)")
    a("--channels", type=int, default=0, help="input channels; must match the data, but for --pretrained weights without "
      "\"vit.config\" it is theirs (gray data is then copied to 3 channels); folders: 1 or 3, default 3")
    a("--patch", type=int, default=None, help=f"patch size (default {tt.DEFAULT_MODEL['patch']}; with --pretrained: checked against the weights)")
    a("--dim", type=int, default=None, help=f"token width (default {tt.DEFAULT_MODEL['dim']})")
    a("--depth", type=int, default=None, help=f"encoder blocks (default {tt.DEFAULT_MODEL['depth']})")
    a("--heads", type=int, default=None, help=f"attention heads (default {tt.DEFAULT_MODEL['heads']}; the only one that weights "
      "without \"vit.config\" cannot tell)")
    a("--mlp-dim", type=int, default=None, help=f"MLP hidden width (default {tt.DEFAULT_MODEL['mlp_dim']})")
    a("--stem", choices=["patch", "conv"], default=None, help="patch embedding of a new model (Go -stem)")
    a("--pos-embed", choices=["learned", "sincos"], default=None, help="positions of a new model: learned, or fixed 2-D sin-cos, not trained (Go -pos-embed)")
    a("--init", choices=["torchvision", "timm"], default="torchvision", help="initialisation of a new model (and of a new head)")
    a("--epochs", type=int, default=8, help="training epochs")
    a("--batch", type=int, default=32, help="GLOBAL batch size: each of the W processes trains on batch/W images a step")
    a("--eval-batch", type=int, default=0, help="evaluation batch size per process (default: batch/W)")
    a("--lr", type=float, default=3e-3, help="peak learning rate (AdamW)")
    a("--min-lr", type=float, default=1e-5, help="final learning rate of the cosine schedule")
    a("--wd", type=float, default=0.05, help="decoupled weight decay (weight matrices only)")
    a("--warmup", type=float, default=1.0, help="linear warmup, in epochs")
    a("--smoothing", type=float, default=0.1, help="label smoothing")
    a("--clip", type=float, default=1.0, help="global gradient-norm clipping (0 = off)")
    a("--pad", type=int, default=0, help="random crop after padding by this many pixels")
    a("--no-flip", action="store_true", help="no random horizontal flips")
    a("--augment", default="", help="randaugment, randaugment-nN-mM or trivialaugment (Go -augment)")
    a("--erase", type=float, default=0.0, help="random erasing probability (Go -erase)")
    a("--mixup", type=float, default=0.0, help="Mixup Beta alpha; each process mixes its own part of the batch (Go -mixup)")
    a("--cutmix", type=float, default=0.0, help="CutMix Beta alpha; likewise (Go -cutmix)")
    a("--freeze", choices=["", "backbone"], default="", help="backbone: train the head only (needs --pretrained)")
    a("--layer-decay", type=float, default=0.0, help="each block's learning rate R times the next one's (needs --pretrained)")
    a("--val", type=int, default=0, help="hold out N training images (stratified) and report validation metrics each epoch")
    a("--seed", type=int, default=0, help="random seed: weights, data order, augmentation")
    a("--threads", type=int, default=0, help="torch.set_num_threads per process (default: CPUs / processes on this node)")
    a("--limit-train", type=int, default=0, metavar="N", help="use only the first N training images (0 = all)")
    a("--limit-test", type=int, default=0, metavar="N", help="use only the first N test images (0 = all)")
    a("--metrics", default="", metavar="FILE", help="also write the JSON lines to this file (rank 0)")
    a("--nproc-per-node", type=int, default=None, metavar="N", help="start N processes of this script (with "
      "torch.distributed.run, what torchrun runs) instead of being started by torchrun")
    a("--master-port", type=int, default=None, metavar="PORT", help="with --nproc-per-node: the rendezvous port (default: a free one)")
    a("--backend", default="", help="torch.distributed backend (default: nccl with CUDA, else gloo)")
    a("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA when available")
    return p.parse_args(argv)


def check_args(args, world):
    def need(ok, msg):
        if not ok:
            raise UsageError(msg)

    need(args.nproc_per_node is None and args.master_port is None,
         "--nproc-per-node and --master-port start the processes; inside torchrun's processes, leave them out")

    for name in ("patch", "dim", "depth", "heads", "mlp_dim"):
        v = getattr(args, name)
        need(v is None or v > 0, f"--{name.replace('_', '-')} must be positive, got {v}")
    need(args.epochs > 0, f"--epochs must be positive, got {args.epochs}")
    need(args.batch > 0, f"--batch must be positive, got {args.batch}")
    need(args.batch % world == 0, f"--batch {args.batch} is the global batch and must be divisible by the {world} processes")
    for name in ("eval_batch", "limit_train", "limit_test", "image_size", "channels", "pad", "threads", "val"):
        need(getattr(args, name) >= 0, f"--{name.replace('_', '-')} must not be negative, got {getattr(args, name)}")
    need(args.lr > 0 and math.isfinite(args.lr), f"--lr must be positive, got {args.lr}")
    need(0 <= args.min_lr <= args.lr, f"--min-lr must be in [0, lr={args.lr}], got {args.min_lr}")
    need(args.wd >= 0 and math.isfinite(args.wd), f"--wd must be ≥ 0, got {args.wd}")
    need(0 <= args.warmup <= args.epochs, f"--warmup must be in [0, epochs={args.epochs}], got {args.warmup}")
    need(0 <= args.smoothing < 1, f"--smoothing must be in [0, 1), got {args.smoothing}")
    need(args.clip >= 0 and math.isfinite(args.clip), f"--clip must be ≥ 0, got {args.clip}")
    need(0 <= args.erase <= 1, f"--erase must be in [0, 1], got {args.erase}")
    need(args.mixup >= 0 and args.cutmix >= 0, "--mixup and --cutmix must be ≥ 0")
    need(0 <= args.layer_decay <= 1, f"--layer-decay must be in [0, 1], got {args.layer_decay}")
    need(args.pretrained or not (args.freeze or args.layer_decay), "--freeze and --layer-decay need --pretrained")
    need(not (args.pretrained and (args.stem or args.pos_embed)),
         "--stem and --pos-embed choose the embedding of a new model; --pretrained weights bring their own")
    need(args.channels in (0, 1, 3) or args.format != "folder", "--channels must be 1 or 3 for image folders")
    tt.parse_policy(args.augment)
    if args.out:
        d = os.path.dirname(os.path.abspath(args.out))
        need(not os.path.isdir(args.out), f"--out {args.out} is a directory, expected a file name")
        need(os.path.isdir(d) and os.access(d, os.W_OK), f"--out {args.out}: directory {d} does not exist or is not writable")


def flag_arch(args):
    """The architecture flags, defaults filled in."""
    return {k: (getattr(args, f) if getattr(args, f) is not None else tt.DEFAULT_MODEL[f])
            for k, f in (("patch_size", "patch"), ("dim", "dim"), ("depth", "depth"), ("heads", "heads"), ("mlp_dim", "mlp_dim"))}


def contradicting_flags(args, cfg):
    out = []
    for k, f in (("patch_size", "patch"), ("dim", "dim"), ("depth", "depth"), ("heads", "heads"), ("mlp_dim", "mlp_dim")):
        v = getattr(args, f)
        if v is not None and v != cfg[k]:
            out.append(f"--{f.replace('_', '-')} {v} (the weights: {cfg[k]})")
    return out


def resolve_pretrained(args, weights, data_size, data_ch, num_classes):
    """The architecture of --pretrained weights (read_weights' result):
    (config, notes)."""
    st, meta, naming, path = weights
    notes = [f"{path}: {naming} names, {len(st)} tensors"]
    if "vit.config" in meta:
        cfg = parse_config(meta["vit.config"], path)
        notes.append("architecture from the \"vit.config\" metadata" + (" (a Go training checkpoint)" if "train.config" in meta else ""))
        bad = contradicting_flags(args, cfg)
        if bad:
            raise UsageError(f"--pretrained {path} brings its architecture; these flags contradict it: {', '.join(bad)}")
        dropped = [k for k in DROPOUTS if cfg.get(k)]
        if dropped:
            notes.append(f"{', '.join(dropped)} of the weights' config not used: this script trains without dropout "
                         "(as the Go trainer's -pretrained with no -dropout flags)")
        cfg = {k: v for k, v in cfg.items() if k not in DROPOUTS}
    else:
        hf = read_hf_config(path)
        head = st.get("head.weight")
        classes = head.shape[0] if head is not None and head.ndim == 2 else num_classes
        if hf is not None:
            cfg = config_from_hf(hf[0], classes)
            notes.append(f"architecture from {hf[1]}")
            bad = contradicting_flags(args, cfg)
            if bad:
                raise UsageError(f"{hf[1]} gives the architecture; these flags contradict it: {', '.join(bad)}")
        else:
            cfg = dict(image_size=data_size, channels=args.channels or data_ch, **flag_arch(args))
            cfg = {k: cfg[k] for k in CONFIG_INTS[:-1]}
            cfg.update(num_classes=classes, pool="cls", gelu="exact")
            if naming == "huggingface":
                cfg["eps"] = 1e-12  # ViTConfig's default, what the Go reader assumes too
            if args.heads is None:
                notes.append(f"no \"vit.config\" metadata: the architecture from the flags, --heads {cfg['heads']} (its default) "
                             "unchecked: the tensors cannot tell it")
            else:
                notes.append("no \"vit.config\" metadata: the architecture from the flags, checked against the tensors")
        if cfg.get("stem") is None and "patch_embed.stem.0.conv.weight" in st and hf is None:
            raise DataError(f"{path}: the weights have a conv stem; give --patch … and the other flags of the model "
                            f"(the tensors say: {shape_hint(st)}), or a file with \"vit.config\" metadata")
    why = unsupported(cfg)
    if why:
        raise DataError(f"{path}: the model's {why} is not supported by this script")
    return cfg, notes


def check_arch_fits(model, cfg, st, path, skip_head):
    """With an architecture from flags: a clear message if the tensors say
    otherwise."""
    try:
        load_into(model, st, path, skip_head)
    except DataError as e:
        flags = f"--patch {cfg['patch_size']} --dim {cfg['dim']} --depth {cfg['depth']} --mlp-dim {cfg['mlp_dim']}"
        raise DataError(f"{path} has no \"vit.config\" metadata and its tensors contradict the flags' model ({flags}); they say "
                        f"{shape_hint(st)} (and --heads, which they cannot tell). Details: "
                        + str(e).split(": ", 1)[1]) from None


def normalization_from_meta(meta, ch, path):
    s = meta.get("normalization")
    if s is None:
        return None
    try:
        n = json.loads(s)
        mean, std = np.array(n["Mean"], np.float32), np.array(n["Std"], np.float32)
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: \"normalization\" metadata is not JSON {{\"Mean\": [...], \"Std\": [...]}}: {e}")
    if mean.shape != (ch,) or std.shape != (ch,) or not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise DataError(f"{path}: \"normalization\" metadata {s} is not one finite mean and positive std for each of {ch} channels")
    return mean, std


def short_float(v):
    """A float32 as the shortest decimal that reads back to it."""
    return float(str(np.float32(v)))


def save_weights(path, model, cfg, names, mean, std, extra_meta):
    """rank 0: the weights in timm names with the Go package's metadata,
    written to a temporary file beside path, read back, then renamed."""
    tensors = timm_state(model)
    meta = {
        "format": "pt",
        "vit.config": json.dumps({k: cfg[k] for k in CONFIG_ORDER if k in cfg}, separators=(",", ":")),
        "classes": json.dumps(list(names), separators=(",", ":"), ensure_ascii=False),
        "normalization": json.dumps({"Mean": [short_float(m) for m in mean], "Std": [short_float(s) for s in std]},
                                    separators=(",", ":")),
    }
    meta.update(extra_meta)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write_safetensors(tmp, tensors, meta)
        back, back_meta, _ = read_safetensors(tmp)
        assert back_meta == meta and set(back) == {n for n, _ in tensors}, "read-back differs"
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return len(tensors)


def run(argv):
    t_start = time.time()
    args = parse_args(argv)
    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    rank_env = int(os.environ.get("RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_env)))
    check_args(args, world_env)
    log = tt.log if rank_env == 0 else (lambda msg: None)
    threads = args.threads or max(1, (os.cpu_count() or 1) // max(1, local_world))
    torch.set_num_threads(threads)

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda, but CUDA is not available")
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    backend = args.backend or ("nccl" if use_cuda else "gloo")
    if backend == "nccl" and not use_cuda:
        raise UsageError("--backend nccl needs CUDA, which is not available (use gloo)")
    if not dist.is_available() or (backend == "gloo" and not dist.is_gloo_available()) or \
            (backend == "nccl" and not dist.is_nccl_available()):
        raise UsageError(f"torch.distributed backend {backend!r} is not available in this torch build")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)

    # Everything that can fail on bad input is read before the processes meet.
    t0 = time.time()
    weights, st, meta = None, None, {}
    size_hint, ch_hint = args.image_size, args.channels
    if args.pretrained:
        weights = read_weights(args.pretrained)
        st, meta, _, wpath = weights
        if "vit.config" in meta:  # image folders are read at the weights' geometry
            c0 = parse_config(meta["vit.config"], wpath)
            size_hint, ch_hint = size_hint or c0["image_size"], ch_hint or c0["channels"]
    train, test, names, fmt = load_data(args.data, args.format, args.coarse, size_hint or 32, ch_hint or 3)
    if args.classes:  # the Go trainer's -classes: names for data whose files carry none (IDX)
        names = tt.read_names(args.classes, len(names))
        if names is None:
            raise DataError(f"--classes {args.classes}: no such file")
    if args.limit_train:
        train = train.head(args.limit_train)
    if args.limit_test:
        test = test.head(args.limit_test)
    _, channels, h, w = train.images.shape
    num_classes = len(names)
    log(f"data: {args.data} ({fmt}): {train.n} training and {test.n} test images, {channels}×{h}×{w}, "
        f"{num_classes} classes, loaded in {time.time() - t0:.1f}s")
    if h != w:
        raise DataError(f"images are {h}×{w}; the model needs square images")
    if test.n == 0:
        raise DataError("the test split is empty")

    notes = []
    if args.pretrained:
        cfg, notes = resolve_pretrained(args, weights, h, channels, num_classes)
        if cfg["channels"] != channels:
            if channels == 1 and cfg["channels"] == 3:
                train = tt.Split(np.repeat(train.images, 3, axis=1), train.labels)
                test = tt.Split(np.repeat(test.images, 3, axis=1), test.labels)
                notes.append("gray images copied to R, G and B for the weights' 3 channels (as the Go trainer converts them)")
                channels = 3
            else:
                raise DataError(f"the data has {channels} channel(s), the weights take {cfg['channels']}; the Go trainer "
                                "converts colour to luma, this script does not: convert the data first")
        if cfg["image_size"] != h:
            raise DataError(f"the data's images are {h}×{w}, the weights take {cfg['image_size']}×{cfg['image_size']}; the Go "
                            "trainer resizes the positional embedding or the images, this script does not")
        if args.image_size and args.image_size != h:
            raise UsageError(f"--image-size {args.image_size}, but the data's images are {h}×{w}")
        names_meta = None  # no "classes": the head is kept for as many classes (as the Go trainer does)
        if "classes" in meta:
            try:
                names_meta = json.loads(meta["classes"])
            except ValueError:
                names_meta = None
            if not isinstance(names_meta, list):
                raise DataError(f"{wpath}: \"classes\" metadata is not a JSON list of names")
        new_head = (args.new_head or cfg["num_classes"] != num_classes
                    or (names_meta is not None and list(names_meta) != list(names)))
        if new_head:
            why = ("--new-head" if args.new_head else
                   f"the weights' head has {cfg['num_classes']} classes, the data {num_classes}"
                   if cfg["num_classes"] != num_classes else "the weights' class names are not the data's")
            notes.append(f"a new head ({why})")
        cfg = dict(cfg, num_classes=num_classes)
    else:
        if args.image_size and args.image_size != h:
            raise UsageError(f"--image-size {args.image_size}, but the data's images are {h}×{w} (no resizing is done)")
        if args.channels and args.channels != channels:
            raise UsageError(f"--channels {args.channels}, but the data has {channels} channel(s)")
        cfg = dict(image_size=h, channels=channels, **flag_arch(args))
        cfg = {k: cfg[k] for k in CONFIG_INTS[:-1]}  # the Go config's key order
        cfg.update(num_classes=num_classes, pool="cls", gelu="exact", init=args.init)
        if args.pos_embed == "sincos":
            cfg["pos_embed"] = "sincos"
        if args.stem == "conv":
            cfg["stem"] = "conv"
        if h % cfg["patch_size"]:
            raise UsageError(f"the data's {h}×{w} images do not divide into {cfg['patch_size']}×{cfg['patch_size']} patches; choose --patch")
        if cfg["dim"] % cfg["heads"]:
            raise UsageError(f"--dim {cfg['dim']} is not divisible by --heads {cfg['heads']}")
        why = unsupported(cfg)
        if why:
            raise UsageError(f"cannot build {why}")
        new_head = False
    if args.pad >= h:
        raise UsageError(f"--pad must be in [0, {h}), got {args.pad}")

    val = None
    if args.val:
        if not 0 < args.val < train.n:
            raise UsageError(f"--val {args.val}, expected 1..{train.n - 1}")
        train, val = tt.split_validation(train, args.val, args.seed)
    per_rank = args.batch // world_env
    steps_epoch = (train.n // world_env) // per_rank
    if steps_epoch == 0:
        raise UsageError(f"{train.n} training images make no full step of {args.batch} images on {world_env} processes")

    torch.manual_seed(tt.seed_entropy(args.seed))
    model = build_from_config(cfg, args.init)
    if st is not None:
        if "vit.config" in meta:
            load_into(model, st, wpath, new_head)
        else:
            check_arch_fits(model, cfg, st, wpath, new_head)
    norm = normalization_from_meta(meta, channels, args.pretrained) if args.pretrained else None
    if norm is not None:
        mean, std = norm
        notes.append("normalisation from the weights' metadata")
    else:
        mean, std = tt.compute_normalization(train.images)
        notes.append("normalisation computed from the training images" + (" (the weights have none)" if args.pretrained else ""))
    for n in notes:
        log(f"{'pretrained' if args.pretrained else 'model'}: {n}")

    # The processes meet here.
    rank, world = init_distributed(backend, device)
    if world != world_env or rank != rank_env:
        raise RuntimeError(f"process group says rank {rank} of {world}, the environment {rank_env} of {world_env}")
    if args.freeze == "backbone":
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("heads.head."))
    model.to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if use_cuda else None)
    opt, decay_names, no_decay_names = make_optimizer(model, args.wd, args.layer_decay)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.smoothing)
    lut = tt.normalization_table(mean, std)
    total = steps_epoch * args.epochs
    warmup = tt.go_round(args.warmup * steps_epoch)
    eval_batch = args.eval_batch or per_rank
    flip = not args.no_flip
    policy = tt.parse_policy(args.augment)
    eraser = torchvision.transforms.RandomErasing(p=args.erase, value=0) if args.erase > 0 else None
    sampler = make_sampler(train.n, world, rank, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {json.dumps(cfg, separators=(',', ':'))}: {n_params} parameters "
        f"({sum(p.numel() for p in model.parameters() if p.requires_grad)} trained)")
    log(f"normalisation: mean {[float(m) for m in mean]}, std {[float(s) for s in std]}")
    log(f"weight decay {args.wd} on: {', '.join(decay_names)}")
    log(f"no weight decay on: {', '.join(no_decay_names)}")
    log(f"distributed: {world} process(es), backend {backend}, device {device}, {threads} thread(s) each; global batch "
        f"{args.batch} = {world} × {per_rank}; {steps_epoch} steps per epoch, {total} in all (warmup {warmup})")
    log(f"recipe: epochs {args.epochs}, lr {args.lr} → {args.min_lr}, wd {args.wd}, smoothing {args.smoothing}, clip {args.clip}, "
        f"pad {args.pad}, flip {flip}, augment {args.augment or 'none'}, erase {args.erase}, mixup {args.mixup}, "
        f"cutmix {args.cutmix}, seed {args.seed}; torch {torch.__version__}, torchvision {torchvision.__version__}")

    metrics_file = open(args.metrics, "w") if (args.metrics and rank == 0) else None
    step, best, last, train_images, train_time = 0, 0.0, (0.0, 0.0), 0, 0.0
    best_val, best_epoch, best_test = -1.0, 0, 0.0
    try:
        for epoch in range(args.epochs):
            ddp.train()
            loss_sum, correct, seen = 0.0, 0, 0
            lr = tt.lr_at(step, args.lr, args.min_lr, warmup, total)
            t_epoch = time.perf_counter()
            for idx in rank_batches(sampler, epoch, per_rank)[:steps_epoch]:
                rng = np.random.default_rng([tt.seed_entropy(args.seed), 2, step, rank])
                torch_seed = int(np.random.default_rng([tt.seed_entropy(args.seed), 4, step, rank]).integers(2 ** 62))
                x, y, target = tt.training_batch(train, idx, lut, rng, args.pad, flip, policy, eraser, args.mixup,
                                                 args.cutmix, num_classes, torch_seed=torch_seed)
                lr = tt.lr_at(step, args.lr, args.min_lr, warmup, total)
                logits, loss_v, _ = ddp_step(ddp, opt, criterion, x.to(device), target.to(device), args.clip, lr,
                                             where=f"step {step + 1} (epoch {epoch + 1})")
                loss_sum += loss_v * len(idx)
                correct += (logits.argmax(1).cpu() == y).sum().item()
                seen += len(idx)
                step += 1
            seconds = time.perf_counter() - t_epoch
            loss_sum, correct, seen, seconds = all_sum([loss_sum, correct, seen, seconds])
            seconds /= world  # the ranks' mean training time
            train_images += seen
            train_time += seconds
            t = time.perf_counter()
            line = {"epoch": epoch + 1, "step": step, "train_loss": loss_sum / seen, "train_acc": correct / seen}
            if val is not None:
                line["val_loss"], line["val_acc"] = evaluate_sharded(model, val, lut, eval_batch, rank, world, device)
            test_loss, test_acc = evaluate_sharded(model, test, lut, eval_batch, rank, world, device)
            best, last = max(best, test_acc), (test_loss, test_acc)
            if val is not None and line["val_acc"] > best_val:
                best_val, best_epoch, best_test = line["val_acc"], epoch + 1, test_acc
            if rank == 0:
                tt.emit({**line, "test_loss": test_loss, "test_acc": test_acc, "lr": lr, "images_per_s": seen / seconds,
                      "seconds": seconds + time.perf_counter() - t}, metrics_file)
        final = {"test_acc": last[1], "test_loss": last[0], "best_test_acc": best}
        if val is not None:
            final.update({"best_val_acc": best_val, "best_val_epoch": best_epoch, "best_by_val_test_acc": best_test})
        if rank == 0 and args.out:
            run_info = {"world_size": world, "backend": backend, "epochs": args.epochs, "steps": step, "global_batch": args.batch,
                        "test_acc": last[1], "pretrained": os.path.basename(args.pretrained) if args.pretrained else "",
                        "torch": torch.__version__, "torchvision": torchvision.__version__}
            n = save_weights(args.out, model, cfg, names, mean, std, {"pytorch.ddp": json.dumps(run_info, separators=(",", ":"))})
            log(f"wrote {args.out}: {n} tensors in timm names")
        if rank == 0:
            tt.emit({**final, "images_per_s": train_images / train_time if train_time > 0 else 0.0, "world_size": world,
                  "epochs": args.epochs, "steps": step, "global_batch": args.batch, "backend": backend, "device": str(device),
                  "threads": threads, "out": args.out or None, "wall_seconds": time.time() - t_start,
                  "torch": torch.__version__, "torchvision": torchvision.__version__}, metrics_file)
    finally:
        if metrics_file is not None:
            metrics_file.close()
    del ddp
    finish()


def finish():
    """Leaves the process group together: a barrier, then the group torn
    down while the interpreter is whole (drop the DDP wrapper first). main()
    then ends the process with os._exit: gloo's teardown at interpreter exit
    was once seen to hang a rank after its peer had gone."""
    dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def launch(script, argv):
    """With --nproc-per-node N (and optionally --master-port P) in argv and
    not already inside a torchrun process: start N processes of script with
    torch.distributed.run (what torchrun runs) and exit with the status of
    the first that failed (it has printed its own error line), without the
    launcher's own report. Otherwise return argv unchanged.

    Why: Debian's torch 1.13 torchrun fails at start-up under Python 3.11
    (AttributeError: 'NoneType' object has no attribute 'get'), because its
    Std.from_str looks values up by iterating an IntFlag, which no longer
    yields 0 and composite members; this fixes that function first."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return argv
    opts, rest, i = {}, [], 0
    while i < len(argv):
        a = argv[i]
        key = next((k for k in ("--nproc-per-node", "--master-port") if a == k or a.startswith(k + "=")), None)
        if key is None:
            rest.append(a)
            i += 1
            continue
        if "=" in a:
            opts[key] = a.split("=", 1)[1]
            i += 1
        elif i + 1 < len(argv):
            opts[key] = argv[i + 1]
            i += 2
        else:
            opts[key] = ""
            i += 1
    if "--nproc-per-node" not in opts:
        return argv
    try:
        nproc = int(opts["--nproc-per-node"])
        port = int(opts.get("--master-port") or 0)
        if nproc < 1 or not 0 <= port < 65536:
            raise ValueError
    except ValueError:
        raise UsageError(f"--nproc-per-node {opts['--nproc-per-node']!r} / --master-port {opts.get('--master-port')!r}: "
                         "expected a positive number of processes and a port") from None
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    import logging
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing import api
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    std = api.Std

    def from_str(cls, vm):
        if re.fullmatch(r"[0123]", vm):
            return std(int(vm))
        if re.fullmatch(r"(\d:[0123],)*(\d:[0123])", vm):
            return {int(k): std(int(v)) for k, v in (m.split(":") for m in vm.split(","))}
        raise ValueError(f"{vm} is not a torchrun redirect setting")

    std.from_str = classmethod(from_str)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default, without its warning
    for name in list(logging.Logger.manager.loggerDict):  # the launcher's own failure report: the child said it
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    targs = torchrun.get_args_parser().parse_args(
        ["--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1", "--master_port", str(port), script, *rest])
    try:
        torchrun.run(targs)
    except ChildFailedError as e:
        code = e.get_first_failure()[1].exitcode
        sys.exit(code if code > 0 else 1)
    sys.exit(0)


def exit_now(status):
    """Ends the process at once, output flushed, without the interpreter's
    teardown (see finish)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main():
    rank = int(os.environ.get("RANK", "0"))

    def fail(msg, status):
        if rank == 0:  # every process meets the same bad input: one line, from rank 0
            tt.log(f"{PROG}: {msg}")
        exit_now(status)

    try:
        run(launch(os.path.abspath(__file__), sys.argv[1:]))
    except UsageError as e:
        fail(e, 2)
    except (DataError, OSError) as e:
        fail(e, 1)
    except RuntimeError as e:
        if "diverged" in str(e):
            fail(e, 1)
        tt.log(f"{PROG}: rank {rank}: {e}")  # e.g. a process of the group died
        exit_now(1)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    exit_now(0)


if __name__ == "__main__":
    main()
