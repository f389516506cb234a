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

# ----------------------------------------------------------------------------------------------
# Formulas. Symbols: N GPUs, d data, t tensor, p pipeline, v virtual stages, b micro-batch, B global batch
# (sequences), s sequence, h hidden, L layers, m micro-batches, a activation bytes, w weight bytes, g gradient
# bytes, Ψ (psi) parameters per GPU before ZeRO, n group size, α latency, bw one-way bytes/s per GPU.

MICRO_BATCHES = Formula("B / (d * b)")
LAYERS_PER_STAGE = Formula("ceil(L / p)")
IN_FLIGHT = Formula("where(gpipe, m, min(p, m) * where(v > 1, 1 + (p - 1) / (p * v), 1))")
# Collectives are core/comm.py's: ring bytes, and hierarchical (rail-aligned) times over r ranks inside a node
# and k nodes (r·k = the group), NVLink inside, every GPU's own network rail across.
from llmcalc.core import comm as _c  # noqa: E402
ALLREDUCE_BYTES, GATHER_BYTES = _c.ALLREDUCE_BYTES, _c.GATHER_BYTES
ALLREDUCE_SECONDS, GATHER_SECONDS, P2P_SECONDS = _c.ALLREDUCE_SECONDS, _c.GATHER_SECONDS, _c.P2P_SECONDS
_LINKS = dict(g="r", k="k", bw_in="bw_in", bw_out="bw_out", a_in="a_in", a_out="a_out")


def _ar(size: str) -> str:
    return _c.hier_allreduce_seconds_expr(size, **_LINKS)


def _ag(size: str) -> str:
    return _c.hier_gather_seconds_expr(size, **_LINKS)


