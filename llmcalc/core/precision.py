"""The matmul precision a run computes in (``--compute-dtype bf16|fp8``) and the peak it runs at.

FP8 training and serving (Transformer Engine; TensorRT-LLM's and vLLM's fp8 GEMMs) run the matmuls at the
dense fp8 peak, but at a smaller share of it than bf16 GEMMs reach of theirs (per-tensor scaling, amax
reductions and casts around each GEMM): FP8_GEMM_SHARE, a stated assumption, not fitted. The attention core
(QKᵀ, softmax, ×V) stays in bf16 unless the engine runs FP8 attention (FlashAttention-3's fp8 path, TensorRT-LLM
with an fp8 context FMHA), which is the engine's choice, not the GPU's: ``attn_dtype``.

A GPU without fp8 tensor cores (V100, T4, A100, A10) cannot compute in fp8 (fp8 weights there are a storage
format, dequantised to 16-bit): an error.
"""

from __future__ import annotations

from llmcalc.core.formula import Formula
from llmcalc.errors import InputError
from llmcalc.spec import GpuSpec

COMPUTE_DTYPES = ("bf16", "fp8")
FP8_GEMM_SHARE = 0.85
# Time per FLOP blended over matmuls (1 − f of the FLOPs) at their peak and share, and attention (f) at its own.
BLENDED_PEAK = Formula("1 / ((1 - f_attn) / (peak_mm * share) + f_attn / peak_attn)")


def compute_dtype(gpu: GpuSpec, precision: str = "mixed", requested: str | None = None) -> str:
    """The matmuls' dtype: ``requested``, else fp8 under fp8 training, else bf16; fp8 on a GPU without FP8
    tensor cores is an error."""
    cd = requested or ("fp8" if precision == "fp8" else "bf16")
    if cd not in COMPUTE_DTYPES:
        raise InputError(f"compute dtype must be one of {', '.join(COMPUTE_DTYPES)}; got {cd!r}")
    if cd == "fp8" and not gpu.flops_per_s.get("fp8"):
        raise InputError(f"fp8 compute needs FP8 tensor cores (Hopper, Ada, Blackwell, MI300); {gpu.name} has none: "
                         "use --compute-dtype bf16")
    return cd


def blended_peak(gpu: GpuSpec, compute: str | None, f_attn, attn_dtype: str = "bf16"):
    """The FLOP/s a step whose attention core is ``f_attn`` of its FLOPs runs at, relative to the bf16
    efficiency: the plain peak of ``compute`` when it is 16-bit (or attention shares its dtype), else matmuls at
    the fp8 peak × FP8_GEMM_SHARE blended with attention at the ``attn_dtype`` peak."""
    half = getattr(gpu, "half_dtype", "bf16")  # fp16 on chips without bf16 (T4, V100)
    if compute != "fp8":
        return gpu.peak_flops(half if compute in (None, "bf16") else compute)
    compute_dtype(gpu, requested=compute)
    return BLENDED_PEAK(f_attn=f_attn, peak_mm=gpu.peak_flops(compute), share=FP8_GEMM_SHARE,
                        peak_attn=gpu.peak_flops(half if attn_dtype == "bf16" else attn_dtype))


def compute_note(compute: str) -> str | None:
    """What an fp8 run assumes, said once for every command (None for 16-bit compute)."""
    if compute != "fp8":
        return None
    return (f"fp8 compute: matmuls at the fp8 dense peak × {FP8_GEMM_SHARE:g} (casts and scaling), the attention "
            "core in bf16 (an engine running FP8 attention, as FlashAttention-3 can, would be faster)")

