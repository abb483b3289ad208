"""Stage 3: video DPO (spec §5.4): sigmoid DPO, β = 0.1, only the LLM trains; the reference policy is the frozen SFT
model. Pairs: each training video question (multiple choice and open) with chosen = the right answer and rejected =
a plausible wrong one (train/data.py: preferably the colour / shape / direction of another object in the same video);
with --rejected own, the SFT model's own greedy answer where it is wrong (the paper's LLaVA-Hound pairs rank the SFT
model's own responses), the data's otherwise; with --rejected mined, the SFT model first answers --mine train items
greedily and every batch draws --mined-share of its pairs from the ones it got wrong (its wrong answer rejected; the
hard cases, where --rejected own found a mistake in about 2 of 16 pairs), the rest from the data's pairs.
loss = −log σ(β[(log π − log π_ref)(y_w) − (log π − log π_ref)(y_l)]), log π summed over answer tokens + EOS;
with --sft-weight γ > 0, + γ · the chosen answers' mean token NLL (the paper's trainer's gamma, 0 in its config and
by default here): without it a DPO run of 600 steps displaces the likelihood of every answer (val MC 93% -> 80%,
garbled answers), with γ = 1 it keeps MC where it was (the model card has the runs).

    /usr/bin/python3 train/stage3_dpo.py --data DIR --out RUN_DIR [--steps N --batch B --seed S --threads K]
        [--rejected data|own|mined --mine N --mined-share P] [--sft-weight G]
Resumable (RUN_DIR/stage3.pt); logs train/logs/stage3.jsonl; writes RUN_DIR/dpo/ (HF layout) at the end.
"""
import argparse
import json
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
    """→ (log π of each answer, summed over its tokens + EOS; the per-token log-probs; their batch rows)."""
    logp, rows = E.answer_logprobs(net, "video", seqs, starts, visuals)
    return torch.zeros(len(seqs)).index_add(0, rows, logp), logp, rows


def rejected_answers(chunk, own=None):
    """→ (the rejected answer of each item, how many are the model's own): the generator's plausible wrong answer, or
    with `own` (the SFT model's greedy answers) that answer wherever it is non-empty and wrong."""
    if own is None:
        return [c[3] for c in chunk], 0
    mine = [bool(o) and o != c[2] for o, c in zip(own, chunk)]
    return [o if m else c[3] for o, m, c in zip(own, mine, chunk)], sum(mine)


def mine_mistakes(reference, tok, cache, frames, items, count, seed, batch=32):
    """→ the items, of `count` drawn from `items` (seeded), that the SFT model answers wrong, each with that answer as
    its rejected one (an empty answer too: it is a mistake): (video index, user text, answer, rejected, qtype, is_mc)."""
    rng = np.random.default_rng([seed, 1 << 20])
    pool = [items[i] for i in rng.choice(len(items), size=min(count, len(items)), replace=False)]
    mined = []
    for start in range(0, len(pool), batch):
        chunk = pool[start:start + batch]
        with torch.no_grad():
            own = E.greedy_answers(reference, tok, cache, frames[[c[0] for c in chunk]], [c[1] for c in chunk])
        mined += [(c[0], c[1], c[2], o) + tuple(c[4:]) for o, c in zip(own, chunk) if o != c[2]]
        if start % (batch * 25) == 0:
            print(f"mining: {start + len(chunk)} of {len(pool)} items, {len(mined)} mistakes", flush=True)
    return mined


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
    ap.add_argument("--rejected", choices=["data", "own", "mined"], default="data",
                    help="data: the generator's plausible wrong answer; own: the SFT model's greedy answer where it "
                         "is wrong (else the data's); mined: --mined-share of each batch from the SFT model's mistakes "
                         "on --mine train items")
    ap.add_argument("--sft-weight", type=float, default=0.0,
                    help="γ: loss + γ · the chosen answers' mean token NLL (the paper's trainer has it as gamma, 0 in "
                         "its config); keeps a long DPO from displacing the answers' likelihood")
    ap.add_argument("--mine", type=int, default=4000, help="--rejected mined: train items the SFT model answers")
    ap.add_argument("--mined-share", type=float, default=0.5, help="--rejected mined: share of a batch from them")
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
    mined = []
    if args.rejected == "mined":  # saved beside the run: resuming does not mine again
        mined_path = os.path.join(args.out, "stage3_mined.json")
        if os.path.exists(mined_path):
            with open(mined_path) as f:
                mined = [tuple(m) for m in json.load(f)]
        else:
            mined = mine_mistakes(reference, tok, cache, frames, items, args.mine, args.seed)
            with open(mined_path, "w") as f:
                json.dump(mined, f)
        if not mined:
            raise SystemExit("--rejected mined: the SFT model made no mistake on the mined items")
        log.log(step=step, mined_items=min(args.mine, len(items)), mined_mistakes=len(mined))
    while step < args.steps:
        net.train()
        rng = np.random.default_rng([args.seed, step])
        chunk = [items[i] for i in rng.integers(len(items), size=args.batch)]
        if mined:  # the first share of the batch from the SFT model's mistakes (their rejected = its answer)
            k = int(round(args.mined_share * args.batch))
            chunk = [mined[i] for i in rng.integers(len(mined), size=k)] + chunk[k:]
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
        pi, token_logp, token_rows = sequence_logps(net, seqs, starts, both)
        with torch.no_grad():
            pr = sequence_logps(reference, seqs, starts, both)[0]
        b = len(chunk)
        margin = (pi[:b] - pr[:b]) - (pi[b:] - pr[b:])
        loss = -Fn.logsigmoid(args.beta * margin).mean()
        chosen_nll = None
        if args.sft_weight:  # the chosen answers' tokens: the first b rows of the policy's forward above
            chosen_nll = -token_logp[token_rows < b].mean()
            loss = loss + args.sft_weight * chosen_nll
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            acc = (margin > 0).float().mean().item()
            log.log(step=step, loss=round(loss.item(), 4), reward_margin=round(args.beta * margin.mean().item(), 4),
                    pair_acc=round(acc, 3),
                    **({"own_mistakes": mistakes} if args.rejected == "own" else {}),
                    **({"chosen_nll": round(chosen_nll.item(), 4)} if chosen_nll is not None else {}))
        if step % 50 == 0 or step == args.steps:
            E.save_state(path, net, opt, step)
    net.save(os.path.join(args.out, "dpo"))


if __name__ == "__main__":
    main()
