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

Context parallelism (cp ranks per sequence, Megatron-Core's order tensor, context, data, pipeline: N = t·cp·d·p)
divides each rank's tokens, activations and TP/PP messages by cp and adds the K/V exchange (ring or all-gather);
expert parallelism (ep of the d·cp ranks) shards the routed experts and adds the MoE all-to-alls. Collectives are
core/comm.py's, hierarchical over NVLink and each GPU's network rail.

Step time = compute (hardware FLOPs, recomputation included, the slowest pipeline stage's share, matmuls at the
compute dtype's peak, at an achievable fraction of it scaled by the GEMMs' efficiency at the per-GPU shapes)
+ the TP, CP and EP communication that is not overlapped + bubble + the PP point-to-point that is not overlapped
+ the DP communication that does not overlap the compute. MFU = model FLOPs (no recomputation) / (step time · N ·
peak).

Everything below is evaluated on NumPy arrays of layouts at once: the search is one pass per combination of
the categorical choices (ZeRO stage, recomputation, sequence parallelism), not a loop over layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from llmcalc.core.formula import Formula, Results, where
from llmcalc.core.precision import COMPUTE_DTYPES, FP8_GEMM_SHARE, compute_dtype, compute_note  # noqa: F401
from llmcalc.errors import InputError
from llmcalc.spec import GpuSpec, ModelSpec

SCHEDULES = ("1f1b", "gpipe")
ZERO_STAGES = (0, 1, 2, 3)
DEFAULT_COMPUTE_MFU = 0.5          # achievable fraction of dense peak while computing (stated, --compute-mfu)
DEFAULT_NVLINK_LATENCY = 2e-6      # α per ring step inside a node (NCCL over NVLink: ~1-3 µs)
DEFAULT_NET_LATENCY = 5e-6         # α per ring step across nodes (InfiniBand/RoCE: ~3-10 µs)
DEFAULT_CAPACITY_FACTOR = 1.0    # MoE: busiest expert GPU's tokens / mean (dropless and balanced, as DeepSeek-V3's
                                   # auxiliary-loss-free routing aims at; Switch Transformer trained at 1.0-1.25)
CP_MODES = ("ring", "allgather")
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
BUBBLE_SECONDS = Formula("(p - 1) / (v * m) * (t_compute + t_tp + t_cp + t_ep)")
# Tensor parallelism: c collectives of b·(s/cp)·h·a bytes per layer per micro-batch (c = 4, 6 with full
# recompute). --tp-overlap (Megatron-Core's --tp-comm-overlap, which pipelines SP's all-gathers and
# reduce-scatters with the GEMMs they feed) hides them up to the time of those GEMMs, never more.
TP_BYTES = Formula(f"c * L_s * m * {_c.allreduce_bytes_expr('t', 'b * s / cp * h * a')}")
TP_SECONDS = Formula(f"c * L_s * m * ({_ar('b * s / cp * h * a')})")
TP_EXPOSED = Formula("where(overlap, max(t_tp - t_gemm, 0), t_tp)")
# Pipeline parallelism: 2·v·m point-to-point sends of b·(s/cp)·h·a/t bytes (scatter/gather).
PP_BYTES = Formula("where(p > 1, 2 * v * m * b * s / cp * h * a / t, 0)")
PP_SECONDS = Formula("where(p > 1, 2 * v * m * (alpha + b * s / cp * h * a / t / bw), 0)")
# --pp-overlap (Megatron-Core's --overlap-p2p-communication, on by default with interleaving and ignored without it,
# megatron/training/arguments.py): each chunk's send and receive run while the next chunk computes, so the sends
# hide behind the compute, up to its time; without interleaving (v = 1) they stay exposed.
PP_EXPOSED = Formula("where(overlap * (v > 1) > 0, max(t_pp - t_compute, 0), t_pp)")
# Context parallelism (Megatron-Core; Liu et al. 2023 ring attention, arXiv:2310.01889; Llama 3, arXiv:2407.21783
# sec. 3.3.2): each rank holds s/cp tokens as two chunks (i and 2cp−1−i: the causal triangle balanced) and needs
# every other rank's K and V, kv = b·(s/cp)·2·K·d_h·a/t bytes per layer (K/t heads, at least one, per TP rank).
# ring: cp−1 point-to-point passes of kv in forward, of kv and dK/dV in backward (3 per pass; 4 with full
# recompute), each overlapped with attention on the chunk in hand. allgather (Llama 3): one all-gather of K/V in
# forward and a reduce-scatter of dK/dV in backward (+1 all-gather with full recompute), exposed.
CP_KV_BYTES = Formula("b * s / cp * 2 * max(K / t, 1) * d_h * a")
CP_BYTES = Formula("x * L_s * m * (cp - 1) * kv")      # ring passes and all-gathers of cp·kv send the same
CP_RING_SECONDS = Formula("x * L_s * m * (cp - 1) * (alpha + kv / bw)")
CP_GATHER_SECONDS = Formula(f"x * L_s * m * ({_ag('cp * kv')})")
CP_EXPOSED = Formula("where(ring, max(t_cp - t_attn, 0), t_cp)")
# Expert parallelism (DeepSpeed-MoE, arXiv:2201.05596; Megatron-Core MoE): each MoE layer sends every token to its
# top-k experts and back: per micro-batch x all-to-alls (dispatch and combine, forward and backward: 4; 6 with
# full recompute) of T·k·h·a bytes, T = b·(s/cp)/t tokens per GPU; (ep−1)/ep of it leaves the GPU.
EP_BUFFER = Formula("b * s / cp / t * k * h * a")
EP_BYTES = Formula(f"x * L_moe * m * {_c.gather_bytes_expr('ep', 'buf')}")
EP_SECONDS = Formula(f"x * L_moe * m * ({_c.ALLTOALL_SECONDS.expr})")
# --ep-overlap: the all-to-alls of one micro-batch run while another computes (DeepSeek-V3's DualPipe,
# arXiv:2412.19437 sec. 3.2.1; Megatron-Core's overlapped MoE dispatch): hidden up to the compute time.
EP_EXPOSED = Formula("where(overlap, max(t_ep - t_compute, 0), t_ep)")
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
# Compute. Stages hold ⌊L/p⌋ or ⌈L/p⌉ layers (with interleaving, chunks of ⌊L/(pv)⌋ or ⌈L/(pv)⌉ summing to the
# same per GPU); the LM head and loss sit on the last stage, which Megatron-LM and Llama 3 give the fewer layers
# (the embedding lookup on the first is no matmul). The slowest stage sets the pace: max(⌈L/p⌉ layers,
# ⌊L/p⌋ layers + head). Matmuls run at the compute dtype's peak (fp8: at FP8_GEMM_SHARE of the bf16
# efficiency); the attention core (QKᵀ, ×V) in bf16. With MoE under --ep the GPU with the busiest experts sets
# the pace: their FLOPs × the capacity factor.
STAGE_FLOPS = Formula("max(ceil(L / p) * (F_hw - F_head) / L, floor(L / p) * (F_hw - F_head) / L + F_head)")
IMBALANCE = Formula("stage * p / F_hw")
SHAPE_FACTOR = Formula("min(e / e_large, 1)")
COMPUTE_SECONDS = Formula("imbalance / N * ((F_hw - F_attn - F_exp + cf * F_exp) / (peak_mm * eta * share) "
                          "+ F_attn / (peak * eta))")
BACKWARD_SECONDS = Formula("t_compute * (F_hw - F_fwd) / F_hw")
STEP_SECONDS = Formula("t_compute + t_tp + t_cp + t_ep + t_bubble + t_pp + t_dp")
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
    tp_overlap: bool = False          # TP communication overlapped with the GEMMs it feeds
    pp_overlap: bool = False          # PP sends overlapped with the next chunk's compute (interleaved schedule)
    ep_overlap: bool = False          # EP all-to-alls overlapped with another micro-batch's compute
    cp_comm: str = "ring"             # context parallelism: ring (Megatron-Core) or allgather (Llama 3)
    compute_dtype: str | None = None  # matmul precision: bf16 or fp8 (default: fp8 under --precision fp8)
    capacity_factor: Any = DEFAULT_CAPACITY_FACTOR
    shape_efficiency: bool = True     # scale compute_mfu by the GEMMs' efficiency at the per-GPU shapes
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


def resolve_layout(gpus: int | None, dp: int | None, tp: int | None, pp: int | None,
                   cp: int = 1) -> tuple[int, int, int, int]:
    """(N, d, t, p) from what was given, N = d·t·p·cp. With --gpus N: all of d, t, p given must multiply (with cp)
    to N; any two give the third; --tp or --pp alone takes the other as 1 and data parallelism for the rest;
    none is pure data parallelism. Without --gpus, N = d·t·p·cp (each defaulting to 1)."""
    c = cp or 1
    times_cp = f" × --cp {c}" if c > 1 else ""
    if gpus is None:
        d, t, p = dp or 1, tp or 1, pp or 1
        return d * t * p * c, d, t, p
    N = int(gpus)
    if N % c:
        raise InputError(f"--cp {c} does not divide --gpus {N:,}")
    M = N // c                           # GPUs per context-parallel rank position
    if dp is not None and tp is not None and pp is not None:
        if dp * tp * pp != M:
            raise InputError(f"--dp {dp} × --tp {tp} × --pp {pp}{times_cp} = {dp * tp * pp * c:,} GPUs, not --gpus "
                             f"{N:,}; give two of them and the third is derived")
        return N, dp, tp, pp
    if dp is None:                       # t and/or p given (or neither): d is the rest
        t, p = tp or 1, pp or 1
        if M % (t * p):
            fix = max(1, round(M / (t * p))) * t * p * c
            raise InputError(f"--tp {t} × --pp {p}{times_cp} = {t * p * c} does not divide --gpus {N:,} (data "
                             f"parallelism would be {M / (t * p):g}); try --gpus {fix:,}")
        return N, M // (t * p), t, p
    if M % dp:
        raise InputError(f"--dp {dp}{times_cp} does not divide --gpus {N:,}")
    rest = M // dp
    for given, name in ((tp, "tp"), (pp, "pp")):
        if given is not None:
            if rest % given:
                raise InputError(f"--dp {dp} × --{name} {given}{times_cp} = {dp * given * c:,} does not divide "
                                 f"--gpus {N:,}")
            return (N, dp, given, rest // given) if name == "tp" else (N, dp, rest // given, given)
    if rest == 1:
        return N, dp, 1, 1
    raise InputError(f"--gpus {N:,} with --dp {dp}{times_cp} leaves {rest} GPUs per replica: say how to split them "
                     "with --tp or --pp")


def default_global_batch(seq: int, multiple: int = 1) -> int:
    """About 4M tokens (2^22) in sequences of ``seq``, as a multiple of ``multiple`` (d·b)."""
    target = max(1.0, DEFAULT_BATCH_TOKENS / seq)
    return max(1, round(target / multiple)) * multiple


def tp_fits(spec: ModelSpec, t: int) -> bool:
    """Whether the model takes tensor parallelism t (core/layout.py's rule, the one copy of it)."""
    from llmcalc.core.layout import tp_allowed
    return bool(tp_allowed(spec, t))


def check_degrees(spec: ModelSpec, t: int | None, p: int | None) -> list[str]:
    """Errors for a tensor or pipeline degree the model cannot take, whatever the GPU count."""
    from llmcalc.core import layout
    if t is not None:
        layout.check_tp(spec, t, "--tp")
    if p is not None:
        layout.check_pp(spec, p, "--pp")
    return []


def check_layout(spec: ModelSpec, N: int, d: int, t: int, p: int, v: int, b: int, B: int, schedule: str,
                 gpus_per_node: int, cp: int = 1, ep: int = 1, seq: int | None = None) -> list[str]:
    """Errors (InputError) for a layout that cannot run; returns notes for one that runs with caveats."""
    L = spec.layers
    notes = check_degrees(spec, t, p)
    if t % spec.kv_heads == 0 and t > spec.kv_heads:
        notes.append(f"--tp {t} > {spec.kv_heads} KV heads: each KV head is replicated on {t // spec.kv_heads} "
                     "GPUs (memory counts it split)")
    if v > 1:
        if p == 1:
            raise InputError("--virtual-stages needs --pp > 1 (interleaving splits each GPU's pipeline stage)")
        if p * v > L + 2:
            raise InputError(f"--pp {p} × --virtual-stages {v} = {p * v} model chunks for {L} layers: each chunk needs "
                             "a layer (the embedding and the loss may stand for one each)")
        if schedule == "gpipe":
            raise InputError("--virtual-stages is the interleaved 1F1B schedule; drop --schedule gpipe")
    if L % (p * v):
        notes.append(f"{L} layers on {p * v} {'model chunks' if v > 1 else 'stages'}: GPUs hold "
                     f"{L // p} or {math.ceil(L / p)} layers, the LM head on a last stage of {L // p}; the slowest "
                     "stage sets the pace")
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
    if cp > 1 and seq is not None and seq % (2 * cp):
        raise InputError(f"--cp {cp} splits each sequence into 2·cp = {2 * cp} chunks (two per rank, for causal load "
                         f"balancing): --seq {seq:,} must be a multiple of {2 * cp}")
    if ep > 1:
        from llmcalc.core.moe import check_ep
        check_ep(spec, ep)
        if (d * cp) % ep:
            raise InputError(f"--ep {ep} must divide dp × cp = {d * cp}: experts are sharded over data-parallel ranks")
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
             virtual=1, zero: int = 0, recompute: str = "none", sp: bool = False, cp=1, ep=1) -> Results:
    """Memory, communication, bubble and step time of layouts (d, t, p, b, v, cp, ep: numbers or NumPy arrays of
    one shape); ``zero``, ``recompute`` and ``sp`` are one choice each. Ranks in Megatron-Core's order: tensor,
    context, data, pipeline; experts sharded over ep of the dp·cp ranks. Keys: INTERFACE.md's ``parallel`` keys
    first, then the breakdown."""
    from llmcalc.core.flops import training_step_flops
    from llmcalc.core.memory import DEFAULT_FRAGMENTATION, DEFAULT_RESERVE_BYTES, add_gpu_fit, training_memory

    d, t, p, b, v = dp, tp, pp, micro_batch, virtual
    B, s = run.global_batch, run.seq
    N = d * t * p * cp
    L, h = spec.layers, spec.hidden
    a, w, g = comm_dtypes(run.precision, run.grad_dtype)
    dtype = peak_dtype(gpu, run.precision, run.dtype)
    peak = gpu.peak_flops(dtype)
    mm_dtype = compute_dtype(gpu, run.precision, run.compute_dtype)
    gpipe = run.schedule == "gpipe"

    lay = Results()
    m = lay.calc("micro_batches", MICRO_BATCHES, "count", "micro-batches per step per pipeline", B=B, d=d, b=b)
    L_s = lay.calc("layers_per_stage", LAYERS_PER_STAGE, "count", "layers on the busiest pipeline stage", L=L, p=p)
    in_flight = lay.calc("in_flight_microbatches", IN_FLIGHT, "count",
                         "micro-batches whose activations stage 1 holds (1F1B: p; GPipe: m; interleaved: "
                         "p·(1 + (p−1)/(p·v)))", gpipe=gpipe, m=m, p=p, v=v)

    # Memory: train-mem's model, per GPU, on the busiest (first) stage; a CP rank holds s/cp tokens, and ZeRO
    # shards over the dp·cp ranks that reduce the gradients (Megatron-Core's distributed optimizer).
    mem = training_memory(spec, b, s / cp, precision=run.precision, grad_dtype=run.grad_dtype, optimizer=run.optimizer,
                          activations=run.activations, flash=run.flash, recompute=recompute, zero=zero, dp=d * cp,
                          tp=t, pp=p, sp=sp, in_flight_microbatches=in_flight, **_finetune(run))
    psi_e = _expert_params_per_gpu(spec, L_s, t)
    if spec.moe:
        _shard_experts(mem, psi_e, ep, zero)
    if mm_dtype == "fp8" and run.precision != "fp8":    # Transformer Engine: FP8 copies and transposes kept
        mem.calc("fp8_weight_cache_bytes", FP8_CACHE, "byte",
                 "FP8 weight copy + transpose (Transformer Engine's default recipe; --precision fp8: none)",
                 psi=mem["params_per_gpu"].value, L_s=L_s, z3=1 if zero == 3 else 0)
    else:
        mem.put("fp8_weight_cache_bytes", 0.0, "byte", "FP8 weight copies (none: " +
                ("fp8 primary weights, --precision fp8)" if mm_dtype == "fp8" else "bf16 compute)"))
    mem.calc("total_bytes", TOTAL_BYTES, "byte", "total per GPU",
             **{k: mem[k + "_bytes"].value for k in ("weights", "gradients", "optimizer", "activations",
                                                       "fp8_weight_cache")})
    add_gpu_fit(mem, gpu.device_memory_bytes,
                DEFAULT_RESERVE_BYTES if run.reserve_bytes is None else run.reserve_bytes,
                DEFAULT_FRAGMENTATION if run.fragmentation is None else run.fragmentation)

    # Compute: hardware FLOPs (recomputation included) of the whole step, the slowest stage's share over its GPUs.
    fl = training_step_flops(spec, B, s, causal=run.causal, recompute=recompute, **_finetune(run))
    F_hw, F_model, F_fwd = fl["hardware_flops"].value, fl["training_flops"].value, fl["forward_flops"].value
    again = 1 if recompute != "none" else 0                          # the recomputed forward, where it applies
    F_head = 3 * fl["lm_head_flops"].value
    F_attn = (3 + again) * fl["attention_score_flops"].value
    F_exp = (3 + (1 if recompute == "full" else 0)) * _routed_expert_flops(spec, B * s)
    r = Results()
    stage = STAGE_FLOPS(L=L, p=p, F_hw=F_hw, F_head=F_head)
    imbalance = r.calc("stage_imbalance", IMBALANCE, "factor",
                       "slowest stage's FLOPs / mean (⌈L/p⌉ layers, or ⌊L/p⌋ + LM head on the last)",
                       stage=stage, p=p, F_hw=F_hw)
    peak_mm = gpu.peak_flops(mm_dtype) if mm_dtype != dtype else peak
    if run.shape_efficiency:
        from llmcalc.core.gemm_efficiency import ETA, layer_efficiency
        shape = r.calc("gemm_shape_factor", SHAPE_FACTOR, "ratio",
                       "GEMM efficiency at this layout's per-GPU shapes ÷ at large ones (core/gemm_efficiency.py)",
                       e=layer_efficiency(gpu, spec, b * s / cp, t), e_large=ETA)
    else:
        shape = r.put("gemm_shape_factor", 1.0, "ratio", "GEMM shape factor (none: --compute-mfu given)")
    t_compute = r.calc("compute_seconds", COMPUTE_SECONDS, "s",
                       f"compute: matmuls at the {mm_dtype} peak, attention core at {dtype}, × the achievable fraction",
                       imbalance=imbalance, N=N, F_hw=F_hw, F_attn=F_attn, F_exp=F_exp,
                       cf=where(ep > 1, run.capacity_factor, 1.0), peak_mm=peak_mm, peak=peak, eta=run.compute_mfu * shape,
                       share=FP8_GEMM_SHARE if mm_dtype == "fp8" and dtype != "fp8" else 1.0)
    t_bwd = BACKWARD_SECONDS(t_compute=t_compute, F_hw=F_hw, F_fwd=F_fwd)
    t_attn = t_compute * F_attn / F_hw                              # the attention core, for CP's overlap
    t_gemm = t_compute - t_attn

    # Tensor parallelism.
    c = 6 if recompute == "full" else 4
    t_tp_all = r.calc("tp_comm_seconds", TP_SECONDS, "s",
                      f"TP: {c} all-reduces per layer per micro-batch" + (" (as all-gather + reduce-scatter, SP)" if sp else ""),
                      c=c, L_s=L_s, m=m, b=b, s=s, cp=cp, h=h, a=a, **cluster.links(t, 1))
    t_tp = r.calc("tp_comm_exposed_seconds", TP_EXPOSED, "s",
                  "TP: what the GEMMs do not hide" + (" (--tp-overlap)" if run.tp_overlap else " (not overlapped)"),
                  overlap=bool(run.tp_overlap), t_tp=t_tp_all, t_gemm=t_gemm)

    # Context parallelism: K/V of the other ranks, per layer.
    ring = run.cp_comm == "ring"
    x_cp = (3 if ring else 2) + (1 if recompute == "full" else 0)
    kv = CP_KV_BYTES(b=b, s=s, cp=cp, K=spec.kv_heads, t=t, d_h=spec.head_dim, a=a)
    cpl = cluster.links(cp, t)
    if ring:
        cp_bw = where(cpl["k"] > 1, cluster.net_bw, cluster.nvlink_bw)
        cp_alpha = where(cpl["k"] > 1, cluster.net_latency, cluster.nvlink_latency)
        t_cp_all = r.calc("cp_comm_seconds", CP_RING_SECONDS, "s", "CP: ring passes of K/V (and dK/dV) per layer",
                          x=x_cp, L_s=L_s, m=m, cp=cp, kv=kv, alpha=cp_alpha, bw=cp_bw)
    else:
        t_cp_all = r.calc("cp_comm_seconds", CP_GATHER_SECONDS, "s", "CP: all-gather of K/V per layer (Llama 3)",
                          x=x_cp, L_s=L_s, m=m, cp=cp, kv=kv, **cpl)
    t_cp = r.calc("cp_comm_exposed_seconds", CP_EXPOSED, "s",
                  "CP: ring passes not hidden by attention" if ring else "CP: all-gathers (exposed)",
                  ring=ring, t_cp=t_cp_all, t_attn=t_attn)

    # Expert parallelism: all-to-alls per MoE layer of the stage.
    L_moe = _moe_layers_per_stage(spec, L_s)
    x_ep = 6 if recompute == "full" else 4
    k_top = spec.moe.top_k if spec.moe else 0
    buf = EP_BUFFER(b=b, s=s, cp=cp, t=t, k=k_top, h=h, a=a)
    epl = cluster.links(ep, t)
    t_ep_all = r.calc("ep_comm_seconds", EP_SECONDS, "s", "EP: all-to-all dispatch and combine per MoE layer",
                      x=x_ep, L_moe=L_moe, m=m, size=buf, n=ep, g=epl["r"], bw_in=cluster.nvlink_bw,
                      bw_out=cluster.net_bw, a_in=cluster.nvlink_latency, a_out=cluster.net_latency)
    t_ep = r.calc("ep_comm_exposed_seconds", EP_EXPOSED, "s",
                  "EP: what compute does not hide" + (" (--ep-overlap)" if run.ep_overlap else " (not overlapped)"),
                  overlap=bool(run.ep_overlap), t_ep=t_ep_all, t_compute=t_compute)

    # Pipeline parallelism.
    pp_in = _within(p, d * t * cp, cluster.gpus_per_node)
    pp_bw = where(pp_in == 1, cluster.nvlink_bw, cluster.net_bw)
    pp_alpha = where(pp_in == 1, cluster.nvlink_latency, cluster.net_latency)
    t_pp_all = r.calc("pp_comm_seconds", PP_SECONDS, "s",
                      "PP: activations forward, gradients backward, per micro-batch",
                      p=p, v=v, m=m, alpha=pp_alpha, b=b, s=s, cp=cp, h=h, a=a, t=t, bw=pp_bw)
    t_pp = r.calc("pp_comm_exposed_seconds", PP_EXPOSED, "s",
                  "PP: what the next chunk's compute does not hide" + (" (--pp-overlap, interleaved only)"
                                                                       if run.pp_overlap else " (not overlapped)"),
                  overlap=1 if run.pp_overlap else 0, v=v, t_pp=t_pp_all, t_compute=t_compute)
    bubble = r.calc("bubble_seconds", BUBBLE_SECONDS, "s", "pipeline bubble: (p−1)/(v·m) of the stage's work",
                    p=p, v=v, m=m, t_compute=t_compute, t_tp=t_tp, t_cp=t_cp, t_ep=t_ep)

    # Data parallelism over the dp·cp ranks, of the parameters the busiest stage holds before ZeRO (Ψ: its layers
    # and embedding); the experts' own over dp·cp/ep ranks (Megatron-Core, DeepSpeed-MoE).
    psi = mem["params_per_gpu"].value
    D = d * cp
    psi_t = mem["trainable_params_per_gpu"].value       # LoRA: gradients and updates are the adapters' only
    full = run.method == "full"
    dense = psi - psi_e / ep if full else psi_t
    dp_links = cluster.links(D, t)
    t_grad = r.calc("dp_grad_comm_seconds", DP_GRAD_SECONDS[zero], "s",
                    "DP gradients: " + ("all-reduce" if zero == 0 else "reduce-scatter")
                    + (" per micro-batch" if zero >= 2 else " once per step") + (" (dense part)" if spec.moe else ""),
                    psi=dense, g=g, m=m, L_s=L_s, **dp_links)
    t_param = r.calc("dp_param_comm_seconds", DP_PARAM_SECONDS[zero], "s",
                     {0: "DP weights: none (replicated)", 1: "DP weights: all-gather after the update",
                      2: "DP weights: all-gather after the update",
                      3: "DP weights: per-layer all-gathers, forward and backward, per micro-batch"}[zero],
                     d=D, psi=dense if full else (psi if zero == 3 else psi_t), w=w, m=m, L_s=L_s, **dp_links)
    if spec.moe and full:
        e_links = cluster.links(D / ep, t * ep)
        t_exp = (DP_GRAD_SECONDS[zero](psi=psi_e / ep, g=g, m=m, L_s=L_s, **e_links)
                 + DP_PARAM_SECONDS[zero](d=D / ep, psi=psi_e / ep, w=w, m=m, L_s=L_s, **e_links))
        r.put("dp_expert_comm_seconds", t_exp, "s", "DP of the experts' gradients and weights over dp·cp/ep")
    else:
        t_exp = r.put("dp_expert_comm_seconds", 0.0, "s", "DP of expert weights (dense model: none)")
    t_grad_all = t_grad + t_exp
    r.calc("dp_comm_seconds", DP_EXPOSED, "s", f"DP (ZeRO-{zero}): all of it", t_grad=t_grad_all, t_param=t_param)
    if run.overlap_dp:
        t_dp = r.calc("dp_comm_exposed_seconds", DP_EXPOSED_OVERLAP[zero], "s",
                      "DP: what the compute does not hide (--overlap-dp)", t_grad=t_grad_all, t_param=t_param,
                      t_bwd=t_bwd, m=m, t_compute=t_compute, L_s=L_s)
    else:
        t_dp = r.calc("dp_comm_exposed_seconds", DP_EXPOSED, "s", "DP: not overlapped (--overlap-dp to hide it)",
                      t_grad=t_grad_all, t_param=t_param)

    step = r.calc("step_seconds", STEP_SECONDS, "s", "step time", t_compute=t_compute, t_tp=t_tp, t_cp=t_cp, t_ep=t_ep,
                  t_bubble=bubble, t_pp=t_pp, t_dp=t_dp)
    tps = r.calc("tokens_per_second", TOKENS_PER_S, "token/s", "training tokens per second (all GPUs)", B=B, s=s, step=step)
    r.calc("mfu", MFU, "ratio", f"MFU: model FLOPs per second / (N · dense {dtype} peak)", F_model=F_model,
           step=step, N=N, peak=peak)
    r.calc("hfu", HFU, "ratio", "HFU: hardware FLOPs (recomputation too) per second / (N · peak)", F_hw=F_hw,
           step=step, N=N, peak=peak)
    if run.tokens is not None:
        r.calc("training_days", TRAINING_DAYS, "days", "days to train the token budget", D=run.tokens,
               tokens_per_s=tps)
        r.calc("gpu_hours", GPU_HOURS, "h", "GPU-hours for the token budget", D=run.tokens, tokens_per_s=tps, N=N)
    else:
        r.put("training_days", None, "days", "days to train a token budget (give --tokens)")
        r.put("gpu_hours", None, "h", "GPU-hours for a token budget (give --tokens)")

    # Assemble: INTERFACE.md's keys first.
    out = Results()
    for k in ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "total_bytes", "fits"):
        out[k] = mem[k]
    out.calc("bubble_fraction", BUBBLE_FRACTION, "ratio", "pipeline bubble share of the schedule, (p−1)/(v·m+p−1)",
             p=p, v=v, m=m)
    out.calc("dp_comm_bytes", DP_BYTES[zero], "byte", f"DP bytes sent per GPU per step (ZeRO-{zero})",
             d=D, psi=psi_t if zero < 3 else psi, g=g, w=w, m=m)
    out.calc("tp_comm_bytes", TP_BYTES, "byte", "TP bytes sent per GPU per step", c=c, L_s=L_s, m=m, t=t, b=b, s=s,
             cp=cp, h=h, a=a)
    out.calc("pp_comm_bytes", PP_BYTES, "byte", "PP bytes sent per GPU per step", p=p, v=v, m=m, b=b, s=s, cp=cp,
             h=h, a=a, t=t)
    out.calc("cp_comm_bytes", CP_BYTES, "byte", "CP bytes sent per GPU per step (K/V and their gradients)",
             x=x_cp, L_s=L_s, m=m, cp=cp, kv=kv)
    out.calc("ep_comm_bytes", EP_BYTES, "byte", "EP all-to-all bytes sent per GPU per step", x=x_ep, L_moe=L_moe, m=m,
             ep=ep, buf=buf)
    for k in ("step_seconds", "mfu", "tokens_per_second", "hfu", "training_days", "gpu_hours", "compute_seconds",
              "tp_comm_seconds", "tp_comm_exposed_seconds", "cp_comm_seconds", "cp_comm_exposed_seconds",
              "ep_comm_seconds", "ep_comm_exposed_seconds", "bubble_seconds", "pp_comm_seconds",
              "pp_comm_exposed_seconds", "dp_comm_seconds", "dp_comm_exposed_seconds"):
        out[k] = r[k]
    out.calc("bubble_ratio", BUBBLE_RATIO, "factor", "bubble time / ideal time, (p−1)/(v·m) (Narayanan et al.)",
             p=p, v=v, m=m)
    for k in ("gpu_memory_bytes", "usable_memory_bytes", "headroom_bytes", "fp8_weight_cache_bytes"):
        out[k] = mem[k]
    for k in ("micro_batches", "layers_per_stage", "in_flight_microbatches"):
        out[k] = lay[k]
    out["stage_imbalance"] = r["stage_imbalance"]
    out["gemm_shape_factor"] = r["gemm_shape_factor"]
    out["params_per_gpu"] = mem["params_per_gpu"]
    for k in ("dp_grad_comm_seconds", "dp_param_comm_seconds", "dp_expert_comm_seconds"):
        out[k] = r[k]
    out.put("hardware_flops", F_hw, "flop", "hardware FLOPs per step (all GPUs)")
    out.put("model_flops", F_model, "flop", "model FLOPs per step (all GPUs)")
    out.put("peak_flops", peak, "flop/s", f"dense {dtype} peak per GPU")
    return out


