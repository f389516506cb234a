"""`llmcalc kv`: KV-cache bytes, the weights beside them, decode FLOPs with and without the cache, and
how many sequences fit on a GPU, plain and paged."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmcalc.cli_support import (GpuOpt, KvDtypeOpt, KvGroupOpt, MemUtilOpt, ModelOpt, TpOpt, WeightDtypeOpt,
                                 WeightGroupOpt, shared_options)

EPILOG = """Examples:

  llmcalc kv -m llama-2-7b -g a100-40gb --seq 1024 --kv-dtype fp16

  llmcalc kv -m llama-3.1-8b -g h100-sxm --seq 512 --max-output 2048 --mean-output 256

  llmcalc kv -m mistral-7b -g l40s --seq 1k..32k+1k --json | jq '.rows[] | [.seq, .kv_bytes_per_sequence, .max_batch]'
"""

PAGING = "Paging (vLLM PagedAttention)"


# Result keys that only some runs produce; the others report them as null (contract v2: stable keys).
SCHEMA = {
    "gpu_memory_bytes": ("byte", "memory of one GPU"),
    "usable_memory_bytes": ("byte", "memory the engine may use per GPU (--mem-util)"),
    "kv_budget_bytes": ("byte", "left for the KV cache per GPU after the weights"),
    "max_batch": ("count", "sequences of length S that fit beside the weights"),
    "max_tokens": ("count", "tokens of cache that fit (at length S)"),
    "fits": ("bool", "the requested batch fits"),
    "max_seq": ("count", "longest sequence (tokens) B sequences can hold"),
    "contiguous_bytes_per_request": ("byte", "contiguous: reserved per request (prompt S + max output)"),
    "paged_bytes_per_request": ("byte", "paged: held per request (prompt S + mean output, whole blocks)"),
    "contiguous_waste_fraction": ("ratio", "contiguous: share of the reservation never written"),
    "max_requests_contiguous": ("count", "requests that fit, contiguous"),
    "max_requests_paged": ("count", "requests that fit, paged"),
    "paging_gain": ("factor", "paged ÷ contiguous requests"),
}


@shared_options()
def kv(
    model: ModelOpt = None,
    batch: Annotated[str, typer.Option("-b", "--batch", help="Sequences in the batch (B). Lists/ranges sweep.")] = "1",
    seq: Annotated[Optional[str], typer.Option("-s", "--seq", help="Tokens cached per sequence (S); default the model's context length.",
                                               show_default=False)] = None,
    kv_dtype: KvDtypeOpt = None,
    kv_group_size: KvGroupOpt = None,
    weight_dtype: WeightDtypeOpt = None,
    weight_group_size: WeightGroupOpt = None,
    gpu: GpuOpt = None,
    mem_util: MemUtilOpt = None,
    tp: TpOpt = None,
    causal: Annotated[bool, typer.Option("--causal", help="Without the cache, count only the causal triangle of the scores.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 3 when the batch does not fit the GPU.")] = False,
    engine: Annotated[Optional[str], typer.Option("--engine", help="Who runs the prefill, for peak_memory_bytes and what fits: vllm (chunked, last-token logits; default), hf (transformers generate), hf-legacy (transformers < 4.45: every prompt position's logits) or none (weights + cache only).",
                                                  show_default=False)] = None,
    max_batched_tokens: Annotated[Optional[str], typer.Option("--max-batched-tokens", help="vllm: tokens per prefill chunk (default 8192).", show_default=False)] = None,
    solve_seq: Annotated[bool, typer.Option("--max-seq", help="Lead with the longest sequence that fits at --batch (max_seq; always in the results with a GPU).")] = False,
    block_size: Annotated[str, typer.Option("--block-size", help="Tokens per KV block when paged.", rich_help_panel=PAGING)] = "16",
    max_output: Annotated[Optional[str], typer.Option("--max-output", help="Longest output a request may generate: contiguous engines reserve S + this per request.",
                                                      rich_help_panel=PAGING, show_default=False)] = None,
    mean_output: Annotated[Optional[str], typer.Option("--mean-output", help="Mean output length (default half of --max-output): what a paged engine holds.",
                                                       rich_help_panel=PAGING, show_default=False)] = None,
    arch: dict = None, out: dict = None,
) -> int:
    """KV-cache bytes per token, per sequence and per batch beside the model weights; decode FLOPs with and without the cache; on a GPU how many sequences fit (max_batch) and the longest that fits (max_seq), plain and paged."""
    from llmcalc.cli_support import (Inputs, check_formats, context_note, least, most, output, read_formats,
                                     read_mem_util, resolve_gpu, resolve_model)
    from llmcalc.core.kv import kv_report
    from llmcalc.errors import ExitStatus, InputError
    from llmcalc.render import Report

    spec = resolve_model(model, arch)
    gpu_spec = resolve_gpu(gpu)
    if gpu_spec is None and (mem_util is not None or check or solve_seq):
        flag = "--mem-util" if mem_util is not None else "--check" if check else "--max-seq"
        raise InputError(f"{flag} needs a GPU: add -g NAME (e.g. -g a100-40gb)")
    if max_output is None and mean_output is not None:
        raise InputError("--mean-output needs --max-output too (contiguous engines reserve the maximum)")
    inp = Inputs()
    notes: list[str] = []
    inp.number("batch", batch, unit="count", label="sequences", integer=True)
    inp.number("seq", seq, default=spec.max_seq, unit="count", label="tokens cached per sequence", integer=True)
    read_formats(inp, weight_dtype, weight_group_size, kv_dtype, kv_group_size, checkpoint=spec.weight_format,
                 notes=notes)
    inp.number("tp", tp or "1", unit="count", label="tensor-parallel GPUs", integer=True, outer=True)
    if gpu_spec is not None:
        read_mem_util(inp, notes, mem_util)
    else:
        inp.fixed("mem_util", None, unit="ratio", label="GPU memory the engine may use")
    inp.number("block_size", block_size, unit="count", label="tokens per KV block", integer=True)
    inp.number("max_output", max_output, unit="count", label="longest output", integer=True, minimum=0, strict=False)
    o_max = inp.items["max_output"].value
    inp.number("mean_output", mean_output, unit="number", label="mean output", minimum=0, strict=False,
               default=o_max / 2 if isinstance(o_max, (int, float)) else None)
    if max_output is not None and mean_output is None:
        notes.append("--mean-output assumed to be half of --max-output")
    if max_output is not None and mean_output is not None and (
            most(inp.items["mean_output"].value) > least(inp.items["max_output"].value)):
        raise InputError("--mean-output cannot exceed --max-output")
    inp.fixed("causal", causal, unit="bool")
    from llmcalc.core import servemem
    inp.choices("engine", engine, servemem.ENGINES, default=servemem.DEFAULT_ENGINE, label="prefill engine")
    inp.number("max_batched_tokens", max_batched_tokens, default=8192, unit="count", integer=True,
               label="tokens per prefill chunk (vllm)", outer=True)
    notes.append(servemem.capacity_note(inp.items["engine"].value) + "; the prompt is all --seq tokens")
    if (note := context_note(spec, inp.items["seq"].value)) is not None:
        notes.append(note)
    if spec.mla:
        notes.append("MLA: decode FLOPs count per-head K/V as the spec's projections give them; weight "
                     "absorption (DeepSeek-V2 sec. 2.1.3) is not modelled")

    def compute(v):
        check_formats(v)
        r = kv_report(spec, v["batch"], v["seq"], kv_dtype=v["kv_dtype"], weight_dtype=v["weight_dtype"],
                      group_size=int(v["kv_group_size"]), weight_group_size=int(v["weight_group_size"]),
                      gpu=gpu_spec, mem_util=v["mem_util"], tp=int(v["tp"]), block_size=v["block_size"],
                      mean_output=v["mean_output"], max_output=v["max_output"], causal=causal,
                      engine=v["engine"], max_batched_tokens=int(v["max_batched_tokens"]))
        return servemem.add_peak(r, spec, v["batch"], v["seq"], r["total_bytes"].value, engine=v["engine"],
                                 max_batched_tokens=int(v["max_batched_tokens"]), after="total_bytes")

    r = inp.evaluate(compute)
    columns = ["kv_bytes_per_sequence", "kv_bytes", "weights_bytes", "total_bytes", "peak_memory_bytes",
               "decode_flops_with_cache"]
    if gpu_spec is not None:
        columns += ["max_batch", "max_seq", "fits"]
    if max_output is not None and gpu_spec is not None:
        columns += ["max_requests_contiguous", "max_requests_paged"]
    if solve_seq:
        from llmcalc.core.formula import Results
        r = Results([("max_seq", r["max_seq"])] + [(k, row) for k, row in r.items() if k != "max_seq"])
    if gpu_spec is not None and not _all(r["fits"].value):
        from llmcalc.suggest import kv_fixes
        notes += kv_fixes(spec, gpu_spec, inp.items, r)
    report = Report("kv", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=columns, chart=_chart if inp.swept else None, schema=SCHEMA)
    output(report, **out)
    if check and not _all(r["fits"].value):
        import sys
        sys.stderr.write(f"llmcalc: does not fit: the batch needs more than {gpu_spec.name}'s memory "
                         f"(max_batch {_describe(r['max_batch'].value)})\n")
        return ExitStatus.CHECK_FAILED
    return ExitStatus.OK




def _all(x) -> bool:
    return bool(x.all()) if hasattr(x, "all") else bool(x)


def _describe(x) -> str:
    if hasattr(x, "min") and getattr(x, "ndim", 0):
        return f"{int(x.min()):,}-{int(x.max()):,}"
    return f"{int(x):,}"


def _chart(report) -> str:
    """Stacked weights and KV cache (per GPU under --tp, what one GPU holds) against the swept input(s)."""
    import numpy as np

    from llmcalc.charts import memory_by_sweep
    rows = report.results
    per_gpu = "weights_bytes_per_gpu" in rows and "kv_bytes_per_gpu" in rows
    wkey, kkey = ("weights_bytes_per_gpu", "kv_bytes_per_gpu") if per_gpu else ("weights_bytes", "kv_bytes")
    split = per_gpu and not np.array_equal(np.asarray(rows["weights_bytes"].value), np.asarray(rows[wkey].value))
    return memory_by_sweep(report, {"weights": wkey, "KV cache": kkey},
                           f"weights + KV cache{' per GPU' if split else ''}", "one {gpu} may use {usable} GiB")
