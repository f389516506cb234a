"""What every command shares: option declarations (defined once), reading numeric flags into scalars or
sweeps, resolving model/GPU presets with inline overrides, and handing the report to the renderer.

Imports only typer and the standard library at module level; NumPy is loaded only when a sweep is built.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Callable, Optional

import typer

from llmcalc.errors import InputError
from llmcalc.units import is_sweep, parse_count, parse_values

# ----------------------------------------------------------------------------------------------
# Options (one definition each; commands list the ones they take)

OUTPUT = "Output"
ARCH = "Architecture (inline or overriding a preset)"


def _complete(kind: str) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        from llmcalc.presets import preset_files  # file stems only: no YAML parse
        return [n for n in preset_files(kind) if n.startswith(incomplete.lower())]
    return complete


ModelOpt = Annotated[Optional[str], typer.Option(
    "-m", "--model", help="Model preset name, a preset YAML path, or a Hugging Face config.json path.",
    autocompletion=_complete("models"), show_default=False)]
GpuOpt = Annotated[Optional[str], typer.Option(
    "-g", "--gpu", help="GPU preset name or a GPU preset YAML path.", autocompletion=_complete("gpus"),
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (same as -o json).",
                                       rich_help_panel=OUTPUT)]
FormatOpt = Annotated[Optional[str], typer.Option(
    "-o", "--format", help="table, tsv, json, csv, yaml or md. Default: table on a terminal, tsv when piped.",
    rich_help_panel=OUTPUT, show_default=False)]
ExplainOpt = Annotated[bool, typer.Option("--explain", help="Show each formula and the numbers put into it.",
                                          rich_help_panel=OUTPUT)]
FieldsOpt = Annotated[Optional[str], typer.Option(
    "--fields", help="Comma list of result keys to keep (JSON, CSV, table).", rich_help_panel=OUTPUT,
    show_default=False)]
NoChartOpt = Annotated[bool, typer.Option("--no-chart", help="Do not draw the terminal chart under a table.",
                                          rich_help_panel=OUTPUT)]


def _arch(flag: str, help_: str):
    return Annotated[Optional[str], typer.Option(flag, help=help_, rich_help_panel=ARCH, show_default=False)]


LayersOpt = _arch("--layers", "Number of transformer layers.")
HiddenOpt = _arch("--hidden", "Hidden size (d_model).")
HeadsOpt = _arch("--heads", "Attention (query) heads.")
KvHeadsOpt = _arch("--kv-heads", "Key/value heads (GQA; 1 = MQA).")
HeadDimOpt = _arch("--head-dim", "Width of one head (default hidden/heads).")
FfnOpt = _arch("--ffn", "MLP intermediate size (default 4·hidden for inline models).")
VocabOpt = _arch("--vocab", "Vocabulary size.")
ExpertsOpt = _arch("--experts", "Routed experts per MoE layer.")
TopKOpt = _arch("--top-k", "Experts active per token.")

# Option families (STYLE.md #23): each flag of a family is declared here once, with its one default, unit
# and help, and read into Inputs by one function, so `--mbu` means the same in every command.
FORMATS_PANEL = "Weight and cache formats"
EFF_PANEL = "Efficiency"
BUDGET_PANEL = "Memory budget"
LAYOUT_PANEL = "Parallel layout"


def _complete_choices(values: tuple[str, ...]) -> Callable[[str], list[str]]:
    """Completion for a choice flag that takes a comma list: complete the last item."""
    def complete(incomplete: str) -> list[str]:
        head, _, last = incomplete.rpartition(",")
        prefix = head + "," if head else ""
        return [prefix + v for v in values if v.startswith(last.lower())]
    return complete


def _family(flag: str, help_: str, panel: str, choices: tuple[str, ...] | None = None):
    return Annotated[Optional[str], typer.Option(
        flag, help=help_, rich_help_panel=panel, show_default=False,
        autocompletion=_complete_choices(choices) if choices else None)]


def weight_formats() -> tuple[str, ...]:
    from llmcalc.core.quant import WEIGHT_FORMATS
    return WEIGHT_FORMATS


KV_FORMATS = ("fp32", "fp16", "bf16", "fp8", "int8", "int4")
_WEIGHT_CHOICES = ("fp32", "bf16", "fp16", "fp8", "int8", "int4", "q8_0", "q6_k", "q5_k_m", "q5_k_s", "q4_k_m",
                   "q4_k_s", "q4_0", "q3_k_m", "q2_k", "iq4_xs", "gptq-int4", "awq-int4", "nf4", "mxfp4", "nvfp4")
WeightDtypeOpt = _family("--weight-dtype", "Weight format: bf16, fp16, fp32, weight-only fp8, int8, int4, or a "
                         "named format with its real storage (q4_k_m, q8_0, gptq-int4, awq-int4, nf4, mxfp4, nvfp4, "
                         "...; docs/quant.md). Default bf16, or the checkpoint's quantization_config. A comma list "
                         "sweeps.", FORMATS_PANEL, _WEIGHT_CHOICES)
WeightGroupOpt = _family("--weight-group-size", "Grouped weight formats (int4, int8, fp8, gptq-int4, awq-int4): "
                         "elements per scale (e.g. 32, 128); 0 = the format's default.", FORMATS_PANEL)
ScaleBytesOpt = _family("--scale-bytes", "Bytes of scale data per weight group for int4/int8/fp8 (default 2: an "
                        "fp16 scale; 4: scale + zero point).", FORMATS_PANEL)
KvDtypeOpt = _family("--kv-dtype", "KV cache format: bf16, fp16, fp32, fp8, int8 or int4 (default bf16). A comma "
                     "list sweeps.", FORMATS_PANEL, KV_FORMATS)
KvGroupOpt = _family("--kv-group-size", "Quantised cache: elements per fp16 scale (0 = one per-tensor scale, not "
                     "counted; default).", FORMATS_PANEL)
MfuOpt = _family("--mfu", "Model FLOPs utilisation, a 0-1 ratio (default stated in the output).", EFF_PANEL)
MbuOpt = _family("--mbu", "Memory bandwidth utilisation in decode, a 0-1 ratio (default by weight format, stated "
                 "in the output).", EFF_PANEL)
MemUtilOpt = _family("--mem-util", "Share of GPU memory the engine may use for weights and cache, a 0-1 ratio "
                     "(default 0.9, vLLM's gpu_memory_utilization).", BUDGET_PANEL)
AllreduceLatencyOpt = _family("--allreduce-latency", "Fixed cost of one all-reduce under --tp, with a time unit "
                              "(default 20us).", EFF_PANEL)
TpOpt = _family("--tp", "Tensor-parallel GPUs (weights and KV heads split over them). Lists/ranges sweep.",
                LAYOUT_PANEL)


def read_formats(inp: "Inputs", weight_dtype: str | None, weight_group_size: str | None,
                 kv_dtype: str | None = None, kv_group_size: str | None = None, scale_bytes: str | None = None,
                 *, kv: bool = True, scales: bool = False, checkpoint: str = "",
                 notes: list[str] | None = None) -> None:
    """The weight and cache formats family into ``inp`` (choices may be comma lists: outer sweep axes);
    ``scales``: the command also takes --scale-bytes. ``checkpoint``: the format a config.json's
    quantization_config names, the default when --weight-dtype is not given."""
    default = checkpoint if checkpoint in weight_formats() else "bf16"
    if weight_dtype is None and checkpoint and notes is not None:
        notes.append(f"weights in {default}" + (" (the checkpoint's own format)" if default == checkpoint else
                                                f" (the checkpoint's {checkpoint} is not a format llmcalc knows)")
                     + "; --weight-dtype overrides")
    inp.choices("weight_dtype", weight_dtype, weight_formats(), default=default, label="weight format")
    inp.number("weight_group_size", weight_group_size, default=0, unit="count", label="elements per weight scale",
               integer=True, minimum=0, strict=False, outer=True)
    if scales:
        inp.number("scale_bytes", scale_bytes, default=2.0, unit="byte", label="scale bytes per weight group",
                   outer=True)
    if kv:
        inp.choices("kv_dtype", kv_dtype, KV_FORMATS, default="bf16", label="KV cache format")
        inp.number("kv_group_size", kv_group_size, default=0, unit="count", label="elements per cache scale",
                   integer=True, minimum=0, strict=False, outer=True)


def check_formats(v: dict[str, Any]) -> None:
    """Group sizes and scale bytes apply only to the formats that take them (per point of a format sweep)."""
    from llmcalc.core.quant import check_overrides
    try:
        check_overrides(v["weight_dtype"], v.get("weight_group_size") or 0, v.get("scale_bytes"))
    except InputError as e:
        raise InputError(str(e).replace("a weight group size", "--weight-group-size")
                         .replace("scale bytes per group", "--scale-bytes")) from None
    if v.get("kv_group_size") and v.get("kv_dtype") not in ("fp8", "int8", "int4"):
        raise InputError(f"--kv-group-size applies to quantised caches (fp8, int8, int4), not {v.get('kv_dtype')}; "
                         "drop it or add --kv-dtype int8")


def read_mem_util(inp: "Inputs", notes: list[str], mem_util: str | None) -> None:
    from llmcalc.core.kv import DEFAULT_MEM_UTIL
    inp.number("mem_util", mem_util, default=DEFAULT_MEM_UTIL, unit="ratio", label="GPU memory the engine may use",
               maximum=1.0)
    if mem_util is None:
        notes.append(f"--mem-util {DEFAULT_MEM_UTIL} assumed (vLLM's gpu_memory_utilization default): the rest is "
                     "left for CUDA graphs, the CUDA context and other processes")


def read_efficiency(inp: "Inputs", notes: list[str], mfu: str | None, mbu: str | None,
                    weight_dtype: str | list[str] = "bf16", *, decode: bool = True) -> None:
    """--mfu (prefill/compute) and --mbu (decode/bandwidth), 0-1 ratios, defaults stated in notes."""
    from llmcalc.core import serve as sv
    inp.number("mfu", mfu, default=sv.DEFAULT_MFU, unit="ratio", label="MFU", maximum=1.0)
    if mfu is None:
        notes.append(f"MFU {sv.DEFAULT_MFU:g} assumed for prefill (the COS 597A slides: typical 30-50%); set --mfu")
    if not decode:
        return
    fmts = weight_dtype if isinstance(weight_dtype, list) else [weight_dtype]
    inp.number("mbu", mbu, default=None if len(fmts) > 1 else sv.default_mbu(fmts[0]), unit="ratio",
               label="MBU", maximum=1.0)
    if mbu is None:
        shown = ", ".join(f"{sv.default_mbu(f):g} assumed for {f}" for f in fmts)
        notes.append(f"MBU {shown} weights (gpt-fast on a 330 W A100: 0.68-0.69 for 16-bit, 0.51-0.65 "
                     "int8, 0.40-0.53 int4); set --mbu")


def read_seconds(inp: "Inputs", name: str, text: str | None, default: float | None, label: str) -> Any:
    from llmcalc.units import parse_seconds
    return inp.number(name, text, default=default, unit="s", label=label, parse=parse_seconds, strict=False)


ARCH_FLAGS = ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "experts", "top_k")


# ----------------------------------------------------------------------------------------------
# Numeric inputs: scalars or sweeps


MAX_GRID_POINTS = 1_000_000  # points in one sweep (the product of its axes): bounded time and memory


class Inputs:
    """Collects resolved inputs; a value given as a list or range becomes a sweep axis.

    Two kinds of axis: *inner* numeric axes the core evaluates in one vectorised call (``grid()``: every
    swept input becomes a NumPy array over the cartesian product, one row per point), and *outer* axes,
    inputs the core takes as one value (a choice such as ``--kv-dtype``, or a layout such as ``--tp``),
    over which ``evaluate()`` loops, concatenating the rows. So every flag sweeps (contract v2).
    """

    def __init__(self) -> None:
        from llmcalc.render import Input
        self._Input = Input
        self.items: dict[str, Any] = {}
        self.swept: list[str] = []
        self.outer: list[str] = []

    def number(self, name: str, text: str | None, *, default: Any = None, unit: str = "count",
               label: str = "", parse: Callable = parse_count, minimum: float = 0.0, strict: bool = True,
               integer: bool = False, maximum: float | None = None, flag: str | None = None,
               outer: bool = False, single: bool = False) -> Any:
        """Parse ``--name``; ``strict``: value must be > minimum, else >= minimum. ``outer``: the core takes
        one value, so a list becomes an outer axis (see ``evaluate``). ``single``: one value only, never a sweep."""
        flag = flag or "--" + name.replace("_", "-")
        if text is None:
            self.items[name] = self._Input(default, unit, label)
            return default
        text = str(text)
        if single and is_sweep(text):
            raise InputError(f"{flag} takes one value, not a list or range")
        values = parse_values(text, parse, f"{flag}") if is_sweep(text) else [parse(text, flag)]
        if hasattr(values, "dtype"):  # a long range, already a NumPy array: check it in one pass
            if outer:
                values = values.tolist()
            else:
                _check_range(flag, float(values.min()), minimum, strict, False, maximum)
                _check_range(flag, float(values.max()), minimum, strict, False, maximum)
                if integer and (values != values.round()).any():
                    raise InputError(f"{flag} must be whole numbers; the range has fractional points")
        if not hasattr(values, "dtype"):
            for v in values:
                _check_range(flag, v, minimum, strict, integer, maximum)
        if integer and not hasattr(values, "dtype"):
            values = [int(v) for v in values]
        if len(values) > 1:
            (self.outer if outer else self.swept).append(name)
            self.items[name] = self._Input(values, unit, label)
            return values
        self.items[name] = self._Input(values[0], unit, label)
        return values[0]

    def choices(self, name: str, text: str | None, allowed: tuple[str, ...], *, default: str | None = None,
                label: str = "", flag: str | None = None, aliases: dict[str, str] | None = None) -> Any:
        """A choice flag; a comma list of choices is an outer sweep axis."""
        flag = flag or "--" + name.replace("_", "-")
        if text is None:
            self.items[name] = self._Input(default, "str", label)
            return default
        values = [choice(flag, (aliases or {}).get(v.strip().lower(), v.strip()), allowed)
                  for v in str(text).split(",") if v.strip()]
        if not values:
            raise InputError(f"{flag} needs a value: one of {', '.join(allowed)}")
        values = list(dict.fromkeys(values))
        if len(values) > 1:
            self.outer.append(name)
            self.items[name] = self._Input(values, "str", label)
            return values
        self.items[name] = self._Input(values[0], "str", label)
        return values[0]

    def fixed(self, name: str, value: Any, unit: str = "count", label: str = "") -> Any:
        self.items[name] = self._Input(value, unit, label)
        return value

    def derived(self, name: str, values: list) -> None:
        """An input the core resolved per point (e.g. dp from --gpus): one value when it is the same at every
        point, else a column of the sweep."""
        if len(set(values)) == 1 and name not in self.swept:
            self.fixed(name, values[0])
            return
        import numpy as np
        self.fixed(name, np.asarray(values, dtype=np.float64))
        if name not in self.swept:
            self.swept.append(name)

    def points(self) -> int:
        """Points in the whole sweep: the product of every axis's length."""
        n = 1
        for name in self.outer + self.swept:
            n *= len(self.items[name].value)
        return n

    def check_size(self) -> None:
        n = self.points()
        if n > MAX_GRID_POINTS:
            axes = " × ".join(f"{len(self.items[a].value):,} ({a})" for a in self.outer + self.swept)
            raise InputError(f"the sweep has {n:,} points ({axes}); the limit is {MAX_GRID_POINTS:,}: "
                             "use coarser ranges")

    def grid(self) -> dict[str, Any]:
        """Broadcast the inner sweep axes to a cartesian grid (NumPy); return name -> value for the core.
        Outer axes keep their lists (use ``evaluate`` to loop over them)."""
        self.check_size()
        if self.swept:
            import numpy as np
            axes = [np.asarray(self.items[n].value, dtype=np.float64) for n in self.swept]
            mesh = np.meshgrid(*axes, indexing="ij")
            for name, arr in zip(self.swept, mesh):
                self.items[name].value = arr.ravel()
        return {k: v.value for k, v in self.items.items()}

    def evaluate(self, compute: Callable[[dict[str, Any]], Any]):
        """``compute(values)`` once per point of the outer axes (each outer input a single value there), the
        inner axes vectorised; the results are concatenated, outer axes first, into one sweep."""
        values = self.grid()
        if not self.outer:
            return compute(values)
        import itertools

        import numpy as np

        inner = 1
        for name in self.swept:
            inner = len(self.items[name].value)
        combos = list(itertools.product(*(self.items[n].value for n in self.outer)))
        parts = [compute({**values, **dict(zip(self.outer, combo))}) for combo in combos]
        for i, name in enumerate(self.outer):
            column = [combo[i] for combo in combos]
            self.items[name].value = (np.repeat(np.asarray(column, dtype=np.float64), inner)
                                      if not isinstance(column[0], str) else
                                      [v for v in column for _ in range(inner)])
        for name in self.swept:
            self.items[name].value = np.tile(self.items[name].value, len(combos))
        self.swept = self.outer + self.swept
        self.outer = []
        return _concatenate(parts, inner)