FP8_CACHE = Formula("2 * where(z3, psi / L_s, psi)")     # 1 B copy + 1 B transpose per weight (per layer under ZeRO-3)
TOTAL_BYTES = Formula("weights + gradients + optimizer + activations + fp8_weight_cache")
EXPERT_SHARD = Formula("1 - psi_e / psi * (1 - 1 / ep)")  # the share of a replicated state left under EP


def _moe_layers_per_stage(spec: ModelSpec, L_s):
    """MoE layers on the busiest stage (its share of the model's, at most its layers)."""
    from llmcalc.core.formula import minimum
    return 0 if not spec.moe else minimum(L_s, L_s * spec.moe_layers / spec.layers)


def _expert_params_per_gpu(spec: ModelSpec, L_s, t):
    """Routed-expert parameters the busiest stage's GPU holds under TP alone (before EP and ZeRO)."""
    if not spec.moe:
        return 0.0
    from llmcalc.core.params import mlp_block_params
    return _moe_layers_per_stage(spec, L_s) * spec.moe.experts * mlp_block_params(spec, spec.moe.expert_ffn) / t


def _routed_expert_flops(spec: ModelSpec, tokens) -> float:
    """Forward FLOPs of the routed experts: 2 per weight each token passes through (top-k experts)."""
    if not spec.moe:
        return 0.0
    from llmcalc.core.params import mlp_block_params
    return 2 * tokens * spec.moe_layers * spec.moe.top_k * mlp_block_params(spec, spec.moe.expert_ffn)


