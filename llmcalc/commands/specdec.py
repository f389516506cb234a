"""`llmcalc specdec`: speculative decoding, closed form, simulated, self-drafting heads, and from real model
and GPU presets."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from llmcalc.cli_support import GpuOpt, ModelOpt, shared_options

EPILOG = """Examples:

  llmcalc specdec --alpha 0.75 --k 7 --cost-ratio 0.02 --simulate 100k

  llmcalc specdec -m llama-3.1-70b --draft llama-3.1-8b -g h100-sxm --tp 4 --alpha 0.8 --batch 1..512x2

  llmcalc specdec --alpha 0.5..0.9+0.1 --k 1..8+1 --cost-ratio 0.05 --json | jq -c '.rows[] | [.alpha, .k, .speedup]'
"""

SPEC = "Speculation"
HEADS = "Self-drafting heads (Medusa)"
PRESETS = "From presets (c and the verify cost from decode-step times)"
MC = "Monte Carlo"


def _opt(*flags: str, help_: str, panel: str = SPEC):
    return Annotated[Optional[str], typer.Option(*flags, help=help_, rich_help_panel=panel, show_default=False)]


def _fixed(*flags: str, help_: str, panel: str):
    return Annotated[str, typer.Option(*flags, help=help_, rich_help_panel=panel)]


AlphaOpt = _opt("-a", "--alpha", help_="Per-token acceptance rate α, 0-1 (Leviathan et al.'s E(β)). Lists/ranges sweep.")
KOpt = _opt("-k", "--k", help_="Draft tokens proposed per round (γ); default 4. Lists/ranges sweep.")
CostOpt = _opt("-c", "--cost-ratio", help_="Draft step time ÷ target step time (c). Or take it from presets with "
               "-m/--draft/-g.")
VerifyOpt = _opt("--verify-cost", help_="Target's (k+1)-token verify step ÷ its 1-token step (v); default 1, the "
                 "paper's assumption.")
OpsOpt = _opt("--ops-ratio", help_="Draft ÷ target arithmetic per token (ĉ, Theorem 3.11); default c, or the "
              "parameter ratio with -m.")
KMaxOpt = _fixed("--k-max", help_="Largest k tried for optimal_k.", panel=SPEC)
HeadsOpt = _opt("--medusa-heads", help_="Self-drafting heads on the target (k = heads); --alpha is head 1's "
                "acceptance.", panel=HEADS)
DecayOpt = _opt("--decay", help_="Head i accepts with α·decay^(i−1) (given heads 1..i−1 did).", panel=HEADS)
HeadAlphasOpt = _opt("--head-alphas", help_="Acceptance of each head in order, e.g. 0.7,0.55,0.4 (instead of "
                     "--alpha/--decay).", panel=HEADS)
DraftOpt = _opt("--draft", help_="Draft model preset (or YAML / config.json path); needs -m and -g.", panel=PRESETS)
DraftDtypeOpt = _opt("--draft-dtype", help_="Draft weights dtype or named format; without --draft the draft is a "
                     "quantised copy of the target (int8, int4, fp8, q4_k_m, nf4, ...).", panel=PRESETS)
DraftGroupOpt = _fixed("--draft-group-size", help_="Quantised draft: elements per fp16 scale (e.g. 32 or 128).",
                       panel=PRESETS)
BatchOpt = _opt("-b", "--batch", help_="Sequences decoded together; default 1. Lists/ranges sweep.", panel=PRESETS)
ContextOpt = _opt("--context", "--seq", help_="Tokens already in each sequence's cache; default 1024.", panel=PRESETS)
WeightDtypeOpt = _fixed("--weight-dtype", help_="Target weights: fp32, bf16, fp16, fp8, int8, int4 or a named format (q4_k_m, gptq-int4, nf4, ...).",
                        panel=PRESETS)
WeightGroupOpt = _fixed("--weight-group-size", help_="Quantised target weights: elements per fp16 scale.",
                        panel=PRESETS)
KvDtypeOpt = _fixed("--kv-dtype", help_="KV-cache dtype of both models.", panel=PRESETS)
TpOpt = _fixed("--tp", help_="Tensor-parallel GPUs of the target.", panel=PRESETS)
DraftTpOpt = _opt("--draft-tp", help_="Tensor-parallel GPUs of the draft model; default the target's --tp (as vLLM).",
                  panel=PRESETS)
MbuOpt = _opt("--mbu", help_="Achieved share of HBM bandwidth in decode (default by weight dtype, as serve).",
              panel=PRESETS)
MfuOpt = _opt("--mfu", help_="Achieved share of peak FLOP/s when compute-bound (default as serve).", panel=PRESETS)
SimulateOpt = _opt("--simulate", help_="Play N speculation rounds (Monte Carlo) beside the closed form, e.g. 100k.",
                   panel=MC)
SeedOpt = _fixed("--seed", help_="Random seed of --simulate.", panel=MC)


@shared_options(arch=False)
def specdec(
    alpha: AlphaOpt = None, k: KOpt = None, cost_ratio: CostOpt = None, verify_cost: VerifyOpt = None,
    ops_ratio: OpsOpt = None, k_max: KMaxOpt = "32",
    medusa_heads: HeadsOpt = None, decay: DecayOpt = None, head_alphas: HeadAlphasOpt = None,
    model: ModelOpt = None, draft: DraftOpt = None, draft_dtype: DraftDtypeOpt = None,
    draft_group_size: DraftGroupOpt = "0", gpu: GpuOpt = None, batch: BatchOpt = None, context: ContextOpt = None,
    weight_dtype: WeightDtypeOpt = "bf16", weight_group_size: WeightGroupOpt = "0", kv_dtype: KvDtypeOpt = "bf16", tp: TpOpt = "1",
    draft_tp: DraftTpOpt = None, mbu: MbuOpt = None, mfu: MfuOpt = None,
    simulate: SimulateOpt = None, seed: SeedOpt = "0",
    out: dict = None,
) -> None:
    """Speculative decoding: expected tokens per target step (1 − α^(k+1))/(1 − α), the speedup
    E/(k·c + v), the best k and its speedup, and the acceptance rate below which speculating loses; with
    --simulate a Monte Carlo beside it; with -m/--draft/-g the costs from both models' decode-step times."""
    from llmcalc.cli_support import Inputs, output
    from llmcalc.errors import InputError
    from llmcalc.render import Report
    from llmcalc.units import is_sweep

    heads_mode = medusa_heads is not None or head_alphas is not None
    notes: list[str] = []
    inp = Inputs()

    _check_flags(model=model, draft=draft, gpu=gpu, draft_dtype=draft_dtype, draft_group_size=draft_group_size,
                 heads_mode=heads_mode, cost_ratio=cost_ratio, verify_cost=verify_cost, k=k, batch=batch,
                 context=context, mbu=mbu, mfu=mfu, tp=tp, draft_tp=draft_tp, weight_group_size=weight_group_size)
    from llmcalc.core import specdec as sd
    import numpy as np

    # -- acceptance and depth
    acc_list = None
    if head_alphas is not None:
        if alpha is not None or decay is not None:
            raise InputError("--head-alphas gives each head's acceptance: drop --alpha and --decay")
        acc_list = _acceptance_list(head_alphas)
        inp.fixed("head_alphas", acc_list, unit="str", label="acceptance of each head")
        inp.number("medusa_heads", medusa_heads, default=len(acc_list), unit="count", label="heads used",
                   integer=True, minimum=1, strict=False, maximum=len(acc_list))
    else:
        if alpha is None:
            raise InputError("give --alpha, the per-token acceptance rate (0-1, e.g. 0.8; Leviathan et al. "
                             "measured 0.5-0.9 for drafts ~100× smaller)")
        inp.number("alpha", alpha, unit="ratio", label="acceptance rate α", minimum=0, strict=False, maximum=1)
        if heads_mode:
            if decay is None:
                raise InputError("--medusa-heads needs how acceptance falls with depth: --decay d (head i accepts "
                                 "α·d^(i−1)) or --head-alphas a1,a2,...")
            inp.number("medusa_heads", medusa_heads, unit="count", label="heads (k)", integer=True, minimum=1,
                       strict=False)
            inp.number("decay", decay, unit="ratio", label="acceptance decay per head", minimum=0, strict=False,
                       maximum=1)
        else:
            if decay is not None:
                raise InputError("--decay applies to --medusa-heads; a draft model has one α per token")
            inp.number("k", k, default=4, unit="count", label="draft tokens per round (γ)", integer=True,
                       minimum=1, strict=False)
            if k is None:
                notes.append("--k 4 assumed; optimal_k gives the best depth")
    if heads_mode:
        if k_max != "32":
            raise InputError("--k-max applies to a draft model; with heads the best number of heads is searched")
        kk_max = sd.DEFAULT_K_MAX
    else:
        kk_max = _scalar(inp, "k_max", k_max, "largest k tried", minimum=1, maximum=sd.MAX_K)

    # -- costs
    spec = gpu_spec = draft_spec = None
    if model is None:
        if cost_ratio is None and not heads_mode:
            raise InputError("give --cost-ratio c (draft step ÷ target step, e.g. 0.05), or take it from presets: "
                             "-m TARGET --draft DRAFT -g GPU")
        default_c = 0.0 if heads_mode else None
        inp.number("cost_ratio", cost_ratio, default=default_c, unit="factor", label="draft ÷ target step time (c)",
                   minimum=0, strict=False)
        if heads_mode and cost_ratio is None:
            notes.append("--cost-ratio 0 assumed: the heads run inside the target's forward pass (near-zero "
                         "cost); with -m the heads' weight bytes set it")
        inp.number("verify_cost", verify_cost, default=1.0, unit="factor",
                   label="verify step ÷ 1-token step (v)", minimum=0, strict=True)
    else:
        spec, gpu_spec, draft_spec = _resolve(model, gpu, draft)
        if verify_cost is not None:
            inp.number("verify_cost", verify_cost, unit="factor", label="verify step ÷ 1-token step (v)",
                       minimum=0, strict=True)
        elif gpu_spec is None:
            inp.fixed("verify_cost", 1.0, unit="factor", label="verify step ÷ 1-token step (v)")
    inp.number("ops_ratio", ops_ratio, unit="factor", label="draft ÷ target arithmetic per token (ĉ)", minimum=0,
               strict=False)

    preset_kw = {}
    if spec is not None:
        preset_kw = _preset_inputs(inp, spec, gpu_spec, draft_spec, draft, draft_dtype, draft_group_size,
                                   weight_dtype, weight_group_size, kv_dtype, tp, draft_tp, mbu, mfu, batch,
                                   context, heads_mode, notes)

    rounds = None
    if simulate is None and seed != "0":
        raise InputError("--seed applies to --simulate N; add --simulate (e.g. --simulate 100k)")
    if simulate is not None:
        if is_sweep(simulate):
            raise InputError("--simulate takes one number of rounds, not a list")
        rounds = int(inp.number("simulate", simulate, unit="count", label="simulated rounds", integer=True,
                                minimum=1, strict=False))
        seed_v = _scalar(inp, "seed", seed, "random seed", minimum=0)
    v = inp.grid()

    # -- the core
    kname = "medusa_heads" if heads_mode else "k"
    kv_ = v[kname]
    sd.check_k(kv_)
    acc = None
    if heads_mode:
        acc = (np.asarray(acc_list, dtype=float) if acc_list is not None
               else sd.head_acceptance(v["alpha"], v["decay"], int(np.max(kv_))))
    r = _compute(sd, v, kname, heads_mode, acc, kk_max, spec, gpu_spec, draft_spec,
                 preset_kw, notes)

    extra = {}
    if rounds is not None:
        P = _points(inp)
        k_rows = np.broadcast_to(np.asarray(kv_, dtype=float), (P,)) if inp.swept else np.asarray(kv_, dtype=float)
        k_top = int(np.max(k_rows))
        if rounds * k_top * P > sd.MAX_SIMULATED_DRAWS:
            raise InputError(f"--simulate {rounds:,} rounds × {P:,} points × k {k_top} is more than "
                             f"{sd.MAX_SIMULATED_DRAWS:,} random draws; use fewer rounds or points")
        if heads_mode:
            rows_acc = np.broadcast_to(acc, (P, acc.shape[-1])) if inp.swept else acc
        else:
            a = np.asarray(v["alpha"], dtype=float)
            rows_acc = (np.broadcast_to(a, (P,))[:, None] * np.ones(k_top)) if inp.swept else np.full(k_top, float(a))
        c_now = r["cost_ratio"].value if "cost_ratio" in r else v["cost_ratio"]
        extra["histogram"] = sd.add_simulation(r, rows_acc, rounds, seed_v, k=kv_, c=c_now, v=_verify_now(r, v),
                                               heads_mode=heads_mode)

    columns = ["expected_tokens_per_step", "speedup", "optimal_k", "optimal_speedup", "break_even_alpha"]
    if gpu_spec is not None:
        columns = ["cost_ratio", "verify_cost_ratio"] + columns[1:-1] + ["speculative_tokens_per_second"]
    if rounds is not None:
        columns += ["simulated_tokens_per_step", "simulated_tokens_per_step_stderr"]
    if draft_spec is not None:
        extra["draft_model"] = draft_spec.to_dict()
    report = Report("specdec", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=[c for c in columns if c in r], extra=extra, chart=_chart)
    output(report, **out)


