"""Stage 2: instruction tuning with prompt-guided pooling on the interleave mix (spec §5.3, §5.5): video QA (multiple
choice + open + describe), single images (one tile, (1,3,3) pooling + image_newline) and image pairs (multi-image,
BT-Adapter over the 2 images). Loss: cross-entropy on the answer tokens + EOS. Trainable: BT-Adapter, projector (MLP
+ clip_visual_ln/projection: they learn through the pooling weights), LLM, and the base CLIP vision layers unless
--freeze-clip (§5.3 freezes them; train/run_all.sh does); frozen: CLIP text tower, logit_scale. Starts from stage 1b's
weights (--start: stage 1's, with the text tower trained by train/stage1b_query.py). --region W adds stage 1's region term on video batches, --direct W stage 1's direct term with stage 1's
heads, frozen (the logged loss is then the sum).

    /usr/bin/python3 train/stage2_sft.py --data DIR --out RUN_DIR [--steps N --batch B --seed S --threads K]
Resumable (RUN_DIR/stage2.pt); logs train/logs/stage2.jsonl; writes RUN_DIR/sft/ (HF layout) at the end.
"""
import argparse
import os
import time
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine as E  # noqa: E402
import model as M  # noqa: E402
import samples as S  # noqa: E402
import stage1_align as A  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log", default="stage2")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-items", type=int, default=440, help="val questions per evaluation (every k-th video)")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--per-video", type=int, default=1,
                    help="questions per video in a video batch (the vision tower runs once per video)")
    ap.add_argument("--mix", default="0.7,0.15,0.15", help="shares of video QA, single images, image pairs")
    ap.add_argument("--loss", choices=["token", "sample"], default="sample",
                    help="token: mean over all answer tokens (long captions dominate); sample: mean of per-sample means")
    ap.add_argument("--type-weights", default="",
                    help="oversampling of question types within a video batch, e.g. direction=3,shape_of_colour=3")
    ap.add_argument("--freeze-clip", action="store_true",
                    help="keep the base CLIP vision layers frozen (spec §5.3); BT-Adapter, projector and LLM train")
    ap.add_argument("--region", type=float, default=0.0,
                    help="weight of stage 1's region term on video batches (needs --per-video > 1): each object's "
                         "patches classified among the frozen text tower's colour / shape / direction phrases")
    ap.add_argument("--region-per-patch", action="store_true", help="as stage 1's: each patch of an object classified")
    ap.add_argument("--direct", type=float, default=0.0,
                    help="weight of stage 1's direct term on video batches, read by stage 1's saved heads (frozen): "
                         "the vision feature must keep telling each object's attributes while the BT-Adapter trains")
    ap.add_argument("--start", default="stage1.pt",
                    help="the state in --out that SFT starts from: stage1b.pt after stage 1b (run_all.sh), stage1.pt "
                         "without it; stage 1's direct heads are read from stage1.pt either way")
    ap.add_argument("--stop-at", type=float, default=0, help="unix time: save and finish early once passed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    frames, records = S.load_split(args.data, "train")
    vframes, vrecords = S.load_split(args.data, "val")
    tok = S.Tokenizers()
    path = os.path.join(args.out, "stage2.pt")
    state = E.load_state(path)
    start = state or E.load_state(os.path.join(args.out, args.start))
    if start is None:
        raise SystemExit(f"no {args.start} in --out: run stage1_align.py (and stage1b_query.py) first")
    net = M.TinyPPLLaVA(start["weights"], config=start["config"])
    heads = None
    if args.direct:
        heads = A.saved_direct_heads(E.load_state(os.path.join(args.out, "stage1.pt")))
        if heads is None:
            raise SystemExit("--direct: stage1.pt holds no direct heads (run stage 1 with --direct)")
    params = M.param_groups(net, "sft", freeze_clip=args.freeze_clip)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0, betas=(0.9, 0.98))
    step = 0
    if state:
        opt.load_state_dict(state["opt"])
        step = state["step"]
    cache = E.TextCache(net, tok)
    items = S.video_items(records)
    log = E.Logger(args.log)
    weights = {k: float(v) for k, v in (kv.split("=") for kv in args.type_weights.split(",") if kv)} or None
    while step < args.steps:
        net.train()
        mix = E.Mix(frames, records, [args.seed, step], args.batch, shares=[float(x) for x in args.mix.split(",")],
                    per_video=args.per_video, items=items, type_weights=weights)  # per-step seed: resumes replay the stream
        kind, fr, texts, answers, which = mix.next()
        seqs, starts, _, _ = S.batch_tensors(tok, texts, answers, E.n_images(kind))
        for g in opt.param_groups:
            g["lr"] = E.lr_at(step, args.steps, args.lr, args.warmup)
        seen = {} if (args.region or heads is not None) and which is not None else None
        visuals = E.visual_tokens(net, kind, fr, cache(texts), which=which, seen=seen)
        logp, rows = E.answer_logprobs(net, kind, seqs, starts, visuals)
        loss = -(logp.mean() if args.loss == "token" else E.per_sample_mean(logp, rows, len(texts)))
        region = direct = None
        if seen and args.region:  # its own random stream: the batches stay those of the run without it
            phrases = A.attribute_phrases(np.random.default_rng([args.seed, step, 1]))
            e_attr = {a: cache(texts_a) for a, texts_a in phrases.items()}
            region = A.region_loss(net, seen["feature"], e_attr, fr, records, mix.videos, args.region_per_patch)
            loss = loss + args.region * region
        if seen and heads is not None:
            direct = A.direct_loss(heads, seen["feature"], fr, records, mix.videos)
            loss = loss + args.direct * direct
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            log.log(step=step, kind=str(kind), loss=round(loss.item(), 4), lr=round(opt.param_groups[0]["lr"], 6),
                    **({"region": round(region.item(), 4)} if region is not None else {}),
                    **({"direct": round(direct.item(), 4)} if direct is not None else {}))
        if step % 100 == 0 or step == args.steps:
            E.save_state(path, net, opt, step)
        if args.stop_at and time.time() > args.stop_at:
            E.save_state(path, net, opt, step)
            log.log(step=step, stopped_early="wall-clock --stop-at reached", planned_steps=args.steps)
            break
        if args.eval_every and (step % args.eval_every == 0 or step == args.steps):
            res = E.evaluate(net, tok, vframes, vrecords, max_items=args.eval_items)
            log.log(step=step, val=E.summarize(res["pgp"]))
    net.save(os.path.join(args.out, "sft"))


if __name__ == "__main__":
    main()
