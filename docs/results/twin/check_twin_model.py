#!/usr/bin/python3
"""Is the twin's model the Go model? Loads a Go checkpoint (timm names, its
vit.config) into the twin's model (ddp_train.build_from_config: the same
pooling, positions and stem; ddp_train.load_into), and prints its test accuracy and loss on a dataset, to compare with
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
    _, test, _, _ = tt.load_data(data, None)
    model = dt.build_from_config(cfg)  # pooling, positions and stem of the file's config
    dt.load_into(model, timm, path, skip_head=False)  # the same names and shapes, or an error listing them
    norm = json.loads(meta["normalization"])
    lut = tt.normalization_table(np.array(norm["Mean"], np.float32), np.array(norm["Std"], np.float32))
    loss, acc = tt.evaluate(model, test, lut, 256)
    print(json.dumps({"model": path, "config": cfg, "test_acc": acc, "test_loss": loss, "n": test.n,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
