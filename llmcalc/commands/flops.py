"""`llmcalc flops`: FLOPs of one training step, and of a whole training run."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmcalc.cli_support import GpuOpt, ModelOpt, shared_options
from llmcalc.commands.cost_options import GpuCostOpt, GpuPowerOpt, GridOpt, PueOpt
from llmcalc.commands.finetune import LoraRankOpt, LoraTargetsOpt, MethodOpt

EPILOG = """Examples:

  llmcalc flops -m gpt2 --seq 1024

  llmcalc flops --hidden 768 --layers 12 --heads 12 --vocab 50257 --seq 1024 --explain

  llmcalc flops -m llama-2-7b --seq 2048 --method full,lora --lora-rank 16 --explain

  llmcalc flops -m llama-3.1-405b --seq 8192 --tokens 15T -g h100-sxm --gpus 16384 --mfu 0.4

  llmcalc flops -m llama-2-70b --seq 4096 --tokens 2T -g a100-80gb --gpus 2048 --gpu-cost 1.8 --gpu-power 400

  llmcalc flops --compute-budget 1e24 --fit besiroglu

  llmcalc flops --compute-budget 2M -g h100-sxm --gpu-cost 2.5

  llmcalc flops -m llama-3.1-8b --seq 1k..32k+1k --json | jq '.rows[] | [.seq, .forward_flops]'
