"""Contract v2 (INTERFACE.md, "Output that a script can rely on"), end to end for every subcommand:
one wide shape in TSV/CSV whatever the number of points, one key set per mode whatever the inputs,
booleans as true/false, byte and count columns as integers."""

from __future__ import annotations

import csv
import io

import pytest

# subcommand -> (base arguments, a numeric flag to sweep, its two values)
CASES = {
    "flops": (["-m", "gpt2", "--seq", "1024"], "--batch", ("1", "4")),
    "train-mem": (["-m", "gpt2", "--seq", "1024"], "--batch", ("1", "4")),
    "kv": (["-m", "llama-3.1-8b", "--seq", "4096"], "--batch", ("1", "8")),
    "roofline": (["-g", "h100-sxm", "-m", "llama-3.1-8b", "--seq", "1024"], "--batch", ("1", "8")),
    "serve": (["-m", "llama-3.1-8b", "-g", "h100-sxm"], "--batch", ("1", "8")),
    "specdec": (["--alpha", "0.8", "--cost-ratio", "0.05"], "--k", ("3", "5")),
    "parallel": (["-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "8", "--tp", "2", "--pp", "1",
                  "--global-batch", "64", "--seq", "4096"], "--micro-batch", ("1", "2")),
}


def _header(cli, *args: str, fmt: str = "tsv") -> list[str]:
    run = cli(*args, "-o", fmt)
    assert run.code == 0, run.stderr
    return next(csv.reader(io.StringIO(run.stdout), delimiter="\t" if fmt == "tsv" else ","))


def _keys(cli, *args: str) -> set[str]:
    doc = cli(*args, "--json").json()
    return set(doc["results"]) if "results" in doc else set(doc["rows"][0]) - set(doc["inputs"])


@pytest.mark.parametrize("command", CASES)
@pytest.mark.parametrize("fmt", ["tsv", "csv"])
def test_one_point_and_a_sweep_share_one_header(cli, command, fmt):
    base, flag, (a, b) = CASES[command]
    one = _header(cli, command, *base, flag, a, fmt=fmt)
    many = _header(cli, command, *base, flag, f"{a},{b}", fmt=fmt)
    assert one == many
    assert one[:2] == ["model", "gpu"] and flag.lstrip("-").replace("-", "_") in one


@pytest.mark.parametrize("command", CASES)
def test_a_single_point_prints_one_wide_line(cli, command):
    base, flag, (a, _) = CASES[command]
    lines = cli(command, *base, flag, a, "-o", "tsv").stdout.splitlines()
    assert len(lines) == 2 and lines[0].count("\t") == lines[1].count("\t")


@pytest.mark.parametrize("command,args", [
    ("flops", ["-m", "gpt2", "--seq", "1024", "--tokens", "1B"]),
    ("train-mem", ["-m", "gpt2", "--seq", "1024"]),
    ("kv", ["-m", "llama-3.1-8b", "--seq", "4096"]),
])
def test_a_gpu_adds_values_not_keys(cli, command, args):
    assert _keys(cli, command, *args) == _keys(cli, command, *args, "-g", "h100-sxm")


