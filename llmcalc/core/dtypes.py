"""Bytes per element of each dtype, and the per-group scale overhead of quantised formats.

Quantised weights or caches (int8, int4, fp8 with per-group scales as in GPTQ/AWQ, gpt-fast's int4
G=32) store one scale (and, for asymmetric schemes, a zero point) per ``group_size`` elements:
bytes/element = bits/8 + scale_bytes/group_size (seed 001 "Mixed Precision": INT4 with per-group scales).
These serve the KV cache; weights, with their named formats and recipes, are counted by core/quant.py.
"""

from __future__ import annotations

from llmcalc.errors import InputError

DTYPE_BYTES = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
QUANTISED = ("fp8", "int8", "int4")
WEIGHT_DTYPES = ("fp32", "bf16", "fp16", "fp8", "int8", "int4")  # formats weights may be held in


def dtype_bytes(dtype: str) -> float:
    try:
        return DTYPE_BYTES[dtype.lower()]
    except (KeyError, AttributeError):
        raise InputError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}") from None


def bytes_per_element(dtype: str, group_size: int = 0, scale_bytes: float = 2.0) -> float:
    """Storage per element including per-group scales (``group_size`` 0: none, e.g. per-tensor)."""
    base = dtype_bytes(dtype)
    if dtype.lower() in QUANTISED and group_size:
        return base + scale_bytes / group_size
    return base
