#!/usr/bin/env bash
# Makes the pictures and outputs shown in docs/insight.md from a checkpoint
# written by cmd/train.
#
#   docs/make_insight.sh CHECKPOINT [METRICS]
#
# METRICS defaults to the metrics file cmd/train writes beside the
# checkpoint (NAME.metrics.jsonl). Environment:
#   DATA     dataset evaluated with -data (default testdata/fashion-sample)
#   SAMPLES  images to classify and draw attention for (default docs/img/samples,
#            made by `go run docs/make_samples.go`)
#   OUT      where the pictures go (default docs/img)
#   NOFLIP   optional: a checkpoint trained with -no-flip, for the second
#            similarity picture (pos-similarity-noflip.png)
# Each command is printed before it runs, as docs/insight.md quotes it.
set -euo pipefail
cd "$(dirname "$0")/.."

ckpt=${1:?usage: docs/make_insight.sh CHECKPOINT [METRICS]}
metrics=${2:-${ckpt%.safetensors}.metrics.jsonl}
data=${DATA:-testdata/fashion-sample}
samples=${SAMPLES:-docs/img/samples}
out=${OUT:-docs/img}
mkdir -p "$out"

infer() {
	echo "+ go run ./cmd/infer $*" >&2
	go run ./cmd/infer "$@"
}

infer -model "$ckpt" -pos-similarity "$out/pos-similarity.png"
if [[ -n ${NOFLIP:-} ]]; then
	infer -model "$NOFLIP" -pos-similarity "$out/pos-similarity-noflip.png"
fi
infer -model "$ckpt" -curves "$out/curves.png" -metrics "$metrics"
infer -model "$ckpt" -attention "$out/attention-dress.png" -attention-layers "$samples/3-dress.png" >/dev/null
for s in 1-trouser 7-sneaker 8-bag 6-shirt; do
	infer -model "$ckpt" -attention "$out/attention-${s#*-}.png" "$samples/$s.png" >/dev/null
done
infer -model "$ckpt" -topk 3 "$samples" | tee "$out/predictions.txt"
infer -model "$ckpt" -data "$data" | tee "$out/evaluation.txt"
