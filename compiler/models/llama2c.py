"""LLaMA-family decoders as PyTorch modules: RMSNorm, RoPE on adjacent pairs, GQA, SwiGLU (optional q/k/v
biases, Qwen2's).  Weights come from llama2.c checkpoints (legacy format) or Hugging Face models (``from_hf``),
in llama2.c's names."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from math import prod
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LlamaConfig:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_size(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.dim * self.n_kv_heads // self.n_heads


def read_llama2c(path: str | Path) -> tuple[LlamaConfig, dict[str, np.ndarray]]:
    raw = Path(path).read_bytes()
    cfg = LlamaConfig(*struct.unpack("<7i", raw[:28]))
    shared = cfg.vocab_size > 0
    cfg = LlamaConfig(cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, abs(cfg.vocab_size), cfg.seq_len)
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    L, d, h, kv = cfg.n_layers, cfg.dim, cfg.hidden_dim, cfg.kv_dim
    shapes = [("tok", (cfg.vocab_size, d)), ("rms_att", (L, d)), ("wq", (L, d, d)), ("wk", (L, kv, d)),
              ("wv", (L, kv, d)), ("wo", (L, d, d)), ("rms_ffn", (L, d)), ("w1", (L, h, d)), ("w2", (L, d, h)),
              ("w3", (L, h, d)), ("rms_final", (d,)),
              ("freq_real", (cfg.seq_len, cfg.head_size // 2)), ("freq_imag", (cfg.seq_len, cfg.head_size // 2))]
    header = tuple(struct.unpack("<7i", raw[:28]))
    if min(cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len) < 1 \
            or cfg.dim % cfg.n_heads or cfg.n_heads % cfg.n_kv_heads:
        raise ValueError(f"not a llama2.c checkpoint: its header {header} (dim, hidden, layers, heads, kv heads, "
                         "vocab, seq len) is no model's")
    expected = sum(prod(shape) for _, shape in shapes) + (0 if shared else cfg.vocab_size * d)
    if data.size != expected:
        raise ValueError(f"its header {header} asks for {expected} floats, the file holds {data.size}")
    out, pos = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        out[name] = data[pos:pos + n].reshape(shape).copy()
        pos += n
    out["classifier"] = out["tok"] if shared else data[pos:pos + cfg.vocab_size * d].reshape(cfg.vocab_size, d).copy()
    return cfg, out


def _blocks(cfg: LlamaConfig, w: dict[str, np.ndarray]):
    """The parts both forms share, named as the full model names them: the token table, the
    blocks (norms and linears), the final norm, the classifier and RoPE's frequencies."""
    import torch
    from torch import nn

    t = torch.from_numpy

    class RMSNorm(nn.Module):
        def __init__(self, weight):
            super().__init__()
            self.weight = nn.Parameter(t(weight))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.norm_eps) * self.weight

    def linear(weight, bias=None):
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        layer.weight = nn.Parameter(t(weight))
        if bias is not None:
            layer.bias = nn.Parameter(t(bias))
        return layer

    class Block(nn.Module):
        def __init__(self, i):
            super().__init__()
            self.attn_norm, self.ffn_norm = RMSNorm(w["rms_att"][i]), RMSNorm(w["rms_ffn"][i])
            # Qwen2 has biases on q, k and v ("bq", "bk", "bv" [layers, out])
            self.wq, self.wk, self.wv = (linear(w[k][i], w[b][i] if b in w else None)
                                         for k, b in (("wq", "bq"), ("wk", "bk"), ("wv", "bv")))
            self.wo = linear(w["wo"][i])
            self.w1, self.w2, self.w3 = (linear(w[k][i]) for k in ("w1", "w2", "w3"))

        def qkv(self, x, cos, sin):
            """Queries [b, s, heads, hs] and keys, values [b, s, kv heads, hs], RoPE applied."""
            b, s, _ = x.shape
            h = self.attn_norm(x)
            q = self.wq(h).view(b, s, cfg.n_heads, cfg.head_size)
            k = self.wk(h).view(b, s, cfg.n_kv_heads, cfg.head_size)
            return rope(q, cos, sin), rope(k, cos, sin), self.wv(h).view(b, s, cfg.n_kv_heads, cfg.head_size)

        def finish(self, x, attended):
            """The residual of attention's output [b, s, dim], then the feed-forward block."""
            x = x + self.wo(attended)
            h = self.ffn_norm(x)
            return x + self.w2(nn.functional.silu(self.w1(h)) * self.w3(h))

    def rope(x, cos, sin):
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    class Parts(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Parameter(t(w["tok"]))
            self.blocks = nn.ModuleList(Block(i) for i in range(cfg.n_layers))
            self.norm = RMSNorm(w["rms_final"])
            self.classifier = nn.Parameter(t(w["classifier"]))
            inv = 1.0 / (cfg.rope_theta ** (np.arange(0, cfg.head_size, 2, dtype=np.float64) / cfg.head_size))
            self.register_buffer("inv_freq", t(inv.astype(np.float32)))

        def rope_angles(self, positions):
            """(cos, sin) [T, 1, head / 2] of the positions [T], computed as Hugging Face computes them (f32):
            a table of every position would be an embedding-like gather that schemes would quantize."""
            angles = (positions.to(torch.float32)[:, None] * self.inv_freq[None, :])[:, None, :]
            return angles.cos(), angles.sin()

    return Parts


def build_torch_llama(cfg: LlamaConfig, w: dict[str, np.ndarray]):
    """A full-sequence (prefill) causal LLaMA returning logits [batch, seq, vocab]."""
    import torch

    class Llama(_blocks(cfg, w)):
        def forward(self, tokens):
            s = tokens.shape[1]
            x = self.tok[tokens]
            mask = torch.full((s, s), float("-inf")).triu(1)
            cos, sin = self.rope_angles(torch.arange(s))
            for block in self.blocks:
                q, k, v = block.qkv(x, cos, sin)
                k = k.repeat_interleave(cfg.n_heads // cfg.n_kv_heads, dim=2)
                v = v.repeat_interleave(cfg.n_heads // cfg.n_kv_heads, dim=2)
                q, k, v = (z.transpose(1, 2) for z in (q, k, v))
                att = (q @ k.transpose(-1, -2)) / (cfg.head_size ** 0.5) + mask
                x = block.finish(x, (att.softmax(-1) @ v).transpose(1, 2).reshape(x.shape))
            return self.norm(x) @ self.classifier.T

    return Llama().eval()


def build_torch_llama_step(cfg: LlamaConfig, w: dict[str, np.ndarray], context: int, cache_dtype: str = "float32"):
    """One step of generation over a KV cache of ``context`` positions:
    ``(tokens [1, T] int64, pos [1] int64, k_cache [layers, kv heads, hs, context],
    v_cache [layers, kv heads, context, hs]) -> (logits [1, T, vocab], k_new [layers, kv heads, hs, T],
    v_new [layers, kv heads, T, hs])``.

    Token ``i`` sits at position ``pos + i``: it attends to the cache's first ``pos`` entries and to
    tokens ``0..i`` of this step; the caller writes ``k_new``/``v_new`` into the cache at ``pos``.
    Cache entries at ``pos`` and after are masked, so they may hold anything finite.  Queries are
    grouped by KV head ([kv heads, group x T, hs]) and keys are kept transposed, so both products
    (``q @ k_cache``, ``p @ v_cache``) read the cache as it lies: a [context, hs] key cache would be
    transposed, a copy of every layer's keys, at every step.  With ``cache_dtype`` float16 the caches and
    ``k_new`` / ``v_new`` are half: the products widen the cache as they read it, and this step's own keys and
    values are rounded to half before use, as a later step will read them.  With ``int8`` they are int8 codes
    with one f32 scale per head and position (``k_scale``, ``v_scale`` [layers, kv heads, context] in,
    ``k_new_scale``, ``v_new_scale`` [layers, kv heads, T] out): the scores scale their key columns, the
    probabilities their value rows, so both products read the codes as they lie."""
    import torch

    half, int8 = cache_dtype == "float16", cache_dtype == "int8"

    def quantized(x, dim):
        """int8 codes of ``x`` and their scales, one per vector along ``dim`` (a head's keys or values of one
        position): max|x| / 127, so that codes stay in [-127, 127]."""
        scale = x.abs().amax(dim, keepdim=True).clamp(min=1e-30) / 127
        return torch.round(x / scale).clamp(-127, 127).to(torch.int8), scale.squeeze(dim)

    nkv, group, hs = cfg.n_kv_heads, cfg.n_heads // cfg.n_kv_heads, cfg.head_size

    class LlamaStep(_blocks(cfg, w)):
        def forward(self, tokens, pos, k_cache, v_cache, k_scale=None, v_scale=None):
            s = tokens.shape[1]
            x = self.tok[tokens]
            cos, sin = self.rope_angles(pos + torch.arange(s))
            cached = (torch.arange(context) < pos)[None, None, :]  # [1, 1, context]
            causal = torch.ones(s, s, dtype=torch.bool).tril().repeat(group, 1)[None]  # [1, group x T, T]
            ks, vs, kss, vss = [], [], [], []
            for i, block in enumerate(self.blocks):
                q, k, v = block.qkv(x, cos, sin)
                q = q[0].view(s, nkv, group, hs).permute(1, 2, 0, 3).reshape(nkv, group * s, hs)
                k, v = k[0].permute(1, 2, 0), v[0].transpose(0, 1)  # [kv heads, hs, T], [kv heads, T, hs]
                if half:
                    k, v = k.half(), v.half()
                if int8:  # [kv heads, hs, T] codes, [kv heads, T] scales; the products scale their columns / rows
                    (k, k_s), (v, v_s) = quantized(k, 1), quantized(v, 2)
                    kss.append(k_s)
                    vss.append(v_s)
                ks.append(k)
                vs.append(v)
                k, v, k_old, v_old = (z.float() for z in (k, v, k_cache[i], v_cache[i]))
                scale = 1.0 / hs ** 0.5
                scores_old, scores_new = (q @ k_old) * scale, (q @ k) * scale
                if int8:
                    scores_old, scores_new = scores_old * k_scale[i][:, None, :], scores_new * k_s[:, None, :]
                old = torch.where(cached, scores_old, float("-inf"))
                new = torch.where(causal, scores_new, float("-inf"))
                p = torch.cat((old, new), -1).softmax(-1)
                p_old, p_new = p[..., :context], p[..., context:]
                if int8:
                    p_old, p_new = p_old * v_scale[i][:, None, :], p_new * v_s[:, None, :]
                out = p_old @ v_old + p_new @ v
                out = out.view(nkv, group, s, hs).permute(2, 0, 1, 3).reshape(1, s, cfg.dim)
                x = block.finish(x, out)
            logits = self.norm(x) @ self.classifier.T
            if int8:
                return logits, torch.stack(ks), torch.stack(vs), torch.stack(kss), torch.stack(vss)
            return logits, torch.stack(ks), torch.stack(vs)

    return LlamaStep().eval()


# Each llama2.c-named layer weight as the Hugging Face LLaMA parameter it is (after "model.layers.{i}.").
HF_LAYER_NAMES = {"rms_att": "input_layernorm.weight", "wq": "self_attn.q_proj.weight", "wk": "self_attn.k_proj.weight",
                  "wv": "self_attn.v_proj.weight", "wo": "self_attn.o_proj.weight",
                  "rms_ffn": "post_attention_layernorm.weight", "w1": "mlp.gate_proj.weight",
                  "w2": "mlp.down_proj.weight", "w3": "mlp.up_proj.weight"}


def rotary_rows(w: np.ndarray, n_heads: int, to_pairs: bool) -> np.ndarray:
    """The rows of a q or k projection [n_heads * head, ...] reordered per head: HF rotates the two halves
    of a head, these modules adjacent pairs; ``to_pairs`` goes from HF's order to theirs, else back."""
    head = w.shape[0] // n_heads
    order = (2, head // 2) if to_pairs else (head // 2, 2)
    return w.reshape(n_heads, *order, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def from_hf(model) -> tuple[LlamaConfig, dict[str, np.ndarray]]:
    """A Hugging Face ``LlamaForCausalLM``, ``MistralForCausalLM`` or ``Qwen2ForCausalLM`` as (config,
    llama2.c-named weights).  HF rotates the two halves of each head (``rotate_half``); the rows of q and k
    (and their biases) are reordered so that pairs sit side by side, as these modules rotate them: the
    same attention scores, since q and k are permuted alike."""
    from ...core.errors import QCError

    c = model.config
    kind = type(model).__name__
    if kind not in ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"):
        raise QCError(f"a Hugging Face {kind} is not a decoder qc knows: LlamaForCausalLM, MistralForCausalLM, "
                      "Qwen2ForCausalLM")
    rope = getattr(c, "rope_parameters", None) or {"rope_type": "default", "rope_theta": getattr(c, "rope_theta", 1e4)}
    heads, kv_heads = c.num_attention_heads, c.num_key_value_heads
    head = c.hidden_size // heads
    unsupported = [what for what, bad in (
        (f"rope_type {rope.get('rope_type')}", rope.get("rope_type", "default") != "default"),
        (f"head_dim {getattr(c, 'head_dim', head)} != hidden_size / heads", (getattr(c, "head_dim", None) or head) != head),
        (f"hidden_act {c.hidden_act}", c.hidden_act != "silu"),
        ("attention_bias (on o_proj)", getattr(c, "attention_bias", False)),
        ("mlp_bias", getattr(c, "mlp_bias", False))) if bad]
    if unsupported:
        raise QCError(f"{kind}: qc's decoder does not support {', '.join(unsupported)}")
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    layers = [f"model.layers.{i}." for i in range(c.num_hidden_layers)]

    rotated = {"wq": heads, "wk": kv_heads, "bq": heads, "bk": kv_heads}

    def stack(ours: str, key: str) -> np.ndarray:
        return np.stack([rotary_rows(sd[p + key], rotated[ours], True) if ours in rotated else sd[p + key]
                         for p in layers])

    w = {ours: stack(ours, theirs) for ours, theirs in HF_LAYER_NAMES.items()}
    w |= {"tok": sd["model.embed_tokens.weight"], "rms_final": sd["model.norm.weight"],
          "classifier": sd.get("lm_head.weight", sd["model.embed_tokens.weight"])}
    if layers[0] + "self_attn.q_proj.bias" in sd:
        w |= {b: stack(b, f"self_attn.{b[1]}_proj.bias") for b in ("bq", "bk", "bv")}
    cfg = LlamaConfig(c.hidden_size, c.intermediate_size, c.num_hidden_layers, heads, kv_heads, c.vocab_size,
                      c.max_position_embeddings, float(rope["rope_theta"]), float(c.rms_norm_eps))
    return cfg, w
