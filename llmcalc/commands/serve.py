"""`llmcalc serve`: inference latency and throughput of a model on a GPU, at the roofline with stated efficiency."""

from __future__ import annotations

import re
from typing import Annotated, Optional

import typer

from llmcalc.cli_support import GpuOpt, ModelOpt, shared_options
from llmcalc.commands.cost_options import GpuCostOpt

EPILOG = """Examples:

  llmcalc serve -m llama-2-7b -g a100-80gb --batch 1 --prompt 5 --gen 200

  llmcalc serve -m llama-2-70b -g a100-80gb --weight-dtype int4 --weight-group-size 32 --scale-bytes 4

  llmcalc serve -m llama-3.1-70b -g h100-sxm --tp 4 --batch 1..256x2 --plot latency.png

  llmcalc serve -m llama-3.1-8b -g a100 --target-latency 30ms --gen-min 16 --gen 512

  llmcalc serve -m mixtral-8x7b -g h100 --tp 2 --batch 1,8,64 --json | jq '.rows[] | [.batch, .experts_touched]'

  llmcalc serve -m llama-3.1-8b -g h100 --rate 20 --prompt 1000 --gen 300 --requests 5000

  llmcalc serve -m llama-3.1-70b -g h100 --tp 2,4,8 --rate 20 --slo-ttft 500ms --slo-tpot 50ms
"""

EFF = "Efficiency"
QUANT = "Precision"
BATCHING = "Batching"
LOAD = "Under load (--rate)"


def _opt(flag: str, help_: str, panel: str | None = None):
    return Annotated[Optional[str], typer.Option(flag, help=help_, rich_help_panel=panel, show_default=False)]


