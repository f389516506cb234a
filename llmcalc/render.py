"""One renderer for every subcommand: Rich table, TSV, CSV, JSON, YAML, Markdown and ``--explain``.

A command hands over a ``Report``: the resolved inputs, and the core's ``Results`` (one point, or arrays
for a sweep). Every format is a rendering of that one object. JSON holds plain numbers in base units
(FLOPs, bytes, seconds, per-second rates); only tables and ``--explain`` show GiB, TFLOP/s or ms.
Rich is imported only when a table is drawn.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from llmcalc import __version__
from llmcalc.core.formula import Results, Row
from llmcalc.errors import InputError
from llmcalc.units import fmt_value

FORMATS = ("table", "tsv", "json", "csv", "yaml", "md", "kv")
FORMAT_ALIASES = {"markdown": "md", "yml": "yaml", "text": "table"}
SCHEMA_VERSION = 2
INTEGER_UNITS = ("byte", "count", "params")  # contract v2: byte and count columns print as integers


@dataclass
class Input:
    value: Any
    unit: str = "count"
    label: str = ""
    echo: bool = True     # False: a row label (a search's rank, layout), not an input to echo under the table


@dataclass
class Report:
    command: str
    inputs: dict[str, Input]
    results: Results
    model: Any = None                 # ModelSpec
    gpu: Any = None                   # GpuSpec
    swept: list[str] = field(default_factory=list)   # input names that vary across rows
    columns: list[str] = field(default_factory=list)  # result keys a sweep table shows (all, if empty)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # extra JSON members (e.g. histogram)
    chart: Any = None                  # callable(Report) -> str, drawn under a table
    # Every result key this command and mode can produce: key -> (unit, label). A key the run did not
    # produce is reported as null (contract v2: stable keys), so a script sees one key set per mode.
    schema: dict[str, tuple[str, str]] = field(default_factory=dict)
    kept_inputs: list[str] | None = None   # --fields naming inputs: the input columns to keep

    def __post_init__(self) -> None:
        for key, (unit, label) in self.schema.items():
            if key not in self.results:
                self.results.put(key, None, unit, label + " (does not apply here)")
        # how the model was read (a config.json's quantization_config, assumed defaults): said with the results
        self.notes[:0] = [n for n in getattr(self.model, "notes", ()) or () if n not in self.notes]

    @property
    def points(self) -> int:
        n = 1
        for name in self.swept:
            v = self.inputs[name].value
            n = max(n, len(v) if hasattr(v, "__len__") else 1)
        return n

    def columns_plain(self) -> dict[str, list]:
        """Each swept input and result as a plain list of one value per point (columnar, fast)."""
        n = self.points
        cols = {name: _column(self.inputs[name].value, n) for name in self.swept}
        cols.update({k: _column(r.value, n, r.unit) for k, r in self.results.items()})
        return cols

    def wide_columns(self) -> dict[str, list]:
        """The wide table every delimited format prints, one shape for one point or many (contract v2): the
        model and GPU, every resolved input, then every result; one list of values per column."""
        n = self.points
        cols: dict[str, list] = {}
        for name, inp in (("model", self.model), ("gpu", self.gpu)):
            if name not in self.inputs:
                cols[name] = [getattr(inp, "name", None)] * n
        for name, inp in self.inputs.items():
            key = f"input_{name}" if name in self.results else name
            cols[key] = _column(inp.value, n) if name in self.swept else [plain(inp.value)] * n
        cols.update({k: _column(r.value, n, r.unit) for k, r in self.results.items()})
        return cols

    def row_dicts(self) -> list[dict[str, Any]]:
        """One dict per sweep point: the swept inputs, then every result key."""
        cols = self.columns_plain()
        keys = list(cols)
        return [dict(zip(keys, values)) for values in zip(*cols.values())]


def _column(value: Any, n: int, unit: str = "") -> list:
    integer = unit in INTEGER_UNITS
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        if value.shape[0] == n:
            if integer and value.dtype.kind == "f":
                import numpy as np
                value = np.rint(value)
            return _clean_array(value)
        value = value.reshape(-1)[0]
    if isinstance(value, (list, tuple)):
        return [cell(v, unit) for v in value]
    return [cell(value, unit)] * n


def cell(value: Any, unit: str = "") -> Any:
    """One output value: plain, and a whole number where the unit counts whole things (bytes, counts)."""
    value = plain(value)
    if unit in INTEGER_UNITS and isinstance(value, float):
        return int(round(value))
    return value


def _clean_array(a) -> list:
    """A NumPy column as plain values, vectorised: integral floats become ints, non-finite become None
    (as plain() does one value at a time; a million-point sweep must not loop in Python)."""
    import numpy as np

    if a.dtype.kind != "f":
        return a.tolist()
    finite = np.isfinite(a)
    whole = finite & (np.abs(np.where(finite, a, 0)) < 2**53) & (a == np.floor(np.where(finite, a, 0)))
    if whole.all():
        return a.astype(np.int64).tolist()
    out = a.tolist()
    for i in np.flatnonzero(whole):
        out[i] = int(out[i])
    for i in np.flatnonzero(~finite):
        out[i] = None
    return out


def _item(value: Any, i: int) -> Any:
    if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return value[i] if value.shape[0] > 1 else value[0]
    if isinstance(value, (list, tuple)):
        return value[i]
    return value


def plain(value: Any) -> Any:
    """A JSON-safe plain value: NumPy scalars to Python, non-finite floats to null."""
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            value = value.tolist()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _write_json_rows(doc: dict[str, Any], report: Report, out) -> None:
    """The same document as json.dumps would write, for a long sweep: each column is encoded by the C
    encoder in one call and the rows are spliced together (a million rows in seconds, not minutes)."""
    cols = report.columns_plain()
    texts = []
    for values in cols.values():
        if not any(isinstance(v, str) for v in values[:1]):  # columns are homogeneous (one NumPy array each)
            texts.append(json.dumps(values, allow_nan=False)[1:-1].split(", "))
        else:
            texts.append([json.dumps(v, allow_nan=False) for v in values])
    prefixes = [json.dumps(k) + ": " for k in cols]
    head = json.dumps(doc, allow_nan=False)
    rows = ", ".join("{" + ", ".join(map(str.__add__, prefixes, vals)) + "}" for vals in zip(*texts))
    out.write(head[:-1] + ', "rows": [' + rows + "]}\n")


def document(report: Report, rows: bool = True) -> dict[str, Any]:
    """The JSON document (schema_version 2; STYLE.md #12)."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "command": report.command, "version": __version__}
    if report.model is not None:
        doc["model"] = plain(report.model.to_dict())
    if report.gpu is not None:
        doc["gpu"] = plain(report.gpu.to_dict())
    doc["inputs"] = {k: plain(v.value) if k not in report.swept else _column(v.value, report.points)
                     for k, v in report.inputs.items()}
    if report.swept:
        if rows:
            doc["rows"] = report.row_dicts()
    else:
        doc["results"] = {k: cell(r.value, r.unit) for k, r in report.results.items()}
    for k, v in report.extra.items():
        doc[k] = plain(v)
    if report.notes:
        doc["notes"] = list(report.notes)
    return doc


def _listify(value: Any):
    if hasattr(value, "tolist"):
        return value.tolist()
    return value if isinstance(value, (list, tuple)) else [value]


def choose_format(fmt: str | None, as_json: bool) -> str:
    if as_json:
        return "json"
    if fmt:
        f = fmt.lower()
        f = FORMAT_ALIASES.get(f, f)
        if f not in FORMATS:
            raise InputError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return f
    return "table" if sys.stdout.isatty() else "tsv"


def emit(report: Report, fmt: str, explain: bool = False, fields: list[str] | None = None,
         chart: bool = True) -> None:
    """Write the report to stdout in ``fmt``; notes go to stderr unless the format carries them."""
    if fields:
        _select_fields(report, fields)
    out = sys.stdout
    if fmt == "json":
        doc = _with_explain(document(report, rows=report.points <= 10_000), report, explain)
        if "rows" in doc or not report.swept:
            out.write(json.dumps(doc, allow_nan=False) + "\n")
        else:
            _write_json_rows(doc, report, out)
    elif fmt == "yaml":
        import yaml
        out.write(yaml.safe_dump(_with_explain(document(report), report, explain), sort_keys=False,
                                 allow_unicode=True))
    elif fmt in ("tsv", "csv"):
        _write_delimited(report, fmt)
    elif fmt == "kv":
        _write_long(report)
    elif fmt == "md":
        out.write(markdown(report))
    else:
        _write_table(report, chart)
    if explain and fmt not in ("json", "yaml"):   # JSON/YAML carry it inside: one document on stdout
        out.write(explanation(report))
    if fmt not in ("json", "yaml", "table", "md") and report.notes:
        for note in report.notes:
            sys.stderr.write(f"note: {note}\n")


def _with_explain(doc: dict[str, Any], report: Report, explain: bool) -> dict[str, Any]:
    """With --explain, JSON and YAML hold the explanation's lines under "explain" (INTERFACE: one object)."""
    if explain:
        doc["explain"] = [line.strip() for line in explanation(report).splitlines()[2:] if line.strip()]
    return doc


def _select_fields(report: Report, fields: list[str]) -> None:
    """Keep the named results; a named input keeps its column too (a trimmed sweep still says which row is
    which), and in the delimited formats the other inputs drop out."""
    known = set(report.results) | set(report.inputs) | {"model", "gpu"}
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise InputError(f"Unknown field {unknown[0]!r}. Available fields: "
                         f"{', '.join([*report.inputs, *report.results])}")
    report.results = Results((k, report.results[k]) for k in fields if k in report.results)
    report.columns = [k for k in fields if k in report.results]
    report.kept_inputs = [k for k in fields if k not in report.results]


# ----------------------------------------------------------------------------------------------
# Delimited and Markdown


def _wide(report: Report) -> dict[str, list]:
    cols = report.wide_columns()
    kept = report.kept_inputs
    if kept is not None:  # --fields: the named inputs, then the named results, in the order given
        cols = {k: v for k, v in cols.items() if k in kept or k in report.results}
    return cols


def _write_delimited(report: Report, fmt: str) -> None:
    """Always wide (contract v2): a header of inputs then results, one line per point."""
    cols = _wide(report)
    keys = list(cols)
    if fmt == "tsv":
        text = [_tsv_column(cols[k]) for k in keys]
        sys.stdout.write("\t".join(keys) + "\n")
        sys.stdout.write("\n".join(map("\t".join, zip(*text))) + "\n")
        return
    import csv
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(keys)
    writer.writerows(zip(*(_csv_column(cols[k]) for k in keys)))


def _write_long(report: Report) -> None:
    """``-o kv``: one line per input and result with its unit, for people reading a single answer."""
    rows = [["key", "value", "unit"]]
    for k, inp in report.inputs.items():
        rows.append([f"input.{k}", _tsv_cell(plain(inp.value)) if k not in report.swept else
                     ",".join(map(_tsv_cell, _column(inp.value, report.points))), inp.unit])
    for k, r in report.results.items():
        value = (",".join(map(_tsv_cell, _column(r.value, report.points, r.unit))) if report.swept
                 else _tsv_cell(cell(r.value, r.unit)))
        rows.append([k, value, r.unit])
    sys.stdout.write("\n".join("\t".join(row) for row in rows) + "\n")


def _csv_column(col: list) -> list:
    return ["" if v is None else ("true" if v else "false") if isinstance(v, bool) else v for v in col]


def _tsv_column(col: list) -> list[str]:
    if all(type(v) is int for v in col):
        return list(map(str, col))
    return list(map(_tsv_cell, col))


def _tsv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v).replace("\t", " ").replace("\n", " ")


