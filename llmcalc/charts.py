"""Terminal charts drawn as plain text cell by cell (no plotext, no NumPy, no Rich), and image files
(matplotlib, the optional ``plot`` extra). Each terminal function returns the chart as text; the renderer
prints it under a table.

Why this form. A terminal is a grid of cells, so the charts are laid out on that grid directly, where every
position is known and can be tested:

* A sweep of sizes (train-mem, kv, the histograms) is drawn as **horizontal bars**, one row per point, as
  ``dust`` and ``ncdu`` draw sizes: the row's label sits on the row it names however many points there are
  (vertical bars run out of columns for their labels), the parts are stacked left to right with one glyph
  each (▇ ▓ ▒ ░; ASCII ``# = + :``) so they read without colour, the total is printed at the end of the row,
  and a limit (the GPU's usable memory) is a marker column ┃ through every row plus a labelled tick.
* Curves (latency against throughput, the decode step over the batch, the roofline) are **line charts** on
  log or linear axes, drawn on a character canvas inside a box: a point outside the box is never drawn,
  each tick label is centred under its tick, and vertical markers (ridge, crossover, cache full) are one
  dotted column with their label in the legend.

plotext was used before; its bar charts put x labels on a scale of their own, let bars run past the frame
and drop thin stacked parts, so the layout is done here. Scale honesty: a nonzero part is drawn at least one
cell wide even when its true share is less (the legend says so), and the axis is linear from zero.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from typing import Callable, Sequence

from llmcalc.errors import InputError

_UNICODE = {"parts": "▇▓▒░", "v": "│", "h": "─", "tl": "┌", "tr": "┐", "bl": "└", "br": "┘", "tick_b": "┴",
            "tick_l": "┤", "limit": "┃", "limit_tick": "┻", "vline": "┊", "hline": "╌", "series": "•∘×+",
            "point": "◆", "over": "✗ over"}
_ASCII = {"parts": "#=+:", "v": "|", "h": "-", "tl": "+", "tr": "+", "bl": "+", "br": "+", "tick_b": "+",
          "tick_l": "+", "limit": "!", "limit_tick": "!", "vline": ":", "hline": "-", "series": "*ox%",
          "point": "@", "over": "x over"}
_COLOURS = ("38;5;33", "38;5;208", "38;5;70", "38;5;170")   # blue, orange, green, magenta (256-colour SGR)


def _width(width: int | None) -> int:
    if width is None:
        width = shutil.get_terminal_size((100, 24)).columns
    return max(40, min(160, int(width)))


def glyphs(stream=None) -> dict:
    """Block and box characters where the console can encode them, else ASCII stand-ins."""
    enc = getattr(stream if stream is not None else sys.stdout, "encoding", None) or "ascii"
    try:
        "".join(str(v) for v in _UNICODE.values()).encode(enc)
    except (UnicodeEncodeError, LookupError):
        return _ASCII
    return _UNICODE


def _colour_on() -> bool:
    return not os.environ.get("NO_COLOR") and sys.stdout.isatty()


def _paint(text: str, code: str | None, on: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if on and code and text.strip() else text


def _nice_step(span: float, most: int) -> float:
    raw = span / max(1, most)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _num(v: float) -> str:
    """Short tick text: 1.5k, 20M, 0.25, 3."""
    a = abs(v)
    for f, s in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= f:
            return f"{v / f:.3g}{s}"
    return f"{v:.3g}" if a else "0"


def _title(text: str, width: int) -> list[str]:
    import textwrap
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _wrap(entries: Sequence[str], width: int, sep: str = "  ") -> list[str]:
    """Legend entries joined by ``sep`` into lines no wider than ``width`` (an entry is never split)."""
    out, line = [], ""
    for e in entries:
        if line and len(line) + len(sep) + len(e) > width:
            out.append(line)
            line = ""
        line = f"{line}{sep}{e}" if line else e[:width]
    return out + ([line] if line else [])


def _legend_lines(entries: Sequence[str], width: int, paints: dict[str, str], colour: bool) -> list[str]:
    """Wrapped legend; with colour, each entry's glyph in its series' colour (wrapping counts plain text)."""
    out = _wrap(entries, width)
    if colour:
        for i, line in enumerate(out):
            for entry, code in paints.items():
                line = line.replace(entry, _paint(entry[0], code, True) + entry[1:], 1)
            out[i] = line
    return out


def _place_labels(row: list[str], items: Sequence[tuple[int, str]], offset: int = 0) -> list[tuple[int, str]]:
    """Write each (column, text) centred on its column into ``row`` where it fits without touching a
    neighbour; return the ones placed (column, text)."""
    placed, busy_to = [], -2
    for col, text in items:
        start = col + offset - len(text) // 2
        start = max(0, min(len(row) - len(text), start))
        if start <= busy_to + 1 or start < 0:
            continue
        row[start:start + len(text)] = list(text)
        busy_to = start + len(text) - 1
        placed.append((col, text))
    return placed


# ----------------------------------------------------------------------------------------------
# Horizontal stacked bars: one row per sweep point


def part_cells(values: Sequence[float], top: float, cells: int) -> list[int]:
    """Cells for each stacked part: the cumulative sum rounded (so the total is honest to half a cell),
    then every nonzero part widened to one cell, taken back from the widest part so the row fits."""
    out, cum, prev = [], 0.0, 0
    for v in values:
        cum += max(0.0, float(v))
        end = int(round(cum / top * cells)) if top > 0 else 0
        out.append(end - prev)
        prev = end
    for i, v in enumerate(values):
        if v > 0 and out[i] == 0:
            out[i] = 1
    while sum(out) > cells:
        out[out.index(max(out))] -= 1
    return out


def hbars(labels: Sequence[str], series: dict[str, Sequence[float]], title: str, unit: str = "",
          limit: float | None = None, limit_label: str = "limit", axis_label: str = "",
          fmt: Callable[[float], str] | None = None, width: int | None = None, stream=None) -> str:
    """Rows of stacked horizontal bars (one per label) with the total at the end and an optional limit.

    ``series`` maps a part name to one value per label, all in ``unit``; the scale is linear from 0 to
    max(largest total, limit)."""
    g = glyphs(stream)
    colour = _colour_on()
    width = _width(width)
    fmt = fmt or (lambda v: f"{v:.3g}" + (f" {unit}" if unit else ""))
    series = {k: [float(x) if math.isfinite(float(x)) and float(x) > 0 else 0.0 for x in v]
              for k, v in series.items()}
    slot = {name: i % 4 for i, name in enumerate(series)}     # a part keeps its glyph when another is empty
    names = [n for n, v in series.items() if any(x > 0 for x in v)] or list(series)[:1]
    n = len(labels)
    totals = [sum(series[k][i] for k in names) for i in range(n)]
    top = max(totals + ([limit] if limit and limit > 0 else []) + [0.0]) or 1.0
    over = [limit is not None and t > limit for t in totals]
    values = [fmt(t) + ("  " + g["over"] if o else "") for t, o in zip(totals, over)]
    lw = min(width // 3, max([len(s) for s in labels] + [len(axis_label)]))
    labels = [s if len(s) <= lw else s[:lw - 1] + "…" for s in labels]
    axis_label = axis_label[:lw]
    vw = max(len(v) for v in values)
    cells = width - lw - 1 - 2 - 1 - vw
    if cells < 10:
        cells, vw = 10, max(0, width - lw - 14)
    lim_col = None
    if limit is not None and limit > 0:
        lim_col = min(cells - 1, int(round(limit / top * cells)))
    lines = _title(title, width)
    legend = [f"{g['parts'][slot[name]]} {name}" for name in names]
    if lim_col is not None:
        legend.append(f"{g['limit']} {limit_label} {fmt(limit)}")
    legend.append("(scale linear from 0; a nonzero part is drawn at least one cell wide)")
    lines += _legend_lines(legend, width, {f"{g['parts'][slot[name]]} {name}": _COLOURS[slot[name]]
                                           for name in names}, colour)
    lines.append(" " * lw + " " + g["tl"] + g["h"] * cells + g["tr"])
    for i in range(n):
        row = [" "] * cells
        spans = []
        col = 0
        for name, w in zip(names, part_cells([series[k][i] for k in names], top, cells)):
            for c in range(col, col + w):
                row[c] = g["parts"][slot[name]]
            spans.append((col, col + w, slot[name]))
            col += w
        if lim_col is not None and row[lim_col] == " ":
            row[lim_col] = g["limit"]
        text = "".join(row)
        if colour:
            pieces = [_paint(text[a:b], _COLOURS[j], True) for a, b, j in spans]
            text = "".join(pieces) + text[col:]
        lines.append(f"{labels[i]:>{lw}} {g['v']}{text}{g['v']} {values[i][:vw] if vw else ''}".rstrip())
    axis = [g["h"]] * cells
    ticks = []
    step = _nice_step(top, max(2, cells // 9))
    k = 0
    while k * step <= top * (1 + 1e-9):
        c = min(cells - 1, int(round(k * step / top * cells)))
        axis[c] = g["tick_b"]
        ticks.append((c, _num(k * step)))
        k += 1
    if lim_col is not None:
        axis[lim_col] = g["limit_tick"]
    lines.append(f"{axis_label:>{lw}} {g['bl']}{''.join(axis)}{g['br']}")
    tick_row = [" "] * (cells + 2)
    _place_labels(tick_row, ticks, offset=1)
    ticks_line = " " * (lw + 1) + "".join(tick_row).rstrip()
    if unit and len(ticks_line) + 2 + len(unit) <= width:
        ticks_line += "  " + unit
    lines.append(ticks_line)
    return "\n".join(lines)


def memory_by_sweep(report, parts: dict[str, str], what: str, limit_note: str = "usable {usable} GiB") -> str:
    """Stacked memory parts (``parts``: legend name -> result key, in bytes) against a report's swept input(s),
    in GiB, with the GPU's usable memory (``usable_memory_bytes``) as the limit: kv's and train-mem's chart."""
    import numpy as np

    from llmcalc.units import fmt_value

    n, rows = report.points, report.results
    if any(key not in rows for key in parts.values()):
        return ""
    series = {name: np.broadcast_to(np.asarray(rows[key].value, dtype=float), (n,)) / 2**30
              for name, key in parts.items()}
    labels = [" × ".join(fmt_value(float(np.asarray(report.inputs[name].value).ravel()[i]), "count")
                       for name in report.swept) for i in range(n)]   # in the order of the axis label
    title = f"{what} (GiB) by " + " × ".join(report.swept)
    usable = None
    if report.gpu is not None and "usable_memory_bytes" in rows:
        usable = float(np.asarray(rows["usable_memory_bytes"].value).ravel()[0]) / 2**30
        title += "; " + limit_note.format(gpu=report.gpu.name, usable=f"{usable:.3g}")
    return hbars(labels, series, title, "GiB", limit=usable, limit_label="usable", axis_label=" × ".join(report.swept))


