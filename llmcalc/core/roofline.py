"""The roofline: a GPU's two ceilings, and where an operation sits under them.

Williams, Waterman & Patterson 2009 (CACM), in the notation of scaling-book's roofline chapter and seed 003
App. D: an operation doing ``F`` FLOPs while moving ``Q`` bytes between HBM and the chip has arithmetic
intensity ``I = F/Q``. On a chip of peak ``π`` FLOP/s and memory bandwidth ``β`` bytes/s it attains at most
``min(π, β·I)`` FLOP/s; the ceilings meet at the ridge ``I* = π/β`` (seed 000 ch. 4: A100 312e12/2e12 = 156
FLOP/byte). Its time is at least ``max(T_math, T_mem)`` (compute and memory traffic fully overlapped) and at
most ``T_math + T_mem`` (not overlapped at all), with ``T_math = F/π`` and ``T_mem = Q/β`` (STYLE.md #5).

Operation models count bytes as each input read once from HBM and each output written once, in the
chosen dtype (``p`` bytes per element), which is what a well-tiled kernel achieves; matmul FLOPs are
2·M·K·N, and element-wise/normalisation FLOPs are the stated per-element counts.

Every function accepts NumPy arrays for sweeps. No I/O here.
"""

from __future__ import annotations

import math

from llmcalc.core.formula import Formula, Results, where
from llmcalc.spec import GpuSpec

# ---------------------------------------------------------------------------------------------
# Ceilings and placement (Williams et al. 2009; scaling-book "All About Rooflines")

RIDGE = Formula("peak / bw")
INTENSITY = Formula("F / Q")
ATTAINABLE = Formula("min(peak, I * bw)")
T_MATH = Formula("F / peak")
T_MEM = Formula("Q / bw")
T_LOWER = Formula("max(T_math, T_mem)")
T_UPPER = Formula("T_math + T_mem")
FRACTION_OF_PEAK = Formula("attainable / peak")

# ---------------------------------------------------------------------------------------------
# Operations. p: bytes per element of the dtype.

# [M,K]x[K,N]: 2·M·K·N FLOPs (seed 000 ch. 1); A and B read once, C written once (seed 003 eq. D.1).
MATMUL_F = Formula("2 * M * K * N")
MATMUL_Q = Formula("p * (M * K + K * N + M * N)")
# y = f(x) over n elements, c FLOPs each, `reads` input tensors: ~c/(p·(reads+1)) FLOP/byte (seed 003 App. D).
ELEMENTWISE_F = Formula("c * n")
ELEMENTWISE_Q = Formula("p * (reads + 1) * n")
# Row softmax over [M,N], fused (online softmax, seed 001 lever 2): max, subtract, exp, sum, divide = 5
# FLOPs per element; the input read once and the output written once.
SOFTMAX_F = Formula("5 * M * N")
SOFTMAX_Q = Formula("p * 2 * M * N")
# LayerNorm over the last dim of [M,N]: mean (1), variance (3: subtract, square, add), normalise and
# affine (4: subtract, divide, scale, shift) = 8 FLOPs per element; x read, y written, gamma and beta read.
LAYERNORM_F = Formula("8 * M * N")
LAYERNORM_Q = Formula("p * (2 * M * N + 2 * N)")
# Attention core of Z = B·heads independent heads, sequence S, head dim d: QKᵀ and P·V are 2·S²·d each
# (full square, as the eager kernel computes it; element-wise softmax FLOPs not counted, as in `flops`).
ATTENTION_F = Formula("4 * Z * S**2 * d")
# Standard attention (Dao et al. 2022, arXiv:2205.14135 Alg. 0): read Q, K; write S; read S, write P;
# read P, V; write O: HBM traffic 4·S·d + 4·S² elements per head, Θ(S·d + S²).
ATTENTION_NAIVE_Q = Formula("p * Z * (4 * S * d + 4 * S**2)")
# FlashAttention(-2) (Dao 2023, arXiv:2307.08691 Alg. 1): Q read and O written once; K and V re-read once
# per query block of Br rows, ceil(S/Br) times: Θ(S²·d/Br) instead of the S² score matrix.
ATTENTION_FLASH_Q = Formula("p * Z * (2 * S * d + 2 * S * d * ceil(S / Br))")