"""


# Keys of a training run; null when --tokens or a GPU is not given (contract v2: stable keys).
SCHEMA = {
    "mfu": ("ratio", "MFU of the run (assumed, or implied by --tokens-per-s)"),
    "total_training_flops": ("flop", "training run (exact per-token × tokens)"),
    "napkin_total_training_flops": ("flop", "training run, napkin 6·P·D"),
    "gpu_hours": ("h", "GPU-hours at that MFU"),
    "training_days": ("days", "wall-clock days on all GPUs"),
    "napkin_gpu_hours": ("h", "GPU-hours from the napkin 6·P·D"),
    # a frozen base (--method lora/qlora); null under full fine-tuning
    "adapter_forward_flops": ("flop", "LoRA adapters forward"),
    "base_input_grad_flops": ("flop", "frozen base, input gradients only"),
    "attention_score_backward_flops": ("flop", "attention scores backward"),
    "adapter_backward_flops": ("flop", "LoRA adapters backward"),
}


@shared_options()
def flops(
    model: ModelOpt = None,
    batch: Annotated[str, typer.Option("-b", "--batch", help="Sequences per step (B). Lists/ranges sweep.")] = "1",
    seq: Annotated[Optional[str], typer.Option("-s", "--seq", help="Tokens per sequence (S); default the model's context length.",
                                               show_default=False)] = None,
    causal: Annotated[bool, typer.Option("--causal", help="Count only the causal triangle of the score matmuls.")] = False,
    recompute: Annotated[str, typer.Option("--recompute", help="none, selective or full: hardware FLOPs with recomputation.")] = "none",
    tokens: Annotated[Optional[str], typer.Option("--tokens", help="Training tokens for the whole run (e.g. 15T).",
                                                  show_default=False)] = None,
    gpu: GpuOpt = None,
    gpus: Annotated[str, typer.Option("--gpus", "--num-gpus", help="GPUs training together.")] = "1",
    mfu: Annotated[Optional[str], typer.Option("--mfu", help="Model FLOPs utilisation, 0-1 (default 0.4, stated in the output).",
                                               show_default=False)] = None,
    tokens_per_s: Annotated[Optional[str], typer.Option("--tokens-per-s", help="Measured training tokens/s of all GPUs: report the MFU it implies.",
                                                        show_default=False)] = None,
    dtype: Annotated[str, typer.Option("--dtype", help="Dtype of the GPU peak used for time (bf16, fp16, fp8, tf32, fp32).")] = "bf16",
    gpu_cost: GpuCostOpt = None, gpu_power: GpuPowerOpt = None, pue: PueOpt = None, grid_intensity: GridOpt = None,
    compute_budget: Annotated[Optional[str], typer.Option("--compute-budget", help="A training budget: FLOPs, or GPU-hours with -g, or USD with --gpu-cost; gives the compute-optimal model and tokens.", rich_help_panel="Compute-optimal", show_default=False)] = None,
    fit: Annotated[str, typer.Option("--fit", help="hoffmann-1, hoffmann-2, hoffmann-3 (Chinchilla's three approaches) or besiroglu (the 2024 refit).", rich_help_panel="Compute-optimal")] = "hoffmann-1",
    compute_dtype: Annotated[Optional[str], typer.Option("--compute-dtype", help="Matmul precision, bf16 or fp8: fp8 runs the matmuls at the fp8 peak, attention in bf16 (time and MFU against that blend).",
                                                         show_default=False)] = None,
    method: MethodOpt = None, lora_rank: LoraRankOpt = None, lora_targets: LoraTargetsOpt = None,
    arch: dict = None, out: dict = None,
) -> None:
    """Forward, backward and training FLOPs of one step (B sequences of S tokens), by part, beside the
    napkin 2·P·T and 6·P·T figures; with --tokens the whole run, and with a GPU its GPU-hours and days."""
    from llmcalc.cli_support import Inputs, choice, output, resolve_gpu, resolve_model
    from llmcalc.core.flops import RECOMPUTE_MODES, add_training_run, training_step_flops
    from llmcalc.render import Report
    from llmcalc.spec import DTYPES

    if compute_budget is not None:
        from llmcalc.commands import flops_budget
        return flops_budget.run(resolve_gpu(gpu), budget=compute_budget, fit=fit, mfu=mfu, gpu_cost=gpu_cost, out=out)
    spec = resolve_model(model, arch)
    gpu_spec = resolve_gpu(gpu)
    recompute = choice("--recompute", recompute, RECOMPUTE_MODES)
    dtype = choice("--dtype", dtype, DTYPES)
    inp = Inputs()
    inp.number("batch", batch, unit="count", label="sequences per step", integer=True)
    inp.number("seq", seq, default=spec.max_seq, unit="count", label="tokens per sequence", integer=True)
    inp.number("gpus", gpus, unit="count", label="GPUs", integer=True)
    total_tokens = inp.number("tokens", tokens, unit="count", label="training tokens")
    measured = inp.number("tokens_per_second", tokens_per_s, unit="token/s", label="measured tokens/s",
                          flag="--tokens-per-s")
    notes = []
    from llmcalc.cli_support import context_note
    if (note := context_note(spec, inp.items["seq"].value)) is not None:
        notes.append(note)
    if mfu is not None and measured is not None:
        from llmcalc.errors import InputError
        raise InputError("give --mfu (assumed) or --tokens-per-s (measured, implies the MFU), not both")
    if gpu_spec is not None:
        inp.number("mfu", mfu, default=None if measured is not None else 0.4, unit="ratio", label="MFU",
                   maximum=1.0)
        if measured is not None:
            notes.append("MFU implied by the measured --tokens-per-s; GPU-hours and days use it")
        elif mfu is None and total_tokens is not None:
            notes.append("MFU 0.4 assumed (typical 30-50%, the COS 597A slides); set --mfu or --tokens-per-s")
        inp.fixed("dtype", dtype, unit="str")
        inp.fixed("causal", causal, unit="bool")
    else:
        inp.fixed("causal", causal, unit="bool")
        if mfu is not None or measured is not None or compute_dtype is not None:
            from llmcalc.errors import InputError
            raise InputError("--mfu, --tokens-per-s and --compute-dtype need a GPU: add -g NAME (e.g. -g h100-sxm)")
    inp.fixed("recompute", recompute, unit="str")
    from llmcalc.commands import finetune
    ft = finetune.read_flags(inp, method, lora_rank, lora_targets)
    notes += finetune.default_targets_note(ft, lora_targets)
    cd = None
    if gpu_spec is not None and compute_dtype is not None:   # time at the blended peak (core/precision.py)
        from llmcalc.core.precision import COMPUTE_DTYPES, compute_note
        cd = inp.fixed("compute_dtype", choice("--compute-dtype", compute_dtype, COMPUTE_DTYPES), unit="str")
        notes += [n + "; time and MFU against that blend" for n in [compute_note(cd)] if n]

    def compute(v: dict):
        r = training_step_flops(spec, v["batch"], v["seq"], causal=causal, recompute=recompute, method=v["method"],
                                lora_rank=v.get("lora_rank", ft["lora_rank"]), lora_targets=ft["lora_targets"])
        if cd is not None:
            from llmcalc.core.precision import blended_peak
            peak = blended_peak(gpu_spec, cd, r["attention_score_flops"].value / r["forward_flops"].value)
        else:
            peak = gpu_spec.peak_flops(dtype) if gpu_spec is not None else None
        return add_training_run(r, spec, v["batch"], v["seq"], tokens=v["tokens"], peak=peak, gpus=v["gpus"],
                                mfu=v.get("mfu"), tokens_per_s=v["tokens_per_second"])

    r = inp.evaluate(compute)
    finetune.blank_full(inp)
    if ft["methods"] != ["full"]:
        notes.append("LoRA/QLoRA step: base forward + adapters forward and backward + the base's input gradients "
                     "(no base weight gradients): about 4·P·T + adapters, against 6·P·T for full fine-tuning")
    from llmcalc.commands import cost_options
    hours = r["gpu_hours"].value if "gpu_hours" in r else None
    cost_options.training(r, hours, cost_options.resolve(gpu_spec, gpu_cost=gpu_cost, gpu_power=gpu_power, pue=pue,
                                                         grid_intensity=grid_intensity,
                                                         notes=notes if hours is not None else None,
                                                         inp=inp if hours is not None else None))
    report = Report("flops", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=["forward_flops", "training_flops", "attention_score_flops", "napkin_training_flops"]
                    + (["trainable_params"] if ft["methods"] != ["full"] else []), schema=SCHEMA)
    output(report, **out)
