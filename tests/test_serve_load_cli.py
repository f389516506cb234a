"""`llmcalc serve --rate` end to end: stable keys, histograms, SLO solvers over a --tp sweep, lengths files,
and bad input (one line on stderr, exit 2)."""

from __future__ import annotations

import json

import pytest

from llmcalc.core.loadsim import LOAD_KEYS

BASE = ("serve", "-m", "llama-3.1-8b", "-g", "h100-sxm")


def test_keys_histograms_and_little(cli):
    doc = cli(*BASE, "--rate", "5", "--requests", "400", "--prompt", "800", "--gen", "120", "--json").json()
    r = doc["results"]
    assert set(LOAD_KEYS) <= set(r)
    assert r["max_rate"] is None and r["replicas"] is None and r["slo_attainment"] is None
    assert r["ttft_p50_seconds"] <= r["ttft_p90_seconds"] <= r["ttft_p99_seconds"]
    assert sum(doc["histograms"]["ttft_seconds"]["counts"]) == 400
    assert len(doc["histograms"]["tpot_seconds"]["edges"]) == len(doc["histograms"]["tpot_seconds"]["counts"]) + 1
    # Little's law, from the printed figures: mean batch + mean queue = achieved rate × mean E2E
    assert r["mean_batch"] + r["mean_queue"] == pytest.approx(r["achieved_rate"] * r["e2e_mean_seconds"], rel=1e-9)
    assert r["output_tokens_per_second"] == pytest.approx(r["achieved_rate"] * 120, rel=1e-9)


def test_tp_sweep_with_slos_gives_replicas_and_gpus(cli):
    doc = cli(*BASE, "--tp", "1,2", "--rate", "30", "--slo-ttft", "300ms", "--slo-tpot", "30ms", "--requests", "300",
              "--prompt", "500", "--gen", "100", "--json").json()
    rows = doc["rows"]
    assert [row["tp"] for row in rows] == [1, 2]
    for row in rows:
        assert row["replicas"] * row["max_rate"] >= 30
        assert (row["replicas"] - 1) * row["max_rate"] < 30
        assert row["gpus"] == row["replicas"] * row["tp"]
        assert row["slo_attainment"] > 0.9
    assert rows[1]["max_rate"] > rows[0]["max_rate"]


def test_table_draws_the_histograms(cli):
    run = cli(*BASE, "--rate", "2", "--requests", "100", "-o", "table")
    assert run.code == 0, run.stderr
    assert "time to first token" in run.stdout and "time per output token" in run.stdout


@pytest.mark.parametrize("name,text", [
    ("l.csv", "prompt,gen\n100,20\n2000,300\n50,1\n"),
    ("l.jsonl", '{"prompt": 100, "gen": 20}\n{"prompt": 2000, "gen": 300}\n\n{"prompt": 50, "gen": 1}\n'),
])
def test_lengths_file(cli, tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    doc = cli(*BASE, "--rate", "3", "--lengths", str(path), "--requests", "300", "--json").json()
    r = doc["results"]
    assert r["achieved_rate"] > 0 and not r["overloaded"]
    assert any("3 rows" in n for n in doc["notes"])


BAD = [
    (["--rate", "0"], "--rate"),
    (["--rate", "-2"], "--rate"),
    (["--rate", "5", "--requests", "0"], "--requests"),
    (["--rate", "5", "--slo-ttft", "1ms"], "cannot be met"),
    (["--rate", "5", "--slo-tpot", "0.1ms"], "cannot be met"),
    (["--rate", "5", "--prompt", "600000"], "does not fit"),
    (["--rate", "5", "--mem-util", "0.15"], "no room"),
    (["--rate", "5", "--max-seqs", "512", "--max-batched-tokens", "256"], "at least --max-seqs"),
]


@pytest.mark.parametrize("args,match", BAD)
def test_bad_input(cli, args, match):
    run = cli(*BASE, *args, "--requests" if "--requests" not in args else "--seed", "50" if "--requests" not in args else "1")
    assert run.code == 2 and run.stdout == ""
    assert match in run.stderr and len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"prompt,gen\n", "no rows"),
    (b"prompt,gen\n100,abc\n", "line 2: gen must be a whole number"),
    (b"prompt,output\n100,20\n", "no gen column"),
    (b'{"prompt": 10}\n', "no gen field"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (b"prompt,gen\n1.5,3\n", "whole number"),
])
def test_bad_lengths_file(cli, tmp_path, content, match):
    path = tmp_path / "lengths.csv"
    path.write_bytes(content)
    run = cli(*BASE, "--rate", "5", "--lengths", str(path))
    assert run.code == 2 and match in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_missing_lengths_file(cli, tmp_path):
    run = cli(*BASE, "--rate", "5", "--lengths", str(tmp_path / "nope.csv"))
    assert run.code == 2 and "can't read" in run.stderr


def test_same_seed_same_document(cli):
    a = cli(*BASE, "--rate", "8", "--requests", "200", "--seed", "4", "--json").json()
    b = cli(*BASE, "--rate", "8", "--requests", "200", "--seed", "4", "--json").json()
    assert json.dumps(a["results"]) == json.dumps(b["results"])


def test_slo_without_rate_reports_the_run_at_max_rate(cli):
    r = cli(*BASE, "--slo-ttft", "200ms", "--requests", "300", "--prompt", "500", "--gen", "100",
            "--json").json()["results"]
    assert r["max_rate"] > 0 and r["replicas"] is None and r["gpus"] is None
    assert r["ttft_p99_seconds"] <= 0.2 and not r["overloaded"]
    # completed ÷ time to the last completion (vLLM's benchmark_serving "request throughput"): the drain
    # after the last arrival keeps it below the offered rate for a short run
    assert r["achieved_rate"] < r["max_rate"]
