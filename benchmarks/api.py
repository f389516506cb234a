"""Cost of the Python API: `import llmcalc`, the first call of each function (which imports its command, the
core and NumPy), and a warm call, the figure that matters in a notebook loop or an interactive screen.

    python benchmarks/api.py              # 20 warm calls per function, medians
    python benchmarks/api.py --runs 50

Targets (issue 15): `import llmcalc` under 50 ms on top of Python; a warm single-point call well under the
50 ms a keystroke may take.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One single-point call per function, as a notebook user writes it.
CALLS = [
    ("flops", dict(model="llama-3.1-8b", seq=8192)),
    ("train_mem", dict(model="llama-3.1-8b", gpu="h100-sxm", seq=4096)),
    ("kv", dict(model="llama-3.1-8b", gpu="h100-sxm", seq="32k")),
    ("roofline", dict(gpu="h100-sxm", model="llama-3.1-8b")),
    ("serve", dict(model="llama-3.1-8b", gpu="h100-sxm", prompt=1000, gen=200)),
    ("specdec", dict(alpha=0.8, k=4, cost_ratio=0.05)),
    ("parallel", dict(model="llama-3.1-70b", gpu="h100-sxm", gpus=64, tp=8, pp=2)),
    ("serve sweep (64 points)", dict(model="llama-3.1-8b", gpu="h100-sxm", batch=list(range(1, 65)))),
]


def _process(code: str, runs: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    bare, imported = _process("pass", args.runs), _process("import llmcalc", args.runs)
    print(f"import llmcalc: {1000 * (imported - bare):.1f} ms on top of Python "
          f"(median of {args.runs} processes: {1000 * imported:.1f} vs {1000 * bare:.1f} ms)\n")

    import llmcalc
    print("| call | first (ms) | warm median (ms) |\n|---|---:|---:|")
    for label, kwargs in CALLS:
        func = getattr(llmcalc, label.split()[0])
        start = time.perf_counter()
        func(**kwargs)
        first = time.perf_counter() - start
        warm = []
        for _ in range(args.runs):
            start = time.perf_counter()
            func(**kwargs)
            warm.append(time.perf_counter() - start)
        print(f"| {label} | {1000 * first:.1f} | {1000 * statistics.median(warm):.2f} |")


if __name__ == "__main__":
    main()
