#!/usr/bin/env bash
# Load-tests cmd/infer -serve with wrk and prints the figures of
# docs/serving.md: for each model, 32 concurrent clients for DURATION with
# batching on and off, then one client at a time (a lone request's
# latency), and the offline forward pass (BenchmarkForward) at batch 16
# and 1 for comparison.
#
#   docs/serving/loadtest.sh
#
# Needs wrk (apt-get install wrk) and, for the Fashion-MNIST model,
# Debian's dataset-fashion-mnist. Environment:
#   FASHION   a Fashion-MNIST checkpoint of docs/training.md's recipe
#             (default runs/serve/fashion.safetensors, trained here for 3
#             epochs if absent: its speed is the 91% model's, same shape)
#   DURATION  of each loaded run (default 30s); LONE: of each lone run (5s; 8 per model)
#   PORT      default 8089
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${DURATION:-30s}
lone=${LONE:-5s}
port=${PORT:-8089}
data=/usr/share/datasets/fashion-mnist
fashion=${FASHION:-runs/serve/fashion.safetensors}
out=runs/serve
mkdir -p "$out"
command -v wrk >/dev/null || { echo "loadtest: needs wrk (apt-get install wrk)" >&2; exit 1; }

go build -o "$out/infer" ./cmd/infer
if [ ! -f "$fashion" ]; then
	echo "loadtest: training $fashion (docs/training.md's recipe, 3 epochs)" >&2
	go run ./cmd/train -data "$data" -classes testdata/fashion-mnist/classes.txt -preset mnist-small -patch 4 \
		-init torchvision -epochs 3 -batch 128 -lr 2e-3 -wd 0.05 -warmup 1 -smoothing 0.1 -pad 0 -seed 0 \
		-out "$fashion" >"$out/train.log" 2>&1
fi
# 100 real 28×28 test images (10 per class) as PNG files; a Ti/16 with
# timm's preprocessing; the repository's JPEG photos.
rm -rf "$out/fashion-png" && go run docs/make_samples.go -data "$data" -out "$out/fashion-png" -per-class 10 >/dev/null
[ -f "$out/ti16.safetensors" ] || go run docs/serving/make_ti16.go -out "$out/ti16.safetensors"
photos=(testdata/photos/*.jpg)

# run NAME MODEL CONNS DURATION FLAGS FILES...: serve, load, scrape, stop.
run() {
	local name=$1 model=$2 conns=$3 dur=$4 flags=$5
	shift 5
	# shellcheck disable=SC2086
	"$out/infer" -model "$model" -serve "127.0.0.1:$port" $flags 2>"$out/$name.log" &
	local pid=$!
	for _ in $(seq 100); do curl -sf "localhost:$port/healthz" >/dev/null && break; sleep 0.1; done
	wrk -t "$((conns < 2 ? 1 : 2))" -c "$conns" -d "$dur" --latency -s docs/serving/post.lua "http://127.0.0.1:$port" -- "$@" >"$out/$name.wrk"
	curl -s "localhost:$port/metrics" >"$out/$name.metrics"
	kill -TERM "$pid"
	local code=0
	wait "$pid" || code=$?
	/usr/bin/env python3 - "$out/$name" "$code" <<'PY'
import re, sys
base, code = sys.argv[1], sys.argv[2]
w = open(base + ".wrk").read()
m = open(base + ".metrics").read()
def wrk(pat):
    r = re.search(pat, w)
    return r.group(1) if r else "-"
def metric(name):
    r = re.search(r"^" + re.escape(name) + r" (\S+)$", m, re.M)
    return float(r.group(1)) if r else 0.0
codes = dict((c, float(v)) for c, v in re.findall(r'vit_http_requests_total\{code="(\d+)",handler="/v1/classify"\} (\S+)', m))
bad = sum(v for c, v in codes.items() if c not in ("200", "499"))
errs = wrk(r"Socket errors: (.*)").replace("-", "none")
non2xx = wrk(r"Non-2xx or 3xx responses: (\d+)").replace("-", "0")
rss = metric("process_resident_memory_bytes") / 2**20
batches = metric("vit_batch_size_count")
rps, p50, p99, n = wrk(r"Requests/sec:\s+(\S+)"), wrk(r"(?m)^\s+50%\s+(\S+)"), wrk(r"(?m)^\s+99%\s+(\S+)"), wrk(r"(\d+) requests in")
name, mean = base.split("/")[-1], metric("vit_batch_size_sum") / max(batches, 1)
print(f"{name:24s} {rps:>9s} req/s  p50 {p50:>8s}  p99 {p99:>8s}  requests {n:>6s}  non-2xx {non2xx}"
      f"  socket errors {errs}  server 4xx/5xx {bad:.0f}  mean batch {mean:.1f}  RSS {rss:.0f} MiB  exit {code}")
PY
}

# lones NAME MODEL FILES...: one client, batching on and off in the order
# on off off on on off off on (the machine's speed drifts), then the
# medians of each mode's runs.
lones() {
	local name=$1 model=$2
	shift 2
	local i=0
	for mode in on off off on on off off on; do
		i=$((i + 1))
		if [ "$mode" = on ]; then
			run "$name-lone-batched-$i" "$model" 1 "$lone" "" "$@"
		else
			run "$name-lone-unbatched-$i" "$model" 1 "$lone" "-batching=false" "$@"
		fi
	done
	/usr/bin/env python3 - "$out" "$name" <<'PY'
import glob, re, statistics, sys
out, name = sys.argv[1], sys.argv[2]
def ms(s):
    v, unit = re.match(r"([\d.]+)(\w+)", s).groups()
    return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]
res = {}
for mode in ("batched", "unbatched"):
    p50, mean = [], []
    for f in glob.glob(f"{out}/{name}-lone-{mode}-*.wrk"):
        w = open(f).read()
        p50.append(ms(re.search(r"(?m)^\s+50%\s+(\S+)", w).group(1)))
        mean.append(ms(re.search(r"Latency\s+(\S+)", w).group(1)))
    res[mode] = (statistics.median(p50), statistics.median(mean), len(p50))
b, u = res["batched"], res["unbatched"]
print(f"{name} lone request, median of {b[2]} runs each: p50 {b[0]:.3f} ms batched vs {u[0]:.3f} ms unbatched "
      f"({100 * (b[0] / u[0] - 1):+.1f}%), mean {b[1]:.3f} vs {u[1]:.3f} ms ({100 * (b[1] / u[1] - 1):+.1f}%)")
PY
}

echo "== loaded: 32 clients, $duration; lone: 1 client, $lone"
run fashion-batched "$fashion" 32 "$duration" "" "$out"/fashion-png/*.png
run fashion-unbatched "$fashion" 32 "$duration" "-batching=false" "$out"/fashion-png/*.png
lones fashion "$fashion" "$out"/fashion-png/*.png
run ti16-batched "$out/ti16.safetensors" 32 "$duration" "" "${photos[@]}"
run ti16-unbatched "$out/ti16.safetensors" 32 "$duration" "-batching=false" "${photos[@]}"
lones ti16 "$out/ti16.safetensors" "${photos[@]}"
echo "== offline: BenchmarkForward (one graph, no HTTP, no decoding)"
go test -run '^$' -bench 'Forward/(fashion-mnist|ti16)/' -benchtime 3s ./model/ | grep -E '^Benchmark'
