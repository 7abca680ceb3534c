"""PyTorch at real ViT sizes, for docs/performance.md: torchvision's VisionTransformer (Ti/16, S/16, B/16 at
224×224, 1000 classes) on this machine's CPU, beside our BenchmarkForward and BenchmarkTrainStep.

    /usr/bin/python3 docs/pytorch/bench_real.py [--threads 2] [--steps 5] [ROW ...]

Rows: ti16-b1, ti16-b16, s16-b1, s16-b16, b16-b1, b16-b16 (forward under no_grad, eval mode) and
ti16-train-b32 (forward, cross-entropy, backward, AdamW step). Default: all. Prints one JSON line per row with
the median of the timed steps (after one warm-up): ms per step and images per second."""
import argparse, json, time
import torch, torch.nn as nn
from torchvision.models.vision_transformer import VisionTransformer

SIZES = {"ti16": (192, 12, 3, 768), "s16": (384, 12, 6, 1536), "b16": (768, 12, 12, 3072)}  # width, depth, heads, MLP
ROWS = {"ti16-b1": ("ti16", "infer", 1), "ti16-b16": ("ti16", "infer", 16), "s16-b1": ("s16", "infer", 1),
        "s16-b16": ("s16", "infer", 16), "b16-b1": ("b16", "infer", 1), "b16-b16": ("b16", "infer", 16),
        "ti16-train-b32": ("ti16", "train", 32)}


def row(name, steps):
    size, mode, batch = ROWS[name]
    d, depth, heads, mlp = SIZES[size]
    m = VisionTransformer(image_size=224, patch_size=16, num_layers=depth, num_heads=heads, hidden_dim=d, mlp_dim=mlp,
                          num_classes=1000)
    x, y = torch.randn(batch, 3, 224, 224), torch.randint(0, 1000, (batch,))
    opt, lossf, times = torch.optim.AdamW(m.parameters(), lr=1e-3), nn.CrossEntropyLoss(), []
    for _ in range(steps + 1):
        t = time.perf_counter()
        if mode == "train":
            m.train(); opt.zero_grad(); lossf(m(x), y).backward(); opt.step()
        else:
            m.eval()
            with torch.no_grad():
                m(x)
        times.append(time.perf_counter() - t)
    med = sorted(times[1:])[len(times[1:]) // 2]
    return {"row": name, "mode": mode, "batch": batch, "ms_per_step": round(med * 1000, 2), "img_per_s": round(batch / med, 2),
            "threads": torch.get_num_threads(), "torch": torch.__version__}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("rows", nargs="*", default=list(ROWS))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for r in a.rows:
        print(json.dumps(row(r, a.steps)), flush=True)
