#!/usr/bin/env bash
# Ablation rows of issue 16 (Fashion-MNIST recipe, 20 epochs, -val 5000), one after another.
cd /work/main
base=(-data /usr/share/datasets/fashion-mnist -classes testdata/fashion-mnist/classes.txt -preset mnist-small -patch 4
  -init torchvision -epochs 20 -batch 128 -lr 2e-3 -wd 0.05 -warmup 1 -smoothing 0.1 -pad 0 -seed 0 -val 5000)
row() {
  name=$1; shift
  mkdir -p runs/abl/$name
  /usr/bin/time -v /tmp/vit-train "${base[@]}" "$@" -out runs/abl/$name/vit.safetensors > runs/abl/$name/log.txt 2>&1
}
# wait for the base row started by hand
while pgrep -f "runs/abl/base/" > /dev/null; do sleep 10; done
row all -augment randaugment -erase 0.25 -mixup 0.8 -cutmix 1 -ema 0.999
row ra -augment randaugment
row ema -ema 0.999
row erase -erase 0.25
