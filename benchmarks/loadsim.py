"""Speed of the serving-under-load simulator (llmcalc/core/loadsim.py), in-process.

    python benchmarks/loadsim.py                 # 10^5 requests at four loads, and max_rate
    python benchmarks/loadsim.py --requests 20000

Targets (issue 13): 10^5 requests in under 2 s on one core, max_rate in under 10 s. The machine's speed is
printed beside them as the time of 10^7 Python additions (about 0.5 s on one idle modern core), because on a
shared machine the wall time says as much about the neighbours as about the code.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def python_speed() -> float:
    t0 = time.process_time()
    x = 0
    for i in range(10_000_000):
        x += i
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--solver-requests", type=int, default=1000)
    args = ap.parse_args()

    from llmcalc.core import loadsim as ls
    from llmcalc.presets import load_gpu, load_model

    spec, gpu = load_model("llama-3.1-8b"), load_gpu("h100-sxm")
    print(f"machine: 10^7 Python additions take {python_speed():.2f} s of CPU; load average "
          f"{os.getloadavg()[0]:.1f}")
    t0 = time.process_time()
    eng = ls.build_engine(spec, gpu)
    print(f"engine build (step tables from serve.step): {time.process_time() - t0:.3f} s CPU")
    P, G = 1000, 300
    unit, rows = ls.unit_arrivals(args.requests, seed=0)
    print(f"\nllama-3.1-8b on one h100-sxm, prompt {P}, gen {G}, {args.requests} Poisson requests")
    print(f"{'rate req/s':>10} {'CPU s':>7} {'wall s':>7} {'loop passes':>11} {'steps':>9} {'mean batch':>10} "
          f"{'TTFT p99 ms':>11} {'overloaded':>10}")
    for rate in (1.0, 5.0, 15.0, 30.0):
        w = ls.workload(rate, unit, rows, [P], [G])
        c0, w0 = time.process_time(), time.perf_counter()
        sim = eng.run(w)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        d = ls.summarize(sim, rate)
        print(f"{rate:>10g} {cpu:>7.2f} {wall:>7.2f} {sim.extra.get('passes', 0):>11} {sim.steps:>9} "
              f"{d['mean_batch']:>10.1f} {d['ttft_p99_seconds'] * 1e3:>11.1f} {str(d['overloaded']):>10}")

    unit, rows = ls.unit_arrivals(args.solver_requests, seed=0)
    c0, w0 = time.process_time(), time.perf_counter()
    calls = []
    mr = ls.max_rate(eng, unit, rows, [P], [G], slo_ttft=0.5, slo_tpot=0.05, progress=lambda i, n: calls.append(i))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"\nmax_rate (p99 TTFT ≤ 500 ms, p99 TPOT ≤ 50 ms, {args.solver_requests} requests): {mr:.2f} req/s "
          f"in {len(calls)} simulations, {cpu:.2f} s CPU, {wall:.2f} s wall")


if __name__ == "__main__":
    main()
