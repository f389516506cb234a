"""Compute-optimal size for a budget (core/scaling.py, `flops --compute-budget`). The published Table 3 rows
are validation cases (tests/validation_cases.py, group "scaling"); here the laws' own structure and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from llmcalc.core import scaling as sc
from llmcalc.presets import load_gpu

BUDGETS = np.logspace(18, 28, 21)


@pytest.mark.parametrize("fit", list(sc.FITS))
def test_c_is_6nd_and_sizes_grow_with_the_budget(fit):
    r = sc.optimal(BUDGETS, fit)
    N, D = r["optimal_params"].value, r["optimal_tokens"].value
    np.testing.assert_allclose(6 * N * D, BUDGETS, rtol=1e-12)
    assert np.all(np.diff(N) > 0) and np.all(np.diff(D) > 0)
    # the exponent is the fit's: a tenfold budget multiplies N by 10^a
    np.testing.assert_allclose(N[2:] / N[:-2], 10 ** sc.FITS[fit].a, rtol=1e-9)
    np.testing.assert_allclose(sc.budget_for(N, fit), BUDGETS, rtol=1e-9)


@pytest.mark.parametrize("fit", ["hoffmann-3", "besiroglu"])
def test_parametric_optimum_minimises_the_loss_on_the_isoflop(fit):
    """Along C = 6ND, the loss E + A/N^α + B/D^β is lowest at the closed-form N_opt (Hoffmann et al. eq. 4)."""
    f = sc.FITS[fit]
    C = 1e23
    n_opt = sc.optimal(C, fit)["optimal_params"].value
    Ns = n_opt * np.logspace(-1, 1, 2001)
    loss = sc.LOSS(E=f.E, A=f.A, N=Ns, alpha=f.alpha, B=f.B, D=C / (6 * Ns), beta=f.beta)
    assert Ns[np.argmin(loss)] == pytest.approx(n_opt, rel=2e-3)


def test_closest_presets_are_nearest_in_log_size():
    cands = [("a", 1e9), ("b", 7e9), ("c", 8e9), ("d", 70e9), ("e", 400e9)]
    near = sc.closest(cands, 7.5e9, "hoffmann-1", k=3, peak=1e15, mfu=0.5, price=2.0)
    assert [r["name"] for r in near] == ["c", "b", "a"]   # |ln 8/7.5| < |ln 7/7.5|
    for r in near:
        assert 6 * r["params"] * r["tokens"] == pytest.approx(r["flops"])
        assert r["gpu_hours"] == pytest.approx(r["flops"] / (1e15 * 0.5) / 3600)
        assert r["cost_usd"] == pytest.approx(2.0 * r["gpu_hours"])


def test_cli_budget_units_agree(cli):
    gpu = load_gpu("h100-sxm")
    flops = cli("flops", "--compute-budget", "1e24", "--json").json()["results"]
    hours = 1e24 / (gpu.peak_flops("bf16") * 0.4) / 3600
    by_hours = cli("flops", "--compute-budget", str(hours), "-g", "h100-sxm", "--json").json()
    by_usd = cli("flops", "--compute-budget", str(hours * 3), "-g", "h100-sxm", "--gpu-cost", "3", "--json").json()
    for doc in (by_hours, by_usd):
        assert doc["results"]["optimal_params"] == pytest.approx(flops["optimal_params"], rel=1e-9)
        assert len(doc["closest_presets"]) == 3
    assert by_usd["results"]["cost_usd"] == pytest.approx(hours * 3, rel=1e-9)
    assert flops["predicted_loss"] is None and flops["gpu_hours"] is None


def test_cli_fit_sweep_keys_are_stable(cli):
    keys = None
    for fit in sc.FITS:
        r = cli("flops", "--compute-budget", "1e22,1e23", "--fit", fit, "--json").json()["rows"]
        assert len(r) == 2 and r[1]["optimal_params"] > r[0]["optimal_params"]
        keys = keys or set(r[0])
        assert set(r[0]) == keys


@pytest.mark.parametrize("args,match", [
    (["--compute-budget", "1e24", "--fit", "kaplan"], "--fit must be one of"),
    (["--compute-budget", "0"], "--compute-budget"),
    (["--compute-budget", "1e6", "--gpu-cost", "2"], "needs a GPU"),
])
def test_bad_input(cli, args, match):
    run = cli("flops", *args)
    assert run.code == 2 and match in run.stderr and len(run.stderr.strip().splitlines()) == 1
