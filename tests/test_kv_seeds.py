"""`llmcalc kv` against the seeds' worked examples and published figures (those are the reference, not our
output): KV bytes per token/sequence/batch, GQA/MQA/MLA, sliding windows, quantised caches, paging, capacity.

Seed 000 = ../shared/seeds/000_71fed12c2aaa3c66.txt (CS 229s "Analyzing Transformer Efficiency").
Seed 001 = ../shared/seeds/001_c2560befe061c7ba.txt (roofline and performance levers).
Seed 002 = ../shared/seeds/002_4220e5101d362c27.txt (COS 597A lecture slides).
Seed 003 = ../shared/seeds/003_2fdff13b4af33bc8.txt ("Decoder-Only Transformers" notes).
"""

from __future__ import annotations

import math

import pytest

from conftest import results
from llmcalc.core.dtypes import bytes_per_element
from llmcalc.core.flops import forward_breakdown
from llmcalc.core.capacity import MAX_BATCH, MAX_TOKENS
from llmcalc.core.kv import (
    decode_step_flops, kv_bytes_per_token, kv_cache_bytes, kv_element_bytes, kv_report,
)
from llmcalc.core.params import embedding_params, param_breakdown
from llmcalc.core.quant import weight_bytes
from llmcalc.presets import load_gpu, load_model
from llmcalc.spec import replace

MiB, GiB = 2**20, 2**30
SEVEN_B = ("--layers", "32", "--hidden", "4096", "--heads", "32", "--vocab", "32000")   # seed 000's "7B"
GPT2 = ("--hidden", "768", "--layers", "12", "--heads", "12", "--vocab", "50257")


def kv(cli, *args):
    return results(cli("kv", *args, "--json"))


# ---------------------------------------------------------------------------------------------- seed 000


@pytest.mark.parametrize("model", [SEVEN_B, ("-m", "llama-2-7b")])
def test_7b_kv_per_token_and_per_1024_tokens(cli, model):
    # seed 000 ch. 5: "KV cache per token: 2 × 2 × 32 × 4096 = 524,288 bytes ≈ 0.5 MB"
    #                 "KV cache for 1024 tokens: 0.5 MB × 1024 = 512 MB"
    r = kv(cli, *model, "--seq", "1024", "--kv-dtype", "fp16")
    assert r["kv_bytes_per_token"] == 524_288
    assert r["kv_bytes_per_sequence"] == 512 * MiB == r["kv_bytes"]   # the seed's "MB" is MiB here


def test_50_requests_on_a100_40gb(cli):
    # seed 000 ch. 5: "Remaining for batching: 40 − 14 = 26 GB free. At 0.5 MB/token, that's 26 GB / 0.5 MB =
    # ~52,000 tokens of KV cache. With S=1024, we can serve a batch of ~50 requests simultaneously."
    # ch. 7: "26GB / 512MB = ~50 concurrent requests."
    # The seed's own arithmetic, exactly: 26e9 / 524,288 = 49,591 tokens, 48 sequences of 1,024 (its "0.5 MB"
    # is 0.5 MiB; docs/seed-errata.md).
    assert MAX_TOKENS(budget=26e9, per_seq=512 * MiB, S=1024) == 49_591
    assert MAX_BATCH(budget=26e9, per_seq=512 * MiB) == 48
    # The tool on the real parts: Llama-2-7B (6.74B parameters, 13.48 GB in fp16) on an A100-40GB (40 GiB).
    r = kv(cli, "-m", "llama-2-7b", "-g", "a100-40gb", "--seq", "1024", "--kv-dtype", "fp16",
           "--weight-dtype", "fp16", "--mem-util", "1", "--engine", "none")     # the seed: weights + cache only
    assert r["weights_bytes"] == 2 * 6_738_415_616            # "7B × 2 bytes = 14 GB"
    assert r["kv_budget_bytes"] == 40 * GiB - 2 * 6_738_415_616
    assert r["max_batch"] == 54                                 # 29.47e9 / 536.9e6 = 54.9
    assert r["max_tokens"] == math.floor((40 * GiB - 2 * 6_738_415_616) / 524_288)
    assert r["max_batch"] == pytest.approx(50, rel=0.1)         # "~50 requests"
    # With vLLM's default 90% of memory the same GPU holds 46: still "~50", and the tool says what it assumed.
    run = cli("kv", "-m", "llama-2-7b", "-g", "a100-40gb", "--seq", "1024", "--engine", "none", "--json")
    doc = run.json()
    assert doc["results"]["max_batch"] == 46 and doc["inputs"]["mem_util"] == 0.9
    assert any("0.9" in n for n in doc["notes"])
    # The default engine (vllm) also keeps room for its prefill transient: 8,192 tokens × 82,432 B of one
    # layer's activations (2·(2·4096 + 3·11008) bytes per token) = 675 MB, one sequence fewer, and says so.
    vllm = cli("kv", "-m", "llama-2-7b", "-g", "a100-40gb", "--seq", "1024", "--json").json()
    assert vllm["results"]["max_batch"] == math.floor((0.9 * 40 * GiB - 2 * 6_738_415_616 - 8192 * 82_432)
                                                      / 524_288 / 1024) == 45
    assert any("--engine none" in n for n in vllm["notes"])


