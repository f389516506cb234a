"""Inference latency and throughput at the roofline: prefill (time to first token), decode steps, batching.

One forward "step" of ``t`` new tokens for each of ``B`` sequences whose cache already holds ``c`` tokens:

* FLOPs (flops.forward_breakdown at B, t): projections, MLP (MoE: top-k experts) and LM head of B·t tokens
  (prefill: logits of the last token only), plus attention of each new token over the cached and new
  keys: Σ_j min(c + j + 1, W) pairs (full layers: t·c + t(t+1)/2; a window W caps it).
* Bytes (seed 002 "Inference Math": decoding loads params + KV cache): every weight read once per step,
  except the embedding tables, which are gathered one row per token, and MoE experts that no token of
  the step routes to; the cache read once at its current length c; only the new tokens' K and V written
  (kv.kv_cache_bytes at c and at t). Activations between kernels are not counted (≪ weights in decode;
  prefill is compute-bound).
* Time (roofline, seed 003 sec. 7 / App. D): max(F/(T·π·MFU), Q/(T·β·MBU)) + T_comm on T tensor-parallel
  GPUs; T_comm = two ring all-reduces per layer of B·t·D activations (Megatron-LM, arXiv:1909.08053
  sec. 3), each α + 2(T−1)/T · bytes / NVLink one-way bandwidth, on the critical path (not overlapped).

Efficiency defaults (MBU) are calibrated on gpt-fast's batch-1 A100 measurements (seed 002's table;
github.com/pytorch-labs/gpt-fast README): achieved bandwidth ÷ 2.039 TB/s is 0.69 for 16-bit weights,
0.51-0.65 for int8 and 0.42-0.54 for int4 (G=32); dequantising kernels reach a smaller share of HBM
bandwidth. MFU 0.5 for prefill is the top of seed 002's "typical 30-50%".

Every function accepts NumPy arrays (of one broadcastable shape) for batch, context and lengths.
"""

from __future__ import annotations

from llmcalc.core.comm import allreduce_seconds_expr
from llmcalc.core.flops import ATTN_SCORE_WINDOWED, LM_HEAD, forward_breakdown, head_dims
from llmcalc.core.formula import Formula, Results, where
from llmcalc.core.params import vision_weight_bytes
from llmcalc.core.precision import blended_peak, compute_dtype as resolve_compute_dtype
from llmcalc.core.quant import WEIGHT_FORMATS, mbu_class, weight_parts
from llmcalc.errors import InputError
from llmcalc.spec import GpuSpec, ModelSpec

WEIGHT_DTYPES = WEIGHT_FORMATS
# Achieved fraction of HBM bandwidth in decode, by weight format (gpt-fast, A100 80GB, batch 1; see above);
# named formats take their class's value (quant.mbu_class: 8-bit ones int8's, 2-6-bit ones int4's).
DEFAULT_MBU = {"fp32": 0.68, "tf32": 0.68, "bf16": 0.68, "fp16": 0.68, "fp8": 0.57, "int8": 0.57, "int4": 0.46}
DEFAULT_MFU = 0.5
# Latency of one small all-reduce inside a node (NCCL ring/LL protocol over NVLink, ~10-30 µs; gpt-fast's
# TP=8 Llama-2-7B: 3.04 ms per token vs 1.2 ms of weight reads leaves ~28 µs per all-reduce).
DEFAULT_ALLREDUCE_LATENCY = 20e-6
ACT_BYTES = 2.0            # activations all-reduced in 16-bit

# ---------------------------------------------------------------------------------------------
# Formulas (symbols: B sequences, t new tokens each, c cached tokens, L layers, D hidden, E experts,
# k top-k, T tensor-parallel GPUs, π peak FLOP/s, β HBM bytes/s, λ link bytes/s one way)

