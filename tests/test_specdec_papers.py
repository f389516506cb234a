"""`llmcalc specdec` against hand-computed values and the papers' stated examples (the papers are the
reference, not our output).

Leviathan, Kalman & Matias 2023, "Fast Inference from Transformers via Speculative Decoding",
arXiv:2211.17192 (ICML 2023): eq. (1), Theorem 3.8, Corollary 3.9, Theorem 3.11, Table 1, sec. 3.6,
Table 4 (App. A.3), App. A.5. Seeds: ../shared/seeds/000 ch. 6, 001 "Speculative Decoding".
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import results
from llmcalc.core import specdec as sd


def speedup(alpha, k, c, v=1.0):
    return sd.tokens_per_step(alpha, k) / (k * c + v)


# ----------------------------------------------------------------------------------------------
# Hand-computed


@pytest.mark.parametrize("alpha,k,expected", [
    (0.6, 2, 1 + 0.6 + 0.36),                 # 1.96
    (0.5, 3, 1 + 0.5 + 0.25 + 0.125),         # 1.875
    (0.9, 1, 1.9),
    (0.0, 5, 1.0),                            # α = 0: only the target's own token
    (1.0, 5, 6.0),                            # α = 1: all k drafts + the target's token, exactly
    (1.0, 1, 2.0),
    (0.0, 1, 1.0),
])
def test_tokens_per_step_hand_values(alpha, k, expected):
    # Σ_{i=0..k} α^i, the geometric series eq. (1) sums.
    assert sd.tokens_per_step(alpha, k) == pytest.approx(expected, rel=1e-15)
    assert sd.tokens_per_step(alpha, k) == pytest.approx(sum(alpha**i for i in range(k + 1)), rel=1e-14)


def test_alpha_one_and_zero_exact_in_arrays_without_warnings():
    with np.errstate(all="raise"):   # no 0/0 or x/0 anywhere, even in the branch where() discards
        E = sd.tokens_per_step(np.array([0.0, 0.5, 1.0, 1.0]), np.array([3.0, 3.0, 3.0, 7.0]))
        k_best, s_best = sd.optimal_k(np.array([0.0, 1.0]), np.array([0.0, 0.0]))
        be = sd.break_even_alpha(np.array([1.0, 4.0]), np.array([0.0, 2.0]))
    assert E.tolist() == [1.0, 1.875, 4.0, 8.0]
    assert k_best.tolist() == [1, 32] and s_best.tolist() == [1.0, 33.0]
    assert be[0] == 0.0 and math.isnan(be[1])   # free draft: pays for any α > 0; 4·2 + 1 > 5: never pays


def test_speedup_hand_value_and_corollary_3_9():
    assert speedup(0.8, 1, 0.1) == pytest.approx(1.8 / 1.1, rel=1e-15)
    # Corollary 3.9: at γ = 1 the improvement is (1 + α)/(1 + c), and it exceeds 1 exactly when α > c.
    for a, c in [(0.3, 0.1), (0.05, 0.05), (0.7, 0.2), (0.2, 0.6)]:
        assert speedup(a, 1, c) == pytest.approx((1 + a) / (1 + c), rel=1e-14)
        assert sd.break_even_alpha(1, c) == pytest.approx(c, abs=1e-12)


def test_break_even_k2_closed_form():
    # k = 2: 1 + α + α² = 2c + 1, so α = (−1 + √(1 + 8c))/2.
    for c in (0.01, 0.05, 0.2, 0.5):
        assert sd.break_even_alpha(2, c) == pytest.approx((-1 + math.sqrt(1 + 8 * c)) / 2, abs=1e-12)
    # and the speedup there is 1
    a = sd.break_even_alpha(5, 0.07, 1.1)
    assert speedup(a, 5, 0.07, 1.1) == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# Leviathan et al. 2023


@pytest.mark.parametrize("alpha,gamma,ops,speed", [
    # Table 1: "total number of arithmetic operations and the inference speed vs the baseline ... assuming
    # c = ĉ = 0".
    (0.6, 2, 1.53, 1.96), (0.7, 3, 1.58, 2.53), (0.8, 2, 1.23, 2.44),
    (0.8, 5, 1.63, 3.69), (0.9, 2, 1.11, 2.71), (0.9, 10, 1.60, 6.86),
])
def test_leviathan_table_1(cli, alpha, gamma, ops, speed):
    r = results(cli("specdec", "--alpha", alpha, "--k", gamma, "--cost-ratio", 0, "--json"))
    assert r["speedup"] == pytest.approx(speed, abs=0.005)
    assert r["operations_factor"] == pytest.approx(ops, abs=0.005)   # Theorem 3.11 with ĉ = 0


# Table 4 (App. A.3): "Expected improvement factor (Exp)" from Theorem 3.8 with c from profiler traces.
# (task, M_q, temp, γ, α, c, Exp)
TABLE_4 = [
    ("EnDe", "T5-small", 0, 7, 0.75, 0.02, 3.2), ("EnDe", "T5-base", 0, 7, 0.80, 0.04, 3.3),
    ("EnDe", "T5-large", 0, 7, 0.82, 0.11, 2.5), ("EnDe", "T5-small", 1, 7, 0.62, 0.02, 2.3),
    ("EnDe", "T5-base", 1, 5, 0.68, 0.04, 2.4), ("EnDe", "T5-large", 1, 3, 0.71, 0.11, 2.0),
    ("CNNDM", "T5-small", 0, 5, 0.65, 0.02, 2.4), ("CNNDM", "T5-base", 0, 5, 0.73, 0.04, 2.6),
    ("CNNDM", "T5-large", 0, 3, 0.74, 0.11, 2.0), ("CNNDM", "T5-small", 1, 5, 0.53, 0.02, 1.9),
    ("CNNDM", "T5-base", 1, 3, 0.55, 0.04, 1.8), ("CNNDM", "T5-large", 1, 3, 0.56, 0.11, 1.6),
]


@pytest.mark.parametrize("task,mq,temp,gamma,alpha,c,exp", TABLE_4)
def test_leviathan_table_4_expected_improvement(task, mq, temp, gamma, alpha, c, exp):
    # The table prints α and c to two decimals and Exp to one. Nine rows match to the printed digit; three
    # (EnDe T5-base t=1: 2.35, EnDe T5-large t=1: 1.93, CNNDM T5-large t=1: 1.54) only once α and c are
    # allowed their rounding (±0.005): the formula is monotone in both, so check the corners.
    lo = speedup(alpha - 0.005, gamma, c + 0.005)
    hi = speedup(alpha + 0.005, gamma, c - 0.005)
    assert lo <= exp + 0.05 and hi >= exp - 0.05
    assert speedup(alpha, gamma, c) == pytest.approx(exp, abs=0.07)


def test_leviathan_table_4_from_the_cli(cli):
    # EnDe, T5-small draft, argmax: γ = 7, α = 0.75, c = 0.02 -> Exp 3.2 (the measured speedup was 3.4X).
    r = results(cli("specdec", "--alpha", "0.75", "--k", "7", "--cost-ratio", "0.02", "--json"))
    assert round(r["speedup"], 1) == 3.2
    assert r["expected_tokens_per_step"] == pytest.approx((1 - 0.75**8) / 0.25, rel=1e-15)


def test_leviathan_bigram_example_sec_3_6():
    # "with M_p being T5-XXL 11B and M_q being a trivial bigram model, we get α ≈ 0.2 which leads to an
    # inference speed improvement factor of 1.25X with γ = 3" (c = 0 for a table lookup).
    assert speedup(0.2, 3, 0.0) == pytest.approx(1.25, abs=0.005)


@pytest.mark.parametrize("alpha,stated", [(0.75, 3.3), (0.8, 3.9), (0.87, 4.9)])
def test_leviathan_lenience_example_app_a5(alpha, stated):
    # "Taking for example c = 0.015 and γ = 8 we get speed improvement factors of 3.3X, 3.3X, 3.9X, and 4.9X"
    # for α = 0.75, 0.75, 0.8, 0.87.
    assert speedup(alpha, 8, 0.015) == pytest.approx(stated, abs=0.05)


def test_negligible_cost_bound_sec_3_6():
    # c ≈ 0: the improvement (1 − α^(γ+1))/(1 − α) is "bounded from above by 1/(1 − α) (we approach equality
    # if γ is large)".
    for a in (0.2, 0.6, 0.9):
        assert speedup(a, 3, 0.0) < 1 / (1 - a)
        assert speedup(a, 2000, 0.0) == pytest.approx(1 / (1 - a), rel=1e-9)


def test_optimal_k_matches_brute_force_1_to_32():
    # Sec. 3.5: "Since γ is an integer, it can be easily found numerically." Brute force in plain Python.
    for a in np.linspace(0.0, 1.0, 41):
        for c in (0.0, 0.001, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0, 2.0):
            best_k, best_s = 1, -1.0
            for k in range(1, 33):
                s = sum(float(a) ** i for i in range(k + 1)) / (k * c + 1)
                if s > best_s + 1e-12:
                    best_k, best_s = k, s
            k_opt, s_opt = sd.optimal_k(float(a), c)
            assert s_opt == pytest.approx(best_s, rel=1e-9), (a, c)
            # where two depths tie to rounding, either is optimal
            assert k_opt == best_k or speedup(float(a), best_k, c) == pytest.approx(s_opt, rel=1e-9), (a, c)
    # vectorised over a grid, the same answers
    A, C = np.meshgrid(np.linspace(0, 1, 21), [0.0, 0.02, 0.1, 0.5])
    K, S = sd.optimal_k(A.ravel(), C.ravel())
    for a, c, k, s in zip(A.ravel(), C.ravel(), K, S):
        assert (int(k), s) == pytest.approx(sd.optimal_k(float(a), float(c)))


def test_optimal_k_grows_with_alpha_falls_with_c():
    # Figure 3: the optimal γ as a function of α for various c.
    ks = [sd.optimal_k(a, 0.05)[0] for a in (0.5, 0.6, 0.7, 0.8, 0.9)]
    assert ks == sorted(ks) and ks[0] < ks[-1]
    assert [sd.optimal_k(0.8, c)[0] for c in (0.01, 0.05, 0.2)] == sorted(
        [sd.optimal_k(0.8, c)[0] for c in (0.01, 0.05, 0.2)], reverse=True)


# ----------------------------------------------------------------------------------------------
# Seeds


def test_seed_001_acceptance_60_to_80_gives_2_to_3x_with_a_small_draft():
    # seed 001: "Acceptance rates of 60–80% on natural text are common, giving 2–3× wall-clock speedups".
    # With Leviathan's "c was always less than 0.05" and the best k, α = 0.6 .. 0.8 spans 1.9× to 3.1×
    # at c = 0.05 and 2.2× to 3.6× at c = 0.02: the seed's 2–3× is the middle of that band.
    lo = sd.optimal_k(0.6, 0.05)[1]
    hi = sd.optimal_k(0.8, 0.05)[1]
    assert 1.85 < lo < 2.0 and 3.0 < hi < 3.2


def test_seed_000_medusa_heads_about_2x_max():
    # seed 000 ch. 6: Medusa heads "Guesses degrade quickly (mean-field approx); ~2× max speedup". Heads whose
    # acceptance falls with depth (α_i = 0.6·0.7^(i−1)) level off below 2 tokens per step however many there
    # are, at near-zero draft cost.
    for n in (1, 3, 5, 10, 30):
        E = sd.heads_tokens_per_step(sd.head_acceptance(0.6, 0.7, n))
        assert E < 1.95
    assert sd.heads_tokens_per_step(sd.head_acceptance(0.6, 0.7, 30)) == pytest.approx(1.9445, abs=1e-3)


def test_heads_formula_hand_value(cli):
    # 1 + Σ_i Π_{j≤i} α_j: 1 + 0.7 + 0.7·0.55 + 0.7·0.55·0.4 + 0.7·0.55·0.4·0.3
    expected = 1 + 0.7 + 0.385 + 0.154 + 0.0462
    r = results(cli("specdec", "--head-alphas", "0.7,0.55,0.4,0.3", "--json"))
    assert r["expected_tokens_per_step"] == pytest.approx(expected, rel=1e-12)
    assert r["speedup"] == pytest.approx(expected, rel=1e-12)     # c = 0, v = 1
    r3 = results(cli("specdec", "--head-alphas", "0.7,0.55,0.4,0.3", "--medusa-heads", "2", "--json"))
    assert r3["expected_tokens_per_step"] == pytest.approx(1 + 0.7 + 0.385, rel=1e-12)
    # a constant per-head acceptance is the draft-model formula with c = 0
    r4 = results(cli("specdec", "--alpha", "0.8", "--medusa-heads", "6", "--decay", "1", "--json"))
    assert r4["expected_tokens_per_step"] == pytest.approx(sd.tokens_per_step(0.8, 6), rel=1e-12)