def _headline(report: Report) -> str:
    parts = []
    if report.model is not None:
        parts.append(report.model.name)
    if report.gpu is not None:
        parts.append(report.gpu.name)
    for k, inp in report.inputs.items():
        if not inp.echo:
            continue
        if k in report.swept:
            vals = list(dict.fromkeys(_listify(inp.value)))  # distinct, in order
            if len(vals) <= 4:
                parts.append(f"{k} {', '.join(fmt_value(v, inp.unit) for v in vals)}")
            else:
                parts.append(f"{k} {fmt_value(vals[0], inp.unit)} … {fmt_value(vals[-1], inp.unit)} "
                             f"({len(vals)} values)")
        elif inp.value is not None and k not in ("model", "gpu"):
            parts.append(f"{k} {fmt_value(inp.value, inp.unit)}")
    return " · ".join(parts)


def _table_data(report: Report) -> tuple[list[str], list[list[str]]]:
    if report.swept:
        keys = report.columns or list(report.results)
        header = list(report.swept) + keys
        units = {**{k: report.inputs[k].unit for k in report.swept}, **{k: report.results[k].unit for k in keys}}
        body = [[fmt_value(d[k], units[k], compact=True) for k in header] for d in report.row_dicts()]
        return header, body
    header = ["quantity", "value", "key"]
    # a key that does not apply to this run stays in JSON/TSV as null; a person's table leaves it out
    body = [[r.label, fmt_value(r.value, r.unit), k] for k, r in report.results.items() if r.value is not None]
    return header, body


