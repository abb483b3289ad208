#!/usr/bin/env python3
"""transformers' SiglipTokenizer (tokenization_siglip.py + PreTrainedTokenizer.tokenize), its text steps only:
what reaches sentencepiece. Python's own semantics are the point: str.lower, `\\s` and str.strip on str, and
string.punctuation. Reads a JSON list of texts on stdin; writes, per text, the list of segments:
["special", "</s>"] or ["text", canonicalized] (sentencepiece then encodes "<unk>" + canonicalized)."""
import json
import re
import string
import sys

SPIECE_UNDERLINE = "\u2581"
SPECIALS = ["</s>", "<unk>"]  # eos = pad, unk: AddedToken(lstrip=True, rstrip=True)


def remove_punctuation(text):
    return text.translate(str.maketrans("", "", string.punctuation))


def canonicalize_text(text):
    text = remove_punctuation(text)
    text = re.sub(r"\s+", " ", text)
    return text.strip()


def tokenize(text):
    # SiglipTokenizer.tokenize
    text = SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " ")
    # PreTrainedTokenizer.tokenize with do_lower_case
    escaped = [re.escape(s) for s in SPECIALS]
    pattern = r"(" + r"|".join(escaped) + r")|" + r"(.+?)"
    text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
    # tokens_trie.split: the specials do not overlap, so a regex split is the same
    tokens = [t for t in re.split("(" + "|".join(escaped) + ")", text)]
    for i, token in enumerate(tokens):
        if token in SPECIALS:
            if i + 1 < len(tokens) and tokens[i + 1]:
                tokens[i + 1] = tokens[i + 1].lstrip()
            if i > 0 and tokens[i - 1]:
                tokens[i - 1] = tokens[i - 1].rstrip()
    out = []
    for token in tokens:
        if not token:
            continue
        out.append(["special", token] if token in SPECIALS else ["text", canonicalize_text(token)])
    return out


if __name__ == "__main__":
    texts = json.load(sys.stdin)
    json.dump([tokenize(t) for t in texts], sys.stdout)
