#!/usr/bin/env bash
# Benchmark (not a timed test): `lnc opt` on zoo models in release mode.
#
#   bench/opt.sh [MODEL ...]        default: mobilenet_v2 at 224 (target < 250 ms of passes)
#
# Prints, per model and target, the pass-manager time (model loading excluded), the e-graph
# size (e-nodes, e-classes), iterations, stop reason and the compute-node count, from
# `lnc opt --stats`. Environment: RUNS (default 3), SIZE (default 224).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p lnc --quiet
LNC=target/release/lnc
RUNS=${RUNS:-3}
SIZE=${SIZE:-224}
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(mobilenet_v2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for m in "${MODELS[@]}"; do
  "$LNC" zoo "$m" --input-size "$SIZE" -o "$work/$m.lnir"
  for target in cpu fpga; do
    for i in $(seq "$RUNS"); do
      "$LNC" opt "$work/$m.lnir" --target "$target" --stats -o "$work/$m.opt.lnir" 2>/dev/null >"$work/stats.txt"
      total=$(grep '^total:' "$work/stats.txt" | awk '{print $2}')
      eq=$(grep '^pass eqsat:' "$work/stats.txt" | awk '{print $3}')
      echo "$m@$SIZE $target run $i: passes ${total} ms (eqsat ${eq} ms)"
    done
    grep -E '^(egraph|compute nodes)' "$work/stats.txt" | sed "s/^/  $m@$SIZE $target: /"
  done
done
