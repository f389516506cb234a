"""The Python API: one function per subcommand, built on the CLI's own command functions.

``llmcalc.kv(model="llama-3.1-8b", gpu="h100-sxm", seq="32k")`` runs the same function as
``llmcalc kv -m llama-3.1-8b -g h100-sxm --seq 32k``: keyword arguments become the strings the CLI parses
(numbers as text, lists as comma lists, a ``ModelSpec``/``GpuSpec`` as a registered preset), the command's
report is captured instead of printed, and a ``Result`` wraps it. So the API and the CLI cannot drift:
``Result.to_json()`` is the ``--json`` output byte for byte (the same ``render`` code writes both).

Only the standard library loads with this module; a call imports its command (Typer, the core, NumPy for
sweeps) when it runs. docs/api.md is the user's guide.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

from llmcalc.errors import InputError

if TYPE_CHECKING:
    from llmcalc.spec import GpuSpec, ModelSpec
else:  # importing llmcalc.spec costs ~50 ms: at run time the hints resolve to Any (typing.get_type_hints works)
    GpuSpec = ModelSpec = Any

# (API name, CLI name, module in llmcalc.commands)
COMMANDS = {"flops": "flops", "train_mem": "train-mem", "kv": "kv", "roofline": "roofline", "serve": "serve",
            "specdec": "specdec", "parallel": "parallel"}

# CLI output flags the API does not take: a Result renders itself (to_dict, to_json, markdown, explain).
# --fields it does take (it trims the result, as on the CLI).
OUTPUT_FLAGS = ("as_json", "fmt", "explain", "no_chart")

Value = Union[str, float, int, list, tuple, range, None]
Model = Union[str, "ModelSpec", Mapping, list, tuple, None]  # a preset name, a path, a spec; a list compares
Gpu = Union[str, "GpuSpec", Mapping, list, tuple, None]


class Result(Mapping):
    """A command's answer: a read-only mapping of result key → value in base units (bytes, seconds, FLOPs);
    for a sweep each value is the column (a list, one value per row) and ``.rows`` the points."""

    def __init__(self, report: Any) -> None:
        self._report = report
        self._doc: dict[str, Any] | None = None

    # -- the document
    def to_dict(self, explain: bool = False) -> dict[str, Any]:
        """The ``--json`` document (``explain=True``: as ``--explain --json``), as a new dict."""
        return json.loads(self.to_json(explain))

    def to_json(self, explain: bool = False) -> str:
        """The text ``llmcalc … --json`` prints, byte for byte (one line, newline-terminated)."""
        from llmcalc.render import emit
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(io.StringIO()):
            emit(self._report, "json", explain=explain)
        return buffer.getvalue()

    def _document(self) -> dict[str, Any]:
        if self._doc is None:
            self._doc = self.to_dict()
        return self._doc

    @property
    def command(self) -> str:
        return self._report.command

    @property
    def inputs(self) -> dict[str, Any]:
        """Every resolved input (defaults included), as the JSON document's ``inputs``."""
        return self._document()["inputs"]

    @property
    def notes(self) -> list[str]:
        """Assumptions and warnings, as the CLI prints under the table."""
        return list(self._report.notes)

    @property
    def model(self) -> dict[str, Any] | None:
        return self._document().get("model")

    @property
    def gpu(self) -> dict[str, Any] | None:
        return self._document().get("gpu")

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One mapping per sweep point (the swept inputs, then every result); one row for a single point."""
        doc = self._document()
        if "rows" in doc:
            return doc["rows"]
        return [dict(doc.get("results", {}))]

    @property
    def is_sweep(self) -> bool:
        return bool(self._report.swept)

    # -- Mapping
    def _values(self) -> dict[str, Any]:
        doc = self._document()
        if "results" in doc:
            return doc["results"]
        keys = list(self._report.results)
        rows = doc.get("rows", [])
        return {k: [row.get(k) for row in rows] for k in keys}

    def __getitem__(self, key: str) -> Any:
        values = self._values()
        if key not in values:
            raise KeyError(f"{key!r} is not a result of llmcalc {self.command}; available: {', '.join(values)}")
        return values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    # -- explanations and rendering
    def explain(self, key: str | None = None) -> str:
        """How ``key`` (or every result, for None) was computed: the formula, then the numbers put into it,
        as ``--explain`` prints (the first point of a sweep)."""
        import dataclasses

        from llmcalc.core.formula import Results
        from llmcalc.render import explanation
        report = self._report
        if key is not None:
            if key not in report.results:
                raise KeyError(f"{key!r} is not a result of llmcalc {self.command}")
            report = dataclasses.replace(report, results=Results([(key, report.results[key])]), schema={})
        lines = explanation(report).splitlines()[2:]
        return "\n".join(line[2:] if line.startswith("  ") else line for line in lines)

    def to_markdown(self) -> str:
        from llmcalc.render import markdown
        return markdown(self._report)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        from html import escape

        from llmcalc.render import _headline, _table_data
        header, body = _table_data(self._report)
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        cells = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in body)
        notes = "".join(f"<li>{escape(n)}</li>" for n in self._report.notes)
        return (f"<div><strong>llmcalc {escape(self.command)}</strong> — {escape(_headline(self._report))}"
                f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"
                + (f"<ul>{notes}</ul>" if notes else "") + "</div>")

    def to_pandas(self):
        """A pandas DataFrame, one row per point, with the wide TSV/CSV columns (model, gpu, every input,
        every result). Needs pandas (not a dependency of llmcalc)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Result.to_pandas needs pandas: pip install pandas") from None
        from llmcalc.render import _wide
        return pd.DataFrame(_wide(self._report))

    def __repr__(self) -> str:
        if self.is_sweep:
            return f"<llmcalc {self.command} result: {len(self.rows)} rows × {len(self)} keys>"
        shown = ", ".join(f"{k}={v!r}" for k, v in itertools.islice(self.items(), 4))
        return f"<llmcalc {self.command} result: {shown}{', …' if len(self) > 4 else ''}>"


