"""`llmcalc train-mem`: per-GPU training memory (weights, gradients, optimizer state, activations), whether
it fits a GPU, and the largest micro-batch or sequence that does."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmcalc.cli_support import GpuOpt, ModelOpt, shared_options
from llmcalc.commands.finetune import LoraRankOpt, LoraTargetsOpt, MethodOpt

EPILOG = """Examples:

  llmcalc train-mem -m gpt2 --seq 1024 --batch 8 -g rtx-4090

  llmcalc train-mem -m llama-3.1-8b -g h100-sxm --seq 8192 --zero 3 --dp 8 --recompute full --max-batch

  llmcalc train-mem -m llama-2-70b -g a100-80gb --seq 2048 --method lora,qlora --recompute full --max-rank

  llmcalc train-mem -m llama-3.1-8b --seq 1k..32k+1k --zero 3 --dp 8 --json | jq '.rows[] | [.seq, .activations_bytes, .total_bytes]'
"""

PAR = "Parallelism and sharding"
GPU_PANEL = "GPU fit and solvers"


# Keys only some runs produce; the rest report them as null (contract v2: stable keys).
SCHEMA = {
    "gpu_memory_bytes": ("byte", "GPU memory"),
    "usable_memory_bytes": ("byte", "usable after the reserve and fragmentation"),
    "fits": ("bool", "fits in the usable memory"),
    "headroom_bytes": ("byte", "usable memory left"),
    "max_batch": ("count", "largest micro-batch that fits (at this sequence length)"),
    "max_seq": ("count", "longest sequence that fits (at this micro-batch)"),
    "max_rank": ("count", "largest LoRA rank that fits (at this micro-batch and sequence length)"),
    "breakeven_batch": ("number", "batch above which mixed precision saves memory"),
}


def _listed(x) -> list:
    return x if isinstance(x, list) else [x]


@shared_options()
def train_mem(
    model: ModelOpt = None,
    batch: Annotated[str, typer.Option("-b", "--batch", help="Micro-batch: sequences per GPU per step (B). Lists/ranges sweep.")] = "1",
    seq: Annotated[Optional[str], typer.Option("-s", "--seq", help="Tokens per sequence (S); default the model's context length.",
                                               show_default=False)] = None,
    precision: Annotated[str, typer.Option("--precision", help="fp32; mixed (bf16/fp16 compute + fp32 master weights); bf16 (pure, no master); fp8 (fp8 weights + fp32 master).")] = "mixed",
    grad_dtype: Annotated[Optional[str], typer.Option("--grad-dtype", help="Gradient dtype: fp32, bf16 or fp16. Default: the compute dtype (2 bytes under mixed, as ZeRO/DeepSpeed; Megatron's fp32 accumulation is --grad-dtype fp32).",
                                                      show_default=False)] = None,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw, adam, sgd, sgd-momentum, adafactor or adam-8bit.")] = "adamw",
    activations: Annotated[str, typer.Option("--activations", help="megatron: fused kernels as in Korthikanti et al. 2022; eager: what eager PyTorch / Hugging Face modules save, op by op.")] = "megatron",
    flash: Annotated[bool, typer.Option("--flash/--no-flash", help="Flash/SDPA attention (no S² scores saved) or materialised scores.")] = True,
    recompute: Annotated[str, typer.Option("--recompute", help="none; selective (recompute attention scores); full (checkpoint every layer, keep its input).")] = "none",
    dropout: Annotated[bool, typer.Option("--dropout", help="eager only: count dropout masks (Megatron's count always includes Korthikanti's).")] = False,
    zero: Annotated[str, typer.Option("--zero", help="ZeRO stage over --dp GPUs: 0 none, 1 optimizer, 2 + gradients, 3 + weights (FSDP).",
                                      rich_help_panel=PAR)] = "0",
    dp: Annotated[str, typer.Option("--dp", help="Data-parallel GPUs (ZeRO shards over them).", rich_help_panel=PAR)] = "1",
    tp: Annotated[str, typer.Option("--tp", help="Tensor-parallel GPUs.", rich_help_panel=PAR)] = "1",
    pp: Annotated[str, typer.Option("--pp", help="Pipeline stages (the first, busiest stage is reported).", rich_help_panel=PAR)] = "1",
    sp: Annotated[bool, typer.Option("--sp", help="Sequence parallelism (with --tp): norms, dropout and block inputs split too.",
                                     rich_help_panel=PAR)] = False,
    in_flight: Annotated[Optional[str], typer.Option("--in-flight", help="Micro-batches whose activations the first stage holds (default --pp, as under 1F1B).",
                                                     rich_help_panel=PAR, show_default=False)] = None,
    gpu: GpuOpt = None,
    reserve: Annotated[str, typer.Option("--reserve", help="Memory set aside for the CUDA context and workspaces.", rich_help_panel=GPU_PANEL)] = "1GiB",
    fragmentation: Annotated[str, typer.Option("--fragmentation", help="Fraction of GPU memory lost to allocator fragmentation.",
                                               rich_help_panel=GPU_PANEL)] = "0.05",
    solve_batch: Annotated[bool, typer.Option("--max-batch", help="Also find the largest micro-batch that fits the GPU.", rich_help_panel=GPU_PANEL)] = False,
    solve_seq: Annotated[bool, typer.Option("--max-seq", help="Also find the longest sequence that fits the GPU.", rich_help_panel=GPU_PANEL)] = False,
    breakeven: Annotated[bool, typer.Option("--breakeven", help="Also give the batch above which mixed precision needs less memory than fp32 (the Decoder-Only Transformers notes eq. 2.9).")] = False,
    solve_rank: Annotated[bool, typer.Option("--max-rank", help="Also find the largest LoRA rank that fits the GPU (--method lora/qlora).", rich_help_panel=GPU_PANEL)] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 3 when it does not fit the GPU.", rich_help_panel=GPU_PANEL)] = False,
    method: MethodOpt = None, lora_rank: LoraRankOpt = None, lora_targets: LoraTargetsOpt = None,
    arch: dict = None, out: dict = None,
) -> int:
    """Per-GPU training memory: weights, gradients, optimizer state and activations, each by part, and
    whether it fits a GPU after a stated reserve; with --max-batch / --max-seq, the largest that fits."""
    from llmcalc.cli_support import Inputs, least, most, output, resolve_gpu, resolve_model
    from llmcalc.core import memory as mem
    from llmcalc.errors import ExitStatus, InputError
    from llmcalc.render import Report
    from llmcalc.units import fmt_value, parse_bytes

    spec = resolve_model(model, arch)
    gpu_spec = resolve_gpu(gpu)
    inp = Inputs()
    # choice flags: a comma list is an outer sweep axis (contract v2: every flag sweeps)
    precisions = _listed(inp.choices("precision", precision, mem.PRECISIONS, default="mixed"))
    grad = inp.choices("grad_dtype", grad_dtype, mem.GRAD_DTYPES)
    optimizers = _listed(inp.choices("optimizer", optimizer, mem.OPTIMIZERS, default="adamw"))
    activations = inp.choices("activations", activations, mem.ACTIVATION_MODELS, default="megatron")
    recomputes = _listed(inp.choices("recompute", recompute, mem.RECOMPUTE_MODES, default="none"))
    zeros = _listed(inp.choices("zero", zero, ("0", "1", "2", "3"), default="0"))
    needs_gpu = [f for f, on in (("--max-batch", solve_batch), ("--max-seq", solve_seq), ("--max-rank", solve_rank),
                                 ("--check", check)) if on]
    if needs_gpu and gpu_spec is None:
        raise InputError(f"{needs_gpu[0]} needs a GPU: add -g NAME (e.g. -g h100-sxm)")
    if dropout and "eager" not in _listed(activations):
        raise InputError("--dropout applies to --activations eager (the megatron count always includes "
                         "Korthikanti's dropout masks)")

    inp.number("batch", batch, unit="count", label="micro-batch (sequences per GPU)", integer=True)
    inp.number("seq", seq, default=spec.max_seq, unit="count", label="tokens per sequence", integer=True)
    inp.fixed("flash", flash, unit="bool")
    inp.fixed("dropout", dropout, unit="bool")
    inp.number("dp", dp, unit="count", label="data-parallel GPUs", integer=True)
    inp.number("tp", tp, unit="count", label="tensor-parallel GPUs", integer=True)
    inp.number("pp", pp, unit="count", label="pipeline stages", integer=True)
    inp.fixed("sp", sp, unit="bool")
    inp.number("in_flight", in_flight, unit="count", label="micro-batches in flight on stage 1", integer=True)
    from llmcalc.commands import finetune
    ft = finetune.read_flags(inp, method, lora_rank, lora_targets)
    if solve_rank and "full" in ft["methods"]:
        raise InputError("--max-rank needs --method lora or qlora (full fine-tuning has no rank)")
    notes = finetune.default_targets_note(ft, lora_targets)
    if gpu_spec is not None:
        inp.number("reserve", reserve, unit="byte", label="reserved (CUDA context, workspaces)", parse=parse_bytes,
                   minimum=0, strict=False)
        inp.number("fragmentation", fragmentation, unit="ratio", label="lost to fragmentation", minimum=0,
                   strict=False, maximum=0.9)
        notes.append(f"usable memory = GPU memory − {fmt_value(inp.items['reserve'].value, 'byte')} − "
                     f"{inp.items['fragmentation'].value:.0%} (CUDA context and fragmentation; change with "
                     "--reserve and --fragmentation)")
    notes += mem.training_notes(spec, precisions=precisions, optimizers=optimizers, recomputes=recomputes, zeros=zeros,
                                methods=ft["methods"], grad_given=grad is not None, sp=sp,
                                tp=most(inp.items["tp"].value), pp=most(inp.items["pp"].value))
    columns = ["weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "total_bytes",
               "trainable_params"]
    if gpu_spec is not None:
        columns += ["fits"] + [k for k, on in (("max_batch", solve_batch), ("max_seq", solve_seq),
                                               ("max_rank", solve_rank)) if on]

    def core_kw(v: dict) -> dict:
        return dict(precision=v["precision"], grad_dtype=v["grad_dtype"], optimizer=v["optimizer"],
                    activations=v["activations"], flash=flash, recompute=v["recompute"], zero=int(v["zero"]),
                    dp=v["dp"], tp=v["tp"], pp=v["pp"], sp=sp,
                    in_flight_microbatches=v["in_flight"], dropout=dropout, method=v["method"],
                    lora_rank=v.get("lora_rank", ft["lora_rank"]), lora_targets=ft["lora_targets"])

    def compute(v: dict):
        one = core_kw(v)
        r = mem.training_memory(spec, v["batch"], v["seq"], **one)
        from llmcalc.core.params import add_param_rows, finetune_plan, total_params
        add_param_rows(r, spec, finetune_plan(spec, one["method"], one["lora_rank"], one["lora_targets"]),
                       total_params(spec))
        if gpu_spec is None:
            return r
        mem.add_gpu_fit(r, gpu_spec.device_memory_bytes, v["reserve"], v["fragmentation"])
        usable = r["usable_memory_bytes"].value
        if solve_batch:
            seq_b = _broadcast(v["seq"], inp)
            r.put("max_batch", mem.max_batch(spec, seq_b, usable, **_solver_kw(one, inp)), "count",
                  "largest micro-batch that fits (at this sequence length)")
        if solve_seq:
            b_b = _broadcast(v["batch"], inp)
            r.put("max_seq", mem.max_seq(spec, b_b, usable, **_solver_kw(one, inp)), "count",
                  "longest sequence that fits (at this micro-batch)")
        if solve_rank:
            r.put("max_rank", mem.max_rank(spec, _broadcast(v["batch"], inp), _broadcast(v["seq"], inp), usable,
                                           **_solver_kw(one, inp)), "count",
                  "largest LoRA rank that fits (at this micro-batch and sequence length)")
        return r

    if breakeven and len(precisions) > 1:
        raise InputError("--breakeven compares mixed precision with fp32 itself: give one --precision")
    r = inp.evaluate(compute)
    finetune.blank_full(inp)
    g = inp.items["grad_dtype"]
    if g.value is None:  # echo the gradient dtype each precision defaulted to
        p_col = inp.items["precision"].value
        g.value = [mem.DEFAULT_GRAD[x] for x in p_col] if isinstance(p_col, list) else mem.DEFAULT_GRAD[p_col]
    v = {k: it.value for k, it in inp.items.items()}
    chosen = ("precision", "grad_dtype", "optimizer", "activations", "recompute", "zero", "method")
    if breakeven and any(isinstance(v[k], list) for k in chosen if k in v):
        raise InputError("--breakeven takes one value of each choice flag (--precision, --optimizer, --zero, ...)")
    kw = core_kw(v) if not any(isinstance(v[k], list) for k in chosen if k in v) else None
    if gpu_spec is not None:
        if solve_seq and spec.position == "learned" and most(r["max_seq"].value) > spec.max_seq:
            notes.append(f"{spec.name} has a learned position table of {spec.max_seq:,} rows: longer "
                         "sequences fit in memory, not in the model")
        if not inp.swept and kw is not None and not least(r["fits"].value):
            from llmcalc.suggest import train_mem_fixes
            notes += train_mem_fixes(spec, gpu_spec, v, r, kw, inp)
    if breakeven:
        mem.breakeven(spec, v["seq"], r, **{k: val for k, val in kw.items() if k != "method"})
        columns.append("breakeven_batch")
        notes.append("break-even: mixed precision holds more model state than fp32 only when its gradients "
                     "are fp32 (--grad-dtype fp32, the Decoder-Only Transformers notes' 18 B/param); with 2-byte gradients it is 0")
    report = Report("train-mem", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=columns, chart=_chart if inp.swept else None, schema=SCHEMA)
    output(report, **out)
    if check and not least(r["fits"].value):
        import sys
        sys.stderr.write(f"llmcalc: does not fit: needs {fmt_value(most(r['total_bytes'].value), 'byte')} per GPU, "
                         f"{gpu_spec.name} has {fmt_value(most(r['usable_memory_bytes'].value), 'byte')} usable\n")
        return ExitStatus.CHECK_FAILED
    return ExitStatus.OK


def _solver_kw(kw: dict, inp) -> dict:
    return {k: (_broadcast(v, inp) if hasattr(v, "shape") else v) for k, v in kw.items()}


def _broadcast(x, inp):
    """A scalar input as an array over the sweep points (the solvers work point by point)."""
    if not inp.swept:
        return x
    import numpy as np
    n = len(inp.items[inp.swept[0]].value)
    return np.broadcast_to(np.asarray(x, dtype=float), (n,))


def _chart(report) -> str:
    from llmcalc.charts import memory_by_sweep
    return memory_by_sweep(report, {"weights": "weights_bytes", "gradients": "gradients_bytes",
                                    "optimizer": "optimizer_bytes", "activations": "activations_bytes"},
                           "training memory per GPU", "{gpu} usable {usable} GiB")
