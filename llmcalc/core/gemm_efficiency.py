"""How much of the peak a GEMM of a given shape reaches: wave quantisation over the SMs, tile padding, a fixed
cost per kernel, and the HBM traffic of thin GEMMs.

A GEMM of b independent M×K·K×N products is cut into output tiles of TILE_M × TILE_N; the SMs each take one tile
at a time, so ⌈tiles·splits / SMs⌉ waves run, each as long as one tile's 2·TILE_M·TILE_N·K/splits FLOPs at
1/SMs of the peak × ETA (NVIDIA, "Matrix Multiplication Background User's Guide", Deep Learning
Performance docs: tile and wave quantisation). When there are fewer tiles than SMs, cuBLAS splits K (split-K)
into up to SMs/tiles slices of at least K_MIN. A thin GEMM is bound by reading its operands and writing its
result instead. Every kernel pays T0:

    t = T0 + max(waves · 2·TILE_M·TILE_N·K/splits / (ETA · peak / SMs), b·p·(M·K + K·N + M·N) / HBM bytes/s)
    efficiency = 2·b·M·N·K / (t · peak)

TILE, ETA and T0 were fitted once (scripts/fit_gemm_efficiency.py, least squares on log throughput) to the
68 H100 bf16 shapes with every dimension ≤ 2,048 of OpenXLA's published matmul table
(tests/reference/xla_matmul_h100.py) and checked on its 41 shapes with a 4,096 dimension, which the fit did not
see (tests/test_gemm_efficiency.py): rms log error 0.12 on the fit rows (worst ratio 1.32), 0.18 on the
check rows (worst 1.51). A per-wave cost beyond the FLOPs was tried and fitted to zero. ETA and T0 describe cuBLAS on Hopper; other GPUs reuse them with their own
SM count, peak and bandwidth. `--mfu`/`--mbu` stay the overrides.
"""

from __future__ import annotations

from llmcalc.core.formula import Formula
from llmcalc.spec import GpuSpec

TILE_M, TILE_N = 128, 128        # fitted among 128×128, 128×256, 256×128
ETA = 0.76                       # fitted: a full wave's share of the peak
T0 = 5.2e-6                      # fitted: seconds per kernel (launch, prologue, epilogue)
K_MIN = 512                      # split-K: slices of at least this many K when the tiles leave SMs idle (stated)

TILES = Formula("b * ceil(M / Tm) * ceil(N / Tn)")
SPLIT_K = Formula("max(1, min(floor(sms / tiles), floor(K / K_min)))")
WAVES = Formula("ceil(tiles * splits / sms)")
GEMM_SECONDS = Formula("t0 + max(waves * 2 * Tm * Tn * K / splits / (eta * peak / sms), "
                       "b * p * (M * K + K * N + M * N) / bw)")
EFFICIENCY = Formula("2 * b * M * N * K / (seconds * peak)")


def gemm_seconds(gpu: GpuSpec, M, N, K, *, b=1, p: float = 2.0, peak: float | None = None, tile=(TILE_M, TILE_N),
                 eta: float = ETA, t0: float = T0):
    """Modelled seconds of one (batched) GEMM on ``gpu`` at ``peak`` (default its bf16 peak)."""
    peak = gpu.peak_flops("bf16") if peak is None else peak
    sms = gpu.sm_count or 1
    tiles = TILES(b=b, M=M, N=N, Tm=tile[0], Tn=tile[1])
    splits = SPLIT_K(sms=sms, tiles=tiles, K=K, K_min=K_MIN)
    waves = WAVES(tiles=tiles, splits=splits, sms=sms)
    return GEMM_SECONDS(t0=t0, waves=waves, Tm=tile[0], Tn=tile[1], K=K, splits=splits, eta=eta, peak=peak,
                        sms=sms, b=b, p=p, M=M, N=N, bw=gpu.hbm_bytes_per_s)


def gemm_efficiency(gpu: GpuSpec, M, N, K, *, b=1, p: float = 2.0, peak: float | None = None, **kw):
    """The share of ``peak`` a GEMM of this shape reaches (0-1)."""
    peak = gpu.peak_flops("bf16") if peak is None else peak
    return EFFICIENCY(b=b, M=M, N=N, K=K, seconds=gemm_seconds(gpu, M, N, K, b=b, p=p, peak=peak, **kw), peak=peak)


def layer_gemms(spec, tokens: int, tp: int = 1) -> list[tuple[int, int, int]]:
    """The (M, N, K) of one transformer layer's forward GEMMs on one of ``tp`` tensor-parallel GPUs (Megatron
    split: QKV and up/gate column-parallel, output and down row-parallel), M = tokens."""
    q = spec.heads * spec.head_dim
    kv = 2 * spec.kv_heads * spec.head_dim
    up = (2 if spec.mlp == "gated" else 1) * spec.ffn
    return [(tokens, (q + kv) // tp, spec.hidden), (tokens, spec.hidden, q // tp),
            (tokens, up // tp, spec.hidden), (tokens, spec.hidden, spec.ffn // tp)]


def layer_efficiency(gpu: GpuSpec, spec, tokens: int, tp: int = 1, p: float = 2.0) -> float:
    """FLOP-weighted efficiency of a dense layer's GEMMs at ``tokens`` tokens on one of ``tp`` GPUs."""
    peak = gpu.peak_flops("bf16")
    shapes = layer_gemms(spec, tokens, tp)
    flops = sum(2 * M * N * K for M, N, K in shapes)
    seconds = sum(gemm_seconds(gpu, M, N, K, p=p, peak=peak) for M, N, K in shapes)
    return flops / (seconds * peak)
