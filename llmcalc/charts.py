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