def ceilings(gpu: GpuSpec, dtype: str = "bf16", out: Results | None = None) -> Results:
    """Peak FLOP/s for ``dtype``, HBM bandwidth, and the ridge intensity where they meet."""
    r = Results() if out is None else out
    peak = r.put("peak_flops", gpu.peak_flops(dtype), "flop/s", f"peak compute ({dtype}, dense)")
    bw = r.put("bandwidth", gpu.hbm_bytes_per_s, "byte/s", "memory bandwidth (HBM)")
    r.calc("ridge_intensity", RIDGE, "flop/byte", "ridge point: intensity where the ceilings meet", peak=peak, bw=bw)
    return r


def place(r: Results, flops, nbytes, peak: float, bw: float, prefix: str = "", label: str = "") -> Results:
    """Put an operation of ``flops`` FLOPs moving ``nbytes`` bytes on the roofline: intensity, attainable
    FLOP/s, bound, and its time (T_math, T_mem, their max and sum)."""
    p, lab = prefix, (label + ": " if label else "")
    r.put(p + "flops", flops, "flop", lab + "FLOPs")
    r.put(p + "bytes", nbytes, "byte", lab + "bytes moved to/from HBM")
    i = r.calc(p + "intensity", INTENSITY, "flop/byte", lab + "arithmetic intensity", F=flops, Q=nbytes)
    att = r.calc(p + "attainable_flops", ATTAINABLE, "flop/s", lab + "attainable FLOP/s", peak=peak, I=i, bw=bw)
    r.calc(p + "fraction_of_peak", FRACTION_OF_PEAK, "ratio", lab + "attainable fraction of peak",
           attainable=att, peak=peak)
    t_math = r.calc(p + "t_math_seconds", T_MATH, "s", lab + "T_math (compute time at peak)", F=flops, peak=peak)
    t_mem = r.calc(p + "t_mem_seconds", T_MEM, "s", lab + "T_mem (HBM time at full bandwidth)", Q=nbytes, bw=bw)
    r.calc(p + "time_seconds", T_LOWER, "s", lab + "time at the roof, lower bound max(T_math, T_mem)",
           T_math=t_math, T_mem=t_mem)
    r.calc(p + "time_upper_seconds", T_UPPER, "s", lab + "upper bound T_math + T_mem (no overlap)",
           T_math=t_math, T_mem=t_mem)
    r.put(p + "bound", where(t_math >= t_mem, "compute", "memory"), "str", lab + "bound (which term binds)")
    return r


def place_intensity(r: Results, intensity, peak: float, bw: float) -> Results:
    """An operation given only by its intensity: attainable FLOP/s and bound (no time without a size)."""
    r.put("intensity", intensity, "flop/byte", "arithmetic intensity (given)")
    att = r.calc("attainable_flops", ATTAINABLE, "flop/s", "attainable FLOP/s", peak=peak, I=intensity, bw=bw)
    r.calc("fraction_of_peak", FRACTION_OF_PEAK, "ratio", "attainable fraction of peak", attainable=att, peak=peak)
    r.put("bound", where(intensity >= peak / bw, "compute", "memory"), "str", "bound")
    return r


# ---------------------------------------------------------------------------------------------
# Operation sizes: (FLOPs, bytes) of each modelled operation


def matmul(M, K, N, p: float):
    return MATMUL_F(M=M, K=K, N=N), MATMUL_Q(p=p, M=M, K=K, N=N)


def elementwise(n, p: float, c=1, reads=1):
    return ELEMENTWISE_F(c=c, n=n), ELEMENTWISE_Q(p=p, reads=reads, n=n)


def softmax(M, N, p: float):
    return SOFTMAX_F(M=M, N=N), SOFTMAX_Q(p=p, M=M, N=N)


