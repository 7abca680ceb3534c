"""Writes the conv-stem parity fixtures: torchvision's VisionTransformer built
with conv_stem_configs (3x3 convolutions of stride 2, each followed by a
LayerNorm over channels and a GELU, then conv_last, a 1x1 convolution to the
width), with non-trivial random weights, and its outputs on random images.

  stem_c1.safetensors, stem_c3.safetensors   weights in torchvision's names
  stem_io.safetensors                        input_c1, logits_c1, features_c1, and the same for c3

c1: 16x16x1 images, 2 convolutions (8, 16 channels), width 16, depth 2.
c3: 16x16x3 images, 3 convolutions (4, 8, 16 channels), width 16, depth 1.
LayerNorm eps 1e-6 everywhere, as the Go model's default.

    /usr/bin/python3 testdata/parity/make_stem.py   (from the repository root)

Versions: testdata/parity/VERSIONS.txt."""

import math
import os
import sys
from functools import partial

import torch
from torch import nn
from torchvision.models.vision_transformer import ConvStemConfig, VisionTransformer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fixturelib import read_safetensors, write_safetensors  # noqa: E402

DIR = os.path.dirname(__file__)
EPS = 1e-6


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def gelu(inplace=None):
    # Conv2dNormActivation passes inplace=True, which nn.GELU does not take.
    return nn.GELU()


def build(channels, widths, image, dim, depth, heads, mlp, classes, seed):
    torch.manual_seed(seed)
    stem = [
        ConvStemConfig(out_channels=w, kernel_size=3, stride=2, norm_layer=partial(ChannelLayerNorm, eps=EPS), activation_layer=gelu)
        for w in widths
    ]
    m = VisionTransformer(
        image_size=image, patch_size=2 ** len(widths), num_layers=depth, num_heads=heads, hidden_dim=dim,
        mlp_dim=mlp, num_classes=classes, conv_stem_configs=stem, norm_layer=partial(nn.LayerNorm, eps=EPS),
    )
    if channels != 3:  # torchvision's stem always starts from 3 channels
        old = m.conv_proj.conv_bn_relu_0[0]
        m.conv_proj.conv_bn_relu_0[0] = nn.Conv2d(channels, old.out_channels, 3, stride=2, padding=1, bias=False)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            r = torch.randn(p.shape, generator=gen)
            if name.endswith("bias") or name in ("class_token", "encoder.pos_embedding"):
                p.copy_(0.1 * r)
            elif p.dim() == 1:  # norm scales
                p.copy_(1 + 0.2 * r)
            else:
                fan_in = p[0].numel()
                p.copy_(r / math.sqrt(fan_in))
    return m.eval()


def run(m, x):
    with torch.no_grad():
        tokens = m._process_input(x)
        n = tokens.shape[0]
        h = torch.cat([m.class_token.expand(n, -1, -1), tokens], dim=1)
        h = m.encoder(h)
        features = h[:, 0]
        return m.heads(features), features


cases = {
    "c1": dict(channels=1, widths=[8, 16], image=16, dim=16, depth=2, heads=2, mlp=32, classes=5, seed=10),
    "c3": dict(channels=3, widths=[4, 8, 16], image=16, dim=16, depth=1, heads=4, mlp=24, classes=7, seed=20),
}
io = []
for key, c in cases.items():
    m = build(**c)
    sd = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
    path = os.path.join(DIR, f"stem_{key}.safetensors")
    write_safetensors(path, list(sd.items()))
    back, _, _ = read_safetensors(path)
    for k, v in sd.items():
        assert torch.equal(torch.from_numpy(back[k]), v), k
    x = torch.randn((3, c["channels"], c["image"], c["image"]), generator=torch.Generator().manual_seed(c["seed"] + 2))
    logits, features = run(m, x)
    assert torch.allclose(logits, m(x)), "run() differs from the model's forward"
    io += [(f"input_{key}", x), (f"logits_{key}", logits), (f"features_{key}", features)]
    print("wrote", path, len(sd), "tensors")
write_safetensors(os.path.join(DIR, "stem_io.safetensors"), io)
print("wrote stem_io.safetensors")