# Pipeline bubble.
BUBBLE_FRACTION = Formula("(p - 1) / (v * m + p - 1)")
BUBBLE_RATIO = Formula("(p - 1) / (v * m)")
BUBBLE_SECONDS = Formula("(p - 1) / (v * m) * (t_compute + t_tp)")
# Tensor parallelism: c collectives of b·s·h·a bytes per layer per micro-batch (c = 4, 6 with full recompute).
TP_BYTES = Formula(f"c * L_s * m * {_c.allreduce_bytes_expr('t', 'b * s * h * a')}")
TP_SECONDS = Formula(f"c * L_s * m * ({_ar('b * s * h * a')})")
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
    0: Formula(_ar("psi * g")),
    1: Formula(_ag("psi * g")),
    2: Formula(f"m * ({_ag('psi * g')})"),
    3: Formula(f"m * L_s * ({_ag('psi * g / L_s')})"),          # one reduce-scatter per layer
}
DP_PARAM_SECONDS = {     # the weight all-gathers
    0: Formula("0 * d"),
    1: Formula(_ag("psi * w")),
    2: Formula(_ag("psi * w")),
    3: Formula(f"m * 2 * L_s * ({_ag('psi * w / L_s')})"),      # per layer, forward and backward
}
# What the DP communication may hide behind when --overlap-dp: the gradient reduction, ZeRO-0/1 the last
# micro-batch's backward, ZeRO-2 every backward; the weight all-gather of ZeRO-1/2 the next step's first
# forward (Megatron-Core's --overlap-param-gather); ZeRO-3/FSDP prefetches the next layer's weights behind
# the current layer's compute, so all but each micro-batch's first-layer gather hides behind all the compute.
DP_EXPOSED_OVERLAP = {
    0: Formula("max(t_grad - t_bwd / m, 0) + t_param"),
    1: Formula("max(t_grad - t_bwd / m, 0) + max(t_param - (t_compute - t_bwd) / m, 0)"),
    2: Formula("max(t_grad - t_bwd, 0) + max(t_param - (t_compute - t_bwd) / m, 0)"),
    3: Formula("t_param / (2 * L_s) + max(t_grad + t_param * (1 - 1 / (2 * L_s)) - t_compute, 0)"),
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
        inter = net_bw or network_bw_per_gpu(gpu, g)
        if not intra:
            raise InputError(f"{gpu.name} has no NVLink or PCIe bandwidth in its preset; give --nvlink-bw")
        if not inter:
            raise InputError(f"{gpu.name} has no network bandwidth in its preset; give --net-bw (e.g. 50GB/s "
                             "for one 400 Gb/s NIC per GPU)")
        return cls(g, float(intra), float(inter),
                   DEFAULT_NVLINK_LATENCY if nvlink_latency is None else float(nvlink_latency),
                   DEFAULT_NET_LATENCY if net_latency is None else float(net_latency))

    def links(self, n, stride) -> dict[str, Any]:
        """The symbols of core/comm.py's hierarchical collectives for a group of n ranks ``stride`` apart: r
        ranks inside a node, k nodes, and each side's bandwidth and latency."""
        from llmcalc.core.comm import ranks_per_node
        r, k = ranks_per_node(n, stride, self.gpus_per_node)
        return dict(r=r, k=k, bw_in=self.nvlink_bw, bw_out=self.net_bw, a_in=self.nvlink_latency,
                    a_out=self.net_latency)


def network_bw_per_gpu(gpu: GpuSpec, gpus_per_node: int) -> float:
    """One-way network bytes/s each GPU of a node has across nodes: the node's NICs shared by its GPUs
    (nics_per_node × nic_bytes_per_s_unidir / gpus_per_node: one 400 Gb/s NIC per GPU on DGX H100/B200), else
    the preset's per-GPU figure."""
    nics = getattr(gpu, "nics_per_node", 0) or 0
    nic_bw = getattr(gpu, "nic_bytes_per_s_unidir", 0.0) or 0.0
    if nics and nic_bw:
        return nics * nic_bw / gpus_per_node
    return gpu.net_bytes_per_s_unidir


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


def tp_fits(spec: ModelSpec, t: int) -> bool:
    """Whether the model's heads take tensor parallelism t (kv.check_tp's rule, the one copy of it)."""
    from llmcalc.core.kv import check_tp
    try:
        check_tp(spec, t)
    except InputError:
        return False
    return True


def check_degrees(spec: ModelSpec, t: int | None, p: int | None) -> list[str]:
    """Errors for a tensor or pipeline degree the model cannot take, whatever the GPU count."""
    if t is not None and not tp_fits(spec, t):
        from llmcalc.core.kv import check_tp
        ok = [x for x in divisors(spec.heads) if x <= 64 and tp_fits(spec, x)]
        try:
            check_tp(spec, t)
        except InputError as e:
            raise InputError(f"{e}; use one of {', '.join(map(str, ok))}") from None
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
                          pp=p, sp=sp, in_flight_microbatches=in_flight)
    add_gpu_fit(mem, gpu.memory_bytes,
                DEFAULT_RESERVE_BYTES if run.reserve_bytes is None else run.reserve_bytes,
                DEFAULT_FRAGMENTATION if run.fragmentation is None else run.fragmentation)

    # Compute: hardware FLOPs (recomputation included) of the whole step, split over N GPUs.
    fl = training_step_flops(spec, B, s, causal=run.causal, recompute=recompute)
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
    t_tp = r.calc("tp_comm_seconds", TP_SECONDS, "s",
                  f"TP: {c} all-reduces per layer per micro-batch" + (" (as all-gather + reduce-scatter, SP)" if sp else ""),
                  c=c, L_s=L_s, m=m, b=b, s=s, h=h, a=a, **cluster.links(t, 1))

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
    dp_links = cluster.links(d, t)
    t_grad = r.calc("dp_grad_comm_seconds", DP_GRAD_SECONDS[zero], "s",
                    "DP gradients: " + ("all-reduce" if zero == 0 else "reduce-scatter")
                    + (" per micro-batch" if zero >= 2 else " once per step"),
                    psi=psi, g=g, m=m, L_s=L_s, **dp_links)
    t_param = r.calc("dp_param_comm_seconds", DP_PARAM_SECONDS[zero], "s",
                     {0: "DP weights: none (replicated)", 1: "DP weights: all-gather after the update",
                      2: "DP weights: all-gather after the update",
                      3: "DP weights: per-layer all-gathers, forward and backward, per micro-batch"}[zero],
                     d=d, psi=psi, w=w, m=m, L_s=L_s, **dp_links)
    r.calc("dp_comm_seconds", DP_EXPOSED, "s", f"DP (ZeRO-{zero}): all of it", t_grad=t_grad, t_param=t_param)
    if run.overlap_dp:
        t_dp = r.calc("dp_comm_exposed_seconds", DP_EXPOSED_OVERLAP[zero], "s",
                      "DP: what the compute does not hide (--overlap-dp)", t_grad=t_grad, t_param=t_param,
                      t_bwd=t_bwd, m=m, t_compute=t_compute, L_s=L_s)
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
             d=d, psi=psi, g=g, w=w, m=m)
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
# Layouts of a run (one point or a sweep) and the notes every run states