# ----------------------------------------------------------------------------------------------
# Running a command


def command_function(name: str):
    """The Typer command function behind API function ``name`` (e.g. ``train_mem``)."""
    import importlib
    if name not in COMMANDS:
        raise InputError(f"unknown command {name!r}; choose one of {', '.join(COMMANDS)}")
    return getattr(importlib.import_module(f"llmcalc.commands.{name}"), name)


def parameters(name: str) -> dict[str, tuple[str, Any]]:
    """The command's options the API takes, in the CLI's order: keyword (the long flag with dashes as
    underscores: ``--max-seq`` → ``max_seq``) → (the command function's parameter, its default; ``SWITCH``
    for an on/off flag whose default is None)."""
    import inspect
    import typing
    out = {}
    for p in inspect.signature(command_function(name)).parameters.values():
        if p.name in OUTPUT_FLAGS:
            continue
        default, kind, flag = p.default, p.annotation, None
        if hasattr(default, "default") and type(default).__name__ in ("OptionInfo", "ArgumentInfo"):
            flag, default = _long_flag(default, p.name), default.default
        if typing.get_origin(kind) is typing.Annotated:
            kind, *meta = typing.get_args(kind)
            flag = flag or next((_long_flag(m, p.name) for m in meta if hasattr(m, "param_decls")), None)
        if default is None and (kind is bool or bool in typing.get_args(kind)):
            default = SWITCH
        out[flag or p.name] = (p.name, default)
    return out


