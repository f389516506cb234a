"""`llmcalc parallel --search`: every layout of N GPUs that fits, ranked by throughput (core/parallel_search.py
searches); this module reads the search space from the flags and renders the ranking. Not a command of its own
(cli.COMMANDS does not list it): `parallel` hands over to it."""

from __future__ import annotations

from typing import Any


def space(f: dict):
    """The layouts --search may try: every value, or the lists and ranges the layout flags give."""
    from llmcalc.cli_support import choice
    from llmcalc.core import parallel_search as ps
    from llmcalc.core.memory import RECOMPUTE_MODES

    rec = None if f["recompute"] is None else tuple(
        choice("--recompute", x.strip(), RECOMPUTE_MODES) for x in f["recompute"].split(","))
    return ps.SearchSpace(**{k: _ints(f[v], "--" + v.replace("_", "-")) for k, v in (
        ("tp", "tp"), ("pp", "pp"), ("dp", "dp"), ("cp", "cp"), ("ep", "ep"), ("micro_batch", "micro_batch"),
        ("virtual", "virtual_stages"), ("zero", "zero"))},
        recompute=rec, uneven_pp=f["uneven_pp"], sp=None if f["sp"] is None else (f["sp"],))


def report(spec, gpu_spec, cluster, run_kw: dict, N: int, space, inp, notes: list[str], f: dict, out: dict) -> int:
    """--search: rank every layout; the table shows one compact layout column, machines one column each."""
    import sys

    from llmcalc.cli_support import output
    from llmcalc.core import parallel as par
    from llmcalc.core import parallel_search as ps
    from llmcalc.core.formula import Results
    from llmcalc.errors import ExitStatus
    from llmcalc.render import Input, Report, choose_format, explanation

    if inp.items["global_batch"].value is None:
        inp.items["global_batch"].value, note = ps.search_global_batch(spec, N, inp.items["seq"].value,
                                                                       cluster.gpus_per_node, space)
        notes.append(note)
    v = {k: it.value for k, it in inp.items.items()}
    run = par.Training(seq=v["seq"], global_batch=v["global_batch"], compute_mfu=v["compute_mfu"],
                       tokens=v["tokens"], **run_kw)
    top = int(inp.number("top", f["top"], default=10, strict=False, integer=True))
    del inp.items["top"]
    res = ps.search(spec, gpu_spec, cluster, run, N, space, top=top)
    notes.append(ps.summary_note(res, top))
    extra: dict[str, Any] = {"search": {"candidates": res.candidates, "fitting": res.fitting, "seconds": res.seconds}}
    fmt = choose_format(out["fmt"], out["as_json"])
    if not res.fitting:
        sys.stderr.write(f"llmcalc: {ps.no_fit_message(res, N, gpu_spec.name)}\n")
        r = Results()
        r.put("candidates", res.candidates, "count", "layouts tried")
        r.put("fitting", 0, "count", "layouts that fit")
        output(Report("parallel", inp.items, r, model=spec, gpu=gpu_spec, notes=notes, extra={**extra, "rows": []}),
               **{**out, "explain": False, "fields": None, "no_chart": True})
        return ExitStatus.CHECK_FAILED if f["check"] else ExitStatus.OK
    lay, k = res.layouts, len(res.layouts["tp"])
    inp.fixed("rank", list(range(1, k + 1)))
    inp.items["rank"].echo = False
    swept, columns = ["rank"], ["step_seconds", "mfu", "total_bytes", "why"]
    if fmt in ("table", "md") and not out["fields"]:      # people read one layout column
        inp.fixed("layout", [ps.layout_text(*(lay[key][i] for key in ps.LAYOUT_KEYS)) for i in range(k)], unit="str")
        inp.items["layout"].echo = False
        swept.append("layout")
    else:                                                  # machines get one column per degree
        for name, (values, unit) in ps.layout_columns(lay).items():
            inp.fixed(name, values, unit=unit, label=name)
            swept.append(name)
        columns.insert(3, "bound")
    text = ""
    if out["explain"]:
        best = ps.evaluate_best(spec, gpu_spec, cluster, run, lay)
        text = explanation(Report("parallel", {n: Input(x) for n, x in ps.best_layout(lay).items()}, best)).replace(
            "How each result was computed", "How the best layout's results were computed", 1)
        if fmt in ("json", "yaml"):                        # one document on stdout, as render does
            extra["explain"] = [line.strip() for line in text.splitlines()[2:] if line.strip()]
    items = {n: it for n, it in inp.items.items() if n in swept or not isinstance(it.value, list)}
    output(Report("parallel", items, res.results, model=spec, gpu=gpu_spec, swept=swept, notes=notes, columns=columns,
                  extra=extra), **{**out, "explain": False})
    if text and fmt not in ("json", "yaml"):
        sys.stdout.write(text)
    return ExitStatus.OK


def _ints(text: str | None, flag: str) -> tuple[int, ...] | None:
    """A list or range of whole numbers for --search (None: every value)."""
    if text is None:
        return None
    from llmcalc.cli_support import Inputs
    value = Inputs().number("x", text, integer=True, flag=flag, minimum=1 if flag != "--zero" else 0, strict=False,
                            maximum=3 if flag == "--zero" else None)
    return tuple(int(x) for x in (value if isinstance(value, (list, tuple)) or hasattr(value, "shape") else [value]))