def layernorm(M, N, p: float):
    return LAYERNORM_F(M=M, N=N), LAYERNORM_Q(p=p, M=M, N=N)


def attention(Z, S, d, p: float, flash: bool, Br=128):
    F = ATTENTION_F(Z=Z, S=S, d=d)
    Q = ATTENTION_FLASH_Q(p=p, Z=Z, S=S, d=d, Br=Br) if flash else ATTENTION_NAIVE_Q(p=p, Z=Z, S=S, d=d)
    return F, Q


# ---------------------------------------------------------------------------------------------
# Memory hierarchy (seed 001 "The GPU Memory Hierarchy"): capacity and bandwidth per tier, nearest first

TIER_SPEEDUP = Formula("bw_near / bw_far")


def hierarchy(gpu: GpuSpec) -> list[dict]:
    """Tiers from registers out to other nodes: name, capacity in bytes (0: not in the preset or not a
    storage tier), bandwidth in bytes/s (0: not in the preset). Totals are over all SMs."""
    sm = gpu.sm_count
    tiers = [
        ("registers", gpu.register_bytes_per_sm * sm, 0.0, "register file, all SMs"),
        ("sram", gpu.sram_bytes_per_sm * sm, gpu.sram_bytes_per_s, "shared memory / L1, all SMs"),
        ("l2", gpu.l2_bytes, gpu.l2_bytes_per_s, "L2 cache"),
        ("hbm", gpu.memory_bytes, gpu.hbm_bytes_per_s, "device memory (HBM/GDDR)"),
        ("nvlink", 0.0, gpu.nvlink_bytes_per_s_unidir, "a peer GPU over NVLink/ICI, one way"),
        ("pcie", 0.0, gpu.pcie_bytes_per_s_unidir, "host memory over PCIe, one way"),
        ("network", 0.0, gpu.net_bytes_per_s_unidir, "another node over the network, one way"),
    ]
    return [{"tier": n, "capacity_bytes": float(c), "bytes_per_s": float(b), "description": d}
            for n, c, b, d in tiers]


def add_hierarchy(r: Results, gpu: GpuSpec) -> Results:
    """Each tier's capacity and bandwidth, and the speedup of holding data one tier closer (the ratio of
    bandwidths of adjacent known tiers). Unknown figures are None."""
    tiers = hierarchy(gpu)
    for t in tiers:
        n = t["tier"]
        if n in ("registers", "sram", "l2", "hbm"):
            r.put(f"tier_{n}_bytes", t["capacity_bytes"] or None, "byte", f"{t['description']}: capacity")
        if n != "registers":
            r.put(f"tier_{n}_bytes_per_s", t["bytes_per_s"] or None, "byte/s", f"{t['description']}: bandwidth")
    known = [t for t in tiers if t["bytes_per_s"]]
    for near, far in zip(known, known[1:]):
        r.calc(f"speedup_{near['tier']}_over_{far['tier']}", TIER_SPEEDUP, "factor",
               f"speedup of data in {near['tier']} instead of {far['tier']}",
               bw_near=near["bytes_per_s"], bw_far=far["bytes_per_s"])
    return r


TRAFFIC_RATIO = Formula("naive / flash")

# ---------------------------------------------------------------------------------------------
# A model's inference phases (seed 000 ch. 4 and 7; seed 003 App. D)

# Decode at batch B: T_math = B·f1/π and T_mem = (W_r + B·k)/β, with f1 the FLOPs and k the cache bytes
# (read + written) of one sequence's step, W_r the weights read. They cross at B* = (W_r/β)/(f1/π − k/β);
# when k/β ≥ f1/π (long contexts: attention reads as many bytes as it does FLOPs) decode never turns
# compute-bound. MoE: W_r counts every expert (all are touched long before B*).
CROSSOVER = Formula("where(f1 / peak > k / bw, ceil(W_r / bw / max(f1 / peak - k / bw, 1e-300)), inf)")
KV_FIT = Formula("max(0, floor((u * M - W) / per_seq))")


