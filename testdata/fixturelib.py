"""What the PyTorch fixture scripts of testdata/ share: a safetensors writer
and an independent strict reader written by hand (no `safetensors` package),
and the mapping of torchvision's VisionTransformer state_dict to timm's and
Hugging Face's names."""

import json
import struct

import numpy as np
import torch

# dtype name -> (numpy little-endian type, bytes per value)
DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2)}


def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """tensors: list of (name, torch.Tensor float32) in the order to store
    them; dtype F32 or F16 (values rounded to half precision).

    Layout: u64 little-endian header length N, then N bytes of UTF-8 JSON
    {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {..}},
    padded with spaces so that N is a multiple of 8, then the raw tensor bytes.
    Offsets are relative to the start of the data section."""
    np_type, _ = DTYPES[dtype]
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors:
        assert name not in header, f"duplicate tensor name {name}"
        assert t.dtype == torch.float32, (name, t.dtype)
        # C-contiguous, little-endian bytes.
        raw = np.ascontiguousarray(t.detach().cpu().numpy()).astype(np_type).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    """Independent, strict reader used to verify what was written.

    Returns (dict name -> np.ndarray float32, metadata dict or None, names in
    offset order)."""
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) >= 8, path
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0, f"{path}: header length {n} not a multiple of 8"
    assert 8 + n <= len(data), path
    hbytes = data[8 : 8 + n]
    stripped = hbytes.rstrip(b" ")
    assert stripped.endswith(b"}") and stripped.startswith(b"{"), path
    header = json.loads(hbytes.decode("utf-8"))
    body = data[8 + n :]
    meta = header.pop("__metadata__", None)
    if meta is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    out = {}
    pos = 0
    for name, e in entries:
        assert set(e) == {"dtype", "shape", "data_offsets"}, (path, name, e)
        np_type, size = DTYPES[e["dtype"]]
        b, en = e["data_offsets"]
        assert b == pos, f"{path}: {name} begins at {b}, expected {pos} (gap/overlap)"
        count = int(np.prod(e["shape"])) if e["shape"] else 1
        assert en - b == size * count, f"{path}: {name} byte size mismatch"
        out[name] = np.frombuffer(body[b:en], dtype=np_type).astype("<f4").reshape(e["shape"])
        pos = en
    assert pos == len(body), f"{path}: {len(body) - pos} trailing bytes"
    return out, meta, [name for name, _ in entries]


def split_qkv(w):
    """in_proj (3D, ...) is stacked q, k, v along dim 0."""
    d = w.shape[0] // 3
    return w[0:d].clone(), w[d : 2 * d].clone(), w[2 * d : 3 * d].clone()


def torchvision_to_timm(sd, layers):
    """torchvision VisionTransformer state_dict -> [(timm name, tensor)]."""
    timm = [
        ("cls_token", sd["class_token"]),
        ("pos_embed", sd["encoder.pos_embedding"]),
        ("patch_embed.proj.weight", sd["conv_proj.weight"]),
        ("patch_embed.proj.bias", sd["conv_proj.bias"]),
    ]
    for i in range(layers):
        tv = f"encoder.layers.encoder_layer_{i}."
        tm = f"blocks.{i}."
        timm += [
            (tm + "norm1.weight", sd[tv + "ln_1.weight"]),
            (tm + "norm1.bias", sd[tv + "ln_1.bias"]),
            (tm + "attn.qkv.weight", sd[tv + "self_attention.in_proj_weight"]),
            (tm + "attn.qkv.bias", sd[tv + "self_attention.in_proj_bias"]),
            (tm + "attn.proj.weight", sd[tv + "self_attention.out_proj.weight"]),
            (tm + "attn.proj.bias", sd[tv + "self_attention.out_proj.bias"]),
            (tm + "norm2.weight", sd[tv + "ln_2.weight"]),
            (tm + "norm2.bias", sd[tv + "ln_2.bias"]),
            (tm + "mlp.fc1.weight", sd[tv + "mlp.0.weight"]),
            (tm + "mlp.fc1.bias", sd[tv + "mlp.0.bias"]),
            (tm + "mlp.fc2.weight", sd[tv + "mlp.3.weight"]),
            (tm + "mlp.fc2.bias", sd[tv + "mlp.3.bias"]),
        ]
    timm += [
        ("norm.weight", sd["encoder.ln.weight"]),
        ("norm.bias", sd["encoder.ln.bias"]),
        ("head.weight", sd["heads.head.weight"]),
        ("head.bias", sd["heads.head.bias"]),
    ]
    return timm


def torchvision_to_hf(sd, layers):
    """torchvision VisionTransformer state_dict -> [(Hugging Face
    ViTForImageClassification name, tensor)], q, k, v split out of in_proj."""
    hf = [
        ("vit.embeddings.cls_token", sd["class_token"]),
        ("vit.embeddings.position_embeddings", sd["encoder.pos_embedding"]),
        ("vit.embeddings.patch_embeddings.projection.weight", sd["conv_proj.weight"]),
        ("vit.embeddings.patch_embeddings.projection.bias", sd["conv_proj.bias"]),
    ]
    for i in range(layers):
        tv = f"encoder.layers.encoder_layer_{i}."
        h = f"vit.encoder.layer.{i}."
        qw, kw, vw = split_qkv(sd[tv + "self_attention.in_proj_weight"])
        qb, kb, vb = split_qkv(sd[tv + "self_attention.in_proj_bias"])
        hf += [
            (h + "layernorm_before.weight", sd[tv + "ln_1.weight"]),
            (h + "layernorm_before.bias", sd[tv + "ln_1.bias"]),
            (h + "attention.attention.query.weight", qw),
            (h + "attention.attention.query.bias", qb),
            (h + "attention.attention.key.weight", kw),
            (h + "attention.attention.key.bias", kb),
            (h + "attention.attention.value.weight", vw),
            (h + "attention.attention.value.bias", vb),
            (h + "attention.output.dense.weight", sd[tv + "self_attention.out_proj.weight"]),
            (h + "attention.output.dense.bias", sd[tv + "self_attention.out_proj.bias"]),
            (h + "layernorm_after.weight", sd[tv + "ln_2.weight"]),
            (h + "layernorm_after.bias", sd[tv + "ln_2.bias"]),
            (h + "intermediate.dense.weight", sd[tv + "mlp.0.weight"]),
            (h + "intermediate.dense.bias", sd[tv + "mlp.0.bias"]),
            (h + "output.dense.weight", sd[tv + "mlp.3.weight"]),
            (h + "output.dense.bias", sd[tv + "mlp.3.bias"]),
        ]
    hf += [
        ("vit.layernorm.weight", sd["encoder.ln.weight"]),
        ("vit.layernorm.bias", sd["encoder.ln.bias"]),
        ("classifier.weight", sd["heads.head.weight"]),
        ("classifier.bias", sd["heads.head.bias"]),
    ]
    return hf
