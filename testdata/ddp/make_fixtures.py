#!/usr/bin/python3
"""Makes the fixtures of testdata/ddp/: a round trip through PyTorch's
DistributedDataParallel (docs/pytorch/ddp_train.py, 2 processes).

  continued.safetensors  the Go checkpoint testdata/classifier/fashion-tiny.safetensors
                         trained further for 8 steps on 2 processes
  scratch.safetensors    a model started in PyTorch (conv stem, fixed sin-cos
                         positions), 64 steps on 2 processes
  io.safetensors         "input": the first 16 test images of testdata/fashion-sample
                         normalised as continued.safetensors says (16,3,32,32);
                         "input_scratch": the same images normalised as
                         scratch.safetensors says (the two files' normalisations
                         differ); "logits_continued", "logits_scratch" (16,10):
                         the models' eval-mode logits on them, computed by PyTorch.
                         Metadata: the test accuracy each run reported, the
                         images' labels, the Go checkpoint's accuracy in PyTorch.
  VERSIONS.txt           versions and the exact commands

Run from anywhere (paths are the repository's), niced if the machine is busy:

    nice -n 19 /usr/bin/python3 testdata/ddp/make_fixtures.py

It checks what it wrote: names, shapes and metadata as the Go reader wants
them, each file's test accuracy re-evaluated = the accuracy its run reported,
the Go checkpoint's accuracy in PyTorch = its recorded best accuracy.
"""

