#!/usr/bin/python3
"""Writes adamw_fixture.json: reference values from PyTorch for the Go tests
of package optim (AdamW and global-norm gradient clipping).

Run from this directory with Debian's interpreter and torch:

    /usr/bin/python3 make_adamw_fixture.py > adamw_fixture.json

Every number is written with Python's repr (shortest round-trip form), so
the float64 values decode exactly; float32 values are written as the float64
numbers they equal exactly.
"""
import json
import platform
import sys

import torch

STEPS = 5
LR = 1e-2
BETAS = (0.9, 0.999)
EPS = 1e-8
WD = 0.05
MAX_NORM = 1.0


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def adamw_case(dtype, w0, b0, gws, gbs):
    """Runs torch.optim.AdamW on a decayed weight (3,4) and an undecayed bias (4)."""
    w = w0.clone().to(dtype).requires_grad_(True)
    b = b0.clone().to(dtype).requires_grad_(True)
    opt = torch.optim.AdamW(
        [{"params": [w], "weight_decay": WD}, {"params": [b], "weight_decay": 0.0}],
        lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, amsgrad=False, foreach=False)
    case = {
        "dtype": str(dtype).replace("torch.", ""),
        "init": {"w": flat(w), "b": flat(b)},
        "grads": [],
        "after": [],
    }
    for s in range(STEPS):
        gw = gws[s].to(dtype)
        gb = gbs[s].to(dtype)
        case["grads"].append({"w": flat(gw), "b": flat(gb)})
        w.grad = gw.clone()
        b.grad = gb.clone()
        opt.step()
        case["after"].append({"w": flat(w), "b": flat(b)})
    return case


def clip_case(name, dtype, ga, gb):
    a = torch.zeros(ga.shape, dtype=dtype, requires_grad=True)
    b = torch.zeros(gb.shape, dtype=dtype, requires_grad=True)
    a.grad = ga.to(dtype).clone()
    b.grad = gb.to(dtype).clone()
    case = {
        "name": name,
        "dtype": str(dtype).replace("torch.", ""),
        "max_norm": MAX_NORM,
        "grads": {"a": flat(a.grad), "b": flat(b.grad)},
        "shapes": {"a": list(ga.shape), "b": list(gb.shape)},
    }
    norm = torch.nn.utils.clip_grad_norm_([a, b], max_norm=MAX_NORM, norm_type=2.0)
    case["norm"] = float(norm)
    case["clipped"] = {"a": flat(a.grad), "b": flat(b.grad)}
    return case


def main():
    torch.manual_seed(20240611)
    f64 = torch.float64
    w0 = torch.randn(3, 4, dtype=f64) * 0.5
    b0 = torch.randn(4, dtype=f64) * 0.1
    # Per-step gradients of varied scale, with an exact zero and a large entry.
    gws, gbs = [], []
    for s in range(STEPS):
        gw = torch.randn(3, 4, dtype=f64) * (0.1 * (s + 1))
        gb = torch.randn(4, dtype=f64) * 0.01
        if s == 1:
            gw[0, 0] = 0.0
            gb[2] = 5.0
        gws.append(gw)
        gbs.append(gb)

    fixture = {
        "generator": "make_adamw_fixture.py",
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "config": {"lr": LR, "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS,
                   "weight_decay": WD, "steps": STEPS,
                   "params": [{"name": "w", "shape": [3, 4], "decay": True},
                              {"name": "b", "shape": [4], "decay": False}]},
        "adamw": [
            adamw_case(torch.float64, w0, b0, gws, gbs),
            adamw_case(torch.float32, w0, b0, gws, gbs),
        ],
        "clip": [
            clip_case("float64_clipped", f64,
                      torch.randn(3, 4, dtype=f64) * 2.0, torch.randn(4, dtype=f64)),
            clip_case("float64_unclipped", f64,
                      torch.randn(3, 4, dtype=f64) * 0.05, torch.randn(4, dtype=f64) * 0.05),
            clip_case("float32_clipped", torch.float32,
                      torch.randn(3, 4, dtype=f64) * 3.0, torch.randn(4, dtype=f64)),
        ],
    }
    json.dump(fixture, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