def _concatenate(parts: list, inner: int):
    """Results of each outer point (each row a scalar or an ``inner``-long array) as one Results whose rows
    run over every point; a key a point lacks is None there. Formulas and symbols are the first point's."""
    import numpy as np

    from llmcalc.core.formula import Results, Row

    merged = Results()
    keys = list(dict.fromkeys(k for part in parts for k in part))
    for key in keys:
        first = next(p[key] for p in parts if key in p)
        columns, numeric = [], True
        for part in parts:
            value = part[key].value if key in part else None
            if value is None or isinstance(value, str):
                numeric = False
                columns.append([value] * inner)
                continue
            arr = np.asarray(value)
            if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != inner):
                columns = None  # not one value per point (e.g. a histogram): keep the first point's
                break
            if arr.dtype.kind in "USO":  # text per point (e.g. which bound binds)
                numeric = False
                columns.append([v.item() if hasattr(v, "item") else v for v in np.broadcast_to(arr, (inner,))])
                continue
            columns.append(np.broadcast_to(arr, (inner,)))
        if columns is None:
            merged[key] = first
            continue
        if numeric:
            value = np.concatenate([c.astype(np.float64) if c.dtype.kind != "b" else c for c in columns])
        else:
            value = [v.item() if hasattr(v, "item") else v for c in columns for v in list(c)]
        merged[key] = Row(value, first.unit, first.label, first.formula, first.symbols, first.note)
    return merged