def test_gpt2_small_cheat_sheet_is_the_fp32_figure(cli):
    # seed 000 ch. 8 cheat sheet: "KV cache per token | 4Ld bytes | 73.7 KB" for GPT-2 small (L=12, d=768).
    # 4·L·d = 4 × 12 × 768 = 36,864 bytes (36.9 KB) in fp16, the chapter's own 2 × 2 × L × d. The sheet's
    # 73.7 KB = 73,728 bytes is 8·L·d: the fp32 cache (docs/seed-errata.md).
    fp16 = kv(cli, "-m", "gpt2", "--seq", "1024", "--kv-dtype", "fp16")
    fp32 = kv(cli, *GPT2, "--seq", "1024", "--kv-dtype", "fp32")
    assert fp16["kv_bytes_per_token"] == 4 * 12 * 768 == 36_864
    assert fp32["kv_bytes_per_token"] == 73_728
    assert round(fp32["kv_bytes_per_token"] / 1e3, 1) == 73.7          # what the sheet printed
    assert fp16["kv_bytes_per_token"] != pytest.approx(73.7e3, rel=0.05)


def test_70b_at_32k_is_not_40_gb(cli):
    # seed 000 ch. 5: "for a 70B model with 32K context, it's ~40 GB per request!"
    # With the chapter's own 2·2·L·d (L = 80, d = 8192, fp16): 85.9 GB. Llama-2-70B has 8 KV heads (GQA,
    # Ainslie et al. 2023; seed 001's table: "Llama-2 70B (g=8)"): 10.7 GB. Neither reading gives 40 GB.
    mha = kv(cli, "--layers", "80", "--hidden", "8192", "--heads", "64", "--vocab", "32000", "--seq", "32Ki",
             "--kv-dtype", "fp16")
    gqa = kv(cli, "-m", "llama-2-70b", "--seq", "32Ki", "--kv-dtype", "fp16")
    assert mha["kv_bytes_per_sequence"] == 4 * 80 * 8192 * 32768 == 85_899_345_920
    assert gqa["kv_bytes_per_sequence"] == 2 * 2 * 80 * 8 * 128 * 32768 == 10_737_418_240
    assert mha["kv_bytes_per_sequence"] / gqa["kv_bytes_per_sequence"] == 8          # H/g = 64/8
    for r in (mha, gqa):
        assert not 30e9 < r["kv_bytes_per_sequence"] < 50e9


