"""The Qwen2/SigLIP variant of PPLLaVA (spec §9) in PyTorch, float64, without transformers: the modules are written
here from the spec and from the semantics of transformers 4.45's SiglipVisionTransformer / SiglipTextTransformer /
Qwen2 and of upstream's LLaVASiglip3DMultiModalProjector + SiglipPoolingHead_PatchCLS (their behaviour as the
spec states it). The oracle of tests/qwen_variant.test.ts; intermediates are recorded in `named` under the names
the TypeScript graph traces.

- vision: conv patch embed WITH bias, + position table (no CLS, no pre-LN), pre-LN encoder layers with
  gelu(approximate="tanh"), LayerNorm eps from the config (1e-6); hs[0] = embeddings, hs[k] = layer k−1 output;
  feature = hs[vision_feature_layer] ("full": nothing dropped; post_layernorm is not applied to hidden states).
- text: token embedding + the extended position table (§3.6: rows < 20 from position_embedding, the rest from
  position_embedding_res), bidirectional encoder layers with an optional key padding mask (HF's
  _prepare_4d_attention_mask), final LayerNorm, the LAST row (pooled even when it is padding), `head` linear.
- relevance: per patch x = clip_visual_ln(F); v = x·W_in[2d:]ᵀ + b_in[2d:] (the V part of the head's attention
  in-projection); e = v + fc2(gelu_tanh(fc1(LN_head(v)))); p = softmax(exp(logit_scale)·cos(e, e_t) + logit_bias)
  over all T·P tokens; then the Vicuna pooling (window softmax of p/τ, kernel/stride) and projector.
- LLM: Qwen2 = LLaMA with q/k/v biases, GQA (K/V heads repeated), RoPE θ from the config, RMSNorm eps 1e-6.
"""
import math

import torch
import torch.nn.functional as Fn

import ppllava_reference as ref

torch.set_default_dtype(torch.float64)

VT, MP, TT, LM = ref.VT, ref.MP, ref.TT, ref.LM
KEEP = ref.EXTEND_CLIP_KEEP
LOGIT_ROWS = 4

VISION_DEFAULTS = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=26, num_attention_heads=16,
                       patch_size=14, image_size=384, layer_norm_eps=1e-6, vision_use_head=False)
TEXT_DEFAULTS = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                     num_key_value_heads=4, rms_norm_eps=1e-6, rope_theta=1e6, vocab_size=152064)
SIGLIP_TEXT_DEFAULTS = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                            vocab_size=32000, max_position_embeddings=64, layer_norm_eps=1e-6)
TOP_DEFAULTS = dict(image_token_index=151646, pad_token_id=151643, vision_feature_layer=-1,
                    pooling_kernel=[2, 3, 3], pooling_stride=[2, 3, 3], image_pooling_kernel=[1, 3, 3],
                    image_pooling_stride=[1, 3, 3], pllava_pooling_shape=None, frame_shape=[27, 27],
                    pooling_temp=0.01, extend_clip=True, eos_token_ids=[151645, 151643])


class Config:
    def __init__(self, raw):
        self.raw = raw
        self.vision = {**VISION_DEFAULTS, **raw.get("vision_config", {})}
        self.text = {**TEXT_DEFAULTS, **raw.get("text_config", {})}
        self.clip_text = {**SIGLIP_TEXT_DEFAULTS, **raw.get("clip_text_config", {})}
        self.top = {k: raw.get(k, v) for k, v in TOP_DEFAULTS.items()}


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def attention(x, W, prefix, heads, key_mask=None):
    """x (N, L, D): full multi-head attention, q/k/v/out with biases; key_mask (L,) bool: False keys are hidden."""
    n, length, dim = x.shape
    hd = dim // heads
    split = lambda t: t.view(n, length, heads, hd).transpose(1, 2)  # noqa: E731
    q = split(ref.linear(x, W, prefix + ".q_proj"))
    k = split(ref.linear(x, W, prefix + ".k_proj"))
    v = split(ref.linear(x, W, prefix + ".v_proj"))
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[None, None, None, :], float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v
    return ref.linear(out.transpose(1, 2).reshape(n, length, dim), W, prefix + ".out_proj")


def mlp(x, W, prefix):
    return ref.linear(gelu_tanh(ref.linear(x, W, prefix + ".fc1")), W, prefix + ".fc2")


def siglip_layer(x, W, prefix, heads, eps, key_mask=None):
    x = x + attention(ref.layer_norm(x, W, prefix + ".layer_norm1", eps), W, prefix + ".self_attn", heads, key_mask)
    return x + mlp(ref.layer_norm(x, W, prefix + ".layer_norm2", eps), W, prefix + ".mlp")