def _shard_experts(mem: Results, psi_e, ep, zero: int) -> None:
    """Experts sharded over ep GPUs: a state ZeRO already shards over dp·cp is unchanged (the experts' 1/ep
    share sharded over dp·cp/ep ranks is the same bytes); a replicated state keeps 1/ep of the experts'."""
    if isinstance(ep, (int, float)) and ep == 1:
        return
    psi = mem["params_per_gpu"].value
    keep = EXPERT_SHARD(psi_e=psi_e, psi=psi, ep=ep)
    for key, sharded in (("weights_bytes", zero >= 3), ("gradients_bytes", zero >= 2), ("optimizer_bytes", zero >= 1),
                         ("params_per_gpu", False)):
        if not sharded:
            row = mem[key]
            mem.put(key, row.value * keep, row.unit, row.label + " (experts over ep)")


# ----------------------------------------------------------------------------------------------
# What bounds a layout


BOUND_TERMS = (("compute", "compute_seconds"), ("bubble", "bubble_seconds"), ("TP comm", "tp_comm_exposed_seconds"),
               ("CP comm", "cp_comm_exposed_seconds"), ("EP comm", "ep_comm_exposed_seconds"),
               ("PP comm", "pp_comm_exposed_seconds"), ("DP comm", "dp_comm_exposed_seconds"))


