"""The explorer's simulations, computed by the CLI's own commands (no Textual here, so it is testable alone).

A screen's state is a list of flag values; ``argv`` turns it into the command line a user would type, and
``run`` gives that command's answer through the Python API (``llmcalc.api.run``, on the same command
function as the CLI): ``.to_dict()`` is its ``--json`` output. No copy of any formula lives here.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from typing import Callable

from llmcalc.errors import InputError  # noqa: F401 - what run() raises, for callers


def _pow2(lo: int, hi: int) -> list[str]:
    out, v = [], lo
    while v <= hi:
        out.append(str(v))
        v *= 2
    return out


@dataclass
class Param:
    flag: str            # the CLI flag, e.g. "--batch"
    label: str
    values: list[str]    # the choices a key press steps through, as the CLI takes them
    index: int = 0

    @property
    def value(self) -> str:
        return self.values[self.index]

    def step(self, delta: int) -> bool:
        new = min(max(self.index + delta, 0), len(self.values) - 1)
        changed = new != self.index
        self.index = new
        return changed

    def set(self, value: str) -> None:
        if value in self.values:
            self.index = self.values.index(value)


@dataclass
class Sim:
    key: str                     # short id: bound, operator, train-mem, kv, specdec, serve
    title: str
    command: str
    params: list[Param]
    keys: list[str]              # result keys shown, in order
    uses_model: bool = True
    uses_gpu: bool = True
    extra: Callable[["Sim"], list[str]] = lambda sim: []   # fixed flags that depend on the state
    sweep: str | None = None     # a flag whose whole range is run as a sweep for the chart

    def flags(self) -> list[str]:
        out = []
        for p in self.params:
            if p.flag.startswith("--"):
                out += [p.flag, p.value]
        return out + self.extra(self)

    def param(self, flag: str) -> Param:
        return next(p for p in self.params if p.flag == flag)


def _operator_flags(sim: Sim) -> list[str]:
    op, rows, size = sim.param("op").value, sim.param("rows").value, sim.param("size").value
    if op == "matmul":
        return ["--op", "matmul", "--m", rows, "--k", size, "--n", size]
    if op == "softmax":
        return ["--op", "softmax", "--m", rows, "--n", size]
    return ["--op", "attention", "--batch", rows, "--seq", size, "--heads", "32", "--head-dim", "128"]


def simulations() -> list[Sim]:
    """One simulation per seed chapter, each with the flags a key press changes."""
    return [
        Sim("bound", "Compute or memory bound as batch grows", "roofline",
            [Param("--batch", "batch", _pow2(1, 1024), 3), Param("--seq", "context", _pow2(256, 131072), 2),
             Param("--phase", "phase", ["decode", "prefill"]), Param("--dtype", "dtype", ["bf16", "fp8", "fp32"])],
            ["intensity", "ridge_intensity", "attainable_flops", "fraction_of_peak", "time_seconds", "bound",
             "crossover_batch", "weights_read_bytes", "kv_read_bytes", "max_batch", "fits"], sweep="--batch"),
        Sim("operator", "An operator on the roofline", "roofline",
            [Param("op", "operator", ["matmul", "softmax", "attention"]),
             Param("rows", "rows / batch", _pow2(1, 8192), 0), Param("size", "size (K=N / seq)", _pow2(128, 65536), 5),
             Param("--dtype", "dtype", ["bf16", "fp8", "fp32"])],
            ["flops", "bytes", "intensity", "ridge_intensity", "attainable_flops", "time_seconds", "bound",
             "naive_bytes", "naive_intensity", "naive_time_seconds", "naive_bound", "flash_traffic_reduction"],
            uses_model=False, extra=_operator_flags),
        Sim("train-mem", "Training memory, part by part", "train-mem",
            [Param("--batch", "micro-batch", _pow2(1, 256), 0), Param("--seq", "sequence", _pow2(256, 131072), 4),
             Param("--precision", "precision", ["mixed", "bf16", "fp32", "fp8"]),
             Param("--zero", "ZeRO stage", ["0", "1", "2", "3"]), Param("--dp", "data parallel", _pow2(1, 1024)),
             Param("--recompute", "recompute", ["none", "selective", "full"])],
            ["weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "total_bytes",
             "usable_memory_bytes", "headroom_bytes", "fits"], sweep="--batch"),
        Sim("kv", "KV cache against context and batch", "kv",
            [Param("--batch", "batch", _pow2(1, 1024), 0), Param("--seq", "context", _pow2(256, 1048576), 5),
             Param("--kv-dtype", "KV format", ["bf16", "fp8", "int8", "int4", "fp32"]),
             Param("--weight-dtype", "weights", ["bf16", "fp8", "int8", "int4"])],
            ["kv_bytes_per_token", "kv_bytes", "weights_bytes", "total_bytes", "usable_memory_bytes", "max_batch",
             "max_tokens", "fits"], sweep="--seq"),
        Sim("specdec", "Speculative decoding over α and k", "specdec",
            [Param("--alpha", "acceptance α", [f"{a / 100:g}" for a in range(5, 100, 5)], 15),
             Param("--k", "draft tokens k", [str(k) for k in range(1, 17)], 3),
             Param("--cost-ratio", "draft cost c", ["0.01", "0.02", "0.05", "0.1", "0.2", "0.3", "0.5"], 2)],
            ["expected_tokens_per_step", "speedup", "optimal_k", "optimal_speedup", "speculation_pays",
             "break_even_alpha"], uses_model=False, uses_gpu=False, sweep="--k"),
        Sim("serve", "One request's timeline, throughput against batch", "serve",
            [Param("--batch", "batch", _pow2(1, 512), 0), Param("--prompt", "prompt", _pow2(16, 65536), 6),
             Param("--gen", "generated", _pow2(16, 16384), 4),
             Param("--weight-dtype", "weights", ["bf16", "fp8", "int8", "int4"])],
            ["prefill_seconds", "decode_seconds_per_token", "e2e_seconds", "decode_tokens_per_second",
             "throughput_tokens_per_second", "prefill_bound", "decode_bound", "kv_bytes", "max_batch", "fits"],
            sweep="--batch"),
    ]


@dataclass
class State:
    """The explorer's whole state: the model, the GPU, and each simulation's flag values."""
    model: str = "llama-3.1-8b"
    gpu: str = "h100-sxm"
    sims: list[Sim] = field(default_factory=simulations)
    current: int = 0

    @property
    def sim(self) -> Sim:
        return self.sims[self.current]

    def argv(self, sim: Sim | None = None) -> list[str]:
        sim = sim or self.sim
        out = [sim.command]
        if sim.uses_model:
            out += ["-m", self.model]
        if sim.uses_gpu:
            out += ["-g", self.gpu]
        return out + sim.flags()

    def one_liner(self) -> str:
        return "llmcalc " + shlex.join(self.argv())


def run(argv: list[str]):
    """Run ``llmcalc ARGV`` through the Python API (``llmcalc.api.run``, the function the CLI command itself
    calls) and return its ``Result``: ``.to_dict()`` is what ``--json`` prints, ``.explain(key)`` the
    ``--explain`` text. Bad input raises InputError with the CLI's message."""
    from llmcalc.api import run as api_run

    kwargs = {}
    for flag, value in zip(argv[1::2], argv[2::2]):
        kwargs[{"-m": "model", "-g": "gpu"}.get(flag, flag.lstrip("-").replace("-", "_"))] = value
    return api_run(argv[0], **kwargs)


