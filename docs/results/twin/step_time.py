#!/usr/bin/python3
"""Seconds per training step of the Fashion-MNIST model (patch 4, width 64, depth 6, batch 128), conv stem and
patch projection, one torch thread: augmentation (RandAugment, erasing) and the step itself, means of steps 2-6.
Run from the repository root: /usr/bin/python3 docs/results/twin/step_time.py"""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pytorch"))
import numpy as np, torch, torch.nn as nn  # noqa: E401,E402
import train_torch as T
torch.set_num_threads(1)
train, test, names, fmt = T.load_data('/usr/share/datasets/fashion-mnist', 'auto')
mean, std = T.compute_normalization(train.images)
lut = T.normalization_table(mean, std)
for stem in ["conv", "patch"]:
    torch.manual_seed(0)
    model = T.build_model(28, 4, 1, 64, 6, 4, 128, 10, "torchvision", stem)
    groups, _, _ = T.param_groups(model, 0.05)
    opt = torch.optim.AdamW(groups, lr=1e-3)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    params = [p for p in model.parameters()]
    policy = T.parse_policy("randaugment")
    eraser = __import__('torchvision').transforms.RandomErasing(p=0.25, value=0)
    ta = ts = 0
    for step in range(6):
        idx = np.arange(step*128, (step+1)*128)
        t = time.perf_counter()
        x, y, tg = T.training_batch(train, idx, lut, T.step_rng(0, step), 0, True, policy, eraser, 0, 0, 10, torch_seed=step)
        t1 = time.perf_counter()
        T.train_step(model, opt, params, crit, x, tg, 1.0, 1e-3)
        t2 = time.perf_counter()
        if step >= 1: ta += t1 - t; ts += t2 - t1
    print(stem, "aug s/batch", ta/5, "step s/batch", ts/5, "img/s", 640/(ta+ts))
