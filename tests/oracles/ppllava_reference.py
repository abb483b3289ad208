"""PPLLaVA inference in PyTorch, float64 throughout, written from /work/shared/spec/ppllava.md (not from the original
code, and without transformers). It is the oracle the TypeScript graph is diffed against, stage by stage: every
function records its intermediates in a `named` dict (name → float64 tensor) under the names listed in NAMES.

Sections: §3.3 vision tower + BT-Adapter, §3.6 CLIP text tower with the 248-position extension, §3.4 prompt-guided
pooling (steps A–F) and the projector, §3.7 the `<image>` merge, the Vicuna/LLaMA decoder with a KV cache, and §3.8
greedy and beam search (transformers 4.45 semantics, see `beam_search`).

Weights: a dict checkpoint key (spec §6) → tensor; anything float is promoted to float64 by `as_float64`.
Config: the parsed `config.json` dict; `Config` applies the §2 defaults (the same ones src/model/config.ts applies).
"""
import math

import torch
import torch.nn.functional as Fn

torch.set_default_dtype(torch.float64)

CLIP_EOS = 49407
LLAMA_EOS = 2
EXTEND_CLIP_KEEP = 20  # §3.6: positions < 20 come from `position_embedding`, the rest from `position_embedding_res`

# §2 defaults (the real Vicuna checkpoint); config.json values override them.
VISION_DEFAULTS = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                       patch_size=14, image_size=336, num_channels=3, layer_norm_eps=1e-5, projection_dim=768,
                       hidden_act="quick_gelu", depth=4, max_T=64)
TEXT_DEFAULTS = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=None, rms_norm_eps=1e-5, rope_theta=10000.0, vocab_size=32064,
                     max_position_embeddings=4096, hidden_act="silu")
# Not in the released config.json at all: the text tower is built from `clip_weight` (openai/clip-vit-large-patch14-336).
CLIP_TEXT_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                          vocab_size=49408, max_position_embeddings=77, projection_dim=768, layer_norm_eps=1e-5,
                          hidden_act="quick_gelu", eos_token_id=CLIP_EOS)
TOP_DEFAULTS = dict(image_token_index=32000, pad_token_id=0, vision_feature_layer=-2,
                    vision_feature_select_strategy="default", projector_hidden_act="gelu", pooling="ppllava",
                    pooling_kernel=[2, 3, 3], pooling_stride=[2, 3, 3], image_pooling_kernel=[1, 3, 3],
                    image_pooling_stride=[1, 3, 3], pllava_pooling_shape=None, frame_shape=[24, 24],
                    pooling_temp=0.01, btadapter=True, btadapter_depth=4, max_T=64, extend_clip=True)


class Config:
    def __init__(self, raw):
        self.raw = raw
        self.vision = {**VISION_DEFAULTS, **raw.get("vision_config", {})}
        self.text = {**TEXT_DEFAULTS, **raw.get("text_config", {})}
        if self.text["num_key_value_heads"] is None:
            self.text["num_key_value_heads"] = self.text["num_attention_heads"]
        self.clip_text = {**CLIP_TEXT_DEFAULTS, **raw.get("clip_text_config", {})}
        self.top = {k: raw.get(k, v) for k, v in TOP_DEFAULTS.items()}
        if self.top["extend_clip"]:
            self.clip_text["positions"] = 4 * self.clip_text["max_position_embeddings"] - 3 * EXTEND_CLIP_KEEP
        else:
            self.clip_text["positions"] = self.clip_text["max_position_embeddings"]


def load_checkpoint(folder):
    """A checkpoint folder (config.json + model.safetensors or the sharded index) → (Config, float64 weights)."""
    import json
    import os
    import safetensors_io as st
    with open(os.path.join(folder, "config.json")) as f:
        cfg = Config(json.load(f))
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for file in files:
        arrays, _, _ = st.read(os.path.join(folder, file))
        weights.update({k: torch.from_numpy(v.astype("float64")) for k, v in arrays.items()})
    return cfg, weights


def as_float64(weights):
    return {k: (torch.as_tensor(v).double() if torch.as_tensor(v).is_floating_point() else torch.as_tensor(v))
            for k, v in weights.items()}


# ---------------------------------------------------------------------------------------------------------------
# Shared layers

def linear(x, W, prefix, bias=True):
    y = x @ W[prefix + ".weight"].T
    return y + W[prefix + ".bias"] if bias else y


