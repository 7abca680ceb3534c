#!/usr/bin/env bash
# The PyTorch twin of docs/training.md's Fashion-MNIST recipe (conv stem, mean pooling, sin-cos positions,
# RandAugment, erasing 0.25, EMA 0.999, 50 epochs, seed 0), resumable: run the same command again to continue.
cd "$(dirname "$0")/../../.."
mkdir -p runs/twin
/usr/bin/python3 docs/pytorch/train_torch.py --data /usr/share/datasets/fashion-mnist --patch 4 --dim 64 --depth 6 \
  --heads 4 --mlp-dim 128 --init torchvision --epochs 50 --batch 128 --lr 2e-3 --wd 0.05 --warmup 1 --smoothing 0.1 \
  --clip 1 --pad 0 --val 5000 --seed 0 --stem conv --pool mean --pos-embed sincos --augment randaugment --erase 0.25 \
  --ema 0.999 --threads 2 --metrics runs/twin/twin.metrics.jsonl --checkpoint runs/twin/state.pt --resume \
  >> runs/twin/twin.jsonl 2>> runs/twin/twin.log