# ----------------------------------------------------------------------------------------------
# helpers


def _check_flags(*, model, draft, gpu, draft_dtype, draft_group_size, heads_mode, cost_ratio, verify_cost, k,
                 batch, context, mbu, mfu, tp, draft_tp, weight_group_size) -> None:
    """Which flags go together: closed form, a draft model, a quantised copy, or heads on the target."""
    from llmcalc.errors import InputError

    if draft is not None and model is None:
        raise InputError("--draft needs the target too: -m TARGET --draft DRAFT -g GPU")
    if draft is not None and gpu is None:
        raise InputError("--draft needs -g GPU: c comes from both models' decode-step times on it "
                         "(or give --cost-ratio without -m/--draft)")
    if heads_mode and draft is not None:
        raise InputError("--medusa-heads/--head-alphas draft with heads on the target: drop --draft")
    if draft_dtype is not None and model is None:
        raise InputError("--draft-dtype needs -m TARGET (the draft is that model, or --draft, in this dtype)")
    if model is not None and not (draft or draft_dtype or heads_mode):
        raise InputError("-m TARGET needs a draft: --draft DRAFT -g GPU, --draft-dtype int4 (a quantised copy), "
                         "or --medusa-heads N")
    if model is not None and cost_ratio is not None:
        raise InputError("give either --cost-ratio or -m/--draft (which derive c), not both")
    if gpu is not None and model is None:
        raise InputError("-g GPU needs -m TARGET and a draft (--draft, --draft-dtype or --medusa-heads)")
    if gpu is None:
        for flag, val in (("--batch", batch), ("--context", context), ("--mbu", mbu), ("--mfu", mfu)):
            if val is not None:
                raise InputError(f"{flag} needs -g GPU (and -m TARGET with a draft): it sets decode-step times")
        for flag, val in (("--tp", tp if tp != "1" else None), ("--draft-tp", draft_tp)):
            if val is not None:
                raise InputError(f"{flag} needs -g GPU (and -m TARGET with a draft)")
    if draft_tp is not None and draft is None:
        raise InputError("--draft-tp applies to a --draft model (a quantised copy runs with the target's --tp)")
    if gpu is not None and verify_cost is not None:
        raise InputError("--verify-cost comes from the target's decode-step times when -g is given; drop one")
    if heads_mode and k is not None:
        raise InputError("with self-drafting heads the depth is --medusa-heads N, not --k")
    if weight_group_size != "0" and model is None:
        raise InputError("--weight-group-size applies to the target's quantised weights: add -m TARGET and "
                         "--weight-dtype int4 (or int8, fp8)")
    if draft_group_size != "0" and draft_dtype is None:
        raise InputError("--draft-group-size applies to a quantised draft: add --draft-dtype int4 (or int8, fp8)")


