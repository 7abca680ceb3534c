#!/usr/bin/python3
"""Train torchvision's VisionTransformer with the Go trainer's recipe.

This is the PyTorch side of a side-by-side comparison with

    go run ./cmd/train -data D ...

It reads the same data (CIFAR-10 binary or IDX files), normalises and augments
it the same way, builds torchvision.models.vision_transformer.VisionTransformer
of the same shape, and trains it with the same loss, optimizer, parameter
groups, clipping and learning-rate schedule. Every epoch it evaluates on the
test split and prints one JSON line with the Go trainer's metric keys to
stdout (and to --metrics FILE); a last line sums the run up. Everything else
(data summary, model, settings) goes to stderr, so stdout holds only JSON.

See README.md beside this file for the flag-by-flag correspondence.
Written for Python 3, torch 1.13 and torchvision 0.14, CPU only.
"""

import argparse
import copy
import gzip
import json
import math
import os
import sys
import time

# OpenBLAS starts a thread per core of its own beside torch's --threads: on two
# cores the four threads fight (268 img/s against 502 with this, the conv-stem
# recipe of docs/training.md). Set before numpy or torch loads OpenBLAS; the
# environment still wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402
from functools import partial  # noqa: E402

from torchvision.models.vision_transformer import ConvStemConfig, VisionTransformer  # noqa: E402

PROG = "train_torch"
MIN_STD = 1e-6  # floor of every per-channel std, as the Go trainer's data.MinStd
CIFAR_SIDE = 32
CIFAR_PIXELS = 3 * CIFAR_SIDE * CIFAR_SIDE  # 3072
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801

# The Go trainer's no-flag model (cmd/train's defaultModel, preset "fashion-sample").
DEFAULT_MODEL = dict(patch=8, dim=64, depth=4, heads=4, mlp_dim=128)


class UsageError(Exception):
    """A bad flag or flag combination (exit status 2)."""


class DataError(Exception):
    """Unreadable or inconsistent data (exit status 1)."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


class Split:
    """One split held as raw bytes: images uint8 N×C×H×W, labels int64 N."""

    def __init__(self, images, labels):
        self.images = images
        self.labels = labels

    @property
    def n(self):
        return self.images.shape[0]

    def head(self, n):
        if n is None or n >= self.n:
            return self
        return Split(self.images[:n], self.labels[:n])


def read_names(path, want):
    """Class names, one per non-blank line; None if the file is missing."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        names = [s.strip() for s in f.read().split("\n") if s.strip()]
    if want and len(names) != want:
        raise DataError(f"class names {path}: found {len(names)} non-blank lines, expected {want}")
    if not names:
        raise DataError(f"class names {path}: no names found, expected one name per line")
    if len(set(names)) != len(names):
        raise DataError(f"class names {path}: a name appears twice, expected distinct names")
    return names


def detect_format(d):
    """The Go trainer's detection order, restricted to the formats read here."""
    try:
        files = {e.name for e in os.scandir(d) if e.is_file()}
    except OSError as e:
        raise DataError(f"reading dataset directory {d}: {e}")
    if any(n == "test_batch.bin" or (n.startswith("data_batch_") and n.endswith(".bin")) for n in files):
        return "cifar10"
    if "train.bin" in files and "test.bin" in files:
        raise DataError(f"{d} looks like CIFAR-100 (train.bin, test.bin); this script reads only cifar10 and idx")
    if any(n.endswith("-idx3-ubyte") or n.endswith("-idx3-ubyte.gz") for n in files):
        return "idx"
    raise DataError(f"cannot tell the dataset format of {d}: looked for CIFAR-10 (data_batch_1.bin … data_batch_5.bin, "
                    "test_batch.bin) and IDX (train-images-idx3-ubyte[.gz], …) and found neither")


def read_cifar_file(path):
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise DataError(f"cifar10 file {path}: {e}")
    rec = 1 + CIFAR_PIXELS
    if raw.size == 0 or raw.size % rec != 0:
        raise DataError(f"cifar10 file {path}: size {raw.size} bytes is not a positive multiple of the {rec}-byte record")
    raw = raw.reshape(-1, rec)
    labels = raw[:, 0].astype(np.int64)
    bad = np.nonzero(labels >= 10)[0]
    if bad.size:
        raise DataError(f"cifar10 file {path} record {bad[0]}: label {labels[bad[0]]}, expected 0..9")
    images = np.ascontiguousarray(raw[:, 1:]).reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE)
    return images, labels


