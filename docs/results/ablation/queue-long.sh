#!/usr/bin/env bash
# Ablation rows of issue 16 at the issue's budget (Fashion-MNIST recipe, -val 5000), one after another.
cd "$(dirname "$0")/../../.."
go build -o /tmp/vit-train ./cmd/train
base=(-data /usr/share/datasets/fashion-mnist -classes testdata/fashion-mnist/classes.txt -preset mnist-small -patch 4
  -init torchvision -batch 128 -lr 2e-3 -wd 0.05 -warmup 1 -smoothing 0.1 -pad 0 -seed 0 -val 5000)
row() {
  name=$1; shift
  mkdir -p runs/long/$name
  /usr/bin/time -v /tmp/vit-train "${base[@]}" "$@" -out runs/long/$name/vit.safetensors > runs/long/$name/log.txt 2>&1
}
row ra-erase-ema -epochs 55 -augment randaugment -erase 0.25 -ema 0.999
row stem -epochs 50 -stem conv -augment randaugment -erase 0.25 -ema 0.999
row stem-gap-sincos -epochs 50 -stem conv -pool mean -pos-embed sincos -augment randaugment -erase 0.25 -ema 0.999