def vision_tower(pixels, W, cfg, named):
    """pixels (N, 3, S, S) → feature (N, P, D); every frame on its own (no BT-Adapter)."""
    v = cfg.vision
    x = Fn.conv2d(pixels, W[VT + ".embeddings.patch_embedding.weight"], W[VT + ".embeddings.patch_embedding.bias"],
                  stride=v["patch_size"]).flatten(2).transpose(1, 2)
    x = x + W[VT + ".embeddings.position_embedding.weight"][None]
    named["vision.embeddings"] = x
    hs = [x]
    for i in range(v["num_hidden_layers"]):
        x = siglip_layer(x, W, f"{VT}.encoder.layers.{i}", v["num_attention_heads"], v["layer_norm_eps"])
        hs.append(x)
    for k, h in enumerate(hs):
        named[f"vision.hs.{k}"] = h
    feature = hs[cfg.top["vision_feature_layer"]]  # "full": no CLS to drop
    named["vision.feature"] = feature
    return feature


def text_positions(W, cfg):
    if cfg.top["extend_clip"]:
        return torch.cat([W[TT + ".embeddings.position_embedding"][:KEEP],
                          W[TT + ".embeddings.position_embedding_res"][KEEP:]], dim=0)
    return W[TT + ".embeddings.position_embedding.weight"]


def text_tower(ids, mask, W, cfg, named):
    """ids (n,), mask (n,) or None → e_t = head(final_LN(h)[last row])."""
    c = cfg.clip_text
    n = ids.shape[0]
    pos = text_positions(W, cfg)
    if n > pos.shape[0]:
        raise ValueError(f"{n} text tokens > {pos.shape[0]} positions")
    x = W[TT + ".embeddings.token_embedding.weight"][ids] + pos[:n]
    named["text.embeddings"] = x
    key_mask = None if mask is None else mask.bool()
    x = x[None]
    for i in range(c["num_hidden_layers"]):
        x = siglip_layer(x, W, f"{TT}.encoder.layers.{i}", c["num_attention_heads"], c["layer_norm_eps"], key_mask)
    x = ref.layer_norm(x[0], W, TT + ".final_layer_norm", c["layer_norm_eps"])
    named["text.last_hidden"] = x
    pooled = x[-1]
    named["text.pooled"] = pooled
    e_t = ref.linear(pooled, W, TT + ".head")
    named["pgp.text_embed"] = e_t
    return e_t


def patch_embeddings(feature, W, cfg):
    """§9: the head's per-patch output. The probe query and out_proj never touch it."""
    eps = cfg.vision["layer_norm_eps"]
    d = feature.shape[-1]
    x = ref.layer_norm(feature, W, MP + ".clip_visual_ln", eps)
    head = MP + ".clip_visual_head"
    v = x @ W[head + ".attention.in_proj_weight"][2 * d:].T + W[head + ".attention.in_proj_bias"][2 * d:]
    return v + mlp(ref.layer_norm(v, W, head + ".layernorm", eps), W, head + ".mlp")


def pgp_projector(feature, e_t, W, cfg, named, video=True, output_size=None, kernel=None, stride=None):
    top = cfg.top
    t, n_patches, _ = feature.shape
    gh, gw = top["frame_shape"]
    e_v = patch_embeddings(feature, W, cfg).reshape(t * n_patches, -1)
    named["pgp.visual_embeds"] = e_v
    cosine = (e_v / e_v.norm(dim=-1, keepdim=True)) @ (e_t / e_t.norm())
    named["pgp.cosine"] = cosine
    scale = torch.exp(W[MP + ".logit_scale"].reshape(()))
    p = torch.softmax(scale * cosine + W[MP + ".logit_bias"].reshape(()), dim=0)
    # logit_bias shifts every logit alike, so the softmax ignores it (spec §8.15): check it, do not assume it.
    assert torch.allclose(p, torch.softmax(scale * cosine, dim=0), rtol=1e-12, atol=1e-300)
    p = p.view(t, gh, gw)
    named["pgp.relevance"] = p
    hidden = ref.gelu_exact(ref.linear(feature, W, MP + ".linear_1"))
    projected = ref.linear(hidden, W, MP + ".linear_2")
    named["projector.gelu"] = hidden.reshape(t * n_patches, -1)
    named["projector.out"] = projected.reshape(t * n_patches, -1)
    if kernel is None and stride is None and output_size is None:
        kernel = top["pooling_kernel"] if video else top["image_pooling_kernel"]
        stride = top["pooling_stride"] if video else top["image_pooling_stride"]
        output_size = top["pllava_pooling_shape"] if video else None
    sizes = [ref.get_size(s, None if output_size is None else output_size[a],
                          None if kernel is None else kernel[a], None if stride is None else stride[a])
             for a, s in enumerate((t, gh, gw))]
    named["pgp.sizes"] = torch.tensor(sizes, dtype=torch.int64)
    pooled, alphas = ref.weighted_pool(projected.view(t, gh, gw, -1), p, sizes, top["pooling_temp"])
    named["pgp.window_weights"] = alphas
    pooled_hidden, _ = ref.weighted_pool(hidden.view(t, gh, gw, -1), p, sizes, top["pooling_temp"])
    named["pgp.pooled_hidden"] = pooled_hidden
    named["pgp.pooled"] = pooled
    return pooled


