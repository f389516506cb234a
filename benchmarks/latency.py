"""Whole-process latency of one answer, against the floor of any Typer CLI on this machine.

    python benchmarks/latency.py            # 15 runs each, medians
    python benchmarks/latency.py --runs 30

Prints a small table: median wall time of each command, and its ratio to a one-command hello-world
Typer app (same Python, same Typer) and to `python -c "import typer, yaml"`. Also times the numeric core
of 10^5- and 10^6-point sweeps in-process (compute only, no printing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELLO = """import typer
app = typer.Typer()
@app.command()
def main(name: str = "world"):
    print("hello", name)
if __name__ == "__main__":
    app()
"""

COMMANDS = [
    ("flops", ["flops", "-m", "llama-3.1-8b", "--seq", "8192", "--json"]),
    ("flops (table)", ["flops", "-m", "llama-3.1-8b", "--seq", "8192", "-o", "table"]),
    ("kv", ["kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "32k", "--json"]),
    ("train-mem", ["train-mem", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "4096", "--json"]),
    ("roofline", ["roofline", "-g", "h100-sxm", "--intensity", "100", "--json"]),
    ("serve", ["serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--prompt", "1000", "--gen", "200", "--json"]),
    ("specdec", ["specdec", "--alpha", "0.8", "--k", "4", "--cost-ratio", "0.05", "--json"]),
    ("parallel", ["parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--gpus", "64", "--tp", "8", "--pp", "2",
                  "--json"]),
    ("--help", ["--help"]),
]


def timed(argv: list[str], runs: int) -> float | None:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return None
    return statistics.median(times)


def core_sweep_seconds(points: int) -> float:
    import numpy as np

    from llmcalc.core.flops import training_step_flops
    from llmcalc.presets import load_model

    spec = load_model("llama-3.1-8b")
    seq = np.linspace(1, 131072, points)
    batch = np.ones(points)
    t0 = time.perf_counter()
    training_step_flops(spec, batch, seq, causal=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    llmcalc = str(Path(py).with_name("llmcalc"))
    with tempfile.TemporaryDirectory() as tmp:
        hello = Path(tmp, "hello.py")
        hello.write_text(HELLO)
        floor_typer = timed([py, str(hello), "--name", "x"], args.runs)
    floor_import = timed([py, "-c", "import typer, yaml"], args.runs)
    print(f"{'command':<16}{'median ms':>11}{'÷ typer hello':>15}{'÷ import typer,yaml':>21}")
    print(f"{'typer hello':<16}{floor_typer * 1e3:>11.1f}{1:>15.2f}{floor_typer / floor_import:>21.2f}")
    print(f"{'import only':<16}{floor_import * 1e3:>11.1f}{floor_import / floor_typer:>15.2f}{1:>21.2f}")
    for label, cmd in COMMANDS:
        t = timed([llmcalc, *cmd], args.runs)
        if t is None:
            print(f"{label:<16}{'(not available)':>11}")
            continue
        print(f"{label:<16}{t * 1e3:>11.1f}{t / floor_typer:>15.2f}{t / floor_import:>21.2f}")
    for points in (100_000, 1_000_000):
        print(f"core sweep of {points:,} points (flops, causal): {core_sweep_seconds(points) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