def load_cifar10(d):
    train_files = [os.path.join(d, f"data_batch_{i}.bin") for i in range(1, 6)]
    train_files = [p for p in train_files if os.path.exists(p)]
    if not train_files:
        raise DataError(f"cifar10 directory {d}: found none of data_batch_1.bin … data_batch_5.bin")
    names = read_names(os.path.join(d, "batches.meta.txt"), 10) or [str(i) for i in range(10)]
    parts = [read_cifar_file(p) for p in train_files]
    train = Split(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    test = Split(*read_cifar_file(os.path.join(d, "test_batch.bin")))
    return train, test, names


def read_idx(path, magic):
    """An unsigned-byte IDX file, gzipped or not (told by its first two bytes)."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise DataError(f"idx file {path}: {e}")
    if buf[:2] == b"\x1f\x8b":
        try:
            buf = gzip.decompress(buf)
        except (OSError, EOFError) as e:
            raise DataError(f"idx file {path}: bad gzip data: {e}")
    ndim = magic & 0xFF
    hdr = 4 + 4 * ndim
    if len(buf) < hdr:
        raise DataError(f"idx file {path}: header truncated ({len(buf)} of {hdr} bytes)")
    got = int.from_bytes(buf[:4], "big")
    if got != magic:
        raise DataError(f"idx file {path}: magic number 0x{got:08x}, expected 0x{magic:08x}")
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    want = int(np.prod(dims, dtype=np.int64))
    if min(dims) == 0 or len(buf) - hdr != want:
        raise DataError(f"idx file {path}: header dimensions {dims} need {want} data bytes, the file has {len(buf) - hdr}")
    return dims, np.frombuffer(buf, dtype=np.uint8, offset=hdr).reshape(dims)


def find_idx(d, base):
    for name in (base, base + ".gz"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    raise DataError(f"idx directory {d}: found neither {base} nor {base}.gz")


def load_idx(d):
    names = read_names(os.path.join(d, "classes.txt"), 0) or [str(i) for i in range(10)]
    splits = []
    for prefix in ("train", "t10k"):
        lpath = find_idx(d, prefix + "-labels-idx1-ubyte")
        ipath = find_idx(d, prefix + "-images-idx3-ubyte")
        (n,), labels = read_idx(lpath, IDX_LABELS_MAGIC)
        idims, images = read_idx(ipath, IDX_IMAGES_MAGIC)
        if idims[0] != n:
            raise DataError(f"idx file {ipath}: {idims[0]} images, but {lpath} has {n} labels")
        labels = labels.astype(np.int64)
        bad = np.nonzero(labels >= len(names))[0]
        if bad.size:
            raise DataError(f"idx file {lpath} record {bad[0]}: label {labels[bad[0]]}, expected 0..{len(names) - 1}")
        splits.append(Split(images.reshape(n, 1, idims[1], idims[2]), labels))
    train, test = splits
    if train.images.shape[2:] != test.images.shape[2:]:
        raise DataError(f"idx directory {d}: test images are {test.images.shape[2:]}, training images {train.images.shape[2:]}")
    return train, test, names


def load_data(d, fmt):
    if not os.path.isdir(d):
        raise DataError(f"dataset directory {d} does not exist or is not a directory")
    fmt = fmt or detect_format(d)
    if fmt == "cifar10":
        return load_cifar10(d) + (fmt,)
    return load_idx(d) + (fmt,)


# byte b -> b/255 in float32, the one conversion of the Go readers.
BYTE_SCALE = np.arange(256, dtype=np.float32) / np.float32(255)


def compute_normalization(images):
    """Per-channel mean and population std of x/255 over every pixel of every
    image, in float64 (from byte histograms, so memory stays small), with the
    std floored at MIN_STD; returned as float32 like the Go trainer's."""
    c_count = images.shape[1]
    vals = BYTE_SCALE.astype(np.float64)
    mean = np.zeros(c_count, np.float32)
    std = np.ones(c_count, np.float32)
    for c in range(c_count):
        hist = np.zeros(256, np.float64)
        for s in range(0, images.shape[0], 4096):
            hist += np.bincount(images[s:s + 4096, c].ravel(), minlength=256)
        total = hist.sum()
        if total == 0:
            continue
        m = float((hist * vals).sum() / total)
        var = float((hist * (vals - m) ** 2).sum() / total)
        mean[c] = m
        std[c] = max(math.sqrt(var), MIN_STD)
    return mean, std


def normalization_table(mean, std):
    """lut[c, b] = (b/255 − mean[c]) / std[c], computed in float32 exactly as
    the Go trainer computes each pixel."""
    return ((BYTE_SCALE[None, :] - mean[:, None]) / std[:, None]).astype(np.float32)


def make_batch(split, idx, lut, pad=0, flip=False, rng=None):
    """Normalised (and, with rng, augmented) images idx as a float32 tensor
    B×C×H×W, and their labels. Augmentation, on the normalised image: zero
    padding by pad on every side, a random H×W crop at (dy, dx) uniform in
    [0, 2·pad], then a horizontal flip with probability 0.5 if flip."""
    x8 = split.images[idx]
    b, c_count, h, w = x8.shape
    x = np.empty(x8.shape, np.float32)
    for c in range(c_count):
        x[:, c] = lut[c][x8[:, c]]
    if rng is not None and (pad > 0 or flip):
        if pad > 0:
            dy = rng.integers(0, 2 * pad + 1, size=b)
            dx = rng.integers(0, 2 * pad + 1, size=b)
            x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        else:
            dy = dx = np.zeros(b, np.int64)
        cols = np.broadcast_to(np.arange(w), (b, w))
        if flip:
            mirrored = rng.random(b) < 0.5
            cols = np.where(mirrored[:, None], np.arange(w)[::-1][None, :], cols)
        rows = dy[:, None] + np.arange(h)[None, :]
        cols = dx[:, None] + cols
        x = x[np.arange(b)[:, None, None, None], np.arange(c_count)[None, :, None, None],
              rows[:, None, :, None], cols[:, None, None, :]]
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(split.labels[idx])


# ---------------------------------------------------------------------------
# Recipe
# ---------------------------------------------------------------------------


def go_round(x):
    """Go's math.Round (half away from zero), for x ≥ 0; Python's round() is
    half-to-even and would differ at .5."""
    return int(math.floor(x + 0.5))


def lr_at(step, base, min_lr, warmup, total):
    """The Go trainer's optim.WarmupCosine.At."""
    step = max(step, 0)
    if step < warmup:
        return base * (step + 1) / warmup
    if step >= total:
        return min_lr
    w = max(warmup, 0)
    span = max(1, total - w)
    return min_lr + (base - min_lr) * 0.5 * (1 + math.cos(math.pi * (step - w) / span))


def train_step(model, opt, params, criterion, x, target, clip, lr, where="", agree=None):
    """One optimisation step of the recipe: forward, loss, backward, global
    gradient-norm clipping (clip > 0), the learning rate lr set on every
    parameter group (times its "lr_scale"), AdamW's step. A non-finite loss
    or gradient norm stops the run before the step (RuntimeError, where
    saying at which step). agree, if given, turns this process's "finite"
    into every process's (distributed training: all ranks stop together).
    model may be a DistributedDataParallel wrapper: its backward averages
    the gradients over the processes before they are clipped.
    Returns (detached logits, loss value, gradient norm or 0.0 without
    clipping)."""
    logits = model(x)
    loss = criterion(logits, target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    loss_v = loss.item()
    if clip > 0:
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
    else:
        norm = 0.0
    finite = math.isfinite(loss_v) and math.isfinite(norm)
    if agree is not None:
        finite = agree(finite)
    if not finite:
        raise RuntimeError(f"loss {loss_v}, gradient norm {norm} at {where or 'a step'}: "
                           "the run diverged; lower the learning rate")
    for g in opt.param_groups:
        g["lr"] = lr * g["lr_scale"]
    opt.step()
    return logits.detach(), loss_v, norm


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map: the conv stem's norm."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MeanPoolViT(VisionTransformer):
    """torchvision's VisionTransformer pooling the mean of the patch tokens
    (the class token is still in the sequence, but not pooled) and then
    normalising it: the Go model's -pool mean, timm's global_pool="avg" with
    fc_norm. encoder.ln plays fc_norm's part: it acts on the pooled vector
    instead of on every token."""

    def forward(self, x):
        x = self._process_input(x)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        enc = self.encoder
        x = enc.layers(enc.dropout(x + enc.pos_embedding))
        return self.heads(enc.ln(x[:, 1:].mean(dim=1)))


def sincos_2d(h, w, d):
    """model.SinCos2D: big_vision's fixed 2-D sin-cos positions of an h×w
    grid, computed in float64 and rounded once to float32."""
    q = d // 4
    out = np.zeros((h * w, d), np.float64)
    for y in range(h):
        for x in range(w):
            row = out[y * w + x]
            for i in range(q):
                omega = 1 / math.pow(10000, i / (q - 1))
                row[i], row[q + i] = math.sin(x * omega), math.cos(x * omega)
                row[2 * q + i], row[3 * q + i] = math.sin(y * omega), math.cos(y * omega)
    return out.astype(np.float32)


def set_sincos(model, grid, dim):
    """Fixed sin-cos positions (zero for the class token), not trained: the
    Go model's -pos-embed sincos."""
    with torch.no_grad():
        model.encoder.pos_embedding.zero_()
        model.encoder.pos_embedding[0, 1:] = torch.from_numpy(sincos_2d(grid, grid, dim))
    model.encoder.pos_embedding.requires_grad_(False)


def stem_gelu(inplace=None):
    # Conv2dNormActivation passes inplace=True, which nn.GELU does not take.
    return nn.GELU()


def stem_widths(patch, dim):
    """The Go model's conv-stem widths (model.Config.StemWidths): log2(patch)
    3×3 stride-2 convolutions, doubling up to dim."""
    widths, p = [], patch // 2
    while p >= 1:
        widths.append(dim // p)
        p //= 2
    return widths


def build_model(image_size, patch, channels, dim, depth, heads, mlp_dim, num_classes, init="torchvision", stem="patch",
                eps=1e-6, pool="cls"):
    """torchvision's VisionTransformer of this shape (MeanPoolViT for pool
    "mean"); eps is every LayerNorm's epsilon (torchvision's and the Go
    model's default 1e-6)."""
    stem_cfg = None
    if stem == "conv":
        stem_cfg = [ConvStemConfig(out_channels=w, kernel_size=3, stride=2, norm_layer=partial(ChannelLayerNorm, eps=eps),
                                   activation_layer=stem_gelu) for w in stem_widths(patch, dim)]
    model = (MeanPoolViT if pool == "mean" else VisionTransformer)(image_size=image_size, patch_size=patch, num_layers=depth, num_heads=heads,
                              hidden_dim=dim, mlp_dim=mlp_dim, dropout=0.0, attention_dropout=0.0,
                              num_classes=num_classes, conv_stem_configs=stem_cfg,
                              norm_layer=partial(nn.LayerNorm, eps=eps))
    if stem == "conv" and channels != 3:  # torchvision's stem always starts from 3 channels
        old = model.conv_proj.conv_bn_relu_0[0]
        model.conv_proj.conv_bn_relu_0[0] = nn.Conv2d(channels, old.out_channels, 3, stride=2, padding=1, bias=False)
    elif channels != 3:
        model.conv_proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)
        # torchvision's own rule for its patch projection, as for 3 channels.
        nn.init.trunc_normal_(model.conv_proj.weight, std=math.sqrt(1 / (channels * patch * patch)))
        nn.init.zeros_(model.conv_proj.bias)
    if init == "timm":
        timm_init(model)
    return model


def timm_init(model):
    """The Go package's (timm's) initialisation: every weight matrix and the
    patch projection ~ N(0, 0.02²) truncated at ±2σ, biases 0, position
    embedding N(0, 0.02²) truncated, class token N(0, 1e-12), LayerNorm 1/0."""
    def tn(t):
        nn.init.trunc_normal_(t, std=0.02, a=-0.04, b=0.04)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "class_token":
                nn.init.normal_(p, std=1e-6)
            elif name == "encoder.pos_embedding":
                tn(p)
            elif p.ndim >= 2:
                tn(p)
            elif p.ndim == 1 and name.endswith("weight"):  # LayerNorm scales, the conv stem's too
                nn.init.ones_(p)
            else:
                nn.init.zeros_(p)


NO_DECAY_MATRICES = ("class_token", "encoder.pos_embedding")


def param_groups(model, wd, layer_decay=0.0, depth=0):
    """Weight decay on weight matrices (ndim ≥ 2, the conv kernel included),
    none on biases, LayerNorms, the class token and the position embedding;
    with layer_decay, one group per layer whose learning rate is scaled by
    layer_decay^(depth+1−layer) ("lr_scale"). Frozen parameters are left out."""
    groups = {}
    decay_names, no_decay_names = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decays = p.ndim >= 2 and name not in NO_DECAY_MATRICES
        (decay_names if decays else no_decay_names).append(name)
        scale = layer_decay ** (depth + 1 - layer_of(name, depth)) if layer_decay else 1.0
        g = groups.setdefault((decays, scale), {"params": [], "weight_decay": wd if decays else 0.0, "lr_scale": scale})
        g["params"].append(p)
    return list(groups.values()), decay_names, no_decay_names


def seed_entropy(seed):
    return seed & 0xFFFFFFFFFFFFFFFF  # SeedSequence wants a non-negative int


def epoch_order(seed, epoch, n):
    """The training order of an epoch: depends only on the seed and the epoch."""
    return np.random.default_rng([seed_entropy(seed), 1, epoch]).permutation(n)


def step_rng(seed, step):
    """The augmentation draws of a step: depend only on the seed and the step."""
    return np.random.default_rng([seed_entropy(seed), 2, step])


def evaluate(model, split, lut, batch):
    """Mean cross-entropy (no smoothing, in float64) and accuracy."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, split.n, batch):
            idx = np.arange(s, min(s + batch, split.n))
            x, y = make_batch(split, idx, lut)
            logits = model(x)
            loss_sum += nn.functional.cross_entropy(logits.double(), y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    return loss_sum / split.n, correct / split.n


def training_batch(split, idx, lut, rng, pad=0, flip=False, policy=None, eraser=None, mixup=0.0, cutmix=0.0,
                   num_classes=0, torch_seed=0):
    """The training images idx of split as the recipe feeds them to the model:
    RandAugment/TrivialAugment (policy) on the bytes, normalisation, crop and
    flip (make_batch, drawing from rng), random erasing, then Mixup/CutMix
    (drawing from rng). torchvision's transforms draw from torch's global RNG,
    which is seeded with torch_seed first when there are any. Returns the
    inputs, the labels and the loss targets (the labels, or soft targets
    after mixing)."""
    if policy is not None or eraser is not None:
        torch.manual_seed(torch_seed)
    if policy is not None:
        sub = Split(np.stack([policy(torch.from_numpy(im)).numpy() for im in split.images[idx]]), split.labels[idx])
        x, y = make_batch(sub, np.arange(len(idx)), lut, pad, flip, rng)
    else:
        x, y = make_batch(split, idx, lut, pad, flip, rng)
    if eraser is not None:
        x = torch.stack([eraser(im) for im in x])
    target = y
    if mixup > 0 or cutmix > 0:
        x, target = mix_batch(x, nn.functional.one_hot(y, num_classes).float(), mixup, cutmix, rng)
    return x, y, target


def emit(line, metrics_file):
    s = json.dumps(line, separators=(",", ":"))
    print(s, flush=True)
    if metrics_file is not None:
        metrics_file.write(s + "\n")
        metrics_file.flush()


def subset(split, names, labels, per_class):
    """The Go trainer's data.Dataset.Subset: the images whose label is in
    labels, relabelled by position, and with per_class > 0 only the first
    per_class of each class in the split's order."""
    new = {l: i for i, l in enumerate(labels)}
    taken = [0] * len(labels)
    keep = []
    for i, l in enumerate(split.labels):
        nl = new.get(int(l))
        if nl is None or (per_class > 0 and taken[nl] >= per_class):
            continue
        taken[nl] += 1
        keep.append(i)
    keep = np.array(keep, dtype=np.int64)
    relabel = np.array([new[int(l)] for l in split.labels[keep]], dtype=np.int64)
    return Split(split.images[keep], relabel), [names[l] for l in labels]


def load_pretrained(model, path, new_head=False):
    """Loads torchvision-named weights (written by this package's export)
    into model: every tensor but a head of another class count (or any head
    with new_head), which keeps its initialisation. Returns the file's
    normalisation metadata (mean, std) or None, and notes."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata"))
    from fixturelib import read_safetensors

    tensors, meta, _ = read_safetensors(path)
    sd = model.state_dict()
    notes = []
    head = tensors.get("heads.head.weight")
    if head is not None and (new_head or tuple(head.shape) != tuple(sd["heads.head.weight"].shape)):
        notes.append(f"the weights' head ({head.shape[0]} classes) is not used: a new head for {sd['heads.head.weight'].shape[0]}")
        tensors = {k: v for k, v in tensors.items() if not k.startswith("heads.head.")}
    missing = model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=False)
    unexpected = set(missing.unexpected_keys)
    absent = {k for k in missing.missing_keys if not k.startswith("heads.head.")}
    if unexpected or absent:
        raise DataError(f"{path}: unexpected tensors {sorted(unexpected)}, missing {sorted(absent)}")
    norm = None
    if meta and "normalization" in meta:
        n = json.loads(meta["normalization"])
        norm = (np.array(n["Mean"], np.float32), np.array(n["Std"], np.float32))
    return norm, notes


def layer_of(name, depth):
    """The Go trainer's LayerScales layer of a torchvision parameter."""
    if name in ("class_token", "encoder.pos_embedding") or name.startswith("conv_proj."):
        return 0
    if name.startswith("encoder.layers.encoder_layer_"):
        return int(name.split(".")[2].rsplit("_", 1)[1]) + 1
    return depth + 1


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def parse_policy(spec):
    """The Go trainer's data.ParsePolicy: (policy, ops, magnitude)."""
    if spec in ("", "none"):
        return None
    if spec == "trivialaugment":
        return torchvision.transforms.TrivialAugmentWide()
    if spec == "randaugment" or spec.startswith("randaugment-"):
        n, m = 2, 9
        for part in spec.split("-")[1:]:
            if len(part) < 2 or part[0] not in "nm" or not part[1:].isdigit():
                raise UsageError(f"augmentation {spec!r}: bad part {part!r}, expected nN or mM")
            if part[0] == "n":
                n = int(part[1:])
            else:
                m = int(part[1:])
        if not (1 <= n <= 10 and 0 <= m <= 30):
            raise UsageError(f"augmentation {spec!r}: out of range (n1..n10, m0..m30)")
        return torchvision.transforms.RandAugment(num_ops=n, magnitude=m)
    raise UsageError(f"unknown augmentation {spec!r}, expected randaugment, randaugment-nN-mM, trivialaugment or none")


def split_validation(split, n, seed):
    """A stratified hold-out of n images (each class its share, largest
    remainders rounding up), chosen from the seed: the Go trainer's
    data.SplitValidation in method, not in the images it picks."""
    labels = split.labels
    k = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=k)
    quota = (n * counts) // split.n
    rem = (n * counts) % split.n
    for c in sorted(range(k), key=lambda c: -rem[c])[: n - int(quota.sum())]:
        quota[c] += 1
    rng = np.random.default_rng([seed_entropy(seed), 3])
    held = np.zeros(split.n, bool)
    for c in range(k):
        members = np.flatnonzero(labels == c)
        held[members[rng.permutation(len(members))[: quota[c]]]] = True
    return Split(split.images[~held], labels[~held]), Split(split.images[held], labels[held])


def mix_batch(x, y_soft, mixup, cutmix, rng):
    """timm's Mixup in batch mode: x with x reversed; targets likewise."""
    if mixup <= 0 and cutmix <= 0:
        return x, y_soft
    cut = cutmix > 0 and (mixup <= 0 or rng.random() < 0.5)
    lam = float(rng.beta(cutmix, cutmix) if cut else rng.beta(mixup, mixup))
    xr = x.flip(0)
    if cut:
        _, _, h, w = x.shape
        r = math.sqrt(1 - lam)
        ch, cw = int(h * r), int(w * r)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = min(max(cy - ch // 2, 0), h), min(max(cy + ch // 2, 0), h)
        x0, x1 = min(max(cx - cw // 2, 0), w), min(max(cx + cw // 2, 0), w)
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = xr[:, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        x = lam * x + (1 - lam) * xr
    return x, lam * y_soft + (1 - lam) * y_soft.flip(0)


def parse_args(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    default_data = os.path.normpath(os.path.join(here, "..", "..", "testdata", "fashion-sample"))
    p = argparse.ArgumentParser(
        prog="train_torch.py",
        description="Train torchvision's VisionTransformer with the recipe of the Go trainer (go run ./cmd/train). "
                    "One JSON line per epoch goes to stdout and --metrics; everything else to stderr.")
    a = p.add_argument
    a("--data", default=default_data, metavar="DIR", help="dataset directory: CIFAR-10 binary or IDX files (default: the repository's testdata/fashion-sample)")
    a("--format", choices=["cifar10", "idx"], default=None, help="data format (default: detected as the Go trainer does)")
    a("--image-size", type=int, default=0, help="image side; must match the data (default: from the data)")
    a("--channels", type=int, default=0, help="input channels; must match the data (default: from the data)")
    a("--patch", type=int, default=DEFAULT_MODEL["patch"], help="patch size (Go -patch / preset)")
    a("--dim", type=int, default=DEFAULT_MODEL["dim"], help="token width, torchvision hidden_dim (Go -dim)")
    a("--depth", type=int, default=DEFAULT_MODEL["depth"], help="encoder blocks, torchvision num_layers (Go -depth)")
    a("--heads", type=int, default=DEFAULT_MODEL["heads"], help="attention heads (Go -heads)")
    a("--mlp-dim", type=int, default=DEFAULT_MODEL["mlp_dim"], help="MLP hidden width (Go -mlp-dim)")
    a("--epochs", type=int, default=8, help="training epochs")
    a("--batch", type=int, default=32, help="batch size")
    a("--eval-batch", type=int, default=0, help="evaluation batch size (default: --batch)")
    a("--lr", type=float, default=3e-3, help="peak learning rate (AdamW)")
    a("--min-lr", type=float, default=1e-5, help="final learning rate of the cosine schedule")
    a("--wd", type=float, default=0.05, help="decoupled weight decay (weight matrices only)")
    a("--warmup", type=float, default=1.0, help="linear warmup, in epochs")
    a("--smoothing", type=float, default=0.1, help="label smoothing")
    a("--clip", type=float, default=1.0, help="global gradient-norm clipping (0 = off)")
    a("--pad", type=int, default=0, help="random crop after padding by this many pixels (0 = no crop)")
    a("--no-flip", action="store_true", help="no random horizontal flips (e.g. for digits)")
    a("--stem", choices=["patch", "conv"], default="patch", help="patch embedding: one projection per patch, or the conv stem (Go -stem)")
    a("--pool", choices=["cls", "mean"], default="cls", help="pooling: the class token, or the mean of the patch tokens then a LayerNorm (Go -pool)")
    a("--pos-embed", choices=["learned", "sincos"], default="learned", help="positional embedding: learned, or fixed 2-D sin-cos (Go -pos-embed)")
    a("--init", choices=["torchvision", "timm"], default="torchvision", help="initialisation: torchvision's own, or the Go package's (timm's)")
    a("--seed", type=int, default=0, help="random seed: weights, data order, augmentation")
    a("--threads", type=int, default=2, help="torch.set_num_threads")
    a("--metrics", default="", metavar="FILE", help="also write the JSON lines to this file")
    a("--limit-train", type=int, default=0, metavar="N", help="use only the first N training images (0 = all)")
    a("--limit-test", type=int, default=0, metavar="N", help="use only the first N test images (0 = all)")
    a("--labels", default="", help="train on these classes only, e.g. 0,1,2,3,4, relabelled in this order (Go -labels)")
    a("--per-class", type=int, default=0, help="only the first N training images of each class (Go -per-class)")
    a("--pretrained", default="", metavar="FILE", help="start from this safetensors file in torchvision's names (Go -pretrained, "
      "after go run ./cmd/infer -export FILE -names torchvision): a new head for other classes, its normalisation")
    a("--new-head", action="store_true", help="with --pretrained: a new head even for as many classes (the Go trainer makes one when "
      "the weights' class names are not the data's)")
    a("--freeze", choices=["", "backbone"], default="", help="backbone: train the head only (Go -freeze)")
    a("--layer-decay", type=float, default=0.0, help="each block's learning rate R times the next one's (Go -layer-decay)")
    a("--val", type=int, default=0, help="hold out N training images (stratified) for validation; the best epoch is chosen on them (Go -val)")
    a("--augment", default="", help="randaugment, randaugment-nN-mM or trivialaugment: torchvision's transforms (Go -augment)")
    a("--erase", type=float, default=0.0, help="random erasing probability: torchvision's RandomErasing, value 0 (Go -erase)")
    a("--mixup", type=float, default=0.0, help="Mixup Beta alpha, timm's batch mode (Go -mixup)")
    a("--cutmix", type=float, default=0.0, help="CutMix Beta alpha, timm's batch mode (Go -cutmix)")
    a("--ema", type=float, default=0.0, help="moving average of the weights with this decay, evaluated instead of them (Go -ema)")
    a("--checkpoint", default="", metavar="FILE", help="save the whole training state to FILE after every epoch (atomically: "
      "a killed run leaves the previous epoch's file)")
    a("--resume", action="store_true", help="with --checkpoint: continue from FILE if it exists (same flags required); "
      "the run is the one an uninterrupted run would make")
    return p.parse_args(argv)


def check_args(args):
    def need(ok, msg):
        if not ok:
            raise UsageError(msg)

    for name in ("patch", "dim", "depth", "heads", "mlp_dim", "epochs", "batch", "threads"):
        need(getattr(args, name) > 0, f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in ("eval_batch", "limit_train", "limit_test", "image_size", "channels", "pad"):
        need(getattr(args, name) >= 0, f"--{name.replace('_', '-')} must not be negative, got {getattr(args, name)}")
    need(args.dim % args.heads == 0, f"--dim {args.dim} is not divisible by --heads {args.heads}")
    need(args.pos_embed != "sincos" or (args.dim % 4 == 0 and args.dim >= 8),
         f"--pos-embed sincos needs --dim a multiple of 4, at least 8; got {args.dim}")
    need(args.lr > 0 and math.isfinite(args.lr), f"--lr must be positive, got {args.lr}")
    need(0 <= args.min_lr <= args.lr, f"--min-lr must be in [0, lr={args.lr}], got {args.min_lr}")
    need(args.wd >= 0 and math.isfinite(args.wd), f"--wd must be ≥ 0, got {args.wd}")
    need(0 <= args.warmup <= args.epochs, f"--warmup must be in [0, epochs={args.epochs}], got {args.warmup}")
    need(0 <= args.smoothing < 1, f"--smoothing must be in [0, 1), got {args.smoothing}")
    need(args.clip >= 0 and math.isfinite(args.clip), f"--clip must be ≥ 0, got {args.clip}")
    need(0 <= args.layer_decay <= 1, f"--layer-decay must be in [0, 1], got {args.layer_decay}")
    need(args.pretrained or not (args.freeze or args.layer_decay), "--freeze and --layer-decay need --pretrained")
    need(args.val >= 0, f"--val must not be negative, got {args.val}")
    need(0 <= args.erase <= 1, f"--erase must be in [0, 1], got {args.erase}")
    need(args.mixup >= 0 and args.cutmix >= 0, "--mixup and --cutmix must be ≥ 0")
    need(0 <= args.ema < 1, f"--ema must be in [0, 1), got {args.ema}")
    need(args.checkpoint or not args.resume, "--resume needs --checkpoint FILE")
    parse_policy(args.augment)


# Flags that may differ between a run and its resumption: they do not change
# what is computed.
RESUME_FREE = {"resume", "checkpoint", "metrics", "threads"}


def save_state(path, state):
    """torch.save to a temporary file beside path, then rename: a killed run
    never leaves a half-written checkpoint."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_state(path, args):
    """The state saved by save_state, checked against this run's flags."""
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises many kinds on a damaged file
        raise DataError(f"--resume: cannot read checkpoint {path}: {e}")
    if not isinstance(state, dict) or state.get("format") != "train_torch-state-1":
        raise DataError(f"--resume: {path} is not a train_torch.py checkpoint")
    saved = state["args"]
    now = {k: v for k, v in vars(args).items() if k not in RESUME_FREE}
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if diff:
        raise UsageError("--resume: the checkpoint was made with other flags: " +
                         ", ".join(f"--{k.replace('_', '-')} {saved.get(k)!r} (now {now.get(k)!r})" for k in diff))
    return state


def run(argv):
    t_start = time.time()
    args = parse_args(argv)
    check_args(args)
    torch.set_num_threads(args.threads)

    t0 = time.time()
    train, test, names, fmt = load_data(args.data, args.format)
    if args.limit_train:
        train = train.head(args.limit_train)
    if args.limit_test:
        test = test.head(args.limit_test)
    if args.labels or args.per_class:
        labels = [int(v) for v in args.labels.split(",") if v.strip()] if args.labels else list(range(len(names)))
        train, sub_names = subset(train, names, labels, args.per_class)
        test, _ = subset(test, names, labels, 0)
        names = sub_names
    _, channels, h, w = train.images.shape
    num_classes = len(names)
    log(f"data: {args.data} ({fmt}): {train.n} training and {test.n} test images, {channels}×{h}×{w}, "
        f"{num_classes} classes, loaded in {time.time() - t0:.1f}s")
    if h != w:
        raise DataError(f"images are {h}×{w}; the model needs square images")
    if args.image_size and args.image_size != h:
        raise UsageError(f"--image-size {args.image_size}, but the data's images are {h}×{w} (no resizing is done)")
    if args.channels and args.channels != channels:
        raise UsageError(f"--channels {args.channels}, but the data has {channels} channel(s)")
    image_size = h
    if image_size % args.patch:
        raise UsageError(f"the data's {h}×{w} images do not divide into {args.patch}×{args.patch} patches; choose --patch")
    if args.pad >= image_size:
        raise UsageError(f"--pad must be in [0, {image_size}), got {args.pad}")
    if train.n < args.batch:
        raise UsageError(f"{train.n} training images are fewer than one batch of {args.batch}")
    if test.n == 0:
        raise DataError("the test split is empty")

    val = None
    if args.val:
        if not 0 < args.val < train.n:
            raise UsageError(f"--val {args.val}, expected 1..{train.n - 1}")
        train, val = split_validation(train, args.val, args.seed)
        log(f"validation: {val.n} training images held out, {train.n} left")
    mean, std = compute_normalization(train.images)

    torch.manual_seed(seed_entropy(args.seed))
    model = build_model(image_size, args.patch, channels, args.dim, args.depth, args.heads, args.mlp_dim, num_classes, args.init, args.stem,
                        pool=args.pool)
    if args.pos_embed == "sincos":
        set_sincos(model, image_size // args.patch, args.dim)
    if args.pretrained:
        norm, notes = load_pretrained(model, args.pretrained, args.new_head)
        if norm is not None:
            mean, std = norm  # the weights' normalisation, as the Go trainer's default with -pretrained
        for n in notes:
            log(f"pretrained: {n}")
    if args.freeze == "backbone":
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("heads.head."))
    lut = normalization_table(mean, std)
    log(f"normalisation: mean {[float(m) for m in mean]}, std {[float(s) for s in std]}")
    groups, decay_names, no_decay_names = param_groups(model, args.wd, args.layer_decay, args.depth)
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.smoothing)
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)

    steps_epoch = train.n // args.batch  # the last partial batch is dropped
    total = steps_epoch * args.epochs
    warmup = go_round(args.warmup * steps_epoch)
    eval_batch = args.eval_batch or args.batch
    flip = not args.no_flip
    log(f"model: torchvision VisionTransformer image {image_size}×{image_size}×{channels}, patch {args.patch} "
        f"({(image_size // args.patch) ** 2 + 1} tokens), dim {args.dim}, depth {args.depth}, heads {args.heads}, "
        f"mlp {args.mlp_dim}, classes {num_classes}, stem {args.stem}, pool {args.pool}, positions {args.pos_embed}: "
        f"{n_params} parameters trained")
    log(f"weight decay {args.wd} on: {', '.join(decay_names)}")
    log(f"no weight decay on: {', '.join(no_decay_names)}")
    log(f"recipe: epochs {args.epochs}, batch {args.batch}, lr {args.lr} → {args.min_lr} (warmup {warmup} steps), "
        f"wd {args.wd}, smoothing {args.smoothing}, clip {args.clip}, pad {args.pad}, flip {flip}, seed {args.seed}, "
        f"threads {torch.get_num_threads()}")
    log(f"steps: {steps_epoch} per epoch, {total} in all; torch {torch.__version__}, torchvision {torchvision.__version__}")

    policy = parse_policy(args.augment)
    eraser = torchvision.transforms.RandomErasing(p=args.erase, value=0) if args.erase > 0 else None
    ema = None
    if args.ema:
        ema = copy.deepcopy(model)
        for p_ in ema.parameters():
            p_.requires_grad_(False)
    step, best, last_acc = 0, 0.0, 0.0
    best_val, best_epoch, best_test = -1.0, 0, 0.0
    first_epoch, earlier_seconds = 0, 0.0
    if args.resume and os.path.exists(args.checkpoint):
        state = load_state(args.checkpoint, args)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        first_epoch, step = state["epoch"], state["step"]
        best, last_acc = state["best"], state["last_acc"]
        best_val, best_epoch, best_test = state["best_val"], state["best_epoch"], state["best_test"]
        earlier_seconds = state["wall_seconds"]
        log(f"resumed from {args.checkpoint}: {first_epoch} epochs done (step {step}), "
            f"{earlier_seconds:.0f} s of earlier wall time")
    metrics_file = None
    if args.metrics:
        kept = []
        if first_epoch > 0 and os.path.exists(args.metrics):  # the lines of the epochs the checkpoint holds
            with open(args.metrics) as f:
                kept = [ln for ln in f if ln.strip() and 0 < json.loads(ln).get("epoch", 0) <= first_epoch]
        metrics_file = open(args.metrics, "w")
        metrics_file.writelines(kept)
    try:
        for epoch in range(first_epoch, args.epochs):
            model.train()
            order = epoch_order(args.seed, epoch, train.n)
            loss_sum, correct, seen, train_seconds = 0.0, 0, 0, 0.0
            lr = lr_at(step, args.lr, args.min_lr, warmup, total)
            for k in range(steps_epoch):
                t = time.perf_counter()
                idx = order[k * args.batch:(k + 1) * args.batch]
                x, y, target = training_batch(train, idx, lut, step_rng(args.seed, step), args.pad, flip, policy, eraser,
                                              args.mixup, args.cutmix, num_classes,
                                              torch_seed=seed_entropy(args.seed) * 1_000_003 + step)
                lr = lr_at(step, args.lr, args.min_lr, warmup, total)
                logits, loss_v, _ = train_step(model, opt, params, criterion, x, target, args.clip, lr,
                                               where=f"step {step + 1} (epoch {epoch + 1})")
                if ema is not None:
                    d = min(args.ema, (2 + step) / (11 + step))  # the Go trainer's decay at step t = step + 1
                    with torch.no_grad():
                        for pe, pm in zip(ema.parameters(), model.parameters()):
                            pe.mul_(d).add_(pm.detach(), alpha=1 - d)
                loss_sum += loss_v * args.batch
                correct += (logits.argmax(1) == y).sum().item()
                seen += args.batch
                step += 1
                train_seconds += time.perf_counter() - t
            t = time.perf_counter()
            evaluated = ema if ema is not None else model
            line = {"epoch": epoch + 1, "step": step, "train_loss": loss_sum / seen, "train_acc": correct / seen}
            if val is not None:
                line["val_loss"], line["val_acc"] = evaluate(evaluated, val, lut, eval_batch)
            test_loss, test_acc = evaluate(evaluated, test, lut, eval_batch)
            eval_seconds = time.perf_counter() - t
            best = max(best, test_acc)
            last_acc = test_acc
            if val is not None and line["val_acc"] > best_val:
                best_val, best_epoch, best_test = line["val_acc"], epoch + 1, test_acc
            emit({
                **line,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "lr": lr,
                "images_per_s": seen / train_seconds,
                "seconds": train_seconds + eval_seconds,
            }, metrics_file)
            if args.checkpoint:
                save_state(args.checkpoint, {
                    "format": "train_torch-state-1",
                    "args": {k: v for k, v in vars(args).items() if k not in RESUME_FREE},
                    "model": model.state_dict(), "opt": opt.state_dict(),
                    "ema": ema.state_dict() if ema is not None else None,
                    "epoch": epoch + 1, "step": step, "best": best, "last_acc": last_acc,
                    "best_val": best_val, "best_epoch": best_epoch, "best_test": best_test,
                    "wall_seconds": earlier_seconds + time.time() - t_start,
                })
        final = {"final_test_acc": last_acc}
        if val is not None:
            # Chosen on validation data; the best test accuracy is reported only.
            final.update({"best_val_acc": best_val, "best_val_epoch": best_epoch, "best_by_val_test_acc": best_test})
        emit({
            **final,
            "best_test_acc": best,
            "wall_seconds": earlier_seconds + time.time() - t_start,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "threads": torch.get_num_threads(),
        }, metrics_file)
    finally:
        if metrics_file is not None:
            metrics_file.close()


def main():
    try:
        run(sys.argv[1:])
    except UsageError as e:
        log(f"{PROG}: {e}")
        sys.exit(2)
    except (DataError, RuntimeError, OSError) as e:
        log(f"{PROG}: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        log(f"{PROG}: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
