"""Stage 3: video DPO (spec §5.4): sigmoid DPO, β = 0.1, only the LLM trains; the reference policy is the frozen SFT
model. Pairs: each training video question (multiple choice and open) with chosen = the right answer and rejected =
a plausible wrong one (train/data.py: preferably the colour / shape / direction of another object in the same video);
with --rejected own, the SFT model's own greedy answer where it is wrong (the paper's LLaVA-Hound pairs rank the SFT
model's own responses), the data's otherwise.
loss = −log σ(β[(log π − log π_ref)(y_w) − (log π − log π_ref)(y_l)]), log π summed over answer tokens + EOS.

    /usr/bin/python3 train/stage3_dpo.py --data DIR --out RUN_DIR [--steps N --batch B --seed S --threads K]
        [--rejected data|own]
Resumable (RUN_DIR/stage3.pt); logs train/logs/stage3.jsonl; writes RUN_DIR/dpo/ (HF layout) at the end.
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


def sequence_logps(net, seqs, starts, visuals):
    logp, rows = E.answer_logprobs(net, "video", seqs, starts, visuals)
    return torch.zeros(len(seqs)).index_add(0, rows, logp)


def rejected_answers(chunk, own=None):
    """→ (the rejected answer of each item, how many are the model's own): the generator's plausible wrong answer, or
    with `own` (the SFT model's greedy answers) that answer wherever it is non-empty and wrong."""
    if own is None:
        return [c[3] for c in chunk], 0
    mine = [bool(o) and o != c[2] for o, c in zip(own, chunk)]
    return [o if m else c[3] for o, m, c in zip(own, mine, chunk)], sum(mine)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log", default="stage3")
    ap.add_argument("--rejected", choices=["data", "own"], default="data",
                    help="data: the generator's plausible wrong answer; own: the SFT model's greedy answer where it "
                         "is wrong (else the data's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    frames, records = S.load_split(args.data, "train")
    items = [i for i in S.video_items(records, with_describe=False) if i[3] is not None]
    tok = S.Tokenizers()
    sft = E.load_state(os.path.join(args.out, "stage2.pt"))
    if sft is None:
        raise SystemExit("no stage2.pt in --out: run stage2_sft.py first")
    reference = M.TinyPPLLaVA(sft["weights"], config=sft["config"])
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    path = os.path.join(args.out, "stage3.pt")
    state = E.load_state(path)
    net = M.TinyPPLLaVA((state or sft)["weights"], config=sft["config"])
    params = M.param_groups(net, "dpo")
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    step = 0
    if state:
        opt.load_state_dict(state["opt"])
        step = state["step"]
    cache = E.TextCache(reference, tok)
    log = E.Logger(args.log)
    while step < args.steps:
        net.train()
        rng = np.random.default_rng([args.seed, step])
        chunk = [items[i] for i in rng.integers(len(items), size=args.batch)]
        texts = [c[1] for c in chunk]
        with torch.no_grad():  # vision + projector are frozen and identical in both policies
            visuals = E.visual_tokens(reference, "video", frames[[c[0] for c in chunk]], cache(texts))
        chosen, cs, _, _ = S.batch_tensors(tok, texts, [c[2] for c in chunk], 1)
        own = None
        if args.rejected == "own":  # the reference's own mistakes, where it makes one
            own = E.greedy_answers(reference, tok, cache, frames[[c[0] for c in chunk]], texts)
        wrong, mistakes = rejected_answers(chunk, own)
        rejected, rs, _, _ = S.batch_tensors(tok, texts, wrong, 1)
        seqs, starts = chosen + rejected, cs + rs
        both = torch.cat([visuals, visuals])
        for g in opt.param_groups:
            g["lr"] = E.lr_at(step, args.steps, args.lr, 10)
        pi = sequence_logps(net, seqs, starts, both)
        with torch.no_grad():
            pr = sequence_logps(reference, seqs, starts, both)
        b = len(chunk)
        margin = (pi[:b] - pr[:b]) - (pi[b:] - pr[b:])
        loss = -Fn.logsigmoid(args.beta * margin).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            acc = (margin > 0).float().mean().item()
            log.log(step=step, loss=round(loss.item(), 4), reward_margin=round(args.beta * margin.mean().item(), 4),
                    pair_acc=round(acc, 3),
                    **({"own_mistakes": mistakes} if args.rejected == "own" else {}))
        if step % 50 == 0 or step == args.steps:
            E.save_state(path, net, opt, step)
    net.save(os.path.join(args.out, "dpo"))


if __name__ == "__main__":
    main()
