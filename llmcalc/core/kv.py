"""KV-cache bytes, the weights beside them, one decode step's FLOPs with and without the cache, and what
fits on a GPU (plain and paged).

Sources, in the notation used below (L layers, K key/value heads, d_h head width, p bytes per cached
element, B sequences, S tokens per sequence, W sliding window, T tensor-parallel GPUs):

* seed 000 ch. 5: KV cache per token = 2 (K and V) · 2 (bytes, fp16) · L · d; a decode step without the
  cache recomputes K and V for every token, with it only for the new one. Ch. 7: batch limited by the
  cache beside the weights; PagedAttention serves 2-4x more requests.
* seed 003 eq. 6.1: M_kv = 2·p·B·S·D·L/T; eq. 7.1: M = p·N_params + 2·p·B·S·D·L/T.
* seed 001 (MQA/GQA table): the cache scales with K/H, so D becomes K·d_h; KV quantisation; sliding window.
* DeepSeek-V2, arXiv:2405.04434 sec. 2.1: MLA caches the latent c_KV (d_c) and the decoupled rope key
  k^R (d_h^R) per layer and token: (d_c + d_h^R)·L elements per token, shared by all heads.
* Mistral 7B, arXiv:2310.06825 sec. 2: a windowed layer keeps a rolling buffer of W tokens.
* Kwon et al. 2023 (vLLM, arXiv:2309.06180): the cache in blocks of b tokens; only the last block of a
  sequence is partly empty; contiguous engines reserve every request's maximum length up front.

Every function takes ``batch`` and ``seq`` as numbers or NumPy arrays of one shape (a sweep is one call):
windows and block rounding go through Formula's ``min``/``ceil``, never through Python branches on values.
"""

from __future__ import annotations

from llmcalc.core.capacity import MAX_BATCH, add_capacity
from llmcalc.core.dtypes import QUANTISED, bytes_per_element, dtype_bytes
from llmcalc.core.flops import ATTN_SCORE, ATTN_SCORE_WINDOWED, FORWARD, forward_breakdown, head_dims
from llmcalc.core.formula import Formula, Results
from llmcalc.core.params import total_params, vision_weight_bytes
from llmcalc.errors import InputError
from llmcalc.spec import GpuSpec, ModelSpec

KV_DTYPES = ("fp32", "fp16", "bf16", "fp8", "int8", "int4")
SCALE_BYTES = 2.0          # one fp16 scale per quantisation group (dtypes.py)
DEFAULT_MEM_UTIL = 0.9     # vLLM's gpu_memory_utilization default
DEFAULT_BLOCK = 16         # vLLM's default block size (tokens)

# Bytes per cached element: the dtype, plus one scale per group of G elements (seed 001; dtypes.py).
ELEMENT_QUANT = Formula("bits / 8 + s / G")
# Per token, all layers (seed 003 eq. 6.1 with D = K·d_h; seed 000 ch. 5: 2·2·L·d in fp16).
TOKEN_MHA = Formula("2 * L * K * d_h * p")
# MLA (DeepSeek-V2 sec. 2.1): the latent c_KV and the rope key k^R, one copy for all heads.
TOKEN_MLA = Formula("L * (d_c + d_R) * p")
# Per GPU under tensor parallelism: each GPU holds K/T heads, at least one (vLLM replicates a KV head when
# T > K); MLA's latent is not split by heads, so every GPU holds all of it.
KV_HEADS_GPU = Formula("max(1, K / T)")
# One sequence of S tokens: windowed layers keep min(S, W) tokens (Mistral rolling buffer).
SEQ_FULL = Formula("S * per_token")
SEQ_WINDOWED = Formula("per_token / L * (L_full * S + L_win * min(S, W))")
BATCH = Formula("B * per_seq")
# Paged (vLLM): every layer's tokens rounded up to whole blocks of b tokens.
SEQ_PAGED = Formula("ceil(S / b) * b * per_token")
SEQ_PAGED_WINDOWED = Formula("per_token / L * (L_full * ceil(S / b) * b + L_win * ceil(min(S, W) / b) * b)")
DIFF = Formula("paged - exact")
# Weights (core/quant.py weight_parts): P·p; a quantised format stores its P_q weights at p bytes each
# (scales included) and keeps the rest (embedding tables, norms, recipe exceptions) at other types: W_other.
WEIGHTS = Formula("P * p")
WEIGHTS_QUANT = Formula("P_q * p + W_other")
WEIGHTS_VISION = Formula("text + vision")
SUM = Formula("weights + kv")
SHARE = Formula("kv / (weights + kv)")
PER_GPU = Formula("x / T")
# One decode step: the new token attends over the S cached keys and its own (seed 000 ch. 5).
KEYS_DECODE = Formula("S + 1")
KEYS_DECODE_WINDOWED = Formula("min(S + 1, W)")
RATIO = Formula("without / with_cache")
# Bytes read per decode step: every streamed weight once, the whole cache once; the gathered embedding tables
# (untied token table, learned positions: core/quant.py weight_parts) give one row per sequence, not the table.
READ = Formula("weights - tables + B * rows + kv")
INTENSITY = Formula("flops / bytes")
# Capacity on one GPU (seed 000 ch. 5: (40 - 14) GB / 512 MB ≈ 50 requests), per GPU under TP.
# Contiguous pre-allocation to the maximum length versus paging (seed 002 "Challenge with KV cache memory
# management"; seed 000 ch. 7).
LEN_MAX = Formula("S + O_max")
LEN_MEAN = Formula("S + O_mean")
WASTE = Formula("1 - used / reserved")
GAIN = Formula("where(contiguous > 0, paged / max(contiguous, 1), 0)")