def most(x) -> float:
    """The largest value of an input: a number, a list (an outer axis) or an array (an inner axis)."""
    return float(max(x) if isinstance(x, (list, tuple)) else x.max() if hasattr(x, "max") else x)


def least(x) -> float:
    """The smallest value of an input: a number, a list or an array."""
    return float(min(x) if isinstance(x, (list, tuple)) else x.min() if hasattr(x, "min") else x)


def _check_range(flag: str, v: Any, minimum: float, strict: bool, integer: bool, maximum: float | None) -> None:
    if isinstance(v, float) and not math.isfinite(v):
        raise InputError(f"{flag} must be a finite number, got {v}")
    if strict and v <= minimum:
        raise InputError(f"{flag} must be greater than {minimum:g}, got {v:g}")
    if not strict and v < minimum:
        raise InputError(f"{flag} must be at least {minimum:g}, got {v:g}")
    if maximum is not None and v > maximum:
        raise InputError(f"{flag} must be at most {maximum:g}, got {v:g}")
    if integer and v != int(v):
        raise InputError(f"{flag} must be a whole number, got {v:g}")
    if abs(v) > 1e30:
        raise InputError(f"{flag} is too large ({v:g})")


# ----------------------------------------------------------------------------------------------
# Model and GPU resolution


def resolve_model(model: str | None, arch: dict[str, str | None], required: bool = True):
    """A preset (or file) with inline overrides, or an inline model from flags alone."""
    from llmcalc import spec as specs
    from llmcalc.presets import load_model

    given = {k: _arch_int(k, v) for k, v in arch.items() if v is not None}
    experts, top_k = given.pop("experts", None), given.pop("top_k", None)
    if model:
        base = load_model(model)
        if "head_dim" not in given and "hidden" in given and "heads" in given and not base.mla:
            if given["hidden"] % given["heads"]:
                raise InputError(f"--heads ({given['heads']}) does not divide --hidden ({given['hidden']}); "
                                 "give --head-dim too")
            given["head_dim"] = given["hidden"] // given["heads"]
        if "heads" in given and "kv_heads" not in given and base.kv_heads == base.heads:
            given["kv_heads"] = given["heads"]
        spec = specs.replace(base, **given) if given else base
    elif given:
        if "hidden" in given and "ffn" not in given:
            given["ffn"] = 4 * given["hidden"]
        # An inline model is GPT-2-shaped unless flags say otherwise: plain GELU MLP, LayerNorm and
        # biases, learned positions (1,024), tied embeddings (seed 002: 12·L·D² + D·V).
        data = {"name": "custom", "mlp": "plain", "activation": "gelu", "norm": "layernorm", "norm_bias": True,
                "qkv_bias": True, "o_bias": True, "mlp_bias": True, "tie_embeddings": True,
                "position": "learned", "max_seq": 1024, **given}
        spec = specs.model_from_mapping(data, "inline model")
    elif required:
        raise InputError("no model given: use -m NAME (see `llmcalc presets list models`) or the inline flags "
                         "--layers --hidden --heads --vocab")
    else:
        return None
    if experts is not None or top_k is not None:
        spec = _with_moe(spec, experts, top_k)
    return spec


