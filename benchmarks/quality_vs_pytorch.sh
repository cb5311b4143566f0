#!/usr/bin/env bash
# Quality per CPU-minute, side by side: a PyTorch SimCLR (benchmarks/pytorch_simclr.py) and
# a Pretext config, back to back on one machine with the same wall-clock budget and threads,
# then both encoders probed by the same `pretext probe` (all labels and 100 per class; the
# chosen depths and the last stage; linear and kNN). Prints both, the difference, and the
# random-init and raw-pixel baselines.
# Usage: benchmarks/quality_vs_pytorch.sh [PYTHON] [MINUTES] [CONFIG] [THREADS]
#   PYTHON   an interpreter with torch and safetensors (default: python3), e.g.
#            python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch safetensors
#   MINUTES  pretraining budget of each side (default: 20)
#   CONFIG   Pretext's side (default: experiments/simclr-resnet10-20min.yaml)
#   THREADS  threads of each side (default: 2)
# Pretext's side runs with OPENBLAS_CORETYPE unset, so that it gets the kernels it chooses
# for the CPU (as in compare_train.sh); a machine-wide setting would otherwise hold it to
# slower ones while PyTorch, which does not convolve through OpenBLAS, is unaffected.
# Runs go to $OUT (default: runs/quality-vs-pytorch); the PyTorch side trains the same
# network as the default config (resnet10-small, width 32, 28 px, gray) so that Pretext's
# probe reads its weights by their torchvision names.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
MINUTES=${2:-20}
CONFIG=${3:-experiments/simclr-resnet10-20min.yaml}
THREADS=${4:-2}
OUT=${OUT:-runs/quality-vs-pytorch}
DATA=data/fashion-mnist
PRETEXT=.build/release/pretext
[ -x "$PRETEXT" ] || make build >/dev/null
"$PY" -c "import torch, safetensors" 2>/dev/null || {
  echo "$PY: needs torch and safetensors (python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch safetensors)" >&2
  exit 1
}
[ -d "$DATA/unlabeled" ] || "$PRETEXT" data import fashion-mnist --out "$DATA"
mkdir -p "$OUT"

echo "== PyTorch SimCLR, $MINUTES min, $THREADS threads" >&2
OMP_NUM_THREADS=$THREADS "$PY" benchmarks/pytorch_simclr.py --data "$DATA/unlabeled" --out "$OUT/pytorch" \
  --minutes "$MINUTES" --threads "$THREADS" --width 32 --image-size 28 >"$OUT/pytorch.log" 2>&1
echo "== Pretext $CONFIG, $MINUTES min, $THREADS threads" >&2
rm -rf "$OUT/pretext"
env -u OPENBLAS_CORETYPE "$PRETEXT" pretrain "$CONFIG" --set train.minutes="$MINUTES" --set train.steps=0 --set output="$OUT" \
  --set name=pretext --threads "$THREADS" >"$OUT/pretext.log" 2>&1

# The same probe for both: features → linear (SGD, the probe's defaults) and kNN (k 20).
probe() {  # side weights labels layers [extra args]
  local side=$1 weights=$2 labels=$3 layers=$4
  shift 4
  local budget=()
  [ "$labels" = all ] || budget=(--labels-per-class "$labels")
  echo "== probe $side, labels $labels, layers $layers" >&2
  env -u OPENBLAS_CORETYPE "$PRETEXT" probe --weights "$weights" --train "$DATA/train" --test "$DATA/test" "${budget[@]}" --layers "$layers" \
    --threads "$THREADS" --out "$OUT/probe-$side-$labels-$layers" "$@" >/dev/null
}
TORCH_ARCH=(--backbone resnet10-small --width 32 --image-size 28 --in-channels 1)
for labels in all 100; do
  probe pretext "$OUT/pretext/backbone.safetensors" "$labels" all
  probe pretext "$OUT/pretext/backbone.safetensors" "$labels" last --no-baselines
  probe pytorch "$OUT/pytorch/backbone.safetensors" "$labels" all --no-baselines "${TORCH_ARCH[@]}"
  probe pytorch "$OUT/pytorch/backbone.safetensors" "$labels" last --no-baselines "${TORCH_ARCH[@]}"
done

python3 - "$OUT" "$MINUTES" "$CONFIG" <<'PYEOF'
import json, os, sys
out, minutes, config = sys.argv[1], sys.argv[2], sys.argv[3]
def probe(side, labels, layers, model="backbone"):
    d = json.load(open(os.path.join(out, f"probe-{side}-{labels}-{layers}", "probe.json")))
    return next(r for r in d["results"] if r["model"] == model)
torch_run = json.load(open(os.path.join(out, "pytorch", "run.json")))
pretext_run = json.load(open(os.path.join(out, "pretext", "pretrain.json")))
images = 60000
runs = {
    "pytorch": (f"PyTorch {torch_run['recipe']['torch']} (benchmarks/pytorch_simclr.py)",
                torch_run["steps"], torch_run["seconds"], torch_run["recipe"]["batch"]),
    "pretext": (f"Pretext ({os.path.basename(config)})", pretext_run["steps"], pretext_run["seconds"], 256),
}
cols = [("all", "all", "linear"), ("all", "last", "linear"), ("all", "all", "knn"), ("100", "all", "linear"),
        ("100", "last", "linear"), ("100", "all", "knn")]
head = ["all labels: linear (chosen)", "last stage", "kNN", "100/class: linear (chosen)", "last stage", "kNN"]
print(f"Fashion-MNIST SimCLR, {minutes} minutes of pretraining each, one machine, back to back\n")
print("| run | pretraining | " + " | ".join(head) + " |")
print("| --- | --- |" + " --- |" * len(head))
scores = {}
for side in ("pytorch", "pretext"):
    name, steps, seconds, batch = runs[side]
    scores[side] = [probe(side, l, d)[m]["top1"] for l, d, m in cols]
    m, s = divmod(round(seconds), 60)
    print(f"| {name} | {m}m {s:02d}s, {steps} steps ({steps * batch / images:.2f} epochs) | "
          + " | ".join(f"{v:.2f}" for v in scores[side]) + " |")
print("| Pretext − PyTorch | | " + " | ".join(f"{a - b:+.2f}" for a, b in zip(scores["pretext"], scores["pytorch"])) + " |")
for labels in ("all", "100"):
    r, p = probe("pretext", labels, "all", "random-init"), probe("pretext", labels, "all", "raw-pixels")
    print(f"\nbaselines, {labels} labels: random init linear {r['linear']['top1']:.2f} kNN {r['knn']['top1']:.2f}; "
          f"raw pixels linear {p['linear']['top1']:.2f} kNN {p['knn']['top1']:.2f}")
PYEOF
