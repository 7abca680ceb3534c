#!/usr/bin/python3
"""Checks that ddp_train.py's distributed training is the single-process
recipe, on a tiny model and a tiny random dataset:

  (a) sampler: for each of two epochs (and for a dataset size the processes
      divide and one they do not), the ranks' DistributedSampler index sets
      are disjoint and together are the whole epoch (less the n mod W
      indices drop_last leaves out), and at every step the ranks' batches
      together are exactly the next `batch` positions of the epoch's
      permutation (torch.randperm seeded seed + epoch); the two epochs'
      orders differ (set_epoch);
  (b) step, for two tiny models (16×16×1 images, patch 4, dim 16, depth 1:
      a patch embedding, and a conv stem with frozen sin-cos positions):
      from identical weights, --steps DistributedDataParallel steps
      (ddp_train.ddp_step: AdamW with its parameter groups, clipping, the
      warmup + cosine rate) with b images per rank equal the same number of
      single-process steps (train_torch.train_step) on a copy of the model
      in rank 0 with the W·b images in rank order, within --tol on every
      parameter and every (clipped) gradient after every step, and on the
      gradient norm before clipping (relative); and every rank holds the
      same weights.

    torchrun --nproc_per_node 2 docs/pytorch/ddp_check.py
    /usr/bin/python3 docs/pytorch/ddp_check.py --nproc-per-node 2    (the same, for a torchrun that fails to start)

Rank 0 prints one JSON line; the exit status is 1 if a check fails.
"""

import argparse
import copy
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

import ddp_train as dt  # noqa: E402
import train_torch as tt  # noqa: E402

CONFIG = {"image_size": 16, "patch_size": 4, "channels": 1, "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32,
          "num_classes": 5, "pool": "cls", "gelu": "exact", "init": "timm"}
# The same with a conv stem and fixed (frozen) sin-cos positions.
CONFIG_STEM = dict(CONFIG, stem="conv", pos_embed="sincos")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ddp_check.py", description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--per-rank-batch", type=int, default=4, help="b: images per process and step")
    a("--steps", type=int, default=3, help="training steps compared (each one checked)")
    a("--images", type=int, default=64, help="size of the random training set")
    a("--lr", type=float, default=1e-3, help="peak learning rate")
    a("--clip", type=float, default=0.5, help="gradient-norm clipping")
    a("--wd", type=float, default=0.05, help="weight decay")
    a("--tol", type=float, default=1e-5, help="largest allowed |DDP − single process| of any parameter")
    a("--seed", type=int, default=0)
    a("--threads", type=int, default=1)
    return p.parse_args(argv)


def check_sampler(world, rank, seed, b):
    """(a): every rank's epoch and batches, gathered and checked on rank 0."""
    results = []
    for n in (48, 48 + world - 1 if world > 1 else 49):
        for epoch in (0, 1):
            sampler = dt.make_sampler(n, world, rank, seed)
            batches = [bt.tolist() for bt in dt.rank_batches(sampler, epoch, b)]
            mine = list(iter(sampler))
            gathered = [None] * world
            dist.all_gather_object(gathered, (mine, batches))
            if rank != 0:
                continue
            sets = [set(m) for m, _ in gathered]
            disjoint = all(not (sets[i] & sets[j]) for i in range(world) for j in range(i + 1, world))
            no_repeats = all(len(s) == len(m) for s, (m, _) in zip(sets, gathered))
            union = set().union(*sets)
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
            whole = union == set(perm[:n - n % world]) and len(union) == n - n % world
            chunks = all(sorted(sum((g[1][k] for g in gathered), [])) == sorted(perm[k * b * world:(k + 1) * b * world])
                         for k in range(len(gathered[0][1])))
            results.append({"images": n, "epoch": epoch, "disjoint": disjoint and no_repeats, "union_is_epoch": whole,
                            "steps_are_permutation_chunks": chunks, "steps": len(gathered[0][1]), "order": perm[:6]})
    if rank != 0:
        return None, True
    orders_differ = all(results[i]["order"] != results[i + 1]["order"] for i in range(0, len(results), 2))
    ok = orders_differ and all(r["disjoint"] and r["union_is_epoch"] and r["steps_are_permutation_chunks"] for r in results)
    for r in results:
        del r["order"]
    return {"epochs": results, "set_epoch_changes_order": orders_differ}, ok