def _long_flag(option: Any, name: str) -> str | None:
    """The long flag of a Typer option as a Python name (``--max-seq`` → ``max_seq``): the parameter's own
    name when it is one of the flags, else the first long flag (the "--x" of "--x/--no-x")."""
    decls = list(getattr(option, "param_decls", None) or ())
    first = getattr(option, "default", None)
    if isinstance(first, str) and first.startswith("--"):  # Annotated[..., typer.Option("--x", "-x")]
        decls.insert(0, first)
    longs = [d.split("/")[0][2:].replace("-", "_") for decl in decls for d in decl.split() if d.startswith("--")]
    return name if name in longs else longs[0] if longs else None


class _Switch:
    """The default of an on/off flag that is unset (None) unless given."""

    def __repr__(self) -> str:
        return "SWITCH"


SWITCH = _Switch()


def run(command: str, **kwargs: Any) -> Result:
    """Run ``command`` (``"kv"``, ``"train-mem"`` or ``"train_mem"``, …) with the CLI's long flags as keyword
    arguments; ``model``/``gpu`` given as a list compare, as ``-m a,b`` does on the CLI."""
    name = command.replace("-", "_")
    params = parameters(name)
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        import difflib
        close = difflib.get_close_matches(unknown[0], params, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"llmcalc.{name}() has no option {unknown[0]!r}{hint}; "
                         f"it takes {', '.join(params)}")
    given = {k: v for k, v in kwargs.items() if v is not None}
    for key in ("model", "gpu"):  # "a,b" compares, as -m a,b does; -g all is every GPU preset
        value = given.get(key)
        if isinstance(value, str) and ("," in value or (key == "gpu" and value.strip().lower() == "all")):
            import os
            if not os.path.exists(value):
                if value.strip().lower() == "all":
                    from llmcalc.presets import preset_files
                    given[key] = list(preset_files("gpus"))
                else:
                    given[key] = [v.strip() for v in value.split(",") if v.strip()]
    compared = [k for k in ("model", "gpu") if _is_list(given.get(k))]
    if not compared:
        report = _report(name, params, given)
    else:  # as the CLI compares: every run's whole report, combined, then --fields
        from llmcalc.render import combine
        report = combine([_report(name, params, {**given, **dict(zip(compared, combo))})
                          for combo in itertools.product(*(list(given[k]) for k in compared))])
    if given.get("fields"):
        _trim(report, given["fields"])
    return Result(report)


def _report(name: str, params: dict[str, Any], given: dict[str, Any]):
    """Call the command function in capture mode: its report is collected, not printed."""
    import typer

    from llmcalc import cli_support, presets
    from llmcalc.spec import GpuSpec, ModelSpec

    func = command_function(name)
    args: dict[str, Any] = {p: None if d is SWITCH else d for p, d in params.values()}
    args.update(as_json=True, fmt=None, explain=False, no_chart=True, fields=None)
    tokens = []
    for key, value in given.items():
        if key == "fields":
            continue
        if key in SPEC_KEYS and isinstance(value, (Mapping, ModelSpec, GpuSpec)):
            value = _spec(key, value)
            token = f"<{type(value).__name__} {value.name} #{id(value)}>"
            presets.REGISTERED[token] = value
            tokens.append(token)
            args[params[key][0]] = token
        else:
            args[params[key][0]] = _text(key, value, params[key][1])
    with _LOCK:  # the capture list and the redirected streams are process-wide: one capture at a time
        saved, cli_support.COLLECTED = cli_support.COLLECTED, []
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    func(**args)
                except typer.Exit:  # a --check that failed, after the report: the result says fits False
                    pass
            collected = cli_support.COLLECTED
        finally:
            cli_support.COLLECTED = saved
            for token in tokens:
                presets.REGISTERED.pop(token, None)
    if not collected:
        raise InputError(f"llmcalc {name} produced no result")  # every command reports; a bug if not
    return collected[-1][0]


SPEC_KEYS = {"model": "ModelSpec", "draft": "ModelSpec", "gpu": "GpuSpec"}
_LOCK = threading.RLock()


