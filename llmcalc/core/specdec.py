"""Speculative decoding: expected tokens per target step, walltime speedup, the best speculation depth, the
acceptance rate below which speculation loses, a Monte Carlo check, and self-drafting (Medusa-style) heads.

Notation of Leviathan, Kalman & Matias 2023 (arXiv:2211.17192), with γ written k:

* α  per-token acceptance rate (the mean of β = Σ_x min(p(x), q(x)), Corollary 3.6), assumed i.i.d.
* k  draft tokens proposed per round (γ)
* c  cost coefficient: one draft step ÷ one target step (Definition 3.7)
* v  verify cost: the target's (k+1)-token forward ÷ its 1-token step. The paper takes v = 1 ("we can run
     γ + 1 concurrent evaluations of M_p in parallel without increasing the walltime", sec. 3.3), true while
     decode is memory-bound; at large batch the verify step is compute-bound and v grows towards k + 1.

Tokens per round are a capped geometric variable: E = (1 − α^(k+1))/(1 − α) (eq. 1), E = k + 1 at α = 1.
Walltime improvement E / (k·c + v) (Theorem 3.8 with v = 1); extra arithmetic (k·ĉ + k + 1)/E (Theorem 3.11).

Self-drafting heads (Medusa, Cai et al. 2024, arXiv:2401.10774; multi-token prediction, seed 002): head i
guesses token t+i, accepted (given heads 1..i−1 were) with probability α_i, so E = 1 + Σ_i Π_{j≤i} α_j.
All heads run in the target's own forward pass: one draft cost c per round, not k of them.

From presets, c and v are not guessed: they are ratios of serve's decode-step times (core/serve.py) of the
draft and of the target's (k+1)-token verify step to its 1-token step, at the given batch, context and
tensor parallelism; without a GPU, c is the weight-bytes ratio (the memory-bound limit). As the batch grows the
verify step turns compute-bound, v rises towards k + 1, and speculation stops paying (break_even_batch).

Every function takes α, k, c and v as numbers or NumPy arrays of one broadcastable shape.
"""

from __future__ import annotations

import math

from llmcalc.core.formula import Formula, Results, any_of, maximum, minimum, where
from llmcalc.errors import InputError


def _formula(expr: str) -> Formula:
    """A Formula (its text shows powers as ``^``: ``a**(k + 1)`` -> ``a^(k + 1)``)."""
    return Formula(expr)


# Leviathan et al. 2023 eq. (1); where() keeps α = 1 exact (k + 1) and the denominator never 0.
TOKENS = _formula("where(a < 1, (1 - a**(k + 1)) / max(1 - a, 1e-300), k + 1)")
# Theorem 3.8, with the verify step's cost v (v = 1 in the paper).
SPEEDUP = _formula("E / (k * c + v)")
CEILING = _formula("where(a < 1, 1 / (max(1 - a, 1e-300) * (k * c + 1)), 1e300)")  # no depth ≥ k does better
# Self-drafting heads: all k heads run once per round inside the target's forward pass.
HEAD_ALPHA = _formula("a * d**(i - 1)")
HEADS_TOKENS = _formula("1 + S")
HEADS_SPEEDUP = _formula("E / (c + v)")
# n heads cost n times one head (each its own block and vocabulary projection).
HEADS_COST = _formula("n * c_head")
PER_HEAD = _formula("c / n")
BREAK_EVEN_COST = _formula("k * c + v")
# Theorem 3.11: arithmetic operations per token, relative to plain decoding (ĉ = draft/target ops per token).
OPERATIONS = _formula("(k * c_ops + k + 1) / E")
HEADS_OPERATIONS = _formula("(c_ops + k + 1) / E")
# From step times: c and v as ratios to one plain target decode step.
COST_RATIO = _formula("t_draft / t_target")
VERIFY_RATIO = _formula("t_verify / t_target")
ROUND_SECONDS = _formula("k * t_draft + t_verify")
HEADS_ROUND_SECONDS = _formula("t_heads + t_verify")
PLAIN_TOKENS_PER_S = _formula("1 / t_target")
SPEC_TOKENS_PER_S = _formula("E / t_round")

DEFAULT_K_MAX = 32
MAX_K = 4096
MAX_SIMULATED_DRAWS = 2 * 10**9     # rounds × k random numbers per command
_BISECTION_STEPS = 64


def _np():
    import numpy as np
    return np


def _lowest(x) -> float:
    return float(x.min()) if hasattr(x, "min") else float(x)


def tokens_per_step(alpha, k):
    """Expected tokens per target step, (1 − α^(k+1))/(1 − α); exactly k + 1 at α = 1 and 1 at α = 0."""
    return TOKENS(a=alpha, k=k)


def _top(x) -> int:
    """The largest value of a number or an array, as an int (a search bound)."""
    return int(x.max()) if hasattr(x, "max") else int(x)