def model_phases(r: Results, spec, gpu: GpuSpec, batch, seq, *, dtype: str = "bf16", weight_dtype: str = "bf16",
                 group_size: int = 0, kv_dtype: str = "bf16", mem_util=0.9, main: str = "decode") -> Results:
    """Prefill of ``seq`` prompt tokens and one decode step over ``seq`` cached tokens, for ``batch``
    sequences, placed on the roofline at 100% of peak and bandwidth (core.serve.step: FLOPs from
    flops.forward_breakdown, cache bytes from kv.kv_cache_bytes). The ``main`` phase's keys are unprefixed;
    the other's carry its name. Adds the decode crossover batch and the batch where the cache stops fitting."""
    from llmcalc.core.kv import kv_cache_bytes
    from llmcalc.core.quant import weight_parts
    from llmcalc.core.serve import step

    peak, bw = gpu.peak_flops(dtype), gpu.hbm_bytes_per_s
    kw = dict(weight_dtype=weight_dtype, kv_dtype=kv_dtype, group_size=group_size, mbu=1.0, mfu=1.0,
              dtype=dtype)
    phases = {"prefill": step(spec, gpu, batch, 0, seq, logits=1, **kw),
              "decode": step(spec, gpu, batch, seq, 1, **kw)}
    other = "prefill" if main == "decode" else "decode"
    for name in (main, other):
        s = phases[name]
        place(r, s["flops"].value, s["bytes"].value, peak, bw, prefix="" if name == main else name + "_",
              label=name + (" (B·S prompt tokens)" if name == "prefill" else " step (1 token per sequence)"))
    d = phases["decode"]
    r.put("weights_read_bytes", d["weights_read_bytes"].value, "byte", "decode: weights read per step")
    r.put("kv_read_bytes", d["kv_read_bytes"].value, "byte", "decode: KV cache read per step")
    one = step(spec, gpu, 1, seq, 1, **kw)
    wp = weight_parts(spec, weight_dtype, group_size=group_size)
    W = wp["total"]
    r.calc("crossover_batch", CROSSOVER, "count", "decode batch where T_math overtakes T_mem (at this length)",
           f1=one["flops"].value, peak=peak, k=one["kv_read_bytes"].value + one["kv_write_bytes"].value, bw=bw,
           W_r=W - wp["gathered"], inf=math.inf)
    kv = r.put("kv_bytes", kv_cache_bytes(spec, batch, seq, kv_dtype), "byte", "KV cache of the batch at S")
    r.calc("max_batch", KV_FIT, "count", "batch where the KV cache stops fitting beside the weights",
           u=mem_util, M=gpu.device_memory_bytes, W=W, per_seq=kv_cache_bytes(spec, 1, seq, kv_dtype))
    r.put("fits", (W + kv) <= mem_util * gpu.device_memory_bytes, "bool", "weights + cache fit (mem-util × memory)")
    return r


# ---------------------------------------------------------------------------------------------
# One run of `llmcalc roofline`: the GPU's ceilings and, by mode, one operation or a model's phases

ROWWISE = ("elementwise", "softmax", "layernorm")