# Query j = 0..t-1 attends to min(c + j + 1, W) keys; it is below the cap iff j <= W - c - 1, so
# m = clamp(floor(W - c), 0, t) queries see c + j + 1 keys and the other t - m see W:
#   Σ_j min(c + j + 1, W) = m·c + m(m+1)/2 + (t - m)·W.
# The floor keeps the sum exact for a fractional c (the generation mean integrates over c); without it,
# m = min(W - c, t) interpolates linearly and overshoots just below the window (c = 63.2, W = 64, t = 3).
CAP_QUERIES = Formula("min(max(floor(W - c), 0), t)")
PAIRS = Formula("m * c + m * (m + 1) / 2 + (t - m) * W")
# Only the logits that are used: the last prompt token in prefill, every new token in decode/verify.
STEP_FLOPS = Formula("attn_proj + attn_score + mlp + lm_head")
# Expected distinct experts hit by n = B·t tokens routed uniformly to k of E (each expert missed by one
# token with probability 1 - k/E): E·(1 - (1 - k/E)^n).
EXPERTS_TOUCHED = Formula("E * (1 - (1 - k / E)**n)")
WEIGHTS_READ = Formula("W - gathered - L_moe * (E - touched) * expert")
KV_PER_GPU = Formula("kv * share")
STEP_BYTES = Formula("weights_read / T + kv_read + kv_write")
T_MATH = Formula("F / (T * peak * mfu)")
T_MEM = Formula("Q / (bw * mbu)")
# Two ring all-reduces per layer (core/comm.py), each paying one fixed latency (NCCL's LL protocol).
T_COMM = Formula("2 * L * (" + allreduce_seconds_expr("T", "B * t * D * a", "link", "alpha", steps="1") + ")")
# Expert parallelism over the T GPUs (vLLM's --enable-expert-parallel): each MoE layer's MLP all-reduce becomes
# a dispatch and a combine all-to-all (core/moe.py's a2a seconds for the step, all MoE layers).
T_COMM_EP = Formula("(2 * L - L_moe) * (" + allreduce_seconds_expr("T", "B * t * D * a", "link", "alpha", steps="1")
                    + ") + a2a")
STEP_TIME = Formula("max(t_math, t_mem) + t_comm")
# Ceilings per sequence (STYLE.md #6, gpt-fast's "Bandwidth achieved"): tokens/s if only bytes, or only
# FLOPs, limited the step, at 100% of the hardware.
MEM_CEILING = Formula("t * bw / Q")
COMPUTE_CEILING = Formula("B * t * T * peak / F")
PER_SEQ = Formula("x / B")
TOKENS_PER_S = Formula("t / seconds")
THROUGHPUT = Formula("B * t / seconds")
E2E = Formula("prefill + (G - 1) * decode")
# Decode steps 1..G-1 run with c = P .. P + G - 2 cached tokens (token 1 comes from prefill).
LAST_CONTEXT = Formula("max(P + G - 2, P)")
E2E_THROUGHPUT = Formula("B * G / e2e")
ACHIEVED = Formula("F / seconds / T")
UTILISATION = Formula("achieved / peak")
MBU_IMPLIED = Formula("Q / seconds / bw")
# Static batching waits for the longest of B outputs; continuous batching refills a slot as soon as its
# request finishes (Yu et al. 2022, Orca; seed 000 ch. 7). Output lengths uniform in [G_min, G]:
# mean (G_min + G)/2, expected maximum of B draws G_min + (G - G_min)·B/(B + 1).
LEN_MEAN = Formula("(G_min + G) / 2")
LEN_MAX = Formula("G_min + (G - G_min) * B / (B + 1)")
STATIC = Formula("B * mean / (prefill + (longest - 1) * decode)")
CONTINUOUS = Formula("B * mean / (prefill + (mean - 1) * decode)")
GAIN = Formula("continuous / static")


def check_dtype(flag: str, dtype: str, allowed=WEIGHT_DTYPES) -> str:
    d = str(dtype).lower()
    if d not in allowed:
        raise InputError(f"{flag} must be one of {', '.join(allowed)}; got {dtype!r}")
    return d


def default_mbu(weight_dtype: str) -> float:
    return DEFAULT_MBU[mbu_class(check_dtype("--weight-dtype", weight_dtype))]


def link_bandwidth(gpu: GpuSpec, tp: int) -> float:
    """One-way bytes/s between the tensor-parallel GPUs: NVLink (or ICI), else PCIe."""
    if tp <= 1:
        return gpu.nvlink_bytes_per_s_unidir or gpu.pcie_bytes_per_s_unidir or 1.0
    if tp > gpu.gpus_per_node:
        raise InputError(f"--tp {tp} exceeds the {gpu.gpus_per_node} GPUs of one {gpu.name} node; "
                         "tensor parallelism stays inside a node")
    link = gpu.nvlink_bytes_per_s_unidir or gpu.pcie_bytes_per_s_unidir
    if not link:
        raise InputError(f"{gpu.name} has no NVLink or PCIe bandwidth in its preset, needed for --tp {tp}")
    return link