def _per_head(acceptance) -> list:
    """Per-head acceptance as a list over heads; each entry a number or an array over the sweep points.
    Takes a list of numbers or arrays, or an array (..., n) with the heads along the last axis."""
    if hasattr(acceptance, "shape"):
        if acceptance.ndim == 1:
            return [float(a) for a in acceptance]
        return [acceptance[..., i] for i in range(acceptance.shape[-1])]
    return list(acceptance)


def head_acceptance(alpha, decay, heads: int) -> list:
    """Per-head acceptance α_i = α·d^(i−1), i = 1..heads, as a list over heads (numbers or arrays)."""
    return [HEAD_ALPHA(a=alpha, d=decay, i=i) for i in range(1, int(heads) + 1)]


def _reach(acceptance) -> list:
    """Π_{j≤i} α_j for i = 1..n: the chance that head i's guess is reached and accepted."""
    out, p = [], 1.0
    for a in _per_head(acceptance):
        p = p * a
        out.append(p)
    return out


def heads_tokens_per_step(acceptance, heads=None):
    """1 + Σ_i Π_{j≤i} α_j over the first ``heads`` heads (all of them if None)."""
    S = 0.0
    for i, p in enumerate(_reach(acceptance), start=1):
        S = S + (p if heads is None else where(heads >= i, p, 0.0))
    return HEADS_TOKENS(S=S)


# ----------------------------------------------------------------------------------------------
# Best k and break-even α: brute force over k and bisection over α, on numbers or arrays alike


def _best(speedups):
    """(n, speedup) of the best of ``speedups`` (an iterable of speedups for n = 1, 2, ...), element-wise on
    arrays; ties go to the smaller n. Numbers give (int, float); arrays give two arrays."""
    best_n, best_s = 1, None
    for n, s in enumerate(speedups, start=1):
        best_n = 1 if best_s is None else where(s > best_s, n, best_n)
        best_s = s if best_s is None else maximum(s, best_s)
    if hasattr(best_n, "shape") or hasattr(best_s, "shape"):
        import numpy as np
        return np.broadcast_to(np.asarray(best_n, dtype=float), np.shape(best_s)).copy(), best_s
    return int(best_n), float(best_s)


def optimal_k(alpha, c, v=1.0, k_max: int = DEFAULT_K_MAX, verify=None):
    """The k in 1..k_max with the highest speedup E(α, k)/(k·c + v), and that speedup (brute force, sec. 3.5).
    ``verify``: optional callable k -> v at that k (the verify cost depends on k when it comes from step
    times)."""
    if verify is None:
        return _best(SPEEDUP(E=TOKENS(a=alpha, k=k), k=k, c=c, v=v) for k in range(1, int(k_max) + 1))

    def speedups():     # verify costs from step times: each k costs a step evaluation, so stop when no k can win
        best = None
        for k in range(1, int(k_max) + 1):
            s = SPEEDUP(E=TOKENS(a=alpha, k=k), k=k, c=c, v=verify(k))
            best = s if best is None else maximum(s, best)
            yield s
            # A verify step of k + 1 tokens never takes less than a 1-token step (v ≥ 1) and E < 1/(1 − α), so
            # no deeper k' beats 1/((1 − α)·(k'·c + 1)) ≤ CEILING at k + 1: past it at every point, stop.
            if not any_of(CEILING(a=alpha, k=k + 1, c=c) >= best):
                return
    return _best(speedups())


def optimal_heads(acceptance, c_head, v=1.0, verify=None):
    """Best number of heads n in 1..N for per-head acceptance: maximises E_n/(n·c_head + v_n). Each head
    is its own residual block and vocabulary projection (Medusa-1, Cai et al. 2024 sec. 2.1.1), so the
    draft cost grows with the heads evaluated."""
    def speedups():
        S = 0.0
        for n, p in enumerate(_reach(acceptance), start=1):
            S = S + p
            yield HEADS_SPEEDUP(E=HEADS_TOKENS(S=S), c=HEADS_COST(n=n, c_head=c_head),
                                v=verify(n) if verify is not None else v)
    return _best(speedups())


def break_even_alpha(k, c, v=1.0, tokens=None):
    """The α at which speculation exactly breaks even, E(α) = k·c + v (Theorem 3.8 = 1); below it, plain
    decoding is faster. 0 when even α = 0 breaks even; NaN when even α = 1 loses (k·c + v ≥ k + 1).

    E is increasing in α, so this is a bisection (element-wise on arrays). ``tokens``: α -> E (default
    eq. 1 at this k). With k = 1 and v = 1 the answer is α = c (Corollary 3.9).
    """
    cost = BREAK_EVEN_COST(k=k, c=c, v=v)
    E = tokens or (lambda a: TOKENS(a=a, k=k))
    lo, hi = 0.0, 1.0
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        pays = E(mid) > cost
        hi = where(pays, mid, hi)
        lo = where(pays, lo, mid)
    out = where(E(0.0) >= cost, 0.0, hi)
    out = where(E(1.0) <= cost, math.nan, out)
    return out if hasattr(out, "shape") else float(out)


# ----------------------------------------------------------------------------------------------
# Monte Carlo