def _points(inp) -> int:
    n = 1
    for name in inp.swept:
        n = max(n, len(inp.items[name].value))
    return n


def _verify_now(r, v):
    if "verify_cost_ratio" in r:
        return r["verify_cost_ratio"].value
    return v.get("verify_cost", 1.0)


def _acceptance_list(text: str) -> list[float]:
    from llmcalc.errors import InputError
    from llmcalc.units import parse_count
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise InputError(f"--head-alphas: give a comma list like 0.7,0.55,0.4, got {text!r}")
    out = []
    for p in parts:
        x = float(parse_count(p, "--head-alphas"))
        if not 0 <= x <= 1:
            raise InputError(f"--head-alphas values are acceptance rates between 0 and 1, got {p}")
        out.append(x)
    if len(out) > 64:
        raise InputError("--head-alphas: at most 64 heads")
    return out


def _scalar(inp, name: str, text: str, label: str, minimum: float = 0, maximum: float | None = None) -> int:
    from llmcalc.errors import InputError
    from llmcalc.units import is_sweep
    flag = "--" + name.replace("_", "-")
    if is_sweep(text):
        raise InputError(f"{flag} takes one value, not a list or range")
    return int(inp.number(name, text, unit="count", label=label, integer=True, minimum=minimum, strict=False,
                          maximum=maximum))


