"""The weight-matrix geometry of a model, in one place: every linear module of a decoder layer and the LM head,
with its input and output widths, how many of it the model holds and how many a token passes through.

Parameter counts (core/params.py), FLOPs (core/flops.py), optimizer-state shapes (core/memory.py) and LoRA
adapters (core/lora.py) all read this list, so a new kind of layer is described once.

Widths follow the Hugging Face modules (seed 002 "Transformer Math: Parameters"; Llama, Mixtral, DeepSeek-V3
modelling code): Q is ``heads·head_dim`` wide, K and V ``kv_heads·head_dim`` (GQA), a gated MLP has gate and
up (H -> F) and down (F -> H), a plain one up and down; MoE layers add a router (H -> E), ``E`` routed experts
of which ``top_k`` run per token, and shared experts; MLA (DeepSeek-V2 arXiv:2405.04434 sec. 2.1) projects
queries through a rank ``q_lora_rank`` bottleneck (q_a, q_b) and keys and values through ``kv_lora_rank``
(kv_a, kv_b).
"""

from __future__ import annotations

from typing import NamedTuple

from llmcalc.spec import ModelSpec

# The LoRA target kinds a user names, in the order modules appear in a layer (INTERFACE.md "Fine-tuning").
TARGET_KINDS = ("q", "k", "v", "o", "gate", "up", "down")


class Linear(NamedTuple):   # a NamedTuple: built in a fraction of a frozen dataclass's import time
    """One kind of linear module: ``y = x·Wᵀ (+ b)`` with W of ``d_out × d_in``."""

    name: str          # q, k, v, o, gate, up, down (MLA: q_a, q_b, kv_a, kv_b; MoE: router; lm_head)
    target: str        # the LoRA target kind that adapts it (MLA's kv_a/kv_b: "kv", adapted by k or v)
    block: str         # attention, mlp, router, experts, shared, lm_head
    d_in: int
    d_out: int
    layers: int        # layers that hold it (1 for the LM head)
    per_layer: int = 1  # instances per layer (routed experts: E)
    active: int = 1    # instances one token passes through per layer (routed experts: top_k)
    bias: bool = False
    shared: bool = False  # its weight is another tensor's (an LM head tied to the embedding)
    reads: str = ""    # the tensor it reads: x_attn, x_mlp, attn_out, mlp_hidden, q_latent, kv_latent, final

    @property
    def count(self) -> int:
        """Instances in the whole model."""
        return self.layers * self.per_layer

    @property
    def weights(self) -> int:
        """Weight elements of one instance, d_in·d_out."""
        return self.d_in * self.d_out

    @property
    def params(self) -> int:
        """Parameters of one instance (weight and bias); 0 when the weight is another tensor's."""
        return 0 if self.shared else self.weights + (self.d_out if self.bias else 0)


def mlp_linears(spec: ModelSpec, ffn: int, block: str = "mlp", layers: int = 1, per_layer: int = 1,
                active: int = 1) -> list[Linear]:
    """One MLP of intermediate width ``ffn``: gate, up and down (gated) or up and down (plain)."""
    H, b = spec.hidden, spec.mlp_bias
    common = dict(block=block, layers=layers, per_layer=per_layer, active=active, bias=b)
    mats = [Linear("up", "up", d_in=H, d_out=ffn, reads="x_mlp", **common),
            Linear("down", "down", d_in=ffn, d_out=H, reads="mlp_hidden", **common)]
    if spec.mlp == "gated":
        mats.insert(0, Linear("gate", "gate", d_in=H, d_out=ffn, reads="x_mlp", **common))
    return mats


def attention_linears(spec: ModelSpec, layers: int = 1) -> list[Linear]:
    """Q, K, V and output projections of one layer (MLA: its low-rank pairs)."""
    H, L = spec.hidden, layers
    qb = spec.qkv_bias
    o = Linear("o", "o", "attention", spec.attn_out_dim, H, L, bias=spec.o_bias, reads="attn_out")
    if spec.mla:
        m = spec.mla
        if m.q_lora_rank:
            q = [Linear("q_a", "q", "attention", H, m.q_lora_rank, L, reads="x_attn"),
                 Linear("q_b", "q", "attention", m.q_lora_rank, spec.q_dim, L, bias=qb, reads="q_latent")]
        else:
            q = [Linear("q", "q", "attention", H, spec.q_dim, L, bias=qb, reads="x_attn")]
        kv = [Linear("kv_a", "kv", "attention", H, m.kv_lora_rank + m.qk_rope_head_dim, L, bias=qb,
                     reads="x_attn"),
              Linear("kv_b", "kv", "attention", m.kv_lora_rank, spec.heads * (m.qk_nope_head_dim + m.v_head_dim),
                     L, reads="kv_latent")]
        return q + kv + [o]
    return [Linear("q", "q", "attention", H, spec.q_dim, L, bias=qb, reads="x_attn"),
            Linear("k", "k", "attention", H, spec.kv_dim, L, bias=qb, reads="x_attn"),
            Linear("v", "v", "attention", H, spec.kv_dim, L, bias=qb, reads="x_attn"), o]


def router_linear(spec: ModelSpec, layers: int = 1) -> Linear:
    moe = spec.moe
    return Linear("router", "router", "router", spec.hidden, moe.experts, layers, bias=moe.router_bias,
                  reads="x_mlp")


def lm_head_linear(spec: ModelSpec) -> Linear:
    return Linear("lm_head", "lm_head", "lm_head", spec.hidden, spec.vocab, 1, bias=spec.lm_head_bias,
                  shared=spec.tie_embeddings, reads="final")


def linear_modules(spec: ModelSpec) -> list[Linear]:
    """Every linear module kind of the model, in forward order: attention, MLP (dense layers; MoE layers'
    router, routed experts and shared experts), then the LM head (``shared`` when tied to the embedding)."""
    L = spec.layers
    mods = attention_linears(spec, L)
    if spec.dense_mlp_layers:
        mods += mlp_linears(spec, spec.ffn, layers=spec.dense_mlp_layers)
    if spec.moe:
        moe, Lm = spec.moe, spec.moe_layers
        mods.append(router_linear(spec, Lm))
        mods += mlp_linears(spec, moe.expert_ffn, "experts", Lm, moe.experts, moe.top_k)
        if moe.shared_ffn:
            mods += mlp_linears(spec, moe.shared_ffn, "shared", Lm)
    mods.append(lm_head_linear(spec))
    return mods


def weights_per_token(mods: list[Linear]) -> int:
    """Σ d_in·d_out over the instances one token passes through in one layer: 2× this is forward FLOPs/token."""
    return sum(m.weights * m.active for m in mods)


def params_of(mods: list[Linear]) -> int:
    """Parameters of these modules, all instances."""
    return sum(m.params * m.count for m in mods)
