"""Issue 10's single-sourced rules and per-kind parsers, in process (fast):

- one parser per kind of quantity: a bandwidth refuses FLOP rates and sizes, a FLOP rate refuses bandwidths,
  bits are an eighth of bytes (IEC 80000-13: 1 byte = 8 bits), times take s/ms/us/ns;
- the tensor-parallel rule lives in core/layout.py and every caller (kv, serve, train-mem, parallel's
  layout check, its search and its minimum data-parallel degree) accepts and refuses the same degrees;
- the serve --target-latency search returns the largest batch within the target (checked against serve()
  at that batch and the next one).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcalc import spec as specs
from llmcalc.core import layout
from llmcalc.errors import InputError
from llmcalc.presets import load_gpu, load_model
from llmcalc.units import parse_bandwidth, parse_bytes, parse_count, parse_flop_rate, parse_time

# ----------------------------------------------------------------------------------------------
# Parsers by kind


@pytest.mark.parametrize("text,bytes_per_s", [
    ("3.35TB/s", 3.35e12), ("3.35 TB/s", 3.35e12), ("2e12", 2e12), ("900GB/s", 900e9), ("1GiB/s", 2**30),
    # bits: 400 Gb/s Ethernet/InfiniBand NDR is 50 GB/s (8 bits per byte)
    ("400Gb/s", 400e9 / 8), ("400Gbps", 400e9 / 8), ("400Gbit/s", 400e9 / 8), ("100kb/s", 100e3 / 8)])
def test_bandwidth(text, bytes_per_s):
    assert parse_bandwidth(text, "--net-bw") == pytest.approx(bytes_per_s, rel=1e-15)


@pytest.mark.parametrize("parse,text,kind", [
    (parse_bandwidth, "50TFLOPS", "compute rate"), (parse_bandwidth, "80GB", "size"), (parse_bandwidth, "30ms", "time"),
    (parse_flop_rate, "3.35TB/s", "bandwidth"), (parse_flop_rate, "400Gb/s", "bandwidth"),
    (parse_flop_rate, "80GiB", "size"), (parse_time, "5GB", "size"), (parse_time, "1TB/s", "bandwidth")])
def test_each_parser_refuses_the_other_kinds_by_name(parse, text, kind):
    with pytest.raises(InputError, match=kind):
        parse(text, "--flag")


@pytest.mark.parametrize("parse,text", [(parse_count, "80GB"), (parse_count, "3.35TB/s"), (parse_bytes, "989TFLOPS"),
                                        (parse_bytes, "3.35TB/s"), (parse_bandwidth, "3.35tb/s"),
                                        (parse_bandwidth, "nan"), (parse_flop_rate, "1e400"),
                                        (parse_time, "inf"), (parse_count, "9" * 5000)])
def test_wrong_kind_ambiguous_or_non_finite_is_refused(parse, text):
    with pytest.raises(InputError):
        parse(text, "--flag")


@pytest.mark.parametrize("text,flops", [("989TFLOPS", 989e12), ("989 TFLOP/s", 989e12), ("1.98PFLOPS", 1.98e15),
                                        ("1e15", 1e15), ("2POPS", 2e15)])
def test_flop_rate(text, flops):
    assert parse_flop_rate(text) == pytest.approx(flops, rel=1e-15)


@pytest.mark.parametrize("text,seconds", [("30ms", 0.03), ("20us", 20e-6), ("20µs", 20e-6), ("5ns", 5e-9),
                                          ("0.5", 0.5), ("0.5s", 0.5), ("2min", 120), ("1h", 3600)])
def test_time(text, seconds):
    assert parse_time(text) == seconds


# ----------------------------------------------------------------------------------------------
# The tensor-parallel rule: one source, every caller


MODELS = ["gpt2", "llama-3.1-8b", "llama-2-70b", "qwen2.5-7b", "mixtral-8x7b", "deepseek-v3", "falcon-40b"]
DEGREES = range(1, 17)


def test_rule_facts():
    # Megatron-LM splits whole heads: GPT-2's 12 heads take 1, 2, 3, 4, 6, 12, never 5 or 8
    gpt2 = load_model("gpt2")
    assert [t for t in DEGREES if layout.tp_allowed(gpt2, t)] == [t for t in DEGREES if 12 % t == 0]
    # vLLM replicates KV heads when T is a multiple of K: Llama-2-70B (8 KV heads) runs at TP 16
    assert layout.tp_allowed(load_model("llama-2-70b"), 16)
    # Qwen2.5-7B: 28 query heads, 4 KV heads: 7 divides the heads but neither divides nor is a multiple of 4
    assert not layout.tp_allowed(load_model("qwen2.5-7b"), 7)
    # an MLP width T does not divide (Megatron's ColumnParallelLinear: divide(F, T) asserts)
    odd = specs.replace(load_model("llama-2-7b"), ffn=3000)
    with pytest.raises(InputError, match="MLP width"):
        layout.check_tp(odd, 16)
    assert layout.tp_allowed(odd, 8)


def _raises(fn) -> bool:
    try:
        fn()
    except InputError:
        return True
    return False


@pytest.mark.parametrize("name", MODELS)
def test_every_caller_uses_the_one_rule(name):
    from llmcalc.core import kv, memory, parallel
    spec = load_model(name)
    for t in DEGREES:
        allowed = bool(layout.tp_allowed(spec, t))
        assert _raises(lambda: kv.check_tp(spec, t)) is not allowed, (name, t, "kv/serve/specdec")
        assert _raises(lambda: parallel.check_degrees(spec, t, 1)) is not allowed, (name, t, "parallel")
        assert _raises(lambda: memory.training_memory(spec, 1, 128, tp=t)) is not allowed, (name, t, "train-mem")


@pytest.mark.parametrize("name", MODELS)
def test_the_search_and_its_minimum_data_parallel_degree_use_the_rule(name):
    from llmcalc.core import parallel, parallel_search
    from llmcalc.core.parallel_search import enumerate_layouts
    from llmcalc.core.parallel_search import min_dp as _min_dp
    spec = load_model(name)
    for N in (6, 8, 12, 16):
        space = parallel_search.SearchSpace()
        rows = enumerate_layouts(spec, N, 1024, 8, "1f1b", space)
        tps = {int(t) for t in rows["tp"]} if rows and len(rows["tp"]) else set()
        assert all(layout.tp_allowed(spec, t) for t in tps), (name, N, tps)
        best = max((t * p for t in range(1, min(N, 8) + 1) if N % t == 0 and layout.tp_allowed(spec, t)
                    for p in range(1, N // t + 1) if (N // t) % p == 0 and p <= spec.layers
                    and spec.layers % p == 0), default=0)
        assert _min_dp(spec, N, 8, space) == (N // best if best else 0), (name, N)


def test_min_dp_no_longer_drops_the_kv_head_check():
    # 12 heads, 4 KV heads: TP 6 divides the heads but not the KV heads (the drifted copy accepted it)
    spec = specs.replace(load_model("gpt2"), kv_heads=4, layers=2)
    from llmcalc.core import parallel, parallel_search
    from llmcalc.core.parallel_search import min_dp as _min_dp
    assert not layout.tp_allowed(spec, 6)
    assert _min_dp(spec, 6, 8, parallel_search.SearchSpace()) == 3  # TP 1 × PP 2 is the widest split: dp = 6 / 2


@pytest.mark.parametrize("p,ok", [(1, True), (12, True), (13, False), (1000, False), (0, False)])
def test_pipeline_needs_a_layer_per_stage(p, ok):
    assert _raises(lambda: layout.check_pp(load_model("gpt2"), p)) is not ok


def test_rule_takes_arrays():
    np = pytest.importorskip("numpy")
    spec = load_model("gpt2")
    t = np.array([1.0, 2, 5, 12, 0])
    assert layout.tp_allowed(spec, t).tolist() == [True, True, False, True, False]
    with pytest.raises(InputError, match="5 must divide the 12 attention heads"):
        layout.check_tp(spec, t[:3])


# ----------------------------------------------------------------------------------------------
# serve --target-latency: the largest batch within the target


@pytest.mark.parametrize("target", [0.004, 0.012, 0.03, 0.1])
def test_target_batch_is_the_largest_within_the_target(target):
    from llmcalc.core import serve as sv
    spec, gpu = load_model("llama-3.1-8b"), load_gpu("a100-80gb")
    fit = sv.serve(spec, gpu, 1, 512, 256)
    max_batch = int(fit["max_batch"].value)
    b = sv.target_batch(spec, gpu, 512, 256, target, max_batch)

    def tpot(batch):
        return sv.serve(spec, gpu, batch, 512, 256)["decode_seconds_per_token"].value

    if b:
        assert tpot(b) <= target * (1 + 1e-12)
    if b < max_batch:
        assert tpot(b + 1) > target
    assert 0 <= b <= max_batch and not math.isnan(b)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=40), st.from_regex(
    r"\A[+-]?[0-9_.]{0,12}(e[+-]?[0-9]{1,4})? ?[kKmMgGtTpP]?i?(B/s|b/s|bps|Bps|FLOPS|flop/s|OPS|B|b|s|ms|us|ns|min|h)?\Z")))
def test_parsers_answer_a_finite_number_or_one_input_error(text):
    for parse in (parse_count, parse_bytes, parse_bandwidth, parse_flop_rate, parse_time):
        try:
            value = parse(text, "--flag")
        except InputError as exc:
            assert "\n" not in str(exc)
        else:
            assert math.isfinite(value)


def test_preset_files_read_bits_as_the_command_line_does(tmp_path):
    """A NIC written as network datasheets give it (400 Gb/s) is 50 GB/s in a preset too (one parser per kind)."""
    path = tmp_path / "g.yaml"
    path.write_text("memory_bytes: 80GiB\nhbm_bytes_per_s: 3.35TB/s\nflops_per_s: {bf16: 989TFLOPS}\n"
                    "nic_bytes_per_s_unidir: 400Gb/s\n")
    gpu = load_gpu(str(path))
    assert gpu.nic_bytes_per_s_unidir == 400e9 / 8 and gpu.hbm_bytes_per_s == 3.35e12
    path.write_text("memory_bytes: 80GiB\nhbm_bytes_per_s: 3.35tb/s\nflops_per_s: {bf16: 989TFLOPS}\n")
    with pytest.raises(InputError, match="ambiguous"):
        load_gpu(str(path))