def simulate(acceptance, rounds: int, rng, chunk: int = 1 << 22):
    """Play ``rounds`` speculation rounds: draft token i is accepted with probability acceptance[i] if all
    before it were (independent uniform draws, as the i.i.d. assumption of eq. 1 says). Returns the count of
    rounds that produced 1, 2, ..., k+1 tokens (accepted drafts + the target's own token)."""
    np = _np()
    acc = np.asarray(acceptance, dtype=float).reshape(-1)
    k = acc.size
    counts = np.zeros(k + 1, dtype=np.int64)
    per = max(1, chunk // max(k, 1))
    left = int(rounds)
    while left > 0:
        m = min(per, left)
        ok = rng.random((m, k)) < acc              # (m, k) Bernoulli trials
        accepted = np.where(ok.all(axis=1), k, np.argmin(ok, axis=1))  # first rejection ends the round
        counts += np.bincount(accepted, minlength=k + 1)
        left -= m
    return counts


def summarise(counts):
    """Mean tokens per step, its standard error, and the fraction of rounds at each length."""
    np = _np()
    counts = np.asarray(counts, dtype=float)
    n = counts.sum()
    tokens = np.arange(1, counts.size + 1, dtype=float)
    mean = float((counts * tokens).sum() / n)
    var = float((counts * (tokens - mean) ** 2).sum() / max(n - 1, 1))
    return mean, (var / n) ** 0.5, counts / n


def length_distribution(acceptance):
    """Closed-form P(tokens = i) for i = 1..k+1: reach_{i−1}·(1 − α_i), and reach_k for k + 1 tokens."""
    np = _np()
    acc = np.asarray(acceptance, dtype=float).reshape(-1)
    reach = np.concatenate([[1.0], np.cumprod(acc)])
    return np.concatenate([reach[:-1] * (1 - acc), reach[-1:]])


# ----------------------------------------------------------------------------------------------
# The report


def speculation(alpha, k, c, v=1.0, *, c_ops=None, k_max: int = DEFAULT_K_MAX, verify=None,
                out: Results | None = None) -> Results:
    """A draft model proposing k tokens for the target to verify: tokens per step, speedup, best k and its
    speedup, break-even α, arithmetic-operations factor (Leviathan et al. 2023 sec. 3). The best k is
    searched in 1..max(k_max, k), so it is never worse than the k asked about."""
    r = Results() if out is None else out
    E = r.calc("expected_tokens_per_step", TOKENS, "number", "expected tokens per target step (eq. 1)",
               note="α = 1: every draft accepted, k + 1", a=alpha, k=k)
    r.calc("speedup", SPEEDUP, "factor", "walltime speedup over plain decoding (Theorem 3.8)", E=E, k=k, c=c, v=v)
    top = max(int(k_max), _top(k))
    kb, sb = optimal_k(alpha, c, v, top, verify=verify)
    r.put("optimal_k", kb, "count", f"best k in 1..{top} (brute force)",
          note="argmax over k of (1 − α^(k+1))/((1 − α)(k·c + v)); ties to the smaller k"
          + (f"; searched past k_max {k_max} up to the k asked about" if top > k_max else ""))
    r.put("optimal_speedup", sb, "factor", "speedup at the best k")
    r.put("speculation_pays", sb > 1, "bool", "best k beats plain decoding")
    r.put("break_even_alpha", break_even_alpha(k, c, v), "ratio",
          "acceptance rate at which this k breaks even (below: slower)",
          note="root of (1 − α^(k+1))/(1 − α) = k·c + v by bisection; empty when even α = 1 loses")
    r.calc("operations_factor", OPERATIONS, "factor", "arithmetic operations vs plain decoding (Theorem 3.11)",
           k=k, c_ops=c if c_ops is None else c_ops, E=E)
    return r


def self_drafting(acceptance, heads, c, v=1.0, *, alpha=None, decay=None, c_ops=None, verify=None,
                  out: Results | None = None) -> Results:
    """Medusa-style heads on the target: per-head acceptance (a list over heads, or an array (..., n); head
    i only counts if 1..i−1 did), ``heads`` of them used, costing c per round together; the best number of
    heads in 1..n is searched with the cost scaled per head (n·c/heads)."""
    r = Results() if out is None else out
    acc = _per_head(acceptance)
    E = r.calc("expected_tokens_per_step", HEADS_TOKENS, "number",
               "expected tokens per target step, 1 + Σ_i Π_{j≤i} α_j (heads)",
               note="S = Σ_i Π_{j≤i} α_j: the chance each head's guess is reached and accepted",
               S=heads_tokens_per_step(acc, heads) - 1)
    r.calc("speedup", HEADS_SPEEDUP, "factor", "walltime speedup over plain decoding", E=E, c=c, v=v)
    kb, sb = optimal_heads(acc, PER_HEAD(c=c, n=heads), v, verify=verify)
    r.put("optimal_k", kb, "count", f"best number of heads in 1..{len(acc)}",
          note="argmax over n of E_n/(n·c/heads + v_n): each head adds its own cost")
    r.put("optimal_speedup", sb, "factor", "speedup with the best number of heads")
    r.put("speculation_pays", sb > 1, "bool", "heads beat plain decoding")
    if alpha is not None and decay is not None:
        def tokens(a):
            return heads_tokens_per_step(head_acceptance(a, decay, len(acc)), heads)
        r.put("break_even_alpha", break_even_alpha(1, c, v, tokens=tokens), "ratio",
              "first head's acceptance at which the heads break even",
              note="root of 1 + Σ_i α^i·d^(i(i−1)/2) = c + v by bisection")
    r.calc("operations_factor", HEADS_OPERATIONS, "factor", "arithmetic operations vs plain decoding",
           c_ops=c if c_ops is None else c_ops, k=heads, E=E)
    return r


def add_simulation(r: Results, acceptance, rounds: int, seed: int, k=None, c=None, v=None,
                   heads_mode: bool = False) -> dict:
    """Monte Carlo beside the closed form: adds simulated_tokens_per_step, its standard error, and the
    simulated speedup; returns the histogram (single point) or per-point histograms."""
    np = _np()
    rng = np.random.default_rng(seed)
    acc = np.asarray(acceptance, dtype=float)
    if acc.ndim == 1:
        acc = acc[None]
        single = True
    else:
        single = False
    ks = np.broadcast_to(np.asarray(k, dtype=float), acc.shape[:1]).astype(int)
    means, errs, hists = [], [], []
    for row, kk in zip(acc, ks):
        probs = row[:kk]
        counts = simulate(probs, rounds, rng)
        mean, se, frac = summarise(counts)
        means.append(mean)
        errs.append(se)
        hists.append({"tokens_per_step": list(range(1, kk + 2)), "count": counts.tolist(),
                      "simulated_fraction": frac.tolist(),
                      "expected_fraction": length_distribution(probs).tolist()})
    mean = means[0] if single else np.asarray(means)
    se = errs[0] if single else np.asarray(errs)
    note = f"{rounds:,} rounds, seed {seed}"
    r.put("simulated_tokens_per_step", mean, "number", "simulated tokens per target step (Monte Carlo)", note=note)
    r.put("simulated_tokens_per_step_stderr", se, "number", "its standard error")
    if heads_mode:
        r.calc("simulated_speedup", HEADS_SPEEDUP, "factor", "speedup from the simulated tokens per step",
               E=mean, c=c, v=v)
    else:
        r.calc("simulated_speedup", SPEEDUP, "factor", "speedup from the simulated tokens per step",
               E=mean, k=k, c=c, v=v)
    return hists[0] if single else {"points": hists}


def check_k(k) -> None:
    if any_of(k > MAX_K):
        raise InputError(f"a speculation depth above {MAX_K} is not one anyone runs; use at most {MAX_K}",
                         concept="k")


# ----------------------------------------------------------------------------------------------
# Costs from presets: weight bytes (no GPU), or serve's decode-step times (GPU)

# Medusa-1 head (Cai et al. 2024 sec. 2.1.1): a residual block W1 (H×H, bias) and its own vocabulary
# projection W2 (V×H, initialised from the LM head): H² + H + V·H parameters per head.
HEAD_PARAMS = _formula("H**2 + H + V * H")
BYTES_RATIO = _formula("W_draft / W_target")
HEADS_BYTES_RATIO = _formula("n * P_head * b / W_target")
BREAK_EVEN_BATCH_LIMIT = 1 << 20
HEADS_SECONDS = _formula("c * t_target")
FLOOR_MID = _formula("floor((lo + hi) / 2)")


def weight_bytes_ratio(r: Results, spec, draft_spec, weight_dtype: str, draft_dtype: str, group_size: int = 0,
                       heads=None, weight_group_size: int = 0):
    """c as the ratio of weight bytes read per step (memory-bound decode): a draft model, a quantised copy
    of the target, or ``heads`` Medusa heads on it."""
    from llmcalc.core.quant import bits_per_weight, weight_bytes

    W_t = weight_bytes(spec, weight_dtype, group_size=weight_group_size)
    if heads is not None:
        P_head = r.calc("head_params", HEAD_PARAMS, "params", "parameters of one head (residual block + vocab projection)",
                        H=spec.hidden, V=spec.vocab)
        return r.calc("cost_ratio", HEADS_BYTES_RATIO, "factor", "heads ÷ target weight bytes (c)",
                      n=heads, P_head=P_head, b=bits_per_weight(weight_dtype, weight_group_size) / 8, W_target=W_t)
    W_d = weight_bytes(draft_spec if draft_spec is not None else spec, draft_dtype, group_size=group_size)
    return r.calc("cost_ratio", BYTES_RATIO, "factor", "draft ÷ target weight bytes (c, memory-bound)",
                  W_draft=W_d, W_target=W_t)


OPS_RATIO = _formula("P_draft / P_target")
HEADS_OPS_RATIO = _formula("n * P_head / P_target")


def ops_ratio(r: Results, spec, draft_spec, heads=None):
    """ĉ of Theorem 3.11: draft ÷ target arithmetic per token, 2·P_active each (seed 000 ch. 1); a quantised
    copy of the target does the same arithmetic (ĉ = 1)."""
    from llmcalc.core.params import active_params

    P_t = active_params(spec)
    if heads is not None:
        P_head = HEAD_PARAMS(H=spec.hidden, V=spec.vocab)
        return r.calc("ops_ratio", HEADS_OPS_RATIO, "factor", "heads ÷ target arithmetic per token (ĉ)",
                      n=heads, P_head=P_head, P_target=P_t)
    P_d = active_params(draft_spec) if draft_spec is not None else P_t
    return r.calc("ops_ratio", OPS_RATIO, "factor", "draft ÷ target arithmetic per token (ĉ, 2·P each)",
                  P_draft=P_d, P_target=P_t)


def _step(spec, gpu, batch, context, tokens, *, weight_dtype, kv_dtype, group_size=0, tp=1, mbu=None, mfu=None):
    from llmcalc.core.serve import decode_step_seconds
    return decode_step_seconds(spec, gpu, batch, context, tokens_per_step=tokens, weight_dtype=weight_dtype,
                               kv_dtype=kv_dtype, group_size=group_size, tp=tp, mbu=mbu, mfu=mfu)


def _draft_step(spec, gpu, draft_spec, batch, context, *, weight_dtype, draft_dtype, draft_group_size, kv_dtype,
                tp, mbu, mfu, draft_tp=1):
    """One draft decode step: the draft model on ``draft_tp`` GPUs, or the quantised copy with the target's TP."""
    if draft_spec is not None:
        return _step(draft_spec, gpu, batch, context, 1, weight_dtype=draft_dtype, kv_dtype=kv_dtype,
                     group_size=draft_group_size, tp=draft_tp, mbu=mbu, mfu=mfu)
    return _step(spec, gpu, batch, context, 1, weight_dtype=draft_dtype, kv_dtype=kv_dtype,
                 group_size=draft_group_size, tp=tp, mbu=mbu, mfu=mfu)


def step_costs(r: Results, spec, gpu, draft_spec, batch, context, k, *, heads: bool = False, weight_dtype="bf16",
               draft_dtype="bf16", draft_group_size=0, weight_group_size=0, kv_dtype="bf16", tp=1, draft_tp=1,
               mbu=None, mfu=None):
    """c and v from serve's decode-step times on ``gpu``; returns (c, v, verify) with verify(ks) the verify
    cost at every k (for the best-k search). The verify step is one forward of k + 1 tokens per sequence:
    nearly free while decode is memory-bound, k + 1 times the work once it is compute-bound."""
    kw = dict(weight_dtype=weight_dtype, kv_dtype=kv_dtype, group_size=weight_group_size, tp=tp, mbu=mbu, mfu=mfu)
    t_target = r.put("target_step_seconds", _step(spec, gpu, batch, context, 1, **kw), "s",
                     "target decode step, 1 token per sequence (serve)")
    t_verify = r.put("verify_step_seconds", _step(spec, gpu, batch, context, k + 1, **kw), "s",
                     "target verify step, k + 1 tokens per sequence (serve)")
    if heads:
        c = weight_bytes_ratio(r, spec, None, weight_dtype, weight_dtype, heads=k,
                               weight_group_size=weight_group_size)
    else:
        t_draft = r.put("draft_step_seconds", _draft_step(spec, gpu, draft_spec, batch, context,
                                                          weight_dtype=weight_dtype, draft_dtype=draft_dtype,
                                                          draft_group_size=draft_group_size, kv_dtype=kv_dtype,
                                                          tp=tp, draft_tp=draft_tp, mbu=mbu, mfu=mfu), "s",
                        "draft decode step (serve)")
        c = r.calc("cost_ratio", COST_RATIO, "factor", "draft ÷ target step time (c)", t_draft=t_draft,
                   t_target=t_target)
    v = r.calc("verify_cost_ratio", VERIFY_RATIO, "factor", "verify ÷ 1-token step time (v)", t_verify=t_verify,
               t_target=t_target)

    def verify(n):  # the verify cost at depth n (n draft tokens or heads)
        return VERIFY_RATIO(t_verify=_step(spec, gpu, batch, context, n + 1, **kw), t_target=t_target)
    return c, v, verify


def add_timings(r: Results, spec, gpu, draft_spec, inputs: dict, k, heads_mode: bool, acceptance, notes: list,
                *, weight_dtype="bf16", draft_dtype="bf16", draft_group_size=0, weight_group_size=0, kv_dtype="bf16",
                tp=1, draft_tp=1):
    """Seconds per round, tokens/s with and without speculation, and the batch from which this k stops
    paying (the verify step turns compute-bound and the draft's steps stop being small)."""
    E = r["expected_tokens_per_step"].value
    t_target, t_verify = r["target_step_seconds"].value, r["verify_step_seconds"].value
    if heads_mode:
        c_heads = r["cost_ratio"].value
        t_heads = r.calc("heads_seconds", HEADS_SECONDS, "s", "heads' share of a step (c × target step)",
                         c=c_heads, t_target=t_target)
        t_round = r.calc("round_seconds", HEADS_ROUND_SECONDS, "s", "one round: heads + verify",
                         t_heads=t_heads, t_verify=t_verify)
    else:
        t_round = r.calc("round_seconds", ROUND_SECONDS, "s", "one round: k draft steps + verify",
                         k=k, t_draft=r["draft_step_seconds"].value, t_verify=t_verify)
    r.calc("plain_tokens_per_second", PLAIN_TOKENS_PER_S, "token/s", "plain decoding, per sequence",
           t_target=t_target)
    r.calc("speculative_tokens_per_second", SPEC_TOKENS_PER_S, "token/s", "with speculation, per sequence",
           E=E, t_round=t_round)
    mbu, mfu = inputs.get("mbu"), inputs.get("mfu")
    kw = dict(weight_dtype=weight_dtype, kv_dtype=kv_dtype, group_size=weight_group_size, tp=tp, mbu=mbu, mfu=mfu)
    ctx = inputs["context"]

    def pays_at(batch):  # this k (or these heads) beats plain decoding at that batch
        T1 = _step(spec, gpu, batch, ctx, 1, **kw)
        Tv = _step(spec, gpu, batch, ctx, k + 1, **kw)
        if heads_mode:
            return HEADS_SPEEDUP(E=E, c=c_heads, v=Tv / T1) > 1
        Td = _draft_step(spec, gpu, draft_spec, batch, ctx, weight_dtype=weight_dtype, draft_dtype=draft_dtype,
                         draft_group_size=draft_group_size, kv_dtype=kv_dtype, tp=tp, draft_tp=draft_tp, mbu=mbu,
                         mfu=mfu)
        return SPEEDUP(E=E, k=k, c=Td / T1, v=Tv / T1) > 1

    fit = max_batch(r, spec, gpu, draft_spec, ctx, k, heads_mode, weight_dtype=weight_dtype,
                    draft_dtype=draft_dtype, draft_group_size=draft_group_size, weight_group_size=weight_group_size,
                    kv_dtype=kv_dtype, tp=tp)
    # The largest batch (up to what fits) at which this k still pays, plus one: from there on it never does.
    # Powers of two first, then bisection between the last that pays and the next (MoE targets can lose at
    # batch 1, where the verify step's extra tokens wake more experts, and pay at 8). Element-wise over the
    # sweep points; a single point stays in plain Python.
    lo, any_pays = 0.0, False
    for i in range(BREAK_EVEN_BATCH_LIMIT.bit_length()):            # 1 .. 2^20
        b = float(2 ** i)
        if not any_of(b <= fit):                                    # past what fits at every point
            break
        p = pays_at(b) & (b <= fit)
        lo = where(p, b, lo)
        any_pays = any_pays | p
    hi = where(any_pays, where(lo < BREAK_EVEN_BATCH_LIMIT, 2 * lo, math.inf), 1.0)
    hi = minimum(hi, fit + 1)                                       # past what fits: the answer is "still pays"
    active = any_pays & (hi - lo > 1)
    while any_of(active):
        mid = where(active, FLOOR_MID(lo=lo, hi=hi), 1.0)
        p = pays_at(mid)
        lo = where(active, where(p, mid, lo), lo)
        hi = where(active, where(p, hi, mid), hi)
        active = any_pays & (hi - lo > 1)
    out = where(hi <= fit, hi, math.nan)
    out = out if hasattr(out, "shape") else float(out)
    r.put("break_even_batch", out, "count", "batch from which this k no longer beats plain decoding",
          note="1 + the largest batch that still pays, searched up to max_batch; empty if it pays there")
    if any_of(fit < inputs["batch"]):
        notes.append(f"the batch does not fit: both models' weights and caches need more than "
                     f"{tp} × {gpu.name} (max_batch {int(_lowest(fit)):,}); add --tp or a smaller --context")
    if any_of((out != out) & (fit >= 1)):
        notes.append("break_even_batch empty: this k still pays at the largest batch that fits in memory "
                     "(max_batch)")
    return r


# The target's GPUs hold both models and both caches (the draft beside the target; a napkin over the whole
# tensor-parallel group). Cache length: context + k + 1 (the verify step writes k + 1 tokens).
SPEC_BUDGET = _formula("u * T * M - W_target - W_draft")
SPEC_MAX_BATCH = _formula("max(0, floor(budget / (kv_target + kv_draft)))")


def max_batch(r: Results, spec, gpu, draft_spec, context, k, heads_mode: bool, *, weight_dtype="bf16",
              draft_dtype="bf16", draft_group_size=0, weight_group_size=0, kv_dtype="bf16", tp=1, mem_util=None):
    """Sequences that fit with both models' weights and caches at context + k + 1 tokens."""
    from llmcalc.core.kv import DEFAULT_MEM_UTIL, kv_cache_bytes
    from llmcalc.core.quant import weight_bytes

    W_t = weight_bytes(spec, weight_dtype, group_size=weight_group_size)
    if heads_mode:
        W_d = r["cost_ratio"].value * W_t          # the heads' weight bytes (c is their byte ratio)
        kv_d = 0.0
    elif draft_spec is not None:
        W_d = weight_bytes(draft_spec, draft_dtype, group_size=draft_group_size)
        kv_d = kv_cache_bytes(draft_spec, 1, context + k, kv_dtype)
    else:
        W_d = weight_bytes(spec, draft_dtype, group_size=draft_group_size)
        kv_d = kv_cache_bytes(spec, 1, context + k, kv_dtype)
    u = DEFAULT_MEM_UTIL if mem_util is None else mem_util
    budget = r.calc("memory_budget_bytes", SPEC_BUDGET, "byte",
                    f"memory for caches on the target's GPUs ({u:g} × memory − both models' weights)",
                    u=u, T=tp, M=gpu.device_memory_bytes, W_target=W_t, W_draft=W_d)
    return r.calc("max_batch", SPEC_MAX_BATCH, "count", "sequences that fit with both models and caches",
                  budget=budget, kv_target=kv_cache_bytes(spec, 1, context + k + 1, kv_dtype),
                  kv_draft=kv_d)


# ----------------------------------------------------------------------------------------------
# One run: the mode (c given; c from weight bytes; c and v from decode-step times on a GPU), the closed form,
# best depth, break-even α, timings and the Monte Carlo. Errors name concepts; the command maps them to flags.

def draft_formats(spec, draft_spec, heads_mode: bool, weight_dtype: str, draft_dtype: str | None,
                  weight_group_size: int, draft_group_size: int) -> dict:
    """The draft's weight format: the draft model in bf16 by default, a quantised copy of the target in
    ``draft_dtype``, or heads in the target's format; group sizes only where the format takes one
    (core.quant.GROUPED)."""
    from llmcalc.core.quant import GROUPED, check_overrides

    dd = draft_dtype or (weight_dtype if draft_spec is None else "bf16")
    if draft_spec is None and not heads_mode and dd == weight_dtype:
        raise InputError(f"a quantised copy of the target needs a smaller draft dtype than the target's "
                         f"{weight_dtype} (e.g. int4)", concept="draft_dtype")
    try:
        check_overrides(weight_dtype, weight_group_size)
    except InputError as exc:
        raise InputError(str(exc), concept="weight_group_size") from None
    label = (draft_spec.name if draft_spec is not None else "heads on the target" if heads_mode
             else f"{spec.name} in {dd}")
    return dict(draft=label, weight_dtype=weight_dtype, draft_dtype=dd,
                weight_group_size=weight_group_size if weight_dtype in GROUPED else 0,
                draft_group_size=draft_group_size if dd in GROUPED else 0)


def point_formats(spec, draft_spec, heads_mode: bool, gpu, v: dict) -> dict:
    """One point's formats and layouts (``v``: the inputs at a point of the outer axes), checked: the draft's
    format (``draft_formats``) and, on a GPU, the cache dtype and both models' tensor-parallel degrees."""
    fm = draft_formats(spec, draft_spec, heads_mode, v["weight_dtype"], v.get("draft_dtype"),
                       int(v["weight_group_size"]), int(v["draft_group_size"]))
    if gpu is None:
        return fm
    tp = int(v["tp"])
    draft_tp = int(v.get("draft_tp") or tp) if draft_spec else tp
    check_layouts(spec, draft_spec, tp, draft_tp)
    return {**fm, "kv_dtype": v["kv_dtype"], "tp": tp, "draft_tp": draft_tp}


def preset_notes(spec, draft_spec, gpu) -> list[str]:
    """What a reader of a preset-based answer should know: one tokenizer; without a GPU, c is a bound."""
    notes = []
    if draft_spec is not None and draft_spec.vocab != spec.vocab:
        notes.append(f"the draft's vocabulary ({draft_spec.vocab:,}) differs from the target's ({spec.vocab:,}): "
                     "speculative decoding needs one tokenizer (a padded embedding is harmless)")
    if gpu is None:
        notes.append("no GPU: c is the weight-bytes ratio of draft and target, the memory-bound limit; add -g for "
                     "decode-step times (KV cache, batch, compute-bound verify)")
    return notes


def check_layouts(spec, draft_spec, tp: int, draft_tp: int) -> None:
    """Both models split over their tensor-parallel GPUs (kv.check_tp's rule for each); the error names the
    model and the concept (``tp`` of the target, ``draft_tp`` of the draft)."""
    from llmcalc.core.kv import check_tp
    for role, model, degree, concept in (("target", spec, tp, "tp"), ("draft", draft_spec, draft_tp, "draft_tp")):
        if model is None:
            continue
        try:
            check_tp(model, degree)
        except InputError:
            raise InputError(f"tensor-parallel degree {degree} does not split the {role} {model.name} "
                             f"({model.heads} attention heads, {model.kv_heads} KV heads): it must divide the "
                             "heads, and divide or be divided by the KV heads", concept=concept) from None


def run(v: dict, *, heads_mode: bool, acceptance=None, k_max: int = DEFAULT_K_MAX, spec=None, gpu=None,
        draft_spec=None, formats: dict | None = None, notes: list | None = None) -> Results:
    """Everything ``llmcalc specdec`` computes for the inputs ``v`` (numbers, or arrays over a sweep):
    ``alpha``, ``k`` or ``medusa_heads``, ``cost_ratio``/``verify_cost`` (closed form), ``ops_ratio``,
    ``batch``, ``context``, ``mbu``, ``mfu`` (on a GPU); ``acceptance``: per-head acceptance (heads)."""
    notes = [] if notes is None else notes
    kw = {key: value for key, value in (formats or {}).items() if key != "draft"}    # the draft's label
    r = Results()
    k = v["medusa_heads"] if heads_mode else v["k"]
    check_k(k)
    if spec is None:
        c, verify, vv = v["cost_ratio"], None, v["verify_cost"]
    elif gpu is None:
        c = weight_bytes_ratio(r, spec, draft_spec, kw["weight_dtype"], kw["draft_dtype"], kw["draft_group_size"],
                               heads=k if heads_mode else None, weight_group_size=kw["weight_group_size"])
        verify, vv = None, v.get("verify_cost", 1.0)
    else:
        c, vv, verify = step_costs(r, spec, gpu, draft_spec, v["batch"], v["context"], k, heads=heads_mode,
                                   mbu=v.get("mbu"), mfu=v.get("mfu"), **kw)
    c_ops = v.get("ops_ratio")
    if c_ops is None and spec is not None:
        c_ops = ops_ratio(r, spec, draft_spec, heads=k if heads_mode else None)
    if heads_mode:
        self_drafting(acceptance, k, c, vv, alpha=v.get("alpha"), decay=v.get("decay"), c_ops=c_ops,
                      verify=verify, out=r)
    else:
        speculation(v["alpha"], k, c, vv, c_ops=c_ops, k_max=k_max, verify=verify, out=r)
    if gpu is not None:
        add_timings(r, spec, gpu, draft_spec, v, k, heads_mode, acceptance, notes, **kw)
    first = Results((key, r[key]) for key in _FIRST if key in r)
    first.update((key, row) for key, row in r.items() if key not in first)
    return first


MAX_HEADS = 64


def check_acceptance(values: list[float]) -> list[float]:
    """Per-head acceptance rates as given: each a probability, at most MAX_HEADS heads."""
    if any(not 0 <= a <= 1 for a in values):
        raise InputError(f"acceptance rates are between 0 and 1, got {', '.join(f'{a:g}' for a in values)}",
                         concept="head_alphas")
    if len(values) > MAX_HEADS:
        raise InputError(f"at most {MAX_HEADS} heads, got {len(values)}", concept="head_alphas")
    return values


def acceptance(v: dict, head_alphas: list | None = None) -> list:
    """Per-head acceptance: the list given, or α·d^(i−1) for as many heads as the largest count asked."""
    if head_alphas is not None:
        return head_alphas
    return head_acceptance(v["alpha"], v["decay"], _top(v["medusa_heads"]))


def sweep_columns(r: Results, on_gpu: bool) -> list[str]:
    """The result columns a sweep's table leads with."""
    cols = ["expected_tokens_per_step", "speedup", "optimal_k", "optimal_speedup", "break_even_alpha"]
    if on_gpu:
        cols = ["cost_ratio", "verify_cost_ratio"] + cols[1:-1] + ["speculative_tokens_per_second"]
    cols += ["simulated_tokens_per_step", "simulated_tokens_per_step_stderr"]
    return [c for c in cols if c in r]


_FIRST = ("expected_tokens_per_step", "speedup", "optimal_k", "optimal_speedup", "speculation_pays",
          "break_even_alpha")


def simulate_into(r: Results, v: dict, *, heads_mode: bool, acceptance, rounds: int, seed: int, points: int) -> dict:
    """The Monte Carlo beside the closed form, for one point or every point of a sweep (at most
    MAX_SIMULATED_DRAWS random numbers in all); returns the histogram(s)."""
    np = _np()
    k = v["medusa_heads"] if heads_mode else v["k"]
    k_top = _top(k)
    if rounds * k_top * points > MAX_SIMULATED_DRAWS:
        raise InputError(f"{rounds:,} simulated rounds × {points:,} points × depth {k_top} is more than "
                         f"{MAX_SIMULATED_DRAWS:,} random draws; use fewer rounds or points", concept="simulate")
    swept = points > 1
    if heads_mode:
        acc = np.stack([np.broadcast_to(np.asarray(a, dtype=float), (points,)) for a in _per_head(acceptance)],
                       axis=-1)
        rows = acc if swept else acc[0]
    else:
        a = np.broadcast_to(np.asarray(v["alpha"], dtype=float), (points,))
        rows = a[:, None] * np.ones(k_top) if swept else np.full(k_top, float(a[0]))
    c_now = r["cost_ratio"].value if "cost_ratio" in r else v["cost_ratio"]
    v_now = r["verify_cost_ratio"].value if "verify_cost_ratio" in r else v.get("verify_cost", 1.0)
    return add_simulation(r, rows, rounds, seed, k=k, c=c_now, v=v_now, heads_mode=heads_mode)