def bound(r: Results, i: int | None = None) -> str:
    """The largest overhead on top of compute and its share of the step, and the memory headroom."""
    def val(k):
        x = r[k].value
        return float(x[i]) if i is not None and hasattr(x, "shape") and x.ndim else float(x)

    return bound_text({k: val(k) for _, k in BOUND_TERMS}, val("step_seconds"), val("headroom_bytes"),
                      val("usable_memory_bytes"))


def bounds(r: Results) -> list[str]:
    """``bound`` for every row of array results, the shares computed as arrays (the search's thousands of rows)."""
    np = _np()
    step = np.asarray(r["step_seconds"].value, dtype=float)
    shares = np.stack([np.asarray(r[k].value, dtype=float) for _, k in BOUND_TERMS], axis=1) / step[:, None]
    worst, worst_share = shares[:, 1:].argmax(axis=1) + 1, shares[:, 1:].max(axis=1)
    head = np.asarray(r["headroom_bytes"].value, dtype=float)
    usable = np.asarray(r["usable_memory_bytes"].value, dtype=float)
    free = np.where(usable > 0, head / np.where(usable > 0, usable, 1), 0.0)
    names = [n for n, _ in BOUND_TERMS]
    out = []
    for w, ws, c, f, h in zip(worst.tolist(), worst_share.tolist(), shares[:, 0].tolist(), free.tolist(), head.tolist()):
        text = (f"compute-bound ({c:.0%} of the step)" if ws < 0.05 else
                f"{names[w]} {ws:.0%} of the step (compute {c:.0%})")
        if f < 0:
            text += f"; does not fit (short by {-h / 2**30:.1f} GiB)"
        elif f < 0.05:
            text += f"; memory-tight ({f:.0%} free)"
        out.append(text)
    return out


