#!/usr/bin/env bash
# Real ViT sizes beside PyTorch, and every figure as a fraction of this
# CPU's measured peak (docs/performance.md):
#   1. BenchmarkPeak (layers/ops/sgemm): FMA GFLOP/s per instruction set,
#      one core and all cores;
#   2. BenchmarkProducts (layers/ops): the large and attention-sized products;
#   3. BenchmarkForward (model) for Ti/16, S/16, B/16 at 224×224, batch 1 and
#      16, and BenchmarkTrainStep (train) for Ti/16 at batch 32;
#   4. docs/pytorch/bench_real.py, the same rows with torchvision's
#      VisionTransformer (needs Debian's python3-torch, python3-torchvision).
# Go rows are the median of COUNT runs (default 3); PyTorch's the median of
# its timed steps.
#
#   docs/bench_real.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -run '^$' -bench 'Peak' -benchtime 1s -count "$count" ./layers/ops/sgemm/ | tee "$tmp/peak.txt" >&2
go test -run '^$' -bench 'Products' -benchtime 1s -count "$count" ./layers/ops/ | tee "$tmp/products.txt" >&2
go test -run '^$' -bench 'Forward/(ti16|s16|b16)/' -benchtime 3x -count "$count" ./model/ | tee "$tmp/forward.txt" >&2
go test -run '^$' -bench 'TrainStep/ti16' -benchtime 3x -count "$count" ./train/ | tee "$tmp/train.txt" >&2
/usr/bin/python3 docs/pytorch/bench_real.py --steps 5 | tee "$tmp/torch.jsonl" >&2

/usr/bin/env python3 - "$tmp" <<'PY'
import json, re, statistics, sys
tmp = sys.argv[1]
def bench(f):
    rows = {}
    for line in open(f"{tmp}/{f}"):
        m = re.match(r"Benchmark(\S+?)-\d+\s+\d+\s+\S+ ns/op\s+(.*)", line)
        if not m:
            continue
        metrics = dict((u, float(v)) for v, u in re.findall(r"([\d.]+) (\S+)", m.group(2)))
        rows.setdefault(m.group(1), []).append(metrics)
    return {k: {u: statistics.median(r[u] for r in v) for u in v[0]} for k, v in rows.items()}
peak = bench("peak.txt")
cores = max(int(re.search(r"cores=(\d+)", k).group(1)) for k in peak)
best = max(v["GFLOP/s"] for k, v in peak.items() if f"cores={cores}" in k)
print(f"\npeak (BenchmarkPeak, medians): " + ", ".join(f"{k} {v['GFLOP/s']:.1f}" for k, v in sorted(peak.items())))
print(f"yardstick: {best:.1f} GFLOP/s on {cores} cores\n")
for k, v in sorted(bench("products.txt").items()):
    print(f"{k:40s} {v['GFLOP/s']:7.1f} GFLOP/s  {100 * v['GFLOP/s'] / best:5.1f}% of peak")
torch = {}
for line in open(f"{tmp}/torch.jsonl"):
    r = json.loads(line)
    torch[r["row"]] = r
go = bench("forward.txt")
go.update({"TrainStep/" + k.split("/", 1)[1]: v for k, v in bench("train.txt").items()})
print()
print(f"{'row':16s} {'Go':>12s} {'PyTorch':>12s} {'Go/PyTorch':>10s} {'Go GFLOP/s':>10s} {'% of peak':>9s}")
for row, key in (("ti16-b1", "Forward/ti16/batch=1"), ("ti16-b16", "Forward/ti16/batch=16"), ("s16-b1", "Forward/s16/batch=1"),
                 ("s16-b16", "Forward/s16/batch=16"), ("b16-b1", "Forward/b16/batch=1"), ("b16-b16", "Forward/b16/batch=16"),
                 ("ti16-train-b32", "TrainStep/ti16/batch=32")):
    g, t = go.get(key), torch.get(row)
    if not g or not t:
        continue
    if row.endswith("-b1"):
        gs, ts, ratio = f"{g['ms/img']:.1f} ms", f"{t['ms_per_step']:.1f} ms", t["ms_per_step"] / g["ms/img"]
    else:
        gs, ts, ratio = f"{g['img/s']:.2f} img/s", f"{t['img_per_s']:.2f} img/s", g["img/s"] / t["img_per_s"]
    print(f"{row:16s} {gs:>12s} {ts:>12s} {ratio:10.2f} {g['GFLOP/s']:10.1f} {100 * g['GFLOP/s'] / best:8.1f}%")
PY
