"""`llmcalc specdec`: speculative decoding, closed form, simulated, self-drafting heads, and from real model
and GPU presets."""

from __future__ import annotations

from llmcalc.cli_support import (KvDtypeOpt, MbuOpt, MfuOpt, TpOpt, WeightDtypeOpt, WeightGroupOpt, declared,
                                 shared_options)
from llmcalc.flagrules import conflict, needs

EPILOG = """Examples:

  llmcalc specdec --alpha 0.75 --k 7 --cost-ratio 0.02 --simulate 100k

  llmcalc specdec -m llama-3.1-70b --draft llama-3.1-8b -g h100-sxm --tp 4 --alpha 0.8 --batch 1..512x2

  llmcalc specdec --alpha 0.5..0.9+0.1 --k 1..8+1 --cost-ratio 0.05 --json | jq -c '.rows[] | [.alpha, .k, .speedup]'
"""

SPEC = "Speculation"
HEADS = "Self-drafting heads (Medusa)"
PRESETS = "From presets (c and the verify cost from decode-step times)"
MC = "Monte Carlo"


# The flags, declared once (cli_support.declared): name, flag(s), panel, default, help; or name and an option family.
OPTIONS = (
    ("alpha", "-a --alpha", SPEC, None, "Per-token acceptance rate α, 0-1 (Leviathan et al.'s E(β)). Lists sweep."),
    ("k", "-k --k", SPEC, None, "Draft tokens proposed per round (γ); default 4. Lists/ranges sweep."),
    ("cost_ratio", "-c --cost-ratio", SPEC, None, "Draft step time ÷ target step time (c), or from presets: -m/--draft/-g."),
    ("verify_cost", "--verify-cost", SPEC, None, "Target's (k+1)-token verify step ÷ its 1-token step (v); default 1 (paper)."),
    ("ops_ratio", "--ops-ratio", SPEC, None, "Draft ÷ target arithmetic per token (ĉ, Theorem 3.11); default c, or P ratio."),
    ("k_max", "--k-max", SPEC, None, "Largest k tried for optimal_k (default 32; the k asked about is always tried)."),
    ("medusa_heads", "--medusa-heads", HEADS, None, "Self-drafting heads (k = heads); --alpha is head 1's acceptance."),
    ("decay", "--decay", HEADS, None, "Head i accepts with α·decay^(i−1) (given heads 1..i−1 did)."),
    ("head_alphas", "--head-alphas", HEADS, None, "Each head's acceptance, e.g. 0.7,0.55,0.4 (not --alpha/--decay)."),
    ("draft", "--draft", PRESETS, None, "Draft model preset (or YAML / config.json path); needs -m and -g."),
    ("draft_dtype", "--draft-dtype", PRESETS, None, "Draft weights: a dtype or named format (int4, q4_k_m, nf4, ...); "
     "without --draft, a quantised copy of the target."),
    ("draft_group_size", "--draft-group-size", PRESETS, None, "Quantised draft: elements per fp16 scale (e.g. 32)."),
    ("batch", "-b --batch", PRESETS, None, "Sequences decoded together; default 1. Lists/ranges sweep."),
    ("context", "--context --seq", PRESETS, None, "Tokens already in each sequence's cache; default 1024."),
    ("weight_dtype", WeightDtypeOpt), ("weight_group_size", WeightGroupOpt), ("kv_dtype", KvDtypeOpt),
    ("tp", TpOpt), ("draft_tp", "--draft-tp", PRESETS, None, "Tensor-parallel GPUs of the draft; default the target's --tp."),
    ("mbu", MbuOpt), ("mfu", MfuOpt),
    ("simulate", "--simulate", MC, None, "Play N rounds (Monte Carlo) beside the closed form, e.g. 100k."),
    ("seed", "--seed", MC, None, "Random seed of --simulate (default 0)."),
)