def bound_text(terms: dict[str, float], step: float, headroom_bytes: float, usable: float) -> str:
    shares = {name: terms[k] / step for name, k in BOUND_TERMS}
    over = max(((n, s) for n, s in shares.items() if n != "compute"), key=lambda x: x[1])
    headroom = headroom_bytes / usable if usable > 0 else 0.0
    if over[1] < 0.05:
        text = f"compute-bound ({shares['compute']:.0%} of the step)"
    else:
        text = f"{over[0]} {over[1]:.0%} of the step (compute {shares['compute']:.0%})"
    if headroom < 0:
        text += f"; does not fit (short by {-headroom_bytes / 2**30:.1f} GiB)"
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
        at = {k: _at(values.get(k), i) for k in ("gpus", "dp", "tp", "pp", "cp", "ep", "micro_batch", "seq",
                                                 "virtual_stages", "global_batch")}
        check_degrees(spec, at["tp"], at["pp"])
        cp, ep = at["cp"] or 1, at["ep"] or 1
        N, d, t, p = resolve_layout(at["gpus"], at["dp"], at["tp"], at["pp"], cp)
        b, v, B = at["micro_batch"], at["virtual_stages"], at["global_batch"]
        if B is None:
            B = default_global_batch(at["seq"], d * b * (p if v > 1 else 1))
        for note in check_layout(spec, N, d, t, p, v, b, B, schedule, gpus_per_node, cp, ep, at["seq"]):
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