def _check_dtype(kv_dtype: str) -> str:
    d = str(kv_dtype).lower()
    if d not in KV_DTYPES:
        raise InputError(f"--kv-dtype must be one of {', '.join(KV_DTYPES)}; got {kv_dtype!r}")
    return d


def kv_element_bytes(kv_dtype: str = "bf16", group_size: int = 0) -> float:
    """Bytes per cached element, with a 2-byte scale per ``group_size`` elements for fp8/int8/int4."""
    return bytes_per_element(_check_dtype(kv_dtype), group_size, SCALE_BYTES)


def _token_symbols(spec: ModelSpec, p: float, tp: int = 1) -> tuple[Formula, dict]:
    if spec.mla:
        return TOKEN_MLA, dict(L=spec.layers, d_c=spec.mla.kv_lora_rank, d_R=spec.mla.qk_rope_head_dim, p=p)
    K = KV_HEADS_GPU(K=spec.kv_heads, T=tp) if tp > 1 else spec.kv_heads
    return TOKEN_MHA, dict(L=spec.layers, K=K, d_h=spec.head_dim, p=p)


def kv_bytes_per_token(spec: ModelSpec, kv_dtype: str = "bf16", group_size: int = 0) -> float:
    """Bytes one token adds to one sequence's cache over all layers (no window cap).

    MHA/GQA/MQA: 2·L·K·d_h·p. MLA: L·(d_c + d_h^R)·p."""
    formula, sym = _token_symbols(spec, kv_element_bytes(kv_dtype, group_size))
    return formula(**sym)


def _seq_formula(spec: ModelSpec, per_token, seq, paged_block=None) -> tuple[Formula, dict]:
    if spec.window_layers:
        sym = dict(per_token=per_token, L=spec.layers, L_full=spec.layers - spec.window_layers,
                   L_win=spec.window_layers, S=seq, W=spec.sliding_window)
        if paged_block is not None:
            return SEQ_PAGED_WINDOWED, {**sym, "b": paged_block}
        return SEQ_WINDOWED, sym
    if paged_block is not None:
        return SEQ_PAGED, dict(S=seq, b=paged_block, per_token=per_token)
    return SEQ_FULL, dict(S=seq, per_token=per_token)


def kv_cache_bytes(spec: ModelSpec, batch, seq, kv_dtype: str = "bf16", group_size: int = 0):
    """Bytes of the whole batch's cache at length ``seq``; windowed layers hold min(seq, window) tokens."""
    formula, sym = _seq_formula(spec, kv_bytes_per_token(spec, kv_dtype, group_size), seq)
    return BATCH(B=batch, per_seq=formula(**sym))


