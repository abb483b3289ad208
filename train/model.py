"""The small PPLLaVA as trainable PyTorch parameters, keyed by the HF checkpoint keys of spec §6.

Every parameter lives in one flat table whose names ARE the checkpoint keys (`Weights`); the forward functions here
are batched transcriptions of tests/oracles/ppllava_reference.py (same formulas, same orderings) and the smoke test
checks them against the reference itself on the saved checkpoint. Vision and LLM reuse the reference's layer
functions directly (`clip_layer`, `bt_temporal`, `bt_spatial`, `rms_norm`, `rope`, ...), which work on batches.

Sizes (CONFIG): vision hidden 64, 4 layers, BT depth 2 (BT layer j after CLIP layer 2 + j), patch 14, image data.SIZE (84: 6×6 patches; scene 112: 8×8), max_T 8, projection 32;
CLIP text hidden 48, 2 layers, 248 positions, real vocabulary 49408; LLM hidden 128, 4 layers, 4 heads, intermediate
256, real vocabulary 32064 (LLaMA-2 32000 + `<image>` 32000 + padding rows), untied lm_head.
"""
import copy
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "oracles"))
import ppllava_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402
import make_checkpoint as mk  # noqa: E402
sys.path.append(HERE)
import data as D  # noqa: E402  (the scene's frame side)

torch.set_default_dtype(torch.float32)  # the reference sets float64 on import; training runs in float32


def _ints(name, default, count):
    """An environment knob of comma-separated integers (set by train/run_all.sh for every stage of a run)."""
    text = os.environ.get(name, default)
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != count or min(values) < 1:
        raise SystemExit(f"{name}={text!r}: expected {count} positive integers, e.g. {default!r}")
    return values


# The vision tower (env PPLLAVA_TOWER "layers,BT depth,hidden"; train/run_all.sh's TOWER): 6,4,64 = the shipped
# model's (4,2,64 the weights before it); the MLP is 2 × hidden. BT layer j runs after CLIP layer layers − depth + j;
# hs[-2] leaves out the last of each, so 4,2 feeds one temporal + one spatial BT layer into what PGP pools, 6,4 three.
TOWER_LAYERS, TOWER_DEPTH, TOWER_HIDDEN = _ints("PPLLAVA_TOWER", "6,4,64", 3)
if TOWER_DEPTH > TOWER_LAYERS - 1:
    raise SystemExit(f"PPLLAVA_TOWER: BT depth {TOWER_DEPTH} must be below the layer count {TOWER_LAYERS}")
VISION = dict(mk.VISION, num_hidden_layers=TOWER_LAYERS, depth=TOWER_DEPTH, hidden_size=TOWER_HIDDEN,
              intermediate_size=2 * TOWER_HIDDEN, image_size=D.SIZE)
CLIP_TEXT = dict(mk.CLIP_TEXT)
TEXT = dict(mk.TEXT, hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=4)
# Video pooling windows (env PPLLAVA_POOL "t,h,w"; train/run_all.sh's POOL): 2,2,2 = the shipped model's.
POOLING_KERNEL = _ints("PPLLAVA_POOL", "2,2,2", 3)
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def make_config(torch_dtype="float16"):
    mk.VISION.update(VISION), mk.TEXT.update(TEXT), mk.CLIP_TEXT.update(CLIP_TEXT)
    cfg = mk.make_config(torch_dtype)
    cfg["hidden_size"] = TEXT["hidden_size"]
    # (2,2,2) windows on the 6×6 grid: 4·3·3 = 36 video tokens (the release's (2,3,3) left 4·2·2 = 16, too coarse to
    # tell where a 22 px object is or which way it moves); images (1,2,2): 9 tokens + image_newline. Scene 112: 8×8
    # grid, 64 video tokens, 16 per image.
    side = VISION["image_size"] // VISION["patch_size"]
    cfg["frame_shape"] = [side, side]
    cfg["pooling_kernel"] = cfg["pooling_stride"] = list(POOLING_KERNEL)
    cfg["image_pooling_kernel"] = cfg["image_pooling_stride"] = [1] + list(POOLING_KERNEL[1:])
    cfg["text_config"] = dict(TEXT)
    return cfg


def layout():
    mk.VISION.update(VISION), mk.TEXT.update(TEXT), mk.CLIP_TEXT.update(CLIP_TEXT)
    return mk.layout()


