"""Stage 1: contrastive alignment of the vision tower (+ BT-Adapter) and the CLIP text tower on video–text pairs, so
that the relevance map of PGP (§3.4 steps A–C) means something before instruction tuning.

Similarity of a video and a text = Σ_n softmax_n(100·cos_n)·cos_n over the dense patch embeddings n (the same
clip_visual_ln + clip_visual_projection and the same global softmax as PGP; the token-level 'ST' weighting of the
original CLIPModelwithVideo, spec §5.1); symmetric InfoNCE over the batch at temperature 1/20.
Texts: the caption, or one object named by a random subset of size/colour/shape, alone or inside a question template
("What colour is the small triangle?"): the questions PGP will see at inference then point at their object.

    /usr/bin/python3 train/stage1_align.py --data DIR --out RUN_DIR [--steps N --batch B --seed S --threads K]
Resumable: RUN_DIR/stage1.pt holds weights + optimizer + step; rerunning continues. Logs: train/logs/stage1.jsonl.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine as E  # noqa: E402
import model as M  # noqa: E402
import samples as S  # noqa: E402

TEMPLATES = ["{p}", "a {p}", "What colour is the {p}?", "Which way does the {p} move?", "What shape is the {p}?",
             "the {p} in the video"]


def object_text(obj, rng):
    """→ (text, what it says: dict of the attributes it names) for one object."""
    parts, says = [], {}
    if obj["size"] == "small" and rng.random() < 0.8:
        parts.append("small")
        says["size"] = "small"
    keep_colour, keep_shape = rng.random() < 0.7, rng.random() < 0.7
    if not (keep_colour or keep_shape):
        keep_shape = True
    if keep_colour:
        parts.append(obj["colour"])
        says["colour"] = obj["colour"]
    parts.append(obj["shape"] if keep_shape else "object")
    if keep_shape:
        says["shape"] = obj["shape"]
    return TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(p=" ".join(parts)), says


def matches(records, vids, said):
    """(N texts, B videos) bool: text i is true of video j (an object phrase matches any video holding such an object;
    a caption only its own video). In-batch InfoNCE with only the diagonal as positive punished true matches."""
    m = np.zeros((len(said), len(vids)), dtype=bool)
    for i, says in enumerate(said):
        for j, v in enumerate(vids):
            if says is None:
                m[i, j] = i == j
            else:
                m[i, j] = i == j or any(all(o[k] == val for k, val in says.items()) for o in records[v]["objects"])
    return m


def similarity(net, feature, e_t, b):
    """feature (B·T, P, D), e_t (N, proj) → (B, N) token-level softmax-weighted cosines."""
    e_v = torch.nn.functional.normalize(net.visual_embeds(feature).reshape(b, -1, e_t.shape[-1]), dim=-1)
    cos = torch.einsum("bnd,md->bmn", e_v, torch.nn.functional.normalize(e_t, dim=-1))
    w = torch.softmax(torch.exp(net.W[M.ref.MP + ".logit_scale"]) * cos, dim=-1)
    return (w * cos).sum(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log", default="stage1")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    frames, records = S.load_split(args.data, "train")
    tok = S.Tokenizers()
    net = M.TinyPPLLaVA(seed=args.seed)
    params = M.param_groups(net, "align")
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    path = os.path.join(args.out, "stage1.pt")
    state = E.load_state(path)
    step = 0
    if state:
        net = M.TinyPPLLaVA(state["weights"], config=state["config"])
        params = M.param_groups(net, "align")
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
        opt.load_state_dict(state["opt"])
        step = state["step"]
    log = E.Logger(args.log)
    net.train()
    while step < args.steps:
        rng = np.random.default_rng([args.seed, step])  # per-step seed: resuming replays the same batches
        vids = rng.choice(len(records), size=args.batch, replace=False)
        texts, said = [], []
        for v in vids:
            r = records[v]
            if rng.random() < 0.3:
                texts.append(r["caption"])
                said.append(None)
            else:
                text, says = object_text(r["objects"][int(rng.integers(len(r["objects"])))], rng)
                texts.append(text)
                said.append(says)
        for g in opt.param_groups:
            g["lr"] = E.lr_at(step, args.steps, args.lr, 20)
        clip = [tok.clip_ids(t) for t in texts]
        length = max(sum(m) for _, m in clip) + 1  # EOS padding beyond the first EOS does not change e_t
        ids = torch.tensor([c[0][:length] for c in clip])
        mask = torch.tensor([c[1][:length] for c in clip])
        e_t = net.text(ids, mask)
        b, t = len(vids), frames.shape[1]
        feature = net.vision(M.pixels_from_uint8(frames[vids].reshape(b * t, *frames.shape[2:])), b)
        sim = similarity(net, feature, e_t, b) * 20.0
        # Texts can match several videos of the batch (same colour/shape): the targets spread over every true pair.
        truth = torch.from_numpy(matches(records, vids, said)).float().T  # (B videos, N texts)
        target = torch.arange(b)
        logp_text = torch.log_softmax(sim, dim=1)  # video → texts
        logp_video = torch.log_softmax(sim.T, dim=1)  # text → videos
        loss = (-(truth / truth.sum(1, keepdim=True) * logp_text).sum(1).mean()
                - (truth.T / truth.T.sum(1, keepdim=True) * logp_video).sum(1).mean()) / 2
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 10 == 0 or step == args.steps:
            acc = truth[target, sim.argmax(1)].mean().item()  # the best text of each video is true of it
            log.log(step=step, loss=round(loss.item(), 4), acc=round(acc, 3))
        if step % 50 == 0 or step == args.steps:
            E.save_state(path, net, opt, step)


if __name__ == "__main__":
    main()
