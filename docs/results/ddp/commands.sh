#!/usr/bin/env bash
# The figures of docs/scale.md (2026-12-02, this 2-core machine), from the repository root.
F=/usr/share/datasets/fashion-mnist
A=runs/long/ra-erase-ema/vit.safetensors   # Go: docs/results/ablation/queue-long.sh, row ra-erase-ema
# One epoch of Fashion-MNIST on 2 processes (w2b.*), then Go evaluates A and the result (infer-A.txt, infer2.txt)
/usr/bin/python3 docs/pytorch/ddp_train.py --nproc-per-node 2 --threads 1 --pretrained $A --data $F \
  --classes testdata/fashion-mnist/classes.txt --batch 128 --lr 1e-4 --warmup 0 --seed 0 --epochs 1 \
  --out runs/ddp/continued2.safetensors > docs/results/ddp/w2b.jsonl 2> docs/results/ddp/w2b.log
go run ./cmd/infer -model $A -data $F > docs/results/ddp/infer-A.txt 2>&1
go run ./cmd/infer -model runs/ddp/continued2.safetensors -data $F > docs/results/ddp/infer2.txt 2>&1
# Throughput on the same 12,800 images: 1 process × 2 threads, 2 processes × 1 thread (tp-w1, tp-w2)
common=(--pretrained $A --data $F --batch 128 --lr 1e-4 --warmup 0 --seed 0 --epochs 1 --limit-train 12800 --limit-test 1000)
/usr/bin/python3 docs/pytorch/ddp_train.py --threads 2 "${common[@]}" > docs/results/ddp/tp-w1.jsonl
/usr/bin/python3 docs/pytorch/ddp_train.py --nproc-per-node 2 --threads 1 "${common[@]}" > docs/results/ddp/tp-w2.jsonl
# The DDP step against a single-process step at twice the batch, and the sampler's halves
/usr/bin/python3 docs/pytorch/ddp_check.py --nproc-per-node 2 2>/dev/null | tail -1 > docs/results/ddp/ddp_check.json
# The same throughput with OpenBLAS installed (apt-get install libopenblas-dev; the runs above used the reference
# BLAS), the 206k-parameter model spelled out instead of loaded from A (tp-w1-openblas, tp-w2-openblas)
common=(--patch 4 --dim 64 --depth 6 --heads 4 --mlp-dim 128 --data $F --batch 128 --lr 1e-4 --warmup 0 --seed 0 --epochs 1 --limit-train 12800 --limit-test 1000)
/usr/bin/python3 docs/pytorch/ddp_train.py --threads 2 "${common[@]}" > docs/results/ddp/tp-w1-openblas.jsonl
/usr/bin/python3 docs/pytorch/ddp_train.py --nproc-per-node 2 --threads 1 "${common[@]}" > docs/results/ddp/tp-w2-openblas.jsonl
# A mean-pooling checkpoint (docs/training.md's recipe, row stem-gap-sincos of results/ablation/queue-long.sh) through
# 20 DDP steps and back (meanpool.jsonl, infer-meanpool.txt)
/usr/bin/python3 docs/pytorch/ddp_train.py --nproc-per-node 2 --threads 1 --pretrained runs/long/stem-gap-sincos/vit.safetensors \
  --data $F --classes testdata/fashion-mnist/classes.txt --batch 128 --lr 1e-4 --warmup 0 --seed 0 --epochs 1 \
  --limit-train 2560 --out runs/ddp/meanpool.safetensors > docs/results/ddp/meanpool.jsonl
go run ./cmd/infer -model runs/ddp/meanpool.safetensors -data $F > docs/results/ddp/infer-meanpool.txt 2>&1
