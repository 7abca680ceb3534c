#!/usr/bin/env bash
# Runs our training and inference benchmarks and the PyTorch yardstick in
# one go, and prints images/s side by side with the ratios.
#
#   docs/bench.sh [PEER_SCRIPT]
#
# PEER_SCRIPT defaults to ../shared/peer/vit_torch_bench.py (torchvision's
# VisionTransformer, batch 128, 2 threads; needs Debian's python3-torch and
# python3-torchvision). Environment: TAGS="openblas" benchmarks the OpenBLAS
# build (needs libopenblas-dev and cgo); BENCHTIME (default 5x) is passed to
# go test -benchtime.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${1:-../shared/peer/vit_torch_bench.py}
tags=${TAGS:-}
benchtime=${BENCHTIME:-5x}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

export CGO_ENABLED=${CGO_ENABLED:-1}
echo "go: $(go version | cut -d' ' -f3-), build tags: ${tags:-none}" >&2
go test -tags "$tags" -run '^$' -bench 'TrainStep/(mnist-small|cifar-tiny)$' -benchtime "$benchtime" ./train/ | tee "$tmp/go-train.txt" >&2
go test -tags "$tags" -run '^$' -bench 'Forward/(mnist-small|cifar-tiny)$' -benchtime "$benchtime" ./model/ | tee "$tmp/go-infer.txt" >&2
/usr/bin/python3 "$peer" --steps 5 mnist-small cifar-tiny | tee "$tmp/torch.jsonl" >&2

/usr/bin/python3 - "$tmp" <<'PY'
import json, re, sys, os
tmp = sys.argv[1]
go = {}
for mode, f in (("train", "go-train.txt"), ("infer", "go-infer.txt")):
    for line in open(os.path.join(tmp, f)):
        m = re.match(r"Benchmark\w+/([\w-]+?)(?:-\d+)?\s+\d+\s+\d+ ns/op\s+.*?([\d.]+) img/s", line)
        if m:
            go[(m.group(1), mode)] = float(m.group(2))
torch = {}
for line in open(os.path.join(tmp, "torch.jsonl")):
    r = json.loads(line)
    torch[(r["config"], r["mode"])] = r["img_per_s"]
print(f"{'config':<12} {'mode':<6} {'go img/s':>10} {'torch img/s':>12} {'go/torch':>9}")
for key in sorted(torch):
    g, t = go.get(key), torch[key]
    ratio = f"{g / t:.2f}" if g else "-"
    print(f"{key[0]:<12} {key[1]:<6} {g if g else float('nan'):>10.1f} {t:>12.1f} {ratio:>9}")
PY