def layer_norm(x, W, prefix, eps):
    return Fn.layer_norm(x, x.shape[-1:], W[prefix + ".weight"], W[prefix + ".bias"], eps)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def gelu_exact(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def clip_attention(x, W, prefix, heads, mask=None):
    """x (N, L, D) → (N, L, D). CLIP attention: q/k/v/out with biases, scale 1/√head_dim; `mask` additive (L, L)."""
    n, length, dim = x.shape
    hd = dim // heads
    q = linear(x, W, prefix + ".q_proj").view(n, length, heads, hd).transpose(1, 2)
    k = linear(x, W, prefix + ".k_proj").view(n, length, heads, hd).transpose(1, 2)
    v = linear(x, W, prefix + ".v_proj").view(n, length, heads, hd).transpose(1, 2)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    if mask is not None:
        scores = scores + mask
    out = torch.softmax(scores, dim=-1) @ v
    return linear(out.transpose(1, 2).reshape(n, length, dim), W, prefix + ".out_proj")


def clip_layer(x, W, prefix, heads, eps, mask=None):
    """Pre-LN CLIP encoder layer: x += Attn(LN1 x); x += fc2(quick_gelu(fc1(LN2 x)))."""
    x = x + clip_attention(layer_norm(x, W, prefix + ".layer_norm1", eps), W, prefix + ".self_attn", heads, mask)
    h = quick_gelu(linear(layer_norm(x, W, prefix + ".layer_norm2", eps), W, prefix + ".mlp.fc1"))
    return x + linear(h, W, prefix + ".mlp.fc2")


# ---------------------------------------------------------------------------------------------------------------
# §3.3 Vision tower: CLIP + BT-Adapter

VT = "vision_tower.vision_model"


def vision_embeddings(pixels, W, cfg):
    """pixels (N, 3, S, S) → (N, 1+P, D): conv patch embed (no bias), CLS, positions, pre_layrnorm."""
    v = cfg.vision
    patches = Fn.conv2d(pixels, W[VT + ".embeddings.patch_embedding.weight"], stride=v["patch_size"])
    patches = patches.flatten(2).transpose(1, 2)  # row-major over the grid
    cls = W[VT + ".embeddings.class_embedding"].expand(pixels.shape[0], 1, -1)
    x = torch.cat([cls, patches], dim=1) + W[VT + ".embeddings.position_embedding.weight"][None]
    return layer_norm(x, W, VT + ".pre_layrnorm", v["layer_norm_eps"])


def to_patch_major(per_frame, b, t):
    """(B·T, P, D) per-frame patches → (B, P·T, D), index p·T + t."""
    _, p, d = per_frame.shape
    return per_frame.view(b, t, p, d).permute(0, 2, 1, 3).reshape(b, p * t, d)


def to_frame_major(patch_major, b, t):
    """(B, P·T, D) → (B·T, P, D)."""
    _, pt, d = patch_major.shape
    p = pt // t
    return patch_major.view(b, p, t, d).permute(0, 2, 1, 3).reshape(b * t, p, d)


def bt_temporal(x2, W, prefix, b, t, heads, eps):
    """T_j: CLS untouched; each patch's T steps attend over time; patches += temporal_fc(Attn(LN1))."""
    d = x2.shape[-1]
    p = (x2.shape[1] - 1) // t
    tokens = x2[:, 1:].reshape(b * p, t, d)
    h = clip_attention(layer_norm(tokens, W, prefix + ".layer_norm1", eps), W, prefix + ".self_attn", heads)
    h = linear(h, W, prefix + ".temporal_fc")
    return torch.cat([x2[:, :1], (tokens + h).reshape(b, p * t, d)], dim=1)


def bt_spatial(x2, W, prefix, b, t, heads, eps):
    """S_j: per-frame [CLS; patches] attention, CLS averaged over T, then the MLP half of a CLIP layer."""
    d = x2.shape[-1]
    cls = x2[:, :1]  # (B, 1, D)
    frames = to_frame_major(x2[:, 1:], b, t)  # (B·T, P, D)
    seq = torch.cat([cls.repeat_interleave(t, dim=0), frames], dim=1)
    h = clip_attention(layer_norm(seq, W, prefix + ".layer_norm1", eps), W, prefix + ".self_attn", heads)
    new_cls = h[:, :1].view(b, t, 1, d).mean(dim=1)
    x = x2 + torch.cat([new_cls, to_patch_major(h[:, 1:], b, t)], dim=1)
    h = quick_gelu(linear(layer_norm(x, W, prefix + ".layer_norm2", eps), W, prefix + ".mlp.fc1"))
    return x + linear(h, W, prefix + ".mlp.fc2")


def vision_tower(pixels, W, cfg, named, b=1):
    """pixels (B·T, 3, S, S) of B videos with T frames each → (hidden-state list hs, feature F).

    hs follows the HF output_hidden_states convention; hs[k] for the last `depth` layers is the combine of §3.3.
    F = hs[vision_feature_layer] with the CLS dropped ("default") → (B·T, P, D)."""
    v = cfg.vision
    heads, eps = v["num_attention_heads"], v["layer_norm_eps"]
    total, depth = v["num_hidden_layers"], v["depth"]
    t = pixels.shape[0] // b
    if t > v["max_T"]:
        raise ValueError(f"{t} frames > max_T {v['max_T']}")
    x = vision_embeddings(pixels, W, cfg)
    named["vision.embeddings"] = x
    hs = [x]
    x2 = None
    pos = W[VT + ".embeddings.position_embedding.weight"]
    first_bt = total - depth
    for idx in range(total):
        x = clip_layer(x, W, f"{VT}.encoder.layers.{idx}", heads, eps)
        if not cfg.top["btadapter"] or idx < first_bt:
            hs.append(x)
            continue
        j = idx - first_bt
        frames = x.view(b, t, x.shape[1], x.shape[2])
        if j == 0:  # input_ini
            cls_old = frames[:, :, 0].mean(dim=1)  # (B, D)
            own_cls = W[VT + ".btadapter_cls_token"].reshape(1, 1, -1).expand(b * t, 1, -1)
            y = torch.cat([own_cls, x[:, 1:]], dim=1) + pos[None]
            cls_new = y[:, 0].view(b, t, -1)[:, 0]  # the same row for every frame
            patches = y[:, 1:] + W[VT + ".btadapter_time_embed.weight"][:t].repeat(b, 1)[:, None, :]
            x2_in = torch.cat([((cls_old + cls_new) / 2)[:, None], to_patch_major(patches, b, t)], dim=1)
        else:
            lift = torch.cat([frames[:, :, 0].mean(dim=1)[:, None], to_patch_major(x[:, 1:], b, t)], dim=1)
            x2_in = x2 + lift
        named[f"vision.bt.{j}.in"] = x2_in
        x2 = bt_temporal(x2_in, W, f"{VT}.btadapter_T_layers.{j}", b, t, heads, eps)
        named[f"vision.bt.{j}.temporal"] = x2
        x2 = bt_spatial(x2, W, f"{VT}.btadapter_S_layers.{j}", b, t, heads, eps)
        named[f"vision.bt.{j}.out"] = x2
        hs.append(torch.cat([x[:, :1], (x[:, 1:] + to_frame_major(x2[:, 1:], b, t)) / 2], dim=1))
    for k, h in enumerate(hs):
        named[f"vision.hs.{k}"] = h
    feature = hs[cfg.top["vision_feature_layer"]]
    strategy = cfg.top["vision_feature_select_strategy"]
    feature = feature[:, 1:] if strategy == "default" else feature
    named["vision.feature"] = feature
    return hs, feature


# ---------------------------------------------------------------------------------------------------------------
# §3.6 CLIP text tower with the 248-position extension

TT = "multi_modal_projector.clip_text_model"


def extend_positions(table, keep=EXTEND_CLIP_KEEP):
    """§3.6 construction of the 248-row table from CLIP's 77 rows: keep 20, interpolate ×4, extrapolate the last 4.
    (The checkpoint stores the result; this rebuilds it when `position_embedding_res` is absent.)"""
    n = table.shape[0]
    rows = [table[i] for i in range(keep)]
    for i in range(n - 1 - keep):
        for k in range(4):
            rows.append(((4 - k) / 4) * table[keep + i] + (k / 4) * table[keep + i + 1])
    for k in range(4):
        rows.append(table[n - 1] + (k / 4) * (table[n - 1] - table[n - 2]))
    return torch.stack(rows)


def text_positions(W, cfg):
    if cfg.top["extend_clip"]:
        keep = EXTEND_CLIP_KEEP
        return torch.cat([W[TT + ".embeddings.position_embedding"][:keep],
                          W[TT + ".embeddings.position_embedding_res"][keep:]], dim=0)
    return W[TT + ".embeddings.position_embedding.weight"]


def text_tower(ids, mask, W, cfg, named):
    """ids, mask (n,) int → text embedding e_t (proj,) = text_projection(final_LN(h)[first EOS])."""
    c = cfg.clip_text
    n = ids.shape[0]
    pos = text_positions(W, cfg)
    if n > pos.shape[0]:
        raise ValueError(f"{n} CLIP tokens > {pos.shape[0]} positions")
    x = W[TT + ".embeddings.token_embedding.weight"][ids] + pos[:n]
    named["text.embeddings"] = x
    allowed = torch.tril(torch.ones(n, n, dtype=torch.bool)) & mask.bool()[None, :]
    additive = torch.zeros(n, n, dtype=x.dtype).masked_fill(~allowed, float("-inf"))
    x = x[None]
    for i in range(c["num_hidden_layers"]):
        x = clip_layer(x, W, f"{TT}.encoder.layers.{i}", c["num_attention_heads"], c["layer_norm_eps"], additive)
    x = layer_norm(x[0], W, TT + ".final_layer_norm", c["layer_norm_eps"])
    named["text.last_hidden"] = x
    eos = (ids == c["eos_token_id"]).nonzero()
    if eos.numel() == 0:
        raise ValueError("the CLIP ids hold no EOS token")
    pooled = x[int(eos[0, 0])]
    named["text.pooled"] = pooled
    e_t = pooled @ W["multi_modal_projector.clip_text_projection.weight"].T
    named["pgp.text_embed"] = e_t
    return e_t


# ---------------------------------------------------------------------------------------------------------------
# §3.4 Prompt-guided pooling and the projector

MP = "multi_modal_projector"


def get_size(size, output, kernel, stride):
    """Per axis → (output, kernel, stride), the four modes of `get_size` (§3.4 step E)."""
    if output is None:
        if kernel is None or stride is None:
            raise ValueError("kernel and stride are both needed without an output size")
        if size < kernel:
            raise ValueError(f"input size {size} < kernel {kernel}")
        return (size - kernel) // stride + 1, kernel, stride
    if kernel is None and stride is None:
        stride = size // output
        return output, size - (output - 1) * stride, stride
    if kernel is None:
        return output, size - (output - 1) * stride, stride
    if stride is None:
        if output == 1:
            raise ValueError("output 1 with a given kernel leaves the stride undefined (division by zero upstream)")
        return output, kernel, (size - kernel) // (output - 1)
    raise ValueError("give at most two of output size, kernel and stride")


def weighted_pool(values, p, sizes, temp):
    """values (T, H, W, C), p (T, H, W) → (T'·H'·W', C) in (t', row', col') order, and the window weights."""
    (ot, kt, st), (oh, kh, sh), (ow, kw, sw) = sizes
    out = []
    alphas = []
    for i in range(ot):
        for j in range(oh):
            for l in range(ow):
                win_p = p[i * st:i * st + kt, j * sh:j * sh + kh, l * sw:l * sw + kw].reshape(-1)
                win_x = values[i * st:i * st + kt, j * sh:j * sh + kh, l * sw:l * sw + kw].reshape(-1, values.shape[-1])
                alpha = torch.softmax(win_p / temp, dim=0)
                alphas.append(alpha)
                out.append(alpha @ win_x)
    return torch.stack(out), torch.stack(alphas)


def pgp_projector(feature, e_t, W, cfg, named, video=True, output_size=None, kernel=None, stride=None):
    """feature F (T, P, D) of one visual input, e_t (proj,) → pooled tokens (T'·H'·W', hidden).

    kernel/stride/output_size default to the config (video or image pooling)."""
    top = cfg.top
    t, n_patches, _ = feature.shape
    gh, gw = top["frame_shape"]
    if gh * gw != n_patches:
        raise ValueError(f"frame_shape {gh}x{gw} does not match {n_patches} patches")
    # Step A: dense CLIP embeddings of every patch, index n = t·P + row·W + col.
    e_v = layer_norm(feature, W, MP + ".clip_visual_ln", cfg.vision["layer_norm_eps"])
    e_v = (e_v @ W[MP + ".clip_visual_projection.weight"].T).reshape(t * n_patches, -1)
    named["pgp.visual_embeds"] = e_v
    # Step C: cosine, then the global softmax with scale exp(logit_scale) over all T·P tokens.
    cosine = (e_v / e_v.norm(dim=-1, keepdim=True)) @ (e_t / e_t.norm())
    named["pgp.cosine"] = cosine
    p = torch.softmax(torch.exp(W[MP + ".logit_scale"]) * cosine, dim=0).view(t, gh, gw)
    named["pgp.relevance"] = p
    # Step D: the projector on every token: plain form and pool-after-GELU form.
    hidden = gelu_exact(linear(feature, W, MP + ".linear_1"))
    projected = linear(hidden, W, MP + ".linear_2")
    named["projector.gelu"] = hidden.reshape(t * n_patches, -1)
    named["projector.out"] = projected.reshape(t * n_patches, -1)
    # Step E: weighted 3D pooling with the window softmax.
    if kernel is None and stride is None and output_size is None:
        kernel = top["pooling_kernel"] if video else top["image_pooling_kernel"]
        stride = top["pooling_stride"] if video else top["image_pooling_stride"]
        # pllava_pooling_shape (output-size mode) is read for video only; images pool with kernel/stride.
        output_size = top["pllava_pooling_shape"] if video else None
    sizes = [get_size(s, None if output_size is None else output_size[a],
                      None if kernel is None else kernel[a], None if stride is None else stride[a])
             for a, s in enumerate((t, gh, gw))]
    named["pgp.sizes"] = torch.tensor(sizes, dtype=torch.int64)
    pooled, alphas = weighted_pool(projected.view(t, gh, gw, -1), p, sizes, top["pooling_temp"])
    named["pgp.window_weights"] = alphas
    # Pool after the GELU, then linear_2 on the pooled tokens only (exact, because Σα = 1 and linear_2 is affine).
    pooled_hidden, _ = weighted_pool(hidden.view(t, gh, gw, -1), p, sizes, top["pooling_temp"])
    pooled_late = linear(pooled_hidden, W, MP + ".linear_2")
    gap = (pooled - pooled_late).abs().max().item()
    tolerance = 1e4 * torch.finfo(pooled.dtype).eps * (1 + pooled.abs().max().item())  # rounding only
    assert gap <= tolerance, f"pool-after-GELU differs by {gap}"
    named["pgp.pooled_hidden"] = pooled_hidden
    named["pgp.pooled"] = pooled  # Step F: (t', row', col') order
    return pooled


# ---------------------------------------------------------------------------------------------------------------
# §3.7 merge and the Vicuna/LLaMA decoder

LM = "language_model"


def merge(ids, visuals, W, cfg):
    """Each `<image>` id is replaced by the next visual sequence (in order); text rows from embed_tokens."""
    table = W[LM + ".model.embed_tokens.weight"]
    image_id = cfg.top["image_token_index"]
    pieces, k = [], 0
    for i in ids.tolist():
        if i == image_id:
            if k >= len(visuals):
                raise ValueError("more <image> tokens than visual inputs")
            pieces.append(visuals[k])
            k += 1
        else:
            pieces.append(table[i][None])
    if k != len(visuals):
        raise ValueError("fewer <image> tokens than visual inputs")
    return torch.cat(pieces, dim=0)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * w


def rope(x, positions, theta):
    """x (heads, L, hd); rotate-half RoPE (HF LLaMA) with inv_freq = θ^(−2i/hd)."""
    hd = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = positions[:, None].double() * inv_freq[None]
    emb = torch.cat([freqs, freqs], dim=-1)
    half = hd // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * emb.cos().to(x.dtype) + rotated * emb.sin().to(x.dtype)


def llama_forward(embeds, W, cfg, cache, named=None):
    """embeds (L, H) at positions len(cache)..; cache: list per layer of [k, v] (kv_heads, len, hd), updated in place.
    → logits (L, vocab)."""
    c = cfg.text
    heads, kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c["hidden_size"] // heads
    past = cache[0][0].shape[1] if cache and cache[0] else 0
    n = embeds.shape[0]
    positions = torch.arange(past, past + n)
    x = embeds
    for i in range(c["num_hidden_layers"]):
        pre = f"{LM}.model.layers.{i}"
        h = rms_norm(x, W[pre + ".input_layernorm.weight"], c["rms_norm_eps"])
        q = (h @ W[pre + ".self_attn.q_proj.weight"].T).view(n, heads, hd).transpose(0, 1)
        k = (h @ W[pre + ".self_attn.k_proj.weight"].T).view(n, kv_heads, hd).transpose(0, 1)
        v = (h @ W[pre + ".self_attn.v_proj.weight"].T).view(n, kv_heads, hd).transpose(0, 1)
        q, k = rope(q, positions, c["rope_theta"]), rope(k, positions, c["rope_theta"])
        if len(cache) <= i:
            cache.append([k, v])
        else:
            cache[i] = [torch.cat([cache[i][0], k], dim=1), torch.cat([cache[i][1], v], dim=1)]
        keys = cache[i][0].repeat_interleave(heads // kv_heads, dim=0)
        values = cache[i][1].repeat_interleave(heads // kv_heads, dim=0)
        scores = (q @ keys.transpose(-1, -2)) / math.sqrt(hd)
        total = past + n
        allowed = torch.arange(total)[None, :] <= positions[:, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
        att = (torch.softmax(scores, dim=-1) @ values).transpose(0, 1).reshape(n, heads * hd)
        x = x + att @ W[pre + ".self_attn.o_proj.weight"].T
        h = rms_norm(x, W[pre + ".post_attention_layernorm.weight"], c["rms_norm_eps"])
        gate = Fn.silu(h @ W[pre + ".mlp.gate_proj.weight"].T)
        x = x + (gate * (h @ W[pre + ".mlp.up_proj.weight"].T)) @ W[pre + ".mlp.down_proj.weight"].T
        if named is not None:
            named[f"llm.layers.{i}"] = x
    x = rms_norm(x, W[LM + ".model.norm.weight"], c["rms_norm_eps"])
    return x @ W[LM + ".lm_head.weight"].T


# ---------------------------------------------------------------------------------------------------------------
# §3.8 decoding

def greedy(embeds, W, cfg, max_new_tokens, eos=LLAMA_EOS):
    """→ (tokens incl. a final EOS if one came, per-step top1−top2 logit margins)."""
    cache = []
    logits = llama_forward(embeds, W, cfg, cache)[-1]
    tokens, margins = [], []
    for _ in range(max_new_tokens):
        top = torch.topk(logits, 2).values
        margins.append((top[0] - top[1]).item())
        token = int(torch.argmax(logits))
        tokens.append(token)
        if token == eos:
            break
        logits = llama_forward(W[LM + ".model.embed_tokens.weight"][token][None], W, cfg, cache)[-1]
    return tokens, margins


def beam_search(embeds, W, cfg, max_new_tokens, num_beams=5, length_penalty=1.0, eos=LLAMA_EOS):
    """transformers 4.45 `_beam_search` + `BeamSearchScorer` for batch 1, early_stopping=False (the HF default), no
    logits processors (the checkpoint's generation_config holds only bos/eos/pad):
    - beam scores start at [0, −1e9, …]; each step: log_softmax + beam score, top 2·num_beams over beams×vocab;
    - walking those candidates in order: an EOS whose rank < num_beams closes a hypothesis with score
      sum_logprobs / generated_len^length_penalty (generated_len counts the EOS); other tokens fill the next beams
      until num_beams are taken;
    - done when num_beams hypotheses exist and the worst ≥ best candidate score / generated_len^lp (early_stopping
      False), or at max_new_tokens; then unfinished beams are added as hypotheses with their own lengths;
    - the best hypothesis is returned, with EOS appended when it is shorter than the length limit (HF pads that way).
    → (best generated tokens, its score, the smallest gap between adjacent ranked candidates over all steps)."""
    table = W[LM + ".model.embed_tokens.weight"]
    cache = []
    logits = llama_forward(embeds, W, cfg, cache)[-1:].repeat(num_beams, 1)
    caches = [[[k.clone(), v.clone()] for k, v in cache] for _ in range(num_beams)]
    beam_scores = torch.zeros(num_beams)
    beam_scores[1:] = -1e9
    beams = [[] for _ in range(num_beams)]
    hyps = []  # (score, tokens)
    worst = 1e9
    done = False

    def add(tokens, sum_logprobs, generated_len):
        nonlocal worst
        score = sum_logprobs / (generated_len ** length_penalty)
        if len(hyps) < num_beams or score > worst:
            hyps.append((score, tokens))
            if len(hyps) > num_beams:
                ordered = sorted([(s, i) for i, (s, _) in enumerate(hyps)])
                del hyps[ordered[0][1]]
                worst = ordered[1][0]
            else:
                worst = min(score, worst)

    min_gap = float("inf")  # smallest gap between adjacent ranked candidates: how far f32 may drift safely
    for step in range(max_new_tokens):
        vocab = logits.shape[-1]
        scores = torch.log_softmax(logits, dim=-1) + beam_scores[:, None]
        top_scores, top_ids = torch.topk(scores.reshape(-1), 2 * num_beams + 1)
        min_gap = min(min_gap, (top_scores[:-1] - top_scores[1:]).min().item())
        top_scores, top_ids = top_scores[:-1], top_ids[:-1]
        generated_len = step + 1
        next_scores, next_tokens, next_from = [], [], []
        for rank, (score, flat) in enumerate(zip(top_scores.tolist(), top_ids.tolist())):
            beam, token = flat // vocab, flat % vocab
            if token == eos:
                if rank >= num_beams:
                    continue
                add(list(beams[beam]), score, generated_len)
            else:
                next_scores.append(score)
                next_tokens.append(token)
                next_from.append(beam)
            if len(next_tokens) == num_beams:
                break
        if len(hyps) >= num_beams:
            done = worst >= top_scores.max().item() / (generated_len ** length_penalty)
        beams = [beams[b] + [t] for b, t in zip(next_from, next_tokens)]
        beam_scores = torch.tensor(next_scores)
        if done or step + 1 == max_new_tokens:
            break
        caches = [[[k.clone(), v.clone()] for k, v in caches[b]] for b in next_from]
        logits = torch.stack([llama_forward(table[t][None], W, cfg, caches[i])[-1]
                              for i, t in enumerate(next_tokens)])
    if not done:
        for b in range(num_beams):
            add(list(beams[b]), beam_scores[b].item(), len(beams[b]))
    best_score, best = sorted(hyps, key=lambda h: h[0])[-1]
    if len(best) < max_new_tokens:
        best = best + [eos]
    return best, best_score, min_gap


# ---------------------------------------------------------------------------------------------------------------
# End to end

def run(W, cfg, pixels, clip_ids, clip_mask, ids, max_new_tokens=8, num_beams=5, video=True):
    """One video (T, 3, S, S) and one prompt → the named intermediates of every stage."""
    named = {}
    _, feature = vision_tower(pixels, W, cfg, named)
    e_t = text_tower(clip_ids, clip_mask, W, cfg, named)
    pooled = pgp_projector(feature, e_t, W, cfg, named, video=video)
    embeds = merge(ids, [pooled], W, cfg)
    named["llm.embeds"] = embeds
    named["llm.logits"] = llama_forward(embeds, W, cfg, [], named)
    tokens, margins = greedy(embeds, W, cfg, max_new_tokens)
    named["greedy.tokens"] = torch.tensor(tokens, dtype=torch.int64)
    named["greedy.margins"] = torch.tensor(margins)
    best, score, gap = beam_search(embeds, W, cfg, max_new_tokens, num_beams)
    named["beam.tokens"] = torch.tensor(best, dtype=torch.int64)
    named["beam.score"] = torch.tensor([score])
    named["beam.min_gap"] = torch.tensor([gap])
    return named


def main():
    """python3 ppllava_reference.py CHECKPOINT_DIR INPUTS.safetensors OUT.safetensors [max_new_tokens]
    INPUTS holds input.pixel_values (T,3,S,S), input.clip_ids, input.clip_mask, input.ids; OUT gets every named
    intermediate (F64 / I64) in the golden format of make_checkpoint.py."""
    import sys
    import numpy as np
    import safetensors_io as st
    folder, inputs_path, out_path = sys.argv[1:4]
    max_new_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 12
    cfg, W = load_checkpoint(folder)
    inputs, _, _ = st.read(inputs_path)
    named = run(W, cfg, torch.from_numpy(inputs["input.pixel_values"].astype(np.float64)),
                torch.from_numpy(inputs["input.clip_ids"].astype(np.int64)),
                torch.from_numpy(inputs["input.clip_mask"].astype(np.int64)),
                torch.from_numpy(inputs["input.ids"].astype(np.int64)), max_new_tokens=max_new_tokens)
    tensors = [(k, v.numpy(), "I64" if v.dtype == torch.int64 else "F64") for k, v in named.items()]
    st.write(out_path, tensors, {"format": "ppllava-golden", "version": "1", "max_new_tokens": max_new_tokens})


if __name__ == "__main__":
    import os
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
