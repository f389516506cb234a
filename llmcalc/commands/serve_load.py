"""`llmcalc serve --rate R` (and `--slo-ttft`/`--slo-tpot`): serving under load, simulated (core/loadsim.py).

Kept apart from commands/serve.py, which handles the single-batch answer; serve() hands over here when a
load flag is given. Every numeric flag sweeps: each point is its own simulation, on the same random numbers.
"""

from __future__ import annotations

import sys
import time

LOAD_FLAGS = ("rate", "slo_ttft", "slo_tpot", "lengths")


class Progress:
    """A one-line progress indicator on stderr, shown only on a terminal and only once a run passes 1 s."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.t0 = time.perf_counter()
        self.shown = False
        self.on = sys.stderr.isatty()

    def __call__(self, done: int, total: int, unit: str = "") -> None:
        if self.on and time.perf_counter() - self.t0 > 1.0:
            label = "bisection step" if unit == "max_rate" else "requests done"
            sys.stderr.write(f"\r\x1b[K{self.what}{' (max_rate)' if unit == 'max_rate' else ''}: {label} "
                             f"{done}/{total}")
            sys.stderr.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def run(spec, gpu_spec, *, flags: dict, weight_dtype: str, kv_dtype: str, out: dict) -> None:
    import numpy as np

    from llmcalc.cli_support import Inputs, output
    from llmcalc.units import parse_seconds as _parse_seconds
    from llmcalc.core import loadsim as ls
    from llmcalc.core import serve as sv
    from llmcalc.core.kv import DEFAULT_MEM_UTIL
    from llmcalc.errors import InputError
    from llmcalc.lengths import read_lengths
    from llmcalc.render import Report

    f = flags
    inp = Inputs()
    notes: list[str] = []
    # every input is present in every run (null when not given), as the result keys are
    inp.number("rate", f["rate"], unit="req/s", label="arrival rate (Poisson)")
    requests = inp.number("requests", f["requests"], default=ls.DEFAULT_REQUESTS, unit="count",
                          label="requests simulated", integer=True, single=True)
    seed = inp.number("seed", f["seed"], default=ls.DEFAULT_SEED, unit="count", label="random seed", integer=True,
                      strict=False, single=True)
    if f["lengths"]:
        prompts, gens = read_lengths(f["lengths"])
        inp.fixed("lengths", f["lengths"], unit="str", label="request lengths file")
        inp.fixed("prompt", None, unit="count", label="prompt tokens (from --lengths)")
        inp.fixed("gen", None, unit="count", label="generated tokens (from --lengths)")
        notes.append(f"lengths: {len(prompts)} rows of {f['lengths']} (prompt mean {np.mean(prompts):.0f}, gen mean "
                     f"{np.mean(gens):.0f} tokens), drawn with replacement")
    else:
        inp.fixed("lengths", None, unit="str", label="request lengths file")
        inp.number("prompt", f["prompt"], unit="count", label="prompt tokens", integer=True)
        inp.number("gen", f["gen"], unit="count", label="generated tokens", integer=True)
        prompts = gens = None
    inp.fixed("weight_dtype", weight_dtype, unit="str")
    inp.fixed("kv_dtype", kv_dtype, unit="str")
    inp.number("tp", f["tp"], unit="count", label="tensor-parallel GPUs per replica", integer=True)
    inp.number("max_seqs", f["max_seqs"], default=ls.DEFAULT_MAX_SEQS, unit="count", label="max running sequences",
               integer=True)
    inp.number("max_batched_tokens", f["max_batched_tokens"], default=ls.DEFAULT_MAX_BATCHED_TOKENS, unit="count",
               label="max tokens per step", integer=True)
    inp.number("mbu", f["mbu"], default=sv.default_mbu(weight_dtype), unit="ratio", label="MBU", maximum=1.0)
    inp.number("mfu", f["mfu"], default=sv.DEFAULT_MFU, unit="ratio", label="MFU", maximum=1.0)
    inp.number("mem_util", f["mem_util"], default=DEFAULT_MEM_UTIL, unit="ratio", label="usable memory share",
               maximum=1.0)
    for name in ("slo_ttft", "slo_tpot"):
        inp.number(name, f[name], unit="s", label=name.replace("_", " ").upper(), parse=_parse_seconds)
    slo = f["slo_ttft"] is not None or f["slo_tpot"] is not None
    from llmcalc.commands import cost_options
    price = cost_options.resolve(gpu_spec, gpu_cost=f["gpu_cost"], notes=notes, energy=False, inp=inp)["price"]
    pct = inp.number("slo_percentile", f["slo_percentile"], default=ls.DEFAULT_SLO_PERCENTILE, unit="percent",
                     label="SLO percentile", maximum=100.0, single=True)
    if f["rate"] is None and not slo:
        raise InputError("give --rate (requests/s) to simulate, or --slo-ttft/--slo-tpot to find the rate")
    v = inp.grid()
    n_points = len(v[inp.swept[0]]) if inp.swept else 1     # grid() gave every axis the same length
    unit_arr = rows = None
    engines: dict = {}
    points, hists, memo = [], [], {}
    progress = Progress("simulating")
    try:
        for i in range(n_points):
            p = {k: _at(v[k], i) for k in v}
            tp = int(p["tp"])
            key = (tp, int(p["max_seqs"]), int(p["max_batched_tokens"]), p["mbu"], p["mfu"], p["mem_util"])
            if key not in engines:
                engines[key] = ls.build_engine(
                    spec, gpu_spec, max_seqs=key[1], max_batched_tokens=key[2], mem_util=key[5],
                    weight_dtype=weight_dtype, kv_dtype=kv_dtype, tp=tp, mbu=key[3], mfu=key[4])
            eng = engines[key]
            pr, gn = (prompts, gens) if prompts is not None else ([int(p["prompt"])], [int(p["gen"])])
            ls.check_lengths(pr, gn, blocks=eng.blocks, block=eng.block,
                             where=f["lengths"] or "--prompt + --gen")
            if unit_arr is None:
                unit_arr, rows = ls.unit_arrivals(int(requests), int(seed), len(pr))
            res, hist = ls.load_point(eng, unit_arr, rows, pr, gn, rate=p.get("rate"), slo_ttft=p.get("slo_ttft"),
                                      slo_tpot=p.get("slo_tpot"), percentile=float(pct), tp=tp, price=price,
                                      progress=progress, memo=memo)
            points.append(res)
            hists.append(hist)
    finally:
        progress.close()
    r = ls.load_results(points)
    eng0 = next(iter(engines.values()))
    notes.append(f"{int(requests)} requests arriving as a Poisson process (seed {int(seed)}); a vLLM-like scheduler: "
                 f"chunked prefill up to --max-batched-tokens per step, at most --max-seqs sequences, admission "
                 f"by free KV blocks of {eng0.block} tokens ({eng0.blocks} blocks per replica at the first point), "
                 "preemption by recompute")
    if f["mbu"] is None or f["mfu"] is None:
        notes.append(f"step time: serve's roofline step at MBU {sv.default_mbu(weight_dtype):g} / MFU "
                     f"{sv.DEFAULT_MFU:g} (serve's defaults; set --mbu/--mfu)")
    if slo:
        notes.append(f"SLOs are met at p{float(pct):g} (--slo-percentile, default {ls.DEFAULT_SLO_PERCENTILE:g}); "
                     "max_rate by bisection on the simulation with common random numbers")
        if f["rate"] is not None:
            notes.append("with --rate and SLOs the latencies are those of one replica at its share, rate ÷ replicas")
        if any(pt["max_rate"] == 0 for pt in points):
            notes.append("no rate meets the SLOs at the chosen percentile (max_rate 0): the slowest requests "
                         "alone exceed them")
    if any(pt["overloaded"] for pt in points):
        notes.append("overloaded: arrivals exceed what the engine serves, so the queue (and TTFT) grows with "
                     "--requests; these latencies are not a steady state")
    extra = {"histograms": hists[0] if len(hists) == 1 else hists}
    report = Report("serve", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes, extra=extra,
                    chart=_chart if len(hists) == 1 and hists[0] else None,
                    columns=["ttft_p99_seconds", "tpot_p99_seconds", "e2e_p99_seconds", "mean_batch",
                             "output_tokens_per_second", "slo_attainment", "max_rate", "replicas", "gpus",
                             "overloaded"] if inp.swept else [])
    output(report, **out)


def _at(value, i):
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return float(value[i])
    return value


def _chart(report) -> str:
    from llmcalc import charts
    texts = []
    for key, title in (("ttft_seconds", "time to first token"), ("tpot_seconds", "time per output token")):
        h = report.extra["histograms"].get(key) or {}
        if not h.get("counts"):
            continue
        edges = h["edges"]
        labels = [f"{(a + b) / 2 * 1e3:.3g}" for a, b in zip(edges, edges[1:])]
        texts.append(charts.hbars(labels, {"requests": h["counts"]}, f"{title} (ms, bin centres): requests per bin",
                                  "requests", axis_label="ms",
                                  fmt=lambda v: f"{v:,.0f}"))
    return "\n".join(texts)
