"""Self-checks of qwen_reference.py against independent formulations. Run:
/usr/bin/python3 tests/oracles/check_qwen_reference.py  (exit 1 on the first failure).

- a SigLIP encoder layer = torch.nn.TransformerEncoderLayer(norm_first, tanh GELU) with the same weights, and the
  text tower's key padding mask = its src_key_padding_mask;
- gelu_tanh = F.gelu(approximate="tanh");
- the per-patch head embedding = the V output of torch.nn.MultiheadAttention's packed in-projection (upstream's
  SiglipPoolingHead_PatchCLS returns those projected values), through the head's LayerNorm + MLP residual;
- the SigLIP conv patch embedding = unfold + matmul + bias, dropping the trailing pixels ("valid" padding);
- Qwen2 attention with GQA = one query head at a time against its K/V group, without repeat_interleave;
- KV-cache decoding = the full forward's rows.
"""
import math
import os
import sys

import torch
import torch.nn.functional as Fn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_qwen_checkpoint as mk  # noqa: E402
import qwen_reference as qref  # noqa: E402
import ppllava_reference as ref  # noqa: E402


def close(a, b, tol, what):
    gap = (a - b).abs().max().item()
    if not gap <= tol:
        raise AssertionError(f"{what}: max gap {gap} > {tol}")
    print(f"ok  {what} (gap {gap:.2e})")


def model():
    cfg = qref.Config(mk.make_config("float32"))
    W = {k: torch.from_numpy(v).double() for k, v in mk.make_weights(11).items()}
    return cfg, W


def encoder_layer(W, prefix, d, heads, inner, eps):
    layer = torch.nn.TransformerEncoderLayer(d, heads, inner, dropout=0.0, activation=lambda x: Fn.gelu(x, approximate="tanh"),
                                             layer_norm_eps=eps, batch_first=True, norm_first=True).double()
    with torch.no_grad():
        a = prefix + ".self_attn"
        layer.self_attn.in_proj_weight.copy_(torch.cat([W[f"{a}.{n}_proj.weight"] for n in "qkv"]))
        layer.self_attn.in_proj_bias.copy_(torch.cat([W[f"{a}.{n}_proj.bias"] for n in "qkv"]))
        layer.self_attn.out_proj.weight.copy_(W[a + ".out_proj.weight"])
        layer.self_attn.out_proj.bias.copy_(W[a + ".out_proj.bias"])
        for mine, theirs in (("layer_norm1", layer.norm1), ("layer_norm2", layer.norm2)):
            theirs.weight.copy_(W[f"{prefix}.{mine}.weight"])
            theirs.bias.copy_(W[f"{prefix}.{mine}.bias"])
        layer.linear1.weight.copy_(W[prefix + ".mlp.fc1.weight"])
        layer.linear1.bias.copy_(W[prefix + ".mlp.fc1.bias"])
        layer.linear2.weight.copy_(W[prefix + ".mlp.fc2.weight"])
        layer.linear2.bias.copy_(W[prefix + ".mlp.fc2.bias"])
    return layer.eval()


def check_layers(cfg, W):
    x = torch.randn(2, 7, 32)
    close(qref.gelu_tanh(x), Fn.gelu(x, approximate="tanh"), 1e-14, "gelu_tanh = F.gelu(approximate='tanh')")
    v = cfg.vision
    prefix = qref.VT + ".encoder.layers.1"
    layer = encoder_layer(W, prefix, 32, v["num_attention_heads"], v["intermediate_size"], v["layer_norm_eps"])
    close(qref.siglip_layer(x, W, prefix, 4, v["layer_norm_eps"]), layer(x), 1e-12,
          "SigLIP layer = nn.TransformerEncoderLayer(norm_first, tanh GELU)")
    t = cfg.clip_text
    prefix = qref.TT + ".encoder.layers.0"
    layer = encoder_layer(W, prefix, 32, t["num_attention_heads"], t["intermediate_size"], t["layer_norm_eps"])
    mask = torch.tensor([1, 1, 1, 1, 0, 0, 0]).bool()
    close(qref.siglip_layer(x[:1], W, prefix, 4, t["layer_norm_eps"], mask), layer(x[:1], src_key_padding_mask=~mask[None]),
          1e-12, "text layer with a padding mask = src_key_padding_mask")


