"""Writes sincos.safetensors: the fixed 2-D sin-cos positional embedding of
"Better plain ViT baselines for ImageNet-1k" (big_vision's
posemb_sincos_2d), computed with PyTorch in float64 and stored as float32,
for a few grids and widths. Tensor "h{H}_w{W}_d{D}" has shape (H*W, D),
patches row by row.

    /usr/bin/python3 testdata/parity/make_sincos.py   (from the repository root)

Versions: testdata/parity/VERSIONS.txt."""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fixturelib import read_safetensors, write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "sincos.safetensors")


def posemb_sincos_2d(h, w, width, temperature=10000.0):
    # The formula as big_vision writes it (jnp.mgrid, einsum, concatenate).
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    assert width % 4 == 0
    omega = torch.arange(width // 4, dtype=torch.float64) / (width // 4 - 1)
    omega = 1.0 / (temperature**omega)
    y = torch.einsum("m,d->md", y.flatten(), omega)
    x = torch.einsum("m,d->md", x.flatten(), omega)
    pe = torch.cat([torch.sin(x), torch.cos(x), torch.sin(y), torch.cos(y)], dim=1)
    return pe.float()


cases = [(7, 7, 64), (14, 14, 192), (4, 6, 32), (2, 2, 8)]
tensors = [(f"h{h}_w{w}_d{d}", posemb_sincos_2d(h, w, d)) for h, w, d in cases]
write_safetensors(OUT, tensors, metadata={"source": "big_vision posemb_sincos_2d, temperature 10000"})
got, meta, order = read_safetensors(OUT)
for name, t in tensors:
    assert torch.equal(torch.from_numpy(got[name]), t), name
print("wrote", OUT, [n for n, _ in tensors])
