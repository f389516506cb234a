"""`llmcalc serve`: inference latency and throughput of a model on a GPU, at the roofline with stated efficiency."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmcalc.commands.cost_options import GpuCostOpt
from llmcalc.cli_support import (AllreduceLatencyOpt, GpuOpt, KvDtypeOpt, KvGroupOpt, MbuOpt, MemUtilOpt, MfuOpt,
                                 ModelOpt, ScaleBytesOpt, TpOpt, WeightDtypeOpt, WeightGroupOpt, shared_options)

EPILOG = """Examples:

  llmcalc serve -m llama-3.1-8b -g h100 --rate 20 --prompt 1000 --gen 300 --requests 5000

  llmcalc serve -m llama-3.1-70b -g h100 --tp 2,4,8 --rate 20 --slo-ttft 500ms --slo-tpot 50ms

  llmcalc serve -m llama-2-7b -g a100-80gb --batch 1 --prompt 5 --gen 200

  llmcalc serve -m llama-2-70b -g a100-80gb --weight-dtype int4 --weight-group-size 32 --scale-bytes 4

  llmcalc serve -m llama-3.1-70b -g h100-sxm --tp 4 --batch 1..256x2 --plot latency.png

  llmcalc serve -m llama-3.1-8b -g a100 --target-latency 30ms --gen-min 16 --gen 512

  llmcalc serve -m mixtral-8x7b -g h100 --tp 2 --batch 1,8,64 --json | jq '.rows[] | [.batch, .experts_touched]'
