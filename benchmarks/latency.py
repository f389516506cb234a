"""Whole-process latency of one answer from every subcommand, against the floor of any Typer CLI here.

    python benchmarks/latency.py                 # 15 rounds, medians, a Markdown table for the README
    python benchmarks/latency.py --runs 30 --check 1.5   # exit 1 if a command takes over 1.5x hello-world

Each round runs a one-command hello-world Typer app (same Python, same Typer) and then every command once,
so all of them see the same load on a shared machine; the table gives each command's least CPU time (user +
system, which other processes on the machine hardly change), its ratio to hello-world's, and the median
wall time. Also times the numeric core of 10^5- and 10^6-point sweeps in-process
(compute only, no printing).
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

# One single-point answer per subcommand (and per mode where a mode loads more), as a user types it.
COMMANDS = [
    ("flops", ["flops", "-m", "llama-3.1-8b", "--seq", "8192", "--json"]),
    ("flops (table)", ["flops", "-m", "llama-3.1-8b", "--seq", "8192", "-o", "table"]),
    ("train-mem", ["train-mem", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "4096", "--json"]),
    ("kv", ["kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "32k", "--json"]),
    ("roofline", ["roofline", "-g", "h100-sxm", "--intensity", "100", "--json"]),
    ("roofline -m", ["roofline", "-g", "h100-sxm", "-m", "llama-3.1-8b", "--json"]),
    ("serve", ["serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--prompt", "1000", "--gen", "200", "--json"]),
    ("specdec", ["specdec", "--alpha", "0.8", "--k", "4", "--cost-ratio", "0.05", "--json"]),
    ("specdec -m -g", ["specdec", "-m", "llama-3.1-70b", "--draft", "llama-3.1-8b", "-g", "h100-sxm", "--tp", "4",
                       "--alpha", "0.8", "--json"]),
    ("parallel", ["parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--gpus", "64", "--tp", "8", "--pp", "2",
                  "--json"]),
    ("presets list", ["presets", "list", "gpus", "--json"]),
    ("--help", ["--help"]),
]


ROOT = Path(__file__).resolve().parents[1]     # measure this checkout, whatever is installed


def run_once(argv: list[str]) -> tuple[float, float] | None:
    """(wall seconds, CPU seconds user + system) of one run, None if it failed. CPU time hardly moves when
    other processes share the cores; wall time does."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100", "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)   # as installed: byte-code cached, not recompiled every run
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return (elapsed, usage.ru_utime + usage.ru_stime) if proc.returncode == 0 else None


def measure(runs: int, llmcalc: list[str], hello: list[str]) -> dict[str, tuple[float, float] | None]:
    """(median wall, least CPU) seconds of hello-world and of each command, the runs interleaved round by
    round. The least CPU time is the command's own cost; what exceeds it is other processes' cache and
    frequency interference (as timeit's documentation argues for its minimum)."""
    labels = ["hello", *(label for label, _ in COMMANDS)]
    argvs = {"hello": hello, **{label: [*llmcalc, *cmd] for label, cmd in COMMANDS}}
    times: dict[str, list | None] = {label: [] for label in labels}
    for label in labels:        # warm-up: writes the byte-code caches an installed package has
        run_once(argvs[label])
    for _ in range(runs):
        for label in labels:
            if times[label] is None:
                continue
            t = run_once(argvs[label])
            times[label] = None if t is None else times[label] + [t]
    return {k: (statistics.median(w for w, _ in v), min(c for _, c in v)) if v else None
            for k, v in times.items()}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--check", type=float, default=None, metavar="RATIO",
                        help="exit 1 if any command's median exceeds RATIO x the hello-world median")
    parser.add_argument("--no-core", action="store_true", help="skip the in-process sweep timings")
    args = parser.parse_args()
    py = sys.executable
    script = Path(py).with_name("llmcalc")
    llmcalc = [str(script)] if script.exists() else [py, "-m", "llmcalc"]
    with tempfile.TemporaryDirectory() as tmp:
        hello = Path(tmp, "hello.py")
        hello.write_text(HELLO)
        medians = measure(args.runs, llmcalc, [py, str(hello), "--name", "x"])
    floor_wall, floor_cpu = medians.pop("hello")
    print(f"{args.runs} interleaved runs; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs. The ratio is of "
          "the least CPU time (user + system), which a busy machine hardly moves; the median wall time beside it.\n")
    print("| command | CPU ms | × Typer hello-world | wall ms |")
    print("|---|---:|---:|---:|")
    print(f"| Typer hello-world | {floor_cpu * 1e3:.0f} | 1.00 | {floor_wall * 1e3:.0f} |")
    worst = 0.0
    for label, _ in COMMANDS:
        if medians[label] is None:
            print(f"| `{label}` | failed | | |")
            worst = float("inf")
            continue
        wall, cpu = medians[label]
        worst = max(worst, cpu / floor_cpu)
        print(f"| `{label}` | {cpu * 1e3:.0f} | {cpu / floor_cpu:.2f} | {wall * 1e3:.0f} |")
    if not args.no_core:
        print()
        for points in (100_000, 1_000_000):
            print(f"core sweep of {points:,} points (flops, causal): {core_sweep_seconds(points) * 1e3:.1f} ms")
    if args.check is not None and worst > args.check:
        print(f"\nslowest command is {worst:.2f}x hello-world, over the {args.check:g}x budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
