"""Makes small random PPLLaVA checkpoints in the exact HF key layout (spec §6) and config.json format (spec §2), plus
the golden outputs of the float64 reference forward (ppllava_reference.py) on them.

    /usr/bin/python3 tests/oracles/make_checkpoint.py OUT_DIR [--no-golden] [--seed N]

Writes into OUT_DIR:
  {f32,f16,bf16}/            config.json, generation_config.json, model.safetensors
  {f32,f16,bf16}-sharded/    the same weights in model-0000{1,2,3}-of-00003.safetensors + model.safetensors.index.json
  checksums.json             per tensor: dtype-independent shape, sha256 of the decoded values as f32 LE, f64 sum
  dtype_probe.safetensors    special values (subnormals, ±0, ±inf, NaN, extremes) in F16/BF16/F32/F64/I32/I64
  dtype_probe.json           their expected decodes as f32/f64 bit patterns (JSON has no NaN/inf)
  golden.safetensors         inputs + named intermediates (F64 / I64), __metadata__ {format, version, ...}

Every weight is drawn in f32, rounded to the bf16 grid and kept in f16's normal range (|x| ≥ 2^-14 or 0), so the
f32, f16 and bf16 files hold exactly the same values and one golden file serves all six variants.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ppllava_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402

GOLDEN_FORMAT = "ppllava-golden"
GOLDEN_VERSION = "1"
EOS_ROW_SCALE = 3.0

# Small sizes; the CLIP and LLaMA vocabularies stay real so real token ids stay valid.
VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=6, num_attention_heads=4, patch_size=14,
              image_size=84, num_channels=3, layer_norm_eps=1e-5, projection_dim=32, hidden_act="quick_gelu",
              depth=4, max_T=8, model_type="clip_vision_model")
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            rms_norm_eps=1e-5, rope_theta=10000.0, vocab_size=32064, max_position_embeddings=4096,
            hidden_act="silu", model_type="llama", architectures=["LlamaForCausalLM"],
            _name_or_path="lmsys/vicuna-7b-v1.5")
# Our extension: the released config.json has no CLIP text block (the tower comes from `clip_weight`).
CLIP_TEXT = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, vocab_size=49408,
                 max_position_embeddings=77, projection_dim=32, layer_norm_eps=1e-5, hidden_act="quick_gelu")


def make_config(torch_dtype):
    return {
        "architectures": ["LlavaInterleaveForConditionalGeneration"],
        "model_type": "llava_next",
        "btadapter": True,
        "btadapter_depth": VISION["depth"],
        "clip_post_pretrain": None,
        "clip_weight": "openai/clip-vit-large-patch14-336",
        "extend_clip": True,
        "frame_shape": [6, 6],
        "hidden_size": TEXT["hidden_size"],
        "ignore_index": -100,
        "image_grid_pinpoints": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
        "image_pooling_kernel": [1, 3, 3],
        "image_pooling_stride": [1, 3, 3],
        "image_token_index": 32000,
        "max_T": VISION["max_T"],
        "pad_token_id": 0,
        "pllava_pooling_shape": None,
        "pooling": "ppllava",
        "pooling_kernel": [2, 3, 3],
        "pooling_stride": [2, 3, 3],
        "pooling_temp": 0.01,
        "projector_hidden_act": "gelu",
        "text_config": TEXT,
        "tie_word_embeddings": False,
        "torch_dtype": torch_dtype,
        "transformers_version": "4.40.0",
        "use_image_newline_parameter": True,
        "vision_config": VISION,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "clip_text_config": CLIP_TEXT,
    }


def layout():
    """Ordered (key, shape, kind) of every tensor, spec §6 with the small sizes."""
    vd, vi, vl, p = VISION["hidden_size"], VISION["intermediate_size"], VISION["num_hidden_layers"], VISION["patch_size"]
    grid = (VISION["image_size"] // p) ** 2
    td, ti, tl = CLIP_TEXT["hidden_size"], CLIP_TEXT["intermediate_size"], CLIP_TEXT["num_hidden_layers"]
    proj = CLIP_TEXT["projection_dim"]
    positions = 4 * CLIP_TEXT["max_position_embeddings"] - 3 * ref.EXTEND_CLIP_KEEP
    ld, li, ll, vocab = TEXT["hidden_size"], TEXT["intermediate_size"], TEXT["num_hidden_layers"], TEXT["vocab_size"]
    kv = TEXT["num_key_value_heads"] * (ld // TEXT["num_attention_heads"])
    out = [("image_newline", [ld], "w")]

    def clip_layer(prefix, d, i, mlp=True, norm2=True, temporal=False):
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out.append((f"{prefix}.self_attn.{name}.weight", [d, d], "w"))
            out.append((f"{prefix}.self_attn.{name}.bias", [d], "b"))
        out.append((f"{prefix}.layer_norm1.weight", [d], "ln"))
        out.append((f"{prefix}.layer_norm1.bias", [d], "b"))
        if norm2:
            out.append((f"{prefix}.layer_norm2.weight", [d], "ln"))
            out.append((f"{prefix}.layer_norm2.bias", [d], "b"))
        if mlp:
            out.extend([(f"{prefix}.mlp.fc1.weight", [i, d], "w"), (f"{prefix}.mlp.fc1.bias", [i], "b"),
                        (f"{prefix}.mlp.fc2.weight", [d, i], "w"), (f"{prefix}.mlp.fc2.bias", [d], "b")])
        if temporal:
            out.extend([(f"{prefix}.temporal_fc.weight", [d, d], "w"), (f"{prefix}.temporal_fc.bias", [d], "b")])

    v = ref.VT
    out += [(f"{v}.embeddings.class_embedding", [vd], "e"),
            (f"{v}.embeddings.patch_embedding.weight", [vd, 3, p, p], "w"),
            (f"{v}.embeddings.position_embedding.weight", [grid + 1, vd], "e"),
            (f"{v}.pre_layrnorm.weight", [vd], "ln"), (f"{v}.pre_layrnorm.bias", [vd], "b")]
    for k in range(vl):
        clip_layer(f"{v}.encoder.layers.{k}", vd, vi)
    out += [(f"{v}.post_layernorm.weight", [vd], "ln"), (f"{v}.post_layernorm.bias", [vd], "b")]
    for k in range(VISION["depth"]):
        clip_layer(f"{v}.btadapter_S_layers.{k}", vd, vi)
    for k in range(VISION["depth"]):
        clip_layer(f"{v}.btadapter_T_layers.{k}", vd, vi, mlp=False, norm2=False, temporal=True)
    out += [(f"{v}.btadapter_time_embed.weight", [VISION["max_T"], vd], "e"),
            (f"{v}.btadapter_cls_token", [1, 1, vd], "e")]
    m = ref.MP
    out += [(f"{m}.linear_1.weight", [ld, vd], "w"), (f"{m}.linear_1.bias", [ld], "b"),
            (f"{m}.linear_2.weight", [ld, ld], "w"), (f"{m}.linear_2.bias", [ld], "b"),
            (f"{m}.clip_visual_ln.weight", [vd], "ln"), (f"{m}.clip_visual_ln.bias", [vd], "b"),
            (f"{m}.clip_visual_projection.weight", [proj, vd], "w"),
            (f"{m}.clip_text_projection.weight", [proj, td], "w"),
            (f"{m}.logit_scale", [], "logit_scale")]
    t = ref.TT
    out += [(f"{t}.embeddings.token_embedding.weight", [CLIP_TEXT["vocab_size"], td], "e"),
            (f"{t}.embeddings.position_embedding", [positions, td], "e"),
            (f"{t}.embeddings.position_embedding_res", [positions, td], "e")]
    for k in range(tl):
        clip_layer(f"{t}.encoder.layers.{k}", td, ti)
    out += [(f"{t}.final_layer_norm.weight", [td], "ln"), (f"{t}.final_layer_norm.bias", [td], "b")]
    lm = ref.LM
    out.append((f"{lm}.model.embed_tokens.weight", [vocab, ld], "e"))
    for k in range(ll):
        pre = f"{lm}.model.layers.{k}"
        out += [(f"{pre}.self_attn.q_proj.weight", [ld, ld], "w"), (f"{pre}.self_attn.k_proj.weight", [kv, ld], "w"),
                (f"{pre}.self_attn.v_proj.weight", [kv, ld], "w"), (f"{pre}.self_attn.o_proj.weight", [ld, ld], "w"),
                (f"{pre}.mlp.gate_proj.weight", [li, ld], "w"), (f"{pre}.mlp.up_proj.weight", [li, ld], "w"),
                (f"{pre}.mlp.down_proj.weight", [ld, li], "w"),
                (f"{pre}.input_layernorm.weight", [ld], "ln"), (f"{pre}.post_attention_layernorm.weight", [ld], "ln")]
    out += [(f"{lm}.model.norm.weight", [ld], "ln"), (f"{lm}.lm_head.weight", [vocab, ld], "head")]
    return out


def representable(x):
    """Round to the bf16 grid and flush what f16 cannot hold exactly (|x| < 2^-14) to zero."""
    x = st.bf16_bits_to_f32(st.f32_to_bf16_bits(x.astype(np.float32)))
    return np.where(np.abs(x) < 2.0 ** -14, np.float32(0), x).astype(np.float32)


def make_weights(seed):
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape, kind in layout():
        fan_in = shape[-1] if len(shape) >= 2 else 1
        if key.endswith("patch_embedding.weight"):
            fan_in = int(np.prod(shape[1:]))
        if kind == "w":
            x = rng.standard_normal(shape) / math.sqrt(fan_in)
        elif kind == "head":
            x = rng.standard_normal(shape) * (3.0 / math.sqrt(fan_in))  # logits of a few units: decisive argmaxes
        elif kind == "b":
            x = 0.05 * rng.standard_normal(shape)
        elif kind == "ln":
            x = 1.0 + 0.1 * rng.standard_normal(shape)
        elif kind == "e":
            x = 0.5 * rng.standard_normal(shape)
        else:  # logit_scale, frozen at ln(100) in CLIP
            x = np.array(math.log(100.0))
        if kind == "head":
            # The EOS row (id 2) is scaled up so that EOS becomes likely within a few steps: the golden greedy and
            # beam runs then both end in EOS, which exercises the finished-hypothesis logic of beam search.
            x[ref.LLAMA_EOS] *= EOS_ROW_SCALE
        weights[key] = representable(np.asarray(x))
    return weights


SHARD_DTYPES = {"f32": ("F32", "float32"), "f16": ("F16", "float16"), "bf16": ("BF16", "bfloat16")}


def write_variants(out, weights):
    keys = [k for k, _, _ in layout()]
    for name, (dtype, torch_dtype) in SHARD_DTYPES.items():
        for sharded in (False, True):
            folder = os.path.join(out, name + ("-sharded" if sharded else ""))
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "config.json"), "w") as f:
                json.dump(make_config(torch_dtype), f, indent=2)
            with open(os.path.join(folder, "generation_config.json"), "w") as f:
                json.dump({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}, f, indent=2)
            tensors = [(k, weights[k], dtype) for k in keys]
            if not sharded:
                st.write(os.path.join(folder, "model.safetensors"), tensors, {"format": "pt"})
                continue
            # Three shards like the release: vision, projector + CLIP text, LLM (split by key prefix).
            groups = [[t for t in tensors if t[0].startswith("vision_tower") or t[0] == "image_newline"],
                      [t for t in tensors if t[0].startswith("multi_modal_projector")],
                      [t for t in tensors if t[0].startswith("language_model")]]
            weight_map, total = {}, 0
            for i, group in enumerate(groups):
                file = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
                st.write(os.path.join(folder, file), group, {"format": "pt"})
                for k, array, _ in group:
                    weight_map[k] = file
                    total += array.size * (4 if dtype == "F32" else 2)
            with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def write_checksums(out, weights):
    table = {}
    for key, shape, _ in layout():
        values = weights[key].astype("<f4")
        table[key] = {"shape": shape, "sha256": hashlib.sha256(values.tobytes()).hexdigest(),
                      "sum": float(values.astype(np.float64).sum()), "first": float(values.reshape(-1)[0])}
    with open(os.path.join(out, "checksums.json"), "w") as f:
        json.dump(table, f, indent=1)


def write_dtype_probe(out):
    f16 = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 2.0 ** -14, 2.0 ** -24, 3 * 2.0 ** -24, 0.1, np.inf, -np.inf,
                    np.nan], dtype=np.float16)
    bf16_bits = np.array([0x0000, 0x8000, 0x3F80, 0xC020, 0x7F7F, 0x0080, 0x0001, 0x007F, 0x3DCD, 0x7F80, 0xFF80,
                          0x7FC0], dtype=np.uint16)
    f32 = np.array([0.0, -0.0, 1.5, 3.4028235e38, 1.4e-45, np.inf, np.nan], dtype=np.float32)
    f64 = np.array([1e-300, -2.5, 1.0 / 3.0], dtype=np.float64)
    i64 = np.array([0, -1, 2 ** 40, 49407], dtype=np.int64)
    i32 = np.array([7, -7, 2 ** 31 - 1], dtype=np.int32)
    path = os.path.join(out, "dtype_probe.safetensors")
    tensors = [("f16", f16, "F16"), ("f32", f32, "F32"), ("f64", f64, "F64"), ("i64", i64, "I64"),
               ("i32", i32, "I32"), ("bf16", st.bf16_bits_to_f32(bf16_bits).reshape(3, 4), "BF16")]
    st.write(path, tensors, {"note": "special values"})
    expected = {
        "f16": [int(b) for b in f16.astype(np.float32).view(np.uint32)],
        "bf16": [int(b) for b in st.bf16_bits_to_f32(bf16_bits).view(np.uint32)],
        "f32": [int(b) for b in f32.view(np.uint32)],
        "f64": [str(int(b)) for b in f64.view(np.uint64)],
        "i64": [str(int(x)) for x in i64],
        "i32": [int(x) for x in i32],
    }
    with open(os.path.join(out, "dtype_probe.json"), "w") as f:
        json.dump(expected, f, indent=1)


def golden_inputs(seed):
    gen = torch.Generator().manual_seed(seed)
    frames = 4
    pixels = torch.randn(frames, 3, VISION["image_size"], VISION["image_size"], generator=gen)
    pixels = torch.from_numpy(representable(pixels.numpy())).double()
    positions = 4 * CLIP_TEXT["max_position_embeddings"] - 3 * ref.EXTEND_CLIP_KEEP
    # "what is the man doing?" shaped CLIP ids (BOS, words, EOS), padded with EOS to 248 (§3.5); not from a tokenizer.
    words = [49406, 599, 533, 518, 786, 1960, 286, 49407]
    clip_ids = torch.full((positions,), ref.CLIP_EOS, dtype=torch.int64)
    clip_ids[:len(words)] = torch.tensor(words)
    clip_mask = torch.zeros(positions, dtype=torch.int64)
    clip_mask[:len(words)] = 1
    # "<s>USER: <image>\nwhat is the man doing? ASSISTANT: " shaped Llama ids (plain_v1); not from a tokenizer.
    ids = torch.tensor([1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5816, 338, 278, 767, 2599, 29973, 319, 1799,
                        9047, 13566, 29901, 29871], dtype=torch.int64)
    return pixels, clip_ids, clip_mask, ids


def write_golden(out, weights, seed, max_new_tokens):
    # Read back through the file format (bf16, sharded): the goldens then also prove the writer/reader round trip
    # and that all variants hold the same values.
    cfg, W = ref.load_checkpoint(os.path.join(out, "bf16-sharded"))
    for key, value in weights.items():
        assert torch.equal(W[key], torch.from_numpy(value).double()), f"{key} changed on the way through bf16"
    pixels, clip_ids, clip_mask, ids = golden_inputs(seed)
    named = ref.run(W, cfg, pixels, clip_ids, clip_mask, ids, max_new_tokens=max_new_tokens)
    # Other pooling modes on the same feature and text embedding (§3.4 get_size; image kernel (1,3,3)).
    for label, options in (("image", dict(video=False)), ("output", dict(output_size=[2, 2, 2])),
                           ("output_stride", dict(output_size=[1, 2, 2], stride=[2, 2, 2]))):
        extra = {}
        ref.pgp_projector(named["vision.feature"], named["pgp.text_embed"], W, cfg, extra, **options)
        named[f"pgp.mode.{label}.pooled"] = extra["pgp.pooled"]
        named[f"pgp.mode.{label}.sizes"] = extra["pgp.sizes"]
    # Odd frame count (§8.4: T = 5 pools 2 time windows, the last frame is dropped) and image tiles (§4: each tile is
    # a one-frame video, B = tiles; relevance joint over all tiles; (1,3,3) pooling), vision + PGP only.
    gen = torch.Generator().manual_seed(seed + 1)
    size = VISION["image_size"]
    for label, count, batch, video in (("odd", 5, 1, True), ("tiles", 3, 3, False)):
        extra = {}
        px = torch.from_numpy(representable(torch.randn(count, 3, size, size, generator=gen).numpy())).double()
        _, feature = ref.vision_tower(px, W, cfg, extra, b=batch)
        ref.pgp_projector(feature, named["pgp.text_embed"], W, cfg, extra, video=video)
        named[f"{label}.input.pixel_values"] = px
        for key in ("vision.feature", "pgp.relevance", "pgp.pooled"):
            named[f"{label}.{key}"] = extra[key]
    tensors = [("input.pixel_values", pixels.numpy(), "F64"), ("input.clip_ids", clip_ids.numpy(), "I64"),
               ("input.clip_mask", clip_mask.numpy(), "I64"), ("input.ids", ids.numpy(), "I64")]
    for name, value in named.items():
        array = value.detach().numpy()
        tensors.append((name, array, "I64" if array.dtype == np.int64 else "F64"))
    metadata = {"format": GOLDEN_FORMAT, "version": GOLDEN_VERSION, "seed": seed, "max_new_tokens": max_new_tokens,
                "num_beams": 5, "length_penalty": 1.0, "early_stopping": "false", "frames": pixels.shape[0]}
    st.write(os.path.join(out, "golden.safetensors"), tensors, metadata)
    return named


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--no-golden", action="store_true")
    args = parser.parse_args()
    start = time.time()
    os.makedirs(args.out, exist_ok=True)
    weights = make_weights(args.seed)
    write_variants(args.out, weights)
    write_checksums(args.out, weights)
    write_dtype_probe(args.out)
    summary = {"weights_seconds": round(time.time() - start, 2)}
    if not args.no_golden:
        named = write_golden(args.out, weights, args.seed, args.max_new_tokens)
        summary["greedy"] = named["greedy.tokens"].tolist()
        summary["greedy_min_margin"] = float(named["greedy.margins"].min())
        summary["beam"] = named["beam.tokens"].tolist()
        summary["beam_min_gap"] = float(named["beam.min_gap"][0])
    summary["seconds"] = round(time.time() - start, 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
