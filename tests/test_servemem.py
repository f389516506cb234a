"""Memory while serving (core/servemem.py; `kv` and `serve` --engine). The published Qwen measurements are
validation cases (tests/validation_cases.py, group "serving-memory")."""

from __future__ import annotations

import pytest

from llmcalc.core import servemem as sm
from llmcalc.presets import load_model


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


@pytest.mark.parametrize("engine", sm.ENGINES)
def test_max_batch_is_the_last_batch_whose_peak_fits(spec, engine):
    budget, per_seq, P = 60e9, 0.5e9, 4096
    b = sm.max_batch(spec, budget, per_seq, P, engine=engine)
    assert 0 < b <= budget // per_seq

    def need(n):
        return n * per_seq + sm.prefill_transient(spec, n, P, engine=engine)["transient_bytes"].value
    assert need(b) <= budget < need(b + 1)
    assert sm.max_batch(spec, 1e6, per_seq, P, engine=engine) == 0
