"""`llmcalc roofline` against the seeds' worked figures (the seed lines are the reference, not our output).

Seed 000 = ../shared/seeds/000_71fed12c2aaa3c66.txt (CS 229s "Analyzing Transformer Efficiency"), ch. 0, 4, 7.
Seed 001 = ../shared/seeds/001_c2560befe061c7ba.txt (roofline, memory hierarchy, flash attention).
Seed 003 = ../shared/seeds/003_2fdff13b4af33bc8.txt (decoder-only notes), App. C-D.
"""

from __future__ import annotations

import pytest

from conftest import results
from llmcalc.core import roofline as rl
from llmcalc.core.serve import step
from llmcalc.presets import load_model
from llmcalc.spec import GpuSpec

# The A100 as the seeds round it: 312 TFLOP/s and 2 TB/s (seed 000 ch. 4; seed 003 App. C.1).
SEED_A100 = GpuSpec(name="seed-a100", memory_bytes=80 * 2**30, hbm_bytes_per_s=2e12,
                    flops_per_s={"fp16": 312e12, "bf16": 312e12})


def test_a100_ridge_156():
    # seed 000 ch. 4: "An A100 has a compute-to-bandwidth ratio of 312 TFLOPS / 2 TB/s = 156 FLOP/byte."
    r = rl.ceilings(SEED_A100, "fp16")
    assert r["ridge_intensity"].value == pytest.approx(156, rel=1e-12)
    # seed 003 App. C.1: "A100 80GiB 312 TFLOP/s ... 156 FLOPS/B".


def test_a100_preset_ridge_close_to_seed(cli):
    # The preset's datasheet bandwidth is 2.039 TB/s (seed 002's A100 table: 2,039GB/s), so its ridge is
    # 312/2.039 = 153.0, 2% below the seed's rounded 156.
    r = results(cli("roofline", "-g", "a100-80gb", "--dtype", "fp16", "--json"))
    assert r["peak_flops"] == 312e12 and r["bandwidth"] == 2.039e12
    assert r["ridge_intensity"] == pytest.approx(153.02, rel=1e-3)
    assert r["ridge_intensity"] == pytest.approx(156, rel=0.02)


@pytest.mark.parametrize("B", [1, 2, 8, 32])
def test_matmul_intensity_is_batch(cli, B):
    # seed 000 ch. 4: "For a matmul [B, H] × [H, H]: FLOPs = 2BH², bytes loaded ≈ 2H² (the weight matrix in
    # fp16). So AI = 2BH² / 2H² = B. When B = 1 (single-token decode), AI = 1". Our bytes also count the
    # [B,H] input and [B,H] output (seed 003 eq. D.1), which moves AI below B by a factor 1/(1 + 2B/H).
    H = 4096
    r = results(cli("roofline", "-g", "a100-80gb", "--dtype", "fp16", "--op", "matmul", "--m", B, "--k", H,
                    "--n", H, "--json"))
    assert r["flops"] == 2 * B * H * H
    assert r["bytes"] == 2 * (B * H + H * H + B * H)
    assert r["intensity"] == pytest.approx(B, rel=2 * B / H + 1e-9)
    assert r["bound"] == "memory"  # "we're catastrophically memory-bound"


def test_matmul_eq_d1():
    # seed 003 eq. D.1: intensity of (B,S,D)x(D,D) "(1/p)·BSD/(2BS + D)" from 2BSD² FLOPs over p(BSD + D²)
    # bytes read and pBSD written. Those two counts give 2BSD²/(p·D·(2BS + D)) = (2/p)·BSD/(2BS + D): the
    # seed's eq. D.1 drops the factor 2 of its own FLOP count. We test the formula-correct value.
    BS, D, p = 2048, 8192, 2
    F, Q = rl.matmul(BS, D, D, p)
    assert F == 2 * BS * D**2 and Q == p * (2 * BS * D + D**2)
    assert F / Q == pytest.approx(2 * BS * D / (2 * BS + D) / p, rel=1e-12)
    # "such matrix-multiplies are essentially always compute-bound"
    assert F / Q > 156


def test_elementwise_always_memory_bound():
    # seed 003 App. D: an element-wise op of C·BSD FLOPs has intensity ~C/p, "always memory-bound".
    F, Q = rl.elementwise(10**8, p=2, c=8)
    assert F / Q == pytest.approx(8 / (2 * 2))
    assert F / Q < 156


def test_softmax_about_one_flop_per_byte(cli):
    # seed 001: "naive softmax (1 FLOP/B) lives deep in memory-bound territory". Fused softmax: 5 FLOPs
    # per element over 2 bytes read + 2 written = 1.25 FLOP/B.
    r = results(cli("roofline", "-g", "a100-80gb", "--op", "softmax", "--m", "4096", "--n", "4096", "--json"))
    assert r["intensity"] == pytest.approx(1.25)
    assert r["bound"] == "memory"
    assert r["t_mem_seconds"] == pytest.approx(2 * 2 * 4096**2 / 2.039e12)