def _with_moe(spec, experts, top_k):
    from llmcalc import spec as specs
    if spec.moe:
        moe = specs.MoESpec(**{**_moe_fields(spec.moe), **({"experts": experts} if experts else {}),
                               **({"top_k": top_k} if top_k else {})})
    else:
        moe = specs.MoESpec(experts=experts or 8, top_k=top_k or 2, expert_ffn=spec.ffn)
    if moe.top_k > moe.experts:
        raise InputError(f"--top-k ({moe.top_k}) cannot exceed --experts ({moe.experts})")
    return specs.replace(spec, moe=moe)


def _moe_fields(moe) -> dict[str, Any]:
    import dataclasses
    return {f.name: getattr(moe, f.name) for f in dataclasses.fields(moe)}


def _arch_int(name: str, text: str) -> int:
    flag = "--" + name.replace("_", "-")
    v = parse_count(text, flag)
    if isinstance(v, float) or v < 1:
        raise InputError(f"{flag} must be a whole number of at least 1, got {text!r}")
    if v > 10**9:
        raise InputError(f"{flag} is implausibly large ({v:,})")
    return v


def resolve_gpu(gpu: str | None, required: bool = False):
    if not gpu:
        if required:
            raise InputError("no GPU given: use -g NAME (see `llmcalc presets list gpus`)")
        return None
    from llmcalc.presets import load_gpu
    return load_gpu(gpu)