def kv_share_per_gpu(spec: ModelSpec, tp: int) -> float:
    """Share of the cache each GPU holds under TP: max(1, K/T)/K of the heads (kv.KV_HEADS_GPU); MLA's
    latent is not split by heads, so every GPU holds all of it."""
    from llmcalc.core.kv import KV_HEADS_GPU
    if spec.mla or tp <= 1:
        return 1.0
    return KV_HEADS_GPU(K=spec.kv_heads, T=tp) / spec.kv_heads


def step(spec: ModelSpec, gpu: GpuSpec, batch, context, tokens=1, *, logits=None, weight_dtype: str = "bf16",
         kv_dtype: str = "bf16", group_size: int = 0, kv_group_size: int = 0, scale_bytes: float = 2.0,
         tp: int = 1, mbu=None, mfu=None, alpha=DEFAULT_ALLREDUCE_LATENCY, dtype: str | None = None,
         out: Results | None = None, prefix: str = "", label: str = "", ep: bool = False) -> Results:
    """One forward step of ``tokens`` new tokens for each of ``batch`` sequences holding ``context`` cached
    tokens: FLOPs, bytes (weights read, cache read, cache written), and time on ``tp`` GPUs.

    ``logits``: tokens per sequence whose logits are computed (default all new tokens; prefill: 1).
    ``dtype``: whose peak FLOP/s bounds the math (default bf16: weight-only quantisation dequantises and
    multiplies in 16-bit, as gpt-fast does); fp8: the matmuls at the fp8 peak, attention in bf16.
    """
    from llmcalc.core.kv import kv_cache_bytes

    r = Results() if out is None else out
    p, lab = prefix, (label + ": " if label else "")
    weight_dtype = check_dtype("--weight-dtype", weight_dtype)
    B, c, t = batch, context, tokens
    logits = t if logits is None else logits
    bw = gpu.hbm_bytes_per_s
    mbu = default_mbu(weight_dtype) if mbu is None else mbu
    mfu = DEFAULT_MFU if mfu is None else mfu
    L, D = spec.layers, spec.hidden

    # -- FLOPs: forward_breakdown of B·t tokens, attention over the cache, logits where needed
    fb = forward_breakdown(spec, B, t, causal=True)
    d_qk, d_v = head_dims(spec)
    win = spec.window_layers
    W_full = c + t  # a full layer: no cap
    pairs_full = PAIRS(m=CAP_QUERIES(W=W_full, c=c, t=t), c=c, t=t, W=W_full)
    pairs_win = PAIRS(m=CAP_QUERIES(W=spec.sliding_window, c=c, t=t), c=c, t=t, W=spec.sliding_window) if win else 0
    attn = r.calc(p + "attention_flops", ATTN_SCORE_WINDOWED, "flop",
                  lab + "attention of the new tokens over cached + new keys",
                  B=B, n_heads=spec.heads, d_qk=d_qk, d_v=d_v, L_full=L - win, pairs_full=pairs_full,
                  L_win=win, pairs_win=pairs_win)
    lm = LM_HEAD(B=B, S=logits, H=D, V=spec.vocab)
    F = r.calc(p + "flops", STEP_FLOPS, "flop", lab + "FLOPs (all GPUs)",
               attn_proj=fb["attention_projection_flops"].value, attn_score=attn, mlp=fb["mlp_flops"].value,
               lm_head=lm)
    peak = blended_peak(gpu, dtype, attn / F)   # fp8: matmuls at the fp8 peak, attention in bf16 (core/precision.py)

    # -- bytes per GPU
    # weights in their format (core.quant): embedding tables gathered one row per token, not streamed
    wp = weight_parts(spec, weight_dtype, group_size=group_size, scale_bytes=scale_bytes)
    W, gathered = wp["total"], wp["gathered"]
    if spec.moe:
        moe = spec.moe
        touched = r.calc(p + "experts_touched", EXPERTS_TOUCHED, "number",
                         lab + f"expected distinct experts hit per MoE layer (of {moe.experts}, uniform routing)",
                         E=moe.experts, k=moe.top_k, n=B * t)
        sym = dict(L_moe=spec.moe_layers, E=moe.experts, touched=touched,
                   expert=wp["expert"])
    else:
        sym = dict(L_moe=0, E=0, touched=0, expert=0.0)
    w_read = r.calc(p + "weights_read_bytes", WEIGHTS_READ, "byte",
                    lab + "weights read (all GPUs; embeddings gathered" + (", untouched experts skipped)"
                                                                          if spec.moe else ")"),
                    W=W, gathered=gathered, **sym)
    share = kv_share_per_gpu(spec, tp)
    kv_read = r.calc(p + "kv_read_bytes", KV_PER_GPU, "byte", lab + "KV cache read at its current length, per GPU",
                     kv=kv_cache_bytes(spec, B, c, kv_dtype, kv_group_size), share=share)
    kv_write = r.calc(p + "kv_write_bytes", KV_PER_GPU, "byte", lab + "K and V of the new tokens written, per GPU",
                      kv=kv_cache_bytes(spec, B, t, kv_dtype, kv_group_size), share=share)
    Q = r.calc(p + "bytes", STEP_BYTES, "byte", lab + "bytes moved per GPU", weights_read=w_read, T=tp,
               kv_read=kv_read, kv_write=kv_write)

    # -- time
    t_math = r.calc(p + "t_math_seconds", T_MATH, "s", lab + "T_math at MFU", F=F, T=tp, peak=peak, mfu=mfu)
    t_mem = r.calc(p + "t_mem_seconds", T_MEM, "s", lab + "T_mem at MBU", Q=Q, bw=bw, mbu=mbu)
    if tp > 1 and ep:
        from llmcalc.core.moe import step_alltoall
        from llmcalc.core.parallel import Cluster
        link = link_bandwidth(gpu, tp)
        a2a = step_alltoall(spec, Cluster(gpu.gpus_per_node, link, link, alpha, alpha), B, t, tp)["ep_alltoall_seconds"]
        t_comm = r.calc(p + "t_comm_seconds", T_COMM_EP, "s", lab + f"T_comm: all-reduces, MoE all-to-alls over {tp} GPUs",
                        L=L, L_moe=spec.moe_layers, alpha=alpha, T=tp, B=B, t=t, D=D, a=ACT_BYTES, link=link,
                        a2a=a2a.value)
    elif tp > 1:
        t_comm = r.calc(p + "t_comm_seconds", T_COMM, "s", lab + f"T_comm: 2 all-reduces per layer over {tp} GPUs",
                        L=L, alpha=alpha, T=tp, B=B, t=t, D=D, a=ACT_BYTES, link=link_bandwidth(gpu, tp))
    else:
        t_comm = r.put(p + "t_comm_seconds", 0.0, "s", lab + "T_comm (one GPU: none)")
    r.calc(p + "seconds", STEP_TIME, "s", lab + "time max(T_math, T_mem) + T_comm",
           t_math=t_math, t_mem=t_mem, t_comm=t_comm)
    r.put(p + "bound", where(t_math >= t_mem, "compute", "memory"), "str", lab + "bound")
    r.calc(p + "memory_ceiling_tokens_per_second", MEM_CEILING, "token/s",
           lab + "bandwidth ceiling per sequence (HBM bytes/s ÷ bytes per step)", t=t, bw=bw, Q=Q)
    r.calc(p + "compute_ceiling_tokens_per_second", COMPUTE_CEILING, "token/s",
           lab + "compute ceiling per sequence (peak ÷ FLOPs per token)", B=B, t=t, T=tp, peak=peak, F=F)
    return r


