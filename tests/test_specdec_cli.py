"""`llmcalc specdec` end to end: the interface keys, formats, sweeps, the heat map, --explain, bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from conftest import results

BASE = ("specdec", "--alpha", "0.8", "--k", "4", "--cost-ratio", "0.05")


def test_interface_keys(cli):
    doc = cli(*BASE, "--json").json()
    assert doc["schema_version"] == 2 and doc["command"] == "specdec"
    assert doc["inputs"]["alpha"] == 0.8 and doc["inputs"]["k"] == 4 and doc["inputs"]["cost_ratio"] == 0.05
    for key in ("expected_tokens_per_step", "speedup", "optimal_k", "optimal_speedup"):
        assert isinstance(doc["results"][key], (int, float)), key
    assert isinstance(doc["results"]["optimal_k"], int)
    sim = cli(*BASE, "--simulate", "1000", "--json").json()
    assert isinstance(sim["results"]["simulated_tokens_per_step"], float)


@pytest.mark.parametrize("fmt", ["tsv", "csv", "yaml", "md", "table", "json"])
def test_every_format_prints_the_same_numbers(cli, fmt):
    run = cli(*BASE, "-o", fmt)
    assert run.code == 0 and run.stderr == ""
    E = 1 + 0.8 + 0.64 + 0.512 + 0.4096        # 3.3616
    if fmt == "json":
        assert json.loads(run.stdout)["results"]["expected_tokens_per_step"] == pytest.approx(E)
    elif fmt == "yaml":
        assert yaml.safe_load(run.stdout)["results"]["expected_tokens_per_step"] == pytest.approx(E)
    elif fmt in ("tsv", "csv"):
        (rows,) = csv.DictReader(io.StringIO(run.stdout), delimiter="\t" if fmt == "tsv" else ",")
        assert float(rows["expected_tokens_per_step"]) == pytest.approx(E)
        assert rows["alpha"] == "0.8"
    else:
        assert "3.362" in run.stdout


def test_sweep_rows_and_heat_map(cli):
    doc = cli("specdec", "--alpha", "0.6,0.8", "--k", "1..3+1", "-c", "0.05", "--json").json()
    assert [(r["alpha"], r["k"]) for r in doc["rows"]] == [(0.6, 1), (0.6, 2), (0.6, 3), (0.8, 1), (0.8, 2),
                                                           (0.8, 3)]
    one = results(cli("specdec", "--alpha", "0.8", "--k", "2", "-c", "0.05", "--json"))
    assert doc["rows"][4]["speedup"] == one["speedup"]
    table = cli("specdec", "--alpha", "0.6,0.8", "--k", "1..3+1", "-c", "0.05", "-o", "table")
    assert "speedup over α × k" in table.stdout
    assert "2.57*" in table.stdout           # α = 0.8: k = 3 is the best of 1..3, marked
    plain = cli("specdec", "--alpha", "0.6,0.8", "--k", "1..3+1", "-c", "0.05", "-o", "table", "--no-chart")
    assert "speedup over α × k" not in plain.stdout
    piped = cli("specdec", "--alpha", "0.6,0.8", "--k", "1..3+1", "-c", "0.05")
    assert piped.stdout.splitlines()[0].startswith("model\tgpu\talpha\tk\t")
    assert "speedup over" not in piped.stdout   # charts only under a table


def test_one_swept_input_draws_a_line(cli):
    run = cli("specdec", "--alpha", "0.8", "--k", "1..12+1", "-c", "0.05", "-o", "table")
    assert run.code == 0 and "speedup vs k" in run.stdout


def test_explain_shows_formulas_with_numbers(cli):
    run = cli(*BASE, "--explain", "-o", "tsv")
    assert "(1 - a^(k + 1))/max(1 - a, 1e-300)" in run.stdout
    assert "(1 - 0.8^(4 + 1))" in run.stdout
    assert "speedup = E/(k·c + v) = 3.3616/(4 × 0.05 + 1)" in run.stdout


def test_fields(cli):
    doc = cli(*BASE, "--json", "--fields", "speedup,optimal_k").json()
    assert list(doc["results"]) == ["speedup", "optimal_k"]
    bad = cli(*BASE, "--json", "--fields", "speed")
    assert bad.code == 2 and "Unknown field 'speed'" in bad.stderr


def test_defaults_are_stated(cli):
    run = cli("specdec", "--alpha", "0.8", "-c", "0.05", "-o", "tsv")
    assert run.code == 0 and "--k 4 assumed" in run.stderr
    run = cli("specdec", "--alpha", "0.8", "--medusa-heads", "4", "--decay", "0.8", "-o", "tsv")
    assert run.code == 0 and "--cost-ratio 0 assumed" in run.stderr


@pytest.mark.parametrize("args,message", [
    (("--alpha", "1.2", "--k", "3", "-c", "0.1"), "--alpha must be at most 1"),
    (("--alpha", "-0.1", "--k", "3", "-c", "0.1"), "--alpha must be at least 0"),
    (("--alpha", "0.5,1.5", "--k", "3", "-c", "0.1"), "--alpha must be at most 1"),
    (("--alpha", "0.5", "--k", "0", "-c", "0.1"), "--k must be at least 1"),
    (("--alpha", "0.5", "--k", "2.5", "-c", "0.1"), "--k must be a whole number"),
    (("--alpha", "0.5", "--k", "3", "-c", "-1"), "--cost-ratio must be at least 0"),
    (("--alpha", "0.5", "--k", "3"), "give --cost-ratio"),
    (("--k", "3", "-c", "0.1"), "give --alpha"),
    (("--alpha", "x", "--k", "3", "-c", "0.1"), "can't read 'x'"),
    (("--alpha", "0.5", "--k", "5000", "-c", "0.1"), "--k: a speculation depth above 4096"),
    (("--alpha", "0.5", "-m", "llama-3.1-70b", "--draft", "llama-3.1-8b"), "--draft needs -g GPU"),
    (("--alpha", "0.5", "--draft", "llama-3.1-8b", "-g", "h100-sxm"), "--draft needs the target too"),
    (("--alpha", "0.5", "-m", "llama-3.1-70b"), "-m TARGET needs a draft"),
    (("--alpha", "0.5", "-m", "llama-3.1-70b", "--draft", "llama-3.1-8b", "-g", "h100-sxm", "-c", "0.1"),
     "not both"),
    (("--alpha", "0.5", "-m", "llama-3.1-70b", "--draft", "nosuch-model", "-g", "h100-sxm"), "nosuch-model"),
    (("--alpha", "0.5", "-m", "llama-3.1-70b", "--draft", "llama-3.1-8b", "-g", "nosuch-gpu"), "nosuch-gpu"),
    (("--alpha", "0.5", "-m", "llama-3.1-70b", "--draft", "llama-3.1-8b", "-g", "h100-sxm", "--verify-cost", "1"),
     "--verify-cost comes from"),
    (("--alpha", "0.5", "-m", "llama-3.1-70b", "--draft", "llama-3.1-8b", "-g", "h100-sxm", "--tp", "3"), "tp"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--batch", "8"), "--batch needs -g GPU"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "-g", "h100-sxm"), "-g GPU needs -m TARGET"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--draft-dtype", "int4"), "--draft-dtype needs -m"),
    (("--alpha", "0.5", "-m", "llama-3.1-8b", "--draft-dtype", "bf16"), "--draft-dtype: a quantised copy of the target needs a smaller draft dtype"),
    (("--alpha", "0.5", "-m", "llama-3.1-8b", "--draft-dtype", "int3"), "--draft-dtype must be one of"),
    (("--alpha", "0.5", "--medusa-heads", "3"), "--decay"),
    (("--alpha", "0.5", "--medusa-heads", "3", "--decay", "0.8", "--k", "3"), "not --k"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--decay", "0.8"), "--decay applies to --medusa-heads"),
    (("--head-alphas", "0.5,1.4"), "between 0 and 1"),
    (("--head-alphas", "0.5,,0.3"), "comma list"),
    (("--head-alphas", "0.5,0.3", "--alpha", "0.5"), "drop --alpha"),
    (("--head-alphas", "0.5,0.3", "--medusa-heads", "3"), "--medusa-heads must be at most 2"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--simulate", "0"), "--simulate must be at least 1"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--simulate", "1k,2k"), "takes one value"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--simulate", "1e9"), "random draws"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--seed", "3"), "--seed applies to --simulate"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--simulate", "10", "--seed", "-1"), "--seed must be at least 0"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--k-max", "0"), "--k-max must be at least 1"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--verify-cost", "0"), "--verify-cost must be greater than 0"),
    (("--alpha", "0.5", "--k", "3", "-c", "0.1", "--weight-group-size", "32"), "add -m TARGET"),
    (("--alpha", "0.5", "-m", "llama-3.1-70b", "--draft", "llama-3.1-8b", "-g", "h100-sxm", "--weight-group-size",
      "32"), "--weight-group-size: a weight group size applies to fp8, int8, int4, gptq-int4"),
    (("--alpha", "0.5", "-m", "llama-3.1-70b", "--draft", "llama-3.1-8b", "-g", "h100-sxm", "--draft-tp", "3"),
     "--draft-tp: tensor-parallel degree 3 does not split the draft llama-3.1-8b"),
    (("--alpha", "0.5", "-m", "llama-3.1-70b", "--draft-dtype", "int4", "-g", "h100-sxm", "--draft-tp", "2"),
     "--draft-tp applies to a --draft model"),
])
def test_bad_input_exits_2_with_one_line(cli, args, message):
    run = cli("specdec", *args)
    assert run.code == 2, (args, run.stdout)
    assert run.stdout == ""
    assert message in run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_help_has_examples(cli):
    run = cli("specdec", "--help")
    assert run.code == 0
    assert "llmcalc specdec --alpha 0.75 --k 7 --cost-ratio 0.02 --simulate 100k" in run.stdout
    assert "| jq" in run.stdout