def test_decode_step_with_and_without_cache():
    # seed 000 ch. 5: "Without KV Cache (step N): Compute Q,K,V for ALL N tokens: 3 × 2Nd² = 6Nd² FLOPs
    # vs With KV Cache (step N): Compute Q,K,V for 1 token: 3 × 2d² = 6d² FLOPs ← N× cheaper!"
    spec = load_model("gpt2")
    d, L = 768, 12
    N = 1000                                     # step N: 999 cached tokens and the new one
    with_cache, without = decode_step_flops(spec, 1, N - 1)
    # projections per token per layer: Q, K, V (6d², the seed's count) and the output projection (2d²)
    assert with_cache["attention_projection_flops"].value == (6 + 2) * d**2 * L
    assert without["attention_projection_flops"].value == (6 + 2) * N * d**2 * L
    assert without["attention_projection_flops"].value / with_cache["attention_projection_flops"].value == N
    # the new token attends over all N keys: QKᵀ and × V, 2·N·d each, per layer
    assert with_cache["attention_score_flops"].value == 4 * N * d * L
    # without the cache it is the forward of all N tokens, exactly what `llmcalc flops --seq N` counts
    assert without["forward_flops"].value == forward_breakdown(spec, 1, N)["forward_flops"].value


def test_decode_flops_are_2_n_params_plus_attention(cli):
    # seed 003 sec. 7: "The FLOPs requirements for the hidden-dimension matrix multiplies during generation are
    # 2BN_params, since we are only processing a single token". N_params here is the matmul weights: every
    # parameter but the embedding lookup (a gather) and the norms (Llama-2 has no biases, an untied LM head).
    spec = load_model("llama-2-7b")
    B = 8
    r = kv(cli, "-m", "llama-2-7b", "--seq", "4000", "--batch", str(B))
    parts = param_breakdown(spec)
    n_matmul = parts["total"] - embedding_params(spec) - parts["norms"]
    assert r["decode_flops_with_cache"] - r["decode_attention_flops_with_cache"] == 2 * B * n_matmul
    # seed 000 cheat sheet: "Arithmetic intensity (decode) ≈ batch size | 1 (for B=1)"
    for b in (1, 32):
        short = kv(cli, "-m", "llama-2-7b", "--seq", "1", "--batch", str(b))
        assert short["decode_intensity_with_cache"] == pytest.approx(b, rel=0.05)


# ---------------------------------------------------------------------------------------------- seed 003


def test_eq_6_1_and_7_1_with_tensor_parallelism(cli):
    # seed 003 eq. 6.1: M_kv = 2pBSDL/T; eq. 7.1: M = pN_params + 2pBSDL/T (Llama-2-7B is MHA: D = K·d_h).
    p, B, S, D, L, T = 2, 8, 2048, 4096, 32, 4
    r = kv(cli, "-m", "llama-2-7b", "--batch", str(B), "--seq", str(S), "--tp", str(T))
    assert r["kv_bytes"] == 2 * p * B * S * D * L
    assert r["kv_bytes_per_gpu"] == 2 * p * B * S * D * L / T
    assert r["weights_bytes_per_gpu"] == p * 6_738_415_616 / T
    assert r["total_bytes_per_gpu"] == (p * 6_738_415_616 + 2 * p * B * S * D * L) / T
    assert r["total_bytes"] == p * 6_738_415_616 + 2 * p * B * S * D * L


def test_falcon_40b_case_study(cli):
    # seed 003 sec. 8: Falcon-40B, D = 8192, L = 60, S = 2048: "M_total ≈ (80GiB + 4GiB × B)/T" — eq. 6.1 with
    # D = 8192 gives 2·2·2048·8192·60 = 3.75 GiB per sequence. Falcon-40B has 8 KV heads of 64 (GQA,
    # new_decoder_architecture), so a serving engine stores 16x less: 240 MiB per sequence.
    mha = kv(cli, "-m", "falcon-40b", "--kv-heads", "128", "--seq", "2048")
    gqa = kv(cli, "-m", "falcon-40b", "--seq", "2048")
    assert mha["kv_bytes_per_sequence"] == 2 * 2 * 2048 * 8192 * 60 == 3.75 * GiB
    assert mha["kv_bytes_per_sequence"] == pytest.approx(4 * GiB, rel=0.07)          # "4GiB × B"
    assert gqa["kv_bytes_per_sequence"] == 2 * 2 * 60 * 8 * 64 * 2048 == 240 * MiB
    # With T = 8 each GPU holds one KV head: the cache divides by T = 8 exactly; with T = 16 a head is
    # replicated on two GPUs (vLLM), so the per-GPU cache stops shrinking.
    t8 = kv(cli, "-m", "falcon-40b", "--seq", "2048", "--tp", "8")
    t16 = kv(cli, "-m", "falcon-40b", "--seq", "2048", "--tp", "16")
    assert t8["kv_bytes_per_gpu"] == 240 * MiB / 8 == t16["kv_bytes_per_gpu"]


