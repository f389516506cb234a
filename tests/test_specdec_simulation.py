"""The Monte Carlo (`--simulate N`) against the closed form, and its histogram."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import results
from llmcalc.core import specdec as sd


@pytest.mark.parametrize("alpha,k", [(0.3, 1), (0.5, 3), (0.62, 7), (0.75, 7), (0.8, 4), (0.9, 10), (0.95, 32)])
def test_simulation_within_three_standard_errors(cli, alpha, k):
    doc = cli("specdec", "--alpha", alpha, "--k", k, "--cost-ratio", "0.02", "--simulate", "200k",
              "--seed", "7", "--json").json()
    r = doc["results"]
    se = r["simulated_tokens_per_step_stderr"]
    assert se > 0
    assert abs(r["simulated_tokens_per_step"] - r["expected_tokens_per_step"]) < 3 * se
    # the standard error is the capped geometric's standard deviation over √N
    p = sd.length_distribution([alpha] * k)
    n = np.arange(1, k + 2)
    sd_exact = np.sqrt((p * n**2).sum() - (p * n).sum() ** 2)
    assert se == pytest.approx(sd_exact / np.sqrt(200_000), rel=0.02)
    assert r["simulated_speedup"] == pytest.approx(r["simulated_tokens_per_step"] / (k * 0.02 + 1))


@pytest.mark.parametrize("alpha,k,tokens", [(0.0, 5, 1), (1.0, 5, 6), (1.0, 1, 2)])
def test_simulation_exact_at_alpha_0_and_1(cli, alpha, k, tokens):
    r = results(cli("specdec", "--alpha", alpha, "--k", k, "-c", "0.1", "--simulate", "1000", "--json"))
    assert r["simulated_tokens_per_step"] == tokens == r["expected_tokens_per_step"]
    assert r["simulated_tokens_per_step_stderr"] == 0


def test_histogram_in_json(cli):
    doc = cli("specdec", "--alpha", "0.7", "--k", "4", "-c", "0.05", "--simulate", "50000", "--json").json()
    h = doc["histogram"]
    assert h["tokens_per_step"] == [1, 2, 3, 4, 5]
    assert sum(h["count"]) == 50_000
    assert sum(h["simulated_fraction"]) == pytest.approx(1.0)
    # closed form P(n tokens) = α^(n−1)(1 − α) for n ≤ k, α^k for k + 1
    assert h["expected_fraction"] == pytest.approx([0.3, 0.21, 0.147, 0.1029, 0.7**4])
    for sim, exp in zip(h["simulated_fraction"], h["expected_fraction"]):
        assert abs(sim - exp) < 4 * np.sqrt(exp * (1 - exp) / 50_000) + 1e-12
    mean = sum(n * c for n, c in zip(h["tokens_per_step"], h["count"])) / 50_000
    assert mean == pytest.approx(doc["results"]["simulated_tokens_per_step"])
    assert doc["inputs"]["simulate"] == 50_000 and doc["inputs"]["seed"] == 0


def test_seeded_and_reproducible(cli):
    args = ("specdec", "--alpha", "0.8", "--k", "5", "-c", "0.05", "--simulate", "10000", "--json")
    a = results(cli(*args))["simulated_tokens_per_step"]
    b = results(cli(*args))["simulated_tokens_per_step"]
    c = results(cli(*args, "--seed", "1"))["simulated_tokens_per_step"]
    assert a == b and a != c


def test_simulation_of_heads_matches_their_closed_form(cli):
    r = results(cli("specdec", "--head-alphas", "0.8,0.6,0.45,0.3,0.2", "--simulate", "300k", "--json"))
    assert abs(r["simulated_tokens_per_step"] - r["expected_tokens_per_step"]) < 3 * r[
        "simulated_tokens_per_step_stderr"]
    r = results(cli("specdec", "--alpha", "0.7", "--medusa-heads", "6", "--decay", "0.85", "--simulate", "300k",
                    "--json"))
    assert abs(r["simulated_tokens_per_step"] - r["expected_tokens_per_step"]) < 3 * r[
        "simulated_tokens_per_step_stderr"]


def test_simulation_over_a_sweep(cli):
    doc = cli("specdec", "--alpha", "0.5,0.9", "--k", "2,8", "-c", "0.05", "--simulate", "100k", "--json").json()
    assert len(doc["rows"]) == 4
    for row in doc["rows"]:
        assert abs(row["simulated_tokens_per_step"] - row["expected_tokens_per_step"]) < 3 * row[
            "simulated_tokens_per_step_stderr"]
    assert [len(p["count"]) for p in doc["histogram"]["points"]] == [3, 9, 3, 9]


def test_core_simulate_counts_match_distribution():
    rng = np.random.default_rng(0)
    counts = sd.simulate([0.6] * 3, 400_000, rng, chunk=1000)    # many small chunks: same answer
    frac = counts / counts.sum()
    assert frac == pytest.approx(sd.length_distribution([0.6] * 3), abs=0.005)


def test_histogram_printed_under_the_table(cli):
    run = cli("specdec", "--alpha", "0.75", "--k", "3", "-c", "0.02", "--simulate", "20000", "-o", "table")
    assert run.code == 0
    assert "accepted length per round" in run.stdout
    assert "4 tok" in run.stdout and "expected" in run.stdout