@shared_options()
def serve(
    model: ModelOpt = None,
    gpu: GpuOpt = None,
    batch: Annotated[str, typer.Option("-b", "--batch", help="Sequences decoded together. Lists/ranges sweep (latency-throughput curve).")] = "1",
    prompt: Annotated[str, typer.Option("--prompt", help="Prompt tokens per sequence (prefill).")] = "1024",
    gen: Annotated[str, typer.Option("--gen", help="Tokens generated per sequence (the longest, with --gen-min).")] = "256",
    gen_min: _opt("--gen-min", "Shortest output: lengths spread uniformly between --gen-min and --gen; compares static and continuous batching.", BATCHING) = None,
    target_latency: _opt("--target-latency", "Largest batch whose mean time per output token stays under this (e.g. 30ms).", BATCHING) = None,
    weight_dtype: Annotated[str, typer.Option("--weight-dtype", help="bf16, fp16, fp32, or weight-only fp8, int8, int4.", rich_help_panel=QUANT)] = "bf16",
    group_size: _opt("--weight-group-size", "Quantised weights: elements per scale group (e.g. 32, 128); 0 = per-channel (default).", QUANT) = None,
    scale_bytes: _opt("--scale-bytes", "Bytes of scale data per group (2: a 16-bit scale; 4: scale + zero point, as gpt-fast int4).", QUANT) = None,
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", help="KV cache dtype (bf16, fp16, fp32, fp8, int8, int4).", rich_help_panel=QUANT)] = "bf16",
    kv_group_size: _opt("--kv-group-size", "Quantised cache: elements per scale group (0: none counted).", QUANT) = None,
    tp: Annotated[str, typer.Option("--tp", help="Tensor-parallel GPUs (all-reduce over the preset's NVLink).")] = "1",
    mbu: _opt("--mbu", "Achieved share of HBM bandwidth in decode (default by weight format: 0.68 16-bit, 0.57 8-bit, 0.46 int4; fitted to gpt-fast on A100).", EFF) = None,
    mfu: _opt("--mfu", "Achieved share of peak FLOP/s (default 0.5).", EFF) = None,
    allreduce_latency: _opt("--allreduce-latency", "Fixed cost of one all-reduce under --tp (default 20us).", EFF) = None,
    mem_util: _opt("--mem-util", "Share of GPU memory usable for weights + cache (default 0.9, as vLLM).", EFF) = None,
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
    engine: Annotated[str, typer.Option("--engine", help="Who runs the prefill, for peak_memory_bytes: vllm (chunked, last-token logits), hf (transformers generate) or hf-legacy (transformers < 4.45: every prompt position's logits).")] = "vllm",
    check: Annotated[bool, typer.Option("--check", help="Exit with status 3 when the batch does not fit in memory.")] = False,
    plot: Annotated[Optional[str], typer.Option("--plot", help="With a --batch sweep: write the latency-throughput curve to FILE.png or .svg.", show_default=False)] = None,
    arch: dict = None, out: dict = None,
) -> None:
    """Time to first token, time per output token, end-to-end latency and throughput of a model on a GPU
    (or --tp GPUs), led by the memory-bandwidth ceiling: weights and the KV cache read once per decode
    step, FLOPs at the compute roof, with stated MBU/MFU; what fits; batching and its trade-offs."""
    import numpy as np

    from llmcalc.charts import check_image_path
    from llmcalc.cli_support import Inputs, choice, output, resolve_gpu, resolve_model
    from llmcalc.core import serve as sv
    from llmcalc.core.kv import DEFAULT_MEM_UTIL, KV_DTYPES
    from llmcalc.errors import ExitStatus, InputError
    from llmcalc.render import Report

    spec = resolve_model(model, arch)
    gpu_spec = resolve_gpu(gpu, required=True)
    weight_dtype = choice("--weight-dtype", weight_dtype, sv.WEIGHT_DTYPES)
    kv_dtype = choice("--kv-dtype", kv_dtype, KV_DTYPES)
    if rate is not None or slo_ttft is not None or slo_tpot is not None or lengths is not None:
        from llmcalc.commands import serve_load
        return serve_load.run(spec, gpu_spec, weight_dtype=weight_dtype, kv_dtype=kv_dtype, out=out, flags=dict(
            rate=rate, requests=requests, seed=seed, lengths=lengths, max_seqs=max_seqs, prompt=prompt, gen=gen,
            max_batched_tokens=max_batched_tokens, slo_ttft=slo_ttft, slo_tpot=slo_tpot, tp=tp, mbu=mbu, mfu=mfu,
            slo_percentile=slo_percentile, mem_util=mem_util, gpu_cost=gpu_cost))
    if plot:
        check_image_path(plot)
        if "," not in batch and ".." not in batch:
            raise InputError("--plot draws the latency-throughput curve: give a --batch sweep, e.g. --batch 1..256x2")

    inp = Inputs()
    inp.number("batch", batch, unit="count", label="sequences", integer=True)
    inp.number("prompt", prompt, unit="count", label="prompt tokens", integer=True)
    inp.number("gen", gen, unit="count", label="generated tokens", integer=True)
    if gen_min is not None:
        inp.number("gen_min", gen_min, unit="count", label="shortest output", integer=True)
    inp.fixed("weight_dtype", weight_dtype, unit="str")
    gs = inp.number("weight_group_size", group_size, default=0, unit="count", label="weight group size", integer=True,
                    strict=False)
    sb = inp.number("scale_bytes", scale_bytes, default=2.0, unit="byte", label="scale bytes per group")
    inp.fixed("kv_dtype", kv_dtype, unit="str")
    kgs = inp.number("kv_group_size", kv_group_size, default=0, unit="count", label="KV group size",
                     integer=True, strict=False)
    tp_n = inp.number("tp", tp, unit="count", label="tensor-parallel GPUs", integer=True)
    notes: list[str] = []
    mbu_default = sv.default_mbu(weight_dtype)
    inp.number("mbu", mbu, default=mbu_default, unit="ratio", label="MBU", maximum=1.0)
    inp.number("mfu", mfu, default=sv.DEFAULT_MFU, unit="ratio", label="MFU", maximum=1.0)
    if mbu is None:
        notes.append(f"MBU {mbu_default:g} assumed for {weight_dtype} weights (gpt-fast on a 330 W A100: 0.68-0.69 "
                     "for 16-bit, 0.51-0.65 int8, 0.40-0.53 int4); set --mbu")
    if mfu is None:
        notes.append(f"MFU {sv.DEFAULT_MFU:g} assumed for prefill (the COS 597A slides: typical 30-50%); set --mfu")
    alpha = inp.number("allreduce_latency", allreduce_latency, default=sv.DEFAULT_ALLREDUCE_LATENCY, unit="s",
                       label="all-reduce latency", parse=_parse_seconds, strict=False)
    inp.number("mem_util", mem_util, default=DEFAULT_MEM_UTIL, unit="ratio", label="usable memory share",
               maximum=1.0)
    target = None
    if target_latency is not None:
        target = inp.number("target_latency", target_latency, unit="s", label="target time per token",
                            parse=_parse_seconds)
    for name in ("weight_group_size", "scale_bytes", "kv_group_size", "tp", "allreduce_latency", "target_latency"):
        if name in inp.swept:
            raise InputError(f"--{name.replace('_', '-')} takes one value (sweep --batch, --prompt, --gen, "
                             "--mbu or --mfu instead)")
    if target is not None and inp.swept:
        raise InputError("--target-latency searches over the batch itself; give single values for the rest")
    tp_n = int(tp_n)
    v = inp.grid()
    if gen_min is not None and np.any(np.asarray(v["gen_min"]) > np.asarray(v["gen"])):
        raise InputError("--gen-min must not exceed --gen")

    r = sv.serve(spec, gpu_spec, v["batch"], v["prompt"], v["gen"], gen_min=v.get("gen_min"),
                 weight_dtype=weight_dtype, kv_dtype=kv_dtype, group_size=int(gs), kv_group_size=int(kgs),
                 scale_bytes=float(sb), tp=tp_n, mbu=v["mbu"], mfu=v["mfu"], alpha=float(alpha),
                 mem_util=v["mem_util"])
    if target is not None:
        mb = int(np.asarray(r["max_batch"].value).reshape(-1)[0])
        kw = dict(weight_dtype=weight_dtype, kv_dtype=kv_dtype, group_size=int(gs), kv_group_size=int(kgs),
                  scale_bytes=float(sb), tp=tp_n, mbu=v["mbu"], mfu=v["mfu"], alpha=float(alpha))
        best = sv.target_batch(spec, gpu_spec, v["prompt"], v["gen"], float(target), mb, **kw)
        r.put("target_batch", best, "count", "largest batch (that fits) within the target time per token")
        if best:
            at = sv.serve(spec, gpu_spec, best, v["prompt"], v["gen"], **kw, mem_util=v["mem_util"])
            r.put("target_decode_seconds_per_token", at["decode_seconds_per_token"].value, "s",
                  "time per token at that batch")
            r.put("target_throughput_tokens_per_second", at["throughput_tokens_per_second"].value, "token/s",
                  "throughput at that batch")
        else:
            notes.append("no batch meets the target latency" + (" (not even one sequence fits)" if mb < 1 else ""))

    from llmcalc.commands import cost_options
    from llmcalc.core import cost
    price = cost_options.resolve(gpu_spec, gpu_cost=gpu_cost, notes=notes, energy=False, inp=inp)["price"]
    B, P, G = v["batch"], v["prompt"], v["gen"]
    pre = r["prefill_seconds"].value
    cost.serving(r, gpus=tp_n, price=price, wall_seconds=r["e2e_seconds"].value, prefill_busy=pre,
                 decode_busy=r["e2e_seconds"].value - pre, input_tokens=B * P, output_tokens=B * G)
    from llmcalc.core import servemem
    engine = choice("--engine", engine, servemem.ENGINES)
    inp.fixed("engine", engine, unit="str")
    mbt = int(inp.number("max_batched_tokens", max_batched_tokens, default=8192, unit="count", integer=True,
                         label="tokens per prefill chunk (vllm)"))
    servemem.add_peak(r, spec, B, P, r["weights_bytes"].value + r["kv_bytes"].value, engine=engine,
                      max_batched_tokens=mbt, after="kv_bytes")
    notes.append(f"peak_memory_bytes: --engine {engine} (default vllm); fits and max_batch count weights + cache")
    fits = np.asarray(r["fits"].value)
    if not fits.all():
        notes.append("does not fit: " + ("some batches exceed" if inp.swept else "the batch exceeds")
                     + " max_batch (weights + KV cache > mem-util × memory per GPU)")

    columns = []
    chart = None
    if inp.swept:
        columns = ["decode_seconds_per_token", "decode_tokens_per_second", "throughput_tokens_per_second",
                   "prefill_seconds", "e2e_seconds", "decode_bound", "fits"]
        if gen_min is not None:
            columns.insert(3, "continuous_gain")
        if "batch" in inp.swept:
            def chart(report: Report) -> str:
                from llmcalc import charts
                res = report.results
                thr = np.asarray(res["throughput_tokens_per_second"].value, dtype=float)
                lat = np.asarray(res["decode_seconds_per_token"].value, dtype=float) * 1e3
                return charts.lines(thr, {"ms per token (each sequence)": lat},
                                    "latency vs throughput over the batch sweep", "throughput (tokens/s, all sequences)",
                                    "ms/token", logx=True)
            if plot:
                from llmcalc import charts
                thr = np.asarray(r["throughput_tokens_per_second"].value, dtype=float)
                lat = np.asarray(r["decode_seconds_per_token"].value, dtype=float) * 1e3
                charts.lines_image(plot, thr, {f"{spec.name} on {tp_n}× {gpu_spec.name}": lat},
                                   "latency-throughput (points: batch sizes)", "throughput (tokens/s)",
                                   "time per output token (ms)", logx=True)
                notes.append(f"chart written to {plot}")
    report = Report("serve", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=columns, chart=chart)
    output(report, **out)
    if check and not fits.all():
        raise typer.Exit(int(ExitStatus.CHECK_FAILED))


_TIME_RE = re.compile(r"^\s*([0-9.eE+_-]+)\s*(s|ms|us|µs|ns)?\s*$")


def _parse_seconds(text: str, what: str = "a time") -> float:
    """``30ms`` -> 0.03, ``20us`` -> 2e-5, ``0.5`` or ``0.5s`` -> 0.5."""
    from llmcalc.errors import InputError
    m = _TIME_RE.match(str(text))
    if not m:
        raise InputError(f"can't read {text!r} as {what}; try e.g. 30ms, 20us, 0.5s")
    try:
        value = float(m.group(1).replace("_", ""))
    except ValueError:
        raise InputError(f"can't read {text!r} as {what}; try e.g. 30ms, 20us, 0.5s") from None
    return value * {"s": 1.0, None: 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}[m.group(2)]