def decode_step_seconds(spec: ModelSpec, gpu: GpuSpec, batch, context, *, tokens_per_step=1,
                        weight_dtype: str = "bf16", kv_dtype: str = "bf16", group_size: int = 0, tp: int = 1,
                        mbu=None, mfu=None):
    """Seconds of one decode step that processes ``tokens_per_step`` new tokens for each of ``batch``
    sequences whose cache holds ``context`` tokens (speculative decoding's verify step: k+1). Arrays work."""
    r = step(spec, gpu, batch, context, tokens_per_step, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
             group_size=group_size, tp=tp, mbu=mbu, mfu=mfu)
    return r["seconds"].value


# The mean step time over a generation, in closed form. As the cache grows from c0 to c1 every term of a
# step is linear in c between kinks (the window cap: the attention pairs at c = W - t .. W - 1, the cache
# read at c = W), so max(T_math, T_mem) + T_comm is piecewise linear, with one more kink where the bound
# switches (T_math = T_mem). Its integral is exact as trapezoids between those nodes.
SEGMENT = Formula("(b - a) * (y_a + y_b) / 2")
CROSSING = Formula("where(d_a * d_b < 0, d_a / where(d_a * d_b < 0, d_a - d_b, 1), 0)")
LERP = Formula("y_a + f * (y_b - y_a)")
MEAN_OVER = Formula("where(c1 > c0, area / max(c1 - c0, 1e-300), y0)")


