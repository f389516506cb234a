"""Geometry of every terminal chart of every subcommand, at 80 and 120 columns.

The chart text is read back as a grid of cells: a frame is a ┌…┐ line, rows with │/┤ at both edges, and a
└…┘ line with tick marks (┴, and ┻ for the limit) under which the tick labels stand. The checks:
nothing wider than the terminal and nothing drawn outside a line chart's frame; each tick label under its
tick; each bar's length in cells against the axis scale and the total in the --json answer (not the chart
code); every nonzero part (from --json) visible; the limit marker where the JSON's usable memory puts it;
vertical markers (ridge, cache full) at the column their value gives on the log axis.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest
from hypothesis import given, settings, strategies as st

from llmcalc import charts

WIDTHS = (80, 120)
GiB = 2**30


@dataclass
class Frame:
    lines: list[str]      # from the ┌ line to the line of tick labels under └
    left: int
    right: int

    @property
    def body(self) -> list[str]:
        return self.lines[1:-2]

    @property
    def axis(self) -> str:
        return self.lines[-2]

    @property
    def ticks(self) -> list[int]:
        return [i for i, ch in enumerate(self.axis) if ch in "┴┻" and self.left < i < self.right]

    def inside(self, row: str) -> str:
        return row[self.left + 1:self.right]

    def tick_labels(self) -> list[tuple[int, int, str]]:
        """(start, end, text) of each word in the label line under the axis."""
        return [(m.start(), m.end() - 1, m.group()) for m in re.finditer(r"\S+", self.lines[-1])]

    def cells(self) -> int:
        return self.right - self.left - 1


def frames(text: str) -> list[Frame]:
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        m = re.fullmatch(r"( *)┌(─+)┐", line)
        if not m:
            continue
        left, right = len(m.group(1)), len(m.group(1)) + len(m.group(2)) + 1
        j = i + 1
        while j < len(lines) and not (len(lines[j]) > right and lines[j][left] == "└"):
            j += 1
        assert j < len(lines) - 1, f"frame at line {i} has no bottom edge:\n{text}"
        out.append(Frame(lines[i:j + 2], left, right))
    return out


def check_frame(f: Frame, width: int, bars: bool) -> None:
    for row in f.lines:
        assert len(row) <= width, f"wider than {width}: {row!r}"
    for row in f.body:
        assert row[f.left] in "│┤" and row[f.right] == "│", f"frame edge missing: {row!r}"
        if not bars:                      # a line chart draws nothing right of its frame
            assert row[f.right + 1:].strip() == "", row
    assert f.axis[f.left] == "└" and f.axis[f.right] == "┘"
    ticks = f.ticks
    assert len(ticks) >= 2, f.axis
    for start, end, text in f.tick_labels():
        if text in ("GiB", "requests", "%"):   # the unit after the last label
            continue
        assert any(start <= t <= end for t in ticks), f"tick label {text!r} at {start}-{end} stands under no tick {ticks}"


def value(text: str) -> float:
    """1.5k -> 1500, 0.1 -> 0.1 (the charts' tick text)."""
    mult = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
    return float(text[:-1]) * mult[text[-1]] if text[-1] in mult else float(text)


def linear_scale(f: Frame) -> tuple[float, float]:
    """(value at cell 0, value per cell) from the two outermost labelled ticks of a linear axis."""
    pts = []
    for start, end, text in f.tick_labels():
        cols = [t for t in f.ticks if start <= t <= end]
        try:
            pts.append((cols[0] - f.left - 1, value(text)))
        except (ValueError, IndexError):
            continue
    (c0, v0), (c1, v1) = pts[0], pts[-1]
    per = (v1 - v0) / (c1 - c0)
    return v0 - c0 * per, per


def log_column(f: Frame, x: float) -> float:
    """Cell column where x lies on a log axis, from the outermost labelled ticks."""
    pts = [(t - f.left - 1, value(text)) for start, end, text in f.tick_labels()
           for t in f.ticks if start <= t <= end]
    (c0, v0), (c1, v1) = pts[0], pts[-1]
    return c0 + (math.log10(x) - math.log10(v0)) / (math.log10(v1) - math.log10(v0)) * (c1 - c0)


def legend(text: str) -> dict[str, str]:
    """glyph -> name from legend entries like '▇ weights  ▓ gradients'."""
    return {m.group(1): m.group(2) for m in re.finditer(r"(?:^|  )(\S) ([a-zA-Z][\w ]*?)(?=  |$)", text, re.M)}


@pytest.fixture
def draw(cli, monkeypatch):
    def run(width: int, *args: str) -> tuple[str, dict]:
        monkeypatch.setenv("COLUMNS", str(width))
        table = cli(*args, "-o", "table")
        assert table.code == 0, table.stderr
        return table.stdout, cli(*args, "--json").json()
    return run


# ---------------------------------------------------------------------------------------------
# Horizontal bars: train-mem, kv

PARTS = {"train-mem": ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes"),
         "kv": ("weights_bytes_per_gpu", "kv_bytes_per_gpu")}      # one GPU's share, against its limit
BAR_CASES = [
    ("train-mem", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "8192", "--batch", "1..32x2", "--zero", "3",
     "--dp", "8", "--recompute", "full"),
    ("train-mem", "-m", "gpt2", "--batch", "1..16x2"),                        # no GPU: no limit
    ("kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "32k", "--batch", "1..64x2"),
    ("kv", "-m", "llama-3.1-70b", "-g", "a100-80gb", "--seq", "1k..128kx2", "--tp", "4"),
]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("args", BAR_CASES, ids=lambda a: " ".join(a[:6]))
def test_bar_charts(draw, args, width):
    text, doc = draw(width, *args)
    rows = doc["rows"]
    (f,) = frames(text)
    check_frame(f, width, bars=True)
    swept = [k for k in ("batch", "seq") if k in rows[0] and len({r[k] for r in rows}) > 1]
    assert len(f.body) == len(rows)
    zero, per = linear_scale(f)
    assert zero == 0                                      # honest scale: linear from 0
    glyph_of = {name: g for g, name in legend(text).items()}
    has_limit = doc.get("gpu") is not None
    usable = rows[0].get("usable_memory_bytes") if has_limit else None
    for row, r in zip(f.body, rows):
        # the label on the row is the swept value of that JSON row
        label = row[:f.left].strip()
        assert value(label.replace(",", "")) == pytest.approx(r[swept[0]], rel=0.02), (label, r[swept[0]])
        inside = f.inside(row)
        total = sum(r[k] for k in PARTS[args[0]]) / GiB
        drawn = len(inside.rstrip(" ┃"))
        parts = sum(1 for k in PARTS[args[0]] if r[k] > 0)
        assert abs(drawn - total / per) <= parts + 1, (row, total, per)  # within the one-cell minimums
        for key in PARTS[args[0]]:
            name = key.removesuffix("_per_gpu").removesuffix("_bytes").replace("kv", "KV cache")
            if r[key] > 0:
                assert glyph_of[name] in inside, f"{name} ({r[key] / GiB:.3g} GiB) invisible in {row!r}"
        if usable:
            assert ("over" in row[f.right:]) == (total * GiB > usable), row
    if has_limit:
        col = f.axis.index("┻") - f.left - 1
        # the marker's cell (the last cell when the limit is the scale's end) and the ticks are rounded
        assert abs(col - usable / GiB / per) <= 1.5, (col, usable / GiB / per)
        for row in f.body:                               # the limit runs through every row it does not hide
            inside = f.inside(row)
            assert inside[col] == "┃" or inside[col] in "▇▓▒░", row
        assert "usable" in text
    else:
        assert "┻" not in f.axis and "┃" not in "".join(f.body)


# ---------------------------------------------------------------------------------------------
# Line charts: serve (latency-throughput), roofline (point and batch sweep), specdec over one input


@pytest.mark.parametrize("width", WIDTHS)
def test_roofline_point_chart(draw, width):
    text, doc = draw(width, "roofline", "-g", "h100-sxm", "-m", "llama-3.1-8b", "--seq", "4096")
    (f,) = frames(text)
    check_frame(f, width, bars=False)
    ridge = doc["results"]["ridge_intensity"]
    col = log_column(f, ridge)
    cols = [i - f.left - 1 for row in f.body for i, ch in enumerate(row) if ch == "┊"]
    assert cols and all(abs(c - col) <= 1 for c in cols), (cols, col)
    body = "\n".join(f.body)
    assert "decode" in body and "prefill" in body and body.count("◆") == 2
    # each point sits at its intensity's column
    for row in f.body:
        for i, ch in enumerate(row):
            if ch == "◆":
                x = i - f.left - 1
                assert min(abs(x - log_column(f, doc["results"][k])) for k in ("intensity", "prefill_intensity")) <= 1


@pytest.mark.parametrize("width", WIDTHS)
def test_roofline_batch_chart_marks_cache_full(draw, width):
    text, doc = draw(width, "roofline", "-g", "h100-sxm", "-m", "llama-3.1-8b", "--batch", "1..512x2", "--seq", "4096")
    (f,) = frames(text)
    check_frame(f, width, bars=False)
    max_batch = doc["rows"][0]["max_batch"]
    assert f"cache full at B={max_batch}" in text
    col = log_column(f, max_batch)
    cols = {i - f.left - 1 for row in f.body for i, ch in enumerate(row) if ch == "┊"}
    assert cols and all(abs(c - col) <= 1 for c in cols), (cols, col)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("args", [
    ("serve", "-m", "llama-2-7b", "-g", "a100-80gb", "--batch", "1..256x2", "--prompt", "512", "--gen", "256"),
    ("specdec", "--alpha", "0.8", "--k", "1..8+1", "-c", "0.05"),
    ("roofline", "-g", "a100", "--op", "matmul", "--m", "1", "--k", "4096", "--n", "4096"),
], ids=lambda a: a[0] + " " + a[-2])
def test_line_charts(draw, args, width):
    text, _ = draw(width, *args)
    fs = frames(text)
    assert len(fs) == 1
    check_frame(fs[0], width, bars=False)
    assert any(ch in "•∘" for row in fs[0].body for ch in fs[0].inside(row))


# ---------------------------------------------------------------------------------------------
# Histograms: serve --rate (TTFT, TPOT) and specdec --simulate


@pytest.mark.parametrize("width", WIDTHS)
def test_serve_rate_histograms(draw, width):
    text, doc = draw(width, "serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--rate", "20", "--prompt", "1000",
                     "--gen", "300", "--requests", "300")
    fs = frames(text)
    hists = [doc["histograms"][k] for k in ("ttft_seconds", "tpot_seconds") if doc["histograms"].get(k)]
    assert len(fs) == len(hists) == 2
    for f, h in zip(fs, hists):
        check_frame(f, width, bars=True)
        _, per = linear_scale(f)
        assert len(f.body) == len(h["counts"])
        for row, n, a, b in zip(f.body, h["counts"], h["edges"], h["edges"][1:]):
            assert value(row[:f.left].strip()) == pytest.approx((a + b) / 2 * 1e3, rel=0.01)
            drawn = f.inside(row).count("▇")
            # tick columns and bar ends are each rounded to a cell: 1.5 cells of slack
            assert drawn >= (1 if n else 0) and abs(drawn - n / per) <= 1.5, (row, n, per)


@pytest.mark.parametrize("width", WIDTHS)
def test_specdec_histogram(draw, width):
    text, _ = draw(width, "specdec", "--alpha", "0.8", "--k", "4", "-c", "0.05", "--simulate", "2000")
    (f,) = frames(text)
    for row in f.lines:
        assert len(row) <= width
    for row in f.body:
        assert row[f.left] == "│" and row[f.right] == "│" and "┃" in f.inside(row)   # the closed form is marked
    assert len(f.body) == 5


@pytest.mark.parametrize("width", WIDTHS)
def test_specdec_heatmap_fits(draw, width):
    text, _ = draw(width, "specdec", "--alpha", "0.6..0.9+0.1", "--k", "1..8+1", "-c", "0.05")
    assert "speedup over α × k" in text
    assert all(len(line) <= width for line in text.split("\n"))


@pytest.mark.parametrize("args", [("flops", "-m", "gpt2", "--seq", "512,1024"),
                                  ("parallel", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "8")])
def test_commands_without_a_chart(draw, args):
    text, _ = draw(80, *args)
    assert frames(text) == []


# ---------------------------------------------------------------------------------------------
# Without colour, without Unicode, and the chart functions themselves


class _Ascii:
    encoding = "ascii"


def test_ascii_console_gets_ascii_glyphs():
    text = charts.hbars(["1", "2"], {"a": [1.0, 2.0], "b": [0.001, 0.5]}, "t", "GiB", limit=1.5, width=60,
                        stream=_Ascii())
    text.encode("ascii")
    assert "#" in text and "=" in text and "!" in text
    line = charts.lines([1, 10, 100], {"s": [1, 2, 3]}, "t", "x", "y", logx=True, vlines={"m": 10}, width=60,
                        stream=_Ascii())
    line.encode("ascii")


def test_cli_on_an_ascii_console():
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "NO_COLOR": "1", "COLUMNS": "80"}
    run = subprocess.run([sys.executable, "-m", "llmcalc", "train-mem", "-m", "gpt2", "-g", "a100",
                          "--batch", "1..64x4", "-o", "table"], capture_output=True, env=env)
    assert run.returncode == 0, run.stderr
    out = run.stdout.decode("ascii")
    assert "?" not in out.split("training memory")[1]    # no glyph fell back to a question mark
    assert "#" in out and "!" in out


def test_no_escape_codes_without_colour():
    text = charts.hbars(["1"], {"a": [1.0]}, "t", "GiB", width=60)
    assert "\x1b" not in text


def test_small_part_gets_one_cell_and_fits():
    # 0.1% of the total still shows; the row never passes the frame
    cells = charts.part_cells([1000.0, 1.0, 1000.0], 2001.0, 40)
    assert cells[1] == 1 and sum(cells) == 40 and abs(cells[0] - cells[2]) <= 1
    assert sum(charts.part_cells([1.0] * 8, 8.0, 5)) <= 5
    assert charts.part_cells([0.0, 5.0], 5.0, 10) == [0, 10]


def test_frame_helpers_see_a_label_off_its_tick():
    good = charts.hbars(["1", "2"], {"a": [1.0, 2.0]}, "t", "GiB", width=60)
    (f,) = frames(good)
    check_frame(f, 60, bars=True)
    bad = good.split("\n")
    bad[-1] = " " + bad[-1]                                # shift the tick labels one cell
    with pytest.raises(AssertionError):
        check_frame(frames("\n".join(bad))[0], 60, bars=True)


sizes = st.one_of(st.just(0.0), st.floats(1e-6, 1e6))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(sizes, min_size=4, max_size=4), min_size=1, max_size=12),
       limit=st.one_of(st.none(), st.floats(1e-3, 1e6)), width=st.integers(40, 160))
