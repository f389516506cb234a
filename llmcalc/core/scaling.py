"""Compute-optimal model size and training tokens for a compute budget C (the Chinchilla fits).

Every fit is a power law N_opt = k·C^a with D_opt = C / (6·N_opt) (C = 6·N·D, Hoffmann et al. 2022,
arXiv:2203.15556, sec. 2 and Table 3):

* ``hoffmann-1`` (training curve envelope) and ``hoffmann-2`` (IsoFLOP profiles): the exponents a = 0.50 and
  0.49 of Table 2; the paper gives no coefficient, so k is pinned by the approach's own projection at one
  budget: 67B parameters at 5.76e23 FLOPs (Table 3, Approach 1, the Gopher budget) and 67B at 6.88e23
  (Table A3, Approach 2).
* ``hoffmann-3`` (parametric fit L = E + A/N^α + B/D^β) and ``besiroglu`` (its refit by Besiroglu et al.
  2024, arXiv:2404.10102, Table 1): minimising L under C = 6ND gives N_opt = G·(C/6)^(β/(α+β)),
  G = (αA/(βB))^(1/(α+β)) (Hoffmann et al. eq. 4 and App. D.2). Hoffmann's constants are used unrounded
  (α = 0.3392, β = 0.2849, as Besiroglu et al. quote them from the paper's source); the rounded 0.34 and 0.28
  move N_opt by 20%.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmcalc.core.formula import Formula, Results
from llmcalc.errors import InputError

# Power law through an anchor (N0 at C0): N = N0·(C/C0)^a.
POWER = Formula("N0 * (C / C0)**a")
# Parametric optimum (Hoffmann et al. eq. 4).
G_COEF = Formula("(alpha * A / (beta * B))**(1 / (alpha + beta))")
PARAMETRIC = Formula("G * (C / 6)**(beta / (alpha + beta))")
TOKENS = Formula("C / (6 * N)")
RATIO = Formula("D / N")
# The budget a model of N parameters is compute-optimal at: the inverse of N = N0·(C/C0)^a.
BUDGET_FOR = Formula("C0 * (N / N0)**(1 / a)")
LOSS = Formula("E + A / N**alpha + B / D**beta")
# A budget given as GPU-hours (on GPUs of dense peak π at MFU) or as dollars (at a price per GPU-hour).
FLOPS_FROM_HOURS = Formula("gpu_hours * 3600 * peak * mfu")
HOURS_FROM_USD = Formula("usd / price")


@dataclass(frozen=True)
class Fit:
    """A law N_opt = k·C^a: through an anchor (N0 parameters at C0 FLOPs), or from a parametric loss
    L = E + A/N^α + B/D^β whose constants are ``loss`` = (E, A, B, α, β)."""

    name: str
    source: str
    a: float
    N0: float = 0.0
    C0: float = 0.0
    loss: tuple = ()

    parametric = property(lambda self: bool(self.loss))
    E = property(lambda self: self.loss[0])
    A = property(lambda self: self.loss[1])
    B = property(lambda self: self.loss[2])
    alpha = property(lambda self: self.loss[3])
    beta = property(lambda self: self.loss[4])


HOFFMANN = "Hoffmann et al. 2022, arXiv:2203.15556"
FITS = {
    "hoffmann-1": Fit("hoffmann-1", HOFFMANN + ", Approach 1 (Table 2 a = 0.50; Table 3: 67B at 5.76e23 FLOPs)",
                      a=0.50, N0=67e9, C0=5.76e23),
    "hoffmann-2": Fit("hoffmann-2", HOFFMANN + ", Approach 2 (Table 2 a = 0.49; Table A3: 67B at 6.88e23 FLOPs)",
                      a=0.49, N0=67e9, C0=6.88e23),
    "hoffmann-3": Fit("hoffmann-3", HOFFMANN + ", Approach 3 (eq. 4, App. D.2: E 1.6934, A 406.4, B 410.7, "
                      "α 0.3392, β 0.2849)", a=0.2849 / (0.3392 + 0.2849), loss=(1.6934, 406.4, 410.7, 0.3392, 0.2849)),
    "besiroglu": Fit("besiroglu", "Besiroglu et al. 2024, arXiv:2404.10102, Table 1 (E 1.8172, A 482.01, B 2085.43, "
                     "α 0.3478, β 0.3658)", a=0.3658 / (0.3478 + 0.3658), loss=(1.8172, 482.01, 2085.43, 0.3478, 0.3658)),
}
DEFAULT_FIT = "hoffmann-1"


def get_fit(name: str) -> Fit:
    key = str(name).lower()
    if key not in FITS:
        raise InputError(f"--fit must be one of {', '.join(FITS)}; got {name!r}")
    return FITS[key]


def _anchor(fit: Fit) -> tuple[float, float]:
    """(N0, C0) of a parametric fit: its optimum at C0 = 1e24 (any point of the power law serves)."""
    if not fit.parametric:
        return fit.N0, fit.C0
    C0 = 1e24
    G = G_COEF(alpha=fit.alpha, A=fit.A, beta=fit.beta, B=fit.B)
    return PARAMETRIC(G=G, C=C0, alpha=fit.alpha, beta=fit.beta), C0


def optimal(compute, fit: Fit | str = DEFAULT_FIT, out: Results | None = None) -> Results:
    """optimal_params, optimal_tokens and tokens_per_param for ``compute`` FLOPs (scalar or array)."""
    fit = get_fit(fit) if isinstance(fit, str) else fit
    r = Results() if out is None else out
    if fit.parametric:
        G = G_COEF(alpha=fit.alpha, A=fit.A, beta=fit.beta, B=fit.B)
        N = r.calc("optimal_params", PARAMETRIC, "params", f"compute-optimal parameters ({fit.name})", G=G, C=compute,
                   alpha=fit.alpha, beta=fit.beta)
    else:
        N = r.calc("optimal_params", POWER, "params", f"compute-optimal parameters ({fit.name})", N0=fit.N0,
                   C=compute, C0=fit.C0, a=fit.a)
    D = r.calc("optimal_tokens", TOKENS, "count", "compute-optimal training tokens, C/(6·N)", C=compute, N=N)
    r.calc("tokens_per_param", RATIO, "factor", "training tokens per parameter", D=D, N=N)
    if fit.parametric:
        r.calc("predicted_loss", LOSS, "factor", "loss the fit predicts at that point (nats/token, its corpus)",
               E=fit.E, A=fit.A, N=N, alpha=fit.alpha, B=fit.B, D=D, beta=fit.beta)
    return r


def budget_for(params, fit: Fit | str = DEFAULT_FIT):
    """FLOPs at which a model of ``params`` parameters is compute-optimal under ``fit``."""
    fit = get_fit(fit) if isinstance(fit, str) else fit
    N0, C0 = _anchor(fit)
    return BUDGET_FOR(C0=C0, N=params, N0=N0, a=fit.a)


def closest(candidates: list[tuple[str, float]], params: float, fit: Fit | str = DEFAULT_FIT, k: int = 3,
            *, peak=None, mfu=None, price=None) -> list[dict]:
    """The ``k`` candidates (name, parameters) nearest ``params`` in log size, each with the budget at which it
    is compute-optimal under ``fit``: FLOPs, tokens, and with ``peak`` × ``mfu`` GPU-hours, with ``price`` USD."""
    import math

    from llmcalc.core.cost import TRAIN_COST
    from llmcalc.core.flops import GPU_HOURS
    fit = get_fit(fit) if isinstance(fit, str) else fit
    ranked = sorted(candidates, key=lambda c: abs(math.log(c[1] / params)))[:k]
    out = []
    for name, n in ranked:
        C = float(budget_for(n, fit))
        row = {"name": name, "params": n, "flops": C, "tokens": float(TOKENS(C=C, N=n)), "gpu_hours": None,
               "cost_usd": None}
        if peak and mfu:
            row["gpu_hours"] = float(GPU_HOURS(total=C, peak=peak, mfu=mfu))
            if price is not None:
                row["cost_usd"] = float(TRAIN_COST(gpu_hours=row["gpu_hours"], price=price))
        out.append(row)
    return out