def mean_step_seconds(spec: ModelSpec, gpu: GpuSpec, batch, c0, c1, tokens=1, **kw):
    """Mean over c in [c0, c1] of the step time at context c: (1/(c1 − c0))·∫ max(T_math, T_mem) + T_comm dc,
    exactly (piecewise linear: nodes at the window kinks and where the bound switches). Scalars give a
    float without NumPy; arrays (one broadcastable shape) give an array."""
    from llmcalc.core.formula import maximum, minimum

    nodes = [c0]
    if spec.window_layers:
        W = spec.sliding_window
        nodes += [minimum(maximum(W - j, c0), c1) for j in range(int(tokens), -1, -1)]   # ascending
    nodes.append(c1)
    pts = [step(spec, gpu, batch, c, tokens, **kw) for c in nodes]
    m_ = [p["t_math_seconds"].value for p in pts]
    q_ = [p["t_mem_seconds"].value for p in pts]
    y_ = [p["seconds"].value for p in pts]
    comm = pts[0]["t_comm_seconds"].value
    area = 0.0
    for i in range(len(nodes) - 1):
        a, b = nodes[i], nodes[i + 1]
        f = CROSSING(d_a=m_[i] - q_[i], d_b=m_[i + 1] - q_[i + 1])      # where T_math = T_mem, as a fraction
        x = LERP(y_a=a, y_b=b, f=f)
        y_x = maximum(LERP(y_a=m_[i], y_b=m_[i + 1], f=f), LERP(y_a=q_[i], y_b=q_[i + 1], f=f)) + comm
        area = area + SEGMENT(a=a, b=x, y_a=y_[i], y_b=y_x) + SEGMENT(a=x, b=b, y_a=y_x, y_b=y_[i + 1])
    return MEAN_OVER(c0=c0, c1=c1, area=area, y0=y_[0])