def _resolve(model, gpu, draft):
    from llmcalc.cli_support import resolve_gpu, resolve_model
    spec = resolve_model(model, {})
    gpu_spec = resolve_gpu(gpu)
    draft_spec = resolve_model(draft, {}) if draft else None
    return spec, gpu_spec, draft_spec


def _preset_inputs(inp, spec, gpu_spec, draft_spec, draft, draft_dtype, draft_group_size, weight_dtype,
                   weight_group_size, kv_dtype, tp, draft_tp, mbu, mfu, batch, context, heads_mode, notes) -> dict:
    from llmcalc.cli_support import choice
    from llmcalc.errors import InputError
    from llmcalc.core.quant import GROUPED, WEIGHT_FORMATS as dtypes

    wd = choice("--weight-dtype", weight_dtype, dtypes)
    dd = choice("--draft-dtype", draft_dtype, dtypes) if draft_dtype is not None else (wd if draft_spec is None else "bf16")
    if draft_spec is None and not heads_mode and dd == wd:
        raise InputError(f"a quantised copy of the target needs a smaller --draft-dtype than the target's {wd} "
                         "(e.g. --draft-dtype int4)")
    inp.fixed("draft", draft_spec.name if draft_spec is not None else
              ("heads on the target" if heads_mode else f"{spec.name} in {dd}"), unit="str")
    inp.fixed("weight_dtype", wd, unit="str")
    wg = 0
    if wd in GROUPED:
        wg = _scalar(inp, "weight_group_size", weight_group_size, "elements per target weight scale")
    elif weight_group_size != "0":
        raise InputError(f"--weight-group-size applies to quantised weights, grouped ({', '.join(GROUPED)}), not {wd}")
    if not heads_mode:
        inp.fixed("draft_dtype", dd, unit="str")
    g = 0
    if dd in GROUPED:
        g = _scalar(inp, "draft_group_size", draft_group_size, "elements per draft weight scale")
    kw = dict(weight_dtype=wd, draft_dtype=dd, draft_group_size=g, weight_group_size=wg)
    if draft_spec is not None and draft_spec.vocab != spec.vocab:
        notes.append(f"the draft's vocabulary ({draft_spec.vocab:,}) differs from the target's ({spec.vocab:,}): "
                     "speculative decoding needs one tokenizer (a padded embedding is harmless)")
    if gpu_spec is None:
        notes.append("no GPU: c is the weight-bytes ratio of draft and target, the memory-bound limit; add -g for "
                     "decode-step times (KV cache, batch, compute-bound verify)")
        return kw
    from llmcalc.core.kv import KV_DTYPES
    kvd = choice("--kv-dtype", kv_dtype, KV_DTYPES)
    inp.fixed("kv_dtype", kvd, unit="str")
    inp.number("batch", batch, default=1, unit="count", label="sequences per step", integer=True)
    inp.number("context", context, default=1024, unit="count", label="tokens cached per sequence", integer=True,
               flag="--context")
    if context is None:
        notes.append("--context 1024 assumed (tokens already cached per sequence)")
    t = _scalar(inp, "tp", tp, "tensor-parallel GPUs (target)", minimum=1)
    from llmcalc.core.kv import check_tp
    check_tp(spec, t)
    if mbu is not None:
        if "," in mbu or ".." in mbu:
            raise InputError("--mbu takes one value")
        inp.number("mbu", mbu, unit="ratio", label="MBU", maximum=1.0)
    if mfu is not None:
        if "," in mfu or ".." in mfu:
            raise InputError("--mfu takes one value")
        inp.number("mfu", mfu, unit="ratio", label="MFU", maximum=1.0)
    dt = t
    if draft_spec is not None:
        dt = _scalar(inp, "draft_tp", draft_tp if draft_tp is not None else str(t), "tensor-parallel GPUs (draft)",
                     minimum=1)
        try:
            check_tp(draft_spec, dt)
        except InputError as exc:
            raise InputError(str(exc).replace("--tp", "--draft-tp", 1)) from None
    kw.update(kv_dtype=kvd, tp=t, draft_tp=dt)
    return kw


