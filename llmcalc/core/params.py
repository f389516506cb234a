"""Parameter counts, exact to the parameter, from a ModelSpec.

Per layer (seed 002 "Transformer Math: Parameters"; seed 003 eq. 2.2): attention 4·D² and MLP 2·E·D² in
the plain MHA case. Here every matrix is sized from the spec by core/geometry.py, so GQA (K and V of kv_heads·head_dim),
gated MLPs (three matrices), biases, norms, MoE experts and MLA's low-rank projections all count.
"""

from __future__ import annotations

from llmcalc.core.geometry import attention_linears, lm_head_linear, mlp_linears, params_of, router_linear
from llmcalc.spec import ModelSpec


def norm_params(spec: ModelSpec, width: int) -> int:
    """One norm over ``width`` features: gamma, plus beta for LayerNorm with bias (none without weights)."""
    return width * (2 if spec.norm_bias else 1) if spec.norm_affine else 0


def attention_params(spec: ModelSpec) -> int:
    """Q, K, V and output projections of one layer (core/geometry.py), plus MLA's internal norms."""
    mla_norms = (spec.mla.q_lora_rank + spec.mla.kv_lora_rank) if spec.mla else 0
    sinks = spec.heads if spec.attention_sinks else 0       # gpt-oss: one sink logit per head
    return params_of(attention_linears(spec)) + mla_norms + sinks


def mlp_block_params(spec: ModelSpec, ffn: int) -> int:
    """One dense MLP of intermediate size ``ffn``: 2 or 3 matrices, and their biases."""
    return params_of(mlp_linears(spec, ffn))


def moe_layer_params(spec: ModelSpec, experts_counted: int) -> int:
    """One MoE MLP layer with ``experts_counted`` routed experts (all of them, or top-k for active)."""
    moe = spec.moe
    shared = mlp_block_params(spec, moe.shared_ffn) if moe.shared_ffn else 0
    gate = spec.hidden if moe.shared_gate else 0               # Qwen2-MoE's shared_expert_gate: Linear(H, 1)
    return router_linear(spec).params + gate + shared + experts_counted * mlp_block_params(spec, moe.expert_ffn)


def mlp_params_total(spec: ModelSpec, active: bool = False) -> int:
    """MLP parameters over all layers; ``active``: only top-k routed experts per MoE layer."""
    dense = spec.dense_mlp_layers * mlp_block_params(spec, spec.ffn)
    if not spec.moe:
        return dense
    experts = spec.moe.top_k if active else spec.moe.experts
    return dense + spec.moe_layers * moe_layer_params(spec, experts)


def embedding_params(spec: ModelSpec) -> int:
    """Token embedding table V·D, plus a learned position table (max_seq + offset)·D (OPT's offset is 2)."""
    pos = (spec.max_seq + spec.position_offset) * spec.hidden if spec.position == "learned" else 0
    return spec.vocab * spec.hidden + pos


def lm_head_params(spec: ModelSpec) -> int:
    """Untied LM head V·D (+V bias); zero when tied to the embedding (it is the same tensor)."""
    return lm_head_linear(spec).params


def param_breakdown(spec: ModelSpec, active: bool = False) -> dict[str, int]:
    """Ordered parts that add up to ``total``."""
    L = spec.layers
    parts = {
        "embedding": embedding_params(spec),
        "attention": L * attention_params(spec),
        "mlp": mlp_params_total(spec, active),
        "norms": (L * (spec.norms_per_layer * norm_params(spec, spec.hidden) + spec.qk_norm_params)
                  + norm_params(spec, spec.hidden) * (2 if spec.embedding_norm else 1)),
        "lm_head": lm_head_params(spec),
    }
    parts["total"] = sum(parts.values())
    return parts


def total_params(spec: ModelSpec) -> int:
    return param_breakdown(spec)["total"]


def active_params(spec: ModelSpec) -> int:
    """Parameters touched per token: routed experts counted top_k times, not all of them."""
    return param_breakdown(spec, active=True)["total"]


def vision_weight_bytes(spec: ModelSpec, dtype: str = "bf16") -> float:
    """A multimodal model's vision tower and projector, held beside the language model: at ``dtype`` when it is
    a plain float type, else in 16-bit (GPTQ, AWQ, bitsandbytes and GGUF recipes leave the vision tower alone)."""
    from llmcalc.core.dtypes import DTYPE_BYTES

    d = dtype.lower()
    return spec.vision_params * (DTYPE_BYTES[d] if d in ("fp32", "bf16", "fp16") else 2.0)


# ----------------------------------------------------------------------------------------------
# Fine-tuning: which parameters train (core/lora.py holds the adapters; it loads only for a frozen base)


METHODS = ("full", "lora", "qlora")     # fine-tuning methods (core/lora.py: the frozen-base ones)
DEFAULT_RANK = 16


def finetune_plan(spec: ModelSpec, method: str, rank=DEFAULT_RANK, targets=None):
    """core.lora.plan for lora/qlora; None for full fine-tuning, without importing core.lora."""
    if str(method).lower() == "full":
        return None
    from llmcalc.core import lora
    return lora.plan(spec, method, rank, targets)


def add_param_rows(r, spec: ModelSpec, ft, total: int) -> None:
    """trainable_params and frozen_params (the frozen base; 0 under full fine-tuning). ``ft``: a
    core.lora.FineTune or None."""
    if ft is None:
        r.put("trainable_params", total, "params", "trainable parameters (full fine-tuning: all)")
        r.put("frozen_params", 0, "params", "frozen parameters")
        return
    from llmcalc.core.lora import TRAINABLE
    r.calc("trainable_params", TRAINABLE, "params",
           f"trainable: LoRA A (r×in) and B (out×r) on {', '.join(a.name for a in ft.adapters)}",
           r=ft.rank, W_ad=ft.width_layers + ft.width_head)
    r.put("frozen_params", total, "params", "frozen base parameters" + (" (linear weights in NF4)" if ft.quantised
                                                                          else ""))
