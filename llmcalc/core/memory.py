"""Training memory per GPU: weights, gradients, optimizer state and activations, each by part.

Model states (seed 000 ch. 3; seed 003 eqs. 2.1-2.4; ZeRO, Rajbhandari et al. 2020, arXiv:1910.02054 sec. 3):
bytes per parameter of weights ``w``, gradients ``g`` and optimizer state, by precision:

=========  ======================  ==========================  =================================
precision  weights held             gradients (``--grad-dtype``)  optimizer (Adam)
=========  ======================  ==========================  =================================
fp32       4                       4                           m 4 + v 4
mixed      2 (bf16/fp16 copy)      2 by default                master 4 + m 4 + v 4   (2+2+12 = 16)
bf16       2 (pure: no master)     2                           m 2 + v 2
fp8        1 (fp8 compute copy)    2                           master 4 + m 4 + v 4
=========  ======================  ==========================  =================================

The mixed-precision gradient default is 2 bytes, as in the ZeRO paper, DeepSpeed and seed 000 (2+2+12 = 16
bytes/parameter). Megatron-LM accumulates gradients in fp32 (``--accumulate-allreduce-grads-in-fp32``), the
4 bytes of seed 003 eq. 2.4: pass ``grad_dtype="fp32"`` for that (18 bytes/parameter).

ZeRO over ``dp`` data-parallel GPUs (Rajbhandari et al. 2020 Figure 1): stage 1 shards the optimizer state
(master weights included), stage 2 the gradients too, stage 3 (FSDP full shard) the weights too. ``tp``
divides everything; ``pp`` divides the layers (the busiest stage is reported: the first, which also holds the
embedding and, under 1F1B, ``pp`` micro-batches in flight; Korthikanti et al. 2022 sec. 4.2.3).

Activations, ``megatron`` (Korthikanti et al. 2022, arXiv:2205.05198 sec. 4, Table 2), per layer, 16-bit
(p = 2): s·b·h·(34 + 5·a·s/h); with TP t: s·b·h·(10 + 24/t + 5·a·s/(h·t)); with TP + SP:
s·b·h·(34/t + 5·a·s/(h·t)); selective recomputation drops the 5·a·s/h term; full recomputation keeps the layer
input, 2·s·b·h. Written here for any p (seed 003 eq. 2.7: fp32 gives 66·h + 9·a·s) and any shape (GQA, gated
MLP): per token (4p+2)·h replicated + p·(h_q + 2·h_kv + h_o + k_f·F) split over t, + (2p+1)·a·s scores.
``eager`` counts what eager PyTorch / Hugging Face modules save for backward, op by op (docs/activations.md).
Plus, in both, the terms people forget: the embedding (token ids, dropout mask), the final norm and LM-head
input, and the fp32 logits of the loss, B·S·V·4 (dominant for 128k vocabularies).

``batch`` and ``seq`` (and ``dp``, ``tp``, ``pp``) may be NumPy arrays of one shape: one call is a sweep.
"""

from __future__ import annotations

from typing import Any

from llmcalc.core.formula import Formula, Results
from llmcalc.core.params import embedding_params, lm_head_params, norm_params, param_breakdown
from llmcalc.errors import InputError
from llmcalc.spec import ModelSpec

