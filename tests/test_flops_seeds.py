"""`llmcalc flops` against the seeds' worked examples (the seed figures are the reference, not our output).

Seed 000 = ../shared/seeds/000_71fed12c2aaa3c66.txt (CS 229s "Analyzing Transformer Efficiency").
Seed 002 = ../shared/seeds/002_4220e5101d362c27.txt (COS 597A lecture slides).
"""

from __future__ import annotations

import pytest

from conftest import results
from llmcalc.core.flops import GPU_HOURS, NAPKIN_TOTAL

GPT2_INLINE = ("--hidden", "768", "--layers", "12", "--heads", "12", "--vocab", "50257")


def rel(a, b):
    return abs(a - b) / abs(b)


def test_gpt2_small_worked_example_chapter_1(cli):
    # seed 000 ch. 1 "Worked Example: GPT-2 Small", B=1, S=1024, H=768, L=12, V=50,257.
    r = results(cli("flops", *GPT2_INLINE, "--seq", "1024", "--json"))
    L = 12
    assert rel(r["mlp_flops"] / L, 9.66e9) < 5e-3                    # "MLP per layer: 9.66 × 10⁹"
    assert rel(r["attention_projection_flops"] / L, 4.83e9) < 5e-3   # "Attention projections: 4.83 × 10⁹"
    assert rel(r["attention_score_flops"] / L, 3.22e9) < 5e-3        # "Attention scores: 3.22 × 10⁹"
    per_layer = (r["mlp_flops"] + r["attention_projection_flops"] + r["attention_score_flops"]) / L
    assert rel(per_layer, 17.7e9) < 5e-3                              # "Per layer total: 17.7 × 10⁹"
    assert rel(per_layer * L, 212e9) < 5e-3                           # "All 12 layers: 212 GFLOPs"
    assert rel(r["lm_head_flops"], 79.0e9) < 5e-3                     # "Vocab projection: 79.0 GFLOPs"
    # "Total forward: 291 GFLOPs". The formula gives 212.6 + 79.05 = 291.65 GFLOPs; the seed truncates.
    assert rel(r["forward_flops"], 291e9) < 5e-3
    assert r["forward_flops"] == pytest.approx(291.648e9, rel=1e-5)
    # ch. 2: "3 × 291 GFLOPs = 873 GFLOPs". 3 × 291.65 = 874.9: the seed multiplied its rounded forward.
    assert r["training_flops"] == 3 * r["forward_flops"]
    assert rel(r["training_flops"], 873e9) < 5e-3
    # "2 × 124M × 1,024 ≈ 254 GFLOPs" (napkin) and the cheat sheet's 6PT = 762 GFLOPs with P = 124M.
    assert rel(r["napkin_forward_flops"], 254e9) < 5e-3
    assert rel(r["napkin_training_flops"], 762e9) < 5e-3


def test_gpt2_preset_matches_inline(cli):
    # The real GPT-2 preset (biases, learned positions, tied head) has the same matmul FLOPs as the seed's
    # idealised model: biases and the embedding lookup are not matmuls.
    a = results(cli("flops", "-m", "gpt2", "--seq", "1024", "--json"))
    b = results(cli("flops", *GPT2_INLINE, "--seq", "1024", "--json"))
    assert a["forward_flops"] == b["forward_flops"]
    assert a["params"] == 124_439_808  # openai-community/gpt2


def test_chinchilla_6pt():
    # seed 000 ch. 2: 6 × 70e9 × 1.4e12 = 5.88e23 FLOPs.
    assert NAPKIN_TOTAL(P=70e9, D=1.4e12) == pytest.approx(5.88e23, rel=1e-3)
    # The seed adds "about 1,000 A100-days". At the A100's 312 TFLOP/s dense bf16 peak and 100% MFU that
    # is 5.88e23 / 312e12 / 86400 = 21,800 A100-days: the seed's figure is ~22x too small (docs/seed-errata.md).
    days = GPU_HOURS(total=5.88e23, peak=312e12, mfu=1.0) / 24
    assert days == pytest.approx(21_811, rel=1e-3)


def test_llama3_405b_gpu_hours_seed_002():
    # seed 002: 6 × 405e9 × 15e12 / (400e12 × 3600) = 25.3M H100-hours.
    hours = GPU_HOURS(total=NAPKIN_TOTAL(P=405e9, D=15e12), peak=400e12, mfu=1.0)
    assert hours == pytest.approx(25.3e6, rel=2e-3)
    # "= 66 days on 16K H100": 25.31e6 / 16,000 / 24 = 65.9 days (16,384 GPUs would give 64.4).
    assert hours / 16_000 / 24 == pytest.approx(66, rel=0.01)


def test_llama3_405b_from_the_cli(cli):
    # The same question asked of the tool: 400 TFLOP/s on an H100 SXM (989.4 dense bf16) is MFU 0.4043.
    mfu = 400e12 / 989.4e12
    r = results(cli("flops", "-m", "llama-3.1-405b", "--seq", "8192", "--tokens", "15T", "-g", "h100-sxm",
                    "--gpus", "16000", "--mfu", f"{mfu:.6f}", "--json"))
    # The preset has 405.85B parameters (not 405B), so the napkin figure is 0.2% above the seed's 25.3M.
    assert r["napkin_gpu_hours"] == pytest.approx(25.3e6 * 405.853 / 405, rel=2e-3)
    # The exact count adds attention's S² term at S=8192 (and the LM head): a few percent more.
    assert 1.0 < r["gpu_hours"] / r["napkin_gpu_hours"] < 1.10
    assert r["training_days"] == pytest.approx(r["gpu_hours"] / 16000 / 24)