def report_of(result):
    """The ``Report`` behind a result: each value with its unit kind and label, as the CLI's table shows
    it (the API's public mapping holds the JSON values, without units)."""
    return result._report


def shown(report, key: str) -> str:
    """A result as the explorer displays it: the number with its unit (the CLI table's formatting)."""
    from llmcalc.units import fmt_value
    row = report.results.get(key)
    return "—" if row is None else fmt_value(row.value, row.unit)


def explain(result, key: str) -> str:
    """The --explain text of one result (label, formula, the numbers put into it, the value), each step of
    ``key = formula = numbers = value`` on its own line to fit a narrow panel."""
    try:
        text = result.explain(key)
    except KeyError:
        return f"{key}: not computed here"
    out = []
    for line in text.splitlines():
        if line.startswith(f"  {key} = "):  # key = formula = numbers = value
            formula, *steps = line[len(key) + 5:].split(" = ")
            out.append(f"  {key} = {formula}" + "".join(f"\n{' ' * 7}= {step}" for step in steps))
        elif f": {key} = " in line:  # "label: key = value", a result with no formula
            label, value = line.split(f": {key} = ", 1)
            out.append(f"{label}:\n  {key} = {value}")
        else:
            out.append(line)
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------
# Charts as plain text: shapes and letters carry the meaning, so they read without colour (NO_COLOR)


