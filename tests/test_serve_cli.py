"""`llmcalc serve` end to end: interface keys, sweeps, --check, charts, and bad input (exit 2)."""

from __future__ import annotations

import pytest

from conftest import results

KEYS = ("prefill_seconds", "decode_seconds_per_token", "decode_tokens_per_second", "throughput_tokens_per_second",
        "e2e_seconds", "weights_bytes", "kv_bytes", "max_batch", "prefill_bound", "decode_bound")


def test_interface_keys(cli):
    run = cli("serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--batch", "8", "--prompt", "1k", "--gen", "256",
              "--json")
    assert run.stderr == ""
    doc = run.json()
    assert doc["command"] == "serve" and doc["inputs"]["prompt"] == 1000     # --prompt 1k became 1,000
    r = doc["results"]
    for key in KEYS:
        assert key in r, key
    assert r["throughput_tokens_per_second"] == pytest.approx(8 * r["decode_tokens_per_second"])
    assert r["decode_tokens_per_second"] == pytest.approx(1 / r["decode_seconds_per_token"])
    assert r["e2e_seconds"] == pytest.approx(r["prefill_seconds"] + 255 * r["decode_seconds_per_token"])
    assert doc["inputs"]["mbu"] == 0.68 and doc["inputs"]["mfu"] == 0.5       # stated defaults, echoed
    assert any("MBU 0.68 assumed" in n for n in doc["notes"])


def test_quantisation_and_kv_dtype_shrink_bytes(cli):
    base = results(cli("serve", "-m", "llama-2-7b", "-g", "a100", "--json"))
    int4 = results(cli("serve", "-m", "llama-2-7b", "-g", "a100", "--weight-dtype", "int4", "--weight-group-size", "128",
                       "--json"))
    # int4 matmul weights 0.5 B + 2/128 B of scales; embeddings and norms stay 16-bit
    from llmcalc.core.params import total_params
    from llmcalc.presets import load_model
    spec = load_model("llama-2-7b")
    p = total_params(spec)
    q = p - spec.vocab * spec.hidden - (2 * spec.layers + 1) * spec.hidden    # all but the token table and norms
    assert int4["weights_bytes"] == pytest.approx(q * (0.5 + 2 / 128) + (p - q) * 2)
    assert int4["weights_bytes"] / base["weights_bytes"] == pytest.approx(0.272, abs=0.001)
    fp8kv = results(cli("serve", "-m", "llama-2-7b", "-g", "a100", "--kv-dtype", "fp8", "--json"))
    assert fp8kv["kv_bytes"] == base["kv_bytes"] / 2
    assert fp8kv["max_batch"] >= 2 * base["max_batch"] - 1


def test_tp_splits_weights_and_adds_comms(cli):
    one = results(cli("serve", "-m", "llama-2-70b", "-g", "h100", "--tp", "4", "--json"))
    assert one["decode_comm_seconds"] > 0
    assert one["fits"] is True
    two = results(cli("serve", "-m", "llama-2-70b", "-g", "h100", "--tp", "8", "--json"))
    assert two["decode_seconds_per_token"] < one["decode_seconds_per_token"]
    assert two["max_batch"] > one["max_batch"]


def test_batch_sweep_latency_throughput(cli):
    doc = cli("serve", "-m", "llama-3.1-8b", "-g", "a100", "--batch", "1..256x2", "--json").json()
    rows = doc["rows"]
    thr = [r["throughput_tokens_per_second"] for r in rows]
    lat = [r["decode_seconds_per_token"] for r in rows]
    assert thr == sorted(thr) and lat == sorted(lat)


def test_chart_under_sweep_table(cli, tmp_path):
    run = cli("serve", "-m", "llama-3.1-8b", "-g", "a100", "--batch", "1..64x2", "-o", "table")
    assert run.code == 0 and "latency vs throughput" in run.stdout
    path = tmp_path / "lt.png"
    assert cli("serve", "-m", "llama-3.1-8b", "-g", "a100", "--batch", "1..64x2", "--plot", path, "--json").code == 0
    assert path.stat().st_size > 5000


def test_does_not_fit_is_an_answer_and_check_exits_3(cli):
    run = cli("serve", "-m", "llama-2-70b", "-g", "a100-80gb", "--json")
    assert run.code == 0 and run.json()["results"]["fits"] is False
    checked = cli("serve", "-m", "llama-2-70b", "-g", "a100-80gb", "--json", "--check")
    assert checked.code == 3 and checked.stdout          # the answer is still printed
    ok = cli("serve", "-m", "llama-2-7b", "-g", "a100-80gb", "--json", "--check")
    assert ok.code == 0


@pytest.mark.parametrize("args,message", [
    (["-m", "llama-2-7b"], "no GPU given"),
    (["-g", "a100"], "no model given"),
    (["-m", "llama-2-7b", "-g", "a100", "--tp", "3"], "--tp 3 must divide"),
    (["-m", "llama-2-7b", "-g", "a100", "--tp", "16"], "exceeds the 8 GPUs"),
    (["-m", "llama-2-7b", "-g", "a100", "--mbu", "1.5"], "--mbu must be at most 1"),
    (["-m", "llama-2-7b", "-g", "a100", "--mfu", "0"], "--mfu must be greater than 0"),
    (["-m", "llama-2-7b", "-g", "a100", "--weight-dtype", "q4_k_x"], "--weight-dtype must be one of"),
    (["-m", "llama-2-7b", "-g", "a100", "--kv-dtype", "fp4"], "--kv-dtype must be one of"),
    (["-m", "llama-2-7b", "-g", "a100", "--gen-min", "300", "--gen", "200"], "--gen-min must not exceed --gen"),
    (["-m", "llama-2-7b", "-g", "a100", "--target-latency", "fast"], "can't read 'fast'"),
    (["-m", "llama-2-7b", "-g", "a100", "--target-latency", "30ms", "--batch", "1,2"], "give single values"),
    (["-m", "llama-2-7b", "-g", "a100", "--tp", "1,3"], "--tp 3 must divide"),
    (["-m", "llama-2-7b", "-g", "a100", "--plot", "x.png"], "give a --batch sweep"),
    (["-m", "llama-2-7b", "-g", "a100", "--prompt", "1.5"], "--prompt must be a whole number"),
    (["-m", "llama-2-7b", "-g", "l4", "--tp", "2", "--pp", "2"], "No such option"),
])
def test_bad_input_exit_2(cli, args, message):
    run = cli("serve", *args)
    assert run.code == 2, run.stdout
    assert message in run.stderr and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_explain_shows_the_formulas(cli):
    run = cli("serve", "-m", "gpt2", "-g", "a100", "-o", "tsv", "--explain")
    assert run.code == 0
    assert "e2e_seconds = prefill + (G - 1)·decode" in run.stdout
    assert "throughput_tokens_per_second = B·t/seconds" in run.stdout