def qwen2_forward(embeds, W, cfg, cache, named=None):
    """embeds (L, H) at positions len(cache).. → logits (L, vocab); cache per layer [k, v] (kv_heads, len, hd)."""
    c = cfg.text
    heads, kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c["hidden_size"] // heads
    past = cache[0][0].shape[1] if cache else 0
    n = embeds.shape[0]
    positions = torch.arange(past, past + n)
    x = embeds
    for i in range(c["num_hidden_layers"]):
        pre = f"{LM}.model.layers.{i}"
        h = ref.rms_norm(x, W[pre + ".input_layernorm.weight"], c["rms_norm_eps"])
        q = ref.linear(h, W, pre + ".self_attn.q_proj").view(n, heads, hd).transpose(0, 1)
        k = ref.linear(h, W, pre + ".self_attn.k_proj").view(n, kv_heads, hd).transpose(0, 1)
        v = ref.linear(h, W, pre + ".self_attn.v_proj").view(n, kv_heads, hd).transpose(0, 1)
        q, k = ref.rope(q, positions, c["rope_theta"]), ref.rope(k, positions, c["rope_theta"])
        if len(cache) <= i:
            cache.append([k, v])
        else:
            cache[i] = [torch.cat([cache[i][0], k], dim=1), torch.cat([cache[i][1], v], dim=1)]
        keys = cache[i][0].repeat_interleave(heads // kv_heads, dim=0)
        values = cache[i][1].repeat_interleave(heads // kv_heads, dim=0)
        scores = (q @ keys.transpose(-1, -2)) / math.sqrt(hd)
        allowed = torch.arange(past + n)[None, :] <= positions[:, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
        att = (torch.softmax(scores, dim=-1) @ values).transpose(0, 1).reshape(n, heads * hd)
        x = x + att @ W[pre + ".self_attn.o_proj.weight"].T
        h = ref.rms_norm(x, W[pre + ".post_attention_layernorm.weight"], c["rms_norm_eps"])
        gate = Fn.silu(h @ W[pre + ".mlp.gate_proj.weight"].T)
        x = x + (gate * (h @ W[pre + ".mlp.up_proj.weight"].T)) @ W[pre + ".mlp.down_proj.weight"].T
        if named is not None:
            named[f"llm.layers.{i}"] = x
    x = ref.rms_norm(x, W[LM + ".model.norm.weight"], c["rms_norm_eps"])
    return x @ W[LM + ".lm_head.weight"].T


def greedy(embeds, W, cfg, max_new_tokens):
    """→ (tokens incl. a final EOS if one came, per-step top1−top2 logit margins)."""
    eos = set(cfg.top["eos_token_ids"])
    cache = []
    logits = qwen2_forward(embeds, W, cfg, cache)[-1]
    tokens, margins = [], []
    for _ in range(max_new_tokens):
        top = torch.topk(logits, 2).values
        margins.append((top[0] - top[1]).item())
        token = int(torch.argmax(logits))
        tokens.append(token)
        if token in eos:
            break
        logits = qwen2_forward(W[LM + ".model.embed_tokens.weight"][token][None], W, cfg, cache)[-1]
    return tokens, margins


def merge(ids, visuals, W, cfg):
    """ref.merge with this variant's image token, then upstream's step 6 of _merge_input_ids_with_image_features:
    the rows of pad_token_id ids (151643 `<|endoftext|>`) are zeroed."""
    class Top:
        top = {"image_token_index": cfg.top["image_token_index"]}
    embeds = ref.merge(ids, visuals, W, Top)
    row, k = 0, 0
    for token in ids.tolist():
        if token == cfg.top["image_token_index"]:
            row += visuals[k].shape[0]
            k += 1
            continue
        if token == cfg.top["pad_token_id"]:
            embeds[row] = 0.0
        row += 1
    return embeds


def image_tokens(pooled, W, kind, count):
    """Visual sequences of one input for the merge: "video" one; "images" one per image (§4 multi-image);
    "image" (one tile, §4 P_t = 1): its tokens + the image_newline row."""
    if kind == "images":
        return list(pooled.view(count, -1, pooled.shape[-1]))
    if kind == "image":
        return [torch.cat([pooled, W["image_newline"][None]], dim=0)]
    return [pooled]


def run(W, cfg, pixels, clip_ids, clip_mask, ids, kind="video", max_new_tokens=12, prefix=""):
    """One visual input of `kind` and one prompt → the named intermediates (names prefixed by `prefix`)."""
    named = {}
    feature = vision_tower(pixels, W, cfg, named)
    e_t = text_tower(clip_ids, clip_mask, W, cfg, named)
    pooled = pgp_projector(feature, e_t, W, cfg, named, video=(kind == "video"))
    embeds = merge(ids, image_tokens(pooled, W, kind, pixels.shape[0]), W, cfg)
    named["llm.embeds"] = embeds
    # The last rows only: 152064 columns per row make the full (L, V) table tens of MB in float64.
    named["llm.logits.tail"] = qwen2_forward(embeds, W, cfg, [], named)[-LOGIT_ROWS:]
    tokens, margins = greedy(embeds, W, cfg, max_new_tokens)
    named["greedy.tokens"] = torch.tensor(tokens, dtype=torch.int64)
    named["greedy.margins"] = torch.tensor(margins)
    return {prefix + k: v for k, v in named.items()}
