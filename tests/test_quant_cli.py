"""A named weight format flows through every command that holds weights: smaller formats give fewer weight
bytes, fewer bytes per decode step, faster memory-bound decode and a larger batch that fits."""

from __future__ import annotations

import pytest

from llmcalc.core.quant import weight_bytes, weight_parts
from llmcalc.presets import load_model
from tests.conftest import results

LADDER = ("bf16", "q8_0", "nvfp4", "gptq-int4", "q4_k_m", "q3_k_m", "q2_k")


def _run(cli, *args):
    return results(cli(*args, "--json"))


def _strictly_falling(values):
    return all(a > b for a, b in zip(values, values[1:]))


def _fewer_bytes_more_sequences(sizes, rows):
    """Wherever one format's weights are smaller than another's, at least as many sequences fit."""
    for w1, r1 in zip(sizes, rows):
        for w2, r2 in zip(sizes, rows):
            if w1 < w2:
                assert r1["max_batch"] >= r2["max_batch"]
    assert max(r["max_batch"] for r in rows) > min(r["max_batch"] for r in rows)


def _ladder(model, streamed=False):
    """The formats from the most bytes to the fewest for this model (MoE and GGUF recipes reorder them);
    ``streamed``: the bytes a decode step reads, all weights but the gathered embedding table."""
    spec = load_model(model)
    parts = {f: weight_parts(spec, f) for f in LADDER}
    return sorted(LADDER, key=lambda f: -(parts[f]["total"] - (parts[f]["gathered"] if streamed else 0)))


@pytest.mark.parametrize("model", ["llama-3.1-8b", "mixtral-8x7b"])
def test_kv(cli, model):
    ladder = _ladder(model)
    rows = [_run(cli, "kv", "-m", model, "-g", "h100", "--seq", "8192", "--weight-dtype", f) for f in ladder]
    spec = load_model(model)
    assert [r["weights_bytes"] for r in rows] == [weight_bytes(spec, f) for f in ladder]
    assert _strictly_falling([r["weights_bytes"] for r in rows])
    assert _strictly_falling([r["decode_bytes_with_cache"] for r in rows])
    _fewer_bytes_more_sequences([r["weights_bytes"] for r in rows], rows)


@pytest.mark.parametrize("model", ["llama-3.1-8b", "mixtral-8x7b"])
def test_serve(cli, model):
    ladder = _ladder(model, streamed=True)
    rows = [_run(cli, "serve", "-m", model, "-g", "h100", "--weight-dtype", f, "--mbu", "0.7") for f in ladder]
    spec = load_model(model)
    assert [r["weights_bytes"] for r in rows] == [weight_bytes(spec, f) for f in ladder]
    assert _strictly_falling([r["decode_bytes_first"] for r in rows])
    assert _strictly_falling([r["decode_seconds_per_token"] for r in rows])   # memory-bound at batch 1
    _fewer_bytes_more_sequences([r["weights_bytes"] for r in rows], rows)


def test_serve_decode_reads_every_weight_but_the_gathered_table(cli):
    # batch 1, MBU 1: the bytes of one decode step are the weights less the gathered token table, plus the cache
    spec = load_model("llama-3.1-8b")
    r = _run(cli, "serve", "-m", "llama-3.1-8b", "-g", "h100", "--weight-dtype", "q4_k_m", "--mbu", "1",
             "--prompt", "1", "--gen", "2")
    p = weight_parts(spec, "q4_k_m")
    kv_token = 2 * spec.layers * spec.kv_heads * spec.head_dim * 2
    assert r["decode_bytes_first"] == pytest.approx(p["total"] - spec.vocab * spec.hidden * 144 / 256 + 2 * kv_token)


def test_serve_default_mbu_follows_the_format_class(cli):
    doc = cli("serve", "-m", "llama-3.1-8b", "-g", "h100", "--weight-dtype", "q4_k_m", "--json").json()
    assert doc["inputs"]["mbu"] == 0.46
    doc = cli("serve", "-m", "llama-3.1-8b", "-g", "h100", "--weight-dtype", "q8_0", "--json").json()
    assert doc["inputs"]["mbu"] == 0.57


def test_specdec_target_format(cli):
    ladder = _ladder("llama-3.1-70b", streamed=True)
    rows = [_run(cli, "specdec", "-m", "llama-3.1-70b", "--draft", "llama-3.1-8b", "-g", "h100", "--tp", "4",
                 "--alpha", "0.8", "--mbu", "0.7", "--weight-dtype", f) for f in ladder]
    assert _strictly_falling([r["target_step_seconds"] for r in rows])
    rates = [r["plain_tokens_per_second"] for r in rows]
    assert rates == sorted(rates)
    spec = load_model("llama-3.1-70b")
    _fewer_bytes_more_sequences([weight_bytes(spec, f) for f in ladder], rows)


def test_specdec_quantised_copy_cost_ratio(cli):
    # without --draft the draft is the target in --draft-dtype: c is the ratio of their weight bytes
    r = _run(cli, "specdec", "-m", "llama-3.1-8b", "--alpha", "0.7", "--draft-dtype", "q4_k_m")
    spec = load_model("llama-3.1-8b")
    assert r["cost_ratio"] == pytest.approx(weight_bytes(spec, "q4_k_m") / weight_bytes(spec, "bf16"))


def test_roofline_decode(cli):
    ladder = _ladder("llama-3.1-8b", streamed=True)
    rows = [_run(cli, "roofline", "-m", "llama-3.1-8b", "-g", "h100", "--weight-dtype", f) for f in ladder]
    assert _strictly_falling([r["weights_read_bytes"] for r in rows])
    assert _strictly_falling([r["time_seconds"] for r in rows])
    spec = load_model("llama-3.1-8b")
    _fewer_bytes_more_sequences([weight_bytes(spec, f) for f in ladder], rows)


@pytest.mark.parametrize("command", [("kv",), ("serve", "-g", "h100"), ("roofline", "-g", "h100")])
def test_unknown_format_is_one_line_exit_2(cli, command):
    run = cli(command[0], "-m", "llama-3.1-8b", *command[1:], "--weight-dtype", "q4_k_x")
    assert run.code == 2 and run.stderr.count("\n") == 1 and "q4_k_m" in run.stderr


@pytest.mark.parametrize("command", [("kv",), ("serve", "-g", "h100"), ("roofline", "-g", "h100")])
def test_group_size_on_a_block_format_is_refused(cli, command):
    run = cli(command[0], "-m", "llama-3.1-8b", *command[1:], "--weight-dtype", "q4_k_m", "--weight-group-size", "64")
    assert run.code == 2 and run.stderr.count("\n") == 1 and "group" in run.stderr and "q4_k_m" in run.stderr
