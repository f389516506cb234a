"""Speed is part of the product: NumPy (~170 ms) and Rich (~60 ms) load only when a sweep, a table or a
chart needs them. `python -X importtime` lists every module a run imports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CASES = [
    (["flops", "-m", "llama-3.1-8b", "--seq", "8192", "--json"], ("numpy", "rich", "pydantic")),
    (["kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "32k", "--json"], ("numpy", "rich", "pydantic")),
    (["flops", "-m", "gpt2", "--seq", "1024", "-o", "tsv"], ("numpy", "rich", "pydantic")),
    (["--help"], ("numpy", "pydantic")),
]


def imported(args: list[str], env_extra: dict | None = None) -> set[str]:
    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "llmcalc", *args], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-500:]
    return {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "import time:" in line}


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
