"""Turns generated videos (train/data.py) into tokenized training/eval samples: plain_v1 prompts (spec §3.7), CLIP
texts (the raw user text, §3.5), answers with EOS, and the interleave mix of video / image / multi-image (§4, §5.5).

Answer tokens follow the prompt's trailing "▁" (29871): they are the BPE of the answer text with no prefix space, so
the runtime's greedy decode after "ASSISTANT: " reproduces them.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import tokenizers as T  # noqa: E402


def prompt(user_text, n_images):
    return "USER: " + "<image>\n" * n_images + user_text + " ASSISTANT: "


class Tokenizers:
    def __init__(self):
        self.llama = T.LlamaTokenizer()
        self.clip = T.ClipTokenizer()
        self._clip_cache = {}

    def answer_ids(self, text):
        """BPE of the answer with no "▁" in front (it follows the prompt's "▁"), then EOS."""
        normalized = text.replace(" ", "▁")
        ids = []
        for piece in T._bpe(list(normalized), self.llama.ranks):
            if piece in self.llama.vocab:
                ids.append(self.llama.vocab[piece])
            else:
                ids.extend(self.llama.vocab[f"<0x{b:02X}>"] for b in piece.encode("utf-8"))
        return ids + [T.LLAMA_EOS]

    def clip_ids(self, text):
        if text not in self._clip_cache:
            self._clip_cache[text] = self.clip.encode(text)
        return self._clip_cache[text]


def load_split(folder, split):
    frames = np.load(os.path.join(folder, f"{split}.npz"))["frames"]
    with open(os.path.join(folder, f"{split}.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return frames, records


def video_items(records, mc_share=0.6, rng=None, with_describe=True):
    """→ list of (video index, user text, answer, rejected, qtype, is_mc) for every question (both forms)."""
    items = []
    for vi, r in enumerate(records):
        for q in r["qa"]:
            items.append((vi, q["mc_question"], q["answer"], q["rejected"], q["type"], True))
            items.append((vi, q["question"], q["answer"], q["rejected"], q["type"], False))
        if with_describe:
            items.append((vi, "Describe the video.", r["caption"], None, "describe", False))
    return items


def visible(obj, rendered_index):
    return obj["first"] <= rendered_index <= obj["last"]


def image_item(record, rng):
    """One sampled frame as an image: → (frame slot, user text, answer)."""
    slot = int(rng.integers(D.FRAMES))
    f = D.SAMPLED[slot]
    objs = [o for o in record["objects"] if visible(o, f)]
    if not objs:
        return slot, "How many objects are in the image?", "zero"
    o = objs[int(rng.integers(len(objs)))]
    kind = rng.integers(3)
    if kind == 0:
        return slot, f"What colour is the {o['shape']}?", o["colour"]
    if kind == 1:
        return slot, f"What shape is the {o['colour']} object?", o["shape"]
    return slot, "How many objects are in the image?", D.COUNT_WORDS[len(objs)]


def multi_image_item(record, rng):
    """The first and last sampled frames as two images: → (slots, user text, answer)."""
    a, b = 0, D.FRAMES - 1
    objs = [o for o in record["objects"] if visible(o, D.SAMPLED[a]) and visible(o, D.SAMPLED[b])]
    if not objs:
        return (a, b), "How many objects are in the first image?", D.COUNT_WORDS.get(
            sum(visible(o, D.SAMPLED[a]) for o in record["objects"]), "zero")
    o = objs[int(rng.integers(len(objs)))]
    return (a, b), (f"Which way does the {o['colour']} {o['shape']} move from the first image to the second "
                    f"image?"), o["direction"]


def batch_tensors(tok, texts, answers, n_images):
    """→ ids list (prompt + answer), answer start positions (in token ids, before image expansion), clip ids/mask."""
    seqs, starts = [], []
    for text, answer in zip(texts, answers):
        p = tok.llama.encode(prompt(text, n_images))
        a = tok.answer_ids(answer)
        seqs.append(p + a)
        starts.append(len(p))
    clip = [tok.clip_ids(t) for t in texts]
    clip_ids = torch.tensor([c[0] for c in clip])
    clip_mask = torch.tensor([c[1] for c in clip])
    return seqs, starts, clip_ids, clip_mask


def merge_batch(net, seqs, visuals, newline=False):
    """seqs: token id lists with k `<image>` each; visuals: (B, k, n_tokens, H) → embeds (B, L, H) right-padded,
    lengths, and for each sample a map from token-id position to merged row (for labels)."""
    image_id = T.IMAGE_ID
    rows, lengths, maps = [], [], []
    table = net.W["language_model.model.embed_tokens.weight"]
    nl = net.W["image_newline"] if newline else None
    # One gather for the whole batch (a gather per sample made one dense 32064-row gradient per sample in backward),
    # and text runs between <image> tokens as slices (one autograd node per run, not per token).
    all_text = [[i for i in ids if i != image_id] for ids in seqs]
    flat = table[torch.tensor([i for t in all_text for i in t])]
    offsets = np.cumsum([0] + [len(t) for t in all_text])
    for b, ids in enumerate(seqs):
        text_emb = flat[offsets[b]:offsets[b + 1]]
        pieces, k, pos, ti, where, run = [], 0, 0, 0, [], 0
        for i in ids + [image_id]:  # a sentinel <image> closes the last text run
            if i != image_id:
                where.append(pos)
                pos += 1
                run += 1
                continue
            if run:
                pieces.append(text_emb[ti:ti + run])
                ti += run
                run = 0
            if k < visuals.shape[1] and len(where) < len(ids):
                v = visuals[b, k]
                if nl is not None:
                    v = torch.cat([v, nl[None]], dim=0)
                pieces.append(v)
                pos += v.shape[0]
                where.append(-1)
                k += 1
        rows.append(torch.cat(pieces))
        lengths.append(pos)
        maps.append(where)
    n = max(lengths)
    out = torch.zeros(len(seqs), n, rows[0].shape[1])
    for b, r in enumerate(rows):
        out[b, :r.shape[0]] = r
    return out, torch.tensor(lengths), maps


def label_positions(seqs, starts, maps):
    """→ (batch rows, merged positions that predict, target ids) for every answer token (incl. EOS)."""
    rows, cols, targets = [], [], []
    for b, (ids, s, where) in enumerate(zip(seqs, starts, maps)):
        for j in range(s, len(ids)):
            rows.append(b)
            cols.append(where[j] - 1)  # the position before the token predicts it
            targets.append(ids[j])
    return torch.tensor(rows), torch.tensor(cols), torch.tensor(targets)