def _at(value, i: int):
    if value is None:
        return None
    if hasattr(value, "shape") and getattr(value, "ndim", 0) or isinstance(value, (list, tuple)):
        return int(value[i])
    return int(value)


def resolve_points(spec: ModelSpec, values: dict[str, Any], n: int, schedule: str, gpus_per_node: int,
                   batch_given: bool, sp: bool) -> tuple[dict[str, list[int]], list[str]]:
    """Each point's (gpus, dp, tp, pp, global_batch) from what was given (``values``: the grid, None where a
    flag was not given), checked; and the notes the layouts raise."""
    notes: list[str] = []
    cols: dict[str, list[int]] = {k: [] for k in ("gpus", "dp", "tp", "pp", "global_batch")}
    for i in range(n):
        at = {k: _at(values.get(k), i) for k in ("gpus", "dp", "tp", "pp", "micro_batch", "seq", "virtual_stages",
                                                 "global_batch")}
        check_degrees(spec, at["tp"], at["pp"])
        N, d, t, p = resolve_layout(at["gpus"], at["dp"], at["tp"], at["pp"])
        b, v, B = at["micro_batch"], at["virtual_stages"], at["global_batch"]
        if B is None:
            B = default_global_batch(at["seq"], d * b * (p if v > 1 else 1))
        for note in check_layout(spec, N, d, t, p, v, b, B, schedule, gpus_per_node):
            if note not in notes:
                notes.append(note)
        for k, x in zip(cols, (N, d, t, p, B)):
            cols[k].append(x)
    if not batch_given:
        notes.append(f"--global-batch {cols['global_batch'][0]:,} sequences: about {DEFAULT_BATCH_TOKENS / 1e6:.1f}M "
                     "tokens per step by default (set --global-batch)")
    if sp and max(cols["tp"]) == 1:
        notes.append("--sp has no effect without --tp > 1")
    return cols, notes


def run_notes(cluster: Cluster, dtype: str, compute_mfu_given: bool, precision: str, grad_given: bool) -> list[str]:
    """What every run assumes: the links, the compute efficiency, the gradient dtype on the wire."""
    from llmcalc.units import fmt_value
    notes = [f"links: NVLink {fmt_value(cluster.nvlink_bw, 'byte/s')} one way per GPU inside a node of "
             f"{cluster.gpus_per_node}, network {fmt_value(cluster.net_bw, 'byte/s')} per GPU across nodes, "
             f"collectives hierarchical (rail-aligned); {cluster.nvlink_latency * 1e6:g}/"
             f"{cluster.net_latency * 1e6:g} µs per ring step"]
    if not compute_mfu_given:
        notes.append(f"compute at {DEFAULT_COMPUTE_MFU:.0%} of the dense {dtype} peak before bubble and communication "
                     "(set --compute-mfu)")
    if not grad_given and precision in ("mixed", "fp8"):
        notes.append("gradients in bf16, on the wire too (Megatron-LM reduces them in fp32: --grad-dtype fp32)")
    return notes
