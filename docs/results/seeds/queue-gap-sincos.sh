#!/usr/bin/env bash
# Seeds 1 and 2 of the chosen Fashion-MNIST recipe (conv stem + mean pooling + sin-cos positions, 50 epochs);
# seed 0 is the row stem-gap-sincos of docs/results/ablation/queue-long.sh. Each run alone on the machine.
cd "$(dirname "$0")/../../.."
go build -o /tmp/vit-train ./cmd/train
base=(-data /usr/share/datasets/fashion-mnist -classes testdata/fashion-mnist/classes.txt -preset mnist-small -patch 4
  -init torchvision -batch 128 -lr 2e-3 -wd 0.05 -warmup 1 -smoothing 0.1 -pad 0 -val 5000
  -epochs 50 -stem conv -pool mean -pos-embed sincos -augment randaugment -erase 0.25 -ema 0.999)
for s in 1 2; do
  mkdir -p runs/seeds/gap-sincos-s$s
  /usr/bin/time -v /tmp/vit-train "${base[@]}" -seed $s -out runs/seeds/gap-sincos-s$s/vit.safetensors > runs/seeds/gap-sincos-s$s/log.txt 2>&1
done
