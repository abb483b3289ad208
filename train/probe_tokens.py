"""Usage: /usr/bin/python3 train/probe_tokens.py CHECKPOINT DATA_DIR [--limit N] [--attributes a,b] [--patch-only]

Linear probes on what the LLM sees (the PGP-pooled visual tokens, after the projector): is the asked-about object's
shape / colour / direction / event (appears / disappears / none) decodable from its tokens (per pooled time step, the token of the window with the most
relevance: 4 tokens in time order)? Each video is pooled with the question that names its object
(the PGP relevance then points at it): shape with "What shape is the {colour} object?", colour with "What colour is
the {shape}?", direction with "Which way does the {colour} {shape} move?", event with "What colour is the {shape}?";
the object is a random one of the video (1–3 objects; for event, half the time the video's appearing or disappearing
object where it has one). Train on train-split videos, test on val. CHECKPOINT: an HF folder or a stage*.pt of train/.
A last probe reads shape before any pooling: the vision feature (hs[-2]) of the patch under an object's centre in the
first frame; it tells whether the vision tower encodes shape at all (a tower trained on shape directly reaches ~0.9)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import data as D  # noqa: E402
import engine as E  # noqa: E402
import model as M  # noqa: E402
import samples as S  # noqa: E402

QUESTIONS = {"shape": "What shape is the {colour} object?", "colour": "What colour is the {shape}?",
             "direction": "Which way does the {colour} {shape} move?", "event": "What colour is the {shape}?"}


def load(ckpt):
    if ckpt.endswith(".pt"):
        state = torch.load(ckpt)
        return M.TinyPPLLaVA(state["weights"], config=state["config"])
    return M.TinyPPLLaVA.load(ckpt)


def features(net, cache, frames, records, attribute, limit, seed):
    rng = np.random.default_rng(seed)
    idx = list(range(min(limit, len(records))))
    objects = [records[i]["objects"][int(rng.integers(len(records[i]["objects"])))] for i in idx]
    if attribute == "event":  # half the time the video's appearing / disappearing object, where it has one
        for k, i in enumerate(idx):
            events = [o for o in records[i]["objects"] if D.event(o) != "none"]
            if events and rng.random() < 0.5:
                objects[k] = events[0]
    xs = []
    with torch.no_grad():
        for s in range(0, len(idx), 32):
            chunk = idx[s:s + 32]
            texts = [QUESTIONS[attribute].format(**objects[s + k]) for k in range(len(chunk))]
            b, t = len(chunk), frames.shape[1]
            feature = net.vision(M.pixels_from_uint8(frames[chunk].reshape(b * t, *frames.shape[2:])), b)
            pooled, p = net.pgp(feature, cache(texts), b)  # (B, T'·H'·W', hidden), (B, T, H, W)
            # The object's token per pooled time step: the window holding the most relevance (location-invariant,
            # time-ordered), as the LLM would find it by attention.
            gh, gw = p.shape[2:]
            win = p.reshape(b, t // 2, 2, gh // 2, 2, gw // 2, 2).sum(dim=(2, 4, 6)).reshape(b, t // 2, -1)
            tokens = pooled.view(b, t // 2, -1, pooled.shape[-1])
            pick = win.argmax(-1)
            xs.append(torch.gather(tokens, 2, pick[..., None, None].expand(-1, -1, 1, tokens.shape[-1]))
                      .reshape(b, -1))
    return torch.cat(xs), [D.event(o) if attribute == "event" else o[attribute] for o in objects]


def centre_patch_features(net, frames, records, limit, seed):
    """→ (N, D) hs[-2] features of the patch under a random first-frame object's centre, shape labels."""
    rng = np.random.default_rng(seed)
    patch = M.VISION["patch_size"]
    side = frames.shape[2] // patch
    xs, ys = [], []
    with torch.no_grad():
        for s in range(0, min(limit, len(records)), 32):
            chunk = list(range(s, min(limit, len(records), s + 32)))
            b, t = len(chunk), frames.shape[1]
            feature = net.vision(M.pixels_from_uint8(frames[chunk].reshape(b * t, *frames.shape[2:])), b)
            feature = feature.view(b, t, side * side, -1)
            for j, i in enumerate(chunk):
                present = [o for o in records[i]["objects"] if o["first"] == 0]
                if present:
                    o = present[int(rng.integers(len(present)))]
                    x, y = D.position(o, 0)
                    xs.append(feature[j, 0, int(y // patch) * side + int(x // patch)])
                    ys.append(o["shape"])
    return torch.stack(xs), ys


def probe(name, xtr, ytr, xva, yva):
    """Standardised linear softmax probe, 300 Adam steps; prints train and val accuracy."""
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-5
    xtr, xva = (xtr - mu) / sd, (xva - mu) / sd
    labels = sorted(set(ytr))
    a = torch.tensor([labels.index(x) for x in ytr])
    b = torch.tensor([labels.index(x) for x in yva])
    w = torch.zeros(xtr.shape[1], len(labels), requires_grad=True)
    opt = torch.optim.Adam([w], lr=1e-2)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(xtr @ w, a) + 1e-3 * (w ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    majority = max(yva.count(x) for x in labels) / len(yva)
    print(f"{name}: probe train {((xtr @ w).argmax(1) == a).float().mean():.2f} "
          f"val {((xva @ w).argmax(1) == b).float().mean():.2f} (n={len(b)}, chance {1 / len(labels):.2f}, "
          f"majority {majority:.2f})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("data")
    ap.add_argument("--limit", type=int, default=1500)
    ap.add_argument("--attributes", default="shape,colour,direction,event")
    ap.add_argument("--patch-only", action="store_true", help="only the centre-patch shape probe (stage 1 checks)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = load(args.checkpoint)
    net.eval()
    cache = E.TextCache(net, S.Tokenizers())
    fr, rec = S.load_split(args.data, "train")
    vfr, vrec = S.load_split(args.data, "val")
    for attribute in () if args.patch_only else args.attributes.split(","):
        xtr, ytr = features(net, cache, fr, rec, attribute, args.limit, 0)
        xva, yva = features(net, cache, vfr, vrec, attribute, 200, 1)
        probe(attribute, xtr, ytr, xva, yva)
    probe("shape (centre patch, before pooling)", *centre_patch_features(net, fr, rec, args.limit, 0),
          *centre_patch_features(net, vfr, vrec, 200, 1))


if __name__ == "__main__":
    main()