def check_patch_head(cfg, W):
    head = qref.MP + ".clip_visual_head"
    d = 32
    mha = torch.nn.MultiheadAttention(d, 4, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(W[head + ".attention.in_proj_weight"])
        mha.in_proj_bias.copy_(W[head + ".attention.in_proj_bias"])
    feature = torch.randn(3, 81, d)
    x = ref.layer_norm(feature, W, qref.MP + ".clip_visual_ln", 1e-6)
    # torch's packed in-projection: the third chunk of F.linear(x, in_proj_weight, in_proj_bias) is V.
    values = Fn.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)[2]
    ln = torch.nn.LayerNorm(d, eps=1e-6).double()
    with torch.no_grad():
        ln.weight.copy_(W[head + ".layernorm.weight"])
        ln.bias.copy_(W[head + ".layernorm.bias"])
    fc1 = Fn.linear(ln(values), W[head + ".mlp.fc1.weight"], W[head + ".mlp.fc1.bias"])
    expected = values + Fn.linear(Fn.gelu(fc1, approximate="tanh"), W[head + ".mlp.fc2.weight"], W[head + ".mlp.fc2.bias"])
    close(qref.patch_embeddings(feature, W, cfg), expected, 1e-12, "patch head = nn.MHA packed V + LN + MLP residual")


def check_patch_embed(cfg, W):
    size, p = cfg.vision["image_size"], cfg.vision["patch_size"]
    pixels = torch.randn(2, 3, size, size)
    named = {}
    qref.vision_tower(pixels, W, cfg, named)
    grid = size // p
    patches = Fn.unfold(pixels[:, :, :grid * p, :grid * p], p, stride=p).transpose(1, 2)  # (N, g², 3·p·p)
    kernel = W[qref.VT + ".embeddings.patch_embedding.weight"].reshape(32, -1)
    expected = patches @ kernel.T + W[qref.VT + ".embeddings.patch_embedding.bias"]
    expected = expected + W[qref.VT + ".embeddings.position_embedding.weight"]
    close(named["vision.embeddings"], expected, 1e-12, f"conv patch embed = unfold + matmul ({size} px, {grid}² patches)")


def check_gqa_and_cache(cfg, W):
    c = cfg.text
    embeds = torch.randn(6, c["hidden_size"])
    named = {}
    full = qref.qwen2_forward(embeds, W, cfg, [], named)
    cache = []
    rows = [qref.qwen2_forward(embeds[:4], W, cfg, cache)]
    rows += [qref.qwen2_forward(embeds[i:i + 1], W, cfg, cache) for i in (4, 5)]
    close(torch.cat(rows), full, 1e-10, "KV-cache decode = full forward")
    # Layer 0 by hand: each query head h reads K/V group h // (heads / kv_heads).
    heads, kv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c["hidden_size"] // heads
    pre = qref.LM + ".model.layers.0"
    h = ref.rms_norm(embeds, W[pre + ".input_layernorm.weight"], c["rms_norm_eps"])
    pos = torch.arange(6)
    q = ref.rope(ref.linear(h, W, pre + ".self_attn.q_proj").view(6, heads, hd).transpose(0, 1), pos, c["rope_theta"])
    k = ref.rope(ref.linear(h, W, pre + ".self_attn.k_proj").view(6, kv, hd).transpose(0, 1), pos, c["rope_theta"])
    v = ref.linear(h, W, pre + ".self_attn.v_proj").view(6, kv, hd).transpose(0, 1)
    outs = []
    for head in range(heads):
        g = head // (heads // kv)
        s = q[head] @ k[g].T / math.sqrt(hd) + torch.triu(torch.full((6, 6), float("-inf")), 1)
        outs.append(torch.softmax(s, dim=-1) @ v[g])
    x = embeds + torch.cat(outs, dim=-1) @ W[pre + ".self_attn.o_proj.weight"].T
    m = ref.rms_norm(x, W[pre + ".post_attention_layernorm.weight"], c["rms_norm_eps"])
    x = x + (Fn.silu(m @ W[pre + ".mlp.gate_proj.weight"].T) * (m @ W[pre + ".mlp.up_proj.weight"].T)) @ \
        W[pre + ".mlp.down_proj.weight"].T
    close(named["llm.layers.0"], x, 1e-10, "GQA attention = per-head loop over K/V groups")


def main():
    torch.manual_seed(0)
    cfg, W = model()
    check_layers(cfg, W)
    check_patch_head(cfg, W)
    check_patch_embed(cfg, W)
    check_gqa_and_cache(cfg, W)
    print("all qwen reference self-checks passed")


if __name__ == "__main__":
    main()
