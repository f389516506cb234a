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

from llmcalc.core.formula import Formula, Results
from llmcalc.errors import InputError


def _formula(expr: str) -> Formula:
    """A Formula whose text shows powers as ``^`` (``a**(k + 1)`` -> ``a^(k + 1)``)."""
    f = Formula(expr)
    f.text = f.text.replace("··", "^")
    return f


# Leviathan et al. 2023 eq. (1); where() keeps α = 1 exact (k + 1) and the denominator never 0.
TOKENS = _formula("where(a < 1, (1 - a**(k + 1)) / max(1 - a, 1e-300), k + 1)")
# Theorem 3.8, with the verify step's cost v (v = 1 in the paper).
SPEEDUP = _formula("E / (k * c + v)")
# Self-drafting heads: all k heads run once per round inside the target's forward pass.
HEADS_TOKENS = _formula("1 + S")
HEADS_SPEEDUP = _formula("E / (c + v)")
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


def tokens_per_step(alpha, k):
    """Expected tokens per target step, (1 − α^(k+1))/(1 − α); exactly k + 1 at α = 1 and 1 at α = 0."""
    return TOKENS(a=alpha, k=k)


def head_acceptance(alpha, decay, heads: int):
    """Per-head acceptance α_i = α·d^(i−1), i = 1..heads, as an array (..., heads)."""
    np = _np()
    i = np.arange(heads, dtype=float)
    return np.asarray(alpha, dtype=float)[..., None] * np.asarray(decay, dtype=float)[..., None] ** i


def heads_tokens_per_step(acceptance, heads=None):
    """1 + Σ_i Π_{j≤i} α_j over the first ``heads`` heads (all of them if None); ``acceptance`` is (..., n)."""
    np = _np()
    acc = np.asarray(acceptance, dtype=float)
    reach = np.cumprod(acc, axis=-1)  # P(heads 1..i all accepted)
    if heads is not None:
        mask = np.arange(1, acc.shape[-1] + 1) <= np.asarray(heads)[..., None]
        reach = np.where(mask, reach, 0.0)
    return 1.0 + reach.sum(axis=-1)


# ----------------------------------------------------------------------------------------------
# Best k and break-even α (vectorised brute force and bisection)


def optimal_k(alpha, c, v=1.0, k_max: int = DEFAULT_K_MAX, verify=None):
    """The k in 1..k_max with the highest speedup E(α, k)/(k·c + v), and that speedup.

    ``verify``: optional callable k_array -> v for each k (the verify cost depends on k when it comes from
    step times); it must broadcast as ks[(k_max,) + (1,)*ndim]. Ties go to the smaller k.
    """
    np = _np()
    a = np.asarray(alpha, dtype=float)
    cc = np.asarray(c, dtype=float)
    shape = np.broadcast_shapes(a.shape, cc.shape, np.shape(v))
    ks = np.arange(1, k_max + 1, dtype=float).reshape((k_max,) + (1,) * len(shape))
    vv = verify(ks) if verify is not None else v
    s = SPEEDUP(E=TOKENS(a=a, k=ks), k=ks, c=cc, v=vv)
    s = np.broadcast_to(s, (k_max,) + np.broadcast_shapes(shape, np.shape(s)[1:]))
    best = np.argmax(s, axis=0)
    speed = np.take_along_axis(s, best[None], axis=0)[0]
    k_best = best + 1
    if k_best.ndim == 0:
        return int(k_best), float(speed)
    return k_best.astype(float), speed


def optimal_heads(acceptance, c, v=1.0, verify=None):
    """Best number of heads 1..n for per-head acceptance (..., n): maximises E_n/(c + v_n)."""
    np = _np()
    acc = np.asarray(acceptance, dtype=float)
    n = acc.shape[-1]
    E = 1.0 + np.cumsum(np.cumprod(acc, axis=-1), axis=-1)          # (..., n): E for 1..n heads
    ks = np.arange(1, n + 1, dtype=float)
    vv = verify(ks) if verify is not None else np.asarray(v, dtype=float)[..., None]
    s = E / (np.asarray(c, dtype=float)[..., None] + vv)
    best = np.argmax(s, axis=-1)
    speed = np.take_along_axis(s, best[..., None], axis=-1)[..., 0]
    if best.ndim == 0:
        return int(best) + 1, float(speed)
    return best.astype(float) + 1, speed