def _bar(parts: list[tuple[str, float]], limit: float | None, width: int, scale: float | None = None) -> str:
    """A stacked horizontal bar: each part drawn with its letter, every non-zero part at least one cell, and
    a `|` where the limit falls (``scale``: the value of the full width, shared by the rows of a chart)."""
    scale_to = scale or max(sum(v for _, v in parts), limit or 0) or 1.0
    cells = "".join(ch * (max(int(round(v / scale_to * width)), 1) if v > 0 else 0) for ch, v in parts)
    if limit:
        pos = min(int(round(limit / scale_to * width)), width - 1)
        if sum(v for _, v in parts) > limit and len(cells) <= pos + 1:
            cells = cells.ljust(pos + 2, cells[-1])  # over the limit: the bar visibly passes the line
    line = cells[:width].ljust(width)
    if limit:
        line = line[:pos] + "|" + line[pos + 1:]
    return line


def roofline_chart(report, width: int = 56, height: int = 9, trail: list[float] = ()) -> str:
    """The roofline on log axes: `*` the roof, `|` the ridge, `O` the operating point (`N` naive attention,
    `o` the other points of ``trail``, e.g. every batch size)."""
    r = report.results
    peak, bw = float(r["peak_flops"].value), float(r["bandwidth"].value)
    ridge = peak / bw
    points = [("o", float(i)) for i in trail] + [("O", float(r["intensity"].value))]
    if "naive_intensity" in r and r["naive_intensity"].value is not None:
        points.insert(0, ("N", float(r["naive_intensity"].value)))
    lo = math.floor(math.log10(min([ridge / 1000] + [p for _, p in points if p > 0])))
    hi = math.ceil(math.log10(max([ridge * 100] + [p for _, p in points])))
    ylo = math.log10(min(peak, 10 ** lo * bw))
    yhi = math.log10(peak)

    def col(i: float) -> int:
        return min(width - 1, max(0, int(round((math.log10(i) - lo) / (hi - lo) * (width - 1)))))

    def row(f: float) -> int:
        return min(height - 1, max(0, int(round((yhi - math.log10(f)) / (yhi - ylo) * (height - 1)))))

    grid = [[" "] * width for _ in range(height)]
    rc = col(ridge)
    for y in range(height):
        grid[y][rc] = "|"
    for x in range(width):
        i = 10 ** (lo + x / (width - 1) * (hi - lo))
        grid[row(min(peak, i * bw))][x] = "*"
    for ch, i in points:
        if i > 0:
            grid[row(min(peak, i * bw))][col(i)] = ch
    lines = ["".join(g) for g in grid]
    axis = f"10^{lo} FLOP/B".ljust(rc - 3)[: max(rc - 3, 0)] + f"ridge {ridge:.0f}"
    axis = axis.ljust(width - 9)[: width - 9] + f"10^{hi}".rjust(9)
    marks = {ch for ch, _ in points}
    return "\n".join(lines + ["-" * width, axis,
                              "O this point" + ("  N naive attention" if "N" in marks else "")
                              + ("  o other batches" if "o" in marks else "") + "  * roof  | ridge"])


def stacked_chart(report, parts: list[tuple[str, str, str]], limit_key: str, width: int = 56) -> str:
    """One stacked bar of memory parts (letter, key, name) with the GPU's usable-memory limit as `|`."""
    from llmcalc.units import fmt_value
    r = report.results
    vals = [(ch, float(r[k].value or 0)) for ch, k, _ in parts]
    limit = r[limit_key].value if limit_key in r else None
    line = _bar(vals, float(limit) if limit else None, width)
    legend = "  ".join(f"{ch} {name} {fmt_value(r[k].value, r[k].unit)}" for ch, k, name in parts)
    tail = f"| usable GPU memory {fmt_value(limit, r[limit_key].unit)}" if limit else "(no GPU: no limit line)"
    return "\n".join(["[" + line + "]", legend, tail])