import hashlib
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "docs", "pytorch"))
sys.path.insert(0, os.path.join(ROOT, "testdata"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

import ddp_train as dt  # noqa: E402
import train_torch as tt  # noqa: E402
from fixturelib import read_safetensors, torchvision_to_timm, write_safetensors  # noqa: E402

DATA = "testdata/fashion-sample"
PRETRAINED = "testdata/classifier/fashion-tiny.safetensors"
COMMON = ["--nproc-per-node", "2", "--data", DATA, "--batch", "64", "--seed", "0", "--threads", "1"]
RUNS = {
    "continued": COMMON + ["--pretrained", PRETRAINED, "--epochs", "1", "--lr", "1e-4", "--warmup", "0",
                           "--limit-train", "512", "--out", "testdata/ddp/continued.safetensors"],
    "scratch": COMMON + ["--epochs", "2", "--limit-train", "2048", "--patch", "8", "--dim", "16", "--depth", "1",
                         "--heads", "2", "--mlp-dim", "32", "--stem", "conv", "--pos-embed", "sincos",
                         "--out", "testdata/ddp/scratch.safetensors"],
}
SCRIPT = "docs/pytorch/ddp_train.py"
N_IO = 16


def run(name, args):
    cmd = [sys.executable, SCRIPT] + args
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if p.returncode:
        sys.exit(f"{name}: ddp_train.py failed with status {p.returncode}")
    lines = [json.loads(s) for s in p.stdout.splitlines() if s.strip()]
    sys.stderr.write(p.stdout)
    return lines


def load(path):
    """A written file as the Go reader would take it: model, config, normalisation."""
    st, meta, naming, _ = dt.read_weights(path)
    assert naming == "timm", (path, naming)
    assert set(meta) == {"format", "vit.config", "classes", "normalization", "pytorch.ddp"}, (path, sorted(meta))
    assert meta["format"] == "pt"
    cfg = dt.parse_config(meta["vit.config"], path)
    assert dt.unsupported(cfg) is None
    model = dt.build_from_config(cfg, cfg.get("init", "torchvision"))
    dt.load_into(model, st, path, False)
    # exactly the model's tensors, no more
    assert sorted(st) == sorted(n for n, _ in dt.timm_state(model)), path
    norm = json.loads(meta["normalization"])
    mean, std = np.array(norm["Mean"], np.float32), np.array(norm["Std"], np.float32)
    return model.eval(), cfg, meta, mean, std


def main():
    torch.set_num_threads(1)
    os.chdir(ROOT)
    reported = {name: run(name, args)[-1] for name, args in RUNS.items()}
    _, test, names = tt.load_cifar10(DATA)

    # The Go checkpoint, evaluated in PyTorch before any training.
    st, meta, _, _ = dt.read_weights(PRETRAINED)
    cfg = dt.parse_config(meta["vit.config"], PRETRAINED)
    pre = dt.build_from_config(cfg, "timm")
    dt.load_into(pre, st, PRETRAINED, False)
    n = json.loads(meta["normalization"])
    pre_lut = tt.normalization_table(np.array(n["Mean"], np.float32), np.array(n["Std"], np.float32))
    _, pre_acc = tt.evaluate(pre.eval(), test, pre_lut, 250)
    assert abs(pre_acc - float(meta["train.best_acc"])) < 1e-9, (pre_acc, meta["train.best_acc"])

    io, io_meta = [], {}
    for name in ("continued", "scratch"):
        model, cfg, meta, mean, std = load(f"testdata/ddp/{name}.safetensors")
        assert json.loads(meta["classes"]) == names
        lut = tt.normalization_table(mean, std)
        _, acc = tt.evaluate(model, test, lut, 250)
        assert acc == reported[name]["test_acc"], (name, acc, reported[name]["test_acc"])
        x, y = tt.make_batch(test, np.arange(N_IO), lut)
        with torch.no_grad():
            logits = model(x)
        io += [("input" if name == "continued" else "input_scratch", x), (f"logits_{name}", logits)]
        io_meta[f"{name}_test_acc"] = json.dumps(reported[name]["test_acc"])
        io_meta[f"{name}_vit_config"] = meta["vit.config"]
        io_meta["labels"] = json.dumps(y.tolist())
        print(f"{name}: re-evaluated test accuracy {acc} = reported; config {meta['vit.config']}", file=sys.stderr)
    io_meta["pretrained_test_acc"] = json.dumps(pre_acc)
    io_meta["format"] = "pt"
    # The continued model has a patch stem: its names are fixturelib's torchvision_to_timm too.
    c_model = load("testdata/ddp/continued.safetensors")[0]
    ref = torchvision_to_timm(c_model.state_dict(), 2)
    got, _, _ = read_safetensors("testdata/ddp/continued.safetensors")
    assert sorted(got) == sorted(k for k, _ in ref) and all(np.array_equal(got[k], v.numpy()) for k, v in ref)
    write_safetensors("testdata/ddp/io.safetensors", io, io_meta)
    back, back_meta, _ = read_safetensors("testdata/ddp/io.safetensors")
    assert back_meta == io_meta and all(np.array_equal(back[k], v.numpy()) for k, v in io)

    with open("testdata/ddp/VERSIONS.txt", "w") as f:
        f.write(f"python {platform.python_version()}\ntorch {torch.__version__}\ntorchvision {torchvision.__version__}\n"
                f"numpy {np.__version__}\n\n")
        f.write("Made from the repository root with\n\n    nice -n 19 /usr/bin/python3 testdata/ddp/make_fixtures.py\n\n"
                "which ran (2 processes, gloo, CPU; `--nproc-per-node 2` makes ddp_train.py start them with "
                "torch.distributed.run, as\n`torchrun --nproc_per_node 2 docs/pytorch/ddp_train.py ...` would: "
                "Debian's torchrun fails to start under Python 3.11):\n\n")
        for name, args in RUNS.items():
            f.write(f"    /usr/bin/python3 {SCRIPT} {' '.join(args)}\n")
        f.write("\nTheir last lines (test_acc is in io.safetensors' metadata too):\n\n")
        for name in RUNS:
            r = {k: v for k, v in reported[name].items() if k not in ("images_per_s", "wall_seconds")}
            f.write(f"    {name}: {json.dumps(r, separators=(',', ':'))}\n")
        f.write(f"\nThe Go checkpoint {PRETRAINED} evaluated in PyTorch before training: test accuracy {pre_acc}\n")
        f.write("\nSHA-256:\n\n")
        for fn in ("continued.safetensors", "scratch.safetensors", "io.safetensors"):
            with open(os.path.join("testdata/ddp", fn), "rb") as g:
                f.write(f"    {hashlib.sha256(g.read()).hexdigest()}  {fn}\n")
    print("wrote testdata/ddp/{continued,scratch,io}.safetensors and VERSIONS.txt", file=sys.stderr)


if __name__ == "__main__":
    main()
