"""README's presets table is what scripts/presets_table.py generates from presets/*.yaml (like `cog --check`).

When this fails, run `python scripts/presets_table.py` and commit README.md.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("presets_table", ROOT / "scripts" / "presets_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_presets_table_is_generated():
    script = _script()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(script.START) == 1 and readme.count(script.END) == 1
    assert script.current(readme) == script.table().strip("\n"), (
        "README.md's presets table is out of date: run `python scripts/presets_table.py`")


def test_table_lists_every_builtin_preset():
    script = _script()
    body = script.table()
    for kind in ("models", "gpus"):
        for path in (ROOT / "presets" / kind).glob("*.yaml"):
            assert f"| `{path.stem}`" in body, f"{kind}/{path.name} is missing from the README table"


def test_check_mode_agrees(capsys):
    assert _script().main(["--check"]) == 0