def decode_step_flops(spec: ModelSpec, batch, seq, causal: bool = False) -> tuple[Results, Results]:
    """Forward FLOPs of generating one token after ``seq`` cached ones (seed 000 ch. 5).

    With the cache: the projections, MLP and LM head of one token per sequence (forward_breakdown at S=1),
    and attention of that token over S+1 keys (min(S+1, W) in windowed layers). Without: the forward of
    all S+1 tokens (full S×S scores unless ``causal``, as in ``llmcalc flops``; logits at every position).
    Returns (with_cache, without_cache) breakdowns; each has ``forward_flops``.
    """
    with_cache = forward_breakdown(spec, batch, 1)
    keys = KEYS_DECODE(S=seq)
    d_qk, d_v = head_dims(spec)
    label = "decode attention of 1 token over S+1 cached keys"
    if spec.window_layers:
        with_cache.calc("attention_score_flops", ATTN_SCORE_WINDOWED, "flop", label + " (window: min(S+1, W))",
                        B=batch, n_heads=spec.heads, d_qk=d_qk, d_v=d_v, L_full=spec.layers - spec.window_layers,
                        pairs_full=keys, L_win=spec.window_layers,
                        pairs_win=KEYS_DECODE_WINDOWED(S=seq, W=spec.sliding_window))
    else:
        with_cache.calc("attention_score_flops", ATTN_SCORE, "flop", label,
                        B=batch, n_heads=spec.heads, d_qk=d_qk, d_v=d_v, pairs=keys, L=spec.layers)
    _refresh_forward(with_cache)
    without = forward_breakdown(spec, batch, KEYS_DECODE(S=seq), causal=causal)
    return with_cache, without


def _refresh_forward(r: Results) -> None:
    r.calc("forward_flops", FORWARD, "flop", "forward, one step",
           attn_proj=r["attention_projection_flops"].value, attn_score=r["attention_score_flops"].value,
           mlp=r["mlp_flops"].value, lm_head=r["lm_head_flops"].value)


def _copy(r: Results, key: str, row, label: str):
    """A breakdown row (with its formula and inputs, for --explain) under a new key and label."""
    import dataclasses
    r[key] = dataclasses.replace(row, label=label)
    return row.value


def _weights(r: Results, spec: ModelSpec, dtype: str, group_size: int) -> float:
    """Weights held for inference, as core.quant.weight_parts counts them, written as a formula."""
    from llmcalc.core.quant import PLAIN, check_format, weight_parts

    dtype = check_format(dtype)
    parts = weight_parts(spec, dtype, group_size=group_size, scale_bytes=SCALE_BYTES)
    main = parts["main"]
    p = main.block_bytes / main.block
    label = f"model weights ({dtype}" + (f", one fp16 scale per {group_size}" if group_size else "") + ")"
    if dtype in PLAIN:
        value = r.calc("weights_bytes", WEIGHTS, "byte", label, P=total_params(spec), p=p)
    else:
        P_q = parts["by_type"][main.name][0]
        others = ", ".join(f"{P / 1e6:,.1f}M at {name}" for name, (P, _) in parts["by_type"].items()
                           if name != main.name and P)
        r.calc("weights_bytes", WEIGHTS_QUANT, "byte", label,
               note=f"{P_q / 1e6:,.1f}M weights at {main.bits:g} bits each (scales included); kept at other "
                    f"types: {others}", P_q=P_q, p=p, W_other=parts["total"] - P_q * p)
        r["weights_bytes"].value = value = parts["total"]   # the same number, free of the sum's rounding
    if spec.vision_params:      # a multimodal model's vision tower and projector, held beside the LM
        text = r.pop("weights_bytes")
        value = r.calc("weights_bytes", WEIGHTS_VISION, "byte", label + " + vision tower",
                       note=text.note, text=text.value, vision=vision_weight_bytes(spec, dtype))
    return value


def check_tp(spec: ModelSpec, tp: int) -> None:
    """The tensor-parallel rule of core/layout.py (vLLM's: T divides the query heads and the MLP width, and T
    divides K or K divides T, then K/T heads replicate), for the ``--tp`` flag."""
    from llmcalc.core.layout import check_tp as layout_check_tp
    layout_check_tp(spec, tp, "--tp")


