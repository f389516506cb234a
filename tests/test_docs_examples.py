"""Every example in the README and in each command's --help epilog runs, so the docs cannot drift.

Each `llmcalc …` line is run in-process (the part before a pipe; a piped `jq` gets the JSON, which is
checked to parse). Examples that ask for --check may exit 3; everything else must exit 0.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from conftest import assert_finite

ROOT = Path(__file__).resolve().parent.parent


def _examples_in(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip().lstrip("$ ").strip()
        # `llmcalc explore` is interactive: tests/test_explore.py drives it headless instead
        if line.startswith("llmcalc ") and "pip install" not in line and not line.startswith("llmcalc explore"):
            out.append(line)
    return out


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, re.S)
    examples = []
    for block in blocks:
        examples += _examples_in(block)
    m = re.search(r"pip install \. && (llmcalc [^\n`]+)", text)
    if m:
        examples.append(m.group(1))
    return examples


def epilog_examples() -> list[str]:
    import typer.main

    from llmcalc.cli import app

    found = []

    def walk(cmd):
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)
        found.extend(_examples_in(getattr(cmd, "epilog", None) or ""))

    walk(typer.main.get_command(app))
    return found


def _run(cli, line: str, tmp_path):
    command = line.split(" #")[0]
    piped = "|" in command
    command = command.split("|")[0].strip()
    args = shlex.split(command)[1:]
    args = [a.replace("FILE.png", str(tmp_path / "chart.png")) for a in args]
    run = cli(*args)
    allowed = (0, 3) if "--check" in args else (0,)
    assert run.code in allowed, f"{line!r} exited {run.code}: {run.stderr}"
    assert "Traceback" not in run.stderr
    if piped and ("--json" in args or "json" in args):
        assert_finite(json.loads(run.stdout))


@pytest.mark.parametrize("line", readme_examples())
def test_readme_example_runs(cli, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files (--plot x.png) write them here
    _run(cli, line, tmp_path)


@pytest.mark.parametrize("line", epilog_examples())
def test_help_epilog_example_runs(cli, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run(cli, line, tmp_path)


def test_there_are_examples():
    assert len(readme_examples()) >= 5
    assert len(epilog_examples()) >= 14  # 2+ per subcommand
