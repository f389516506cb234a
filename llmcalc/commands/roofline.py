"""`llmcalc roofline`: a GPU's ceilings, and where an operation or a model phase sits under them."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmcalc.cli_support import GpuOpt, KvDtypeOpt, MemUtilOpt, ModelOpt, shared_options
from llmcalc.flagrules import conflict, needs

EPILOG = """Examples:

  llmcalc roofline -g a100-80gb

  llmcalc roofline -g a100-80gb --op matmul --m 1 --k 4096 --n 4096

  llmcalc roofline -g h100-sxm --op attention --seq 8k --heads 32 --head-dim 128

  llmcalc roofline -g a100-80gb -m llama-2-7b --batch 1..1024x2 --seq 1024 --plot decode.png

  llmcalc roofline -g a100 --intensity 1..1000x10 --json | jq '.rows[] | [.intensity, .bound]'
"""

OPS = ("matmul", "elementwise", "softmax", "layernorm", "attention")
ROW_OPS = "--op matmul / elementwise / softmax / layernorm"
ONE_OP = "give one operation: {} were both given; use --intensity, --op, or -m MODEL alone"
PHASES = ("decode", "prefill")
OP_PANEL = "Operation"
MODEL_PANEL = "Model phases (with -m)"


def _opt(flag: str, help_: str, panel: str = OP_PANEL):
    return Annotated[Optional[str], typer.Option(flag, help=help_, rich_help_panel=panel, show_default=False)]


# Which flags go together (checked in order). "op" is an --op other than attention (which may take -m for
# its heads); "model" is -m or an inline architecture beyond --heads/--head-dim; "rowwise" one of
# elementwise, softmax, layernorm.
RULES = (
    conflict(("intensity", "op"), ONE_OP.format("--intensity and --op")),
    conflict(("intensity", "attention"), ONE_OP.format("--intensity and --op")),
    conflict(("intensity", "model"), ONE_OP.format("--intensity and -m")),
    conflict(("op", "model"), ONE_OP.format("--op and -m")),
    needs("m", ("matmul", "rowwise"), f"--m applies to {ROW_OPS}"),
    needs("k", "matmul", "--k applies to --op matmul"),
    needs("n", ("matmul", "rowwise"), f"--n applies to {ROW_OPS}"),
    needs("flops_per_element", "elementwise", "--flops-per-element applies to --op elementwise"),
    needs("inputs", "elementwise", "--inputs applies to --op elementwise"),
    needs("tile", "attention", "--tile applies to --op attention"),
    *(needs("matmul", name, f"--op matmul needs --m, --k and --n ([M,K]x[K,N]); --{name} is missing")
      for name in ("m", "k", "n")),
    *(needs(op, "n", f"--op {op} needs --n (elements per row) and optionally --m (rows, default 1)")
      for op in ("elementwise", "softmax", "layernorm")),
    conflict(("tiers", "sweep"), "--tiers shows one GPU's memory hierarchy; drop the sweep"),
)


@shared_options()
def roofline(
    gpu: GpuOpt = None,
    dtype: Annotated[str, typer.Option("--dtype", help="Dtype of the peak FLOP/s and of the operands (bf16, fp16, fp8, int8, tf32, fp32).")] = "bf16",
    intensity: _opt("--intensity", "Place an operation of this arithmetic intensity (FLOP/byte).") = None,
    op: _opt("--op", "matmul, elementwise, softmax, layernorm or attention (naive and flash).") = None,
    m: _opt("--m", "Rows: matmul (M,K)x(K,N); rows of softmax/layernorm/element-wise (default 1).") = None,
    k: _opt("--k", "Inner dimension K of the matmul.") = None,
    n: _opt("--n", "Columns: matmul N; row length of softmax/layernorm; elements per row (element-wise).") = None,
    flops_per_element: _opt("--flops-per-element", "Element-wise: FLOPs per element (default 1; GELU ~8).") = None,
    inputs: _opt("--inputs", "Element-wise: input tensors read (default 1; an add reads 2).") = None,
    tile: _opt("--tile", "Flash attention: query-block rows Br; K and V are re-read S/Br times (default 128).") = None,
    model: ModelOpt = None,
    batch: Annotated[str, typer.Option("-b", "--batch", help="Sequences (model phases; attention). Lists/ranges sweep: the decode batch sweep.", rich_help_panel=MODEL_PANEL)] = "1",
    seq: Annotated[Optional[str], typer.Option("-s", "--seq", help="Tokens: the prompt (prefill) and the cache (decode); attention's length (default 1024).",
                                                     rich_help_panel=MODEL_PANEL, show_default=False)] = None,
    phase: Annotated[str, typer.Option("--phase", help="Model phase whose keys are unprefixed: decode or prefill (the other is prefixed).", rich_help_panel=MODEL_PANEL)] = "decode",
    weight_dtype: _opt("--weight-dtype", "Weights: fp32, bf16, fp16, fp8, int8, int4 or a named format (q4_k_m, gptq-int4, nf4, ...; default: --dtype, 16-bit for tf32).", MODEL_PANEL) = None,
    group_size: _opt("--weight-group-size", "Quantised weights: elements per scale (0 = per-channel scales, not counted).", MODEL_PANEL) = None,
    kv_dtype: KvDtypeOpt = None,
    mem_util: MemUtilOpt = None,
    tiers: Annotated[bool, typer.Option("--tiers", help="Show the memory hierarchy (shown by default when no operation is given).")] = False,
    plot: Annotated[Optional[str], typer.Option("--plot", help="Write the chart to FILE.png or FILE.svg (needs matplotlib, the plot extra of llmcalc).", show_default=False)] = None,
    arch: dict = None, out: dict = None,
) -> None:
    """Peak FLOP/s, memory bandwidth and ridge point of a GPU; place an operation (an intensity, a matmul,
    element-wise, softmax, layer norm, naive vs flash attention) or a model's prefill and decode phases
    on the roofline, with T_math, T_mem, their max and sum, and the bound; draw it."""
    from llmcalc.charts import check_image_path
    from llmcalc.cli_support import KV_FORMATS, Inputs, choice, output, read_mem_util, resolve_gpu, resolve_model
    from llmcalc.core import roofline as rl
    from llmcalc.flagrules import check
    from llmcalc.render import Report
    from llmcalc.spec import DTYPES

    gpu_spec = resolve_gpu(gpu, required=True)
    inp = Inputs()
    dtypes = inp.choices("dtype", dtype, DTYPES, default="bf16")   # a comma list sweeps (outer axis)
    dtype = dtypes[0] if isinstance(dtypes, list) else dtypes
    if plot:
        check_image_path(plot)
    op = choice("--op", op, OPS) if op else None
    arch_given = any(v is not None for key, v in arch.items() if key not in ("heads", "head_dim"))
    mode = ("intensity" if intensity is not None else op if op else "model" if model or arch_given else "ceilings")
    flags = dict(m=m, k=k, n=n, flops_per_element=flops_per_element, inputs=inputs, tile=tile, tiers=tiers or None)
    given = {name for name, value in flags.items() if value}
    given |= {"intensity"} if intensity is not None else set()
    given |= {"model"} if model or arch_given else set()
    given |= {"op"} if op and op != "attention" else set()
    given |= {mode, "rowwise"} if op in rl.ROWWISE else {mode}
    check(RULES, given)

    notes: list[str] = []
    kw: dict = {}
    spec = None
    if mode == "intensity":
        inp.number("intensity", intensity, unit="flop/byte", label="arithmetic intensity")
    elif mode == "matmul":
        for name, val in (("m", m), ("k", k), ("n", n)):
            inp.number(name, val, unit="count", label=f"matmul {name.upper()}", integer=True)
    elif mode in rl.ROWWISE:
        inp.number("m", m, default=1, unit="count", label="rows", integer=True)
        inp.number("n", n, unit="count", label="elements per row", integer=True)
        if op == "elementwise":
            inp.number("flops_per_element", flops_per_element, default=1, unit="count", label="FLOPs per element")
            inp.number("inputs", inputs, default=1, unit="count", label="input tensors read", integer=True)
    elif mode == "attention":
        spec = resolve_model(model, arch, required=False) if (model or arch_given) else None
        kw = dict(heads=spec.heads if spec else _int(arch["heads"], "--heads", 1),
                  head_dim=spec.head_dim if spec else _int(arch["head_dim"], "--head-dim", 128))
        inp.number("batch", batch, unit="count", label="sequences", integer=True)
        inp.number("seq", seq, default=1024, unit="count", label="sequence length S", integer=True)
        inp.fixed("heads", kw["heads"], unit="count", label="heads")
        inp.fixed("head_dim", kw["head_dim"], unit="count", label="head dim d")
        inp.number("tile", tile, default=128, unit="count", label="flash query block Br", integer=True)
    elif mode == "model":
        from llmcalc.core.serve import check_dtype
        spec = resolve_model(model, arch)
        from llmcalc.core.quant import WEIGHT_FORMATS
        kw = dict(phase=choice("--phase", phase, PHASES))
        inp.number("batch", batch, unit="count", label="sequences", integer=True)
        inp.number("seq", seq, default=1024, unit="count", label="prompt (prefill) / cached tokens (decode)",
                   integer=True)
        inp.fixed("phase", kw["phase"], unit="str")
        inp.choices("weight_dtype", weight_dtype, WEIGHT_FORMATS,
                    default=None if isinstance(dtypes, list) else (dtype if dtype != "tf32" else "fp32"))
        inp.number("weight_group_size", group_size, default=0, unit="count", label="weight group size",
                   integer=True, strict=False, outer=True)
        inp.choices("kv_dtype", kv_dtype, KV_FORMATS, default="bf16")
        read_mem_util(inp, notes, mem_util)
        _single(inp, "mem_util")
    check(RULES, given | ({"sweep"} if inp.swept or inp.outer else set()))
    found_points: list = []

    def compute(v):
        one = dict(kw)
        if mode == "model":
            from llmcalc.core.quant import check_overrides
            from llmcalc.core.serve import check_dtype
            d = v["dtype"]
            one.update(kv_dtype=v["kv_dtype"], group_size=int(v["weight_group_size"]),
                       weight_dtype=check_dtype("--weight-dtype", v["weight_dtype"] or (d if d != "tf32" else "fp32")))
            check_overrides(one["weight_dtype"], one["group_size"])
        r, pts, found = rl.run(mode, v, gpu_spec, v["dtype"], spec=spec, tiers=tiers, **one)
        found_points.append((pts, found))
        return r

    outer = bool(inp.outer)
    r = inp.evaluate(compute)
    points, found = found_points[0]
    w = inp.items.get("weight_dtype")
    if w is not None and w.value is None:   # echo the weights' format each dtype defaulted to
        d_col = inp.items["dtype"].value
        w.value = [d if d != "tf32" else "fp32" for d in d_col] if isinstance(d_col, list) else None
    notes += [n for _, f in found_points for n in f if n not in notes]

    from llmcalc.charts_roofline import chart_for, write_image
    batch_sweep = mode == "model" and "batch" in inp.swept
    if plot:
        write_image(plot, r, gpu_spec, dtype, points, inp, spec.name if spec else None, batch_sweep)
        notes.append(f"chart written to {plot}")
    report = Report("roofline", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=rl.table_columns(mode, r, batch_sweep),
                    chart=None if outer else chart_for(gpu_spec, dtype, points, inp, batch_sweep))
    output(report, **out)


def _int(text, flag: str, default: int) -> int:
    """An inline --heads / --head-dim for --op attention without a model: a whole number of at least 1."""
    from llmcalc.errors import InputError
    from llmcalc.units import parse_count
    if text is None:
        return default
    value = parse_count(text, flag)
    if value != int(value) or value < 1:
        raise InputError(f"{flag} must be a whole number of at least 1, got {text!r}")
    return int(value)


def _single(inp, *names: str) -> None:
    from llmcalc.errors import InputError
    swept = [n for n in names if n in inp.swept]
    if swept:
        raise InputError(" and ".join("--" + n.replace("_", "-") for n in names) + " take one value")