# ---------------------------------------------------------------------------------------------- seed 001


def test_mqa_gqa_ratios(cli):
    # seed 001 "Multi-Head, MQA, and GQA": "MQA | H | 1 | 1/H × baseline", "GQA-g | H | g | g/H × baseline".
    base = ("--layers", "32", "--hidden", "4096", "--heads", "32", "--vocab", "32000", "--seq", "4096")
    mha = kv(cli, *base)["kv_bytes_per_sequence"]
    for g in (1, 4, 8, 16):
        assert kv(cli, *base, "--kv-heads", str(g))["kv_bytes_per_sequence"] * 32 == mha * g
    # Presets: Llama-3.1-8B and Mistral-7B are GQA-8 of 32 (seed 001: "Llama-2 70B (g=8), Mistral, Llama-3").
    assert kv(cli, "-m", "llama-3.1-8b", "--seq", "4096")["kv_bytes_per_token"] == 2 * 32 * 8 * 128 * 2
    assert kv(cli, "-m", "llama-2-7b", "--seq", "4096")["kv_bytes_per_token"] == 4 * kv(
        cli, "-m", "mistral-7b", "--seq", "4096")["kv_bytes_per_token"]


def test_mla_caches_the_latent_and_the_rope_key(cli):
    # DeepSeek-V2, arXiv:2405.04434 sec. 2.1.2 and Table 1: MLA caches (d_c + d_h^R)·l elements per token;
    # with d_c = 4·d_h and d_h^R = d_h/2 that is "(9/2)·d_h·l". DeepSeek-V3 keeps d_c = 512, d_h^R = 64, d_h = 128.
    r = kv(cli, "-m", "deepseek-v3", "--seq", "4096")
    L, d_h = 61, 128
    assert r["kv_bytes_per_token"] == L * (512 + 64) * 2 == 70_272
    assert r["kv_bytes_per_token"] / 2 == 4.5 * d_h * L
    # the same model caching per-head K (192 wide) and V (128) for its 128 heads would hold 71x more
    assert 61 * 128 * (192 + 128) * 2 / r["kv_bytes_per_token"] == pytest.approx(71.1, rel=1e-3)
    # tensor parallelism does not split the latent (it is not per head): every GPU holds all of it
    t8 = kv(cli, "-m", "deepseek-v3", "--seq", "4096", "--tp", "8")
    assert t8["kv_bytes_per_sequence_per_gpu"] == r["kv_bytes_per_sequence"]


def test_sliding_window_caps_the_cache(cli):
    # seed 001: "Sliding window attention (Mistral, Longformer): each token only attends to the last W
    # tokens"; Mistral 7B, arXiv:2310.06825 sec. 2: a rolling buffer cache of fixed size W = 4096.
    per_token = 2 * 32 * 8 * 128 * 2
    short = kv(cli, "-m", "mistral-7b", "--seq", "1000")
    at_w = kv(cli, "-m", "mistral-7b", "--seq", "4096")
    long = kv(cli, "-m", "mistral-7b", "--seq", "32k")
    assert short["kv_bytes_per_sequence"] == 1000 * per_token
    assert at_w["kv_bytes_per_sequence"] == long["kv_bytes_per_sequence"] == 4096 * per_token
    assert long["kv_bytes_per_token"] == per_token                  # per token: the uncapped rate
    # Mistral paper sec. 2: "for a sequence length of 32k tokens, this reduces the cache memory usage by 8x"
    assert 32768 * per_token / kv(cli, "-m", "mistral-7b", "--seq", "32Ki")["kv_bytes_per_sequence"] == 8
    # Gemma-2-9B: 21 of 42 layers local (window 4096), 21 global; per layer and token 2·8·256·2 = 8,192 bytes
    g = kv(cli, "-m", "gemma-2-9b", "--seq", "8192")
    assert g["kv_bytes_per_token"] == 42 * 8192
    assert g["kv_bytes_per_sequence"] == 8192 * (21 * 8192 + 21 * 4096)
    # windowed decode attends over min(S+1, W) keys in the local layers
    with_cache, _ = decode_step_flops(load_model("mistral-7b"), 1, 32000)
    assert with_cache["attention_score_flops"].value == 2 * 32 * 256 * 4096 * 32


