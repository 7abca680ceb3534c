#!/usr/bin/python3
"""Go against the PyTorch twin, epoch by epoch, from two metrics files (JSON lines with epoch, val_acc,
test_acc, test_loss, images_per_s, seconds). Prints a Markdown table (every EVERY epochs and the last), the
best-by-validation epoch of each, and the largest test-accuracy gap over all epochs.

    /usr/bin/python3 docs/results/twin/compare.py GO.metrics.jsonl TWIN.metrics.jsonl [EVERY]
"""
import json
import sys


def read(path):
    rows = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                if "epoch" not in r:  # the twin's closing summary line
                    continue
                rows[r["epoch"]] = r  # a resumed run may repeat an epoch: the last line wins
    return rows


def best_by_val(rows):
    # the first epoch with the highest validation accuracy, as cmd/train keeps its best checkpoint
    e = max(sorted(rows), key=lambda k: rows[k]["val_acc"])
    return e, rows[e]


def main(go_path, twin_path, every=5):
    go, tw = read(go_path), read(twin_path)
    common = sorted(set(go) & set(tw))
    if not common:
        sys.exit("no epoch in common between %s and %s" % (go_path, twin_path))
    last = common[-1]
    print("| epoch | Go val acc % | twin val acc % | Go test acc % | twin test acc % | Go test loss | twin test loss |")
    print("|---|---|---|---|---|---|---|")
    for e in common:
        if e == 1 or e % every == 0 or e == last:
            g, t = go[e], tw[e]
            print("| %d | %.2f | %.2f | %.2f | %.2f | %.4f | %.4f |" % (
                e, 100 * g["val_acc"], 100 * t["val_acc"], 100 * g["test_acc"], 100 * t["test_acc"],
                g["test_loss"], t["test_loss"]))
    gaps = [(abs(go[e]["test_acc"] - tw[e]["test_acc"]), e) for e in common]
    gap, at = max(gaps)
    print()
    print("final (epoch %d): Go test %.2f%%, twin test %.2f%%, twin - Go = %+.2f points" % (
        last, 100 * go[last]["test_acc"], 100 * tw[last]["test_acc"],
        100 * (tw[last]["test_acc"] - go[last]["test_acc"])))
    for name, rows in (("Go", go), ("twin", tw)):
        e, r = best_by_val(rows)
        print("%s best by val: epoch %d, val %.2f%%, test %.2f%%" % (name, e, 100 * r["val_acc"], 100 * r["test_acc"]))
    print("largest test-accuracy gap over epochs 1-%d: %.2f points (epoch %d)" % (last, 100 * gap, at))
    for name, rows in (("Go", go), ("twin", tw)):
        ips = [rows[e]["images_per_s"] for e in common]
        secs = sum(rows[e]["seconds"] for e in common)
        print("%s: %.0f-%.0f images/s, %.0f s of epochs in all" % (name, min(ips), max(ips), secs))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 5)