def serve(spec: ModelSpec, gpu: GpuSpec, batch, prompt, gen, *, gen_min=None, weight_dtype: str = "bf16",
          kv_dtype: str = "bf16", group_size: int = 0, kv_group_size: int = 0, scale_bytes: float = 2.0,
          tp: int = 1, mbu=None, mfu=None, alpha=DEFAULT_ALLREDUCE_LATENCY, mem_util=None,
          dtype: str | None = None, ep: bool = False, engine: str = "vllm", max_batched_tokens=8192) -> Results:
    """Prefill (time to first token), decode per token (mean over the generation, at its start and end),
    end-to-end latency, per-sequence and aggregate tokens/s, bytes, what fits, and batching. ``dtype``: the
    compute dtype (bf16, or fp8: matmuls at the fp8 peak); ``ep``: experts spread over the ``tp`` GPUs."""
    from llmcalc.core.capacity import add_capacity
    from llmcalc.core.kv import DEFAULT_MEM_UTIL, check_tp, kv_bytes_per_token, kv_cache_bytes

    check_tp(spec, tp)
    if ep:
        from llmcalc.core.moe import check_ep
        check_ep(spec, max(tp, 2))
    weight_dtype = check_dtype("--weight-dtype", weight_dtype)
    mbu_v = default_mbu(weight_dtype) if mbu is None else mbu
    mfu_v = DEFAULT_MFU if mfu is None else mfu
    u = DEFAULT_MEM_UTIL if mem_util is None else mem_util
    kw = dict(weight_dtype=weight_dtype, kv_dtype=kv_dtype, group_size=group_size, kv_group_size=kv_group_size,
              scale_bytes=scale_bytes, tp=tp, mbu=mbu_v, mfu=mfu_v, alpha=alpha,
              dtype=resolve_compute_dtype(gpu, requested=dtype), ep=ep)
    B, P, G = batch, prompt, gen
    peak, bw = gpu.peak_flops(gpu.half_dtype), gpu.hbm_bytes_per_s
    r = Results()

    # -- decode
    dec = step(spec, gpu, B, P, 1, **kw)   # at the start of the generation
    r.put("memory_ceiling_tokens_per_second", dec["memory_ceiling_tokens_per_second"].value, "token/s",
          "bandwidth ceiling per sequence: HBM bytes/s ÷ bytes read per step (start of decode)")
    r.put("compute_ceiling_tokens_per_second", dec["compute_ceiling_tokens_per_second"].value, "token/s",
          "compute ceiling per sequence: peak FLOP/s ÷ FLOPs per token (start of decode)")

    pre = step(spec, gpu, B, 0, P, logits=1, **kw)
    ttft = r.put("prefill_seconds", pre["seconds"].value, "s", "prefill = time to first token")
    r.put("prefill_flops", pre["flops"].value, "flop", "prefill FLOPs (causal attention, last-token logits)")
    r.put("prefill_bytes", pre["bytes"].value, "byte", "prefill bytes per GPU (weights + K/V written)")
    r.put("prefill_bound", pre["bound"].value, "str", "prefill bound")

    last_c = LAST_CONTEXT(P=P, G=G)
    avg = r.put("decode_seconds_per_token", mean_step_seconds(spec, gpu, B, P, last_c, 1, **kw), "s",
                "decode time per output token, mean over the generation",
                note="exact mean of the step time as the cache grows from prompt to prompt + gen − 2 tokens")
    r.put("decode_seconds_first", dec["seconds"].value, "s", "decode step at the start (attends over prompt + 1 tokens)")
    end = step(spec, gpu, B, last_c, 1, **kw)
    r.put("decode_seconds_last", end["seconds"].value, "s", "decode step at the end (attends over prompt + gen - 1 tokens)")
    r.calc("decode_tokens_per_second", TOKENS_PER_S, "token/s", "tokens/s of one sequence (decode)",
           t=1, seconds=avg)
    r.calc("throughput_tokens_per_second", THROUGHPUT, "token/s", "throughput, all B sequences (decode)",
           B=B, t=1, seconds=avg)
    e2e = r.calc("e2e_seconds", E2E, "s", "end-to-end latency: prefill + (gen - 1) decode steps",
                 prefill=ttft, G=G, decode=avg)
    r.calc("e2e_throughput_tokens_per_second", E2E_THROUGHPUT, "token/s",
           "generated tokens/s of the batch including prefill", B=B, G=G, e2e=e2e)
    r.put("decode_bound", end["bound"].value, "str", "decode bound (at the end of the generation)")
    r.put("decode_bytes_first", dec["bytes"].value, "byte", "decode bytes per step per GPU at the start")
    r.put("decode_bytes_last", end["bytes"].value, "byte", "decode bytes per step per GPU at the end")
    r.put("decode_flops_first", dec["flops"].value, "flop", "decode FLOPs per step at the start (all GPUs)")
    if spec.moe:
        r.put("experts_touched", dec["experts_touched"].value, "number",
              f"expected distinct experts per MoE layer per decode step (of {spec.moe.experts})")
    r.put("decode_comm_seconds", dec["t_comm_seconds"].value, "s", "decode all-reduce time per step (0 at --tp 1)")

    # -- the decode paradox (seed 000 ch. 4): achieved FLOP/s during decode
    ach = r.calc("decode_achieved_flops", ACHIEVED, "flop/s", "achieved FLOP/s per GPU during decode",
                 F=dec["flops"].value, seconds=dec["seconds"].value, T=tp)
    r.calc("decode_flops_utilization", UTILISATION, "ratio", "decode: achieved FLOP/s ÷ peak (the paradox)",
           achieved=ach, peak=peak)

    # -- bytes and capacity
    # held: the language model in its format, and a multimodal model's vision tower (not read by decode steps)
    W = (weight_parts(spec, weight_dtype, group_size=group_size, scale_bytes=scale_bytes)["total"]
         + vision_weight_bytes(spec, weight_dtype))
    r.put("weights_bytes", W, "byte", f"weights ({weight_dtype}" + (f", groups of {group_size}" if group_size
                                                                    else "") + "), all GPUs")
    kv_total = r.put("kv_bytes", kv_cache_bytes(spec, B, P + G, kv_dtype, kv_group_size), "byte",
                     "KV cache of the batch at prompt + gen, all GPUs")
    share = kv_share_per_gpu(spec, tp)
    per_token = kv_bytes_per_token(spec, kv_dtype, kv_group_size) * share
    per_seq = kv_cache_bytes(spec, 1, P + G, kv_dtype, kv_group_size) * share
    from llmcalc.core.servemem import transient_model
    add_capacity(r, memory_bytes=gpu.device_memory_bytes, mem_util=u, weights_bytes=W, tp=tp, batch=B, per_seq=per_seq,
                 per_token=per_token, layers=spec.layers, window=spec.sliding_window,
                 window_layers=spec.window_layers, what="sequences of prompt + gen tokens",
                 transient=transient_model(spec, engine, tp, max_batched_tokens), prompt=P)
    del kv_total

    # -- static vs continuous batching for output lengths uniform in [gen_min, gen]
    if gen_min is not None:
        mean = r.calc("gen_mean", LEN_MEAN, "number", "mean output length", G_min=gen_min, G=G)
        longest = r.calc("gen_longest_expected", LEN_MAX, "number", "expected longest output of the batch",
                         G_min=gen_min, G=G, B=B)
        st = r.calc("static_throughput_tokens_per_second", STATIC, "token/s",
                    "static batching: the batch waits for its longest output", B=B, mean=mean, prefill=ttft,
                    longest=longest, decode=avg)
        co = r.calc("continuous_throughput_tokens_per_second", CONTINUOUS, "token/s",
                    "continuous batching: finished slots refilled at once", B=B, mean=mean, prefill=ttft,
                    decode=avg)
        r.calc("continuous_gain", GAIN, "factor", "continuous ÷ static throughput", continuous=co, static=st)
    r.put("mbu", mbu_v, "ratio", "MBU used (achieved ÷ peak bandwidth)")
    r.put("mfu", mfu_v, "ratio", "MFU used (achieved ÷ peak FLOP/s)")
    del bw
    return r


