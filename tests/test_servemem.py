"""Memory while serving (core/servemem.py; `kv` and `serve` --engine). The published Qwen measurements are
validation cases (tests/validation_cases.py, group "serving-memory")."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmcalc.core import servemem as sm
from llmcalc.presets import load_gpu, load_model


@pytest.fixture(scope="module")
def spec():
    return load_model("llama-3.1-8b")


def _t(spec, engine, B, P, **kw):
    return sm.prefill_transient(spec, B, P, engine=engine, **kw)


def test_engines_order_and_chunking(spec):
    long = {e: _t(spec, e, 4, 16384)["transient_bytes"].value for e in sm.ENGINES}
    assert long["vllm"] < long["hf"] < long["hf-legacy"]
    # vLLM's chunk is capped by max_batched_tokens: the same transient for any longer prompt
    assert _t(spec, "vllm", 4, 16384)["transient_bytes"].value == _t(spec, "vllm", 8, 32768)["transient_bytes"].value
    assert _t(spec, "vllm", 1, 100)["prefill_tokens"].value == 100
    # hf: the workspace is linear in the batch's tokens
    a, b = (_t(spec, "hf", 1, n)["workspace_bytes"].value for n in (1000, 3000))
    assert b == pytest.approx(3 * a)


def test_legacy_logits_are_b_s_v_in_bf16_and_fp32(spec):
    r = _t(spec, "hf-legacy", 2, 1000)
    assert r["logits_bytes"].value == 2 * 1000 * spec.vocab * (2 + 4)
    assert r["transient_bytes"].value == r["logits_bytes"].value


@pytest.mark.parametrize("cmd", [["kv", "--seq", "8192"], ["serve", "-g", "h100-sxm", "--prompt", "8192"]])
@pytest.mark.parametrize("engine", sm.ENGINES)
def test_cli_peak_beside_total(cli, cmd, engine):
    doc = cli(cmd[0], "-m", "llama-3.1-8b", *cmd[1:], "--engine", engine, "--json").json()
    r = doc["results"]
    keys = list(r)
    total = r["total_bytes"] if "total_bytes" in r else r["weights_bytes"] + r["kv_bytes"]
    assert r["peak_memory_bytes"] == pytest.approx(total + r["transient_bytes"])
    anchor = "total_bytes" if cmd[0] == "kv" else "kv_bytes"
    assert keys.index("peak_memory_bytes") == keys.index(anchor) + 1
    assert doc["inputs"]["engine"] == engine


def test_cli_bad_engine(cli):
    run = cli("kv", "-m", "llama-3.1-8b", "--engine", "tgi")
    assert run.code == 2 and "--engine" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def _cache_bytes(name: str, batch: int, seq: int) -> int:
    from llmcalc.core.kv import kv_cache_bytes
    return kv_cache_bytes(load_model(name), batch, seq, "bf16")


@pytest.mark.parametrize("engine", sm.ENGINES)
@pytest.mark.parametrize("name,gpu,seq", [("llama-3.1-8b", "a100-40gb", 4096), ("llama-2-7b", "a100-40gb", 1024),
                                          ("gemma-3-27b", "h100-sxm", 2048), ("gpt2", "t4", 1000)])
def test_kv_capacity_is_the_last_batch_and_length_whose_peak_fits(cli, engine, name, gpu, seq):
    # Independent of core/capacity.py's closed forms: enumerate batches and lengths with the whole-model
    # transient (prefill_transient, tp = 1) beside the cache, and find the edge of what fits.
    doc = cli("kv", "-m", name, "-g", gpu, "--seq", str(seq), "--engine", engine, "--json").json()
    r = doc["results"]
    spec = load_model(name)
    room = r["usable_memory_bytes"] - r["weights_bytes"]

    def need(batch, length):
        transient = sm.prefill_transient(spec, batch, length, engine=engine)["transient_bytes"].value
        return _cache_bytes(name, batch, length) + transient
    b = r["max_batch"]
    assert b >= 1 and need(b, seq) <= room + 1 < need(b + 1, seq)
    s_max = r["max_seq"]
    assert need(1, s_max) <= room + 1 < need(1, s_max + 1)
    if engine == "none":                       # the seeds' arithmetic: weights + cache only
        assert b == room // r["kv_bytes_per_sequence"]


@pytest.mark.parametrize("engine", sm.ENGINES)
def test_serve_capacity_counts_the_transient_of_its_prompt(cli, engine):
    doc = cli("serve", "-m", "llama-3.1-8b", "-g", "a100-80gb", "--prompt", "3000", "--gen", "500", "--engine", engine,
              "--json").json()
    r, spec = doc["results"], load_model("llama-3.1-8b")
    room = 0.9 * load_gpu("a100-80gb").device_memory_bytes - r["weights_bytes"]

    def need(batch):
        return (_cache_bytes("llama-3.1-8b", batch, 3500)
                + sm.prefill_transient(spec, batch, 3000, engine=engine)["transient_bytes"].value)
    b = r["max_batch"]
    assert b >= 1 and need(b) <= room + 1 < need(b + 1)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(["gpt2", "llama-3.1-8b", "mistral-7b", "gemma-3-4b", "qwen2.5-7b", "mixtral-8x7b"]),
       gpu=st.sampled_from(["t4", "l4", "a100-40gb", "h100-sxm"]), engine=st.sampled_from(sm.ENGINES),
       seq=st.integers(1, 40_000), batch=st.integers(1, 64), chunk=st.sampled_from([512, 2048, 8192]),
       mem_util=st.floats(0.5, 1.0))
@example(name="gemma-3-4b", gpu="h100-sxm", engine="vllm", seq=1, batch=1, chunk=512, mem_util=1.0)
def test_capacity_edges_match_enumeration(name, gpu, engine, seq, batch, chunk, mem_util):
    # core/capacity.py's closed forms against the definition: the largest batch (at this length) and the longest
    # length (at this batch) whose cache + prefill transient (servemem.prefill_transient, evaluated point by point)
    # fit beside the weights.
    from llmcalc.core.kv import kv_cache_bytes, kv_report
    spec, g = load_model(name), load_gpu(gpu)
    r = kv_report(spec, batch, seq, gpu=g, mem_util=mem_util, engine=engine, max_batched_tokens=chunk)
    room = mem_util * g.device_memory_bytes - r["weights_bytes"].value

    def need(b, s):
        t = sm.prefill_transient(spec, b, s, engine=engine, max_batched_tokens=chunk)["transient_bytes"].value
        return kv_cache_bytes(spec, b, s, "bf16") + t
    b = int(r["max_batch"].value)
    assert (b == 0 or need(b, seq) <= room * (1 + 1e-12)) and need(b + 1, seq) > room * (1 - 1e-12)
    assert r["fits"].value == (batch <= b)
    s_max = r["max_seq"].value
    if s_max != float("inf"):
        s_max = int(s_max)
        assert (s_max == 0 or need(batch, s_max) <= room * (1 + 1e-12)) and need(batch, s_max + 1) > room * (1 - 1e-12)
