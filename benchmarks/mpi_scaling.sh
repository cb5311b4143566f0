#!/usr/bin/env bash
# Data-parallel scaling on one machine: the same config and global batch trained by one
# process with N threads and by N processes with one thread each (mpirun), alternately,
# ROUNDS times. Prints images/s per run: the median of the logged windows after the
# first (the first includes start-up).
#
#   benchmarks/mpi_scaling.sh CONFIG [STEPS] [ROUNDS] [N] [--set key=value …]
#   benchmarks/mpi_scaling.sh experiments/mae.yaml 30 2 2
#
# Run from the repository root after `swift build -c release`, with the config's data
# imported (data/fashion-mnist for the shipped experiments).
set -euo pipefail
config=$1
steps=${2:-30}
rounds=${3:-2}
n=${4:-2}
shift $(($# < 4 ? $# : 4))
pretext=.build/release/pretext
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(--set "output=$out" --set "train.steps=$steps" --set train.log_every=5 --set train.checkpoint_every=100000
  --set train.artifacts_every=0)

# The median images/s of a run's logged windows, the first left out.
speed() {
  grep -o '"images_per_second":[0-9.e+-]*' "$1/metrics.jsonl" | cut -d: -f2 | tail -n +2 | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.1f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

for round in $(seq 1 "$rounds"); do
  "$pretext" pretrain "$config" "${common[@]}" --set "name=one-$round" --threads "$n" "$@" >/dev/null 2>&1
  mpirun --oversubscribe --allow-run-as-root -np "$n" "$pretext" pretrain "$config" "${common[@]}" \
    --set "name=many-$round" --threads 1 "$@" >/dev/null 2>&1
  echo "round $round: 1 process × $n threads $(speed "$out/one-$round") images/s;" \
    "$n processes × 1 thread $(speed "$out/many-$round") images/s"
done