@pytest.mark.parametrize("command,args", [
    ("kv", ["-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "4096"]),
    ("serve", ["-m", "llama-3.1-8b", "-g", "h100-sxm"]),
    ("train-mem", ["-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "4096"]),
])
def test_per_gpu_keys_are_there_at_tp_1(cli, command, args):
    assert _keys(cli, command, *args, "--tp", "1") == _keys(cli, command, *args, "--tp", "2")


@pytest.mark.parametrize("command,args", [
    ("kv", ["-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "4096", "--tp", "1,2,4"]),
    ("kv", ["-m", "llama-3.1-8b", "--seq", "4096", "--kv-dtype", "bf16,fp8", "--weight-dtype", "bf16,q4_k_m"]),
    ("serve", ["-m", "llama-3.1-8b", "-g", "h100-sxm", "--tp", "1,2", "--kv-dtype", "bf16,fp8"]),
    ("serve", ["-m", "llama-3.1-8b", "-g", "h100-sxm", "--tp", "1,2", "--batch", "1,64"]),
    ("kv", ["-m", "mixtral-8x7b", "-g", "h100-sxm", "--tp", "2,4", "--seq", "1k,8k", "--max-output", "256,512"]),
    ("roofline", ["-m", "llama-3.1-8b", "-g", "h100-sxm", "--kv-dtype", "bf16,fp8", "--batch", "1,64"]),
    ("parallel", ["-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "16", "--tp", "2,4", "--pp", "1",
                  "--precision", "mixed,bf16", "--global-batch", "64", "--seq", "4096"]),
    ("flops", ["-m", "gpt2", "--seq", "1024,2048", "--method", "full,lora"]),
    ("train-mem", ["-m", "gpt2", "--seq", "1024", "--precision", "mixed,bf16", "--optimizer", "adamw,sgd"]),
])
def test_every_flag_sweeps(cli, command, args):
    doc = cli(command, *args, "--json").json()
    swept = [a.lstrip("-").replace("-", "_") for a, v in zip(args, args[1:]) if a.startswith("--") and "," in v]
    rows = doc["rows"]
    combos = {tuple(row[k] for k in swept) for row in rows}
    expected = 1
    for a, v in zip(args, args[1:]):
        if a.startswith("--") and "," in v:
            expected *= len(v.split(","))
    assert len(combos) == expected == len(rows)


def test_booleans_and_integers_in_every_format(cli):
    args = ["kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "4096", "--batch", "8"]
    (row,) = csv.DictReader(io.StringIO(cli(*args, "-o", "csv").stdout))
    assert row["fits"] == "true"
    assert row["kv_bytes"].isdigit() and row["weights_bytes"].isdigit()
    (row,) = csv.DictReader(io.StringIO(cli(*args, "-o", "tsv").stdout), delimiter="\t")
    assert row["fits"] == "true"
    results = cli(*args, "--json").json()["results"]
    assert results["fits"] is True and isinstance(results["kv_bytes"], int)


def test_units_say_ratio_for_fractions(cli):
    run = cli("serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "-o", "kv")
    units = dict(line.split("\t")[0::2] for line in run.stdout.splitlines()[1:])
    assert units["mbu"] == "ratio" and units["decode_flops_utilization"] == "ratio"
    assert "percent" not in units.values()


def test_training_days_is_one_name(cli):
    flops = cli("flops", "-m", "gpt2", "--seq", "1024", "--tokens", "1B", "-g", "h100-sxm", "--json").json()
    par = cli(*["parallel"] + CASES["parallel"][0] + ["--tokens", "1B", "--json"]).json()
    for doc in (flops, par):
        assert "training_days" in doc["results"] and "wall_days" not in doc["results"]
        assert "gpu_hours" in doc["results"]


def test_a_measured_throughput_sets_the_time(cli):
    base = ["flops", "-m", "llama-3.1-8b", "--seq", "8192", "--tokens", "1T", "-g", "h100-sxm", "--gpus", "64"]
    measured = cli(*base, "--tokens-per-s", "1M", "--json").json()["results"]
    assumed = cli(*base, "--mfu", str(measured["mfu"]), "--json").json()["results"]
    assert measured["gpu_hours"] == pytest.approx(assumed["gpu_hours"])
    assert measured["training_days"] == pytest.approx(1e12 / 1e6 / 86400)   # tokens ÷ tokens/s, in days


@pytest.mark.parametrize("command", ["kv", "serve"])
def test_max_seq_is_the_longest_that_fits(cli, command):
    base = ["-m", "llama-3.1-8b", "-g", "h100-sxm", "--batch", "8"]
    seq_flag = "--seq" if command == "kv" else "--prompt"
    r = cli(command, *base, "--max-seq", "--json").json()["results"]
    n = int(r["max_seq"])
    extra = [] if command == "kv" else ["--gen", "1"]
    fits = lambda s: cli(command, *base, seq_flag, str(s), *extra, "--json").json()["results"]["fits"]  # noqa: E731
    shift = 0 if command == "kv" else 1      # serve's sequence is prompt + gen
    assert fits(n - shift) and not fits(n - shift + 64)


def test_top_level_help_does_not_break_sentences(monkeypatch):
    import subprocess
    import sys
    env = {"COLUMNS": "400", "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "llmcalc", "--help"], capture_output=True, text=True, env=env).stdout
    rows = [line for line in out.splitlines() if line.startswith("│ ")]
    for command in CASES:
        (row,) = [r for r in rows if r[2:].startswith(command + " ")]
        assert row.rstrip(" │").endswith(".")        # the whole description on its own line


def test_completion_offers_choices_and_completes_lists():
    from llmcalc.cli_support import KvDtypeOpt, WeightDtypeOpt
    kv_complete = KvDtypeOpt.__metadata__[0].autocompletion
    assert kv_complete("f") == ["fp32", "fp16", "fp8"]
    assert kv_complete("bf16,in") == ["bf16,int8", "bf16,int4"]
    assert "q4_k_m" in WeightDtypeOpt.__metadata__[0].autocompletion("q4")


@pytest.mark.parametrize("fmt", ["yml", "yaml", "markdown", "md", "kv"])
def test_format_aliases(cli, fmt):
    run = cli("flops", "-m", "gpt2", "--seq", "1024", "-o", fmt)
    assert run.code == 0
    assert "291648307200" in run.stdout or "292 GFLOPs" in run.stdout   # base units, or the human table


def test_fields_keep_the_inputs_that_name_the_rows(cli):
    run = cli("kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--batch", "1,8", "--fields", "batch,max_seq", "-o", "tsv")
    assert run.stdout.splitlines()[0] == "batch\tmax_seq" and len(run.stdout.splitlines()) == 3


@pytest.mark.parametrize("command,args", [
    ("kv", ["-m", "llama-3.1-70b", "-g", "h100-sxm", "--seq", "32k", "--batch", "4"]),
    ("serve", ["-m", "llama-3.1-70b", "-g", "h100-sxm", "--batch", "16", "--prompt", "4k"]),
])
def test_when_nothing_fits_each_suggested_command_fits(cli, command, args):
    doc = cli(command, *args, "--json").json()
    assert doc["results"]["fits"] is False
    suggested = [n.split(": llmcalc ", 1)[1] for n in doc["notes"] if n.startswith("fits ")]
    assert len(suggested) >= 2           # computed alternatives, not a guess
    for line in suggested:
        again = cli(*line.split(), "--json").json()
        assert again["results"]["fits"] is True, line
