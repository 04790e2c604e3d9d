#!/usr/bin/env bash
# Reproduce benchmarks/results/synthetic_suite: every method of the book (plus the raw_pixel and
# feature_knn reference rows) on the 7 synthetic categories, quick profile, seed 0, as shards that
# run in parallel with one thread each, then one merge. PROFILE and DATA choose another suite:
#
#   benchmarks/run_synthetic_suite.sh [OUT]      # default OUT=runs/synthetic_suite
#   PROFILE=standard DATA=synthetic:brick,wood,capsule,hexnut benchmarks/run_synthetic_suite.sh runs/standard_suite
#
# Rerun the same command to resume after an interruption (finished cells are skipped).
# Environment: PYTHON (default .venv/bin/python), METHODS, PROFILE (default quick), DATA (default
# synthetic: all seven categories), SHARDS (default 2), ANOLEARN_DATA
# (default ./data), OMP_NUM_THREADS (default 1). The merged table lands in OUT/merged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-runs/synthetic_suite}
METHODS=${METHODS:-anoseg,cutswap,sgsf,ssm,cutpaste,draem,riad}
SHARDS=${SHARDS:-2}
PROFILE=${PROFILE:-quick}
DATA=${DATA:-synthetic}
export ANOLEARN_PROFILE=$PROFILE ANOLEARN_DATA=${ANOLEARN_DATA:-$PWD/data} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"

start=$(date +%s)
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
pids=() dirs=()
for ((i = 0; i < SHARDS; i++)); do
  dirs+=("$OUT/shard$i")
  "$PY" -m anolearn benchmark --methods "$METHODS" --data "$DATA" --profile "$PROFILE" \
      --out "$OUT/shard$i" --shard "$i/$SHARDS" --no-progress > "$OUT/shard$i.log" 2>&1 &
  pids+=($!)
  echo "shard $i/$SHARDS: pid $!, log $OUT/shard$i.log"
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wall time: $(( $(date +%s) - start )) s"
if [ "$status" -ne 0 ]; then
  echo "a shard failed (see its log); rerun this command to resume" >&2
  exit "$status"
fi
"$PY" -m anolearn merge "$OUT/merged" "${dirs[@]}"