def _spec(key: str, value: Any):
    """A spec object for ``model=``/``draft=``/``gpu=``: a ModelSpec/GpuSpec as given, or a mapping of a
    preset's fields (as a preset YAML file holds them) validated into one."""
    from llmcalc import spec as specs
    kind = SPEC_KEYS[key]
    if isinstance(value, Mapping):
        read = specs.model_from_mapping if kind == "ModelSpec" else specs.gpu_from_mapping
        return read(dict(value), f"{key}=")
    if type(value).__name__ != kind:
        raise InputError(f"{key}= takes a {kind} (or a preset name), got a {type(value).__name__}")
    return value


def _trim(report, fields: Value) -> None:
    from llmcalc.render import _select_fields
    text = _text("fields", fields, None)
    _select_fields(report, [f.strip() for f in text.split(",") if f.strip()])


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, range)) or (hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0)


def _text(key: str, value: Any, default: Any) -> Any:
    """A Python value as the CLI would receive it: a switch stays a bool; numbers become their text (32000 →
    "32000", 0.8 → "0.8"); a list becomes a comma list ([1, 8, 64] → "1,8,64")."""
    switch = isinstance(default, bool) or default is SWITCH
    if isinstance(value, bool):
        if switch:
            return value
        raise InputError(f"{key}= takes a value, not {value!r}")
    if switch:
        raise InputError(f"{key}= is a switch: pass True or False, got {value!r}")
    if _is_list(value):
        items = value.tolist() if hasattr(value, "tolist") else list(value)
        if not items:
            raise InputError(f"{key}= got an empty list")
        return ",".join(_one(key, v) for v in items)
    return _one(key, value)


def _one(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "item"):
        raise InputError(f"{key}= takes a number, a string or a list of them, got {type(value).__name__}")
    value = value.item() if hasattr(value, "item") else value
    return str(value) if isinstance(value, int) else repr(float(value))


# ---- BEGIN GENERATED by scripts/gen_api.py: do not edit by hand ----
def flops(*, model: Model = None, batch: Value = None, seq: Value = None, causal: Optional[bool] = None,
          recompute: Value = None, tokens: Value = None, gpu: Gpu = None, gpus: Value = None, mfu: Value = None,
          tokens_per_s: Value = None, dtype: Value = None, gpu_cost: Value = None, gpu_power: Value = None,
          pue: Value = None, grid_intensity: Value = None, compute_budget: Value = None, fit: Value = None,
          compute_dtype: Value = None, method: Value = None, lora_rank: Value = None, lora_targets: Value = None,
          layers: Value = None, hidden: Value = None, heads: Value = None, kv_heads: Value = None,
          head_dim: Value = None, ffn: Value = None, vocab: Value = None, experts: Value = None,
          top_k: Value = None, fields: Value = None) -> Result:
    """Forward, backward and training FLOPs of one step (B sequences of S tokens), by part, beside the
    napkin 2·P·T and 6·P·T figures; with --tokens the whole run, and with a GPU its GPU-hours and days.

    Keyword arguments are ``llmcalc flops``'s long flags (``llmcalc flops --help``); None keeps the
    CLI's default."""
    return run('flops', **locals())


def train_mem(*, model: Model = None, batch: Value = None, seq: Value = None, precision: Value = None,
              grad_dtype: Value = None, optimizer: Value = None, activations: Value = None,
              flash: Optional[bool] = None, recompute: Value = None, dropout: Optional[bool] = None,
              zero: Value = None, dp: Value = None, tp: Value = None, pp: Value = None,
              sp: Optional[bool] = None, in_flight: Value = None, gpu: Gpu = None, reserve: Value = None,
              fragmentation: Value = None, max_batch: Optional[bool] = None, max_seq: Optional[bool] = None,
              breakeven: Optional[bool] = None, max_rank: Optional[bool] = None, check: Optional[bool] = None,
              method: Value = None, lora_rank: Value = None, lora_targets: Value = None, layers: Value = None,
              hidden: Value = None, heads: Value = None, kv_heads: Value = None, head_dim: Value = None,
              ffn: Value = None, vocab: Value = None, experts: Value = None, top_k: Value = None,
              fields: Value = None) -> Result:
    """Per-GPU training memory: weights, gradients, optimizer state and activations, each by part, and
    whether it fits a GPU after a stated reserve; with --max-batch / --max-seq, the largest that fits.

    Keyword arguments are ``llmcalc train-mem``'s long flags (``llmcalc train-mem --help``); None keeps the
    CLI's default."""
    return run('train_mem', **locals())


