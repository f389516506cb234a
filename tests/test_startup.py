"""Speed is part of the product: NumPy (~170 ms) and Rich (~60 ms) load only when a sweep, a table or a
chart needs them. `python -X importtime` lists every module a run imports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("numpy", "rich", "pydantic", "textual")  # textual: only `llmcalc explore` loads it
# One answer from every subcommand (and every mode of roofline and specdec), as JSON or piped TSV/CSV.
CASES = [
    (["flops", "-m", "llama-3.1-8b", "--seq", "8192", "--json"], HEAVY),
    (["flops", "-m", "gpt2", "--seq", "1024", "-o", "tsv"], HEAVY),
    (["train-mem", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "4096", "--json"], HEAVY),
    (["kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "32k", "--json"], HEAVY),
    (["kv", "-m", "llama-3.1-8b", "--seq", "32k", "-o", "tsv"], HEAVY),
    (["roofline", "-g", "h100-sxm", "--json"], HEAVY),
    (["roofline", "-g", "h100-sxm", "--intensity", "100", "--json"], HEAVY),
    (["roofline", "-g", "h100-sxm", "--op", "matmul", "--m", "1", "--k", "4096", "--n", "4096", "--json"], HEAVY),
    (["roofline", "-g", "h100-sxm", "--op", "attention", "--seq", "8k", "--heads", "32", "--json"], HEAVY),
    (["roofline", "-g", "h100-sxm", "-m", "llama-3.1-8b", "--json"], HEAVY),
    (["serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--prompt", "1000", "--gen", "200", "--json"], HEAVY),
    (["serve", "-m", "gemma-2-9b", "-g", "h100-sxm", "--tp", "2", "--gen-min", "10", "-o", "tsv"], HEAVY),
    (["specdec", "--alpha", "0.8", "--k", "4", "--cost-ratio", "0.05", "--json"], HEAVY),
    (["specdec", "--head-alphas", "0.7,0.5,0.3", "-o", "csv"], HEAVY),
    (["specdec", "-m", "llama-3.1-8b", "--medusa-heads", "5", "--decay", "0.8", "--alpha", "0.8", "--json"], HEAVY),
    (["specdec", "-m", "llama-3.1-70b", "--draft", "llama-3.1-8b", "-g", "h100-sxm", "--tp", "4", "--alpha", "0.8",
      "--json"], HEAVY),
    (["parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--gpus", "64", "--tp", "8", "--pp", "2", "--json"], HEAVY),
    (["presets", "list", "gpus", "--json"], HEAVY),
    (["presets", "show", "gpt2", "--json"], HEAVY),
    (["--help"], ("numpy", "pydantic", "textual")),
    (["explore", "--help"], ("numpy", "pydantic", "textual")),
]


def imported(args: list[str], env_extra: dict | None = None) -> set[str]:
    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "llmcalc", *args], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    return {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "import time:" in line}


@pytest.mark.slow  # one subprocess per case (~5 s in all): CI, not the quick loop
@pytest.mark.parametrize("args, absent", CASES)
def test_heavy_modules_stay_unloaded(args, absent):
    mods = imported(args)
    for name in absent:
        assert name not in mods, f"`llmcalc {' '.join(args)}` imported {name}"


def test_completion_of_preset_names_is_light():
    env = {"_LLMCALC_COMPLETE": "complete_bash", "COMP_WORDS": "llmcalc flops -m llama-3.1", "COMP_CWORD": "3"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "llmcalc"], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)
    assert "llama-3.1-8b" in proc.stdout.split()
    mods = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "import time:" in line}
    assert "numpy" not in mods and "yaml" not in mods  # names are file stems: no YAML is parsed


def test_a_run_builds_only_its_own_subcommand():
    # Typer's introspection of every command's options is the bulk of a CLI's start-up: a run imports the
    # command module it asks for, not the seven others. (importlib.import_module escapes -X importtime.)
    code = ("import sys, contextlib, io\nfrom llmcalc.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['kv', '-m', 'gpt2', '--json'])\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('llmcalc.commands.'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout.split() == ["llmcalc.commands.kv"]
