"""Shared pieces of the three stages: batches of the interleave mix, the forward to answer log-probs, resumable state,
loss logs, greedy decoding and evaluation."""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as Fn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import model as M  # noqa: E402
import samples as S  # noqa: E402
import tokenizers as T  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGS = os.environ.get("PPLLAVA_TRAIN_LOGS", os.path.join(ROOT, "train", "logs"))


def text_embeddings(net, tok, texts):
    """e_t of the CLIP text tower for a list of texts (with autograd where the tower trains)."""
    clip = [tok.clip_ids(t) for t in texts]
    # Causal attention: the state at the first EOS does not see the EOS padding after it (exact, 248 → ~20).
    length = min(len(clip[0][0]), max(sum(m) for _, m in clip) + 1)
    ids = torch.tensor([c[0][:length] for c in clip])
    mask = torch.tensor([c[1][:length] for c in clip])
    return net.text(ids, mask)


class TextCache:
    """e_t of the frozen CLIP text tower (stages 2–3), computed once per distinct text."""

    def __init__(self, net, tok):
        self.net, self.tok, self.table = net, tok, {}

    def __call__(self, texts):
        missing = [t for t in dict.fromkeys(texts) if t not in self.table]
        if missing:
            with torch.no_grad():
                e = text_embeddings(self.net, self.tok, missing)
            for t, row in zip(missing, e):
                self.table[t] = row
        return torch.stack([self.table[t] for t in texts])


def visual_tokens(net, kind, frames, e_t, mode="pgp", which=None, seen=None):
    """frames uint8: video (B,T,S,S,3) / image (B,S,S,3) / multi (B,2,S,S,3) → (B, k, n, H) tokens per <image>.
    which (video only): sample i asks about video which[i] of frames (V videos, B ≥ V questions): the vision tower,
    which does not see the question, then runs once per video and PGP once per question. seen (video only): a dict
    that receives the vision feature of the videos, "feature" (V·T, P, D), for a loss on it (SFT's region term)."""
    if kind == "video":
        b, t = frames.shape[:2]
        feature = net.vision(M.pixels_from_uint8(frames.reshape(b * t, *frames.shape[2:])), b)
        if seen is not None:
            seen["feature"] = feature
        if which is not None:
            b = len(which)
            feature = feature.view(-1, t, *feature.shape[1:])[torch.as_tensor(which)].reshape(b * t,
                                                                                              *feature.shape[1:])
        pooled, _ = net.pgp(feature, e_t, b, video=True, mode=mode)
        return pooled[:, None]
    if kind == "image":  # one tile: T = 1 per image (§4), 4 tokens, + image_newline at merge
        b = frames.shape[0]
        feature = net.vision(M.pixels_from_uint8(frames), b)
        pooled, _ = net.pgp(feature, e_t, b, video=False, mode=mode)
        return pooled[:, None]
    b, n = frames.shape[:2]  # multi-image: N images as frames of one clip, (1,3,3) pooling, one <image> each
    feature = net.vision(M.pixels_from_uint8(frames.reshape(b * n, *frames.shape[2:])), b)
    pooled, _ = net.pgp(feature, e_t, b, video=False, mode=mode)
    return pooled.view(b, n, -1, pooled.shape[-1])


def answer_logprobs(net, kind, seqs, starts, visuals):
    """→ (per-token log-probs of the answer tokens, their batch rows)."""
    embeds, lengths, maps = S.merge_batch(net, seqs, visuals, newline=(kind == "image"))
    hidden = net.llm_hidden(embeds, lengths)
    rows, cols, targets = S.label_positions(seqs, starts, maps)
    logits = net.logits_at(hidden, rows, cols)
    return torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])[:, 0], rows


def per_sample_mean(values, rows, n):
    """Mean over samples of each sample's mean over its answer tokens (a 30-token caption counts as one sample)."""
    sums = torch.zeros(n).index_add(0, rows, values)
    counts = torch.zeros(n).index_add(0, rows, torch.ones_like(values))
    return (sums / counts.clamp(min=1)).mean()


