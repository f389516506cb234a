"""Flash attention's roofline (core/flash.py) bounds what published kernels measure: FlashAttention-2 on A100
and FlashAttention-3 on H100 in bf16 and fp8 (each the paper's headline figure), where the HBM-only model that
re-reads K and V for every query tile (core/roofline.py's ATTENTION_FLASH_Q) does not."""

from __future__ import annotations

import pytest

from llmcalc.core import roofline as rl
from llmcalc.core.flash import flash_bound
from llmcalc.presets import load_gpu

# The papers' benchmark shape: hidden 2,048 (16 heads of 128), batch × sequence = 16k tokens, non-causal forward.
S, D, HEADS = 16384, 128, 16
PUBLISHED = [
    # GPU, dtype, bytes, measured FLOP/s, source
    ("a100-80gb", "bf16", 2, 0.73 * 312e12, "Dao 2023, arXiv:2307.08691, sec. 4.1: forward up to 73% of 312 TFLOP/s"),
    ("h100-sxm", "bf16", 2, 740e12, "Shah et al. 2024, arXiv:2407.08608, abstract: up to 740 TFLOPs/s in BF16"),
    ("h100-sxm", "fp8", 1, 1.2e15, "Shah et al. 2024, arXiv:2407.08608, abstract: close to 1.2 PFLOPs/s in FP8"),
]


@pytest.mark.parametrize("gpu,dtype,p,measured,source", PUBLISHED)
def test_attainable_bounds_the_published_kernels(gpu, dtype, p, measured, source):
    g = load_gpu(gpu)
    r = flash_bound(g, Z=HEADS * (16384 // S), S=S, d=D, p=p, peak=g.peak_flops(dtype))
    assert r["flash_attainable_flops_per_s"].value >= measured, source
    assert r["flash_attainable_flops_per_s"].value <= g.peak_flops(dtype)


def test_hbm_only_model_fell_below_fa3():
    # What the issue reported: ⌈S/Br⌉ re-reads of K and V from HBM cap an H100 under FA3's measurement.
    g = load_gpu("h100-sxm")
    F, Q = rl.attention(HEADS, S, D, 2, flash=True, Br=128)
    assert F / Q * g.hbm_bytes_per_s < 740e12
    # With L2: the K and V of the heads in flight (16 heads × 2 × 16384 × 128 × 2 B = 128 MiB would not fit
    # 50 MiB; the 132 SMs work on ⌈132/128⌉ = 2 heads at once, 16 MiB, which does) leave HBM once.
    r = flash_bound(g, Z=HEADS, S=S, d=D, p=2, peak=g.peak_flops("bf16"))
    assert r["flash_cache_hit"].value == 1
    assert r["flash_hbm_bytes"].value == pytest.approx(4 * HEADS * S * D * 2)


def test_l2_misses_come_back_at_long_contexts():
    # 1M tokens: one head's K and V (2 × 2^20 × 128 × 2 B = 512 MiB) overflow the 50 MiB L2; re-reads return.
    g = load_gpu("h100-sxm")
    r = flash_bound(g, Z=8, S=2**20, d=D, p=2, peak=g.peak_flops("bf16"))
    hit = (50 * 2**20) / (2 * 2**20 * 128 * 2)
    rereads = (2**20 / 128 - 1) * (1 - hit)
    assert r["flash_cache_hit"].value == pytest.approx(hit)
    assert r["flash_hbm_bytes"].value == pytest.approx(2 * 8 * 2**20 * 128 * 2 * (2 + rereads))


def test_tile_shrinks_to_fit_shared_memory():
    # 5·Br·d·p bytes must fit one SM: head dim 256 in bf16 on an A100 (192 KiB): 128 rows need 320 KiB -> 64.
    g = load_gpu("a100-80gb")
    r = flash_bound(g, Z=8, S=4096, d=256, p=2, peak=g.peak_flops("bf16"))
    assert r["flash_tile_rows"].value == 64
    assert 5 * 64 * 256 * 2 <= g.sram_bytes_per_sm < 5 * 128 * 256 * 2
