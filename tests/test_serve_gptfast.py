"""`llmcalc serve` with its default efficiency against gpt-fast's published tokens/s (within 25%).

Seed 002 = ../shared/seeds/002_4220e5101d362c27.txt, slide "Inference Math" ("gpt-fast, A100 (max 2TB/s)").
The same table is in github.com/pytorch-labs/gpt-fast README.md, section "Benchmarks", which says how it was
run: "Benchmarks run on an 8xA100-80GB, power limited to 330W ... all benchmarks are run at batch size=1
... with a very small prompt length (just 5 tokens)", 200 new tokens (generate.py's default), int4 with
groupsize 32 and a bf16 scale + zero point per group (4 bytes), int8 with one scale per output channel.

The quantised 70B rows (19.13 and 25.25 tok/s) ran on ONE GPU, not tensor-parallel: their "Memory
Bandwidth" column divided by tok/s is 1322.58/19.13 = 69.1 GB and 1097.66/25.25 = 43.5 GB, the whole int8 /
int4 model (70B bf16 is "OOM" on one GPU). The README's separate "Tensor Parallelism" tables (8 GPUs) are
tested below with --tp.
"""

from __future__ import annotations

import pytest

from conftest import results

# (model, technique flags, measured tokens/s, measured GB/s) — seed 002 / gpt-fast README, A100 80GB.
GPT_FAST = [
    ("llama-2-7b", (), 104.9, 1397.31),
    ("llama-2-7b", ("--weight-dtype", "int8"), 155.58, 1069.20),
    ("llama-2-7b", ("--weight-dtype", "int4", "--weight-group-size", "32", "--scale-bytes", "4"), 196.80, 862.69),
    ("llama-2-70b", ("--weight-dtype", "int8"), 19.13, 1322.58),
    ("llama-2-70b", ("--weight-dtype", "int4", "--weight-group-size", "32", "--scale-bytes", "4"), 25.25, 1097.66),
    ("llama-3.1-8b", (), 93.89, 1410.76),
    ("llama-3.1-8b", ("--weight-dtype", "int8"), 137.64, 1030.89),
    ("llama-3.1-70b", ("--weight-dtype", "int8"), 18.04, 1253.78),
]

# Predicted ÷ measured with the default MBU (0.68 / 0.57 / 0.46), as printed in the closing note of the
# work that calibrated them; a change of the model or its defaults that moves these is visible here.
RATIOS = {
    ("llama-2-7b", "bf16"): 0.996, ("llama-2-7b", "int8"): 1.12, ("llama-2-7b", "int4"): 1.14,
    ("llama-2-70b", "int8"): 0.88, ("llama-2-70b", "int4"): 0.865,
    ("llama-3.1-8b", "bf16"): 0.983, ("llama-3.1-8b", "int8"): 1.12, ("llama-3.1-70b", "int8"): 0.93,
}


def _serve(cli, model, flags, *extra):
    return results(cli("serve", "-m", model, "-g", "a100-80gb", "--batch", "1", "--prompt", "5", "--gen", "200",
                       *flags, *extra, "--json"))


@pytest.mark.parametrize("model,flags,measured,gbs", GPT_FAST)
def test_gpt_fast_tokens_per_second_within_25_percent(cli, model, flags, measured, gbs):
    r = _serve(cli, model, flags)
    ratio = r["decode_tokens_per_second"] / measured
    assert 0.75 <= ratio <= 1.25, f"{model} {flags}: predicted/measured = {ratio:.3f}"
    dtype = flags[1] if flags else "bf16"
    assert ratio == pytest.approx(RATIOS[(model, dtype)], abs=0.01)
    # and it fits on one A100 80GB, as gpt-fast ran it
    assert r["fits"] is True


@pytest.mark.parametrize("model,flags,measured,gbs", GPT_FAST)
def test_bytes_per_token_match_gpt_fast(cli, model, flags, measured, gbs):
    # gpt-fast's "Memory Bandwidth" = model bytes × tokens/s, so bytes per token = GB/s ÷ tok/s. Ours reads
    # every weight but the gathered embedding table, plus the cache: within 6% of theirs.
    r = _serve(cli, model, flags, "--mbu", "1")
    assert r["decode_bytes_first"] == pytest.approx(gbs * 1e9 / measured, rel=0.06)


def test_measured_mbu_in_seed_range():
    # seed 002: "Typical MBU: 30-70%". The defaults are inside, and each equals the measurements' middle.
    from llmcalc.core.serve import DEFAULT_MBU
    for mbu in DEFAULT_MBU.values():
        assert 0.3 <= mbu <= 0.7
    assert DEFAULT_MBU["bf16"] == pytest.approx((1397.31 + 1410.76) / 2 / 2039, abs=0.01)


def test_70b_bf16_is_oom_on_one_gpu(cli):
    # gpt-fast: "Llama-2-70B Base OOM" on one A100 80GB.
    r = _serve(cli, "llama-2-70b", ())
    assert r["fits"] is False and r["max_batch"] == 0


# gpt-fast README "Tensor Parallelism" (bf16) and "Tensor Parallelism + Quantization" (8 GPUs).
GPT_FAST_TP = [
    ("llama-2-7b", 2, (), 168.84), ("llama-2-7b", 4, (), 254.02), ("llama-2-7b", 8, (), 328.43),
    ("llama-2-70b", 2, (), 21.32), ("llama-2-70b", 4, (), 38.01), ("llama-2-70b", 8, (), 62.50),
    ("llama-2-70b", 8, ("--weight-dtype", "int8"), 80.44),
    ("llama-2-70b", 8, ("--weight-dtype", "int4", "--weight-group-size", "32", "--scale-bytes", "4"), 90.77),
]


@pytest.mark.parametrize("model,tp,flags,measured", GPT_FAST_TP)
def test_gpt_fast_tensor_parallel_within_25_percent(cli, model, tp, flags, measured):
    # Weight reads split T ways, plus 2 all-reduces per layer at the default 20 µs each (T_comm dominates
    # the 7B at TP=8: 64 × 20 µs = 1.3 ms of its 3 ms per token).
    r = _serve(cli, model, flags, "--tp", tp)
    ratio = r["decode_tokens_per_second"] / measured
    assert 0.75 <= ratio <= 1.25, f"{model} TP={tp} {flags}: predicted/measured = {ratio:.3f}"
