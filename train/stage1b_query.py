"""Stage 1b: the CLIP text tower learns that a multiple-choice option list says what to answer, not where to look.

PGP pools by the CLIP embedding of the whole user text (spec §3.5: for a benchmark that is "question + options"). A
list such as "Options: (A) red. (B) yellow. (C) purple. (D) blue." names the colour of nearly every object in the
scene, so the relevance map spreads over all of them and the pooled tokens lose the one object the question is about:
an SFT model answered 86.7% of the held-out multiple-choice questions with the spec's CLIP text and 92.3% when the
same LLM prompt was pooled by the bare question (train/model_card_limits.md). Fine-tuning the tower through the LM
loss alone did not fix it (86.7 → 87.4%: the double softmax passes little gradient). This stage trains the tower
directly: e(question + options) → e₀(question), stage 1's own embedding of the bare question (frozen), and
e(text) → e₀(text) for bare questions and captions so nothing else moves; loss = mean (1 − cosine). Only the text
tower and text_projection train (the rest of the model, and the runtime, are unchanged: the CLIP text is still the
whole user text). SFT and DPO keep the trained tower frozen, so SFT learns to read the tokens that it pools.

It runs between stage 1 and SFT. It ran after SFT for the previous weights (as "stage 2b", train/logs/
before_query_first/); run before, the SFT that follows answered 92.7% of the held-out MC and 93.3% of the open
questions through the runtime, against 92.2% / 91.1% (the open gain is significant, the MC one is not:
train/model_card_limits.md).

    /usr/bin/python3 train/stage1b_query.py --data DIR --out RUN_DIR [--steps N --batch B --lr LR --seed S]
Reads RUN_DIR/stage1.pt, writes RUN_DIR/stage1b.pt (stage 1's state with the trained text tower: what SFT starts
from). Runs in about a minute; a finished stage1b.pt made from the same stage-1 step is kept (rerunning does
nothing), one from another step is made again. Logs train/logs/stage1b.jsonl, with the mean cosine on the validation
split's multiple-choice texts before and after.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as Fn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine as E  # noqa: E402
import model as M  # noqa: E402
import samples as S  # noqa: E402


def pairs_of(records, captions):
    """(text, target text): every multiple-choice text → its bare question, every bare question and the first
    `captions` captions → themselves (sorted: the order does not depend on set iteration)."""
    mc = sorted({(q["mc_question"], q["question"]) for r in records for q in r["qa"]})
    bare = sorted({(q["question"], q["question"]) for r in records for q in r["qa"]})
    return mc + bare + [(r["caption"], r["caption"]) for r in records[:captions]]


@torch.no_grad()
def targets_of(net, tok, texts, batch=256):
    """text → its unit embedding e₀ by the tower as it is now (the frozen targets)."""
    texts = sorted(set(texts))
    out = {}
    for s in range(0, len(texts), batch):
        for t, e in zip(texts[s:s + batch], Fn.normalize(E.text_embeddings(net, tok, texts[s:s + batch]), dim=-1)):
            out[t] = e
    return out


def cosines(net, tok, pairs, targets):
    """cos(e(text), e₀(target text)) for each (text, target text) pair."""
    e = Fn.normalize(E.text_embeddings(net, tok, [a for a, _ in pairs]), dim=-1)
    return (e * torch.stack([targets[b] for _, b in pairs])).sum(-1)


@torch.no_grad()
def mean_cosine(net, tok, pairs, targets):
    return round(cosines(net, tok, pairs, targets).mean().item(), 4)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--captions", type=int, default=500, help="training captions kept in place (anchors)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log", default="stage1b")
    args = ap.parse_args()
    path = os.path.join(args.out, "stage1b.pt")
    aligned = E.load_state(os.path.join(args.out, "stage1.pt"))
    if aligned is None:
        raise SystemExit("no stage1.pt in --out: run stage1_align.py first")
    done = E.load_state(path)
    if done is not None and done["extra"].get("stage1_step") == aligned["step"]:
        print(f"{path} exists (from stage-1 step {aligned['step']}): stage 1b already ran")
        return
    if done is not None:
        print(f"{path} came from stage-1 step {done['extra'].get('stage1_step')}, stage1.pt is at {aligned['step']}: "
              "running again")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    _, records = S.load_split(args.data, "train")
    _, vrecords = S.load_split(args.data, "val")
    tok = S.Tokenizers()
    net = M.TinyPPLLaVA(aligned["weights"], config=aligned["config"])
    params = M.param_groups(net, "text")
    pairs = pairs_of(records, args.captions)
    held_out = [p for p in pairs_of(vrecords, 0) if p[0] != p[1]]
    targets = targets_of(net, tok, [b for _, b in pairs + held_out])
    log = E.Logger(args.log)
    log.log(step=0, pairs=len(pairs), val_mc_cosine=mean_cosine(net, tok, held_out, targets))
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0, betas=(0.9, 0.98))
    rng = np.random.default_rng(args.seed)
    net.train()
    for step in range(1, args.steps + 1):
        for g in opt.param_groups:
            g["lr"] = E.lr_at(step - 1, args.steps, args.lr, 20)
        batch = [pairs[i] for i in rng.integers(len(pairs), size=args.batch)]
        loss = (1 - cosines(net, tok, batch, targets)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == args.steps:
            log.log(step=step, loss=round(loss.item(), 5), lr=round(opt.param_groups[0]["lr"], 6))
    log.log(step=args.steps, val_mc_cosine=mean_cosine(net, tok, held_out, targets))
    E.save_state(path, net, opt, args.steps, extra={"stage1_step": aligned["step"]})


if __name__ == "__main__":
    main()
