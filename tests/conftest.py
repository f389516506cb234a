"""Shared fixtures: run the CLI in-process as a user would, with presets isolated from the user's folder."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest

from llmcalc.cli import main


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self):
        assert self.code == 0, self.stderr
        doc = json.loads(self.stdout)
        assert_finite(doc)
        return doc


def assert_finite(x, path="$"):
    """Every number in a JSON document is finite (NaN/inf must never reach a user's jq)."""
    if isinstance(x, float):
        assert math.isfinite(x), f"{path} = {x}"
    elif isinstance(x, dict):
        for k, v in x.items():
            assert_finite(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            assert_finite(v, f"{path}[{i}]")


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCALC_CONFIG_DIR", str(tmp_path / "llmcalc-config"))
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def cli(capsys):
    """cli("flops", "-m", "gpt2", "--json") -> Run(code, stdout, stderr)."""

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Run(int(code), out, err)

    return run


def results(run: Run) -> dict:
    return run.json()["results"]