PRECISIONS = ("fp32", "mixed", "bf16", "fp8")
GRAD_DTYPES = ("fp32", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adam", "sgd", "sgd-momentum", "adafactor", "adam-8bit", "paged-adamw", "paged-adamw-8bit")
ADAM_32 = ("adam", "adamw", "paged-adamw")          # paged: bitsandbytes' unified memory, same bytes while resident
ADAM_8 = ("adam-8bit", "paged-adamw-8bit")
ACTIVATION_MODELS = ("megatron", "eager")
RECOMPUTE_MODES = ("none", "selective", "full")

WEIGHT_BYTES = {"fp32": 4, "mixed": 2, "bf16": 2, "fp8": 1}
DEFAULT_GRAD = {"fp32": "fp32", "mixed": "bf16", "bf16": "bf16", "fp8": "bf16"}
GRAD_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
STATE_BYTES = {"fp32": 4, "mixed": 4, "bf16": 2, "fp8": 4}     # Adam m, v / momentum / Adafactor factors
ACT_BYTES = {"fp32": 4, "mixed": 2, "bf16": 2, "fp8": 2}       # fp8: GEMM inputs stay bf16 here (upper bound)
HAS_MASTER = {"fp32": False, "mixed": True, "bf16": False, "fp8": True}
ADAM8_BLOCK = 2048        # bitsandbytes blockwise quantisation: one fp32 absmax per 2,048 values
ADAM8_MIN_SIZE = 4096     # bitsandbytes min_8bit_size: smaller tensors keep 32-bit states

DEFAULT_RESERVE_BYTES = 2**30      # CUDA context, cuBLAS/NCCL workspaces
DEFAULT_FRAGMENTATION = 0.05       # caching-allocator fragmentation, fraction of the GPU's memory

# ----------------------------------------------------------------------------------------------
# Model states. P_g: parameters held per GPU before ZeRO; z: ZeRO divisor (dp if the stage shards it).
PARAMS_GPU = Formula("(P_layers * L_s / L + P_ends) / t")
WEIGHTS = Formula("P_g * w / z")
GRADS = Formula("P_g * g / z")
MASTER = Formula("P_g * 4 / z")
STATE = Formula("P_g * s / z")
ADAFACTOR = Formula("P_g * f * s / z")                    # f: factored elements (rows + cols) per parameter
ADAM8 = Formula("P_g * (f8 * (1 + 4 / blk) + (1 - f8) * 4) / z")
TOTAL = Formula("weights + gradients + optimizer + activations")
ACT_TOTAL = Formula("layers + embedding + final_norm + logits")
OPT_TOTAL = {n: Formula(" + ".join(k for k in ("master", "adam_m", "adam_v", "momentum", "adafactor_v") if k in n))
             for n in [("adam_m", "adam_v"), ("master", "adam_m", "adam_v"), ("momentum",), ("master", "momentum"),
                       ("adafactor_v",), ("master", "adafactor_v"), ("master",)]}

# Activations of one layer for one micro-batch (bytes). t_sp = t with sequence parallelism, else 1.
ACT_MEGATRON = Formula(
    "S * B * ((4 * p + 2) * H / t_sp + p * (Hq + 2 * Hkv + Ho + k_f * F) / t) + (2 * p + 1) * a * S**2 * B / t")
ACT_MEGATRON_FLASH = Formula(
    "S * B * ((4 * p + 2) * H / t_sp + p * (Hq + 2 * Hkv + Ho + k_f * F) / t) + 4 * a * S * B / t")
ACT_MEGATRON_SELECTIVE = Formula("S * B * ((4 * p + 2) * H / t_sp + p * (Hq + 2 * Hkv + Ho + k_f * F) / t)")
ACT_FULL = Formula("p * S * B * H / t_sp")
ACT_EAGER = Formula(
    "S * B * ((N_n * (e_n * H + st) + 2 * e * H + m_h * H) / t_sp + (e * (Hq + 2 * Hkv + Ho + k_f * F)"
    " + lse * a) / t) + s_e * a * S**2 * B / t")
# Frozen base (LoRA/QLoRA; core/lora.activation_flags): c_a, c_m, c_o, c_d say whether the attention input,
# MLP input, attention output and MLP hidden are still kept (an adapter's A reads them); R: the adapters'
# r-wide intermediates; k_f counts the MLP's other F-wide tensors; frozen norm weights keep no normalised copy.
ACT_MEGATRON_FT = Formula(
    "S * B * ((p * (n_n + c_a + c_m) + 2) * H / t_sp + p * (c_q * Hq + (c_k + c_v) * Hkv + c_o * Ho"
    " + (c_f * k_f + c_d) * F + R) / t) + c_s * (2 * p + 1) * a * S**2 * B / t")
ACT_MEGATRON_FLASH_FT = Formula(
    "S * B * ((p * (n_n + c_a + c_m) + 2) * H / t_sp + p * (c_q * Hq + (c_k + c_v) * Hkv + c_o * Ho"
    " + (c_f * k_f + c_d) * F + R) / t) + c_s * 4 * a * S * B / t")
ACT_MEGATRON_SELECTIVE_FT = Formula(
    "S * B * ((p * (n_n + c_a + c_m) + 2) * H / t_sp + p * (c_q * Hq + (c_k + c_v) * Hkv + c_o * Ho"
    " + (c_f * k_f + c_d) * F + R) / t)")
ACT_EAGER_FT = Formula(
    "S * B * ((n_n * (e_n * H + st) + (c_a + c_m) * e * H + m_h * H) / t_sp + (e * (c_q * Hq + (c_k + c_v) * Hkv"
    " + c_o * Ho + (c_f * k_f + c_d) * F + R) + c_s * lse * a) / t) + c_s * s_e * a * S**2 * B / t")
ACT_LAYERS = Formula("L_s * m * per_layer")
# Layer 1 reads the frozen embedding, whose output carries no gradient: it keeps less (first_layer_activations).
ACT_LAYERS_FT = Formula("m * ((L_s - 1) * per_layer + first_layer)")
ACT_EMB_MEGATRON = Formula("m * (8 * B * S + B * S * H / t_sp)")
ACT_EMB_EAGER = Formula(
    "m * (8 * B * S * (1 + c_ids) + 8 * S * (n_pos + c_pos) + (m_e + c_leaf * e) * B * S * H / t_sp"
    " + c_mask * e * B * S**2)"
    " + 2 * n_rope * S * d * e")
ACT_FINAL_MEGATRON = Formula("last * 2 * p * B * S * H / t_sp")
ACT_FINAL_EAGER = Formula("last * B * S * (e_n * H + st + e * H) / t_sp")
ACT_FINAL_MEGATRON_FT = Formula("last * (1 + c_h) * p * B * S * H / t_sp")
ACT_FINAL_EAGER_FT = Formula("last * B * S * (e_n * H + st + c_h * e * H) / t_sp")
ACT_LOGITS = Formula("last * (4 * B * S * V / t + x * (8 * B * S + 4))")

USABLE = Formula("M - (R + f * M)")
FITS = Formula("total <= usable")
HEADROOM = Formula("usable - total")
BREAKEVEN = Formula("max(0, (fixed_mixed - fixed_fp32) / (act_fp32 - act_mixed))")


def _check(name: str, value: str, choices: tuple[str, ...]) -> str:
    v = str(value).lower()
    if v not in choices:
        raise InputError(f"--{name} must be one of {', '.join(choices)}; got {value!r}")
    return v


# ----------------------------------------------------------------------------------------------
# Parameter geometry


def matrix_params(spec: ModelSpec) -> tuple[int, int]:
    """(elements in 2-D weight matrices, sum over those matrices of rows + cols). Vectors (biases, norms) are
    the rest of the parameters. Used by Adafactor (factored second moment) and 8-bit Adam (small tensors).
    The linear modules come from core/geometry.py; the embedding tables are matrices too."""
    from llmcalc.core.geometry import linear_modules

    H = spec.hidden
    mats: list[tuple[int, int, int]] = [(spec.vocab, H, 1)]
    if spec.position == "learned":
        mats.append((spec.max_seq, H, 1))
    mats += [(m.d_in, m.d_out, m.count) for m in linear_modules(spec) if not m.shared]
    elems = sum(r * c * k for r, c, k in mats)
    rc = sum((r + c) * k for r, c, k in mats)
    return elems, rc


def stage_params(spec: ModelSpec) -> tuple[int, int, int]:
    """(parameters in the transformer layers, the rest, the larger of the first and last pipeline stage's
    non-layer parameters: embedding (+ positions) versus final norm + LM head, or its tied copy)."""
    parts = param_breakdown(spec)
    final_norm = norm_params(spec, spec.hidden)     # none for OLMo-1's weightless LayerNorm
    layers = parts["total"] - parts["embedding"] - parts["lm_head"] - final_norm
    rest = parts["total"] - layers
    head = lm_head_params(spec) or spec.vocab * spec.hidden   # a tied head is a copy on the last stage
    ends = max(embedding_params(spec), final_norm + head)
    return layers, rest, ends


def mean_mlp_width(spec: ModelSpec) -> float:
    """Intermediate width a token passes through, averaged over layers (MoE: top-k experts + shared)."""
    if not spec.moe:
        return float(spec.ffn)
    moe = spec.moe
    routed = moe.top_k * moe.expert_ffn + moe.shared_ffn
    return (spec.dense_mlp_layers * spec.ffn + spec.moe_layers * routed) / spec.layers


def gpt2_style(spec: ModelSpec) -> bool:
    """Hugging Face GPT-2-style modules (LayerNorm, plain MLP, learned positions, softmax in the model dtype)
    versus Llama-style ones (RMSNorm in fp32, rotary, softmax upcast to fp32, gated MLP)."""
    return spec.norm == "layernorm" and spec.mlp == "plain" and spec.position == "learned"


def eager_mlp_saves(spec: ModelSpec) -> int:
    """F-wide tensors an eager MLP saves: GPT-2's Python ``gelu_new`` 4 + c_proj input 1; a fused
    activation 1 + 1; gated: activation input, both product operands, down-projection input."""
    if spec.mlp == "gated":
        return 4
    if gpt2_style(spec) and spec.activation.lower() in ("gelu_tanh", "gelu_new"):
        return 5
    return 2


def _megatron_mlp_saves(spec: ModelSpec) -> int:
    """F-wide tensors Megatron's MLP saves: GELU input and output (2); SwiGLU input (gate, up) and output (3)."""
    return 3 if spec.mlp == "gated" else 2


# ----------------------------------------------------------------------------------------------
# Activations


def activation_breakdown(spec: ModelSpec, batch, seq, *, precision: str = "mixed", model: str = "megatron",
                         flash: bool = True, recompute: str = "none", tp=1, pp=1, sp: bool = False,
                         in_flight_microbatches=None, dropout: bool = False, out: Results | None = None,
                         finetune=None) -> Results:
    """Activation bytes on the busiest GPU (pipeline stage 1) by part; the sum is ``activations_bytes``.
    ``finetune``: a core.lora.FineTune (frozen base), which keeps fewer of the layers' tensors."""
    from llmcalc.core.formula import ceil, where

    r = Results() if out is None else out
    p = ACT_BYTES[precision]
    H, a, V = spec.hidden, spec.heads, spec.vocab
    F = mean_mlp_width(spec)
    t = tp
    t_sp = tp if sp else 1
    L_s = ceil(spec.layers / pp)
    m = pp if in_flight_microbatches is None else in_flight_microbatches
    last = where(pp == 1, 1, 0) if hasattr(pp, "shape") else (1 if pp == 1 else 0)
    B, S = batch, seq
    ft = finetune
    layer_label = "one layer, one micro-batch" + (" (frozen base: only the inputs adapters read)" if ft else "")
    rms_e = (4 + p if p != 4 else 8)      # RMSNorm keeps its fp32 input and the normalised copy for the weight
    if model == "megatron":
        dims = dict(S=S, B=B, p=p, H=H, t_sp=t_sp, t=t)
        if recompute == "full":
            r.calc("activations/per_layer", ACT_FULL, "byte", layer_label + " (full recompute: the layer input)",
                   **dims)
        else:
            k_f = _megatron_mlp_saves(spec)
            shape = dict(dims, Hq=spec.q_dim, Hkv=spec.kv_dim, Ho=spec.attn_out_dim, F=F)
            if ft is not None:
                shape.update(k_f=k_f - 1)
                forms = (ACT_MEGATRON_SELECTIVE_FT, ACT_MEGATRON_FLASH_FT, ACT_MEGATRON_FT)
            else:
                shape.update(k_f=k_f)
                forms = (ACT_MEGATRON_SELECTIVE, ACT_MEGATRON_FLASH, ACT_MEGATRON)
            if recompute == "selective":
                form, what = forms[0], " (selective recompute: no score terms)"
            elif flash:
                form, what = forms[1], " (flash attention: no S² terms, fp32 logsumexp)"
                shape["a"] = a
            else:
                form, what = forms[2], " (Korthikanti: s·b·h·(34 + 5·a·s/h) at p=2)"
                shape["a"] = a
            if ft is None:
                r.calc("activations/per_layer", form, "byte", layer_label + what, **shape)
            else:
                _layer_rows(r, spec, ft, form, layer_label + what, shape, flash and recompute != "selective", 2)
    else:
        e = p
        gs = gpt2_style(spec)
        st = 8 if spec.norm == "layernorm" else 4
        # a frozen RMSNorm weight needs no normalised copy: only the fp32 input stays
        norm_e = e if spec.norm == "layernorm" else (4 if ft is not None else rms_e)
        if recompute == "full":
            r.calc("activations/per_layer", ACT_FULL, "byte", layer_label + " (checkpointed: the layer input)",
                   S=S, B=B, p=e, H=H, t_sp=t_sp)
        else:
            if flash:
                s_e, hkv, lse = 0, spec.kv_dim, 4
            else:
                soft = e if gs else (4 + e if e != 4 else 4)
                s_e, hkv, lse = soft + ((1 + e) if dropout else 0), spec.heads * spec.head_dim, 0
            if recompute == "selective":
                s_e = 0
            k_f = eager_mlp_saves(spec)
            shape = dict(S=S, B=B, e_n=norm_e, H=H, st=st, e=e, m_h=2 if dropout else 0,
                         t_sp=t_sp, Hq=spec.q_dim, Hkv=hkv, Ho=spec.attn_out_dim, F=F, lse=lse, a=a, t=t, s_e=s_e)
            label = layer_label + (" (eager modules, SDPA/flash attention)" if flash else
                                   " (eager modules, eager attention)")
            if ft is not None:
                shape.update(k_f=k_f - 1)
                _layer_rows(r, spec, ft, ACT_EAGER_FT, label, shape, flash, spec.norms_per_layer)
            else:
                r.calc("activations/per_layer", ACT_EAGER, "byte", label, N_n=spec.norms_per_layer, k_f=k_f, **shape)
    per_layer = r["activations/per_layer"].value
    if "first_layer_activations" not in r:     # full fine-tuning, or checkpointed: every layer keeps alike
        r.put("first_layer_activations", per_layer, "byte", "the first layer, one micro-batch (as the others)")
    if ft is not None:
        r.calc("activations/layers", ACT_LAYERS_FT, "byte",
               "transformer layers on this GPU × micro-batches in flight (the first reads the frozen embedding)",
               L_s=L_s, m=m, per_layer=per_layer, first_layer=r["first_layer_activations"].value)
    else:
        r.calc("activations/layers", ACT_LAYERS, "byte", "transformer layers on this GPU × micro-batches in flight",
               L_s=L_s, m=m, per_layer=per_layer)
    if ft is not None:
        from llmcalc.core.lora import head_flag
        c_h = head_flag(ft)
    if model == "megatron":
        r.calc("activations/embedding", ACT_EMB_MEGATRON, "byte",
               "embedding output: token ids and dropout mask (its values are layer 1's saved input)",
               m=m, B=B, S=S, H=H, t_sp=t_sp)
        if ft is None:
            r.calc("activations/final_norm", ACT_FINAL_MEGATRON, "byte",
                   "final norm input and LM-head input (last stage)", last=last, p=p, B=B, S=S, H=H, t_sp=t_sp)
        else:
            r.calc("activations/final_norm", ACT_FINAL_MEGATRON_FT, "byte",
                   "final norm input (and LM-head input if it has an adapter; last stage)", last=last, c_h=c_h, p=p,
                   B=B, S=S, H=H, t_sp=t_sp)
        r.calc("activations/logits", ACT_LOGITS, "byte", "logits in fp32 for the loss, B·S·V·4 (last stage)",
               last=last, B=B, S=S, V=V, t=t, x=0)
    else:
        e = p
        ck = recompute == "full"
        r.calc("activations/embedding", ACT_EMB_EAGER, "byte",
               "embedding: token/position ids, rope tables" + (", dropout mask" if dropout else "")
               + (", what checkpointing keeps alive" if ck else "")
               + (" (a frozen embedding's output, made to require grad for checkpointing, stays as a leaf)"
                  if ck and ft is not None and spec.position == "learned" and "embed" not in ft.adapted_kinds()
                  else ""),
               m=m, B=B, S=S, c_ids=1 if (ck and gs) else 0, n_pos=1 if spec.position == "learned" else 0,
               c_pos=1 if (ck and spec.position == "rope") else 0, m_e=1 if dropout else 0, H=H, t_sp=t_sp,
               c_mask=1 if (ck and not flash) else 0, e=e, n_rope=1 if spec.position == "rope" else 0,
               c_leaf=1 if (ck and ft is not None and spec.position == "learned"
                            and "embed" not in ft.adapted_kinds()) else 0,
               d=spec.head_dim)
        st = 8 if spec.norm == "layernorm" else 4
        if ft is None:
            r.calc("activations/final_norm", ACT_FINAL_EAGER, "byte",
                   "final norm (input, statistics) and LM-head input", last=last, B=B, S=S, e_n=rms_e if
                   spec.norm != "layernorm" else e, H=H, st=st, e=e, t_sp=t_sp)
        else:
            r.calc("activations/final_norm", ACT_FINAL_EAGER_FT, "byte",
                   "final norm (input, statistics) and the LM-head input if it has an adapter", last=last, B=B, S=S,
                   e_n=4 if spec.norm != "layernorm" else e, H=H, st=st, c_h=c_h, e=e, t_sp=t_sp)
        r.calc("activations/logits", ACT_LOGITS, "byte", "log-softmax of the logits in fp32, and the shifted labels",
               last=last, B=B, S=S, V=V, t=t, x=1)
    r.calc("activations_bytes", ACT_TOTAL, "byte", "activations (busiest pipeline stage)",
           layers=r["activations/layers"].value, embedding=r["activations/embedding"].value,
           final_norm=r["activations/final_norm"].value, logits=r["activations/logits"].value)
    return r


def _layer_rows(r: Results, spec: ModelSpec, ft, form: Formula, label: str, shape: dict, flash: bool,
                norms: int) -> None:
    """Per-layer activations of a frozen-base method: a middle layer, and the first (core/lora.activation_flags)."""
    from llmcalc.core.lora import activation_flags
    every, first = activation_flags(spec, ft, flash, norms)
    r.calc("activations/per_layer", form, "byte", label, **shape, **every)
    r.calc("first_layer_activations", form, "byte", "the first layer, one micro-batch (it reads the frozen "
           "embedding: only tensors needed for a gradient stay)", **shape, **first)


# ----------------------------------------------------------------------------------------------
# Everything


def training_memory(spec: ModelSpec, batch, seq, *, precision: str = "mixed", grad_dtype: str | None = None,
                    optimizer: str = "adamw", activations: str = "megatron", flash: bool = True,
                    recompute: str = "none", zero: int = 0, dp=1, tp=1, pp=1, sp: bool = False,
                    in_flight_microbatches=None, dropout: bool = False, method: str = "full", lora_rank=16,
                    lora_targets=None) -> Results:
    """Per-GPU training memory. Keys: weights_bytes, gradients_bytes, optimizer_bytes, activations_bytes,
    total_bytes, then the breakdown (params_per_gpu, optimizer/…, activations/…), each a formula.

    ``method`` lora/qlora (core/lora.py): the frozen base in its dtype (QLoRA: NF4), gradients and optimizer
    state for the adapters only, and the activations a frozen base still keeps."""
    precision = _check("precision", precision, PRECISIONS)
    grad_dtype = _check("grad-dtype", grad_dtype or DEFAULT_GRAD[precision], GRAD_DTYPES)
    optimizer = _check("optimizer", optimizer, OPTIMIZERS)
    activations = _check("activations", activations, ACTIVATION_MODELS)
    recompute = _check("recompute", recompute, RECOMPUTE_MODES)
    if zero not in (0, 1, 2, 3):
        raise InputError(f"--zero must be 0, 1, 2 or 3; got {zero!r}")
    from llmcalc.core import layout
    layout.check_tp(spec, tp, "--tp")  # whole heads, KV heads and MLP columns per GPU
    layout.check_pp(spec, pp, "--pp")  # at least one layer per stage
    from llmcalc.core.params import finetune_plan
    ft = finetune_plan(spec, method, lora_rank, lora_targets)
    if ft is not None:
        from llmcalc.core import lora
    if ft is not None and ft.quantised and precision not in lora.QLORA_PRECISIONS:
        raise InputError(f"QLoRA computes in bf16 over an NF4 base: precision must be mixed or bf16, not {precision}")

    parts = Results()
    P_layers, _, P_ends_pp = stage_params(spec)
    P_total = param_breakdown(spec)["total"]
    L = spec.layers
    from llmcalc.core.formula import ceil, where
    L_s = ceil(L / pp)
    if hasattr(pp, "shape"):
        P_ends = where(pp == 1, P_total - P_layers, P_ends_pp)
    else:
        P_ends = P_total - P_layers if pp == 1 else P_ends_pp
    P_g = parts.calc("params_per_gpu", PARAMS_GPU, "params", "parameters held per GPU (before ZeRO)",
                     P_layers=P_layers, L_s=L_s, L=L, P_ends=P_ends, t=tp)
    z_os = dp if zero >= 1 else 1
    z_g = dp if zero >= 2 else 1
    z_w = dp if zero >= 3 else 1
    w = WEIGHT_BYTES[precision]
    g = GRAD_BYTES[grad_dtype]
    s = STATE_BYTES[precision]
    if ft is None:
        weights = parts.calc("weights_bytes", WEIGHTS, "byte",
                             f"weights ({w} B/param" + (", ZeRO-3 sharded)" if zero >= 3 else ")"), P_g=P_g, w=w, z=z_w)
        P_t = parts.put("trainable_params_per_gpu", P_g, "params", "trainable parameters held per GPU (all)")
        parts.put("weights/frozen", 0, "byte", "frozen base (none: every weight trains)")
        parts.put("weights/adapters", 0, "byte", "LoRA adapters (none)")
        parts.put("weights/dequantised", 0, "byte", "no dequantisation (the base is not quantised)")
        elems, rc = matrix_params(spec)
        f_factored, f8 = (rc + (P_total - elems)) / P_total, elems / P_total
    else:
        weights, P_t = lora.weight_rows(parts, spec, ft, w=w, P_layers=P_layers, P_ends=P_ends, L_s=L_s, tp=tp,
                                        z=z_w)
        f_factored, f8 = lora.optimizer_shape(ft, ADAM8_MIN_SIZE)
    what = "adapter " if ft is not None else ""
    grads = parts.calc("gradients_bytes", GRADS, "byte",
                       f"{what}gradients ({grad_dtype}" + (", ZeRO-2 sharded)" if zero >= 2 else ")"), P_g=P_t, g=g,
                       z=z_g)
    opt_rows = []
    if HAS_MASTER[precision]:
        opt_rows.append(("master", parts.calc("optimizer/master", MASTER, "byte", "fp32 master weights",
                                                        P_g=P_t, z=z_os)))
    if optimizer in ADAM_32:
        for k, lab in (("adam_m", "Adam first moment m"), ("adam_v", "Adam second moment v")):
            opt_rows.append((k, parts.calc(f"optimizer/{k}", STATE, "byte", f"{lab} ({s} B)", P_g=P_t, s=s, z=z_os)))
    elif optimizer == "sgd-momentum":
        opt_rows.append(("momentum", parts.calc("optimizer/momentum", STATE, "byte", f"SGD momentum buffer ({s} B)",
                                                P_g=P_t, s=s, z=z_os)))
    elif optimizer == "adafactor":
        opt_rows.append(("adafactor_v", parts.calc(
            "optimizer/adafactor_v", ADAFACTOR, "byte",
            "Adafactor factored second moment (rows + cols per matrix; vectors in full; no momentum)",
            P_g=P_t, f=f_factored, s=s, z=z_os)))
    elif optimizer in ADAM_8:
        for k, lab in (("adam_m", "8-bit Adam m"), ("adam_v", "8-bit Adam v")):
            opt_rows.append((k, parts.calc(
                f"optimizer/{k}", ADAM8, "byte", f"{lab} (1 B + fp32 absmax per {ADAM8_BLOCK}; small tensors 4 B)",
                P_g=P_t, f8=f8, blk=ADAM8_BLOCK, z=z_os)))
    if not opt_rows:
        parts.put("optimizer_bytes", 0, "byte", "optimizer state (plain SGD without a master copy keeps none)")
    else:
        names = tuple(k for k, _ in opt_rows)
        parts.calc("optimizer_bytes", OPT_TOTAL[names], "byte", "optimizer state", **dict(opt_rows))
    optim = parts["optimizer_bytes"].value
    acts = activation_breakdown(spec, batch, seq, precision=precision, model=activations, flash=flash,
                                recompute=recompute, tp=tp, pp=pp, sp=sp,
                                in_flight_microbatches=in_flight_microbatches, dropout=dropout, finetune=ft)
    act = acts["activations_bytes"].value
    parts.calc("total_bytes", TOTAL, "byte", "total per GPU", weights=weights, gradients=grads, optimizer=optim,
               activations=act)

    out = Results()
    for k in ("weights_bytes", "gradients_bytes", "optimizer_bytes"):
        out[k] = parts[k]
    out["activations_bytes"] = acts["activations_bytes"]
    out["total_bytes"] = parts["total_bytes"]
    out["params_per_gpu"] = parts["params_per_gpu"]
    out["trainable_params_per_gpu"] = parts["trainable_params_per_gpu"]
    for k, row in parts.items():
        if k.startswith(("optimizer/", "weights/")):
            out[k] = row
    for k, row in acts.items():
        if k.startswith("activations/"):
            out[k] = row
    out["first_layer_activations"] = acts["first_layer_activations"]
    return out


def training_notes(spec: ModelSpec, *, precisions, optimizers, recomputes, zeros, methods, grad_given: bool,
                   sp: bool, tp: float, pp: float) -> list[str]:
    """What a train-mem run assumes or leaves out, for the choices it covers (each a list: an outer sweep axis)."""
    notes = []
    if "qlora" in methods or any(o.startswith("paged") for o in optimizers):
        notes.append("QLoRA's recipe uses paged AdamW (--optimizer paged-adamw-8bit or paged-adamw): paged states "
                     "are counted on the GPU; under pressure bitsandbytes moves them to CPU memory")
    if not grad_given and {"mixed", "fp8"} & set(precisions):
        notes.append("gradients in bf16 (2 B/param, as ZeRO and DeepSpeed: 2+2+12 = 16 B/param with Adam); "
                     "Megatron-LM accumulates them in fp32: --grad-dtype fp32")
    if sp and tp == 1:
        notes.append("--sp has no effect without --tp > 1")
    if pp > 1:
        notes.append("pipeline: stage 1 is reported (embedding, ceil(L/pp) layers, --in-flight micro-batches); "
                     "the final norm and the logits sit on the last stage and are not in its total")
    if "full" in recomputes:
        notes.append("full recomputation: activations/per_layer is what each layer keeps (its input); backward "
                     "re-materialises one layer's full activations at a time on top of the total")
    if "3" in zeros:
        notes.append("ZeRO-3/FSDP also gathers one layer's full weights at a time during forward and backward "
                     "(not in the total)")
    if spec.moe:
        notes.append("MoE: activations use the mean per-token MLP width (top-k experts, no capacity slack); "
                     "no expert parallelism")
    if "fp8" in precisions:
        notes.append("fp8: activations counted in bf16 (Transformer Engine's fp8 copies of GEMM inputs not "
                     "credited): an upper bound")
    return notes


def add_gpu_fit(r: Results, memory_bytes: float, reserve_bytes: float = DEFAULT_RESERVE_BYTES,
                fragmentation: float = DEFAULT_FRAGMENTATION) -> Results:
    """gpu_memory_bytes, usable_memory_bytes (after the reserve), fits, headroom_bytes."""
    r.put("gpu_memory_bytes", memory_bytes, "byte", "GPU memory")
    usable = r.calc("usable_memory_bytes", USABLE, "byte", "usable after the reserve (CUDA context + fragmentation)",
                    M=memory_bytes, R=reserve_bytes, f=fragmentation)
    total = r["total_bytes"].value
    r.calc("fits", FITS, "bool", "fits", total=total, usable=usable)
    r.calc("headroom_bytes", HEADROOM, "byte", "headroom (negative: short by)", usable=usable, total=total)
    return r


# ----------------------------------------------------------------------------------------------
# Solvers


def _largest(fn, usable, shape, limit: int = 2**40):
    """Largest integer x >= 1 with fn(x) <= usable (fn monotone, vectorised); 0 where even 1 does not fit."""
    import numpy as np

    usable = np.broadcast_to(np.asarray(usable, dtype=np.float64), shape).copy()
    lo = np.zeros(shape)                   # fits (0 = sentinel)
    hi = np.ones(shape)
    ok = np.asarray(fn(hi)) <= usable
    hi = np.where(ok, hi, 1.0)
    lo = np.where(ok, 1.0, 0.0)
    grow = ok.copy()
    while grow.any():                      # doubling until it does not fit
        trial = np.where(grow, hi * 2, hi)
        fit = np.asarray(fn(trial)) <= usable
        lo = np.where(grow & fit, trial, lo)
        hi = np.where(grow, trial, hi)
        grow = grow & fit & (trial < limit)
    hi = np.where(lo >= limit, lo, hi)
    while True:                            # bisection between lo (fits) and hi (does not)
        gap = (hi - lo > 1) & (lo > 0)
        if not gap.any():
            break
        mid = np.floor((lo + hi) / 2)
        fit = np.asarray(fn(np.where(gap, mid, lo))) <= usable
        lo = np.where(gap & fit, mid, lo)
        hi = np.where(gap & ~fit, mid, hi)
    return lo


def max_batch(spec: ModelSpec, seq, usable, **kw) -> Any:
    """The largest micro-batch whose total memory fits in ``usable`` bytes (0 if not even one sequence)."""
    import numpy as np
    shape = np.broadcast(np.asarray(seq), np.asarray(usable)).shape
    seq_a = np.broadcast_to(np.asarray(seq, dtype=np.float64), shape)
    res = _largest(lambda b: training_memory(spec, b, seq_a, **kw)["total_bytes"].value, usable, shape)
    return res if shape else float(res)


def max_seq(spec: ModelSpec, batch, usable, **kw) -> Any:
    """The longest sequence whose total memory fits in ``usable`` bytes (0 if not even one token)."""
    import numpy as np
    shape = np.broadcast(np.asarray(batch), np.asarray(usable)).shape
    b_a = np.broadcast_to(np.asarray(batch, dtype=np.float64), shape)
    res = _largest(lambda s: training_memory(spec, b_a, s, **kw)["total_bytes"].value, usable, shape,
                   limit=2**31)
    return res if shape else float(res)


def breakeven(spec: ModelSpec, seq, r: Results | None = None, **kw) -> Results:
    """Seed 003 eq. 2.9: the smallest batch at which mixed precision needs less memory than fp32 (its larger
    model states against its smaller activations). 0: mixed precision never needs more."""
    r = Results() if r is None else r
    kw = {k: v for k, v in kw.items() if k not in ("precision",)}
    grad = kw.pop("grad_dtype", None)

    def fixed_and_slope(precision, g):
        one = training_memory(spec, 1, seq, precision=precision, grad_dtype=g, **kw)
        two = training_memory(spec, 2, seq, precision=precision, grad_dtype=g, **kw)
        fixed = one["weights_bytes"].value + one["gradients_bytes"].value + one["optimizer_bytes"].value
        return fixed, two["activations_bytes"].value - one["activations_bytes"].value

    fm, am = fixed_and_slope("mixed", grad)
    ff, af = fixed_and_slope("fp32", None)
    r.calc("breakeven_batch", BREAKEVEN, "number",
           "batch above which mixed precision saves memory (the Decoder-Only Transformers notes eq. 2.9)",
           fixed_mixed=fm, fixed_fp32=ff, act_fp32=af, act_mixed=am)
    return r


def max_rank(spec: ModelSpec, batch, seq, usable, **kw) -> Any:
    """The largest LoRA rank whose total memory fits in ``usable`` bytes (0 if not even rank 1), at most the
    smallest dimension of an adapted module."""
    import numpy as np

    from llmcalc.core import lora
    ft = lora.plan(spec, kw.get("method", "lora"), 1, kw.get("lora_targets"))
    cap = min(min(a.d_in, a.d_out) for a in ft.adapters)
    kw = {k: v for k, v in kw.items() if k != "lora_rank"}
    shape = np.broadcast(np.asarray(batch), np.asarray(seq), np.asarray(usable)).shape
    res = _largest(lambda r: training_memory(spec, batch, seq, lora_rank=np.minimum(r, cap), **kw)["total_bytes"].value,
                   usable, shape, limit=cap)
    res = np.minimum(res, cap)
    return res if shape else float(res)


def what_fits(spec: ModelSpec, batch, seq, usable, gpus=(), **kw) -> list[tuple[dict, str]]:
    """When a single point does not fit ``usable`` bytes, the computed alternatives that do, each as
    (the flags that change, what it needs per GPU): the smallest power-of-two --dp with ZeRO-3; --method qlora
    (with a LoRA rank it fits); the GPUs of ``gpus`` (name, usable bytes), smallest first, the first that fits."""
    out: list[tuple[dict, str]] = []

    def total(**change) -> float:
        return float(training_memory(spec, batch, seq, **{**kw, **change})["total_bytes"].value)

    dp = 2
    while dp <= 4096:
        need = total(zero=3, dp=dp)
        if need <= usable:
            out.append(({"zero": 3, "dp": dp}, need))
            break
        dp *= 2
    if kw.get("method", "full") != "qlora" and kw.get("precision", "mixed") in ("mixed", "bf16"):
        need = total(method="qlora")
        if need <= usable:
            out.append(({"method": "qlora"}, need))
    base = total()
    for name, room in sorted(gpus, key=lambda g: g[1]):
        if base <= room:
            out.append(({"gpu": name}, base))
            break
    return out