def test_any_bars_keep_their_geometry(rows, limit, width):
    names = ("w", "g", "o", "a")
    series = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    text = charts.hbars([str(2**i) for i in range(len(rows))], series, "title", "GiB", limit=limit,
                        axis_label="batch", width=width)
    (f,) = frames(text)
    check_frame(f, width, bars=True)
    glyph = dict(zip(names, "▇▓▒░"))
    for row, r in zip(f.body, rows):
        inside = f.inside(row)
        for n, v in zip(names, r):
            assert (glyph[n] in inside) == (v > 0), (n, v, row)        # every nonzero part, no zero part
    if limit is not None:
        assert "┻" in f.axis


@settings(max_examples=40, deadline=None)
@given(ys=st.lists(st.floats(1e-3, 1e6), min_size=2, max_size=30), width=st.integers(40, 160),
       logy=st.booleans(), mark=st.floats(0.5, 40))
def test_any_line_chart_stays_in_its_frame(ys, width, logy, mark):
    xs = [float(i + 1) for i in range(len(ys))]
    text = charts.lines(xs, {"s": ys}, "t", "x", "y", logx=True, logy=logy, vlines={"m": mark},
                        points={"last": (xs[-1], ys[-1])}, width=width)
    (f,) = frames(text)
    check_frame(f, width, bars=False)
    assert "◆" in "".join(f.body)                         # the point lies in the frame: it is drawn
    if xs[0] <= mark <= xs[-1]:
        assert "┊" in "".join(f.body)
