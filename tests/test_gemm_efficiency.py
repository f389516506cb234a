"""Shape-dependent GEMM efficiency (core/gemm_efficiency.py) against OpenXLA's published H100 bf16 matmul table
(tests/reference/xla_matmul_h100.py): its constants were fitted to the FIT rows; the CHECK rows (a 4,096
dimension) were not seen by the fit."""

from __future__ import annotations

import math

import pytest

from llmcalc.core import gemm_efficiency as ge
from llmcalc.presets import load_gpu, load_model
from reference.xla_matmul_h100 import CHECK, FIT


def _log_errors(rows):
    gpu = load_gpu("h100-sxm")
    return [math.log(2 * b * m * n * k / ge.gemm_seconds(gpu, m, n, k, b=b) / (tf * 1e12)) for b, m, n, k, tf in rows]


@pytest.mark.parametrize("rows,rms_max,worst_max", [(FIT, 0.13, 1.35), (CHECK, 0.2, 1.55)], ids=["fit", "check"])
def test_throughput_against_the_published_table(rows, rms_max, worst_max):
    e = _log_errors(rows)
    assert math.sqrt(sum(x * x for x in e) / len(e)) <= rms_max
    assert math.exp(max(abs(x) for x in e)) <= worst_max


def test_it_beats_a_constant_efficiency_on_unseen_shapes():
    # The same check rows priced at one constant share of the peak (the best constant, chosen on them): the
    # shape model, fitted elsewhere, is closer.
    gpu = load_gpu("h100-sxm")
    measured = [tf * 1e12 / gpu.peak_flops("bf16") for *_, tf in CHECK]
    best_const = math.exp(sum(math.log(x) for x in measured) / len(measured))
    const_rms = math.sqrt(sum(math.log(best_const / x) ** 2 for x in measured) / len(measured))
    e = _log_errors(CHECK)
    assert math.sqrt(sum(x * x for x in e) / len(e)) < const_rms / 2


def test_wave_quantisation():
    # 132 tiles of 128×128 fill one wave of an H100's 132 SMs; 133 need a second wave: nearly twice the time.
    gpu = load_gpu("h100-sxm")
    one = ge.gemm_seconds(gpu, 128 * 12, 128 * 11, 8192)
    two = ge.gemm_seconds(gpu, 128 * 12 + 1, 128 * 11, 8192)
    assert two / one == pytest.approx(2, rel=0.1)
    assert ge.gemm_efficiency(gpu, 128 * 12 + 1, 128 * 11, 8192) < 0.6 * ge.gemm_efficiency(gpu, 128 * 12, 128 * 11, 8192)


@pytest.mark.parametrize("gpu_name", ["a100-80gb", "h100-sxm"])
def test_smaller_per_gpu_gemms_lose_efficiency(gpu_name):
    # Llama-2-70B prefill of one 512-token prompt: halving every GEMM's N from TP 4 to TP 8 costs efficiency, so
    # the GEMMs of TP 8 run less than 2× faster. (The issue reports a published 1.35× TTFT ratio: on an A100 the
    # GEMMs explain 2 − 1.78 of the 2 − 1.35; the all-reduces' latency and the kernels' fixed costs the rest.)
    gpu, spec = load_gpu(gpu_name), load_model("llama-2-70b")
    e4, e8 = ge.layer_efficiency(gpu, spec, 512, tp=4), ge.layer_efficiency(gpu, spec, 512, tp=8)
    assert e8 < e4
    assert 2 * e8 / e4 < 2
    # and more tokens per GEMM (a larger micro-batch) raise the efficiency, which a constant MFU cannot show
    assert ge.layer_efficiency(gpu, spec, 8192, tp=8) > ge.layer_efficiency(gpu, spec, 2048, tp=8) > e8