def test_seed_001_quick_check_q1():
    # seed 001 Q1: "A kernel does 2 GFLOPs and reads/writes 1 GB of data ... Arithmetic intensity [2] FLOP/B
    # ... wildly memory-bound."
    r = rl.ceilings(SEED_A100)
    rl.place(r, 2e9, 1e9, 312e12, 2e12)
    assert r["intensity"].value == 2 and r["bound"].value == "memory"
    assert r["time_seconds"].value == pytest.approx(0.5e-3)        # 1 GB at 2 TB/s
    assert r["time_upper_seconds"].value == pytest.approx(0.5e-3 + 2e9 / 312e12)


def test_flash_attention_removes_the_s_squared_traffic(cli):
    # seed 001: standard attention materialises S (N×N) in HBM, "HBM traffic of O(N²)"; Flash Attention
    # "never writes S to HBM", traffic O(N²d²/M). Naive bytes grow ~S², flash bytes ~S²·d/Br: the ratio of
    # the two grows toward 2·Br/d... and intensity of flash is far above naive.
    short = results(cli("roofline", "-g", "a100", "--op", "attention", "--seq", "1024", "--heads", "32",
                        "--head-dim", "64", "--json"))
    long = results(cli("roofline", "-g", "a100", "--op", "attention", "--seq", "16k", "--heads", "32",
                       "--head-dim", "64", "--json"))
    # Dao et al. Alg. 0: p·(4·S·d + 4·S²) per head; the S² part dominates (quadratic growth)
    for r, S in ((short, 1024), (long, 16000)):
        assert r["naive_bytes"] == 2 * 32 * (4 * S * 64 + 4 * S**2)
    assert long["naive_bytes"] / short["naive_bytes"] > 0.9 * (16000 / 1024) ** 2
    assert long["flops"] == long["naive_flops"] == 4 * 32 * 16000**2 * 64
    assert long["flash_traffic_reduction"] > 3
    assert long["naive_bound"] == "memory"
    # naive intensity ≈ d/p = 32 FLOP/B (the score matrix dominates); flash ≈ 2·Br/p = 128 (Br = 128)
    assert long["naive_intensity"] == pytest.approx(64 / 2, rel=0.01)
    assert long["intensity"] == pytest.approx(2 * 128 / 2 * (64 / 64), rel=0.02)


def test_gpt2_xl_weights_read_in_1_5_ms():
    # seed 000 ch. 4: "generating one token requires loading ~3 GB of weights (GPT-2-XL, fp16) from HBM. At
    # 2 TB/s memory bandwidth, that's 1.5ms just for the load."
    spec = load_model("gpt2-xl")
    s = step(spec, SEED_A100, 1, 0, 1, weight_dtype="fp16", mbu=1.0, mfu=1.0)
    # 1.5576B parameters x 2 bytes = 3.115 GB, less the 1.6 MB position table (gathered, not streamed).
    assert s["weights_read_bytes"].value == pytest.approx(3.0e9, rel=0.05)
    assert s["t_mem_seconds"].value == pytest.approx(1.5e-3, rel=0.05)
    assert s["bound"].value == "memory"
    # "The actual computation takes a fraction of that": T_math = 2·P/π ≈ 10 µs, under 1% of T_mem.
    assert s["t_math_seconds"].value < 0.01 * s["t_mem_seconds"].value


def test_decode_batch_sweep_crossover_near_ridge(cli):
    # seed 000 ch. 7: "Batch size 1: memory-bound; 32: memory-bound; 156+: compute-bound" (intensity ≈ B).
    # That table ignores the KV cache: it holds for a short context. GPT-2-XL on an A100 with one cached token:
    doc = cli("roofline", "-g", "a100-80gb", "-m", "gpt2-xl", "--batch", "1,32,128,156,256", "--seq", "1",
              "--json").json()
    rows = {r["batch"]: r for r in doc["rows"]}
    assert rows[1]["bound"] == rows[32]["bound"] == rows[128]["bound"] == "memory"
    assert rows[256]["bound"] == "compute"
    assert rows[1]["intensity"] == pytest.approx(1, rel=0.01)    # "AI = 1 — catastrophically memory-bound"
    assert rows[32]["intensity"] == pytest.approx(32, rel=0.02)
    # T_math = T_mem at B* = ridge · (weights read ÷ FLOPs per token / 2 bytes) ≈ 153 on the 2.039 TB/s part.
    crossover = rows[1]["crossover_batch"]
    assert 150 <= crossover <= 162
    for r in doc["rows"]:
        assert r["crossover_batch"] == crossover and (r["bound"] == "compute") == (r["batch"] >= crossover)


