"""The charts of `llmcalc roofline`: the roofline with its points under the table (or a decode-step sweep over
the batch), and the same as an image file with --plot. Loaded only when a chart is drawn."""

from __future__ import annotations

from llmcalc.core.roofline import first_value


def label_points(points, inp) -> list[tuple[str, float]]:
    """One (label, intensity) per point; a sweep labels each row by its swept values (at most 12)."""
    out = []
    for label, value in points:
        if hasattr(value, "__len__") and getattr(value, "ndim", 1) > 0 and len(value) > 1:
            n = len(value)
            step = max(1, -(-n // 12))
            for i in range(0, n, step):
                tag = ",".join(f"{k}={_short(inp.items[k].value[i])}" for k in inp.swept)
                out.append((f"{label} {tag}" if label not in ("op",) else tag, float(value[i])))
        else:
            out.append((label, float(value.reshape(-1)[0]) if hasattr(value, "reshape") else float(value)))
    return out


def _short(x) -> str:
    x = float(x)
    if x.is_integer() and abs(x) < 1e5:
        return f"{x:.0f}"
    for f, s in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= f and x % (f / 1000) == 0:
            return f"{x / f:g}{s}"
    return f"{x:g}"


def chart_for(gpu, dtype: str, points, inp, batch_sweep: bool):
    """The callable the renderer draws under the table."""
    def chart(report) -> str:
        from llmcalc import charts
        if batch_sweep:
            return _batch_chart(report, charts)
        return charts.roofline(gpu.peak_flops(dtype), gpu.hbm_bytes_per_s, label_points(points, inp),
                               f"roofline · {gpu.name} · {dtype}", _extra(gpu))
    return chart


def _extra(gpu) -> dict:
    return {"L2": gpu.l2_bytes_per_s} if gpu.l2_bytes_per_s else {}


def _batch_chart(report, charts) -> str:
    import numpy as np
    r = report.results
    x = np.asarray(report.inputs["batch"].value, dtype=float)
    mem = np.asarray(r["t_mem_seconds"].value, dtype=float) * 1e3
    series = {"T_mem": mem, "T_math": np.asarray(r["t_math_seconds"].value, dtype=float) * 1e3}
    marks = {}
    for key, name in (("crossover_batch", "crossover"), ("max_batch", "cache full")):
        b = first_value(r[key].value)
        if b and x.min() <= b <= x.max():
            marks[f"{name} at B={b:,.0f}"] = b
    return charts.lines(x, series, "decode step time (ms) vs batch: memory vs compute", "batch B", "ms",
                        logx=True, logy=True, vlines=marks)


def write_image(path: str, r, gpu, dtype: str, points, inp, model_name: str | None, batch_sweep: bool) -> None:
    """--plot: the roofline, or the decode step over a batch sweep, as a PNG/SVG/PDF file."""
    from llmcalc import charts
    if not batch_sweep:
        charts.roofline_image(path, gpu.peak_flops(dtype), gpu.hbm_bytes_per_s, label_points(points, inp),
                              f"roofline · {gpu.name} · {dtype}", _extra(gpu))
        return
    import numpy as np
    x = np.asarray(inp.items["batch"].value, dtype=float)
    marks = {}
    xb, mb = first_value(r["crossover_batch"].value), first_value(r["max_batch"].value)
    if xb is not None and xb <= x.max() * 2:
        marks[f"crossover B={xb:,.0f}"] = xb
    if mb and mb <= x.max() * 2:
        marks[f"cache full B={mb:,.0f}"] = mb
    charts.lines_image(path, x, {"T_mem (decode step)": np.asarray(r["t_mem_seconds"].value) * 1e3,
                                 "T_math (decode step)": np.asarray(r["t_math_seconds"].value) * 1e3},
                       f"decode step vs batch · {model_name} · {gpu.name}", "batch B",
                       "time per step (ms)", logx=True, logy=True, vlines=marks)