def test_quantised_cache_sizes(cli):
    # seed 001: "KV-cache quantisation: store K, V in INT8 or INT4 instead of FP16. Halves or quarters cache
    # memory"; per-group scales (one fp16 per G elements) add 2/G bytes per element.
    bf16 = kv(cli, "-m", "llama-3.1-8b", "--seq", "8192")["kv_bytes"]
    assert kv(cli, "-m", "llama-3.1-8b", "--seq", "8192", "--kv-dtype", "fp32")["kv_bytes"] == 2 * bf16
    assert kv(cli, "-m", "llama-3.1-8b", "--seq", "8192", "--kv-dtype", "fp16")["kv_bytes"] == bf16
    for dtype, ratio in (("fp8", 2), ("int8", 2), ("int4", 4)):
        assert kv(cli, "-m", "llama-3.1-8b", "--seq", "8192", "--kv-dtype", dtype)["kv_bytes"] * ratio == bf16
    g32 = kv(cli, "-m", "llama-3.1-8b", "--seq", "8192", "--kv-dtype", "int4", "--kv-group-size", "32")
    assert g32["kv_bytes_per_element"] == 0.5 + 2 / 32 == 0.5625
    assert g32["kv_bytes"] == bf16 * 0.5625 / 2
    assert kv_element_bytes("int8", 64) == bytes_per_element("int8", 64) == 1 + 2 / 64


def test_weights_formula_is_weight_bytes():
    # the weights row is written as a formula for --explain; it must equal core.params.weight_bytes
    for name in ("gpt2", "llama-3.1-8b", "mixtral-8x7b", "deepseek-v3", "gemma-2-9b"):
        spec = load_model(name)
        for dtype, g in (("bf16", 0), ("fp32", 0), ("int8", 0), ("int4", 32), ("fp8", 128)):
            r = kv_report(spec, 1, 16, weight_dtype=dtype, weight_group_size=g)
            assert r["weights_bytes"].value == weight_bytes(spec, dtype, g), (name, dtype)


# ---------------------------------------------------------------------------------------------- paging


def test_last_block_fragmentation(cli):
    # vLLM (Kwon et al. 2023, arXiv:2309.06180 sec. 4.1): blocks of b tokens; only a sequence's last block is
    # partly empty. 1000 tokens in blocks of 16: 63 blocks = 1008 slots, 8 wasted.
    r = kv(cli, "-m", "llama-3.1-8b", "--seq", "1000")
    per_token = r["kv_bytes_per_token"]
    assert r["paged_kv_bytes_per_sequence"] == 1008 * per_token
    assert r["paging_waste_bytes_per_sequence"] == 8 * per_token
    assert kv(cli, "-m", "llama-3.1-8b", "--seq", "1024")["paging_waste_bytes_per_sequence"] == 0
    assert kv(cli, "-m", "llama-3.1-8b", "--seq", "1000", "--block-size", "1")["paging_waste_bytes_per_sequence"] == 0


