"""`llmcalc flops --compute-budget C`: the compute-optimal model and token count for a budget (core/scaling.py),
and the presets nearest that size with what each costs to train compute-optimally."""

from __future__ import annotations


def run(gpu_spec, *, budget: str, fit: str, mfu: str | None, gpu_cost: str | None, out: dict) -> None:
    from llmcalc.cli_support import Inputs, output
    from llmcalc.commands import cost_options
    from llmcalc.core import scaling as sc
    from llmcalc.core.formula import Results
    from llmcalc.core.params import active_params
    from llmcalc.errors import InputError
    from llmcalc.presets import load_all
    from llmcalc.render import Report
    from llmcalc.units import fmt_value

    f = sc.get_fit(fit)
    inp = Inputs()
    notes: list[str] = []
    if gpu_cost is not None and gpu_spec is None:
        raise InputError("--compute-budget in dollars (--gpu-cost) needs a GPU to turn hours into FLOPs: add -g NAME")
    unit, what = (("usd", "budget in USD") if gpu_cost is not None else ("h", "budget in GPU-hours")
                  if gpu_spec is not None else ("flop", "budget in FLOPs"))
    inp.number("compute_budget", budget, unit=unit, label=what)
    inp.fixed("fit", f.name, unit="str")
    peak = price = None
    if gpu_spec is not None:
        peak = gpu_spec.peak_flops("bf16")
        inp.number("mfu", mfu, default=0.4, unit="ratio", label="MFU", maximum=1.0)
        if mfu is None:
            notes.append("MFU 0.4 assumed (typical 30-50%, the COS 597A slides); set --mfu")
        price = cost_options.resolve(gpu_spec, gpu_cost=gpu_cost, notes=notes, energy=False, inp=inp)["price"]
    v = inp.grid()
    r = Results()
    hours = None
    if unit == "usd":
        hours = r.calc("gpu_hours", sc.HOURS_FROM_USD, "h", "GPU-hours the dollars buy", usd=v["compute_budget"],
                       price=price)
    elif unit == "h":
        hours = r.put("gpu_hours", v["compute_budget"], "h", "GPU-hours of the budget")
    else:
        r.put("gpu_hours", None, "h", "GPU-hours (give -g)")
    if hours is not None:
        C = r.calc("compute_budget_flops", sc.FLOPS_FROM_HOURS, "flop", "budget in FLOPs: hours × 3600 × peak × MFU",
                   gpu_hours=hours, peak=peak, mfu=v["mfu"])
    else:
        C = r.put("compute_budget_flops", v["compute_budget"], "flop", "budget in FLOPs")
    sc.optimal(C, f, out=r)
    if "predicted_loss" not in r:
        r.put("predicted_loss", None, "factor", "loss the fit predicts (parametric fits only)")
    if hours is not None and price is not None:
        from llmcalc.core.cost import TRAIN_COST
        r.calc("cost_usd", TRAIN_COST, "usd", "cost of the budget: GPU-hours × price", gpu_hours=hours, price=price)
    else:
        r.put("cost_usd", None, "usd", "cost (give -g and a price)")
    notes.append(f"fit {f.name}: {f.source}; D = C/(6·N)")
    extra = {}
    if not inp.swept:
        models = [(m.name, float(active_params(m))) for m in load_all("models")]
        near = sc.closest(models, float(r["optimal_params"].value), f, peak=peak, mfu=v.get("mfu"), price=price)
        extra["closest_presets"] = near
        for row in near:
            cost = "" if row["gpu_hours"] is None else f", {fmt_value(row['gpu_hours'], 'h')}"
            cost += "" if row["cost_usd"] is None else f", {fmt_value(row['cost_usd'], 'usd')}"
            notes.append(f"{row['name']} ({fmt_value(row['params'], 'params', compact=True)} active parameters) is "
                         f"compute-optimal at {fmt_value(row['flops'], 'flop')} and "
                         f"{fmt_value(row['tokens'], 'params', compact=True)} tokens{cost}")
    report = Report("flops", inp.items, r, gpu=gpu_spec, swept=inp.swept, notes=notes, extra=extra,
                    columns=["compute_budget_flops", "optimal_params", "optimal_tokens", "tokens_per_param",
                             "cost_usd"])
    output(report, **out)
