"""Stage 1: contrastive alignment of the vision tower (+ BT-Adapter) and the CLIP text tower on video–text pairs, so
that the relevance map of PGP (§3.4 steps A–C) means something before instruction tuning.

Similarity of a video and a text = Σ_n softmax_n(100·cos_n)·cos_n over the dense patch embeddings n (the same
clip_visual_ln + clip_visual_projection and the same global softmax as PGP; the token-level 'ST' weighting of the
original CLIPModelwithVideo, spec §5.1); symmetric InfoNCE over the batch at temperature 1/20.
Texts: the caption, or one object named by a random subset of size/colour/shape (and, --motion-share, its direction),
alone or inside a question template ("What colour is the small triangle?"). With --ground, a grounding term adds to
the loss: each object phrase's relevance over its own video's patches should fall on that object's patches, so the
questions PGP sees at inference point at their object by every attribute they name, not by colour alone. With
--region, a region term adds to it: every object's patches (their mean, or with --region-per-patch each patch, as
train/run_all.sh does) are classified among the phrases of each attribute ("the red object" …, "the square" …, "the
object moving left" …), so the patch embeddings carry shape and direction even where no phrase of the batch needs
them; and the phrases are kept apart (the text tower had given every direction the same embedding). With --direct, a
direct term adds to it: every patch of every object tells the object's shape, direction and event (appears /
disappears / none; --direct-attributes) through linear heads on the vision feature (hs[-2], what PGP pools and the LLM
reads); the heads are saved with the state (SFT's --direct reuses them, frozen), never exported.

    /usr/bin/python3 train/stage1_align.py --data DIR --out RUN_DIR [--steps N --batch B --seed S --threads K]
        [--ground W --motion-share P --colour-share P --direction-only P --region W [--region-per-patch] --direct W
         --direct-attributes shape,direction,event]
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
import data as D  # noqa: E402

TEMPLATES = ["{p}", "a {p}", "What colour is the {p}?", "Which way does the {p} move?", "What shape is the {p}?",
             "the {p} in the video"]
MOTION_TEMPLATES = ["{p} {m}", "a {p} {m}", "the {p} {m} in the video"]  # phrases that also name the direction


def motion(direction):
    return "that stays still" if direction == "still" else f"moving {direction}"


def phrase(says, rng, with_motion):
    parts = (["small"] if says.get("size") == "small" else []) + ([says["colour"]] if "colour" in says else [])
    parts.append(says.get("shape", "object"))
    p = " ".join(parts)
    if with_motion:
        return MOTION_TEMPLATES[int(rng.integers(len(MOTION_TEMPLATES)))].format(p=p, m=motion(says["direction"]))
    return TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(p=p)


def object_text(obj, rng, motion_share=0.0, colour_share=0.7, direction_only=0.0):
    """→ (text, what it says: dict of the attributes it names) for one object; with probability motion_share the
    phrase also names its direction ("the red square moving left"); colour_share: how often it names the colour (a
    phrase without colour can only be grounded by shape, size or direction); direction_only: how often the phrase
    names nothing but the direction ("the object moving left": colours and shapes are unique within a video, so a
    phrase that also names either never needs the motion to find its object)."""
    if direction_only > 0 and rng.random() < direction_only:  # no draw when off: the seeded stream stays
        says = {"direction": obj["direction"]}
        return phrase(says, rng, True), says
    says = {}
    if obj["size"] == "small" and rng.random() < 0.8:
        says["size"] = "small"
    keep_colour, keep_shape = rng.random() < colour_share, rng.random() < 0.7
    if not (keep_colour or keep_shape):
        keep_shape = True
    if keep_colour:
        says["colour"] = obj["colour"]
    if keep_shape:
        says["shape"] = obj["shape"]
    with_motion = motion_share > 0 and rng.random() < motion_share  # no draw when off: the seeded stream stays
    if with_motion:
        says["direction"] = obj["direction"]
    return phrase(says, rng, with_motion), says


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


def object_patches(frames, objects, says):
    """frames (T, S, S, 3) uint8 → (T·P,) bool: patches of which ≥ 10% is painted in the colour of an object that the
    phrase is true of (colours are unique within a video, so colour finds an object's pixels, occlusion included)."""
    patch = M.VISION["patch_size"]
    t, size = frames.shape[0], frames.shape[1]
    side = size // patch
    hit = np.zeros((t, side, side), dtype=bool)
    for o in objects:
        if all(o[k] == v for k, v in says.items()):
            same = (frames.astype(np.int16) == np.array(D.COLOURS[o["colour"]], dtype=np.int16)).all(-1)
            hit |= same.reshape(t, side, patch, side, patch).mean(axis=(2, 4)) >= 0.1
    return hit.reshape(-1)


# The region term's phrases: per attribute, one template (drawn per step) filled with each value, so that the phrases
# of an attribute differ only in the value's words; worded as stage 1's object phrases and the data's questions are.
ATTRIBUTE_VALUES = {"colour": list(D.COLOURS), "shape": list(D.SHAPES), "direction": list(D.DIRECTIONS)}
ATTRIBUTE_TEMPLATES = {
    "colour": ["the {v} object", "a {v} object", "What shape is the {v} object?", "Which way does the {v} object move?"],
    "shape": ["the {v}", "a {v}", "What colour is the {v}?", "Which way does the {v} move?"],
    "direction": ["the object {v}", "a object {v}", "What colour is the object {v}?", "the object {v} in the video"],
}


def attribute_phrases(rng):
    """→ {attribute: [phrase per value, in ATTRIBUTE_VALUES order]} with one random template per attribute."""
    out = {}
    for a, values in ATTRIBUTE_VALUES.items():
        template = ATTRIBUTE_TEMPLATES[a][int(rng.integers(len(ATTRIBUTE_TEMPLATES[a])))]
        out[a] = [template.format(v=motion(v) if a == "direction" else v) for v in values]
    return out


def region_loss(net, feature, e_attr, frames, records, vids, per_patch=False):
    """Region–phrase alignment: every object of every batch video, as the mean of its patches' unit embeddings (the
    patches it covers, as in the grounding term) or, per_patch, each of those patches (weighing 1/n each, so an object
    counts once), is classified among the phrases of each attribute (its colour, its shape, its direction) by cosine at
    temperature 1/20. e_attr: {attribute: (n_values, proj) text embeddings}. per_patch matters for PGP: its window
    softmax (temperature 0.01) keeps one patch per window, mostly an object's interior, which the mean never asked to
    carry the motion (validation MC 68.1% per patch vs 59.9% for the mean, same run otherwise).
    The contrastive and grounding terms never needed the direction (colours and shapes are unique within a video, so
    a phrase that names either finds its object without the motion); this term asks every object for each attribute."""
    b = len(vids)
    e_v = net.visual_embeds(feature)
    e_v = torch.nn.functional.normalize(e_v.reshape(b, -1, e_v.shape[-1]), dim=-1)
    regions, labels, weights = [], {a: [] for a in ATTRIBUTE_VALUES}, []
    for i, v in enumerate(vids):
        for o in records[v]["objects"]:
            mask = torch.from_numpy(object_patches(frames[i], [o], {"colour": o["colour"]}))
            if not mask.any():
                continue
            if per_patch:  # every patch of the object on its own, the object's patches weighing 1 together
                regions.append(e_v[i][mask])
                weights.append(torch.full((int(mask.sum()),), 1.0 / int(mask.sum())))
            else:
                regions.append(e_v[i][mask].mean(dim=0, keepdim=True))
                weights.append(torch.ones(1))
            for a, values in ATTRIBUTE_VALUES.items():
                labels[a] += [values.index(o[a])] * len(weights[-1])
    if not regions:
        return feature.sum() * 0
    r = torch.nn.functional.normalize(torch.cat(regions), dim=-1)
    w = torch.cat(weights)
    terms = [(w * torch.nn.functional.cross_entropy(20.0 * r @ torch.nn.functional.normalize(e_attr[a], dim=-1).T,
                                                    torch.tensor(labels[a]), reduction="none")).sum() / w.sum()
             for a in ATTRIBUTE_VALUES]
    return torch.stack(terms).mean()


def phrase_separation(e_attr):
    """Each attribute's phrases must be told apart by the text tower: each one nearest to itself among its set (cosine,
    temperature 1/20). Without it the text tower (which nothing else asked) gave "…moving left" and "…moving right"
    the same embedding (cosine 1.000), so neither the region term nor PGP could point by direction; and with all of
    an attribute's phrases equal, the region term has no gradient on either side."""
    terms = []
    for e in e_attr.values():
        e = torch.nn.functional.normalize(e, dim=-1)
        terms.append(torch.nn.functional.cross_entropy(20.0 * e @ e.T, torch.arange(e.shape[0])))
    return torch.stack(terms).mean()


# The direct term's read-outs: shape and direction, the attributes PGP's pooled tokens carried least (linear probes on
# them read direction ~35%, shape ~74%; colour already ~80%), and the event (appears / disappears / none), which the
# appear / disappear questions need and which no other term asks of a patch. --direct-attributes picks among them.
DIRECT_ATTRIBUTES = {"shape": list(D.SHAPES), "direction": list(D.DIRECTIONS), "event": D.EVENTS}


def attribute_of(obj, attribute):
    return D.event(obj) if attribute == "event" else obj[attribute]


def direct_heads(hidden, attributes=tuple(DIRECT_ATTRIBUTES)):
    """Linear read-outs of the vision feature, one per attribute (of DIRECT_ATTRIBUTES): training aids, never
    exported."""
    return torch.nn.ModuleDict({a: torch.nn.Linear(hidden, len(DIRECT_ATTRIBUTES[a])) for a in attributes})


def direct_loss(heads, feature, frames, records, vids):
    """Each patch of every object (weighing 1/n, so an object counts once) must tell its object's attributes (one per
    head: shape, direction, event) through a linear head on the vision feature itself (hs[-2], what PGP pools and the
    projector hands to the LLM). The region term asks the same of the dense-CLIP embedding (a LayerNorm and a 32-wide
    projection further on), which left direction weak in the pooled tokens; a tower trained on direct labels reads
    it at ~92% (train/probe_direct.py)."""
    b = len(vids)
    x = feature.reshape(b, -1, feature.shape[-1])
    rows, labels, weights = [], {a: [] for a in heads}, []
    for i, v in enumerate(vids):
        for o in records[v]["objects"]:
            mask = torch.from_numpy(object_patches(frames[i], [o], {"colour": o["colour"]}))
            n = int(mask.sum())
            if n == 0:
                continue
            rows.append(x[i][mask])
            weights.append(torch.full((n,), 1.0 / n))
            for a in heads:
                labels[a] += [DIRECT_ATTRIBUTES[a].index(attribute_of(o, a))] * n
    if not rows:
        return feature.sum() * 0
    r, w = torch.cat(rows), torch.cat(weights)
    terms = [(w * torch.nn.functional.cross_entropy(heads[a](r), torch.tensor(labels[a]), reduction="none")).sum()
             / w.sum() for a in heads]
    return torch.stack(terms).mean()


def saved_direct_heads(state):
    """→ stage 1's direct heads from its saved state (frozen copies for SFT's direct term), or None."""
    saved = (state or {}).get("extra", {}).get("direct_heads")
    if not saved:
        return None
    attributes = [k[: -len(".weight")] for k in saved if k.endswith(".weight")]
    heads = direct_heads(saved[attributes[0] + ".weight"].shape[1], attributes)
    heads.load_state_dict(saved)
    return heads.requires_grad_(False)


def grounding_loss(net, feature, e_t, frames, records, vids, said):
    """−log of the relevance mass that each object phrase puts on its objects' patches, over its own video's T·P
    patches (PGP's global softmax of 100·cos, spec §3.4 step B). Contrastive video–text pairs alone never made a
    shape or a direction move the relevance (a phrase naming only a shape put ~0 mass on that shape); this term
    grounds every named attribute in the patch embeddings."""
    b = len(vids)
    e_v = torch.nn.functional.normalize(net.visual_embeds(feature).reshape(b, -1, e_t.shape[-1]), dim=-1)
    terms = []
    for i, v in enumerate(vids):
        if said[i] is None:  # a caption names every object: nothing to point at
            continue
        mask = torch.from_numpy(object_patches(frames[i], records[v]["objects"], said[i]))
        if not mask.any():
            continue
        logits = torch.exp(net.W[M.ref.MP + ".logit_scale"]) * (e_v[i] @ torch.nn.functional.normalize(e_t[i], dim=0))
        logp = torch.log_softmax(logits, dim=0)
        terms.append(-torch.logsumexp(logp[mask], dim=0))
    return torch.stack(terms).mean() if terms else feature.sum() * 0


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
    ap.add_argument("--motion-share", type=float, default=0.0,
                    help="share of object phrases that also name the direction ('the red square moving left')")
    ap.add_argument("--colour-share", type=float, default=0.7, help="share of object phrases that name the colour")
    ap.add_argument("--direction-only", type=float, default=0.0,
                    help="share of object phrases that name only the direction ('the object moving left')")
    ap.add_argument("--region", type=float, default=0.0,
                    help="weight of the region term: each object's mean patch embedding classified among the phrases "
                         "of its colour, shape and direction, plus those phrases told apart from each other")
    ap.add_argument("--region-per-patch", action="store_true",
                    help="the region term classifies each patch of an object (its interior too), not their mean")
    ap.add_argument("--direct", type=float, default=0.0,
                    help="weight of the direct term: every patch of an object tells its attributes (below) through "
                         "linear heads on the vision feature (hs[-2]); the heads are training aids, not exported")
    ap.add_argument("--direct-attributes", default="shape,direction,event",
                    help="what the direct term's heads read, among " + ",".join(DIRECT_ATTRIBUTES))
    ap.add_argument("--ground", type=float, default=0.0,
                    help="weight of the grounding loss: an object phrase's relevance over its own video's patches "
                         "(softmax of 100·cos, PGP's step B) should fall on the patches the named objects cover")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    frames, records = S.load_split(args.data, "train")
    tok = S.Tokenizers()
    net = M.TinyPPLLaVA(seed=args.seed)
    path = os.path.join(args.out, "stage1.pt")
    state = E.load_state(path)
    if state:
        net = M.TinyPPLLaVA(state["weights"], config=state["config"])
    attributes = [a for a in args.direct_attributes.split(",") if a]
    unknown = sorted(set(attributes) - set(DIRECT_ATTRIBUTES))
    if unknown:
        raise SystemExit(f"--direct-attributes: unknown {unknown}; allowed {list(DIRECT_ATTRIBUTES)}")
    # after the net: its init stream stays
    heads = direct_heads(M.VISION["hidden_size"], attributes) if args.direct else None
    if heads is not None and state and "direct_heads" in state["extra"]:
        heads.load_state_dict(state["extra"]["direct_heads"])
    params = M.param_groups(net, "align") + (list(heads.parameters()) if heads is not None else [])
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    step = 0
    if state:
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
                text, says = object_text(r["objects"][int(rng.integers(len(r["objects"])))], rng, args.motion_share,
                                          args.colour_share, args.direction_only)
                texts.append(text)
                said.append(says)
        for g in opt.param_groups:
            g["lr"] = E.lr_at(step, args.steps, args.lr, 20)
        e_t = E.text_embeddings(net, tok, texts)
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
        ground = grounding_loss(net, feature, e_t, frames[vids], records, vids, said) if args.ground else None
        if ground is not None:
            loss = loss + args.ground * ground
        region = separation = None
        if args.region:  # its own random stream: the batches and phrases above stay those of the run without it
            phrases = attribute_phrases(np.random.default_rng([args.seed, step, 1]))
            e_attr = {a: E.text_embeddings(net, tok, texts_a) for a, texts_a in phrases.items()}
            region = region_loss(net, feature, e_attr, frames[vids], records, vids, args.region_per_patch)
            separation = phrase_separation(e_attr)
            loss = loss + args.region * (region + separation)
        direct = direct_loss(heads, feature, frames[vids], records, vids) if heads is not None else None
        if direct is not None:
            loss = loss + args.direct * direct
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 10 == 0 or step == args.steps:
            acc = truth[target, sim.argmax(1)].mean().item()  # the best text of each video is true of it
            log.log(step=step, loss=round(loss.item(), 4), acc=round(acc, 3),
                    **({"ground": round(ground.item(), 4)} if ground is not None else {}),
                    **({"region": round(region.item(), 4), "separation": round(separation.item(), 4)}
                       if region is not None else {}),
                    **({"direct": round(direct.item(), 4)} if direct is not None else {}))
        if step % 50 == 0 or step == args.steps:
            E.save_state(path, net, opt, step, {"direct_heads": heads.state_dict()} if heads is not None else None)


if __name__ == "__main__":
    main()