def add_target_batch(r: Results, spec: ModelSpec, gpu: GpuSpec, prompt, gen, target_seconds: float, mem_util,
                     **kw) -> None:
    """``--target-latency``: the largest batch that fits whose mean time per token stays within the target,
    and its time per token and throughput (null when no batch meets it)."""
    step_kw = {k: v for k, v in kw.items() if k not in ("engine", "max_batched_tokens")}   # capacity only
    best = target_batch(spec, gpu, prompt, gen, target_seconds, int(r["max_batch"].value), **step_kw)
    r.put("target_batch", best, "count", "largest batch (that fits) within the target time per token")
    at = serve(spec, gpu, best, prompt, gen, mem_util=mem_util, **kw) if best else None
    r.put("target_decode_seconds_per_token", at["decode_seconds_per_token"].value if at else None, "s",
          "time per token at that batch")
    r.put("target_throughput_tokens_per_second", at["throughput_tokens_per_second"].value if at else None,
          "token/s", "throughput at that batch")


def target_batch(spec: ModelSpec, gpu: GpuSpec, prompt, gen, target_seconds: float, max_batch: int, **kw):
    """Largest batch (≤ max_batch) whose mean decode time per token stays ≤ target_seconds; 0 if none.
    The step time never falls with batch, so the feasible batches are 1..answer: a 64-way search over
    [1, max_batch] (about log₆₄ max_batch rounds of 64 batches each; memory bounded whatever max_batch is)."""
    import numpy as np
    P, G = float(prompt), float(gen)
    last = LAST_CONTEXT(P=P, G=G)

    def feasible(batches) -> np.ndarray:
        Bs = np.asarray(batches, dtype=float)
        return np.asarray(mean_step_seconds(spec, gpu, Bs, P, last, 1, **kw)) <= target_seconds

    lo, hi = 0, int(max(0, max_batch))  # invariant: lo is feasible (0 trivially), every batch > hi is not
    while lo < hi:
        probes = np.unique(np.linspace(lo + 1, hi, num=min(64, hi - lo)).round().astype(np.int64))
        ok = feasible(probes)
        passing = probes[ok]
        failing = probes[~ok]
        lo = int(passing.max()) if passing.size else lo
        hi = int(failing.min()) - 1 if failing.size else hi
        if passing.size == probes.size:
            lo = hi = int(probes.max())
    return lo
