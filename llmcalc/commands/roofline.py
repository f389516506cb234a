"""`llmcalc roofline`: a GPU's ceilings, and where an operation or a model phase sits under them."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmcalc.cli_support import GpuOpt, ModelOpt, shared_options

EPILOG = """Examples:

  llmcalc roofline -g a100-80gb

  llmcalc roofline -g a100-80gb --op matmul --m 1 --k 4096 --n 4096

  llmcalc roofline -g h100-sxm --op attention --seq 8k --heads 32 --head-dim 128

  llmcalc roofline -g a100-80gb -m llama-2-7b --batch 1..1024x2 --seq 1024 --plot decode.png

  llmcalc roofline -g a100 --intensity 1..1000x10 --json | jq '.rows[] | [.intensity, .bound]'
"""

OPS = ("matmul", "elementwise", "softmax", "layernorm", "attention")
PHASES = ("decode", "prefill")
OP_PANEL = "Operation"
MODEL_PANEL = "Model phases (with -m)"


def _opt(flag: str, help_: str, panel: str = OP_PANEL):
    return Annotated[Optional[str], typer.Option(flag, help=help_, rich_help_panel=panel, show_default=False)]


@shared_options()
def roofline(
    gpu: GpuOpt = None,
    dtype: Annotated[str, typer.Option("--dtype", help="Dtype of the peak FLOP/s and of the operands (bf16, fp16, fp8, int8, tf32, fp32).")] = "bf16",
    intensity: _opt("--intensity", "Place an operation of this arithmetic intensity (FLOP/byte).") = None,
    op: _opt("--op", "matmul, elementwise, softmax, layernorm or attention (naive and flash).") = None,
    m: _opt("--m", "Rows: matmul (M,K)x(K,N); rows of softmax/layernorm/element-wise (default 1).") = None,
    k: _opt("--k", "Inner dimension K of the matmul.") = None,
    n: _opt("--n", "Columns: matmul N; row length of softmax/layernorm; elements per row (element-wise).") = None,
    flops_per_element: _opt("--flops-per-element", "Element-wise: FLOPs per element (default 1; GELU ~8).") = None,
    inputs: _opt("--inputs", "Element-wise: input tensors read (default 1; an add reads 2).") = None,
    tile: _opt("--tile", "Flash attention: query-block rows Br; K and V are re-read S/Br times (default 128).") = None,
    model: ModelOpt = None,
    batch: Annotated[str, typer.Option("-b", "--batch", help="Sequences (model phases; attention). Lists/ranges sweep: the decode batch sweep.", rich_help_panel=MODEL_PANEL)] = "1",
    seq: Annotated[Optional[str], typer.Option("-s", "--seq", help="Tokens: the prompt (prefill) and the cache (decode); attention's length (default 1024).",
                                                     rich_help_panel=MODEL_PANEL, show_default=False)] = None,
    phase: Annotated[str, typer.Option("--phase", help="Model phase whose keys are unprefixed: decode or prefill (the other is prefixed).", rich_help_panel=MODEL_PANEL)] = "decode",
    weight_dtype: _opt("--weight-dtype", "Weights: fp32, bf16, fp16, fp8, int8, int4 or a named format (q4_k_m, gptq-int4, nf4, ...; default: --dtype, 16-bit for tf32).", MODEL_PANEL) = None,
    group_size: _opt("--weight-group-size", "Quantised weights: elements per scale (0 = per-channel scales, not counted).", MODEL_PANEL) = None,
    kv_dtype: Annotated[str, typer.Option("--kv-dtype", help="KV cache dtype.", rich_help_panel=MODEL_PANEL)] = "bf16",
    mem_util: _opt("--mem-util", "Share of GPU memory usable for weights + cache (default 0.9, as vLLM).", MODEL_PANEL) = None,
    tiers: Annotated[bool, typer.Option("--tiers", help="Show the memory hierarchy (shown by default when no operation is given).")] = False,
    plot: Annotated[Optional[str], typer.Option("--plot", help="Write the chart to FILE.png or FILE.svg (needs matplotlib, the plot extra of llmcalc).", show_default=False)] = None,
    arch: dict = None, out: dict = None,
) -> None:
    """Peak FLOP/s, memory bandwidth and ridge point of a GPU; place an operation (an intensity, a matmul,
    element-wise, softmax, layer norm, naive vs flash attention) or a model's prefill and decode phases
    on the roofline, with T_math, T_mem, their max and sum, and the bound; draw it."""
    from llmcalc.charts import check_image_path
    from llmcalc.cli_support import Inputs, choice, output, resolve_gpu, resolve_model
    from llmcalc.core import roofline as rl
    from llmcalc.core.dtypes import dtype_bytes
    from llmcalc.core.formula import Results
    from llmcalc.errors import InputError
    from llmcalc.render import Report
    from llmcalc.spec import DTYPES
    from llmcalc.units import parse_count

    gpu_spec = resolve_gpu(gpu, required=True)
    dtype = choice("--dtype", dtype, DTYPES)
    if plot:
        check_image_path(plot)
    op = choice("--op", op, OPS) if op else None
    given = [name for name, v in (("--intensity", intensity), ("--op", op)) if v is not None]
    arch_given = any(v is not None for key, v in arch.items() if key not in ("heads", "head_dim"))
    if model or arch_given:
        if op != "attention":
            given.append("-m")
    if len(given) > 1:
        raise InputError(f"give one operation: {' and '.join(given)} were both given; use --intensity, --op, "
                         "or -m MODEL alone")
    for flag, value, ok in (("--m", m, ("matmul", "elementwise", "softmax", "layernorm")), ("--k", k, ("matmul",)),
                            ("--n", n, ("matmul", "elementwise", "softmax", "layernorm")),
                            ("--flops-per-element", flops_per_element, ("elementwise",)),
                            ("--inputs", inputs, ("elementwise",)), ("--tile", tile, ("attention",))):
        if value is not None and op not in ok:
            raise InputError(f"{flag} applies to --op {' / '.join(ok)}")

    peak = gpu_spec.peak_flops(dtype)
    bw = gpu_spec.hbm_bytes_per_s
    p = dtype_bytes(dtype)
    inp = Inputs()
    inp.fixed("dtype", dtype, unit="str")
    points: list[tuple[str, object]] = []
    notes: list[str] = []
    model_spec = None
    sweep_chart = None
    v: dict = {}

    no_operation = False
    if intensity is not None:
        inp.number("intensity", intensity, unit="flop/byte", label="arithmetic intensity")
        v = inp.grid()
        r = rl.ceilings(gpu_spec, dtype)
        rl.place_intensity(r, v["intensity"], peak, bw)
        points = [("op", v["intensity"])]
    elif op == "matmul":
        for name, val in (("m", m), ("k", k), ("n", n)):
            if val is None:
                raise InputError(f"--op matmul needs --m, --k and --n ([M,K]x[K,N]); --{name} is missing")
            inp.number(name, val, unit="count", label=f"matmul {name.upper()}", integer=True)
        v = inp.grid()
        r = rl.ceilings(gpu_spec, dtype)
        F, Q = rl.matmul(v["m"], v["k"], v["n"], p)
        rl.place(r, F, Q, peak, bw, label="matmul")
        points = [("matmul", r["intensity"].value)]
    elif op in ("elementwise", "softmax", "layernorm"):
        if n is None:
            raise InputError(f"--op {op} needs --n (elements per row) and optionally --m (rows, default 1)")
        inp.number("m", m, default=1, unit="count", label="rows", integer=True)
        inp.number("n", n, unit="count", label="elements per row", integer=True)
        if op == "elementwise":
            inp.number("flops_per_element", flops_per_element, default=1, unit="count", label="FLOPs per element")
            inp.number("inputs", inputs, default=1, unit="count", label="input tensors read", integer=True)
        v = inp.grid()
        r = rl.ceilings(gpu_spec, dtype)
        if op == "elementwise":
            F, Q = rl.elementwise(v["m"] * v["n"], p, v["flops_per_element"], v["inputs"])
        else:
            F, Q = (rl.softmax if op == "softmax" else rl.layernorm)(v["m"], v["n"], p)
        rl.place(r, F, Q, peak, bw, label=op)
        points = [(op, r["intensity"].value)]
    elif op == "attention":
        spec = resolve_model(model, arch, required=False) if (model or arch_given) else None
        if spec is not None:
            model_spec = spec
            h_default, d_default = spec.heads, spec.head_dim
        else:
            h_default = _int(arch["heads"], "--heads", parse_count) if arch["heads"] else 1
            d_default = _int(arch["head_dim"], "--head-dim", parse_count) if arch["head_dim"] else 128
        inp.number("batch", batch, unit="count", label="sequences", integer=True)
        inp.number("seq", seq, default=1024, unit="count", label="sequence length S", integer=True)
        inp.fixed("heads", h_default, unit="count", label="heads")
        inp.fixed("head_dim", d_default, unit="count", label="head dim d")
        inp.number("tile", tile, default=128, unit="count", label="flash query block Br", integer=True)
        v = inp.grid()
        r = rl.ceilings(gpu_spec, dtype)
        Z = v["batch"] * h_default
        F, Q = rl.attention(Z, v["seq"], d_default, p, flash=True, Br=v["tile"])
        rl.place(r, F, Q, peak, bw, label="flash attention")
        Fn, Qn = rl.attention(Z, v["seq"], d_default, p, flash=False)
        rl.place(r, Fn, Qn, peak, bw, prefix="naive_", label="naive attention")
        r.calc("flash_traffic_reduction", rl.TRAFFIC_RATIO, "factor", "HBM bytes: naive ÷ flash", naive=Qn, flash=Q)
        from llmcalc.core.flash import flash_bound   # with SRAM and L2: what kernels can reach (FA2/FA3 below it)
        flash_bound(gpu_spec, Z=Z, S=v["seq"], d=d_default, p=p, peak=peak, Br=v["tile"], out=r, prefix="flash_l2_")
        points = [("flash attn", r["intensity"].value), ("naive attn", r["naive_intensity"].value)]
    elif model or arch_given:
        model_spec = spec = resolve_model(model, arch)
        from llmcalc.core.serve import check_dtype
        phase = choice("--phase", phase, PHASES)
        wdt = check_dtype("--weight-dtype", weight_dtype or (dtype if dtype != "tf32" else "fp32"))
        inp.number("batch", batch, unit="count", label="sequences", integer=True)
        inp.number("seq", seq, default=1024, unit="count", label="prompt (prefill) / cached tokens (decode)",
                   integer=True)
        inp.fixed("phase", phase, unit="str")
        inp.fixed("weight_dtype", wdt, unit="str")
        gs = inp.number("weight_group_size", group_size, default=0, unit="count", label="weight group size",
                        integer=True, strict=False)
        inp.fixed("kv_dtype", kv_dtype.lower(), unit="str")
        inp.number("mem_util", mem_util, default=0.9, unit="ratio", label="usable memory share", maximum=1.0)
        if "weight_group_size" in inp.swept or "mem_util" in inp.swept:
            raise InputError("--weight-group-size and --mem-util take one value")
        from llmcalc.core.quant import check_overrides
        check_overrides(wdt, group_size and gs)
        v = inp.grid()
        r = rl.ceilings(gpu_spec, dtype)
        from llmcalc.core.roofline import model_phases
        model_phases(r, spec, gpu_spec, v["batch"], v["seq"], dtype=dtype, weight_dtype=wdt, group_size=int(gs),
                     kv_dtype=kv_dtype, mem_util=v["mem_util"], main=phase)
        other = "prefill" if phase == "decode" else "decode"
        points = [(phase, r["intensity"].value), (other, r[other + "_intensity"].value)]
        if "batch" in inp.swept:
            sweep_chart = "batch"
            _sweep_notes(r, notes)
        elif "seq" not in inp.swept:
            _phase_notes(r, notes, phase)
    else:
        v = inp.grid()
        r = rl.ceilings(gpu_spec, dtype)
        no_operation = True
    tiers_flag = tiers  # asked for explicitly: then say which tiers the preset lacks
    tiers = tiers or no_operation
    if tiers:
        if inp.swept:
            raise InputError("--tiers shows one GPU's memory hierarchy; drop the sweep")
        rl.add_hierarchy(r, gpu_spec)
        known = [t for t in rl.hierarchy(gpu_spec) if not t["bytes_per_s"] and t["tier"] in ("sram", "l2")]
        if known and tiers_flag:
            notes.append(f"{gpu_spec.name} preset has no bandwidth for: {', '.join(t['tier'] for t in known)}")

    extra = {}
    if gpu_spec.l2_bytes_per_s:
        extra["L2"] = gpu_spec.l2_bytes_per_s
    labelled = _label_points(points, inp)
    title = f"roofline · {gpu_spec.name} · {dtype}"

    def chart(report: Report) -> str:
        from llmcalc import charts
        if sweep_chart:
            return _batch_chart(report, charts)
        return charts.roofline(peak, bw, labelled, title, extra)

    if plot:
        from llmcalc import charts
        if sweep_chart:
            res = r
            import numpy as np
            x = np.asarray(inp.items["batch"].value, dtype=float)
            vl = {}
            xb = _first(res["crossover_batch"].value)
            if xb is not None and xb <= x.max() * 2:
                vl[f"crossover B={xb:,.0f}"] = xb
            mb = _first(res["max_batch"].value)
            if mb and mb <= x.max() * 2:
                vl[f"cache full B={mb:,.0f}"] = mb
            charts.lines_image(plot, x, {"T_mem (decode step)": np.asarray(res["t_mem_seconds"].value) * 1e3,
                                         "T_math (decode step)": np.asarray(res["t_math_seconds"].value) * 1e3},
                               f"decode step vs batch · {model_spec.name} · {gpu_spec.name}", "batch B",
                               "time per step (ms)", logx=True, logy=True, vlines=vl)
        else:
            charts.roofline_image(plot, peak, bw, labelled, title, extra)
        notes.append(f"chart written to {plot}")

    cols = (["intensity", "attainable_flops", "bound", "t_math_seconds", "t_mem_seconds", "time_seconds"]
            if "intensity" in r else [])
    if intensity is not None:
        cols = ["attainable_flops", "fraction_of_peak", "bound"]
    if sweep_chart:
        cols = ["t_math_seconds", "t_mem_seconds", "bound", "intensity", "kv_bytes", "fits"]
    report = Report("roofline", inp.items, r, model=model_spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=[c for c in cols if c in r], chart=chart)
    output(report, **out)


def _int(text, flag, parse):
    from llmcalc.errors import InputError
    value = parse(text, flag)
    if value != int(value) or value < 1:
        raise InputError(f"{flag} must be a whole number of at least 1, got {text!r}")
    return int(value)


def _first(value):
    import math
    try:
        x = float(value.reshape(-1)[0]) if hasattr(value, "reshape") else float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _label_points(points, inp) -> list[tuple[str, float]]:
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
    for f, s in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= f and x % (f / 1000) == 0:
            return f"{x / f:g}{s}"
    return f"{x:g}"


def _batch_chart(report, charts) -> str:
    import numpy as np
    r = report.results
    x = np.asarray(report.inputs["batch"].value, dtype=float)
    mem = np.asarray(r["t_mem_seconds"].value, dtype=float) * 1e3
    series = {"T_mem": mem, "T_math": np.asarray(r["t_math_seconds"].value, dtype=float) * 1e3}
    points = {}
    for key, name in (("crossover_batch", "crossover"), ("max_batch", "cache full")):
        b = _first(r[key].value)
        if b and x.min() <= b <= x.max():
            points[f"{name}: B={b:,.0f}"] = (b, float(np.interp(np.log(b), np.log(x), mem)))
    return charts.lines(x, series, "decode step time (ms) vs batch: memory vs compute", "batch B", "ms",
                        logx=True, logy=True, points=points)


def _sweep_notes(r, notes) -> None:
    xb = _first(r["crossover_batch"].value)
    mb = _first(r["max_batch"].value)
    msg = (f"decode turns compute-bound at batch {xb:,.0f}" if xb is not None else
           "decode never turns compute-bound at this length: cache reads grow with batch as fast as FLOPs do")
    if mb is not None:
        msg += f"; the KV cache stops fitting beyond batch {mb:,.0f}"
    notes.append(msg)


def _phase_notes(r, notes, phase) -> None:
    xb = _first(r["crossover_batch"].value)
    mb = _first(r["max_batch"].value)
    if xb is not None:
        msg = f"decode is compute-bound from batch {xb:,.0f} at this length"
        if mb is not None:
            msg += f"; the cache fits up to batch {mb:,.0f}" + (" (crossover out of reach)" if xb > mb else "")
        notes.append(msg)