# Which flags go together (checked in order; the first broken rule is the error). "heads" stands for either
# --medusa-heads or --head-alphas.
RULES = (
    needs("draft", "model", "--draft needs the target too: -m TARGET --draft DRAFT -g GPU"),
    needs("draft", "gpu", "--draft needs -g GPU: c comes from both models' decode-step times on it "
          "(or give --cost-ratio without -m/--draft)"),
    conflict(("heads", "draft"), "--medusa-heads/--head-alphas draft with heads on the target: drop --draft"),
    needs("draft_dtype", "model", "--draft-dtype needs -m TARGET (the draft is that model, or --draft, in this dtype)"),
    needs("model", ("draft", "draft_dtype", "heads"), "-m TARGET needs a draft: --draft DRAFT -g GPU, --draft-dtype "
          "int4 (a quantised copy), or --medusa-heads N"),
    conflict(("model", "cost_ratio"), "give either --cost-ratio or -m/--draft (which derive c), not both"),
    needs("gpu", "model", "-g GPU needs -m TARGET and a draft (--draft, --draft-dtype or --medusa-heads)"),
    *(needs(name, "gpu", f"{flag} needs -g GPU (and -m TARGET with a draft): it sets decode-step times")
      for name, flag in (("batch", "--batch"), ("context", "--context"), ("mbu", "--mbu"), ("mfu", "--mfu"),
                         ("tp", "--tp"), ("draft_tp", "--draft-tp"))),
    needs("draft_tp", "draft", "--draft-tp applies to a --draft model (a quantised copy runs with the target's --tp)"),
    conflict(("gpu", "verify_cost"), "--verify-cost comes from the target's decode-step times when -g is given; "
             "drop one"),
    conflict(("heads", "k"), "with self-drafting heads the depth is --medusa-heads N, not --k"),
    needs("weight_group_size", "model", "--weight-group-size applies to the target's quantised weights: add "
          "-m TARGET and --weight-dtype int4 (or int8, fp8)"),
    needs("draft_group_size", "draft_dtype", "--draft-group-size applies to a quantised draft: add --draft-dtype "
          "int4 (or int8, fp8)"),
    *(conflict(("head_alphas", name), "--head-alphas gives each head's acceptance: drop --alpha and --decay")
      for name in ("alpha", "decay")),
    needs((), ("alpha", "head_alphas"), "give --alpha, the per-token acceptance rate (0-1, e.g. 0.8; Leviathan "
          "et al. measured 0.5-0.9 for drafts ~100× smaller)"),
    needs("medusa_heads", ("decay", "head_alphas"), "--medusa-heads needs how acceptance falls with depth: --decay d "
          "(head i accepts α·d^(i−1)) or --head-alphas a1,a2,..."),
    needs("decay", "heads", "--decay applies to --medusa-heads; a draft model has one α per token"),
    conflict(("heads", "k_max"), "--k-max applies to a draft model; with heads the best number of heads is "
             "searched"),
    needs((), ("cost_ratio", "model", "heads"), "give --cost-ratio c (draft step ÷ target step, e.g. 0.05), or take "
          "it from presets: -m TARGET --draft DRAFT -g GPU"),
    needs("seed", "simulate", "--seed applies to --simulate N; add --simulate (e.g. --simulate 100k)"),
)


# Flags whose documented default, typed out, counts as not given (as before the rules table).
_DEFAULTS = {"tp": "1", "seed": "0", "k_max": "32", "weight_group_size": "0", "draft_group_size": "0"}


@shared_options(arch=False)
@declared(OPTIONS)
def specdec(model, gpu, f: dict, arch, out: dict) -> None:
    """Speculative decoding: expected tokens per target step (1 − α^(k+1))/(1 − α), the speedup
    E/(k·c + v), the best k and its speedup, and the acceptance rate below which speculating loses; with
    --simulate a Monte Carlo beside it; with -m/--draft/-g the costs from both models' decode-step times."""
    flags = {**f, "model": model, "gpu": gpu}
    from llmcalc.errors import InputError
    from llmcalc.flagrules import check

    given = {name for name, value in flags.items() if value not in (None, _DEFAULTS.get(name))}
    if f["medusa_heads"] is not None or f["head_alphas"] is not None:
        given.add("heads")
    check(RULES, given)
    try:
        _run(given, flags, out)
    except InputError as exc:     # the core names concepts; here each is the flag of the same name
        raise exc.for_flags({name: "--" + name.replace("_", "-") for name in flags}) from None


# Each numeric input once: its unit, label and range (Inputs.number's keywords).
_UNIT = dict(unit="ratio", minimum=0, strict=False, maximum=1)
_COUNT = dict(unit="count", integer=True, minimum=1, strict=False)
INPUTS = {
    "alpha": dict(_UNIT, label="acceptance rate α"), "decay": dict(_UNIT, label="acceptance decay per head"),
    "k": dict(_COUNT, default=4, label="draft tokens per round (γ)"), "medusa_heads": dict(_COUNT, label="heads (k)"),
    "cost_ratio": dict(unit="factor", label="draft ÷ target step time (c)", minimum=0, strict=False),
    "verify_cost": dict(unit="factor", label="verify step ÷ 1-token step (v)", minimum=0, strict=True),
    "ops_ratio": dict(unit="factor", label="draft ÷ target arithmetic per token (ĉ)", minimum=0, strict=False),
    "batch": dict(unit="count", default=1, label="sequences per step", integer=True),
    "context": dict(unit="count", default=1024, label="tokens cached per sequence", integer=True),
    "mbu": dict(unit="ratio", label="MBU", maximum=1.0), "mfu": dict(unit="ratio", label="MFU", maximum=1.0),
    "simulate": dict(_COUNT, label="simulated rounds", single=True),
    "seed": dict(_COUNT, minimum=0, default=0, label="random seed", single=True),
    "k_max": dict(_COUNT, label="largest k tried", single=True),
}