def choice(flag: str, value: str, choices: tuple[str, ...]) -> str:
    v = value.lower()
    if v not in choices:
        raise InputError(f"{flag} must be one of {', '.join(choices)}; got {value!r}")
    return v


# When the CLI compares several models or GPUs (-m a,b -g x,y), each run's report is collected here
# instead of printed, and the CLI prints them together as one table (llmcalc.cli.main).
COLLECTED: list | None = None


def output(report, fmt: str | None, as_json: bool, explain: bool, fields: str | None = None,
           no_chart: bool = False) -> None:
    if COLLECTED is not None:
        COLLECTED.append((report, dict(fmt=fmt, as_json=as_json, explain=explain, fields=fields,
                                       no_chart=no_chart)))
        return
    emit_report(report, fmt, as_json, explain, fields, no_chart)


def emit_report(report, fmt: str | None, as_json: bool, explain: bool, fields: str | None = None,
                no_chart: bool = False) -> None:
    from llmcalc.render import choose_format, emit
    chosen = choose_format(fmt, as_json)
    keys = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    emit(report, chosen, explain=explain, fields=keys, chart=not no_chart)


def context_note(spec, seq, what: str = "--seq") -> str | None:
    """A note when a sequence length passes the model's context length: the arithmetic still holds, but a
    learned position table has no rows there and rotary models were not trained that long."""
    values = seq.tolist() if hasattr(seq, "tolist") else (seq if isinstance(seq, (list, tuple)) else [seq])
    longest = max(values) if values else 0
    if longest and longest > spec.max_seq:
        if spec.position == "learned":
            return (f"{what} {int(longest):,} exceeds {spec.name}'s {spec.max_seq:,}-row position table: the model "
                    "cannot run that long; the arithmetic is shown anyway")
        return f"{what} {int(longest):,} exceeds {spec.name}'s context length of {spec.max_seq:,} tokens"
    return None


