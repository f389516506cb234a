"""The charts under `llmcalc specdec`'s table: the simulated length histogram, a heat map of speedup over
α × k, or a line over one swept input. Loaded only when a table with a chart is drawn."""

from __future__ import annotations


def chart(report) -> str:
    """The chart for a specdec report (empty when there is nothing to draw)."""
    parts = []
    hist = report.extra.get("histogram")
    if hist and "points" not in hist:
        parts.append(_histogram(hist))
    swept = list(report.swept)
    kname = "medusa_heads" if "medusa_heads" in report.inputs else "k"
    if "speedup" in report.results and swept:
        if "alpha" in swept and kname in swept:
            parts.append(_heatmap(report, kname))
        elif len(swept) == 1:
            parts.append(_line(report, swept[0]))
    return "\n".join(p for p in parts if p)


def _histogram(hist: dict, width: int | None = None) -> str:
    """One row per accepted length: the simulated share as a bar, the closed form as a marker on the row."""
    from llmcalc import charts

    g = charts.glyphs()
    width = charts._width(width)
    rows = list(zip(hist["tokens_per_step"], hist["simulated_fraction"], hist["expected_fraction"]))
    top = max([max(s, e) for _, s, e in rows] + [1e-12])
    text = [f"{n} tok" for n, _, _ in rows]
    tail = [f"{s * 100:6.2f}%  (expected {e * 100:6.2f}%)" for _, s, e in rows]
    lw, tw = max(map(len, text)), max(map(len, tail))
    cells = max(10, width - lw - 4 - tw)
    out = ["accepted length per round (simulated vs closed form):",
           f"{g['parts'][0]} simulated  {g['limit']} closed form (expected)   (scale linear from 0 to {top * 100:.3g}%)",
           " " * lw + " " + g["tl"] + g["h"] * cells + g["tr"]]
    for label, (_, s, e), t in zip(text, rows, tail):
        row = [" "] * cells
        for c in range(min(cells, int(round(s / top * cells)) or (1 if s > 0 else 0))):
            row[c] = g["parts"][0]
        row[min(cells - 1, int(e / top * cells))] = g["limit"]
        out.append(f"{label:>{lw}} {g['v']}{''.join(row)}{g['v']} {t}")
    out.append(" " * lw + " " + g["bl"] + g["h"] * cells + g["br"])
    return "\n".join(out)


def _rows_where_others_first(report, keep: tuple[str, ...]):
    import numpy as np
    n = report.points
    mask = np.ones(n, dtype=bool)
    fixed = []
    for name in report.swept:
        if name in keep:
            continue
        vals = np.asarray(report.inputs[name].value).reshape(-1)
        mask &= vals == vals[0]
        fixed.append(f"{name} {vals[0]:g}")
    return mask, fixed


def _heatmap(report, kname: str) -> str:
    """Speedup over α (rows) × k (columns) as a coloured grid; the best k of each row in bold."""
    import io
    import os
    import shutil
    import sys

    import numpy as np
    from rich.console import Console
    from rich.table import Table
    from rich import box

    mask, fixed = _rows_where_others_first(report, ("alpha", kname))
    a = np.asarray(report.inputs["alpha"].value).reshape(-1)[mask]
    k = np.asarray(report.inputs[kname].value).reshape(-1)[mask]
    s = np.broadcast_to(np.asarray(report.results["speedup"].value, dtype=float), (report.points,))[mask]
    alphas, ks = np.unique(a), np.unique(k)
    grid = np.full((alphas.size, ks.size), np.nan)
    grid[np.searchsorted(alphas, a), np.searchsorted(ks, k)] = s
    title = "speedup over α × " + kname + (" (" + ", ".join(fixed) + ")" if fixed else "")
    coloured = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    table = Table(title=title, caption=("red: < 1× · " if coloured else "") + "*: best in row",
                  box=box.SIMPLE, title_justify="left", caption_justify="left", pad_edge=False)
    table.add_column("α \\ " + kname, justify="right", style="bold")
    for kv in ks:
        table.add_column(f"{kv:g}", justify="right")
    hi = np.nanmax(grid) if np.isfinite(grid).any() else 1.0
    for i, av in enumerate(alphas):
        best = np.nanargmax(grid[i]) if np.isfinite(grid[i]).any() else -1
        cells = []
        for j in range(ks.size):
            x = grid[i, j]
            if not np.isfinite(x):
                cells.append("")
                continue
            style = _heat_style(x, hi) + (" bold" if j == best else "")
            cells.append(f"[{style}]{x:.2f}{'*' if j == best else ' '}[/]")
        table.add_row(f"{av:g}", *cells)
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=sys.stdout.isatty(), no_color=not coloured,
                      width=min(200, shutil.get_terminal_size((100, 24)).columns), highlight=False)
    console.print(table)
    return buf.getvalue().rstrip("\n")


def _heat_style(x: float, hi: float) -> str:
    if x < 1:
        return "white on red3"
    f = 0.0 if hi <= 1 else min(1.0, (x - 1) / (hi - 1))
    palette = ("black on yellow", "black on gold1", "black on green_yellow", "black on green3", "white on green4")
    return palette[min(len(palette) - 1, int(f * len(palette)))]


def _line(report, name: str) -> str:
    import numpy as np

    from llmcalc import charts

    x = np.asarray(report.inputs[name].value, dtype=float).reshape(-1)
    n = x.size
    series = {}
    for key, label in (("speedup", "speedup"), ("optimal_speedup", "at the best k")):
        if key in report.results:
            series[label] = np.broadcast_to(np.asarray(report.results[key].value, dtype=float), (n,))
    if n < 2:
        return ""
    logx = name == "batch" and x.max() / max(x.min(), 1) >= 16
    return charts.lines(x, series, f"speedup vs {name}", name + (" (log)" if logx else ""), "× plain decoding",
                        logx=logx, hlines={"break-even (1×)": 1.0})
