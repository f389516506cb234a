"""Shared fixtures: run the CLI in-process as a user would, with presets isolated from the user's folder."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import pytest
from hypothesis import settings as _hypothesis_settings

from llmcalc.cli import main

# Hypothesis profiles: `ci` (selected by CI=true) draws the same examples on every run and keeps no example
# database, so a green run stays green; `default` for local runs; `explore` for long hunts by hand
# (HYPOTHESIS_PROFILE=explore, with --hypothesis-seed=N to vary the draw): ten times each test's examples.
# Loaded here, before the test modules import, so their @settings(...) inherit the profile.
EXPLORE_FACTOR = 10
_hypothesis_settings.register_profile("default")
_hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
_hypothesis_settings.register_profile("explore", print_blob=True)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI", "").lower() == "true" else "default")
_hypothesis_settings.load_profile(_PROFILE)


def pytest_ignore_collect(collection_path, config):
    """With torch tests deselected (`-m "not torch"`), a module whose tests are all torch-marked is not even
    imported: importing torch, transformers and peft costs several seconds of the quick loop's collection."""
    if "not torch" not in (config.option.markexpr or "") or collection_path.suffix != ".py":
        return None
    try:
        head = collection_path.read_text(encoding="utf-8")[:4000]
    except OSError:
        return None
    return True if "\npytestmark = pytest.mark.torch\n" in head else None


def pytest_collection_modifyitems(items):
    """Under `explore`, scale each property test's own max_examples (an explicit @settings beats a profile)."""
    if _PROFILE != "explore":
        return
    for test in {id(i.obj): i.obj for i in items if hasattr(getattr(i, "obj", None), "hypothesis")}.values():
        own = test._hypothesis_internal_use_settings
        test._hypothesis_internal_use_settings = _hypothesis_settings(own, max_examples=own.max_examples
                                                                      * EXPLORE_FACTOR)


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
