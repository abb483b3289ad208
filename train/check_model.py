"""Checks that a saved checkpoint, run by the batched training forward (train/model.py), matches the float64 reference
forward (tests/oracles/ppllava_reference.py) on a real sample: text embedding, relevance, pooled tokens, and the
prefill logits of the answer positions. Prints one JSON line; exits 1 on a mismatch.

    /usr/bin/python3 train/check_model.py CHECKPOINT_DIR [DATA_DIR]
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import model as M  # noqa: E402
import samples as S  # noqa: E402
from model import ref  # noqa: E402


def main():
    folder = sys.argv[1]
    torch.manual_seed(0)
    cfg, W = ref.load_checkpoint(folder)
    net = M.TinyPPLLaVA.load(folder)
    tok = S.Tokenizers()
    rng = np.random.default_rng(0)
    frames = (rng.random((8, D.SIZE, D.SIZE, 3)) * 255).astype(np.uint8)
    if len(sys.argv) > 2:
        frames = np.load(os.path.join(sys.argv[2], "test.npz"))["frames"][0]
    question = "What colour is the small triangle?"
    pixels = M.pixels_from_uint8(frames)
    clip_ids, clip_mask = tok.clip.encode(question)
    ids = tok.llama.encode(S.prompt(question, 1))
    named = {}
    torch.set_default_dtype(torch.float64)
    _, feature = ref.vision_tower(pixels.double(), W, cfg, named)
    e_t = ref.text_tower(torch.tensor(clip_ids), torch.tensor(clip_mask), W, cfg, named)
    pooled = ref.pgp_projector(feature, e_t, W, cfg, named, video=True)
    embeds = ref.merge(torch.tensor(ids), [pooled], W, cfg)
    logits = ref.llama_forward(embeds, W, cfg, [])
    torch.set_default_dtype(torch.float32)
    with torch.no_grad():
        f32 = net.vision(pixels, 1)
        t32 = net.text(torch.tensor([clip_ids]), torch.tensor([clip_mask]))
        p32, rel = net.pgp(f32, t32, 1)
        emb = net.embed(torch.tensor(ids))
        at = ids.index(ref.cfg_image_id if hasattr(ref, "cfg_image_id") else 32000)
        merged = torch.cat([emb[:at], p32[0], emb[at + 1:]])[None]
        hidden = net.llm_hidden(merged, torch.tensor([merged.shape[1]]))
        l32 = hidden[0] @ net.W[ref.LM + ".lm_head.weight"].T
    errors = {
        "feature": (f32.double() - feature).abs().max().item(),
        "text_embed": (t32[0].double() - e_t).abs().max().item(),
        "relevance": (rel[0].double() - named["pgp.relevance"]).abs().max().item(),
        "pooled": (p32[0].double() - pooled).abs().max().item(),
        "logits": (l32.double() - logits).abs().max().item(),
    }
    scale = logits.abs().max().item()
    ok = all(v < 1e-3 * max(1.0, scale) for v in errors.values()) and \
        int(l32[-1].argmax()) == int(logits[-1].argmax())
    print(json.dumps({"ok": ok, "max_abs_errors": errors, "logit_scale": scale}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