def _compute(sd, v, kname, heads_mode, acc, k_max, spec, gpu_spec, draft_spec, kw, notes):
    """Closed form (with c and v given or derived from presets), best k, break-even α and, on a GPU, the
    timings and the batch from which speculation stops paying."""
    from llmcalc.core.formula import Results

    r = Results()
    k = v[kname]
    if spec is None:
        c, verify, vv = v["cost_ratio"], None, v["verify_cost"]
    elif gpu_spec is None:
        c = sd.weight_bytes_ratio(r, spec, draft_spec, kw["weight_dtype"], kw["draft_dtype"],
                                  kw["draft_group_size"], heads=k if heads_mode else None,
                                  weight_group_size=kw["weight_group_size"])
        verify, vv = None, v["verify_cost"]
    else:
        c, vv, verify = sd.step_costs(r, spec, gpu_spec, draft_spec, v["batch"], v["context"], k,
                                      heads=heads_mode, mbu=v.get("mbu"), mfu=v.get("mfu"), **kw)
    c_ops = v.get("ops_ratio")
    if c_ops is None and spec is not None:
        c_ops = sd.ops_ratio(r, spec, draft_spec, heads=k if heads_mode else None)
    if heads_mode:
        sd.self_drafting(acc, k, c, vv, alpha=v.get("alpha"), decay=v.get("decay"), c_ops=c_ops, verify=verify,
                         out=r)
    else:
        sd.speculation(v["alpha"], k, c, vv, c_ops=c_ops, k_max=k_max, verify=verify, out=r)
    if gpu_spec is not None:
        sd.add_timings(r, spec, gpu_spec, draft_spec, v, k, heads_mode, acc, notes, **kw)
    return _ordered(r)


_FIRST = ("expected_tokens_per_step", "speedup", "optimal_k", "optimal_speedup", "speculation_pays",
          "break_even_alpha")


def _ordered(r):
    from llmcalc.core.formula import Results
    out = Results((key, r[key]) for key in _FIRST if key in r)
    out.update((key, row) for key, row in r.items() if key not in out)
    return out


# ----------------------------------------------------------------------------------------------
# Under the table: a heat map of speedup over α × k, a line over one swept input, the histogram


def _chart(report) -> str:
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


def _histogram(hist: dict) -> str:
    lines = ["accepted length per round (simulated vs closed form):"]
    width = 40
    for n, sim, exp in zip(hist["tokens_per_step"], hist["simulated_fraction"], hist["expected_fraction"]):
        bar = "█" * int(round(sim * width))
        lines.append(f"  {n:>3} tok  {bar:<{width}} {sim * 100:6.2f}%  (expected {exp * 100:6.2f}%)")
    return "\n".join(lines)


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
    table = Table(title=title, caption="red: < 1× · *: best in row",
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
    console = Console(file=buf, force_terminal=sys.stdout.isatty(), no_color=bool(os.environ.get("NO_COLOR")),
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