def run(mode: str, v: dict, gpu: GpuSpec, dtype: str, *, spec=None, heads: int = 1, head_dim: int = 128,
        phase: str = "decode", weight_dtype: str = "bf16", group_size: int = 0, kv_dtype: str = "bf16",
        tiers: bool = False) -> tuple[Results, list[tuple[str, object]], list[str]]:
    """``mode``: "intensity", "matmul", one of ROWWISE, "attention", "model" or "ceilings"; ``v`` holds its
    inputs (numbers or arrays of one sweep). Returns the results, the points to draw (label, intensity) and
    notes."""
    from llmcalc.core.dtypes import dtype_bytes

    peak, bw, p = gpu.peak_flops(dtype), gpu.hbm_bytes_per_s, dtype_bytes(dtype)
    r, notes = ceilings(gpu, dtype), []
    if mode == "intensity":
        place_intensity(r, v["intensity"], peak, bw)
        points = [("op", v["intensity"])]
    elif mode in ("matmul",) + ROWWISE:
        if mode == "matmul":
            F, Q = matmul(v["m"], v["k"], v["n"], p)
        elif mode == "elementwise":
            F, Q = elementwise(v["m"] * v["n"], p, v["flops_per_element"], v["inputs"])
        else:
            F, Q = (softmax if mode == "softmax" else layernorm)(v["m"], v["n"], p)
        place(r, F, Q, peak, bw, label=mode)
        points = [(mode, r["intensity"].value)]
    elif mode == "attention":
        Z = v["batch"] * heads
        F, Q = attention(Z, v["seq"], head_dim, p, flash=True, Br=v["tile"])
        place(r, F, Q, peak, bw, label="flash attention")
        Fn, Qn = attention(Z, v["seq"], head_dim, p, flash=False)
        place(r, Fn, Qn, peak, bw, prefix="naive_", label="naive attention")
        r.calc("flash_traffic_reduction", TRAFFIC_RATIO, "factor", "HBM bytes: naive ÷ flash", naive=Qn, flash=Q)
        from llmcalc.core.flash import flash_bound   # with SRAM and L2: what kernels can reach (FA2/FA3 below it)
        flash_bound(gpu, Z=Z, S=v["seq"], d=head_dim, p=p, peak=peak, Br=v["tile"], out=r, prefix="flash_l2_")
        points = [("flash attn", r["intensity"].value), ("naive attn", r["naive_intensity"].value)]
    elif mode == "model":
        model_phases(r, spec, gpu, v["batch"], v["seq"], dtype=dtype, weight_dtype=weight_dtype,
                     group_size=group_size, kv_dtype=kv_dtype, mem_util=v["mem_util"], main=phase)
        other = "prefill" if phase == "decode" else "decode"
        points = [(phase, r["intensity"].value), (other, r[other + "_intensity"].value)]
        notes += phase_notes(r, batch_swept=hasattr(v["batch"], "shape"), seq_swept=hasattr(v["seq"], "shape"))
    else:
        points = []
    if tiers or mode == "ceilings":
        add_hierarchy(r, gpu)
        missing = [t["tier"] for t in hierarchy(gpu) if not t["bytes_per_s"] and t["tier"] in ("sram", "l2")]
        if missing and tiers:
            notes.append(f"{gpu.name} preset has no bandwidth for: {', '.join(missing)}")
    return r, points, notes


def first_value(value) -> float | None:
    """A result's (first) value as a finite float, else None."""
    try:
        x = float(value.reshape(-1)[0]) if hasattr(value, "reshape") else float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def phase_notes(r: Results, batch_swept: bool, seq_swept: bool) -> list[str]:
    """What the decode crossover and the cache limit mean for this run."""
    xb, mb = first_value(r["crossover_batch"].value), first_value(r["max_batch"].value)
    if batch_swept:
        msg = (f"decode turns compute-bound at batch {xb:,.0f}" if xb is not None else
               "decode never turns compute-bound at this length: cache reads grow with batch as fast as FLOPs do")
        return [msg + (f"; the KV cache stops fitting beyond batch {mb:,.0f}" if mb is not None else "")]
    if seq_swept or xb is None:
        return []
    msg = f"decode is compute-bound from batch {xb:,.0f} at this length"
    if mb is not None:
        msg += f"; the cache fits up to batch {mb:,.0f}" + (" (crossover out of reach)" if xb > mb else "")
    return [msg]


def table_columns(mode: str, r: Results, batch_swept: bool) -> list[str]:
    """The result columns a sweep's table leads with."""
    if mode == "intensity":
        cols = ["attainable_flops", "fraction_of_peak", "bound"]
    elif mode == "model" and batch_swept:
        cols = ["t_math_seconds", "t_mem_seconds", "bound", "intensity", "kv_bytes", "fits"]
    else:
        cols = ["intensity", "attainable_flops", "bound", "t_math_seconds", "t_mem_seconds", "time_seconds"]
    return [c for c in cols if c in r]