# ----------------------------------------------------------------------------------------------
# The options every printing command shares, declared once and added to each command's signature

_ARCH_OPTIONS = (("layers", LayersOpt), ("hidden", HiddenOpt), ("heads", HeadsOpt), ("kv_heads", KvHeadsOpt),
                 ("head_dim", HeadDimOpt), ("ffn", FfnOpt), ("vocab", VocabOpt), ("experts", ExpertsOpt),
                 ("top_k", TopKOpt))
_OUTPUT_OPTIONS = (("as_json", JsonOpt, False), ("fmt", FormatOpt, None), ("explain", ExplainOpt, False),
                   ("fields", FieldsOpt, None), ("no_chart", NoChartOpt, False))


def shared_options(arch: bool = True):
    """Decorator (like sqlite-utils's ``output_options``): adds the inline architecture flags (passed to the
    command as ``arch``, a dict for ``resolve_model``) and the output flags (passed as ``out``, a dict for
    ``output``) to a command's signature, so each is declared once for every command."""
    import functools
    import inspect
    import typing

    def decorate(func):
        hints = typing.get_type_hints(func, include_extras=True)
        sig = inspect.signature(func)
        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()
               if p.name not in ("arch", "out")]
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        added = [inspect.Parameter(n, kind, default=None, annotation=a) for n, a in _ARCH_OPTIONS] if arch else []
        added += [inspect.Parameter(n, kind, default=d, annotation=a) for n, a, d in _OUTPUT_OPTIONS]

        @functools.wraps(func)
        def command(**kwargs):
            shared = {}
            if arch:
                shared["arch"] = {n: kwargs.pop(n) for n, _ in _ARCH_OPTIONS}
            shared["out"] = {n: kwargs.pop(n) for n, _, _ in _OUTPUT_OPTIONS}
            return func(**kwargs, **shared)

        params = own + added
        command.__signature__ = sig.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def declared(options):
    """Decorator: adds a command's own flags, declared as one table of (name, flag(s), panel, default, help), to its
    signature after -m and -g; the command receives them as one dict ``f`` (``func(model, gpu, f, arch, out)``;
    use under ``shared_options``). A default of False/True or a "--x/--no-x" flag is a switch; every other flag
    is read as text (a number, a list or range, or a choice). A row (name, family) takes a flag of an option
    family above (``WeightDtypeOpt``, ``TpOpt``, ...) as it is declared there."""
    import inspect

    def decorate(func):
        def command(model=None, gpu=None, arch=None, out=None, **f):
            return func(model, gpu, f, arch, out)
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params = [inspect.Parameter("model", kind, default=None, annotation=ModelOpt),
                  inspect.Parameter("gpu", kind, default=None, annotation=GpuOpt)]
        for row in options:
            if len(row) == 2:                              # an option family's flag, declared once above
                params.append(inspect.Parameter(row[0], kind, default=None, annotation=row[1]))
                continue
            name, flags, panel, default, help_ = row
            switch = isinstance(default, bool) or "/" in flags
            type_ = Optional[bool] if default is None and switch else bool if switch else Optional[str]
            opt = typer.Option(*flags.split(), help=help_, rich_help_panel=panel,
                               show_default=default not in (None, False))
            params.append(inspect.Parameter(name, kind, default=default, annotation=Annotated[type_, opt]))
        params += [inspect.Parameter(n, kind, default=None, annotation=dict) for n in ("arch", "out")]
        command.__name__, command.__doc__ = func.__name__, func.__doc__
        command.__signature__ = inspect.Signature(params, return_annotation=int)
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command
    return decorate