"""

EFF = "Efficiency"
QUANT = "Precision"
BATCHING = "Batching"
LOAD = "Under load (--rate)"


def _opt(flag: str, help_: str, panel: str | None = None):
    return Annotated[Optional[str], typer.Option(flag, help=help_, rich_help_panel=panel, show_default=False)]


# Keys only some runs produce; the rest report them as null (contract v2: stable keys).
SCHEMA = {
    "experts_touched": ("number", "expected distinct experts per MoE layer per decode step"),
    "gen_mean": ("number", "mean output length"),
    "gen_longest_expected": ("number", "expected longest output of the batch"),
    "static_throughput_tokens_per_second": ("token/s", "static batching: the batch waits for its longest output"),
    "continuous_throughput_tokens_per_second": ("token/s", "continuous batching: finished slots refilled at once"),
    "continuous_gain": ("factor", "continuous ÷ static throughput"),
    "target_batch": ("count", "largest batch (that fits) within the target time per token"),
    "target_decode_seconds_per_token": ("s", "time per token at that batch"),
    "target_throughput_tokens_per_second": ("token/s", "throughput at that batch"),
}
LEAD = ("e2e_throughput_tokens_per_second", "prefill_seconds", "decode_seconds_per_token", "e2e_seconds",
        "throughput_tokens_per_second")


@shared_options()
def serve(
    model: ModelOpt = None,
    gpu: GpuOpt = None,
    batch: Annotated[str, typer.Option("-b", "--batch", help="Sequences decoded together. Lists/ranges sweep (latency-throughput curve).")] = "1",
    prompt: Annotated[str, typer.Option("--prompt", help="Prompt tokens per sequence (prefill).")] = "1024",
    gen: Annotated[str, typer.Option("--gen", help="Tokens generated per sequence (the longest, with --gen-min).")] = "256",
    gen_min: _opt("--gen-min", "Shortest output: lengths spread uniformly between --gen-min and --gen; compares static and continuous batching.", BATCHING) = None,
    target_latency: _opt("--target-latency", "Largest batch whose mean time per output token stays under this (e.g. 30ms).", BATCHING) = None,
    weight_dtype: WeightDtypeOpt = None,
    group_size: WeightGroupOpt = None,
    scale_bytes: ScaleBytesOpt = None,
    kv_dtype: KvDtypeOpt = None,
    kv_group_size: KvGroupOpt = None,
    tp: TpOpt = None,
    mbu: MbuOpt = None,
    mfu: MfuOpt = None,
    allreduce_latency: AllreduceLatencyOpt = None,
    mem_util: MemUtilOpt = None,
    compute_dtype: _opt("--compute-dtype", "Matmul precision, bf16 or fp8 (fp8: the matmuls at the fp8 peak, attention in bf16). Default bf16; a comma list sweeps.", EFF) = None,
    ep: Annotated[bool, typer.Option("--ep", help="MoE: experts spread over the --tp GPUs (expert parallelism): all-to-alls per MoE layer instead of its all-reduce.", rich_help_panel=EFF)] = False,
    solve_seq: Annotated[bool, typer.Option("--max-seq", help="Lead with the longest prompt + generation that fits at --batch (max_seq; always in the results).")] = False,
    rate: _opt("--rate", "Requests/s arriving as a Poisson process: simulate a continuous-batching engine under that load.", LOAD) = None,
    requests: _opt("--requests", "Requests simulated (default 1000).", LOAD) = None,
    seed: _opt("--seed", "Random seed of the arrivals and lengths (default 0).", LOAD) = None,
    lengths: _opt("--lengths", "CSV or JSON Lines file of request lengths (prompt and gen columns) instead of --prompt/--gen.", LOAD) = None,
    max_seqs: _opt("--max-seqs", "Most sequences running at once (default 256, vLLM's).", LOAD) = None,
    max_batched_tokens: _opt("--max-batched-tokens", "Most tokens per step, decode plus prefill chunks (default 8192).", LOAD) = None,
    slo_ttft: _opt("--slo-ttft", "Time-to-first-token SLO (e.g. 500ms): find the largest rate one replica sustains.", LOAD) = None,
    slo_tpot: _opt("--slo-tpot", "Time-per-output-token SLO (e.g. 50ms).", LOAD) = None,
    slo_percentile: _opt("--slo-percentile", "Percentile at which the SLOs must hold (default 99).", LOAD) = None,
    gpu_cost: GpuCostOpt = None,
    engine: Annotated[Optional[str], typer.Option("--engine", help="Who runs the prefill, for peak_memory_bytes and what fits: vllm (chunked, last-token logits; default), hf (transformers generate), hf-legacy (transformers < 4.45: every prompt position's logits) or none (weights + cache only).", show_default=False)] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit with status 3 when the batch does not fit in memory.")] = False,
    plot: Annotated[Optional[str], typer.Option("--plot", help="With a --batch sweep: write the latency-throughput curve to FILE.png or .svg.", show_default=False)] = None,
    arch: dict = None, out: dict = None,
) -> None:
    """Time to first token, time per output token, end-to-end latency and throughput of a model on a GPU (or --tp GPUs), led by the memory-bandwidth ceiling: weights and the KV cache read once per decode step, FLOPs at the compute roof, with stated MBU/MFU; what fits; batching and its trade-offs."""
    from llmcalc.charts import check_image_path
    from llmcalc.cli_support import (Inputs, check_formats, least, most, output, read_efficiency, read_formats,
                                     read_mem_util, read_seconds, resolve_gpu, resolve_model)
    from llmcalc.core import serve as sv
    from llmcalc.errors import ExitStatus, InputError
    from llmcalc.render import Report

    spec = resolve_model(model, arch)
    gpu_spec = resolve_gpu(gpu, required=True)
    if rate is not None or slo_ttft is not None or slo_tpot is not None or lengths is not None:
        from llmcalc.commands import serve_load
        return serve_load.run(spec, gpu_spec, weight_dtype=weight_dtype or "bf16", kv_dtype=kv_dtype or "bf16",
                              out=out, flags=dict(
            rate=rate, requests=requests, seed=seed, lengths=lengths, max_seqs=max_seqs, prompt=prompt, gen=gen,
            max_batched_tokens=max_batched_tokens, slo_ttft=slo_ttft, slo_tpot=slo_tpot, tp=tp or "1", mbu=mbu,
            mfu=mfu, slo_percentile=slo_percentile, mem_util=mem_util, gpu_cost=gpu_cost))
    if plot:
        check_image_path(plot)
        if "," not in batch and ".." not in batch:
            raise InputError("--plot draws the latency-throughput curve: give a --batch sweep, e.g. --batch 1..256x2")

    inp = Inputs()
    notes: list[str] = []
    inp.number("batch", batch, unit="count", label="sequences", integer=True)
    inp.number("prompt", prompt, unit="count", label="prompt tokens", integer=True)
    inp.number("gen", gen, unit="count", label="generated tokens", integer=True)
    inp.number("gen_min", gen_min, unit="count", label="shortest output", integer=True)
    read_formats(inp, weight_dtype, group_size, kv_dtype, kv_group_size, scale_bytes, scales=True,
                 checkpoint=spec.weight_format, notes=notes)
    inp.number("tp", tp or "1", unit="count", label="tensor-parallel GPUs", integer=True, outer=True)
    read_efficiency(inp, notes, mfu, mbu, inp.items["weight_dtype"].value)
    read_seconds(inp, "allreduce_latency", allreduce_latency, sv.DEFAULT_ALLREDUCE_LATENCY, "all-reduce latency")
    read_mem_util(inp, notes, mem_util)
    from llmcalc.commands import cost_options
    from llmcalc.core import cost, servemem
    price = cost_options.resolve(gpu_spec, gpu_cost=gpu_cost, notes=notes, energy=False, inp=inp)["price"]
    inp.choices("engine", engine, servemem.ENGINES, default=servemem.DEFAULT_ENGINE, label="prefill engine")
    inp.number("max_batched_tokens", max_batched_tokens, default=8192, unit="count", integer=True,
               label="tokens per prefill chunk (vllm)", outer=True)
    notes.append(servemem.capacity_note(inp.items["engine"].value))
    from llmcalc.core.precision import COMPUTE_DTYPES, compute_dtype as check_compute, compute_note
    cds = inp.choices("compute_dtype", compute_dtype, COMPUTE_DTYPES, default="bf16", label="matmul dtype")
    for cd in cds if isinstance(cds, list) else [cds]:
        check_compute(gpu_spec, requested=cd)
        notes += [n for n in [compute_note(cd)] if n]
    inp.fixed("ep", ep, unit="bool")
    target = read_seconds(inp, "target_latency", target_latency, None, "target time per token")
    if target is not None and (inp.swept or inp.outer):
        raise InputError("--target-latency searches over the batch itself; give single values for the rest")
    if isinstance(target, list):
        raise InputError("--target-latency takes one value")

    def compute(v):
        check_formats(v)
        kw = dict(weight_dtype=v["weight_dtype"], kv_dtype=v["kv_dtype"], group_size=int(v["weight_group_size"]),
                  kv_group_size=int(v["kv_group_size"]), scale_bytes=float(v["scale_bytes"]), tp=int(v["tp"]),
                  mbu=v["mbu"], mfu=v["mfu"], alpha=float(v["allreduce_latency"]), dtype=v["compute_dtype"], ep=ep,
                  engine=v["engine"], max_batched_tokens=int(v["max_batched_tokens"]))
        if v["gen_min"] is not None and most(v["gen_min"]) > least(v["gen"]):
            raise InputError("--gen-min must not exceed --gen")
        r = sv.serve(spec, gpu_spec, v["batch"], v["prompt"], v["gen"], gen_min=v["gen_min"],
                     mem_util=v["mem_util"], **kw)
        if target is not None:
            sv.add_target_batch(r, spec, gpu_spec, v["prompt"], v["gen"], float(target), v["mem_util"], **kw)
        pre, e2e = r["prefill_seconds"].value, r["e2e_seconds"].value
        cost.serving(r, gpus=int(v["tp"]), price=price, wall_seconds=e2e, prefill_busy=pre, decode_busy=e2e - pre,
                     input_tokens=v["batch"] * v["prompt"], output_tokens=v["batch"] * v["gen"])
        return servemem.add_peak(r, spec, v["batch"], v["prompt"], r["weights_bytes"].value + r["kv_bytes"].value,
                                 engine=v["engine"], max_batched_tokens=int(v["max_batched_tokens"]), after="kv_bytes")

    r = inp.evaluate(compute)
    from llmcalc.core.formula import Results
    lead = ("max_seq",) + LEAD if solve_seq else LEAD
    r = Results([(k, r[k]) for k in lead if k in r] + [(k, row) for k, row in r.items() if k not in lead])
    if target is not None and not r["target_batch"].value:
        notes.append("no batch meets the target latency" + (" (not even one sequence fits)"
                                                             if r["max_batch"].value < 1 else ""))
    from llmcalc.core.formula import all_of
    fits = all_of(r["fits"].value)       # a bool for one point: no NumPy
    if not fits:
        from llmcalc.suggest import serve_fixes
        notes.append("does not fit: " + ("some batches exceed" if inp.swept else "the batch exceeds")
                     + " max_batch (weights + KV cache + prefill transient > mem-util × memory per GPU)")
        notes += serve_fixes(spec, gpu_spec, inp.items, r)
    columns, chart = [], None
    if inp.swept:
        columns = ["e2e_throughput_tokens_per_second", "decode_seconds_per_token", "decode_tokens_per_second",
                   "throughput_tokens_per_second", "prefill_seconds", "e2e_seconds", "decode_bound", "fits"]
        if gen_min is not None:
            columns.insert(4, "continuous_gain")
        if "batch" in inp.swept:
            chart = _chart
            if plot:
                _plot(plot, r, spec, gpu_spec, notes)
    report = Report("serve", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=columns, chart=chart, schema=SCHEMA)
    output(report, **out)
    if check and not fits:
        raise typer.Exit(int(ExitStatus.CHECK_FAILED))




def _series(results):
    import numpy as np
    thr = np.asarray(results["throughput_tokens_per_second"].value, dtype=float)
    lat = np.asarray(results["decode_seconds_per_token"].value, dtype=float) * 1e3
    return thr, lat


def _chart(report) -> str:
    from llmcalc import charts
    thr, lat = _series(report.results)
    batch = [float(b) for b in report.inputs["batch"].value]
    points = {f"B={b:g}": (t, y) for b, t, y in zip(batch, thr, lat)}       # each point named by its batch
    return charts.lines(thr, {"ms per token (each sequence)": lat}, "latency vs throughput over the batch sweep",
                        "throughput (tokens/s, all sequences)", "ms/token", logx=True, points=points,
                        points_name="batch sizes")


def _plot(path: str, r, spec, gpu_spec, notes: list[str]) -> None:
    from llmcalc import charts
    thr, lat = _series(r)
    charts.lines_image(path, thr, {f"{spec.name} on {gpu_spec.name}": lat}, "latency-throughput (points: batch sizes)",
                       "throughput (tokens/s)", "time per output token (ms)", logx=True)
    notes.append(f"chart written to {path}")
