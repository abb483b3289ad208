"""Small random checkpoints of the Qwen2/SigLIP variant (spec §9) in its HF key layout (src/model/weights_qwen.ts),
plus the golden outputs of qwen_reference.py on them.

    /usr/bin/python3 tests/oracles/make_qwen_checkpoint.py OUT_DIR [--seed N] [--shape small|wide]

Writes OUT_DIR/{f32,bf16,bf16-sharded}/ (config.json, model.safetensors or 3 shards + index) and
OUT_DIR/golden.safetensors (format "ppllava-golden", version "1"). Weights are rounded to the bf16 grid (as
make_checkpoint.py does), so every variant holds the same values and one golden file serves all.

Sizes: SigLIP vision hidden 32, 4 heads, 3 layers, intermediate 64, patch 14, image 132 (9×9 patches and 6 unseen pixel
rows/columns, as 384 = 27·14 + 6; frame_shape [9,9]: pooling (2,3,3) → 3×3 windows per frame pair, like 27×27); SigLIP text hidden 32, 2 layers, 4 heads,
vocabulary 32000, 64 positions → 196; Qwen2 hidden 32, 4 query heads over 2 KV heads (GQA), intermediate 96,
2 layers, θ = 1e6, vocabulary 152064 (so the real ids 151644..151646 are valid). Biases are drawn like every
other weight (non-zero); logit_scale = ln 117.33 and logit_bias = −12.93, SigLIP-so400m's values.

Golden cases: "" video of 4 frames (every stage, logits, greedy); "masked." the text tower with a padding mask;
"odd." 5 frames (vision + PGP); "image." one image (81/9 tokens + image_newline, logits, greedy); "multi." three
images, one <image> each, and a pad id in the question whose row the merge zeroes (logits, greedy).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen_reference as qref  # noqa: E402
import safetensors_io as st  # noqa: E402
from make_checkpoint import representable  # noqa: E402

VISION = dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=3,
              num_attention_heads=4, patch_size=14, image_size=132, num_channels=3, layer_norm_eps=1e-6,
              hidden_act="gelu_pytorch_tanh", vision_use_head=False)
TEXT = dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"], hidden_size=32, intermediate_size=96,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1e6,
            vocab_size=152064, max_position_embeddings=32768, hidden_act="silu", tie_word_embeddings=False,
            use_sliding_window=False)
SIGLIP_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                   vocab_size=32000, max_position_embeddings=64, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")
TOP = dict(image_token_index=151646, pad_token_id=151643, eos=151645)
# "wide": the real head widths at small cost: SigLIP head dim 72 (1152/16), Qwen2 head dim 128 with 7 query heads
# per KV head (28/4); a 1024-id vocabulary keeps the tables small, so the special ids move below it.
WIDE = dict(vision=dict(hidden_size=144, num_attention_heads=2, intermediate_size=96, num_hidden_layers=2),
            text=dict(hidden_size=896, num_attention_heads=7, num_key_value_heads=1, intermediate_size=64,
                      num_hidden_layers=1, vocab_size=1024),
            siglip_text=dict(hidden_size=144, num_attention_heads=2, intermediate_size=96, num_hidden_layers=1),
            top=dict(image_token_index=1000, pad_token_id=1001, eos=1002))
GRID = VISION["image_size"] // VISION["patch_size"]
POSITIONS = 4 * SIGLIP_TEXT["max_position_embeddings"] - 3 * qref.KEEP


def use_wide():
    VISION.update(WIDE["vision"])
    TEXT.update(WIDE["text"])
    SIGLIP_TEXT.update(WIDE["siglip_text"])
    TOP.update(WIDE["top"])


def make_config(torch_dtype):
    return {
        "architectures": ["LlavaInterleaveForConditionalGeneration"], "model_type": "llava_onevision",
        "qwen": True, "btadapter": False, "clip_post_pretrain": None, "clip_weight": "google/siglip-so400m-patch14-384",
        "extend_clip": True, "frame_shape": [GRID, GRID], "image_pooling_kernel": [1, 3, 3],
        "image_pooling_stride": [1, 3, 3], "image_token_index": TOP["image_token_index"], "max_T": 64,
        "pad_token_id": TOP["pad_token_id"], "eos_token_ids": [TOP["eos"], TOP["pad_token_id"]],
        "pllava_pooling_shape": None, "pooling": "ppllava", "pooling_kernel": [2, 3, 3], "pooling_stride": [2, 3, 3],
        "pooling_temp": 0.01, "projector_hidden_act": "gelu", "text_config": TEXT, "tie_word_embeddings": False,
        "torch_dtype": torch_dtype, "vision_config": VISION, "vision_feature_layer": -1,
        "vision_feature_select_strategy": "full", "clip_text_config": SIGLIP_TEXT,
    }


def layout():
    d, vi, grid = VISION["hidden_size"], VISION["intermediate_size"], GRID * GRID
    td, ti = SIGLIP_TEXT["hidden_size"], SIGLIP_TEXT["intermediate_size"]
    h, li, vocab = TEXT["hidden_size"], TEXT["intermediate_size"], TEXT["vocab_size"]
    kv = TEXT["num_key_value_heads"] * (h // TEXT["num_attention_heads"])
    out = [("image_newline", [h], "e")]

    def mlp(prefix, dim, inner):
        out.extend([(f"{prefix}.fc1.weight", [inner, dim], "w"), (f"{prefix}.fc1.bias", [inner], "b"),
                    (f"{prefix}.fc2.weight", [dim, inner], "w"), (f"{prefix}.fc2.bias", [dim], "b")])

    def layer(prefix, dim, inner):
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out.extend([(f"{prefix}.self_attn.{name}.weight", [dim, dim], "w"),
                        (f"{prefix}.self_attn.{name}.bias", [dim], "b")])
        for norm in ("layer_norm1", "layer_norm2"):
            out.extend([(f"{prefix}.{norm}.weight", [dim], "ln"), (f"{prefix}.{norm}.bias", [dim], "b")])
        mlp(prefix + ".mlp", dim, inner)

    v = qref.VT
    out += [(f"{v}.embeddings.patch_embedding.weight", [d, 3, 14, 14], "w"),
            (f"{v}.embeddings.patch_embedding.bias", [d], "b"),
            (f"{v}.embeddings.position_embedding.weight", [grid, d], "e")]
    for k in range(VISION["num_hidden_layers"]):
        layer(f"{v}.encoder.layers.{k}", d, vi)
    out += [(f"{v}.post_layernorm.weight", [d], "ln"), (f"{v}.post_layernorm.bias", [d], "b")]
    m = qref.MP
    head = m + ".clip_visual_head"
    out += [(f"{m}.linear_1.weight", [h, d], "w"), (f"{m}.linear_1.bias", [h], "b"),
            (f"{m}.linear_2.weight", [h, h], "w"), (f"{m}.linear_2.bias", [h], "b"),
            (f"{m}.clip_visual_ln.weight", [d], "ln"), (f"{m}.clip_visual_ln.bias", [d], "b"),
            (f"{head}.probe", [1, 1, d], "e"), (f"{head}.attention.in_proj_weight", [3 * d, d], "w"),
            (f"{head}.attention.in_proj_bias", [3 * d], "b"), (f"{head}.attention.out_proj.weight", [d, d], "w"),
            (f"{head}.attention.out_proj.bias", [d], "b"), (f"{head}.layernorm.weight", [d], "ln"),
            (f"{head}.layernorm.bias", [d], "b")]
    mlp(head + ".mlp", d, vi)
    out += [(f"{m}.logit_scale", [1], "logit_scale"), (f"{m}.logit_bias", [1], "logit_bias")]
    t = qref.TT
    out += [(f"{t}.embeddings.token_embedding.weight", [SIGLIP_TEXT["vocab_size"], td], "e"),
            (f"{t}.embeddings.position_embedding", [POSITIONS, td], "e"),
            (f"{t}.embeddings.position_embedding_res", [POSITIONS, td], "e")]
    for k in range(SIGLIP_TEXT["num_hidden_layers"]):
        layer(f"{t}.encoder.layers.{k}", td, ti)
    out += [(f"{t}.final_layer_norm.weight", [td], "ln"), (f"{t}.final_layer_norm.bias", [td], "b"),
            (f"{t}.head.weight", [td, td], "w"), (f"{t}.head.bias", [td], "b")]
    lm = qref.LM
    out.append((f"{lm}.model.embed_tokens.weight", [vocab, h], "e"))
    for k in range(TEXT["num_hidden_layers"]):
        pre = f"{lm}.model.layers.{k}"
        out += [(f"{pre}.self_attn.q_proj.weight", [h, h], "w"), (f"{pre}.self_attn.q_proj.bias", [h], "qkvb"),
                (f"{pre}.self_attn.k_proj.weight", [kv, h], "w"), (f"{pre}.self_attn.k_proj.bias", [kv], "qkvb"),
                (f"{pre}.self_attn.v_proj.weight", [kv, h], "w"), (f"{pre}.self_attn.v_proj.bias", [kv], "qkvb"),
                (f"{pre}.self_attn.o_proj.weight", [h, h], "w"),
                (f"{pre}.mlp.gate_proj.weight", [li, h], "w"), (f"{pre}.mlp.up_proj.weight", [li, h], "w"),
                (f"{pre}.mlp.down_proj.weight", [h, li], "w"),
                (f"{pre}.input_layernorm.weight", [h], "ln"), (f"{pre}.post_attention_layernorm.weight", [h], "ln")]
    out += [(f"{lm}.model.norm.weight", [h], "ln"), (f"{lm}.lm_head.weight", [vocab, h], "head")]
    return out


def make_weights(seed):
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape, kind in layout():
        fan_in = int(np.prod(shape[1:])) if key.endswith("patch_embedding.weight") else (shape[-1] if len(shape) >= 2 else 1)
        if kind == "w":
            x = rng.standard_normal(shape) / math.sqrt(fan_in)
        elif kind == "head":
            x = rng.standard_normal(shape) * (3.0 / math.sqrt(fan_in))
            x[TOP["eos"]] *= 2.0  # EOS reachable within a few steps on some prompts
        elif kind == "b":
            x = 0.05 * rng.standard_normal(shape)
        elif kind == "qkvb":
            x = 0.3 * rng.standard_normal(shape)  # Qwen2's q/k biases are large in the real model: make them count
        elif kind == "ln":
            x = 1.0 + 0.1 * rng.standard_normal(shape)
        elif kind == "e":
            x = 0.5 * rng.standard_normal(shape)
        elif kind == "logit_scale":
            x = np.array([math.log(117.33)])
        else:  # logit_bias
            x = np.array([-12.93])
        weights[key] = representable(np.asarray(x))
    return weights


def write_variants(out, weights):
    keys = [k for k, _, _ in layout()]
    for name, dtype, sharded in (("f32", "F32", False), ("bf16", "BF16", False), ("bf16-sharded", "BF16", True)):
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(make_config("float32" if dtype == "F32" else "bfloat16"), f, indent=2)
        tensors = [(k, weights[k], dtype) for k in keys]
        if not sharded:
            st.write(os.path.join(folder, "model.safetensors"), tensors, {"format": "pt"})
            continue
        groups = [[t for t in tensors if t[0].startswith("vision_tower") or t[0] == "image_newline"],
                  [t for t in tensors if t[0].startswith("multi_modal_projector")],
                  [t for t in tensors if t[0].startswith("language_model")]]
        weight_map = {}
        for i, group in enumerate(groups):
            file = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
            st.write(os.path.join(folder, file), group, {"format": "pt"})
            weight_map.update({k: file for k, _, _ in group})
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)


def load(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = qref.Config(json.load(f))
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    weights = {}
    for file in files:
        arrays, _, _ = st.read(os.path.join(folder, file))
        weights.update({k: torch.from_numpy(a.astype("float64")) for k, a in arrays.items()})
    return cfg, weights


def pixels(gen, count):
    size = VISION["image_size"]
    return torch.from_numpy(representable(torch.randn(count, 3, size, size, generator=gen).numpy())).double()


def prompt(media, pad=False):
    """plain_qwen-shaped ids: <|im_start|>user\\n (<image>\\n)×media {question}<|im_end|>\\n<|im_start|>assistant\\n.
    Typed in (Qwen2 ids of the special tokens, arbitrary in-vocabulary ids for the words), not from a tokenizer.
    `pad` puts a pad id (151643) inside the question: its embedding row is zeroed by the merge."""
    image, vocab = TOP["image_token_index"], TEXT["vocab_size"]
    ids = [151644, 872, 198]
    for _ in range(media):
        ids += [image, 198]
    ids += [12555, 374, 279] + ([TOP["pad_token_id"]] if pad else []) + [883, 3730, 30, 151645, 198, 151644, 77091, 198]
    # The wide shape's small vocabulary: fold the other ids into it, keeping clear of its special ids.
    if vocab <= 151646:
        ids = [t if t in (image, TOP["pad_token_id"]) or t < 1000 else t % 997 for t in ids]
    return torch.tensor(ids, dtype=torch.int64)


def text_ids():
    """SigLIP-tokenizer-shaped ids (words, EOS 1), padded with 1 to 196 (§9: padding to max_length); the mask
    variant hides the padding."""
    words = [262, 266, 1304, 7000, 3, 1]
    ids = torch.full((POSITIONS,), 1, dtype=torch.int64)
    ids[:len(words)] = torch.tensor(words)
    mask = torch.zeros(POSITIONS, dtype=torch.int64)
    mask[:len(words)] = 1
    return ids, mask


def write_golden(out, weights, seed, max_new_tokens, wide=False):
    cfg, W = load(os.path.join(out, "bf16-sharded"))
    for key, value in weights.items():
        assert torch.equal(W[key], torch.from_numpy(value).double()), f"{key} changed on the way through bf16"
    gen = torch.Generator().manual_seed(seed)
    clip_ids, clip_mask = text_ids()
    named = {"input.clip_ids": clip_ids, "input.clip_mask": clip_mask}
    cases = (("", "video", 4, 1),) if wide else (("", "video", 4, 1), ("image.", "image", 1, 1), ("multi.", "images", 3, 3))
    for prefix, kind, count, media in cases:
        px = pixels(gen, count)
        ids = prompt(media, pad=(kind == "images"))
        named[prefix + "input.pixel_values"] = px
        named[prefix + "input.ids"] = ids
        named.update(qref.run(W, cfg, px, clip_ids, None, ids, kind, max_new_tokens, prefix))
    extra = {}
    qref.text_tower(clip_ids, clip_mask, W, cfg, extra)
    named["masked.pgp.text_embed"] = extra["pgp.text_embed"]
    extra = {}
    px = pixels(gen, 5)
    feature = qref.vision_tower(px, W, cfg, extra)
    qref.pgp_projector(feature, named["pgp.text_embed"], W, cfg, extra, video=True)
    named["odd.input.pixel_values"] = px
    for key in ("vision.feature", "pgp.relevance", "pgp.pooled"):
        named["odd." + key] = extra[key]
    tensors = []
    for name, value in named.items():
        array = value.detach().numpy()
        tensors.append((name, array, "I64" if array.dtype == np.int64 else "F64"))
    metadata = {"format": "ppllava-golden", "version": "1", "seed": seed, "max_new_tokens": max_new_tokens,
                "variant": "qwen"}
    st.write(os.path.join(out, "golden.safetensors"), tensors, metadata)
    return named


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=4321)
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--shape", choices=("small", "wide"), default="small")
    args = parser.parse_args()
    if args.shape == "wide":
        use_wide()
    os.makedirs(args.out, exist_ok=True)
    weights = make_weights(args.seed)
    write_variants(args.out, weights)
    named = write_golden(args.out, weights, args.seed, args.max_new_tokens, args.shape == "wide")
    prefixes = ("",) if args.shape == "wide" else ("", "image.", "multi.")
    summary = {p + "greedy": named[p + "greedy.tokens"].tolist() for p in prefixes}
    summary.update({p + "min_margin": float(named[p + "greedy.margins"].min()) for p in prefixes})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
