"""3D parallelism and ZeRO: per-GPU memory, communication, pipeline bubble and step time of a layout, and a
vectorised search over every layout of N GPUs.

A layout splits N GPUs as d (data) × t (tensor) × p (pipeline) (Megatron-LM's rank order: tensor ranks
adjacent, then data, then pipeline), with a ZeRO stage over the d data-parallel ranks, sequence parallelism,
a micro-batch b and a global batch B, so m = B / (d·b) micro-batches per step, recomputation, and v virtual
(interleaved) stages per GPU.

Memory per GPU is train-mem's model (llmcalc.core.memory.training_memory), fed the number of micro-batches
the first stage holds: p under 1F1B, m under GPipe, p·(1 + (p−1)/(p·v)) interleaved (Korthikanti et al. 2022,
arXiv:2205.05198 sec. 4.2.3). Nothing here re-derives a byte of it.

Communication per GPU per step, α-β ring model (Patarasuk & Yuan 2009; seed 003 App. B; seed 002):

- all-reduce of S bytes over n GPUs: each sends 2(n−1)/n·S, in 2(n−1)·α + 2(n−1)/n·S/bw;
  all-gather and reduce-scatter: (n−1)/n·S, in (n−1)·α + (n−1)/n·S/bw; point-to-point: α + S/bw.
- bw and α: NVLink when the group sits inside one node (``gpus_per_node``), the network otherwise.
- DP (Rajbhandari et al. 2020, arXiv:1910.02054 sec. 7): ZeRO-0 all-reduces the gradients once per step
  (2Ψ); ZeRO-1 reduce-scatters them and all-gathers the updated weights (2Ψ); ZeRO-2 reduce-scatters each
  micro-batch's gradients into its shard (DeepSpeed) then all-gathers the weights; ZeRO-3 all-gathers every
  layer's weights in forward and again in backward and reduce-scatters its gradients, per micro-batch (3Ψ).
  Ψ is the parameters the busiest (first) stage's GPU holds before ZeRO: its layers and the embedding, over t.
- TP (Shoeybi et al. 2019, arXiv:1909.08053 sec. 3): two all-reduces of the b·s·h activations per layer in
  forward, two in backward, two more when full recomputation re-runs the forward. With sequence parallelism
  each all-reduce becomes an all-gather plus a reduce-scatter: the same bytes (Korthikanti et al. 2022 sec. 4.2.2).
- PP (Narayanan et al. 2021, arXiv:2104.04473 sec. 4.1): one activation forward and one gradient backward per
  micro-batch per virtual stage, b·s·h/t bytes each with the scatter/gather optimisation.

Pipeline bubble (Huang et al. 2019 GPipe; Narayanan et al. 2021 sec. 2.2): idle time (p−1)/(v·m) of the
ideal time; as a share of the pipeline's time (p−1)/(v·m + p−1), which is (p−1)/(m+p−1) for GPipe and 1F1B.

Step time = compute (hardware FLOPs, recomputation included, at an achievable fraction of the dense peak)
+ TP communication (on the critical path) + bubble + PP point-to-point + the DP communication that does not
overlap the backward pass. MFU = model FLOPs (no recomputation) / (step time · N · peak).

Everything below is evaluated on NumPy arrays of layouts at once: the search is one pass per combination of
the categorical choices (ZeRO stage, recomputation, sequence parallelism), not a loop over layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from llmcalc.core.formula import Formula, Results
from llmcalc.errors import InputError
from llmcalc.spec import GpuSpec, ModelSpec

SCHEDULES = ("1f1b", "gpipe")
ZERO_STAGES = (0, 1, 2, 3)
DEFAULT_COMPUTE_MFU = 0.5          # achievable fraction of dense peak while computing (stated, --compute-mfu)
DEFAULT_NVLINK_LATENCY = 2e-6      # α per ring step inside a node (NCCL over NVLink: ~1-3 µs)
DEFAULT_NET_LATENCY = 5e-6         # α per ring step across nodes (InfiniBand/RoCE: ~3-10 µs)
DEFAULT_BATCH_TOKENS = 2**22       # default global batch: about 4M tokens (GPT-3 used 3.2M, Llama 3 4M-16M)
DEFAULT_MAX_SEQ = 8192             # default --seq: the context length, capped at a pre-training length
SEARCH_MICRO_BATCHES = (1, 2, 4, 8, 16, 32)
SEARCH_MAX_VIRTUAL = 8

# ----------------------------------------------------------------------------------------------
# Formulas. Symbols: N GPUs, d data, t tensor, p pipeline, v virtual stages, b micro-batch, B global batch
# (sequences), s sequence, h hidden, L layers, m micro-batches, a activation bytes, w weight bytes, g gradient
# bytes, Ψ (psi) parameters per GPU before ZeRO, n group size, α latency, bw one-way bytes/s per GPU.

MICRO_BATCHES = Formula("B / (d * b)")
LAYERS_PER_STAGE = Formula("ceil(L / p)")
IN_FLIGHT = Formula("where(gpipe, m, min(p, m) * where(v > 1, 1 + (p - 1) / (p * v), 1))")
# Ring collectives: bytes each GPU sends, and time (α-β model).
ALLREDUCE_BYTES = Formula("2 * (n - 1) / n * size")
GATHER_BYTES = Formula("(n - 1) / n * size")               # all-gather and reduce-scatter alike
ALLREDUCE_SECONDS = Formula("2 * (n - 1) * alpha + 2 * (n - 1) / n * size / bw")
GATHER_SECONDS = Formula("(n - 1) * alpha + (n - 1) / n * size / bw")
P2P_SECONDS = Formula("alpha + size / bw")
# Pipeline bubble.
BUBBLE_FRACTION = Formula("(p - 1) / (v * m + p - 1)")
BUBBLE_RATIO = Formula("(p - 1) / (v * m)")
BUBBLE_SECONDS = Formula("(p - 1) / (v * m) * (t_compute + t_tp)")
# Tensor parallelism: c collectives of b·s·h·a bytes per layer per micro-batch (c = 4, 6 with full recompute).
TP_BYTES = Formula("c * L_s * m * 2 * (t - 1) / t * b * s * h * a")
TP_SECONDS = Formula("c * L_s * m * (2 * (t - 1) * alpha + 2 * (t - 1) / t * b * s * h * a / bw)")
# Pipeline parallelism: 2·v·m point-to-point sends of b·s·h·a/t bytes (scatter/gather).
PP_BYTES = Formula("where(p > 1, 2 * v * m * b * s * h * a / t, 0)")
PP_SECONDS = Formula("where(p > 1, 2 * v * m * (alpha + b * s * h * a / t / bw), 0)")
# Data parallelism by ZeRO stage: bytes each GPU sends per step, and seconds.
DP_BYTES = {
    0: Formula("2 * (d - 1) / d * psi * g"),
    1: Formula("(d - 1) / d * psi * (g + w)"),
    2: Formula("(d - 1) / d * psi * (m * g + w)"),
    3: Formula("m * (d - 1) / d * psi * (2 * w + g)"),
}
DP_GRAD_SECONDS = {      # the gradient part: may overlap the backward pass
    0: Formula("2 * (d - 1) * alpha + 2 * (d - 1) / d * psi * g / bw"),
    1: Formula("(d - 1) * alpha + (d - 1) / d * psi * g / bw"),
    2: Formula("m * ((d - 1) * alpha + (d - 1) / d * psi * g / bw)"),
    3: Formula("m * (L_s * (d - 1) * alpha + (d - 1) / d * psi * g / bw)"),
}
DP_PARAM_SECONDS = {     # the weight all-gathers
    0: Formula("0 * d"),
    1: Formula("(d - 1) * alpha + (d - 1) / d * psi * w / bw"),
    2: Formula("(d - 1) * alpha + (d - 1) / d * psi * w / bw"),
    3: Formula("m * 2 * (L_s * (d - 1) * alpha + (d - 1) / d * psi * w / bw)"),
}
# What the DP communication may hide behind when --overlap-dp: ZeRO-0/1 the last micro-batch's backward,
# ZeRO-2 every backward, ZeRO-3 (prefetching) all the compute.
DP_EXPOSED_OVERLAP = {
    0: Formula("max(t_grad - t_bwd / m, 0) + t_param"),
    1: Formula("max(t_grad - t_bwd / m, 0) + t_param"),
    2: Formula("max(t_grad - t_bwd, 0) + t_param"),
    3: Formula("max(t_grad + t_param - t_compute, 0)"),
}
DP_EXPOSED = Formula("t_grad + t_param")
COMPUTE_SECONDS = Formula("F_hw / N * imbalance / (peak * eta)")
IMBALANCE = Formula("ceil(L / p) * p / L")
BACKWARD_SECONDS = Formula("t_compute * (F_hw - F_fwd) / F_hw")
STEP_SECONDS = Formula("t_compute + t_tp + t_bubble + t_pp + t_dp")
TOKENS_PER_S = Formula("B * s / step")
MFU = Formula("F_model / (step * N * peak)")
HFU = Formula("F_hw / (step * N * peak)")
TRAINING_DAYS = Formula("D / tokens_per_s / 86400")
GPU_HOURS = Formula("D / tokens_per_s * N / 3600")


# ----------------------------------------------------------------------------------------------
# Inputs that are not arrays


@dataclass(frozen=True)
class Cluster:
    """Links between GPUs: one-way bytes/s per GPU and α per ring step, inside a node and across nodes."""

    gpus_per_node: int
    nvlink_bw: float
    net_bw: float
    nvlink_latency: float = DEFAULT_NVLINK_LATENCY
    net_latency: float = DEFAULT_NET_LATENCY

    @classmethod
    def from_gpu(cls, gpu: GpuSpec, gpus_per_node=None, nvlink_bw=None, net_bw=None, nvlink_latency=None,
                 net_latency=None) -> "Cluster":
        g = int(gpus_per_node or gpu.gpus_per_node or 1)
        intra = nvlink_bw or gpu.nvlink_bytes_per_s_unidir or gpu.pcie_bytes_per_s_unidir
        inter = net_bw or gpu.net_bytes_per_s_unidir
        if not intra:
            raise InputError(f"{gpu.name} has no NVLink or PCIe bandwidth in its preset; give --nvlink-bw")
        if not inter:
            raise InputError(f"{gpu.name} has no network bandwidth in its preset; give --net-bw (e.g. 50GB/s "
                             "for one 400 Gb/s NIC per GPU)")
        return cls(g, float(intra), float(inter),
                   DEFAULT_NVLINK_LATENCY if nvlink_latency is None else float(nvlink_latency),
                   DEFAULT_NET_LATENCY if net_latency is None else float(net_latency))


@dataclass(frozen=True)
class Training:
    """The categorical and scalar choices shared by every layout evaluated in one call."""

    seq: Any
    global_batch: Any
    precision: str = "mixed"
    grad_dtype: str | None = None
    optimizer: str = "adamw"
    activations: str = "megatron"
    flash: bool = True
    causal: bool = False
    schedule: str = "1f1b"
    compute_mfu: Any = DEFAULT_COMPUTE_MFU
    overlap_dp: bool = False
    dtype: str | None = None          # dtype of the peak; default from the precision
    tokens: Any = None                # a token budget: training days and GPU-hours
    reserve_bytes: float | None = None
    fragmentation: float | None = None
    method: str = "full"              # full, lora or qlora (core/lora.py): frozen-base memory and FLOPs
    lora_rank: Any = 16
    lora_targets: Any = None


PEAK_DTYPES = {"fp32": ("tf32", "fp32"), "mixed": ("bf16", "fp16"), "bf16": ("bf16", "fp16"),
               "fp8": ("fp8", "bf16", "fp16")}


def peak_dtype(gpu: GpuSpec, precision: str, dtype: str | None = None) -> str:
    """The dtype whose dense peak the matmuls run at: fp8 for fp8 training, bf16 (or fp16) for mixed/bf16,
    TF32 (or plain fp32) for fp32."""
    if dtype:
        gpu.peak_flops(dtype)
        return dtype
    for d in PEAK_DTYPES[precision]:
        if gpu.flops_per_s.get(d):
            return d
    return PEAK_DTYPES[precision][0]


def act_bytes(precision: str) -> int:
    from llmcalc.core.memory import ACT_BYTES
    return ACT_BYTES[precision]


def comm_dtypes(precision: str, grad_dtype: str | None) -> tuple[int, int, int]:
    """(activation, weight, gradient) bytes on the wire: activations and weights in the compute dtype
    (fp8 weights are gathered in bf16), gradients in their own dtype (train-mem's default)."""
    from llmcalc.core.memory import DEFAULT_GRAD, GRAD_BYTES, WEIGHT_BYTES
    a = act_bytes(precision)
    w = max(WEIGHT_BYTES[precision], 2)
    g = GRAD_BYTES[grad_dtype or DEFAULT_GRAD[precision]]
    return a, w, g


# ----------------------------------------------------------------------------------------------
# Layouts


def divisors(n: int) -> list[int]:
    small = [i for i in range(1, int(math.isqrt(n)) + 1) if n % i == 0]
    return sorted(set(small + [n // i for i in small]))


def resolve_layout(gpus: int | None, dp: int | None, tp: int | None, pp: int | None) -> tuple[int, int, int, int]:
    """(N, d, t, p) from what was given. With --gpus N: all three must multiply to N; any two give the third;
    --tp or --pp alone takes the other as 1 and data parallelism for the rest; none is pure data
    parallelism. Without --gpus, N = d·t·p (each defaulting to 1)."""
    if gpus is None:
        d, t, p = dp or 1, tp or 1, pp or 1
        return d * t * p, d, t, p
    N = int(gpus)
    given = {k: v for k, v in (("dp", dp), ("tp", tp), ("pp", pp)) if v is not None}
    if len(given) == 3:
        if dp * tp * pp != N:
            raise InputError(f"--dp {dp} × --tp {tp} × --pp {pp} = {dp * tp * pp:,} GPUs, not --gpus {N:,}; "
                             "give two of them and the third is derived")
        return N, dp, tp, pp
    if dp is None:                       # t and/or p given (or neither): d is the rest
        t, p = tp or 1, pp or 1
        if N % (t * p):
            fix = max(1, round(N / (t * p))) * t * p
            raise InputError(f"--tp {t} × --pp {p} = {t * p} does not divide --gpus {N:,} (data parallelism "
                             f"would be {N / (t * p):g}); try --gpus {fix:,}")
        return N, N // (t * p), t, p
    if N % dp:
        raise InputError(f"--dp {dp} does not divide --gpus {N:,}")
    rest = N // dp
    if tp is not None:
        if rest % tp:
            raise InputError(f"--dp {dp} × --tp {tp} = {dp * tp:,} does not divide --gpus {N:,}")
        return N, dp, tp, rest // tp
    if pp is not None:
        if rest % pp:
            raise InputError(f"--dp {dp} × --pp {pp} = {dp * pp:,} does not divide --gpus {N:,}")
        return N, dp, rest // pp, pp
    if rest == 1:
        return N, dp, 1, 1
    raise InputError(f"--gpus {N:,} with --dp {dp} leaves {rest} GPUs per replica: say how to split them with "
                     "--tp or --pp")


def default_global_batch(seq: int, multiple: int = 1) -> int:
    """About 4M tokens (2^22) in sequences of ``seq``, as a multiple of ``multiple`` (d·b)."""
    target = max(1.0, DEFAULT_BATCH_TOKENS / seq)
    return max(1, round(target / multiple)) * multiple


def check_degrees(spec: ModelSpec, t: int | None, p: int | None) -> list[str]:
    """Errors for a tensor or pipeline degree the model cannot take, whatever the GPU count."""
    if t is not None and spec.heads % t:
        ok = [x for x in divisors(spec.heads) if x <= 64]
        raise InputError(f"--tp {t} does not divide the {spec.heads} attention heads of {spec.name}; "
                         f"use one of {', '.join(map(str, ok))}")
    if t is not None and spec.kv_heads % t and t % spec.kv_heads:
        raise InputError(f"--tp {t} neither divides nor is a multiple of the {spec.kv_heads} key/value heads "
                         f"of {spec.name}")
    if p is not None and p > spec.layers:
        raise InputError(f"--pp {p} exceeds the {spec.layers} layers of {spec.name}")
    return []


def check_layout(spec: ModelSpec, N: int, d: int, t: int, p: int, v: int, b: int, B: int, schedule: str,
                 gpus_per_node: int) -> list[str]:
    """Errors (InputError) for a layout that cannot run; returns notes for one that runs with caveats."""
    notes = check_degrees(spec, t, p)
    if t % spec.kv_heads == 0 and t > spec.kv_heads:
        notes.append(f"--tp {t} > {spec.kv_heads} KV heads: each KV head is replicated on {t // spec.kv_heads} "
                     "GPUs (memory counts it split)")
    if v > 1:
        if p == 1:
            raise InputError("--virtual-stages needs --pp > 1 (interleaving splits each GPU's pipeline stage)")
        if spec.layers % (p * v):
            raise InputError(f"--pp {p} × --virtual-stages {v} = {p * v} does not divide the {spec.layers} layers "
                             f"of {spec.name}")
        if schedule == "gpipe":
            raise InputError("--virtual-stages is the interleaved 1F1B schedule; drop --schedule gpipe")
    elif spec.layers % p:
        notes.append(f"--pp {p} does not divide {spec.layers} layers: stages hold up to {math.ceil(spec.layers / p)}; "
                     "the busiest stage sets the pace (compute scaled by ceil(L/p)·p/L)")
    if B % (d * b):
        lo = max(1, B // (d * b)) * d * b
        raise InputError(f"--global-batch {B:,} is not a multiple of dp × micro-batch = {d} × {b} = {d * b:,}; "
                         f"try --global-batch {lo:,} or {lo + d * b:,}")
    m = B // (d * b)
    if v > 1 and m % p:
        raise InputError(f"the interleaved schedule needs the {m} micro-batches to be a multiple of --pp {p}; "
                         f"try --global-batch {max(p, (m // p) * p) * d * b:,}")
    if t > gpus_per_node:
        notes.append(f"--tp {t} spans nodes of {gpus_per_node} GPUs: its all-reduces go over the network")
    return notes


# ----------------------------------------------------------------------------------------------
# One evaluation: arrays of layouts (or scalars) with the categorical choices fixed


def _np():
    import numpy as np
    return np


def _within(group, stride, G):
    """A group of ``group`` ranks at stride ``stride`` sits in one node of G GPUs."""
    from llmcalc.core.formula import where
    return where(group * stride <= G, 1, 0)


def _finetune(run: Training) -> dict:
    return dict(method=run.method, lora_rank=run.lora_rank, lora_targets=run.lora_targets)


def evaluate(spec: ModelSpec, gpu: GpuSpec, cluster: Cluster, run: Training, *, dp, tp, pp, micro_batch,
             virtual=1, zero: int = 0, recompute: str = "none", sp: bool = False) -> Results:
    """Memory, communication, bubble and step time of layouts (d, t, p, b, v: numbers or NumPy arrays of one
    shape); ``zero``, ``recompute`` and ``sp`` are one choice each. Keys: INTERFACE.md's ``parallel`` keys
    first, then the breakdown."""
    from llmcalc.core.flops import training_step_flops
    from llmcalc.core.formula import where
    from llmcalc.core.memory import add_gpu_fit, training_memory, DEFAULT_FRAGMENTATION, DEFAULT_RESERVE_BYTES

    d, t, p, b, v = dp, tp, pp, micro_batch, virtual
    B, s = run.global_batch, run.seq
    G = cluster.gpus_per_node
    N = d * t * p
    L, h = spec.layers, spec.hidden
    a, w, g = comm_dtypes(run.precision, run.grad_dtype)
    dtype = peak_dtype(gpu, run.precision, run.dtype)
    peak = gpu.peak_flops(dtype)
    gpipe = run.schedule == "gpipe"

    lay = Results()
    m = lay.calc("micro_batches", MICRO_BATCHES, "count", "micro-batches per step per pipeline", B=B, d=d, b=b)
    L_s = lay.calc("layers_per_stage", LAYERS_PER_STAGE, "count", "layers on the busiest pipeline stage", L=L, p=p)
    in_flight = lay.calc("in_flight_microbatches", IN_FLIGHT, "count",
                         "micro-batches whose activations stage 1 holds (1F1B: p; GPipe: m; interleaved: "
                         "p·(1 + (p−1)/(p·v)))", gpipe=gpipe, m=m, p=p, v=v)

    # Memory: train-mem's model, per GPU, on the busiest (first) stage.
    mem = training_memory(spec, b, s, precision=run.precision, grad_dtype=run.grad_dtype, optimizer=run.optimizer,
                          activations=run.activations, flash=run.flash, recompute=recompute, zero=zero, dp=d, tp=t,
                          pp=p, sp=sp, in_flight_microbatches=in_flight, **_finetune(run))
    add_gpu_fit(mem, gpu.device_memory_bytes,
                DEFAULT_RESERVE_BYTES if run.reserve_bytes is None else run.reserve_bytes,
                DEFAULT_FRAGMENTATION if run.fragmentation is None else run.fragmentation)

    # Compute: hardware FLOPs (recomputation included) of the whole step, split over N GPUs.
    fl = training_step_flops(spec, B, s, causal=run.causal, recompute=recompute, **_finetune(run))
    F_hw, F_model, F_fwd = fl["hardware_flops"].value, fl["training_flops"].value, fl["forward_flops"].value
    r = Results()
    imbalance = r.calc("stage_imbalance", IMBALANCE, "factor", "busiest stage's layers / mean (ceil(L/p)·p/L)",
                       L=L, p=p)
    t_compute = r.calc("compute_seconds", COMPUTE_SECONDS, "s",
                       "compute: hardware FLOPs per GPU at the achievable fraction of peak",
                       F_hw=F_hw, N=N, imbalance=imbalance, peak=peak, eta=run.compute_mfu)
    t_bwd = BACKWARD_SECONDS(t_compute=t_compute, F_hw=F_hw, F_fwd=F_fwd)

    # Tensor parallelism.
    c = 6 if recompute == "full" else 4
    tp_in = _within(t, 1, G)
    tp_bw = where(tp_in == 1, cluster.nvlink_bw, cluster.net_bw)
    tp_alpha = where(tp_in == 1, cluster.nvlink_latency, cluster.net_latency)
    t_tp = r.calc("tp_comm_seconds", TP_SECONDS, "s",
                  f"TP: {c} all-reduces per layer per micro-batch" + (" (as all-gather + reduce-scatter, SP)" if sp else ""),
                  c=c, L_s=L_s, m=m, t=t, alpha=tp_alpha, b=b, s=s, h=h, a=a, bw=tp_bw)

    # Pipeline parallelism.
    pp_in = _within(p, d * t, G)
    pp_bw = where(pp_in == 1, cluster.nvlink_bw, cluster.net_bw)
    pp_alpha = where(pp_in == 1, cluster.nvlink_latency, cluster.net_latency)
    t_pp = r.calc("pp_comm_seconds", PP_SECONDS, "s", "PP: activations forward, gradients backward, per micro-batch",
                  p=p, v=v, m=m, alpha=pp_alpha, b=b, s=s, h=h, a=a, t=t, bw=pp_bw)
    bubble = r.calc("bubble_seconds", BUBBLE_SECONDS, "s", "pipeline bubble: (p−1)/(v·m) of the stage's work",
                    p=p, v=v, m=m, t_compute=t_compute, t_tp=t_tp)

    # Data parallelism over the parameters the busiest stage holds before ZeRO (Ψ: its layers and embedding).
    psi = mem["params_per_gpu"].value
    psi_t = mem["trainable_params_per_gpu"].value       # LoRA: gradients and updates are the adapters' only
    dp_in = _within(d, t, G)
    dp_bw = where(dp_in == 1, cluster.nvlink_bw, cluster.net_bw)
    dp_alpha = where(dp_in == 1, cluster.nvlink_latency, cluster.net_latency)
    t_grad = r.calc("dp_grad_comm_seconds", DP_GRAD_SECONDS[zero], "s",
                    "DP gradients: " + ("all-reduce" if zero == 0 else "reduce-scatter")
                    + (" per micro-batch" if zero >= 2 else " once per step"),
                    d=d, alpha=dp_alpha, psi=psi_t, g=g, bw=dp_bw, m=m, L_s=L_s)
    t_param = r.calc("dp_param_comm_seconds", DP_PARAM_SECONDS[zero], "s",
                     {0: "DP weights: none (replicated)", 1: "DP weights: all-gather after the update",
                      2: "DP weights: all-gather after the update",
                      3: "DP weights: per-layer all-gathers, forward and backward, per micro-batch"}[zero],
                     d=d, alpha=dp_alpha, psi=psi if zero == 3 else psi_t, w=w, bw=dp_bw, m=m, L_s=L_s)
    r.calc("dp_comm_seconds", DP_EXPOSED, "s", f"DP (ZeRO-{zero}): all of it", t_grad=t_grad, t_param=t_param)
    if run.overlap_dp:
        t_dp = r.calc("dp_comm_exposed_seconds", DP_EXPOSED_OVERLAP[zero], "s",
                      "DP: what the backward pass does not hide", t_grad=t_grad, t_param=t_param, t_bwd=t_bwd,
                      m=m, t_compute=t_compute)
    else:
        t_dp = r.calc("dp_comm_exposed_seconds", DP_EXPOSED, "s", "DP: not overlapped (--overlap-dp to hide it)",
                      t_grad=t_grad, t_param=t_param)

    step = r.calc("step_seconds", STEP_SECONDS, "s", "step time", t_compute=t_compute, t_tp=t_tp, t_bubble=bubble,
                  t_pp=t_pp, t_dp=t_dp)
    tps = r.calc("tokens_per_second", TOKENS_PER_S, "token/s", "training tokens per second (all GPUs)", B=B, s=s, step=step)
    r.calc("mfu", MFU, "ratio", "MFU: model FLOPs per second / (N · peak)", F_model=F_model, step=step, N=N,
           peak=peak)
    r.calc("hfu", HFU, "ratio", "HFU: hardware FLOPs (recomputation too) per second / (N · peak)", F_hw=F_hw,
           step=step, N=N, peak=peak)
    if run.tokens is not None:
        r.calc("training_days", TRAINING_DAYS, "days", "days to train the token budget", D=run.tokens,
               tokens_per_s=tps)
        r.calc("gpu_hours", GPU_HOURS, "h", "GPU-hours for the token budget", D=run.tokens, tokens_per_s=tps, N=N)

    # Assemble: INTERFACE.md's keys first.
    out = Results()
    for k in ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "total_bytes", "fits"):
        out[k] = mem[k]
    out.calc("bubble_fraction", BUBBLE_FRACTION, "ratio", "pipeline bubble share of the schedule, (p−1)/(v·m+p−1)",
             p=p, v=v, m=m)
    out.calc("dp_comm_bytes", DP_BYTES[zero], "byte", f"DP bytes sent per GPU per step (ZeRO-{zero})",
             d=d, psi=psi_t if zero < 3 else psi, g=g, w=w, m=m)
    out.calc("tp_comm_bytes", TP_BYTES, "byte", "TP bytes sent per GPU per step", c=c, L_s=L_s, m=m, t=t, b=b, s=s,
             h=h, a=a)
    out.calc("pp_comm_bytes", PP_BYTES, "byte", "PP bytes sent per GPU per step", p=p, v=v, m=m, b=b, s=s, h=h, a=a,
             t=t)
    for k in ("step_seconds", "mfu", "tokens_per_second", "hfu", "training_days", "gpu_hours", "compute_seconds",
              "tp_comm_seconds", "bubble_seconds", "pp_comm_seconds", "dp_comm_seconds", "dp_comm_exposed_seconds"):
        if k in r:
            out[k] = r[k]
    out.calc("bubble_ratio", BUBBLE_RATIO, "factor", "bubble time / ideal time, (p−1)/(v·m) (Narayanan et al.)",
             p=p, v=v, m=m)
    for k in ("gpu_memory_bytes", "usable_memory_bytes", "headroom_bytes"):
        out[k] = mem[k]
    for k in ("micro_batches", "layers_per_stage", "in_flight_microbatches"):
        out[k] = lay[k]
    out["stage_imbalance"] = r["stage_imbalance"]
    out["params_per_gpu"] = mem["params_per_gpu"]
    out["dp_grad_comm_seconds"] = r["dp_grad_comm_seconds"]
    out["dp_param_comm_seconds"] = r["dp_param_comm_seconds"]
    out.put("hardware_flops", F_hw, "flop", "hardware FLOPs per step (all GPUs)")
    out.put("model_flops", F_model, "flop", "model FLOPs per step (all GPUs)")
    out.put("peak_flops", peak, "flop/s", f"dense {dtype} peak per GPU")
    return out


# ----------------------------------------------------------------------------------------------
# What bounds a layout


BOUND_TERMS = (("compute", "compute_seconds"), ("bubble", "bubble_seconds"), ("TP comm", "tp_comm_seconds"),
               ("PP comm", "pp_comm_seconds"), ("DP comm", "dp_comm_exposed_seconds"))


def bound(r: Results, i: int | None = None) -> str:
    """The largest overhead on top of compute and its share of the step, and the memory headroom."""
    def val(k):
        x = r[k].value
        return float(x[i]) if i is not None and hasattr(x, "shape") and x.ndim else float(x)

    step = val("step_seconds")
    shares = {name: val(k) / step for name, k in BOUND_TERMS}
    over = max(((n, s) for n, s in shares.items() if n != "compute"), key=lambda x: x[1])
    headroom = val("headroom_bytes") / val("usable_memory_bytes") if val("usable_memory_bytes") > 0 else 0.0
    if over[1] < 0.05:
        text = f"compute-bound ({shares['compute']:.0%} of the step)"
    else:
        text = f"{over[0]} {over[1]:.0%} of the step (compute {shares['compute']:.0%})"
    if headroom < 0:
        text += f"; does not fit (short by {-val('headroom_bytes') / 2**30:.1f} GiB)"
    elif headroom < 0.05:
        text += f"; memory-tight ({headroom:.0%} free)"
    return text


# ----------------------------------------------------------------------------------------------
# The search


@dataclass
class SearchSpace:
    """What the search may vary. ``None`` = every value; a tuple = only those."""

    tp: tuple | None = None
    pp: tuple | None = None
    dp: tuple | None = None
    zero: tuple | None = None
    micro_batch: tuple | None = None
    recompute: tuple | None = None
    sp: tuple | None = None
    virtual: tuple | None = None
    uneven_pp: bool = False


@dataclass
class SearchResult:
    results: Results                  # the ranked rows (arrays), best first, fitting layouts only
    layouts: dict[str, Any]           # tp, pp, dp, zero, micro_batch, recompute, sp, virtual_stages arrays
    candidates: int = 0
    fitting: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def enumerate_layouts(spec: ModelSpec, N: int, global_batch: int, gpus_per_node: int, schedule: str,
                      space: SearchSpace) -> dict[str, Any]:
    """Every (t, p, d, b, v) layout of N GPUs as NumPy arrays: t within a node and dividing the heads, p
    dividing the layers (any p ≤ L with ``uneven_pp``), d the rest; b dividing B/d; v dividing L/p."""
    np = _np()
    L = spec.layers
    tps = [x for x in divisors(N) if x <= gpus_per_node and spec.heads % x == 0
           and (spec.kv_heads % x == 0 or x % spec.kv_heads == 0)]
    if space.tp is not None:            # asked for explicitly: allowed across nodes too
        tps = [x for x in space.tp if N % x == 0 and spec.heads % x == 0]
    rows = []
    for t in tps:
        for p in divisors(N // t):
            if p > L or (not space.uneven_pp and L % p) or (space.pp is not None and p not in space.pp):
                continue
            d = N // (t * p)
            if space.dp is not None and d not in space.dp:
                continue
            if global_batch % d:
                continue
            per_replica = global_batch // d
            mbs = space.micro_batch or SEARCH_MICRO_BATCHES
            for b in mbs:
                if per_replica % b:
                    continue
                m = per_replica // b
                vs = [1]
                if p > 1 and schedule == "1f1b" and L % p == 0 and m % p == 0:
                    vs += [x for x in divisors(L // p) if 1 < x <= SEARCH_MAX_VIRTUAL]
                if space.virtual is not None:
                    vs = [x for x in vs if x in space.virtual]
                for v in vs:
                    rows.append((t, p, d, b, v))
    arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return {"tp": arr[:, 0], "pp": arr[:, 1], "dp": arr[:, 2], "micro_batch": arr[:, 3], "virtual": arr[:, 4]}


def search(spec: ModelSpec, gpu: GpuSpec, cluster: Cluster, run: Training, N: int, space: SearchSpace | None = None,
           top: int | None = 10) -> SearchResult:
    """Evaluate every layout of N GPUs (vectorised), drop those that do not fit, rank by throughput (ties: more
    memory headroom first) and return the ``top`` rows (all when ``top`` is None or 0)."""
    import time

    np = _np()
    space = space or SearchSpace()
    t0 = time.perf_counter()
    base = enumerate_layouts(spec, N, int(run.global_batch), cluster.gpus_per_node, run.schedule, space)
    zeros = space.zero if space.zero is not None else ZERO_STAGES
    recomputes = space.recompute if space.recompute is not None else ("none", "selective", "full")
    sps = space.sp if space.sp is not None else (False, True)
    parts: list[tuple[dict, Results]] = []
    candidates = 0
    for zero in zeros:
        for rec in recomputes:
            for sp in sps:
                sel = base["tp"] > 1 if sp else np.ones_like(base["tp"], dtype=bool)
                if zero > 0:
                    sel = sel & (base["dp"] > 1)          # ZeRO over one GPU is ZeRO-0
                if not sel.any():
                    continue
                lay = {k: a[sel] for k, a in base.items()}
                candidates += int(sel.sum())
                res = evaluate(spec, gpu, cluster, run, dp=lay["dp"], tp=lay["tp"], pp=lay["pp"],
                               micro_batch=lay["micro_batch"], virtual=lay["virtual"], zero=zero, recompute=rec,
                               sp=sp)
                fits = np.asarray(res["fits"].value, dtype=bool)
                if not fits.any():
                    continue
                n = int(fits.sum())
                lay = {k: a[fits] for k, a in lay.items()}
                lay["zero"] = np.full(n, zero, dtype=np.float64)
                lay["recompute"] = np.full(n, rec, dtype=object)
                lay["sp"] = np.full(n, sp, dtype=bool)
                parts.append((lay, _take(res, fits, n)))
    if not parts:
        return SearchResult(Results(), {}, candidates, 0, time.perf_counter() - t0)
    lay = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    keys = [k for k in parts[0][1] if all(k in p[1] for p in parts)]
    res = Results()
    for k in keys:
        row = parts[0][1][k]
        res.put(k, np.concatenate([np.broadcast_to(np.asarray(p[1][k].value), (len(p[0]["tp"]),))
                                   for p in parts]), row.unit, row.label, row.note)
    fitting = len(lay["tp"])
    order = np.lexsort((-res["headroom_bytes"].value, res["step_seconds"].value))   # same B·s: fastest first
    if top:
        order = order[:top]
    lay = {k: a[order] for k, a in lay.items()}
    ranked = Results()
    for k, row in res.items():
        ranked.put(k, row.value[order], row.unit, row.label, row.note)
    ranked.put("bound", np.array([bound(ranked, i) for i in range(len(order))], dtype=object), "str",
               "what bounds it")
    ranked.put("why", np.array(why(ranked), dtype=object), "str", "why it ranks here")
    return SearchResult(ranked, lay, candidates, fitting, time.perf_counter() - t0)


def _take(res: Results, mask, n: int) -> Results:
    np = _np()
    out = Results()
    for k, row in res.items():
        val = row.value
        if hasattr(val, "shape") and getattr(val, "ndim", 0) and val.shape[0] == mask.shape[0]:
            val = val[mask]
        else:
            val = np.broadcast_to(np.asarray(val), (n,))
        out.put(k, val, row.unit, row.label, row.note)
    return out


LAYOUT_KEYS = ("tp", "pp", "dp", "zero", "micro_batch", "virtual", "recompute", "sp")


def layout_text(tp, pp, dp, zero, micro_batch, virtual, recompute, sp) -> str:
    """``tp8 pp2×v7 dp1024 zero2 b1 full-recompute sp``: one layout on one line."""
    parts = [f"tp{int(tp)}", f"pp{int(pp)}" + (f"×v{int(virtual)}" if virtual > 1 else ""), f"dp{int(dp)}",
             f"zero{int(zero)}", f"b{int(micro_batch)}"]
    if recompute != "none":
        parts.append("recomp:" + ("sel" if recompute == "selective" else recompute))
    if sp:
        parts.append("sp")
    return " ".join(parts)


def why(r: Results) -> list[str]:
    """For each ranked row: the best says what it spends its step on; the others say which term costs them
    the most time against the best."""
    terms = [("compute", "compute_seconds"), ("bubble", "bubble_seconds"), ("TP comm", "tp_comm_seconds"),
             ("PP comm", "pp_comm_seconds"), ("DP comm", "dp_comm_exposed_seconds")]
    n = len(r["step_seconds"].value)
    out = []
    for i in range(n):
        step = float(r["step_seconds"].value[i])
        if i == 0:
            free = float(r["headroom_bytes"].value[0])
            parts = sorted(((float(r[k].value[0]) / step, name) for name, k in terms if name != "compute"),
                           reverse=True)
            lead = ", ".join(f"{name} {s:.0%}" for s, name in parts[:2] if s >= 0.005)
            out.append(f"fastest; {'overheads: ' + lead if lead else 'compute-bound'}; {free / 2**30:.0f} GiB free")
            continue
        best = float(r["step_seconds"].value[0])
        deltas = sorted(((float(r[k].value[i]) - float(r[k].value[0]), name) for name, k in terms), reverse=True)
        worst = deltas[0]
        slower = step / best - 1
        if slower < 0.0005:
            more = (float(r["headroom_bytes"].value[i]) - float(r["headroom_bytes"].value[0])) / 2**30
            out.append(f"ties #1 ({slower:+.2%}); {abs(more):.1f} GiB {'more' if more > 0 else 'less'} free")
        else:
            out.append(f"{slower:+.1%}: more {worst[1]} (+{_ms(worst[0])})")
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.2f} ms"