def test_paging_serves_2_to_4_times_more_requests(cli):
    # seed 000 ch. 7: PagedAttention "eliminates fragmentation and lets us serve 2–4× more concurrent requests";
    # seed 002: contiguous engines "pre-allocate contiguous memory to the request's max length";
    # vLLM paper sec. 1 / Fig. 2: in existing systems "only 20.4% - 38.2% of the KV cache memory is used to
    # store the actual token states" (61.8-79.6% wasted).
    r = kv(cli, "-m", "llama-2-7b", "-g", "a100-40gb", "--seq", "512", "--max-output", "2048",
           "--mean-output", "256")
    per_token = 524_288
    assert r["contiguous_bytes_per_request"] == (512 + 2048) * per_token
    assert r["paged_bytes_per_request"] == 768 * per_token             # 48 blocks of 16
    assert r["contiguous_waste_fraction"] == pytest.approx(1 - 768 / 2560)   # 70%
    assert 0.618 <= r["contiguous_waste_fraction"] <= 0.796
    budget = r["kv_budget_bytes"]
    assert r["max_requests_contiguous"] == math.floor(budget / (2560 * per_token)) == 18
    assert r["max_requests_paged"] == math.floor(budget / (768 * per_token)) == 62
    assert 2 <= r["paging_gain"] <= 4
    # the mean defaults to half the maximum, and the tool says so
    doc = cli("kv", "-m", "llama-2-7b", "--seq", "512", "--max-output", "2048", "--json").json()
    assert doc["inputs"]["mean_output"] == 1024
    assert any("half" in n for n in doc["notes"])


# ---------------------------------------------------------------------------------------------- capacity


def test_max_batch_a100_40gb_and_check(cli):
    a100 = load_gpu("a100-40gb")
    assert a100.memory_bytes == 40 * GiB
    spec = load_model("llama-3.1-8b")
    r = kv(cli, "-m", "llama-3.1-8b", "-g", "a100-40gb", "--seq", "8192", "--batch", "8", "--engine", "none")
    per_seq = 8192 * 131_072                                            # 1 GiB per sequence
    budget = 0.9 * 40 * GiB - weight_bytes(spec, "bf16")
    assert r["kv_bytes_per_sequence"] == per_seq
    assert r["max_batch"] == math.floor(budget / per_seq) == 21
    assert r["max_tokens"] == math.floor(budget / per_seq * 8192)
    assert r["fits"] is True
    # "does not fit" is an answer (exit 0) unless --check, then exit 3 with one line on stderr
    big = cli("kv", "-m", "llama-3.1-8b", "-g", "a100-40gb", "--seq", "8192", "--batch", "64", "--json")
    assert big.code == 0 and big.json()["results"]["fits"] is False
    checked = cli("kv", "-m", "llama-3.1-8b", "-g", "a100-40gb", "--seq", "8192", "--batch", "64", "--json", "--check")
    assert checked.code == 3 and checked.stdout.strip().startswith("{")
    assert checked.stderr.count("\n") == 1 and "does not fit" in checked.stderr
    ok = cli("kv", "-m", "llama-3.1-8b", "-g", "a100-40gb", "--seq", "8192", "--batch", "8", "--json", "--check")
    assert ok.code == 0
    # weights alone larger than the GPU: nothing fits, no negative numbers
    none = kv(cli, "-m", "llama-3.1-70b", "-g", "a100-40gb", "--seq", "1024")
    assert none["max_batch"] == 0 and none["max_tokens"] == 0 and none["fits"] is False
    # with --tp 8 the same model fits, and the budget is per GPU
    tp8 = kv(cli, "-m", "llama-3.1-70b", "-g", "a100-40gb", "--seq", "1024", "--tp", "8", "--engine", "none")
    assert tp8["max_batch"] > 0
    assert tp8["kv_budget_bytes"] == 0.9 * 40 * GiB - tp8["weights_bytes"] / 8


def test_core_api_takes_arrays():
    import numpy as np

    spec = load_model("gemma-2-9b")
    seq = np.array([1.0, 4096.0, 8192.0])
    batch = np.array([1.0, 2.0, 3.0])
    got = kv_cache_bytes(spec, batch, seq)
    want = [kv_cache_bytes(spec, int(b), int(s)) for b, s in zip(batch, seq)]
    assert got.tolist() == want
    assert kv_bytes_per_token(spec, "fp8") == 42 * 2 * 8 * 256


# ---------------------------------------------------------------------------------------------- the CLI


