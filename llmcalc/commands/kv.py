"""`llmcalc kv`: KV-cache bytes, the weights beside them, decode FLOPs with and without the cache, and
how many sequences fit on a GPU, plain and paged."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmcalc.cli_support import GpuOpt, ModelOpt, shared_options

EPILOG = """Examples:

  llmcalc kv -m llama-2-7b -g a100-40gb --seq 1024 --kv-dtype fp16

  llmcalc kv -m llama-3.1-8b -g h100-sxm --seq 512 --max-output 2048 --mean-output 256

  llmcalc kv -m mistral-7b -g l40s --seq 1k..32k+1k --json | jq '.rows[] | [.seq, .kv_bytes_per_sequence, .max_batch]'
"""

PAGING = "Paging (vLLM PagedAttention)"


@shared_options()
def kv(
    model: ModelOpt = None,
    batch: Annotated[str, typer.Option("-b", "--batch", help="Sequences in the batch (B). Lists/ranges sweep.")] = "1",
    seq: Annotated[Optional[str], typer.Option("-s", "--seq", help="Tokens cached per sequence (S); default the model's context length.",
                                               show_default=False)] = None,
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", help="Cache dtype: fp32, fp16, bf16, fp8, int8 or int4.")] = "bf16",
    group_size: Annotated[str, typer.Option("--kv-group-size", help="Quantised cache: elements per fp16 scale (0 = one per-tensor scale, not counted).")] = "0",
    weight_dtype: Annotated[str, typer.Option("--weight-dtype", help="Weights dtype (fp32, bf16, fp16, fp8, int8, int4).")] = "bf16",
    weight_group_size: Annotated[str, typer.Option("--weight-group-size", help="Quantised weights: elements per fp16 scale (e.g. 32 or 128).")] = "0",
    gpu: GpuOpt = None,
    mem_util: Annotated[Optional[str], typer.Option("--mem-util", help="Fraction of GPU memory the engine may use, like vLLM's gpu_memory_utilization (default 0.9, stated in the output).",
                                                    show_default=False)] = None,
    tp: Annotated[str, typer.Option("--tp", help="Tensor-parallel GPUs: weights and KV heads split over them.")] = "1",
    causal: Annotated[bool, typer.Option("--causal", help="Without the cache, count only the causal triangle of the scores.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 3 when the batch does not fit the GPU.")] = False,
    block_size: Annotated[str, typer.Option("--block-size", help="Tokens per KV block when paged.", rich_help_panel=PAGING)] = "16",
    max_output: Annotated[Optional[str], typer.Option("--max-output", help="Longest output a request may generate: contiguous engines reserve S + this per request.",
                                                      rich_help_panel=PAGING, show_default=False)] = None,
    mean_output: Annotated[Optional[str], typer.Option("--mean-output", help="Mean output length (default half of --max-output): what a paged engine holds.",
                                                       rich_help_panel=PAGING, show_default=False)] = None,
    engine: Annotated[str, typer.Option("--engine", help="Who runs the prefill, for peak_memory_bytes: vllm (chunked, last-token logits), hf (transformers generate) or hf-legacy (transformers < 4.45: every prompt position's logits).")] = "vllm",
    max_batched_tokens: Annotated[str, typer.Option("--max-batched-tokens", help="vllm: tokens per prefill chunk.")] = "8192",
    arch: dict = None, out: dict = None,
) -> int:
    """KV-cache bytes per token, per sequence and per batch beside the model weights; decode FLOPs with
    and without the cache; on a GPU how many sequences fit (max_batch), plain and paged."""
    from llmcalc.cli_support import Inputs, choice, output, resolve_gpu, resolve_model
    from llmcalc.core.kv import DEFAULT_MEM_UTIL, KV_DTYPES, check_tp, kv_report
    from llmcalc.errors import ExitStatus, InputError
    from llmcalc.render import Report
    from llmcalc.spec import DTYPES

    spec = resolve_model(model, arch)
    gpu_spec = resolve_gpu(gpu)
    kv_dtype = choice("--kv-dtype", kv_dtype, KV_DTYPES)
    weight_dtype = choice("--weight-dtype", weight_dtype, tuple(d for d in DTYPES if d != "tf32"))
    inp = Inputs()
    inp.number("batch", batch, unit="count", label="sequences", integer=True)
    inp.number("seq", seq, default=spec.max_seq, unit="count", label="tokens cached per sequence", integer=True)
    inp.fixed("kv_dtype", kv_dtype, unit="str")
    g = _scalar(inp, "kv_group_size", group_size, "elements per cache scale")
    inp.fixed("weight_dtype", weight_dtype, unit="str")
    wg = _scalar(inp, "weight_group_size", weight_group_size, "elements per weight scale")
    t = _scalar(inp, "tp", tp, "tensor-parallel GPUs", minimum=1)
    check_tp(spec, t)
    notes = []
    from llmcalc.cli_support import context_note
    if (note := context_note(spec, inp.items["seq"].value)) is not None:
        notes.append(note)
    if g and kv_dtype not in ("fp8", "int8", "int4"):
        raise InputError(f"--kv-group-size applies to quantised caches (fp8, int8, int4), not {kv_dtype}; drop it "
                         "or add --kv-dtype int8")
    if wg and weight_dtype not in ("fp8", "int8", "int4"):
        raise InputError(f"--weight-group-size applies to quantised weights (fp8, int8, int4), not {weight_dtype}")
    if gpu_spec is not None:
        inp.number("mem_util", mem_util, default=DEFAULT_MEM_UTIL, unit="ratio",
                   label="GPU memory the engine may use", maximum=1.0)
        if mem_util is None:
            notes.append(f"--mem-util {DEFAULT_MEM_UTIL} assumed (vLLM's gpu_memory_utilization default): the rest "
                         "is left for activations, CUDA graphs and the CUDA context")
    elif mem_util is not None or check:
        raise InputError(f"{'--mem-util' if mem_util is not None else '--check'} needs a GPU: add -g NAME "
                         "(e.g. -g a100-40gb)")
    inp.number("block_size", block_size, unit="count", label="tokens per KV block", integer=True)
    if max_output is None and mean_output is not None:
        raise InputError("--mean-output needs --max-output too (contiguous engines reserve the maximum)")
    if max_output is not None:
        o_max = inp.number("max_output", max_output, unit="count", label="longest output", integer=True,
                           minimum=0, strict=False)
        o_mean = inp.number("mean_output", mean_output, unit="number", label="mean output", minimum=0,
                            strict=False, default=None if isinstance(o_max, list) else o_max / 2)
        if mean_output is None:
            notes.append("--mean-output assumed to be half of --max-output")
        elif max(_listify(o_mean)) > min(_listify(o_max)):
            raise InputError("--mean-output cannot exceed --max-output")
    inp.fixed("causal", causal, unit="bool")
    if spec.mla:
        notes.append("MLA: decode FLOPs count per-head K/V as the spec's projections give them; weight "
                     "absorption (DeepSeek-V2 sec. 2.1.3) is not modelled")
    v = inp.grid()
    r = kv_report(spec, v["batch"], v["seq"], kv_dtype=kv_dtype, weight_dtype=weight_dtype, group_size=g,
                  weight_group_size=wg, gpu=gpu_spec, mem_util=v.get("mem_util"), tp=t,
                  block_size=v["block_size"], mean_output=v.get("mean_output"), max_output=v.get("max_output"),
                  causal=causal)
    from llmcalc.core import servemem
    engine = choice("--engine", engine, servemem.ENGINES)
    mbt = _scalar(inp, "max_batched_tokens", max_batched_tokens, "tokens per prefill chunk (vllm)", minimum=1)
    inp.fixed("engine", engine, unit="str")
    servemem.add_peak(r, spec, v["batch"], v["seq"], r["total_bytes"].value, engine=engine, max_batched_tokens=mbt,
                      after="total_bytes")
    notes.append(f"peak_memory_bytes: --engine {engine} (default vllm) prefilling all --seq tokens as the prompt; "
                 "fits and max_batch count weights + cache only")
    columns = ["kv_bytes_per_sequence", "kv_bytes", "weights_bytes", "total_bytes", "peak_memory_bytes",
               "decode_flops_with_cache"]
    if gpu_spec is not None:
        columns += ["max_batch", "fits"]
    if max_output is not None and gpu_spec is not None:
        columns += ["max_requests_contiguous", "max_requests_paged"]
    report = Report("kv", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=columns, chart=_chart if inp.swept else None)
    output(report, **out)
    if check and "fits" in r and not _all(r["fits"].value):
        import sys
        sys.stderr.write(f"llmcalc: does not fit: the batch needs more than {gpu_spec.name}'s memory "
                         f"(max_batch {_describe(r['max_batch'].value)})\n")
        return ExitStatus.CHECK_FAILED
    return ExitStatus.OK


def _scalar(inp, name: str, text: str, label: str, minimum: float = 0) -> int:
    from llmcalc.errors import InputError
    from llmcalc.units import is_sweep
    flag = "--" + name.replace("_", "-")
    if is_sweep(text):
        raise InputError(f"{flag} takes one value, not a list or range")
    return int(inp.number(name, text, unit="count", label=label, integer=True, minimum=minimum, strict=False))


def _listify(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _all(x) -> bool:
    return bool(x.all()) if hasattr(x, "all") else bool(x)


def _describe(x) -> str:
    if hasattr(x, "min") and getattr(x, "ndim", 0):
        return f"{int(x.min()):,}-{int(x.max()):,}"
    return f"{int(x):,}"


def _chart(report) -> str:
    """Stacked weights and KV cache against the swept input(s), in GiB."""
    import numpy as np

    from llmcalc import charts
    from llmcalc.units import fmt_value

    n = report.points
    rows = report.results
    if "weights_bytes" not in rows or "kv_bytes" not in rows:
        return ""
    weights = np.broadcast_to(np.asarray(rows["weights_bytes"].value, dtype=float), (n,)) / 2**30
    kv = np.broadcast_to(np.asarray(rows["kv_bytes"].value, dtype=float), (n,)) / 2**30
    labels = []
    for i in range(n):
        parts = [fmt_value(float(np.asarray(report.inputs[name].value).ravel()[i]), "count")
                 for name in report.swept]
        labels.append(" ".join(parts))
    title = "weights + KV cache (GiB) by " + " × ".join(report.swept)
    if report.gpu is not None and "usable_memory_bytes" in rows:
        usable = float(np.asarray(rows["usable_memory_bytes"].value).ravel()[0]) / 2**30
        title += f"; one {report.gpu.name} may use {usable:.3g} GiB"
    return charts.stacked_bars(labels, {"weights": weights, "KV cache": kv}, title, "GiB")