def stacked_bars(labels: Sequence[str], series: dict[str, Sequence[float]], title: str, ylabel: str,
                 **kw) -> str:
    """Compatibility name: a sweep of stacked parts as horizontal bars (``ylabel`` is the value unit)."""
    return hbars(labels, series, title, unit=ylabel, **kw)


# ----------------------------------------------------------------------------------------------
# Line charts on a character canvas


class _Axis:
    def __init__(self, lo: float, hi: float, cells: int, log: bool):
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        if hi <= lo:
            hi = lo + 1.0
        self.lo, self.hi, self.cells, self.log = lo, hi, cells, log

    def pos(self, v: float) -> float | None:
        """Fractional cell position (0 .. cells-1), or None when v cannot be placed."""
        if v is None or not math.isfinite(v) or (self.log and v <= 0):
            return None
        u = math.log10(v) if self.log else v
        return (u - self.lo) / (self.hi - self.lo) * (self.cells - 1)

    def cell(self, v: float) -> int | None:
        p = self.pos(v)
        if p is None:
            return None
        c = int(round(p))
        return c if 0 <= c < self.cells else None

    def ticks(self, most: int) -> list[float]:
        if self.log:
            a, b = math.ceil(self.lo - 1e-9), math.floor(self.hi + 1e-9)
            step = max(1, -(-(b - a + 1) // max(1, most)))
            out = [10.0 ** e for e in range(a, b + 1, step)]
            if self.hi - self.lo < 2.5:          # under three decades: also 2 and 5 of each
                out = sorted(m * 10.0 ** e for e in range(a - 1, b + 1) for m in (1, 2, 5)
                             if self.lo - 1e-9 <= math.log10(m * 10.0 ** e) <= self.hi + 1e-9)
            return out
        step = _nice_step(self.hi - self.lo, most)
        first = math.ceil(self.lo / step - 1e-9)
        return [k * step for k in range(first, int(math.floor(self.hi / step + 1e-9)) + 1)]


def _bounds(vals: list[float], log: bool) -> tuple[float, float]:
    v = [x for x in vals if x is not None and math.isfinite(x) and (x > 0 or not log)]
    if not v:
        return (1.0, 10.0) if log else (0.0, 1.0)
    lo, hi = min(v), max(v)
    if log:
        return lo / 1.3, hi * 1.3
    pad = (hi - lo) * 0.05 or abs(hi) * 0.1 or 1.0
    return (0.0 if lo >= 0 and lo - pad < 0 else lo - pad), hi + pad


def lines(x: Sequence[float], series: dict[str, Sequence[float]], title: str, xlabel: str, ylabel: str,
          logx: bool = False, logy: bool = False, points: dict[str, tuple[float, float]] | None = None,
          hlines: dict[str, float] | None = None, vlines: dict[str, float] | None = None,
          xs: dict[str, Sequence[float]] | None = None, glyph: dict[str, str] | None = None,
          ylim: tuple[float, float] | None = None, xlim: tuple[float, float] | None = None,
          height: int = 16, width: int | None = None, stream=None, points_name: str = "points") -> str:
    """Line chart of several series over one x axis (or each over its own ``xs[name]``), with labelled
    points, horizontal lines and vertical markers, all clipped to the frame."""
    g = glyphs(stream)
    colour = _colour_on()
    width = _width(width)
    xv = {k: [float(t) for t in (xs or {}).get(k, x)] for k in series}
    yv = {k: [float(t) for t in v] for k, v in series.items()}
    allx = [t for v in xv.values() for t in v] + [p[0] for p in (points or {}).values()]
    ally = [t for v in yv.values() for t in v] + [p[1] for p in (points or {}).values()] + list((hlines or {}).values())
    x0, x1 = xlim or _bounds(allx, logx)
    y0, y1 = ylim or _bounds(ally, logy)
    ytick_vals = _Axis(y0, y1, height, logy).ticks(max(2, height // 4))
    yw = max(len(_num(t)) for t in ytick_vals) if ytick_vals else 1
    cols = width - yw - 2
    X, Y = _Axis(x0, x1, cols, logx), _Axis(y0, y1, height, logy)
    grid = [[" "] * cols for _ in range(height)]
    paint = [[None] * cols for _ in range(height)]

    def put(col, row, ch, code=None, over=True):
        if col is None or row is None or not (0 <= col < cols and 0 <= row < height):
            return
        if over or grid[row][col] == " ":
            grid[row][col] = ch
            paint[row][col] = code

    def yrow(v):
        c = Y.cell(v)
        return None if c is None else height - 1 - c

    legend, paints = [], {}
    for i, (name, level) in enumerate((hlines or {}).items()):
        r = yrow(level)
        for c in range(cols):
            put(c, r, g["hline"], over=False)
        legend.append(f"{g['hline'] * 2} {name}")
    for name, at in (vlines or {}).items():
        c = X.cell(at)
        for r in range(height):
            put(c, r, g["vline"], over=False)
        legend.append(f"{g['vline']} {name}" + ("" if c is not None else " (off the chart)"))
    for i, name in enumerate(series):
        ch = (glyph or {}).get(name) or g["series"][i % len(g["series"])]
        code = _COLOURS[i % 4]
        pts = [(X.pos(a), Y.pos(b)) for a, b in zip(xv[name], yv[name])]
        for (ax, ay), (bx, by) in zip(pts, pts[1:]):
            if None in (ax, ay, bx, by):
                continue
            steps = int(max(abs(bx - ax), abs(by - ay)) * 2) + 1
            for s in range(steps + 1):
                t = s / steps
                put(int(round(ax + (bx - ax) * t)), height - 1 - int(round(ay + (by - ay) * t)), ch, code)
        if len(pts) == 1 and None not in pts[0]:
            put(int(round(pts[0][0])), height - 1 - int(round(pts[0][1])), ch, code)
        if not name.startswith("_"):          # "_name": a second piece of a series already in the legend
            legend.append(f"{ch} {name}")
            paints[f"{ch} {name}"] = code
    hidden = []
    labels = []
    for name, (px, py) in (points or {}).items():
        c, r = X.cell(px), yrow(py)
        if c is None or r is None:
            hidden.append(name)
            continue
        put(c, r, g["point"], "1")
        labels.append((c, r, name))
    free = (" ", g["hline"], g["vline"])
    for c, r, name in labels:
        # beside the point on its own row (right, then left), else centred just above or below it
        spots = [(r, c + 2), (r, c - 1 - len(name))]
        spots += [(rr, start) for rr in (r - 1, r + 1) for start in (c - len(name) // 2, c + 1, c - len(name))]
        for rr, start in spots:
            if not (0 <= rr < height and 0 <= start and start + len(name) <= cols):
                continue
            if all(ch in free for ch in grid[rr][max(0, start - 1):start + len(name) + 1]):
                for k, ch in enumerate(name):
                    grid[rr][start + k] = ch
                    paint[rr][start + k] = "1"
                break
        else:
            hidden.append(name)
    legend += [f"{g['point']} {points_name}"] if points else []
    out = _title(title, width) + _legend_lines(legend, width, paints, colour)
    if hidden:
        out += _wrap(["not drawn (no room or off the chart):"] + hidden, width, sep=" ")
    out.append(ylabel[:width])
    out.append(" " * yw + g["tl"] + g["h"] * cols + g["tr"])
    ticks_at = {yrow(t): _num(t) for t in ytick_vals if yrow(t) is not None}
    for r in range(height):
        body = "".join(_paint(grid[r][c], paint[r][c], colour) for c in range(cols))
        left = g["tick_l"] if r in ticks_at else g["v"]
        out.append(f"{ticks_at.get(r, ''):>{yw}}{left}{body}{g['v']}")
    axis = [g["h"]] * cols
    xt = []
    for t in X.ticks(max(2, cols // 10)):
        c = X.cell(t)
        if c is not None:
            axis[c] = g["tick_b"]
            xt.append((c, _num(t)))
    out.append(" " * yw + g["bl"] + "".join(axis) + g["br"])
    row = [" "] * (cols + 2)
    _place_labels(row, xt, offset=1)
    out.append(" " * yw + "".join(row).rstrip())
    out.append(" " * yw + f"{xlabel:^{cols + 2}}".rstrip())
    return "\n".join(out)


def require_matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise InputError("writing an image needs matplotlib: pip install 'llmcalc[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    return pyplot


def check_image_path(path: str) -> str:
    if not path.lower().endswith((".png", ".svg", ".pdf")):
        raise InputError(f"--plot {path!r}: the file name must end in .png, .svg or .pdf")
    return path


# ----------------------------------------------------------------------------------------------
# Roofline (log-log): attainable FLOP/s against arithmetic intensity, both ceilings, labelled points


def _roofline_range(peak: float, bw: float, intensities: Sequence[float],
                    extra_ceilings: dict[str, float] | None) -> tuple[float, float]:
    import math
    ridge = peak / bw
    xs = [ridge] + [float(i) for i in intensities if i and math.isfinite(i) and i > 0]
    xs += [peak / b for b in (extra_ceilings or {}).values() if b > 0]
    lo = 10 ** math.floor(math.log10(min(xs) / 4))
    hi = 10 ** math.ceil(math.log10(max(xs) * 4))
    return lo, hi


def _geom(lo: float, hi: float, n: int = 200) -> list[float]:
    import math
    a, b = math.log10(lo), math.log10(hi)
    return [10 ** (a + (b - a) * i / (n - 1)) for i in range(n)]


def roofline(peak: float, bw: float, points: Sequence[tuple[str, float]], title: str,
             extra_ceilings: dict[str, float] | None = None, width: int | None = None, stream=None) -> str:
    """Terminal roofline: x = FLOP/byte, y = TFLOP/s, both log. ``points`` are (label, intensity); each sits
    on the roof min(peak, I·bw) (Williams, Waterman & Patterson 2009, eq. 1). ``extra_ceilings``: other
    bandwidth diagonals (e.g. L2) by name."""
    ridge = peak / bw
    lo, hi = _roofline_range(peak, bw, [i for _, i in points], extra_ceilings)
    xs = _geom(lo, hi, 60)
    T = 1e12
    ymin, ymax = min(peak, lo * bw) / T, peak / T * 3
    series = {"roof": [min(peak, v * bw) / T for v in xs]}
    ceil_x = [v for v in xs if v > ridge and v * bw <= peak * 3] + [v for v in xs if v < ridge]
    ceil_y = [v * bw / T for v in xs if v > ridge and v * bw <= peak * 3] + [peak / T for v in xs if v < ridge]
    # the two ceilings past the ridge, drawn as separate runs so no segment joins them
    runs = {"ceilings": (ceil_x, ceil_y)}
    for name, b in (extra_ceilings or {}).items():
        pts = [v for v in xs if v * b <= peak]
        if pts:
            runs[f"{name} ceiling"] = (pts, [v * b / T for v in pts])
    g = glyphs(stream)
    xsd = {"roof": xs}
    glyph = {"roof": g["series"][0], "ceilings": "·" if g is _UNICODE else "."}
    for name, (px, py) in runs.items():
        if name == "ceilings":
            # two pieces: the memory diagonal past the ridge and the compute flat before it
            k = sum(1 for v in px if v > ridge)
            series["ceilings"], xsd["ceilings"] = py[:k], px[:k]
            series["_ceilings"], xsd["_ceilings"] = py[k:], px[k:]
            glyph["_ceilings"] = glyph["ceilings"]
        else:
            series[name], xsd[name] = py, px
    pts = {}
    for label, i in points:
        if i and i > 0:
            pts[label] = (i, min(peak, i * bw) / T)
    return lines(xs, series, f"{title} · {peak / T:.4g} TFLOP/s · {bw / 1e12:.3g} TB/s · ridge {ridge:.4g} FLOP/B",
                 "arithmetic intensity (FLOP/byte), log", "TFLOP/s", logx=True, logy=True, points=pts,
                 vlines={f"ridge {ridge:.4g} FLOP/B": ridge}, xs=xsd, glyph=glyph, xlim=(lo, hi),
                 ylim=(ymin, ymax), height=18, width=width, stream=stream, points_name="operating points")


def roofline_image(path: str, peak: float, bw: float, points: Sequence[tuple[str, float]], title: str,
                   extra_ceilings: dict[str, float] | None = None) -> None:
    """The same roofline as an image (PNG/SVG/PDF) through matplotlib (the ``plot`` extra)."""
    plt = require_matplotlib()
    check_image_path(path)
    lo, hi = _roofline_range(peak, bw, [i for _, i in points], extra_ceilings)
    xs = _geom(lo, hi, 400)
    T = 1e12
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    ax.plot(xs, [min(peak, x * bw) / T for x in xs], lw=2.5, color="black",
            label=f"roof min(π, β·I): π = {peak / T:.4g} TFLOP/s, β = {bw / 1e12:.3g} TB/s")
    ax.plot(xs, [x * bw / T for x in xs], ls="--", lw=1, color="tab:blue", label="memory ceiling β·I (HBM)")
    ax.axhline(peak / T, ls="--", lw=1, color="tab:red", label="compute ceiling π")
    for (name, b), color in zip((extra_ceilings or {}).items(), ("tab:green", "tab:purple", "tab:olive")):
        ax.plot(xs, [min(peak, x * b) / T for x in xs], ls=":", lw=1.2, color=color,
                label=f"{name} ceiling ({b / 1e12:.3g} TB/s)")
    ridge = peak / bw
    ax.axvline(ridge, ls=":", lw=1, color="gray")
    ax.annotate(f"ridge {ridge:.4g} FLOP/B", (ridge, min(peak, lo * bw) / T / 2), textcoords="offset points",
                xytext=(4, 6), fontsize=8, color="gray", rotation=90)
    for k, (label, i) in enumerate(points):
        if not (i and i > 0):
            continue
        y = min(peak, i * bw) / T
        ax.scatter([i], [y], s=36, zorder=5, color="tab:orange", edgecolor="black")
        ax.annotate(label, (i, y), textcoords="offset points", xytext=(6, -12 if k % 2 else 6), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(min(peak, lo * bw) / T / 2, peak / T * 3)
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("attainable TFLOP/s")
    ax.set_title(title)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def lines_image(path: str, x: Sequence[float], series: dict[str, Sequence[float]], title: str, xlabel: str,
                ylabel: str, logx: bool = False, logy: bool = False,
                vlines: dict[str, float] | None = None) -> None:
    """Line chart to an image file (e.g. the decode batch sweep), with labelled vertical markers."""
    plt = require_matplotlib()
    check_image_path(path)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for name, ys in series.items():
        ax.plot(list(map(float, x)), list(map(float, ys)), marker="o", ms=3, label=name)
    for name, v in (vlines or {}).items():
        ax.axvline(v, ls=":", color="gray")
        ax.annotate(name, (v, 0.95), xycoords=("data", "axes fraction"), fontsize=8, rotation=90,
                    ha="right", va="top")
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