def init_weights(seed):
    """Init: normal matrices scaled 1/√fan_in (×0.5 in the LLM), embeddings 0.5, LayerNorm/RMSNorm 1, bias 0,
    BT `temporal_fc` zero (spec §5.3), logit_scale ln 100, the 248-row text table built by §3.6 from 77 rows."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape, kind in layout():
        if kind == "ln":
            x = torch.ones(shape)
        elif kind == "b":
            x = torch.zeros(shape)
        elif kind == "logit_scale":
            x = torch.tensor(math.log(100.0))
        elif kind == "e":  # token / position / class embeddings: large enough that content survives the LNs
            x = torch.randn(shape, generator=g) * 0.5
        else:  # matrices: 1/√fan_in (a 0.02 init left the CLIP text tower's EOS state blind to the words)
            fan_in = np.prod(shape[1:])
            x = torch.randn(shape, generator=g) / math.sqrt(fan_in)
            if key.startswith(ref.LM):
                x = x * 0.5
        if key.endswith("temporal_fc.weight"):
            x = torch.zeros(shape)
        out[key] = x
    base = torch.randn(CLIP_TEXT["max_position_embeddings"], CLIP_TEXT["hidden_size"], generator=g) * 0.1
    ext = ref.extend_positions(base.double()).float()
    out[ref.TT + ".embeddings.position_embedding"] = ext.clone()
    out[ref.TT + ".embeddings.position_embedding_res"] = ext.clone()
    return out


class Weights(nn.Module):
    """A flat table of parameters named by checkpoint key ('.' is not allowed in ParameterDict names: '/' → '.')."""

    def __init__(self, tensors):
        super().__init__()
        self.table = nn.ParameterDict({k.replace(".", "/"): nn.Parameter(v.float().clone()) for k, v in tensors.items()})

    def __getitem__(self, key):
        return self.table[key.replace(".", "/")]

    def keys(self):
        return [k.replace("/", ".") for k in self.table.keys()]

    def named(self, prefix):
        return [self[k] for k in self.keys() if k.startswith(prefix)]

    def tensors(self):
        return {k: self[k].detach().clone() for k in self.keys()}


class TinyPPLLaVA(nn.Module):
    def __init__(self, tensors=None, seed=0, config=None):
        super().__init__()
        self.config = config or make_config()
        self.cfg = ref.Config(self.config)
        self.W = Weights(tensors if tensors is not None else init_weights(seed))
        # The frozen text table (positions < 20) and logit_scale are constants (spec §3.6, §3.4).
        self.W[ref.MP + ".logit_scale"].requires_grad_(False)

    # ----------------------------------------------------------------------------------------------- vision (§3.3)
    def vision(self, pixels, b):
        """pixels (B·T, 3, S, S) → feature F (B·T, P, D) = hs[-2] without CLS: ref.vision_tower's loop, stopped once
        hs[-2] exists (the last CLIP layer and BT layer only feed the pooler, spec §3.3)."""
        v, W = self.cfg.vision, self.W
        heads, eps = v["num_attention_heads"], v["layer_norm_eps"]
        total, depth = v["num_hidden_layers"], v["depth"]
        assert self.cfg.top["vision_feature_layer"] == -2 and self.cfg.top["btadapter"]
        t = pixels.shape[0] // b
        x = ref.vision_embeddings(pixels, W, self.cfg)
        pos = W[ref.VT + ".embeddings.position_embedding.weight"]
        first_bt = total - depth
        x2 = None
        for idx in range(total - 1):
            x = ref.clip_layer(x, W, f"{ref.VT}.encoder.layers.{idx}", heads, eps)
            if idx < first_bt:
                continue
            j = idx - first_bt
            frames = x.view(b, t, x.shape[1], x.shape[2])
            if j == 0:
                cls_old = frames[:, :, 0].mean(dim=1)
                own_cls = W[ref.VT + ".btadapter_cls_token"].reshape(1, 1, -1).expand(b * t, 1, -1)
                y = torch.cat([own_cls, x[:, 1:]], dim=1) + pos[None]
                cls_new = y[:, 0].view(b, t, -1)[:, 0]
                patches = y[:, 1:] + W[ref.VT + ".btadapter_time_embed.weight"][:t].repeat(b, 1)[:, None, :]
                x2_in = torch.cat([((cls_old + cls_new) / 2)[:, None], ref.to_patch_major(patches, b, t)], dim=1)
            else:
                lift = torch.cat([frames[:, :, 0].mean(dim=1)[:, None], ref.to_patch_major(x[:, 1:], b, t)], dim=1)
                x2_in = x2 + lift
            x2 = ref.bt_temporal(x2_in, W, f"{ref.VT}.btadapter_T_layers.{j}", b, t, heads, eps)
            x2 = ref.bt_spatial(x2, W, f"{ref.VT}.btadapter_S_layers.{j}", b, t, heads, eps)
        if x2 is None:  # depth 1: hs[-2] is a pure CLIP layer
            return x[:, 1:]
        return (x[:, 1:] + ref.to_frame_major(x2[:, 1:], b, t)) / 2

    # --------------------------------------------------------------------------------------------- CLIP text (§3.6)
    def text(self, ids, mask):
        """ids, mask (N, L) → e_t (N, proj) = text_projection(final_LN(h)[first EOS]); the reference's text_tower for a
        batch (causal + padding mask)."""
        c = self.cfg.clip_text
        W = self.W
        n, length = ids.shape
        pos = ref.text_positions(W, self.cfg)
        x = W[ref.TT + ".embeddings.token_embedding.weight"][ids] + pos[:length][None]
        causal = torch.tril(torch.ones(length, length, dtype=torch.bool))
        allowed = causal[None] & mask.bool()[:, None, :]  # (N, L, L)
        additive = torch.zeros(n, 1, length, length).masked_fill(~allowed[:, None], float("-inf"))
        for i in range(c["num_hidden_layers"]):
            x = ref.clip_layer(x, W, f"{ref.TT}.encoder.layers.{i}", c["num_attention_heads"], c["layer_norm_eps"],
                               additive)
        x = ref.layer_norm(x, W, ref.TT + ".final_layer_norm", c["layer_norm_eps"])
        eos = (ids == c["eos_token_id"]).int().argmax(dim=1)
        pooled = x[torch.arange(n), eos]
        return pooled @ W[ref.MP + ".clip_text_projection.weight"].T

    def visual_embeds(self, feature):
        """Step A: (…, P, D) → (…, P, proj) dense CLIP embeddings."""
        e = ref.layer_norm(feature, self.W, ref.MP + ".clip_visual_ln", self.cfg.vision["layer_norm_eps"])
        return e @ self.W[ref.MP + ".clip_visual_projection.weight"].T

    # ---------------------------------------------------------------------------------------------------- PGP (§3.4)
    def pgp(self, feature, e_t, b, video=True, mode="pgp"):
        """feature (B·T, P, D), e_t (B, proj) → pooled (B, T'·H'·W', hidden), relevance p (B, T, H, W).
        mode "avg": uniform window weights (plain average pooling, the ablation), same token budget."""
        top = self.cfg.top
        t = feature.shape[0] // b
        gh, gw = top["frame_shape"]
        kt, kh, kw = top["pooling_kernel"] if video else top["image_pooling_kernel"]
        st_ = top["pooling_stride"] if video else top["image_pooling_stride"]
        assert list(st_) == [kt, kh, kw], "training implements kernel = stride only"
        e_v = self.visual_embeds(feature).reshape(b, t * gh * gw, -1)
        cos = Fn.normalize(e_v, dim=-1) @ Fn.normalize(e_t, dim=-1)[:, :, None]
        p = torch.softmax(torch.exp(self.W[ref.MP + ".logit_scale"]) * cos[..., 0], dim=1).view(b, t, gh, gw)
        hidden = ref.gelu_exact(ref.linear(feature, self.W, ref.MP + ".linear_1"))
        ot, oh, ow = (t - kt) // kt + 1, (gh - kh) // kh + 1, (gw - kw) // kw + 1
        x = hidden.view(b, t, gh, gw, -1)[:, :ot * kt, :oh * kh, :ow * kw]
        x = x.reshape(b, ot, kt, oh, kh, ow, kw, -1).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b, ot * oh * ow,
                                                                                            kt * kh * kw, -1)
        pw = p[:, :ot * kt, :oh * kh, :ow * kw].reshape(b, ot, kt, oh, kh, ow, kw).permute(0, 1, 3, 5, 2, 4, 6)
        pw = pw.reshape(b, ot * oh * ow, kt * kh * kw)
        if mode == "avg":
            alpha = torch.full_like(pw, 1.0 / pw.shape[-1])
        else:
            alpha = torch.softmax(pw / top["pooling_temp"], dim=-1)
        pooled_hidden = (alpha[..., None] * x).sum(dim=2)  # pool after the GELU: exact, Σα = 1 (§3.4)
        return ref.linear(pooled_hidden, self.W, ref.MP + ".linear_2"), p

    # ------------------------------------------------------------------------------------------------- LLM (§3.7)
    def embed(self, ids):
        return self.W[ref.LM + ".model.embed_tokens.weight"][ids]

    def llm_hidden(self, embeds, lengths):
        """embeds (B, L, H) right-padded, lengths (B,) → final-norm hidden (B, L, H); positions 0..L−1 per row."""
        c = self.cfg.text
        W = self.W
        b, n, _ = embeds.shape
        heads = c["num_attention_heads"]
        hd = c["hidden_size"] // heads
        positions = torch.arange(n)
        inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        freqs = positions[:, None].double() * inv_freq[None]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos().float(), emb.sin().float()
        half = hd // 2

        def rot(x):
            return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

        key_ok = torch.arange(n)[None, :] < lengths[:, None]
        allowed = (torch.arange(n)[None, :] <= torch.arange(n)[:, None])[None] & key_ok[:, None, :]
        x = embeds
        for i in range(c["num_hidden_layers"]):
            pre = f"{ref.LM}.model.layers.{i}"
            h = ref.rms_norm(x, W[pre + ".input_layernorm.weight"], c["rms_norm_eps"])
            q = (h @ W[pre + ".self_attn.q_proj.weight"].T).view(b, n, heads, hd).transpose(1, 2)
            k = (h @ W[pre + ".self_attn.k_proj.weight"].T).view(b, n, heads, hd).transpose(1, 2)
            v = (h @ W[pre + ".self_attn.v_proj.weight"].T).view(b, n, heads, hd).transpose(1, 2)
            q, k = rot(q), rot(k)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            scores = scores.masked_fill(~allowed[:, None], float("-inf"))
            att = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, n, heads * hd)
            x = x + att @ W[pre + ".self_attn.o_proj.weight"].T
            h = ref.rms_norm(x, W[pre + ".post_attention_layernorm.weight"], c["rms_norm_eps"])
            gate = Fn.silu(h @ W[pre + ".mlp.gate_proj.weight"].T)
            x = x + (gate * (h @ W[pre + ".mlp.up_proj.weight"].T)) @ W[pre + ".mlp.down_proj.weight"].T
        return ref.rms_norm(x, W[ref.LM + ".model.norm.weight"], c["rms_norm_eps"])

    def logits_at(self, hidden, rows, cols):
        """Logits only where a loss needs them (the lm_head over 32064 rows is the costly part)."""
        return hidden[rows, cols] @ self.W[ref.LM + ".lm_head.weight"].T

    # ------------------------------------------------------------------------------------------------- save / load
    def save(self, folder, dtype="F16"):
        os.makedirs(folder, exist_ok=True)
        torch_dtype = {"F16": "float16", "BF16": "bfloat16", "F32": "float32"}[dtype]
        config = dict(self.config, torch_dtype=torch_dtype)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        with open(os.path.join(folder, "generation_config.json"), "w") as f:
            json.dump({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "max_new_tokens": 16}, f, indent=2)
        tensors = self.W.tensors()
        st.write(os.path.join(folder, "model.safetensors"),
                 [(k, tensors[k].numpy().astype(np.float32), dtype) for k, _, _ in layout()], {"format": "pt"})

    @classmethod
    def load(cls, folder):
        cfg, weights = ref.load_checkpoint(folder)
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        return cls({k: v.float() for k, v in weights.items()}, config=config)


def pixels_from_uint8(frames):
    """(…, S, S, 3) uint8 → (…, 3, S, S) float32 CLIP-normalised (§3.2 steps 3–5; frames are already S×S)."""
    x = (frames.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, -3)))


def param_groups(model, stage, freeze_clip=False):
    """Which checkpoint keys a stage trains (spec §5.3 / §5.4 adapted to training from scratch). freeze_clip (SFT):
    the base CLIP vision layers stay as stage 1 left them, as in §5.3 (BT-Adapter, projector, LLM train)."""
    keys = model.W.keys()
    if stage == "align":  # vision tower + CLIP text tower + the dense-CLIP head
        train = [k for k in keys if k.startswith(ref.VT) or k.startswith(ref.TT) or
                 ".clip_visual_" in k or ".clip_text_projection" in k]
        train = [k for k in train if not k.endswith(".embeddings.position_embedding")]
    elif stage == "sft":  # everything but the CLIP text tower (no_grad in SFT) and logit_scale
        train = [k for k in keys if not k.startswith(ref.TT) and ".clip_text_projection" not in k and
                 not k.endswith("logit_scale")]
        if freeze_clip:
            train = [k for k in train if not k.startswith(ref.VT) or ".btadapter" in k]
    elif stage == "text":  # stage 2b: the CLIP text tower and its projection (not the frozen 20 first positions)
        train = [k for k in keys if (k.startswith(ref.TT) or ".clip_text_projection" in k) and
                 not k.endswith(".embeddings.position_embedding")]
    elif stage == "dpo":
        train = [k for k in keys if k.startswith(ref.LM)]
    else:
        raise ValueError(stage)
    for k in keys:
        model.W[k].requires_grad_(k in train)
    return [model.W[k] for k in train]


def clone(model):
    return copy.deepcopy(model)