def kv_report(spec: ModelSpec, batch, seq, kv_dtype: str = "bf16", weight_dtype: str = "bf16",
              group_size: int = 0, weight_group_size: int = 0, gpu: GpuSpec | None = None,
              mem_util=DEFAULT_MEM_UTIL, tp: int = 1, block_size=DEFAULT_BLOCK, mean_output=None,
              max_output=None, causal: bool = False, engine: str = "vllm", max_batched_tokens=8192) -> Results:
    """Everything ``llmcalc kv`` shows, in order: cache per element/token/sequence/batch, weights, their
    sum and the cache's share; per GPU under TP; decode FLOPs and bytes with and without the cache; on a
    GPU the budget, ``max_batch``, ``max_tokens`` and ``fits``; paging (last-block waste) and, with
    ``max_output``, contiguous pre-allocation against paging."""
    kv_dtype = _check_dtype(kv_dtype)
    check_tp(spec, tp)
    r = Results()
    B, S, T = batch, seq, tp

    # -- bytes per element, token, sequence, batch
    if kv_dtype in QUANTISED and group_size:
        p = r.calc("kv_bytes_per_element", ELEMENT_QUANT, "byte/element",
                   f"bytes per cached element ({kv_dtype}, one fp16 scale per {group_size})",
                   note=f"scale overhead {SCALE_BYTES / group_size:.4g} B/element "
                        f"= {SCALE_BYTES / group_size / dtype_bytes(kv_dtype):.1%} of the {kv_dtype} payload",
                   bits=dtype_bytes(kv_dtype) * 8, s=SCALE_BYTES, G=group_size)
    else:
        note = ("no per-group scales counted (one per-tensor scale); give --kv-group-size for per-group ones"
                if kv_dtype in QUANTISED else "")
        p = r.put("kv_bytes_per_element", kv_element_bytes(kv_dtype), "byte/element",
                  f"bytes per cached element ({kv_dtype})", note=note)
    formula, sym = _token_symbols(spec, p)
    kind = ("MLA latent + rope key" if spec.mla else "MQA" if spec.kv_heads == 1 else
            "MHA" if spec.kv_heads == spec.heads else f"GQA, {spec.kv_heads} of {spec.heads} heads")
    per_token = r.calc("kv_bytes_per_token", formula, "byte", f"KV cache per token, all layers ({kind})", **sym)
    formula, sym = _seq_formula(spec, per_token, S)
    win = f", {spec.window_layers} layers capped at {spec.sliding_window:,} tokens" if spec.window_layers else ""
    per_seq = r.calc("kv_bytes_per_sequence", formula, "byte", "KV cache per sequence at length S" + win, **sym)
    kv = r.calc("kv_bytes", BATCH, "byte", "KV cache, whole batch (B sequences)", B=B, per_seq=per_seq)
    weights = _weights(r, spec, weight_dtype, weight_group_size)
    r.calc("total_bytes", SUM, "byte", "weights + KV cache (the Decoder-Only Transformers notes eq. 7.1)", weights=weights, kv=kv)
    r.calc("kv_share", SHARE, "ratio", "KV cache share of weights + cache", weights=weights, kv=kv)

    # -- per GPU under tensor parallelism (seed 003 eq. 6.1: /T); at T = 1 the same as the totals
    formula, sym = _token_symbols(spec, p, T)
    tok_gpu = r.calc("kv_bytes_per_token_per_gpu", formula, "byte",
                     f"KV cache per token on each of {T} GPUs" + (" (MLA latent: not split)" if spec.mla else
                                                                 " (K/T heads, at least 1)"), **sym)
    formula, sym = _seq_formula(spec, tok_gpu, S)
    seq_gpu = r.calc("kv_bytes_per_sequence_per_gpu", formula, "byte", "KV cache per sequence per GPU", **sym)
    kv_gpu = r.calc("kv_bytes_per_gpu", BATCH, "byte", "KV cache of the batch per GPU", B=B, per_seq=seq_gpu)
    w_gpu = r.calc("weights_bytes_per_gpu", PER_GPU, "byte", "weights per GPU", x=weights, T=T)
    r.calc("total_bytes_per_gpu", SUM, "byte", "weights + KV cache per GPU", weights=w_gpu, kv=kv_gpu)

    # -- one decode step, with and without the cache (seed 000 ch. 5)
    with_cache, without = decode_step_flops(spec, B, S, causal)
    _copy(r, "decode_attention_flops_with_cache", with_cache["attention_score_flops"],
          "decode: attention of the new token over S+1 keys (QKᵀ and × V)")
    f_with = _copy(r, "decode_flops_with_cache", with_cache["forward_flops"],
                   "decode step with the cache: forward of 1 new token per sequence")
    f_without = _copy(r, "decode_flops_without_cache", without["forward_flops"],
                      "decode step without the cache: forward of all S+1 tokens"
                      + (" (causal)" if causal else " (full S×S scores)"))
    r.calc("decode_flops_ratio", RATIO, "factor", "FLOPs without the cache ÷ with it",
           without=f_without, with_cache=f_with)
    from llmcalc.core.quant import check_format, weight_parts
    tables = weight_parts(spec, check_format(weight_dtype), group_size=weight_group_size,
                          scale_bytes=SCALE_BYTES)["gathered"]  # V·D (untied) + max_seq·D (learned positions)
    n_rows = (0 if spec.tie_embeddings else spec.vocab) + (spec.max_seq if spec.position == "learned" else 0)
    width = (0 if spec.tie_embeddings else 1) + (1 if spec.position == "learned" else 0)  # rows read per token
    rows = tables / n_rows * width if n_rows else 0.0
    read = r.calc("decode_bytes_with_cache", READ, "byte", "bytes read per decode step with the cache "
                  "(every weight once, one embedding row per sequence, the whole cache)",
                  weights=weights - vision_weight_bytes(spec, weight_dtype),   # the vision tower is not read
                  tables=tables, B=B, rows=rows, kv=kv,
                  note="MoE: counts every expert's weights (all are touched at large batch)" if spec.moe else "")
    r.calc("decode_intensity_with_cache", INTENSITY, "flop/byte", "decode arithmetic intensity with the cache",
           flops=f_with, bytes=read)

    # -- capacity on a GPU
    budget = None
    if gpu is not None:
        where = " its GPU may use (unified memory)" if gpu.unified_memory else ""
        r.put("gpu_memory_bytes", gpu.device_memory_bytes, "byte", f"memory of one {gpu.name}{where}")
        from llmcalc.core.servemem import transient_model
        add_capacity(r, memory_bytes=gpu.device_memory_bytes, mem_util=mem_util, weights_bytes=weights, tp=T, batch=B,
                     per_seq=seq_gpu, per_token=tok_gpu, layers=spec.layers, window=spec.sliding_window,
                     window_layers=spec.window_layers, seq=S,
                     transient=transient_model(spec, engine, T, max_batched_tokens))   # the prompt is all of S
        budget = r["kv_budget_bytes"].value

    # -- paging: rounding to blocks (vLLM)
    formula, sym = _seq_formula(spec, tok_gpu, S, paged_block=block_size)
    paged = r.calc("paged_kv_bytes_per_sequence", formula, "byte",
                   "paged KV cache per sequence (whole blocks" + (", per GPU)" if T > 1 else ")"), **sym)
    r.calc("paging_waste_bytes_per_sequence", DIFF, "byte", "internal fragmentation of the last block",
           paged=paged, exact=seq_gpu)

    # -- contiguous pre-allocation to the maximum length versus paging
    if max_output is not None:
        mean = max_output / 2 if mean_output is None else mean_output
        tok = tok_gpu
        L_max = LEN_MAX(S=S, O_max=max_output)
        L_mean = LEN_MEAN(S=S, O_mean=mean)
        formula, sym = _seq_formula(spec, tok, L_max)
        reserved = r.calc("contiguous_bytes_per_request", formula, "byte",
                          "contiguous: reserved per request (prompt S + max output)", **sym)
        formula, sym = _seq_formula(spec, tok, L_mean)
        used = formula(**sym)
        formula, sym = _seq_formula(spec, tok, L_mean, paged_block=block_size)
        per_request = r.calc("paged_bytes_per_request", formula, "byte",
                             "paged: held per request (prompt S + mean output, whole blocks)", **sym)
        r.calc("contiguous_waste_fraction", WASTE, "ratio",
               "contiguous: share of the reservation never written (mean vs max output)",
               used=used, reserved=reserved)
        if budget is not None:
            c = r.calc("max_requests_contiguous", MAX_BATCH, "count", "requests that fit, contiguous",
                       budget=budget, per_seq=reserved)
            pg = r.calc("max_requests_paged", MAX_BATCH, "count", "requests that fit, paged",
                        budget=budget, per_seq=per_request)
            r.calc("paging_gain", GAIN, "factor", "paged ÷ contiguous requests (0 if none fit contiguously)",
                   paged=pg, contiguous=c)
    return r