def sweep_chart(report, key: str, flag: str, current: str, width: int = 40) -> str:
    """One bar per sweep point (`dust`-style): the swept value, a bar, the value; `>` marks the current point."""
    from llmcalc.units import fmt_value
    name = flag.lstrip("-").replace("-", "_")
    rows = report.row_dicts()
    unit = report.results[key].unit
    vals = [float(row[key] or 0) for row in rows]
    top = max(vals) or 1.0
    out = []
    for row, v in zip(rows, vals):
        mark = ">" if str(row[name]) == current else " "
        n = max(1, int(round(v / top * width))) if v > 0 else 0
        out.append(f"{mark}{str(row[name]):>6} {'#' * n:<{width}} {fmt_value(row[key], unit)}")
    return "\n".join(out)


def rows_chart(report, swept, parts: list[tuple[str, str, str]], flag: str, current: str, title: str,
               width: int = 36) -> str:
    """The parts (letter, key, name) stacked at each point of a sweep, on one scale, with the GPU's usable
    memory as `|` on every row (`+`: clipped beyond 4x that); `>` marks the current point."""
    from llmcalc.units import fmt_value
    name = flag.lstrip("-").replace("-", "_")
    rows = swept.row_dicts()
    limit = report.results["usable_memory_bytes"].value
    unit = report.results[parts[0][1]].unit
    totals = [sum(float(r[k] or 0) for _, k, _ in parts) for r in rows]
    top = max(totals + [float(limit or 0)])
    shown_top = min(top, 4 * float(limit)) if limit else top
    legend = stacked_chart(report, parts, "usable_memory_bytes", width).splitlines()[1:]
    out = [title] + legend
    for r, total in zip(rows, totals):
        mark = ">" if str(r[name]) == current else " "
        bar = _bar([(ch, float(r[k] or 0)) for ch, k, _ in parts], limit and float(limit), width, shown_top)
        out.append(f"{mark}{r[name]:>8} {bar}{'+' if total > shown_top else ' '}{fmt_value(total, unit)}")
    return "\n".join(out)


def _swept(state: State):
    """The current command with the simulation's sweep flag given its whole range (one run, one row each)."""
    sim = state.sim
    argv = state.argv()
    argv[argv.index(sim.sweep) + 1] = ",".join(sim.param(sim.sweep).values)
    return report_of(run(argv))


def chart(state: State, report) -> str:
    """The current simulation's picture, from its report (and, for sweeps, one more run of the same command)."""
    sim = state.sim
    if sim.key == "bound":
        trail = [row["intensity"] for row in _swept(state).row_dicts() if row["intensity"]]
        return roofline_chart(report, trail=trail)
    if sim.command == "roofline":
        return roofline_chart(report)
    if sim.key == "train-mem":
        return rows_chart(report, _swept(state),
                          [("W", "weights_bytes", "weights"), ("G", "gradients_bytes", "gradients"),
                           ("O", "optimizer_bytes", "optimizer"), ("A", "activations_bytes", "activations")],
                          "--batch", sim.param("--batch").value, "training memory per GPU against micro-batch:")
    if sim.key == "kv":
        return rows_chart(report, _swept(state), [("W", "weights_bytes", "weights"),
                                                            ("K", "kv_bytes", "KV cache")],
                          "--seq", sim.param("--seq").value, "weights + KV cache against context, at this batch:")
    if sim.sweep:
        p = sim.param(sim.sweep)
        swept = _swept(state)
        if sim.key == "specdec":
            return "speed-up over k at this α and c:\n" + sweep_chart(swept, "speedup", "--k", p.value)
        r = report.results
        pre, e2e = float(r["prefill_seconds"].value), float(r["e2e_seconds"].value)
        n = max(1, int(round(pre / e2e * 40))) if e2e else 0
        timeline = "one request: [" + "P" * n + "D" * (40 - n) + f"]  P prefill {shown(report, 'prefill_seconds')}" \
                   f", D decode; end to end {shown(report, 'e2e_seconds')}"
        return timeline + "\nthroughput against batch:\n" + sweep_chart(swept, "throughput_tokens_per_second",
                                                                         "--batch", p.value, width=30)
    return ""