def kv(*, model: Model = None, batch: Value = None, seq: Value = None, kv_dtype: Value = None,
       kv_group_size: Value = None, weight_dtype: Value = None, weight_group_size: Value = None, gpu: Gpu = None,
       mem_util: Value = None, tp: Value = None, causal: Optional[bool] = None, check: Optional[bool] = None,
       engine: Value = None, max_batched_tokens: Value = None, max_seq: Optional[bool] = None,
       block_size: Value = None, max_output: Value = None, mean_output: Value = None, layers: Value = None,
       hidden: Value = None, heads: Value = None, kv_heads: Value = None, head_dim: Value = None,
       ffn: Value = None, vocab: Value = None, experts: Value = None, top_k: Value = None, fields: Value = None,
       ) -> Result:
    """KV-cache bytes per token, per sequence and per batch beside the model weights; decode FLOPs with and
    without the cache; on a GPU how many sequences fit (max_batch) and the longest that fits (max_seq),
    plain and paged.

    Keyword arguments are ``llmcalc kv``'s long flags (``llmcalc kv --help``); None keeps the
    CLI's default."""
    return run('kv', **locals())


def roofline(*, gpu: Gpu = None, dtype: Value = None, intensity: Value = None, op: Value = None, m: Value = None,
             k: Value = None, n: Value = None, flops_per_element: Value = None, inputs: Value = None,
             tile: Value = None, model: Model = None, batch: Value = None, seq: Value = None,
             phase: Value = None, weight_dtype: Value = None, weight_group_size: Value = None,
             kv_dtype: Value = None, mem_util: Value = None, tiers: Optional[bool] = None, plot: Value = None,
             layers: Value = None, hidden: Value = None, heads: Value = None, kv_heads: Value = None,
             head_dim: Value = None, ffn: Value = None, vocab: Value = None, experts: Value = None,
             top_k: Value = None, fields: Value = None) -> Result:
    """Peak FLOP/s, memory bandwidth and ridge point of a GPU; place an operation (an intensity, a matmul,
    element-wise, softmax, layer norm, naive vs flash attention) or a model's prefill and decode phases on
    the roofline, with T_math, T_mem, their max and sum, and the bound; draw it.

    Keyword arguments are ``llmcalc roofline``'s long flags (``llmcalc roofline --help``); None keeps the
    CLI's default."""
    return run('roofline', **locals())


def serve(*, model: Model = None, gpu: Gpu = None, batch: Value = None, prompt: Value = None, gen: Value = None,
          gen_min: Value = None, target_latency: Value = None, weight_dtype: Value = None,
          weight_group_size: Value = None, scale_bytes: Value = None, kv_dtype: Value = None,
          kv_group_size: Value = None, tp: Value = None, mbu: Value = None, mfu: Value = None,
          allreduce_latency: Value = None, mem_util: Value = None, compute_dtype: Value = None,
          ep: Optional[bool] = None, max_seq: Optional[bool] = None, rate: Value = None, requests: Value = None,
          seed: Value = None, lengths: Value = None, max_seqs: Value = None, max_batched_tokens: Value = None,
          slo_ttft: Value = None, slo_tpot: Value = None, slo_percentile: Value = None, gpu_cost: Value = None,
          engine: Value = None, check: Optional[bool] = None, plot: Value = None, layers: Value = None,
          hidden: Value = None, heads: Value = None, kv_heads: Value = None, head_dim: Value = None,
          ffn: Value = None, vocab: Value = None, experts: Value = None, top_k: Value = None,
          fields: Value = None) -> Result:
    """Time to first token, time per output token, end-to-end latency and throughput of a model on a GPU (or
    --tp GPUs), led by the memory-bandwidth ceiling: weights and the KV cache read once per decode step,
    FLOPs at the compute roof, with stated MBU/MFU; what fits; batching and its trade-offs.

    Keyword arguments are ``llmcalc serve``'s long flags (``llmcalc serve --help``); None keeps the
    CLI's default."""
    return run('serve', **locals())