def markdown(report: Report) -> str:
    header, body = _table_data(report)
    lines = [f"**llmcalc {report.command}** — {_headline(report)}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    lines += [f"\n> {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def _write_table(report: Report, chart: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich import box

    from rich.text import Text

    console = Console(highlight=False)
    header, body = _table_data(report)
    units = {**{k: v.unit for k, v in report.inputs.items()}, **{k: r.unit for k, r in report.results.items()}}
    table = Table(title=f"llmcalc {report.command}", box=box.SIMPLE_HEAD, title_justify="left")
    natural = sum(max([len(h)] + [len(row[i]) for row in body]) + 3 for i, h in enumerate(header))
    crowded = natural > console.width  # then numbers may wrap between value and unit, not vanish
    for h in header:
        if report.swept:
            text = units.get(h) == "str"
            # headers are keys: spaces let a narrow terminal wrap them between words; numbers never wrap
            widest = max((len(row[len(table.columns)]) for row in body), default=8)
            table.add_column(h.replace("_", " "), justify="left" if text else "right",
                             no_wrap=not text and not crowded, overflow="fold",
                             min_width=min(widest, 16 if crowded else 24) if text else None)
        else:
            table.add_column(h, justify="right" if h == "value" else "left",
                             style="dim" if h == "key" else None, overflow="fold",
                             no_wrap=h in ("value", "key"))
    for row in body:
        table.add_row(*row)
    console.print(table)
    console.print(Text(_headline(report), style="dim"))
    for note in report.notes:
        console.print(f"[dim]note:[/dim] {note}", markup=True)
    if chart and report.chart is not None:
        text = report.chart(report)
        if text:
            sys.stdout.write(text + "\n")


# ----------------------------------------------------------------------------------------------
# --explain

_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z_0-9]*\b")


def _num(v: Any) -> str:
    v = plain(v)
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return f"[{_num(v[0])} … {_num(v[-1])}]" if v else "[]"
    return str(v)


def substitute(row: Row) -> str:
    """The formula's text with each symbol replaced by the number put into it."""
    text = row.formula.text
    symbols = row.symbols

    def repl(m: re.Match) -> str:
        name = m.group(0)
        return _num(symbols[name]) if name in symbols else name

    return _IDENT.sub(repl, text).replace("·", " × ")


def explanation(report: Report) -> str:
    lines = ["", "How each result was computed" + (" (first sweep point shown)" if report.swept else "") + ":"]
    for key, row in report.results.items():
        value = _item(row.value, 0) if report.swept else row.value
        shown = fmt_value(value, row.unit)
        if row.formula is None:
            lines.append(f"  {row.label}: {key} = {shown}" + (f"   [{row.note}]" if row.note else ""))
            continue
        sym = {k: (_item(v, 0) if report.swept else v) for k, v in row.symbols.items()}
        sub = substitute(Row(value, row.unit, row.label, row.formula, sym))
        lines.append(f"  {row.label}:")
        lines.append(f"    {key} = {row.formula.text} = {sub} = {shown}")
        if row.note:
            lines.append(f"    ({row.note})")
    return "\n".join(lines) + "\n"


def combine(reports: list[Report]) -> Report:
    """Several reports of one command (one per model/GPU compared) as one report, one row per point."""
    first = reports[0]
    keys = [k for k in first.results if all(k in r.results for r in reports)]
    swept_inputs = [n for n in first.swept if all(n in r.inputs for r in reports)]
    rows: dict[str, list] = {"model": [], "gpu": []}
    cols: dict[str, list] = {n: [] for n in swept_inputs + keys}
    for r in reports:
        data = r.columns_plain() if r.swept else {
            **{n: [plain(r.inputs[n].value)] for n in swept_inputs}, **{k: [plain(r.results[k].value)] for k in keys}}
        n = r.points
        rows["model"] += [r.model.name if r.model is not None else ""] * n
        rows["gpu"] += [r.gpu.name if r.gpu is not None else ""] * n
        for name in cols:
            cols[name] += data[name] if name in data else [None] * n
    inputs = {name: Input(values, "str", name) for name, values in rows.items() if any(values)}
    inputs.update({n: Input(cols[n], first.inputs[n].unit, first.inputs[n].label) for n in swept_inputs})
    fixed = {k: v for k, v in first.inputs.items() if k not in inputs and
             all(k in r.inputs and plain(r.inputs[k].value) == plain(v.value) for r in reports)}
    results = Results()
    for k in keys:
        row = first.results[k]
        results.put(k, cols[k], row.unit, row.label)
    notes = list(dict.fromkeys(n for r in reports for n in r.notes))
    return Report(first.command, {**{k: inputs[k] for k in inputs}, **fixed}, results, swept=list(inputs),
                  columns=[c for c in (first.columns or keys) if c in keys], notes=notes)
