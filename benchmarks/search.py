"""How long `llmcalc parallel --search` takes for Llama-3.1-405B on 16,384 H100s (the budget: under a second of
compute).

    python benchmarks/search.py             # 7 runs each, medians
    python benchmarks/search.py --runs 20

Times, in-process, the search alone (enumerate every layout, evaluate memory and time on NumPy arrays, drop
what does not fit, rank) over every layout that fits (--top 0), for the default space (pipeline degrees that
divide the 126 layers) and the wider --uneven-pp space, at seq 8,192 and global batch 2,048 (Llama 3's 16M
tokens); then the whole command as a user runs it (process start, imports, output) for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def search_seconds(runs: int, uneven: bool) -> tuple[float, float, int, int]:
    from llmcalc.core import parallel as par
    from llmcalc.core import parallel_search as ps
    from llmcalc.presets import load_gpu, load_model

    spec, gpu = load_model("llama-3.1-405b"), load_gpu("h100-sxm")
    cluster = par.Cluster.from_gpu(gpu)
    run = par.Training(seq=8192, global_batch=2048)
    space = ps.SearchSpace(uneven_pp=uneven)
    ps.search(spec, gpu, cluster, run, 16384, space, top=0)          # warm imports and caches
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        res = ps.search(spec, gpu, cluster, run, 16384, space, top=0)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), res.candidates, res.fitting


def cli_seconds(runs: int) -> float:
    argv = [sys.executable, "-m", "llmcalc", "parallel", "-m", "llama-3.1-405b", "-g", "h100-sxm", "--gpus", "16384",
            "--seq", "8192", "--global-batch", "2048", "--search", "--json"]
    env = {**os.environ, "NO_COLOR": "1"}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    print("llama-3.1-405b on 16,384 h100-sxm, seq 8192, global batch 2048, every layout that fits (--top 0)")
    print(f"{'space':<34}{'layouts':>9}{'fit':>7}{'wall ms':>10}{'cpu ms':>9}")
    for label, uneven in (("pp dividing the layers (default)", False), ("--uneven-pp", True)):
        wall, cpu, n, fit = search_seconds(args.runs, uneven)
        verdict = "ok" if wall < 1.0 else "OVER BUDGET"
        print(f"{label:<34}{n:>9,}{fit:>7,}{wall * 1e3:>10.1f}{cpu * 1e3:>9.1f}  {verdict}")
    print(f"whole command (process, imports, JSON): {cli_seconds(max(3, args.runs // 2)) * 1e3:.0f} ms median")


if __name__ == "__main__":
    main()