def run_notes(spec: ModelSpec, cluster: Cluster, dtype: str, seq_given: bool, compute_mfu_given: bool,
              precision: str, grad_given: bool, compute: str = "bf16") -> list[str]:
    """What every run assumes: the sequence length, the links, the compute efficiency, the gradient dtype on the
    wire."""
    from llmcalc.units import fmt_value
    notes = [] if seq_given or spec.max_seq <= DEFAULT_MAX_SEQ else [
        f"--seq {DEFAULT_MAX_SEQ:,}: {spec.name}'s context is {spec.max_seq:,}; pre-training runs at a shorter "
        "length (set --seq)"]
    notes += [f"links: NVLink {fmt_value(cluster.nvlink_bw, 'byte/s')} one way per GPU inside a node of "
             f"{cluster.gpus_per_node}, network {fmt_value(cluster.net_bw, 'byte/s')} per GPU across nodes, "
             f"collectives hierarchical (rail-aligned); {cluster.nvlink_latency * 1e6:g}/"
             f"{cluster.net_latency * 1e6:g} µs per ring step"]
    if not compute_mfu_given:
        notes.append(f"compute at {DEFAULT_COMPUTE_MFU:.0%} of the dense {dtype} peak × the GEMMs' efficiency at this "
                     "layout's per-GPU shapes relative to large ones (core/gemm_efficiency.py, fitted to OpenXLA's H100 "
                     "matmul table), before bubble and communication (--compute-mfu sets a constant instead)")
    if not grad_given and precision in ("mixed", "fp8"):
        notes.append("gradients in bf16, on the wire too (Megatron-LM reduces them in fp32: --grad-dtype fp32)")
    if (note := compute_note(compute)) is not None:
        notes.append(note + ("; weights: Transformer Engine's recipe (bf16 weights + fp32 master + FP8 copy and "
                             "transpose; --precision fp8 keeps fp8 primary weights instead)" if precision != "fp8"
                             else "; weights: fp8 primary weights (--precision fp8)"))
    return notes


