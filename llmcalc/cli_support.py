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

ARCH_FLAGS = ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "experts", "top_k")


# ----------------------------------------------------------------------------------------------
# Numeric inputs: scalars or sweeps


class Inputs:
    """Collects resolved inputs; a value given as a list or range becomes a sweep axis.

    After ``grid()``, every swept input holds a NumPy float64 array over the cartesian product of all
    sweep axes (one row per point), so the core is evaluated once, vectorised.
    """

    def __init__(self) -> None:
        from llmcalc.render import Input
        self._Input = Input
        self.items: dict[str, Any] = {}
        self.swept: list[str] = []

    def number(self, name: str, text: str | None, *, default: Any = None, unit: str = "count",
               label: str = "", parse: Callable = parse_count, minimum: float = 0.0, strict: bool = True,
               integer: bool = False, maximum: float | None = None, flag: str | None = None) -> Any:
        """Parse ``--name``; ``strict``: value must be > minimum, else >= minimum."""
        flag = flag or "--" + name.replace("_", "-")
        if text is None:
            self.items[name] = self._Input(default, unit, label)
            return default
        values = parse_values(text, parse, f"{flag}") if is_sweep(text) else [parse(text, flag)]
        if hasattr(values, "dtype"):  # a long range, already a NumPy array: check it in one pass
            _check_range(flag, float(values.min()), minimum, strict, False, maximum)
            _check_range(flag, float(values.max()), minimum, strict, False, maximum)
            if integer and (values != values.round()).any():
                raise InputError(f"{flag} must be whole numbers; the range has fractional points")
        else:
            for v in values:
                _check_range(flag, v, minimum, strict, integer, maximum)
        if len(values) > 1:
            self.swept.append(name)
            self.items[name] = self._Input(values, unit, label)
            return values
        self.items[name] = self._Input(values[0], unit, label)
        return values[0]

    def fixed(self, name: str, value: Any, unit: str = "count", label: str = "") -> Any:
        self.items[name] = self._Input(value, unit, label)
        return value

    def grid(self) -> dict[str, Any]:
        """Broadcast the sweep axes to a cartesian grid (NumPy); return name -> value for the core."""
        if self.swept:
            import numpy as np
            axes = [np.asarray(self.items[n].value, dtype=np.float64) for n in self.swept]
            mesh = np.meshgrid(*axes, indexing="ij")
            for name, arr in zip(self.swept, mesh):
                self.items[name].value = arr.ravel()
        return {k: v.value for k, v in self.items.items()}


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