def gather_rows(t, world):
    """The ranks' tensors t (same shape), concatenated in rank order."""
    parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def check_step(args, world, rank, config):
    """(b): --steps DDP steps of the model of config against single-process
    steps on rank 0."""
    rng = np.random.default_rng(args.seed)
    c, s = config["channels"], config["image_size"]
    split = tt.Split(rng.integers(0, 256, (args.images, c, s, s), dtype=np.uint8),
                     rng.integers(0, config["num_classes"], args.images).astype(np.int64))
    mean, std = tt.compute_normalization(split.images)
    lut = tt.normalization_table(mean, std)

    torch.manual_seed(args.seed)
    model = dt.build_from_config(config, config["init"])  # timm's init: no zero head, every gradient non-zero
    ref = copy.deepcopy(model) if rank == 0 else None
    ddp = DistributedDataParallel(model)
    opt = dt.make_optimizer(model, args.wd)[0]
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    if ref is not None:
        ref_opt = dt.make_optimizer(ref, args.wd)[0]
        ref_params = [p for p in ref.parameters() if p.requires_grad]
    b = args.per_rank_batch
    sampler = dt.make_sampler(split.n, world, rank, args.seed)
    batches = dt.rank_batches(sampler, 0, b)
    total, warmup = len(batches), 1
    if args.steps > len(batches):
        raise tt.UsageError(f"--steps {args.steps}: only {len(batches)} steps of {b} images per rank in {split.n} images")
    steps = []
    for step in range(args.steps):
        rng_step = np.random.default_rng([args.seed, 2, step, rank])
        x, y, target = tt.training_batch(split, batches[step], lut, rng_step, pad=2, flip=True)
        lr = tt.lr_at(step, args.lr, 1e-5, warmup, total)
        _, loss_v, norm = dt.ddp_step(ddp, opt, criterion, x, target, args.clip, lr, where=f"check step {step + 1}")
        xs, ts = gather_rows(x, world), gather_rows(target, world)
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        all_flat = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(all_flat, flat)
        if ref is None:
            continue
        _, ref_loss, ref_norm = tt.train_step(ref, ref_opt, ref_params, criterion, xs, ts, args.clip, lr)
        worst, worst_name, worst_grad = 0.0, "", 0.0
        for (name, p), q in zip(model.named_parameters(), ref.parameters()):
            d = (p.detach() - q.detach()).abs().max().item()
            if d > worst:
                worst, worst_name = d, name
            if p.grad is not None:  # the (clipped) gradients the step used
                worst_grad = max(worst_grad, (p.grad - q.grad).abs().max().item())
        ranks_same = max((f - all_flat[0]).abs().max().item() for f in all_flat)
        steps.append({"step": step + 1, "lr": lr, "max_abs_diff": worst, "worst_param": worst_name, "grad_max_abs_diff": worst_grad,
                      "ranks_max_abs_diff": ranks_same, "grad_norm_ddp": norm, "grad_norm_single": ref_norm,
                      "clipped": norm > args.clip, "rank0_loss": loss_v, "single_loss": ref_loss})
    if rank != 0:
        return None, True
    # Adam hardly sees the scale of the gradient, so the gradient norm before
    # clipping is compared too (a sum over the ranks instead of the mean
    # would double it).
    ok = all(st["max_abs_diff"] <= args.tol and st["ranks_max_abs_diff"] == 0.0 and st["grad_max_abs_diff"] <= args.tol
             and abs(st["grad_norm_ddp"] - st["grad_norm_single"]) <= args.tol * max(1.0, st["grad_norm_single"])
             for st in steps)
    return {"model": config, "per_rank_batch": b, "global_batch": b * world, "tol": args.tol, "steps": steps}, ok


def run(argv):
    args = parse_args(argv)
    if args.per_rank_batch < 1 or args.steps < 1 or args.tol < 0:
        raise tt.UsageError("--per-rank-batch and --steps must be positive, --tol not negative")
    torch.set_num_threads(args.threads)
    rank, world = dt.init_distributed("gloo", torch.device("cpu"))
    sampler_report, ok_a = check_sampler(world, rank, args.seed, args.per_rank_batch)
    step_report, ok_b = [], True
    for config in (CONFIG, CONFIG_STEM):
        report, ok = check_step(args, world, rank, config)
        step_report.append(report)
        ok_b = ok_b and ok
    dt.finish()
    if rank == 0:
        print(json.dumps({"world_size": world, "sampler_ok": ok_a, "step_ok": ok_b, "ok": ok_a and ok_b,
                          "sampler": sampler_report, "step": step_report, "torch": torch.__version__},
                         separators=(",", ":")), flush=True)
    return ok_a and ok_b


def main():
    try:
        ok = run(dt.launch(os.path.abspath(__file__), sys.argv[1:]))
    except tt.UsageError as e:
        if int(os.environ.get("RANK", "0")) == 0:
            tt.log(f"ddp_check: {e}")
        dt.exit_now(2)
    dt.exit_now(0 if ok else 1)


if __name__ == "__main__":
    main()