def _run(given: set, f: dict, out: dict) -> None:
    """Read the flags into inputs (scalars or sweep axes), let the core compute, render."""
    from llmcalc.cli_support import Inputs, output, resolve_gpu, resolve_model
    from llmcalc.core import specdec as sd
    from llmcalc.errors import InputError
    from llmcalc.render import Report
    from llmcalc.units import parse_values

    heads_mode = "heads" in given
    notes: list[str] = []
    inp = Inputs()

    def number(name: str, **override):
        return inp.number(name, f[name], **{**INPUTS[name], **override})

    acc_list = None
    if f["head_alphas"] is not None:
        acc_list = sd.check_acceptance([float(x) for x in parse_values(f["head_alphas"], what="--head-alphas")])
        inp.fixed("head_alphas", acc_list, unit="str", label="acceptance of each head")
        number("medusa_heads", default=len(acc_list), label="heads used", maximum=len(acc_list))
    else:
        number("alpha")
        if heads_mode:
            number("medusa_heads")
            number("decay")
        else:
            number("k")
            if f["k"] is None:
                notes.append("--k 4 assumed; optimal_k gives the best depth")
    k_max = number("k_max", default=None if heads_mode else sd.DEFAULT_K_MAX, maximum=sd.MAX_K)

    # -- costs: given (closed form), or from presets
    spec = gpu_spec = draft_spec = None
    formats = None
    if f["model"] is None:
        number("cost_ratio", default=0.0 if heads_mode else None)
        if heads_mode and f["cost_ratio"] is None:
            notes.append("--cost-ratio 0 assumed: the heads run inside the target's forward pass (near-zero "
                         "cost); with -m the heads' weight bytes set it")
        number("verify_cost", default=1.0)
    else:
        spec, gpu_spec = resolve_model(f["model"], {}), resolve_gpu(f["gpu"])
        draft_spec = resolve_model(f["draft"], {}) if f["draft"] else None
        if f["verify_cost"] is not None or gpu_spec is None:
            number("verify_cost", default=1.0)
    number("ops_ratio")
    if spec is not None:
        formats = _preset_inputs(inp, number, f, spec, gpu_spec, draft_spec, heads_mode, notes)

    rounds = seed = None
    if f["simulate"] is not None:
        rounds, seed = int(number("simulate")), int(number("seed"))
    if rounds is not None and inp.outer:
        raise InputError("--simulate plays one setting: give one value of each format and layout flag")
    found: list[str] = []

    def compute(v):
        acc = sd.acceptance(v, acc_list) if heads_mode else None
        return sd.run(v, heads_mode=heads_mode, acceptance=acc, k_max=int(k_max or sd.DEFAULT_K_MAX), spec=spec,
                      gpu=gpu_spec, draft_spec=draft_spec, formats=formats(v) if formats else {}, notes=found)

    r = inp.evaluate(compute)
    notes += [n for n in dict.fromkeys(found) if n not in notes]
    v = {k: it.value for k, it in inp.items.items()}
    acc = sd.acceptance(v, acc_list) if heads_mode and rounds is not None else None
    extra = {"draft_model": draft_spec.to_dict()} if draft_spec is not None else {}
    if rounds is not None:
        points = max([len(inp.items[name].value) for name in inp.swept] or [1])
        extra["histogram"] = sd.simulate_into(r, v, heads_mode=heads_mode, acceptance=acc, rounds=rounds,
                                              seed=seed, points=points)
    report = Report("specdec", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=sd.sweep_columns(r, gpu_spec is not None), extra=extra, chart=_chart)
    output(report, **out)


def _chart(report) -> str:
    from llmcalc.charts_specdec import chart
    return chart(report)


def _preset_inputs(inp, number, f, spec, gpu_spec, draft_spec, heads_mode, notes):
    """The preset mode's inputs, echoed (formats and layouts may be comma lists: outer sweep axes), and a
    function giving one point's formats and layouts, checked (the core picks the draft's format)."""
    from llmcalc.core import specdec as sd
    from llmcalc.core.kv import KV_DTYPES
    from llmcalc.core.quant import WEIGHT_FORMATS as dtypes

    inp.fixed("draft", draft_spec.name if draft_spec is not None else "heads on the target" if heads_mode
              else f"{spec.name}, quantised", unit="str")
    inp.choices("weight_dtype", f["weight_dtype"], dtypes, default="bf16")
    if not heads_mode:
        inp.choices("draft_dtype", f["draft_dtype"], dtypes)
    for name, label in (("weight_group_size", "elements per target weight scale"),
                        ("draft_group_size", "elements per draft scale")):
        inp.number(name, f[name] or "0", unit="count", label=label, integer=True, minimum=0, strict=False,
                   outer=True)
    notes += sd.preset_notes(spec, draft_spec, gpu_spec)
    if gpu_spec is not None:
        inp.choices("kv_dtype", f["kv_dtype"], KV_DTYPES, default="bf16")
        number("batch")
        number("context", flag="--context")
        if f["context"] is None:
            notes.append("--context 1024 assumed (tokens already cached per sequence)")
        inp.number("tp", f["tp"] or "1", unit="count", label="tensor-parallel GPUs (target)", integer=True,
                   minimum=1, strict=False, outer=True)
        for name in ("mbu", "mfu"):
            if f[name] is not None:
                number(name)
        if draft_spec:
            inp.number("draft_tp", f["draft_tp"], unit="count", label="tensor-parallel GPUs (draft; default --tp)",
                       integer=True, minimum=1, strict=False, outer=True)

    return lambda v: sd.point_formats(spec, draft_spec, heads_mode, gpu_spec, v)