# ----------------------------------------------------------------------------------------------
# Which flags of `parallel` go together, declared once (here, not in parallel_search.py, so a single layout
# never imports the search). Names are concepts (the command's flags with dashes as underscores).

SEARCH_ONLY = {"top": "ranks the layouts of --search", "uneven_pp": "widens the layouts --search tries"}
ONE_VALUE_WITH_SEARCH = ("global_batch", "seq", "compute_mfu", "tokens", "precision", "optimizer",
                         "activations")          # the layouts are what a search varies
NEEDS_FOR_SEARCH = {"gpus": "the number of GPUs to lay out"}
ONE_VALUE = ("gpus_per_node", "nvlink_bw", "net_bw", "nvlink_latency", "net_latency", "capacity_factor", "reserve",
             "fragmentation", "top")        # the machine and the search's output: one value each


def check_flags(given: dict[str, Any], search: bool, is_sweep) -> None:
    """Errors for flags that do not go together. ``given``: concept -> the text given (None = not given);
    ``is_sweep``: tells a list or range from one value."""
    flag = lambda name: "--" + name.replace("_", "-")   # noqa: E731
    for name in ONE_VALUE:
        if isinstance(given.get(name), str) and is_sweep(given[name]):
            raise InputError(f"{flag(name)} takes one value, not a list")
    if search:
        for name, why in NEEDS_FOR_SEARCH.items():
            if given.get(name) is None:
                raise InputError(f"--search needs {flag(name)} N: {why}")
        for name in ONE_VALUE_WITH_SEARCH:
            if given.get(name) is not None and is_sweep(given[name]):
                raise InputError(f"{flag(name)} takes one value with --search (the layouts are what it varies)")
        return
    for name, why in SEARCH_ONLY.items():
        if given.get(name) not in (None, False):
            raise InputError(f"{flag(name)} {why}; add --search")
