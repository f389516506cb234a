"""The layout search of `parallel` and its orchestration: which flags go together, the default global batch, and
every layout of N GPUs evaluated at once (core/parallel.py's ``evaluate`` on NumPy arrays), ranked by
throughput with what bounds each and why it ranks where it does.

The search is one vectorised pass per combination of the categorical choices (ZeRO stage, recomputation,
sequence parallelism), not a loop over layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmcalc.core.formula import Results
from llmcalc.core.parallel import (BOUND_TERMS, ZERO_STAGES, Cluster, Training, _np, bounds, default_global_batch,
                                   divisors, evaluate, tp_fits)
from llmcalc.errors import InputError
from llmcalc.spec import GpuSpec, ModelSpec

SEARCH_MICRO_BATCHES = (1, 2, 4, 8, 16, 32)
SEARCH_MAX_VIRTUAL = 8
SEARCH_MIN_CP_TOKENS = 2048     # a context-parallel rank keeps at least this many tokens of a sequence
SEARCH_MAX_EP = 64

# ----------------------------------------------------------------------------------------------
# Which flags go together, declared once. Names are concepts (the command's flags with dashes as
# underscores); the command turns them into its own flag names.

# ----------------------------------------------------------------------------------------------
# The space


@dataclass
class SearchSpace:
    """What the search may vary. ``None`` = every value; a tuple = only those."""

    tp: tuple | None = None
    pp: tuple | None = None
    dp: tuple | None = None
    zero: tuple | None = None
    micro_batch: tuple | None = None
    recompute: tuple | None = None
    sp: tuple | None = None
    virtual: tuple | None = None
    cp: tuple | None = None
    ep: tuple | None = None
    uneven_pp: bool = False


@dataclass
class SearchResult:
    results: Results                  # the ranked rows (arrays), best first, fitting layouts only
    layouts: dict[str, Any]           # tp, pp, dp, zero, micro_batch, recompute, sp, virtual_stages arrays
    candidates: int = 0
    fitting: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def search_cp(seq: int, space: SearchSpace) -> list[int]:
    """Context-parallel degrees to try: those asked for, else 1 and the powers of two that leave each rank at
    least SEARCH_MIN_CP_TOKENS tokens in two equal chunks."""
    if space.cp is not None:
        for c in space.cp:
            if c > 1 and seq % (2 * c):
                raise InputError(f"--cp {c} splits each sequence into 2·cp = {2 * c} chunks (two per rank, for causal "
                                 f"load balancing): --seq {seq:,} must be a multiple of {2 * c}")
        return list(space.cp)
    return [1] + [c for c in (2, 4, 8, 16, 32) if seq // c >= SEARCH_MIN_CP_TOKENS and seq % (2 * c) == 0]


def search_ep(spec: ModelSpec, space: SearchSpace) -> list[int]:
    """Expert-parallel degrees to try: those asked for (MoE only), else 1 and every divisor of the experts up
    to SEARCH_MAX_EP."""
    if space.ep is not None:
        from llmcalc.core.moe import check_ep
        for e in space.ep:
            check_ep(spec, e)
        return list(space.ep)
    if not spec.moe:
        return [1]
    return [e for e in divisors(spec.moe.experts) if e <= SEARCH_MAX_EP]


def enumerate_layouts(spec: ModelSpec, N: int, global_batch: int, gpus_per_node: int, schedule: str,
                      space: SearchSpace, seq: int = 0) -> dict[str, Any]:
    """Every (t, cp, p, d, ep, b, v) layout of N GPUs as NumPy arrays: t within a node and taking the heads, cp
    splitting the sequence, p dividing the layers (any p ≤ L with ``uneven_pp``), d the rest, ep dividing the
    experts and d·cp; b dividing B/d; v with p·v chunks for the layers (uneven ones with ``uneven_pp``)."""
    np = _np()
    L = spec.layers
    rows = []
    eps = search_ep(spec, space)
    for t in search_tp(spec, N, gpus_per_node, space):
        for cp in search_cp(seq, space) if seq else [1]:
            if (N // t) % cp:
                continue
            for p in divisors(N // (t * cp)):
                if p > L or (not space.uneven_pp and L % p) or (space.pp is not None and p not in space.pp):
                    continue
                d = N // (t * cp * p)
                if (space.dp is not None and d not in space.dp) or global_batch % d:
                    continue
                per_replica = global_batch // d
                for b in space.micro_batch or SEARCH_MICRO_BATCHES:
                    if per_replica % b:
                        continue
                    m = per_replica // b
                    vs = [1]
                    if p > 1 and schedule == "1f1b" and m % p == 0:
                        vs += [x for x in range(2, SEARCH_MAX_VIRTUAL + 1)
                               if p * x <= L + 2 and (space.uneven_pp or L % (p * x) == 0)]
                    if space.virtual is not None:
                        vs = [x for x in vs if x in space.virtual]
                    rows += [(t, p, d, b, v, cp, ep) for v in vs for ep in eps if (d * cp) % ep == 0]
    arr = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return {k: arr[:, i] for i, k in enumerate(("tp", "pp", "dp", "micro_batch", "virtual", "cp", "ep"))}


def search(spec: ModelSpec, gpu: GpuSpec, cluster: Cluster, run: Training, N: int, space: SearchSpace | None = None,
           top: int | None = 10) -> SearchResult:
    """Evaluate every layout of N GPUs (vectorised), drop those that do not fit, rank by throughput (ties: more
    memory headroom first) and return the ``top`` rows (all when ``top`` is None or 0)."""
    import time

    np = _np()
    space = space or SearchSpace()
    t0 = time.perf_counter()
    base = enumerate_layouts(spec, N, int(run.global_batch), cluster.gpus_per_node, run.schedule, space, int(run.seq))
    zeros = space.zero if space.zero is not None else ZERO_STAGES
    recomputes = space.recompute if space.recompute is not None else ("none", "selective", "full")
    sps = space.sp if space.sp is not None else (False, True)
    parts: list[tuple[dict, Results]] = []
    candidates = 0
    for zero in zeros:
        for rec in recomputes:
            for sp in sps:
                sel = base["tp"] > 1 if sp else np.ones_like(base["tp"], dtype=bool)
                if zero > 0:
                    sel = sel & (base["dp"] * base["cp"] > 1)          # ZeRO over one GPU is ZeRO-0
                if not sel.any():
                    continue
                lay = {k: a[sel] for k, a in base.items()}
                candidates += int(sel.sum())
                res = evaluate(spec, gpu, cluster, run, dp=lay["dp"], tp=lay["tp"], pp=lay["pp"],
                               micro_batch=lay["micro_batch"], virtual=lay["virtual"], zero=zero, recompute=rec,
                               sp=sp, cp=lay["cp"], ep=lay["ep"])
                fits = np.asarray(res["fits"].value, dtype=bool)
                if not fits.any():
                    continue
                n = int(fits.sum())
                lay = {k: a[fits] for k, a in lay.items()}
                lay["zero"] = np.full(n, zero, dtype=np.float64)
                lay["recompute"] = np.full(n, rec, dtype=object)
                lay["sp"] = np.full(n, sp, dtype=bool)
                parts.append((lay, _take(res, fits, n)))
    if not parts:
        return SearchResult(Results(), {}, candidates, 0, time.perf_counter() - t0)
    lay = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    keys = [k for k in parts[0][1] if all(k in p[1] for p in parts)]
    res = Results()
    for k in keys:
        row = parts[0][1][k]
        res.put(k, np.concatenate([np.broadcast_to(np.asarray(p[1][k].value), (len(p[0]["tp"]),))
                                   for p in parts]), row.unit, row.label, row.note)
    fitting = len(lay["tp"])
    order = np.lexsort((-res["headroom_bytes"].value, res["step_seconds"].value))   # same B·s: fastest first
    if top:
        order = order[:top]
    lay = {k: a[order] for k, a in lay.items()}
    ranked = Results()
    for k, row in res.items():
        ranked.put(k, row.value[order], row.unit, row.label, row.note)
    ranked.put("bound", np.array(bounds(ranked), dtype=object), "str",
               "what bounds it")
    ranked.put("why", np.array(why(ranked), dtype=object), "str", "why it ranks here")
    return SearchResult(ranked, lay, candidates, fitting, time.perf_counter() - t0)


def _take(res: Results, mask, n: int) -> Results:
    np = _np()
    out = Results()
    for k, row in res.items():
        val = row.value
        if hasattr(val, "shape") and getattr(val, "ndim", 0) and val.shape[0] == mask.shape[0]:
            val = val[mask]
        else:
            val = np.broadcast_to(np.asarray(val), (n,))
        out.put(k, val, row.unit, row.label, row.note)
    return out


LAYOUT_KEYS = ("tp", "pp", "dp", "zero", "micro_batch", "virtual", "recompute", "sp", "cp", "ep")


def layout_text(tp, pp, dp, zero, micro_batch, virtual, recompute, sp, cp=1, ep=1) -> str:
    """``tp8 cp2 pp2×v7 dp1024 ep8 zero2 b1 recomp:full sp``: one layout on one line."""
    parts = [f"tp{int(tp)}"] + ([f"cp{int(cp)}"] if cp > 1 else []) + [
        f"pp{int(pp)}" + (f"×v{int(virtual)}" if virtual > 1 else ""), f"dp{int(dp)}"] + (
        [f"ep{int(ep)}"] if ep > 1 else []) + [f"zero{int(zero)}", f"b{int(micro_batch)}"]
    if recompute != "none":
        parts.append("recomp:" + ("sel" if recompute == "selective" else recompute))
    if sp:
        parts.append("sp")
    return " ".join(parts)


def why(r: Results) -> list[str]:
    """For each ranked row: the best says what it spends its step on; the others say which term costs them
    the most time against the best."""
    np = _np()
    if not len(r["step_seconds"].value):
        return []
    names = [n for n, _ in BOUND_TERMS]
    terms = np.stack([np.asarray(r[k].value, dtype=float) for _, k in BOUND_TERMS], axis=1)
    steps = np.asarray(r["step_seconds"].value, dtype=float)
    free = np.asarray(r["headroom_bytes"].value, dtype=float)
    deltas = terms - terms[0]
    worst, worst_delta = deltas.argmax(axis=1).tolist(), deltas.max(axis=1).tolist()
    slower = (steps / steps[0] - 1).tolist()
    more = ((free - free[0]) / 2**30).tolist()
    parts = sorted(((terms[0, j] / steps[0], names[j]) for j in range(1, len(names))), reverse=True)
    lead = ", ".join(f"{name} {s:.0%}" for s, name in parts[:2] if s >= 0.005)
    out = [f"fastest; {'overheads: ' + lead if lead else 'compute-bound'}; {free[0] / 2**30:.0f} GiB free"]
    for i in range(1, len(slower)):
        if slower[i] < 0.0005:
            out.append(f"ties #1 ({slower[i]:+.2%}); {abs(more[i]):.1f} GiB {'more' if more[i] > 0 else 'less'} free")
        else:
            out.append(f"{slower[i]:+.1%}: more {names[worst[i]]} (+{_ms(worst_delta[i])})")
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.2f} ms"


def search_tp(spec: ModelSpec, N: int, gpus_per_node: int, space: "SearchSpace") -> list[int]:
    """Tensor-parallel degrees to try: those asked for (across nodes too), else every divisor of N inside a
    node; either way only those the model's heads take (kv.check_tp's rule)."""
    tps = list(space.tp) if space.tp is not None else [x for x in divisors(N) if x <= gpus_per_node]
    return [x for x in tps if N % x == 0 and tp_fits(spec, x)]


def min_dp(spec: ModelSpec, N: int, gpus_per_node: int, space: "SearchSpace") -> int:
    """The smallest data-parallel degree any layout of the space has (0 when there is none)."""
    best = 0
    for t in search_tp(spec, N, gpus_per_node, space):
        for p in divisors(N // t):
            if p <= spec.layers and (space.uneven_pp or spec.layers % p == 0) and (space.pp is None or p in space.pp):
                best = max(best, t * p)
    return N // best if best else 0


def search_global_batch(spec: ModelSpec, N: int, seq: int, gpus_per_node: int, space: "SearchSpace") -> tuple[int, str]:
    """The default global batch of a search: about 4M tokens, raised to a multiple of the smallest
    data-parallel degree in the space; and the note that says so."""
    B = default_global_batch(seq)
    smallest = min_dp(spec, N, gpus_per_node, space)
    raised = bool(smallest and B % smallest)
    if raised:
        B = -(-B // smallest) * smallest
    note = (f"--global-batch {B:,} sequences ({B * seq / 1e6:.1f}M tokens) by default"
            + (f", raised to a multiple of the smallest data-parallel degree, {smallest:,}" if raised else "")
            + " (set --global-batch)")
    return B, note


def no_fit_message(res: "SearchResult", N: int, gpu_name: str) -> str:
    why = ("no layout to try: check --tp/--pp/--dp, and that --global-batch is a multiple of the data-parallel "
           "degree" if not res.candidates else
           "none fits: try more GPUs, --recompute full, ZeRO, a smaller --seq or --micro-batch")
    return f"no layout of {N:,} GPUs fits {gpu_name}: {why}"


def summary_note(res: "SearchResult", top: int) -> str:
    return (f"searched {res.candidates:,} layouts in {res.seconds * 1e3:.0f} ms; {res.fitting:,} fit"
            + (f"; showing the best {top}" if top and res.fitting > top else ""))


def layout_columns(lay: dict[str, Any]) -> dict[str, tuple[list, str]]:
    """A search's layouts as one plain column per degree (output name -> (values, unit)), for machines."""
    def plain(arr) -> list:
        return [int(x) if isinstance(x, float) and x.is_integer() else x
                for x in (arr.tolist() if hasattr(arr, "tolist") else arr)]
    names = (("tp", "tp"), ("pp", "pp"), ("dp", "dp"), ("cp", "cp"), ("ep", "ep"), ("zero", "zero"),
             ("micro_batch", "micro_batch"), ("virtual_stages", "virtual"), ("recompute", "recompute"), ("sp", "sp"))
    return {name: (plain(lay[key]), {"recompute": "str", "sp": "bool"}.get(key, "count")) for name, key in names}


def best_layout(lay: dict[str, Any]) -> dict[str, Any]:
    """The first (best) row of a search's layouts as plain Python values."""
    return {k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in lay.items()}


def evaluate_best(spec: ModelSpec, gpu: GpuSpec, cluster: Cluster, run: Training, lay: dict[str, Any]) -> Results:
    """The best layout evaluated on its own (scalars), so --explain can show its formulas."""
    best = best_layout(lay)
    return evaluate(spec, gpu, cluster, run, dp=int(best["dp"]), tp=int(best["tp"]), pp=int(best["pp"]),
                    micro_batch=int(best["micro_batch"]), virtual=int(best["virtual"]), zero=int(best["zero"]),
                    recompute=best["recompute"], sp=bool(best["sp"]), cp=int(best["cp"]), ep=int(best["ep"]))