def test_crossover_with_seed_rounded_a100():
    # The same with the seed's rounded A100 (ridge exactly 156). The seed's "B >= 156" ignores the cache;
    # even one cached token (read) plus the new one (written) costs 2·2·L·D·2 = 0.61 MB per sequence per
    # step, 3% of the FLOP time per sequence, so B* = 156 / (1 - 0.03) ≈ 161.
    r = rl.ceilings(SEED_A100, "fp16")
    rl.model_phases(r, load_model("gpt2-xl"), SEED_A100, 1, 1, dtype="fp16", weight_dtype="fp16")
    assert r["crossover_batch"].value == pytest.approx(156, rel=0.05)
    assert r["crossover_batch"].value >= 156


def test_long_context_decode_never_turns_compute_bound(cli):
    # With a long cache, each sequence's K/V bytes per step grow with its FLOPs: for MHA attention the
    # intensity of the attention part is ~1 FLOP/B, so a decode step stays memory-bound at any batch
    # (seed 001 Q2: "attention itself is still [memory-bound] per step due to reading K and V from HBM").
    r = results(cli("roofline", "-g", "a100-80gb", "-m", "llama-2-7b", "--seq", "4096", "--json"))
    assert r["crossover_batch"] is None  # infinite: JSON null
    assert r["bound"] == "memory"


def test_kv_stops_fitting(cli):
    # seed 000 ch. 7: "a 7B model with S=1024 uses ~512 MB of KV cache per request. On a 40GB GPU with 14GB
    # for weights, we have 26GB for KV caches: 26GB / 512MB = ~50 concurrent requests."
    r = results(cli("roofline", "-g", "a100-40gb", "-m", "llama-2-7b", "--seq", "1024", "--mem-util", "1",
                    "--json"))
    # 40 GiB − 12.55 GiB of weights = 27.4 GiB over 512 MiB per sequence = 54.
    assert r["max_batch"] == pytest.approx(50, rel=0.1)


def test_prefill_compute_bound_decode_memory_bound(cli):
    # seed 000 ch. 4 table: prefill "Compute-bound", decode "Memory-bandwidth-bound", GPU utilisation
    # "<5% of peak FLOPS" in decode.
    r = results(cli("roofline", "-g", "a100-80gb", "-m", "llama-2-7b", "--seq", "512", "--json"))
    assert r["prefill_bound"] == "compute" and r["bound"] == "memory"
    assert r["fraction_of_peak"] < 0.05
    assert r["prefill_fraction_of_peak"] == 1


def test_memory_hierarchy_speedups():
    # seed 001: "HBM (~2 TB/s) into on-chip SRAM (~20 TB/s)"; "the difference between holding your data in
    # HBM versus SRAM is roughly [10×]". A chip with those two figures and no L2 figure:
    gpu = GpuSpec(name="seed", memory_bytes=80e9, hbm_bytes_per_s=2e12, flops_per_s={"bf16": 312e12},
                  sram_bytes_per_s=20e12, sm_count=108, sram_bytes_per_sm=192 * 1024,
                  nvlink_bytes_per_s_unidir=300e9, pcie_bytes_per_s_unidir=32e9)
    r = rl.add_hierarchy(rl.ceilings(gpu), gpu)
    assert r["speedup_sram_over_hbm"].value == pytest.approx(10)
    assert r["speedup_hbm_over_nvlink"].value == pytest.approx(2e12 / 300e9)
    assert r["tier_l2_bytes_per_s"].value is None     # unknown stays unknown
    # "all fit inside one SM's 100-200 KB of SRAM": per-SM capacity of the preset
    assert 100e3 <= r["tier_sram_bytes"].value / 108 <= 200 * 1024


def test_hierarchy_of_every_preset(cli):
    # Each GPU preset's tiers: capacities ascend from registers to HBM where known, bandwidths descend.
    from llmcalc.presets import load_all
    for gpu in load_all("gpus"):
        speeds = {t["tier"]: t["bytes_per_s"] for t in rl.hierarchy(gpu) if t["bytes_per_s"]}
        chain = [speeds[n] for n in ("sram", "l2", "hbm", "nvlink") if n in speeds]
        assert chain == sorted(chain, reverse=True), gpu.name
        # host PCIe and the network are two off-device paths, not a chain: Gaudi 3's integrated NICs
        # (3 x 200 GbE, 75 GB/s) outrun its PCIe Gen5 x16 (64 GB/s)
        assert all(speeds[n] <= chain[-1] for n in ("pcie", "network") if n in speeds), gpu.name