def test_json_and_sweep_rows(cli):
    doc = cli("kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "32k", "--json").json()
    assert doc["command"] == "kv" and doc["inputs"]["seq"] == 32000
    for key in ("kv_bytes_per_token", "kv_bytes", "weights_bytes", "decode_flops_with_cache",
                "decode_flops_without_cache", "max_batch", "max_tokens"):
        assert isinstance(doc["results"][key], (int, float)), key
    sweep = cli("kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "1k..8k+1k", "--batch", "1,8",
                "--json").json()
    rows = sweep["rows"]
    assert len(rows) == 16 and {r["batch"] for r in rows} == {1, 8}
    one = results(cli("kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "3000", "--batch", "8", "--json"))
    row = next(r for r in rows if r["seq"] == 3000 and r["batch"] == 8)
    assert {k: row[k] for k in one} == one                     # a sweep point equals the single run


def test_table_sweep_draws_the_stacked_chart(cli):
    run = cli("kv", "-m", "mistral-7b", "-g", "l40s", "--seq", "1k..16k+5k", "-o", "table")
    assert run.code == 0 and "weights + KV cache (GiB) by seq" in run.stdout and "\x1b[" not in run.stdout
    quiet = cli("kv", "-m", "mistral-7b", "-g", "l40s", "--seq", "1k..16k+5k", "-o", "table", "--no-chart")
    assert "weights + KV cache (GiB)" not in quiet.stdout
    single = cli("kv", "-m", "mistral-7b", "--seq", "1k", "-o", "table")
    assert "GiB) by" not in single.stdout


def test_explain_rows_evaluate_to_their_values(cli):
    r = kv_report(load_model("gemma-2-9b"), 4, 6000, kv_dtype="int4", group_size=32, gpu=load_gpu("h100-sxm"),
                  tp=2, max_output=1000, mean_output=300)
    for key, row in r.items():
        if row.formula is not None:
            assert row.formula(**row.symbols) == row.value, key
    line = "kv_bytes_per_token = 2·L·K·d_h·p = 2 × 32 × 32 × 128 × 2 = 512 KiB"
    text = cli("kv", "-m", "llama-2-7b", "--seq", "1024", "--explain", "-o", "tsv").stdout
    assert line in text
    # with --json the explanation travels inside the one JSON object (INTERFACE: nothing else on stdout)
    doc = cli("kv", "-m", "llama-2-7b", "--seq", "1024", "--explain", "--json").json()
    assert line in doc["explain"]


@pytest.mark.parametrize("args, message", [
    (("-m", "llama-3.1-8b", "--kv-dtype", "fp64"), "--kv-dtype"),
    (("-m", "llama-3.1-8b", "--kv-group-size", "32"), "--kv-group-size"),
    (("-m", "llama-3.1-8b", "--tp", "3"), "--tp 3"),
    (("-m", "llama-3.1-8b", "--tp", "1,3"), "--tp 3 must divide"),
    (("-m", "llama-3.1-8b", "-g", "h100-sxm", "--mem-util", "1.5"), "--mem-util"),
    (("-m", "llama-3.1-8b", "--mem-util", "0.8"), "needs a GPU"),
    (("-m", "llama-3.1-8b", "--check"), "needs a GPU"),
    (("-m", "llama-3.1-8b", "--max-output", "100", "--mean-output", "200"), "cannot exceed"),
    (("-m", "llama-3.1-8b", "--mean-output", "200"), "--max-output"),
    (("-m", "llama-3.1-8b", "--seq", "-5"), "--seq"),
    (("-m", "llama-3.1-8b", "--seq", "1.5"), "whole number"),
    (("-m", "llama-3.1-8b", "--block-size", "0"), "--block-size"),
    (("-m", "llama-3.1-8b", "--weight-dtype", "int3"), "--weight-dtype"),
    (("-m", "llama-3.1-8", "--seq", "1"), "llama-3.1-8b"),
    (("-m", "llama-3.1-8b", "--fields", "kv_byte"), "Unknown field"),
    (("--seq", "1024",), "no model given"),
])
def test_bad_input_is_one_line_exit_2(cli, args, message):
    run = cli("kv", *args, "--json")
    assert run.code == 2, run
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
