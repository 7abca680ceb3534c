#!/usr/bin/python3
"""Is the twin's model the Go model? Loads a Go checkpoint (timm names, its
vit.config) into train_torch.build_model with the same pooling, positions
and stem, and prints its test accuracy and loss on a dataset, to compare with
go run ./cmd/infer -model FILE -data DIR. With mean pooling the Go model's
fc_norm is the twin's encoder.ln (see MeanPoolViT).

    /usr/bin/python3 docs/results/twin/check_twin_model.py FILE DIR
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "pytorch"))
import ddp_train as dt  # noqa: E402
import train_torch as tt  # noqa: E402


def main(path, data):
    timm, meta, _, _ = dt.read_weights(path)
    cfg = json.loads(meta["vit.config"])
    train, test, names, _ = tt.load_data(data, None)
    model = tt.build_model(cfg["image_size"], cfg["patch_size"], cfg["channels"], cfg["dim"], cfg["depth"], cfg["heads"],
                           cfg["mlp_dim"], cfg["num_classes"], "torchvision", cfg.get("stem") or "patch",
                           pool=cfg.get("pool") or "cls")
    want = {}
    for k in model.state_dict():
        n = dt.tv_to_timm_name(k)
        if n == "norm" + k[len("encoder.ln"):] and cfg.get("pool") == "mean":
            n = "fc_norm" + k[len("encoder.ln"):]
        want[k] = n
    missing = [n for n in want.values() if n not in timm]
    unused = sorted(set(timm) - set(want.values()))
    if missing or unused:
        sys.exit(f"missing {missing}, unused {unused}")
    model.load_state_dict({k: torch.from_numpy(np.array(timm[n]).reshape(model.state_dict()[k].shape)) for k, n in want.items()})
    norm = json.loads(meta["normalization"])
    lut = tt.normalization_table(np.array(norm["Mean"], np.float32), np.array(norm["Std"], np.float32))
    loss, acc = tt.evaluate(model, test, lut, 256)
    print(json.dumps({"model": path, "config": cfg, "test_acc": acc, "test_loss": loss, "n": test.n,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