def break_even_alpha(k, c, v=1.0, tokens=None):
    """The α at which speculation exactly breaks even, E(α) = k·c + v (Theorem 3.8 = 1); below it, plain
    decoding is faster. 0 when even α = 0 breaks even; NaN when even α = 1 loses (k·c + v ≥ k + 1).

    E is increasing in α, so this is a vectorised bisection. ``tokens``: α -> E (default eq. 1 at this k).
    With k = 1 and v = 1 the answer is α = c (Corollary 3.9).
    """
    np = _np()
    cost = np.asarray(k, dtype=float) * np.asarray(c, dtype=float) + np.asarray(v, dtype=float)
    E = tokens or (lambda a: TOKENS(a=a, k=np.asarray(k, dtype=float)))
    shape = np.broadcast_shapes(np.shape(cost), np.shape(E(np.zeros(()))))
    lo, hi = np.zeros(shape), np.ones(shape)
    for _ in range(_BISECTION_STEPS):
        mid = (lo + hi) / 2
        pays = E(mid) > cost
        hi = np.where(pays, mid, hi)
        lo = np.where(pays, lo, mid)
    out = np.where(E(np.zeros(shape)) >= cost, 0.0, hi)
    out = np.where(E(np.ones(shape)) <= cost, np.nan, out)
    return float(out) if out.ndim == 0 else out


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
    speedup, break-even α, arithmetic-operations factor (Leviathan et al. 2023 sec. 3)."""
    np = _np()
    r = Results() if out is None else out
    E = r.calc("expected_tokens_per_step", TOKENS, "number", "expected tokens per target step (eq. 1)",
               note="α = 1: every draft accepted, k + 1", a=alpha, k=k)
    r.calc("speedup", SPEEDUP, "factor", "walltime speedup over plain decoding (Theorem 3.8)", E=E, k=k, c=c, v=v)
    kb, sb = optimal_k(alpha, c, v, k_max, verify=verify)
    r.put("optimal_k", kb, "count", f"best k in 1..{k_max} (brute force)",
          note="argmax over k of (1 − α^(k+1))/((1 − α)(k·c + v)); ties to the smaller k")
    r.put("optimal_speedup", sb, "factor", "speedup at the best k")
    r.put("speculation_pays", np.asarray(sb) > 1 if np.ndim(sb) else bool(sb > 1), "bool",
          "best k beats plain decoding")
    r.put("break_even_alpha", break_even_alpha(k, c, v), "ratio",
          "acceptance rate at which this k breaks even (below: slower)",
          note="root of (1 − α^(k+1))/(1 − α) = k·c + v by bisection; empty when even α = 1 loses")
    r.calc("operations_factor", OPERATIONS, "factor", "arithmetic operations vs plain decoding (Theorem 3.11)",
           k=k, c_ops=c if c_ops is None else c_ops, E=E)
    return r


def self_drafting(acceptance, heads, c, v=1.0, *, alpha=None, decay=None, c_ops=None, verify=None,
                  out: Results | None = None) -> Results:
    """Medusa-style heads on the target: per-head acceptance (..., n) (head i only counts if 1..i−1 did),
    ``heads`` of them used; one draft cost c per round."""
    np = _np()
    r = Results() if out is None else out
    acc = np.asarray(acceptance, dtype=float)
    reach = np.cumprod(acc, axis=-1)
    mask = np.arange(1, acc.shape[-1] + 1) <= np.asarray(heads)[..., None]
    S = np.where(mask, reach, 0.0).sum(axis=-1)
    S = float(S) if S.ndim == 0 else S
    E = r.calc("expected_tokens_per_step", HEADS_TOKENS, "number",
               "expected tokens per target step, 1 + Σ_i Π_{j≤i} α_j (heads)",
               note="S = Σ_i Π_{j≤i} α_j: the chance each head's guess is reached and accepted", S=S)
    r.calc("speedup", HEADS_SPEEDUP, "factor", "walltime speedup over plain decoding", E=E, c=c, v=v)
    kb, sb = optimal_heads(acc, c, v, verify=verify)
    r.put("optimal_k", kb, "count", f"best number of heads in 1..{acc.shape[-1]}")
    r.put("optimal_speedup", sb, "factor", "speedup with the best number of heads")
    r.put("speculation_pays", np.asarray(sb) > 1 if np.ndim(sb) else bool(sb > 1), "bool",
          "heads beat plain decoding")
    if alpha is not None and decay is not None:
        def tokens(a):
            return heads_tokens_per_step(head_acceptance(a, decay, acc.shape[-1]), heads)
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
    np = _np()
    if np.any(np.asarray(k) > MAX_K):
        raise InputError(f"--k above {MAX_K} is not a speculation depth anyone runs; use at most {MAX_K}")


# ----------------------------------------------------------------------------------------------
# Costs from presets: weight bytes (no GPU), or serve's decode-step times (GPU)

# Medusa-1 head (Cai et al. 2024 sec. 2.1.1): a residual block W1 (H×H, bias) and its own vocabulary
# projection W2 (V×H, initialised from the LM head): H² + H + V·H parameters per head.
HEAD_PARAMS = _formula("H**2 + H + V * H")
BYTES_RATIO = _formula("W_draft / W_target")
HEADS_BYTES_RATIO = _formula("n * P_head * b / W_target")
BREAK_EVEN_BATCH_LIMIT = 1 << 20


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
    np = _np()
    kw = dict(weight_dtype=weight_dtype, kv_dtype=kv_dtype, group_size=weight_group_size, tp=tp, mbu=mbu, mfu=mfu)
    t_target = r.put("target_step_seconds", _step(spec, gpu, batch, context, 1, **kw), "s",
                     "target decode step, 1 token per sequence (serve)")
    t_verify = r.put("verify_step_seconds", _step(spec, gpu, batch, context, np.asarray(k) + 1, **kw), "s",
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
    B, C = np.asarray(batch, dtype=float), np.asarray(context, dtype=float)
    T1 = np.asarray(t_target, dtype=float)

    if heads:
        def verify(ks):  # ks along the last axis (optimal_heads)
            return _step(spec, gpu, B[..., None], C[..., None], ks + 1, **kw) / T1[..., None]
    else:
        def verify(ks):  # ks along the first axis (optimal_k)
            return _step(spec, gpu, B, C, ks + 1, **kw) / T1
    return c, v, verify


def add_timings(r: Results, spec, gpu, draft_spec, inputs: dict, k, heads_mode: bool, acceptance, notes: list,
                *, weight_dtype="bf16", draft_dtype="bf16", draft_group_size=0, weight_group_size=0, kv_dtype="bf16",
                tp=1, draft_tp=1):
    """Seconds per round, tokens/s with and without speculation, and the batch from which this k stops
    paying (the verify step turns compute-bound and the draft's steps stop being small)."""
    np = _np()
    E = r["expected_tokens_per_step"].value
    t_target, t_verify = r["target_step_seconds"].value, r["verify_step_seconds"].value
    if heads_mode:
        t_heads = r.put("heads_seconds", np.asarray(r["cost_ratio"].value) * t_target if np.ndim(t_target)
                        else r["cost_ratio"].value * t_target, "s", "heads' share of a step (c × target step)")
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
    c_heads = np.asarray(r["cost_ratio"].value, dtype=float) if heads_mode else None

    def speedup_at(batch):  # batch (P, m) against per-row E, k, context (P, 1)
        ctx = np.atleast_1d(np.asarray(inputs["context"], dtype=float))[:, None]
        kk = np.atleast_1d(np.asarray(k, dtype=float))[:, None]
        EE = np.atleast_1d(np.asarray(E, dtype=float))[:, None]
        T1 = _step(spec, gpu, batch, ctx, 1, **kw)
        Tv = _step(spec, gpu, batch, ctx, kk + 1, **kw)
        if heads_mode:
            return EE * T1 / (np.atleast_1d(c_heads)[:, None] * T1 + Tv)
        Td = _draft_step(spec, gpu, draft_spec, batch, ctx, weight_dtype=weight_dtype, draft_dtype=draft_dtype,
                         draft_group_size=draft_group_size, kv_dtype=kv_dtype, tp=tp, draft_tp=draft_tp, mbu=mbu,
                         mfu=mfu)
        return EE * T1 / (kk * Td + Tv)

    fit = max_batch(r, spec, gpu, draft_spec, inputs["context"], k, heads_mode, weight_dtype=weight_dtype,
                    draft_dtype=draft_dtype, draft_group_size=draft_group_size, weight_group_size=weight_group_size,
                    kv_dtype=kv_dtype, tp=tp)
    shape = np.broadcast_shapes(np.shape(E), np.shape(k), np.shape(inputs["context"]),
                               np.shape(c_heads) if c_heads is not None else ())
    P = int(np.prod(shape)) if shape else 1
    # The largest batch (up to what fits) at which this k still pays, plus one: from there on it never does.
    # Powers of two first, then bisection between the last that pays and the next (MoE targets can lose at
    # batch 1, where the verify step's extra tokens wake more experts, and pay at 8).
    fit_rows = np.broadcast_to(np.asarray(fit, dtype=float), shape).reshape(-1)
    grid = 2.0 ** np.arange(BREAK_EVEN_BATCH_LIMIT.bit_length())   # 1 .. 2^20
    s = np.broadcast_to(speedup_at(np.broadcast_to(grid, (P, grid.size))), (P, grid.size))
    pays_grid = (s > 1) & (grid <= fit_rows[:, None])
    any_pays = pays_grid.any(axis=1)
    last = grid.size - 1 - np.argmax(pays_grid[:, ::-1], axis=1)
    lo = np.where(any_pays, grid[last], 0.0)
    hi = np.where(any_pays, np.where(last + 1 < grid.size, grid[np.minimum(last + 1, grid.size - 1)], np.inf), 1.0)
    hi = np.minimum(hi, fit_rows + 1)                 # past what fits: the answer is "still pays"
    step = any_pays & (hi - lo > 1)
    while np.any(step):
        mid = np.where(step, np.floor((lo + hi) / 2), 1.0)
        pays = np.broadcast_to(speedup_at(mid[:, None]), (P, 1))[:, 0] > 1
        lo = np.where(step & pays, mid, lo)
        hi = np.where(step & ~pays, mid, hi)
        step = any_pays & (hi - lo > 1)
    hi = np.where(hi <= fit_rows, hi, np.nan)
    out = hi.reshape(shape) if shape else float(hi[0])
    r.put("break_even_batch", out, "count", "batch from which this k no longer beats plain decoding",
          note="1 + the largest batch that still pays, searched up to max_batch; empty if it pays there")
    fit_arr = np.asarray(fit, dtype=float)
    if np.any(fit_arr < np.asarray(inputs["batch"], dtype=float)):
        notes.append(f"the batch does not fit: both models' weights and caches need more than "
                     f"{tp} × {gpu.name} (max_batch {int(np.min(fit_arr)):,}); add --tp or a smaller --context")
    if np.any(np.isnan(np.asarray(out, dtype=float)) & (np.broadcast_to(fit_arr, np.shape(out)) >= 1)):
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
    np = _np()
    from llmcalc.core.kv import DEFAULT_MEM_UTIL, kv_cache_bytes
    from llmcalc.core.quant import weight_bytes

    W_t = weight_bytes(spec, weight_dtype, group_size=weight_group_size)
    if heads_mode:
        W_d = float(np.max(r["cost_ratio"].value)) * W_t
        kv_d = 0.0
    elif draft_spec is not None:
        W_d = weight_bytes(draft_spec, draft_dtype, group_size=draft_group_size)
        kv_d = kv_cache_bytes(draft_spec, 1, np.asarray(context) + np.asarray(k), kv_dtype)
    else:
        W_d = weight_bytes(spec, draft_dtype, group_size=draft_group_size)
        kv_d = kv_cache_bytes(spec, 1, np.asarray(context) + np.asarray(k), kv_dtype)
    u = DEFAULT_MEM_UTIL if mem_util is None else mem_util
    budget = r.calc("memory_budget_bytes", SPEC_BUDGET, "byte",
                    f"memory for caches on the target's GPUs ({u:g} × memory − both models' weights)",
                    u=u, T=tp, M=gpu.device_memory_bytes, W_target=W_t, W_draft=W_d)
    return r.calc("max_batch", SPEC_MAX_BATCH, "count", "sequences that fit with both models and caches",
                  budget=budget, kv_target=kv_cache_bytes(spec, 1, np.asarray(context) + np.asarray(k) + 1, kv_dtype),
                  kv_draft=kv_d)