def specdec(*, model: Model = None, gpu: Gpu = None, alpha: Value = None, k: Value = None,
            cost_ratio: Value = None, verify_cost: Value = None, ops_ratio: Value = None, k_max: Value = None,
            medusa_heads: Value = None, decay: Value = None, head_alphas: Value = None, draft: Model = None,
            draft_dtype: Value = None, draft_group_size: Value = None, batch: Value = None,
            context: Value = None, weight_dtype: Value = None, weight_group_size: Value = None,
            kv_dtype: Value = None, tp: Value = None, draft_tp: Value = None, mbu: Value = None,
            mfu: Value = None, simulate: Value = None, seed: Value = None, fields: Value = None) -> Result:
    """Speculative decoding: expected tokens per target step (1 − α^(k+1))/(1 − α), the speedup E/(k·c + v),
    the best k and its speedup, and the acceptance rate below which speculating loses; with --simulate a
    Monte Carlo beside it; with -m/--draft/-g the costs from both models' decode-step times.

    Keyword arguments are ``llmcalc specdec``'s long flags (``llmcalc specdec --help``); None keeps the
    CLI's default."""
    return run('specdec', **locals())


def parallel(*, model: Model = None, gpu: Gpu = None, gpus: Value = None, dp: Value = None, tp: Value = None,
             pp: Value = None, cp: Value = None, cp_comm: Value = None, ep: Value = None, zero: Value = None,
             micro_batch: Value = None, global_batch: Value = None, seq: Value = None, recompute: Value = None,
             sp: Optional[bool] = None, virtual_stages: Value = None, schedule: Value = None,
             search: Optional[bool] = None, top: Value = None, uneven_pp: Optional[bool] = None,
             gpus_per_node: Value = None, nvlink_bw: Value = None, net_bw: Value = None,
             nvlink_latency: Value = None, net_latency: Value = None, compute_mfu: Value = None,
             overlap_dp: Optional[bool] = None, tp_overlap: Optional[bool] = None,
             pp_overlap: Optional[bool] = None, ep_overlap: Optional[bool] = None, compute_dtype: Value = None,
             capacity_factor: Value = None, tokens: Value = None, dtype: Value = None,
             causal: Optional[bool] = None, precision: Value = None, grad_dtype: Value = None,
             optimizer: Value = None, activations: Value = None, flash: Optional[bool] = None,
             reserve: Value = None, fragmentation: Value = None, method: Value = None, lora_rank: Value = None,
             lora_targets: Value = None, gpu_cost: Value = None, gpu_power: Value = None, pue: Value = None,
             grid_intensity: Value = None, check: Optional[bool] = None, layers: Value = None,
             hidden: Value = None, heads: Value = None, kv_heads: Value = None, head_dim: Value = None,
             ffn: Value = None, vocab: Value = None, experts: Value = None, top_k: Value = None,
             fields: Value = None) -> Result:
    """Data × tensor × pipeline parallelism with ZeRO: per-GPU memory (train-mem's model), DP/TP/PP bytes
    and seconds per step, the pipeline bubble, step time, tokens/s and MFU; with --search, every layout of
    --gpus that fits, ranked by throughput, with what bounds each.

    Keyword arguments are ``llmcalc parallel``'s long flags (``llmcalc parallel --help``); None keeps the
    CLI's default."""
    return run('parallel', **locals())
# ---- END GENERATED ----