class Mix:
    """Seeded stream of SFT batches: video QA (MC + open + describe), single images, image pairs."""

    def __init__(self, frames, records, seed, batch, shares=(0.7, 0.15, 0.15), per_video=1, items=None,
                 type_weights=None):
        self.frames, self.records = frames, records
        self.items = items if items is not None else S.video_items(records)
        self.rng = np.random.default_rng(seed)
        self.batch, self.shares, self.per_video = batch, shares, per_video
        # qtype → weight of a question of that type when picking a video's per_video questions (None: uniform)
        self.type_weights = type_weights

    def next(self):
        """→ kind, frames, texts, answers, which (video samples sharing frames: see visual_tokens; else None)."""
        kind = self.rng.choice(["video", "image", "multi"], p=self.shares)
        if kind == "video" and self.per_video > 1:  # batch/per_video videos, per_video questions each
            if not hasattr(self, "by_video"):
                self.by_video = {}
                for it in self.items:
                    self.by_video.setdefault(it[0], []).append(it)
            vids = self.rng.choice(len(self.records), size=self.batch // self.per_video, replace=False)
            self.videos = vids  # the record index of each video of this batch (SFT's region term)
            its, which = [], []
            for n, v in enumerate(vids):
                own = self.by_video[v]
                p = None
                if self.type_weights:
                    w = np.array([self.type_weights.get(it[4], 1.0) for it in own])
                    p = w / w.sum()
                for i in self.rng.choice(len(own), size=min(self.per_video, len(own)), replace=False, p=p):
                    its.append(own[i])
                    which.append(n)
            return kind, self.frames[vids], [i[1] for i in its], [i[2] for i in its], which
        if kind == "video":
            pick = self.rng.integers(len(self.items), size=self.batch)
            its = [self.items[i] for i in pick]
            return kind, self.frames[[i[0] for i in its]], [i[1] for i in its], [i[2] for i in its], None
        vids = self.rng.integers(len(self.records), size=self.batch)
        texts, answers, frames = [], [], []
        for v in vids:
            if kind == "image":
                slot, text, answer = S.image_item(self.records[v], self.rng)
                frames.append(self.frames[v][slot])
            else:
                slots, text, answer = S.multi_image_item(self.records[v], self.rng)
                frames.append(self.frames[v][list(slots)])
            texts.append(text)
            answers.append(answer)
        return kind, np.stack(frames), texts, answers, None


def n_images(kind):
    return 2 if kind == "multi" else 1


class Logger:
    def __init__(self, name):
        os.makedirs(LOGS, exist_ok=True)
        self.path = os.path.join(LOGS, f"{name}.jsonl")
        self.start = time.time()

    def log(self, **row):
        row["elapsed_s"] = round(time.time() - self.start, 1)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def save_state(path, net, opt, step, extra=None):
    tmp = path + ".tmp"
    torch.save({"weights": net.W.tensors(), "config": net.config, "opt": opt.state_dict(), "step": step,
                "extra": extra or {}}, tmp)
    os.replace(tmp, path)


def load_state(path):
    return torch.load(path) if os.path.exists(path) else None


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + np.cos(np.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


# ------------------------------------------------------------------------------------------------------ evaluation

@torch.no_grad()
def greedy_answers(net, tok, cache, frames, texts, max_new=12, mode="pgp", kind="video"):
    """Greedy decode after the prompt (no KV cache: answers are a few tokens) → list of answer strings."""
    e_t = cache(texts)
    visuals = visual_tokens(net, kind, frames, e_t, mode)
    seqs = [tok.llama.encode(S.prompt(t, n_images(kind))) for t in texts]
    done = [False] * len(seqs)
    out = [[] for _ in seqs]
    for _ in range(max_new):
        embeds, lengths, maps = S.merge_batch(net, seqs, visuals, newline=(kind == "image"))
        hidden = net.llm_hidden(embeds, lengths)
        last = hidden[torch.arange(len(seqs)), lengths - 1]
        nxt = (last @ net.W["language_model.lm_head.weight"].T).argmax(dim=-1).tolist()
        for b, t in enumerate(nxt):
            if done[b]:
                continue
            if t == T.LLAMA_EOS:
                done[b] = True
            else:
                out[b].append(t)
                seqs[b] = seqs[b] + [t]
        if all(done):
            break
    return [tok.llama.decode([29871] + o).strip() for o in out]


def evaluate(net, tok, frames, records, modes=("pgp",), batch=32, max_items=None):
    """Greedy MC and open accuracy per question type, and the rate of rejected-style errors.
    → dict mode → {mc: {type: [correct, total]}, open: {...}, rejected: [hits, total]}."""
    net.eval()
    cache = TextCache(net, tok)
    items = [i for i in S.video_items(records, with_describe=False)]
    if max_items and len(items) > max_items:  # every k-th video (all its questions): spread over the split
        k = -(-len(items) // max_items)
        items = [i for i in items if i[0] % k == 0]
    results = {}
    for mode in modes:
        table = {"mc": {}, "open": {}, "rejected": [0, 0], "examples": []}
        for s in range(0, len(items), batch):
            chunk = items[s:s + batch]
            got = greedy_answers(net, tok, cache, frames[[i[0] for i in chunk]], [i[1] for i in chunk], mode=mode)
            for (vi, text, answer, rejected, qtype, is_mc), g in zip(chunk, got):
                cell = table["mc" if is_mc else "open"].setdefault(qtype, [0, 0])
                cell[0] += int(g == answer)
                cell[1] += 1
                if is_mc:
                    table["rejected"][0] += int(g == rejected)
                    table["rejected"][1] += 1
                if len(table["examples"]) < 6:
                    table["examples"].append({"q": text, "want": answer, "got": g})
        results[mode] = table
    return results


def summarize(table):
    def acc(cells, keep=lambda k: True):
        c = sum(v[0] for k, v in cells.items() if keep(k))
        n = sum(v[1] for k, v in cells.items() if keep(k))
        return round(c / n, 4) if n else None

    return {"mc_accuracy": acc(table["mc"]), "open_accuracy": acc(table["open"]),
            "mc_per_type": {k: round(v[0] / v[1], 4) for k, v in sorted(table["mc"].items())},
            "open_per_type": {k: round(v[0] / v[1], 4) for k, v in sorted(table["open"].items())},
            "rejected_error_rate": round(table["rejected"][0] / max(1, table["rejected"][1]), 4),
            "n_mc": sum(v[1] for v in table["mc"].values())}
