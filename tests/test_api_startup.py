"""`import llmcalc` stays cheap for notebook users (issue 15: under 50 ms on top of Python): the package loads
only the standard library, and each API function imports its command, the core and NumPy when called."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_US = 50_000


def _importtime(code: str) -> dict[str, int]:
    """Module → cumulative import time in µs, as `python -X importtime` reports it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-500:]
    out = {}
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit():
                out[name.strip()] = int(cumulative)
    return out


def test_import_llmcalc_is_under_50_ms_and_loads_no_heavy_module():
    best = None
    for _ in range(3):  # the least of three: a shared machine's scheduling noise is not import cost
        times = _importtime("import llmcalc")
        heavy = {m for m in times if m.split(".")[0] in ("typer", "click", "numpy", "rich", "yaml", "pydantic")}
        assert not heavy, f"import llmcalc loaded {sorted(heavy)}"
        assert not any(m.startswith("llmcalc.") and m not in ("llmcalc.errors",) for m in times), sorted(times)
        best = times["llmcalc"] if best is None else min(best, times["llmcalc"])
    assert best < LIMIT_US, f"import llmcalc took {best / 1000:.1f} ms"


def test_the_api_module_itself_is_light():
    times = _importtime("import llmcalc.api")
    assert not {m for m in times if m.split(".")[0] in ("typer", "click", "numpy", "rich", "yaml")}
