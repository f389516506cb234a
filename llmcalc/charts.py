"""Terminal charts (plotext, loaded only when a chart is drawn) and image files (matplotlib, the
optional ``plot`` extra). Each function returns the chart as text; the renderer prints it under a table.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Sequence

from llmcalc.errors import InputError


def _plt(title: str, height: int = 18):
    import plotext as plt

    plt.clear_figure()
    width = min(100, shutil.get_terminal_size((100, 24)).columns)
    plt.plot_size(width, height)
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        plt.theme("clear")
    else:
        plt.theme("pro")
    plt.title(title)
    return plt


def _build(plt) -> str:
    """The chart as text; without colour (NO_COLOR, or not a terminal) also without plotext's reset codes."""
    text = plt.build()
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        text = plt.uncolorize(text)
    return text


def stacked_bars(labels: Sequence[str], series: dict[str, Sequence[float]], title: str, ylabel: str) -> str:
    """One bar per label, stacked by series (e.g. weights / optimizer / activations per sweep point)."""
    plt = _plt(title)
    names = [n for n, v in series.items() if any(x > 0 for x in v)]
    plt.stacked_bar(list(labels), [list(map(float, series[n])) for n in names], labels=names)
    plt.ylabel(ylabel)
    return _build(plt)


def lines(x: Sequence[float], series: dict[str, Sequence[float]], title: str, xlabel: str, ylabel: str,
          logx: bool = False, logy: bool = False, points: dict[str, tuple[float, float]] | None = None,
          hlines: dict[str, float] | None = None) -> str:
    """Line chart of several series over one x axis; optional labelled points and horizontal lines."""
    plt = _plt(title)
    if logx:
        plt.xscale("log")
    if logy:
        plt.yscale("log")
    for name, ys in series.items():
        plt.plot(list(map(float, x)), list(map(float, ys)), label=name)
    for name, level in (hlines or {}).items():
        plt.plot([float(x[0]), float(x[-1])], [level, level], label=name)
    for name, (px, py) in (points or {}).items():
        plt.scatter([float(px)], [float(py)], label=name)
    plt.xlabel(xlabel)
    plt.ylabel(ylabel)
    return _build(plt)


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


def _decades(lo: float, hi: float) -> tuple[list[float], list[str]]:
    import math
    ticks = [10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    return ticks, [_tick(t) for t in ticks]


def _tick(v: float) -> str:
    for f, s in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= f:
            return f"{v / f:g}{s}"
    return f"{v:g}"


def roofline(peak: float, bw: float, points: Sequence[tuple[str, float]], title: str,
             extra_ceilings: dict[str, float] | None = None) -> str:
    """Terminal roofline: x = FLOP/byte, y = TFLOP/s, both log. ``points`` are (label, intensity); each sits
    on the roof min(peak, I·bw). ``extra_ceilings``: other bandwidth diagonals (e.g. L2) by name."""
    ridge = peak / bw
    plt = _plt(f"{title} · {peak / 1e12:.4g} TFLOP/s · {bw / 1e12:.3g} TB/s · ridge {ridge:.4g} FLOP/B", height=24)
    lo, hi = _roofline_range(peak, bw, [i for _, i in points], extra_ceilings)
    xs = _geom(lo, hi)
    plt.xscale("log")
    plt.yscale("log")
    T = 1e12
    ymin = min(peak, lo * bw) / T
    ymax = peak / T * 4
    # The roof itself, then each ceiling continued past the ridge (dotted), so both ceilings stay visible
    # without two rasterised lines on top of each other.
    plt.plot(xs, [min(peak, x * bw) / T for x in xs],
             label="roof", marker="hd")
    diag = [(x, x * bw / T) for x in xs if ridge < x and x * bw <= peak * 4]
    if diag:
        plt.plot([x for x, _ in diag], [y for _, y in diag], label="ceilings", marker="·")
    flat = [x for x in xs if x < ridge]
    if flat:
        plt.plot(flat, [peak / T] * len(flat), marker="·")
    for name, b in (extra_ceilings or {}).items():
        pts = [(x, x * b / T) for x in xs if x * b <= peak]
        if pts:
            plt.plot([x for x, _ in pts], [y for _, y in pts], label=f"{name} ceiling", marker="dot")
    plt.plot([ridge, ridge], [ymin, peak / T], marker=":", label="ridge")
    for label, i in points:
        if not (i and i > 0):
            continue
        y = min(peak, i * bw) / T
        plt.scatter([i], [y], marker="●")
        plt.text(label, i, y * 1.8, alignment="center")
    plt.plot([hi], [ymax], marker=" ")  # headroom for labels (plotext's ylim misbehaves on log axes)
    xt, xl = _decades(lo, hi)
    plt.xticks(xt, xl)
    yt, yl = _decades(max(ymin, 1e-6), ymax)
    plt.yticks(yt, yl)
    plt.xlabel("arithmetic intensity (FLOP/byte), log")
    plt.ylabel("TFLOP/s, log")
    return _build(plt)


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
