"""Serving under load (core/loadsim.py) against queueing theory in its limits and against core/serve.py's
single-batch model, which is computed independently of the simulator's step bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcalc.core import loadsim as ls
from llmcalc.core import serve as sv
from llmcalc.errors import InputError
from llmcalc.presets import load_gpu, load_model

H100 = load_gpu("h100-sxm")


@pytest.fixture(scope="module")
def llama():
    return load_model("llama-3.1-8b")


@pytest.fixture(scope="module")
def engine(llama):
    return ls.build_engine(llama, H100)


def _uniform(cost: ls.StepCost, B: int, c: int, t: int, logits: int) -> float:
    """The simulator's step time for B identical sequences (c cached, t new each)."""
    pf, pw, cf, cw = cost.chunk(c, t)
    return cost.seconds(B * t, B * pf, B * pw, B * cf, B * cw, B * logits)


@pytest.mark.parametrize("name,tp", [("llama-3.1-8b", 1), ("llama-3.1-70b", 4), ("mixtral-8x7b", 2),
                                     ("gemma-2-9b", 1), ("mistral-7b", 1), ("deepseek-v3", 8)])
@pytest.mark.parametrize("B,c,t,logits", [(1, 0, 1, 1), (64, 900, 1, 1), (1, 0, 2048, 1), (1, 3000, 512, 0),
                                          (4, 5000, 1, 1), (3, 100, 300, 1)])
def test_step_cost_is_serve_step(name, tp, B, c, t, logits):
    """The mixed-step time is serve.step's, for any batch serve.step can express (windows, MoE, MLA, TP)."""
    spec = load_model(name)
    gpu = load_gpu("h200") if name == "deepseek-v3" else H100
    kw = dict(tp=tp, weight_dtype="fp8" if name == "deepseek-v3" else "bf16")
    cost = ls.StepCost.build(spec, gpu, 4096, **kw)
    ref = sv.step(spec, gpu, B, c, t, logits=logits, **kw)["seconds"].value
    assert _uniform(cost, B, c, t, logits) == pytest.approx(ref, rel=1e-9)


def test_span_closed_form_is_step_by_step(engine):
    """A span of decode steps summed in closed form equals the steps summed one by one, and it stops at
    the step during which a limit passes."""
    cost = engine.cost
    b, c0, k = 37, 700, 400
    times = [_uniform(cost, b, c0 + j, 1, 1) for j in range(k)]
    tm0, tq0, tc = cost.parts(b, b * (c0 + 1), 0, b * c0, 0, b)
    tm1, tq1, _ = cost.parts(b, b * (c0 + k), 0, b * (c0 + k - 1), 0, b)
    taken, total = ls._advance(tm0, (tm1 - tm0) / (k - 1), tq0, (tq1 - tq0) / (k - 1), tc, k, math.inf)
    assert taken == k and total == pytest.approx(sum(times), rel=1e-12)
    limit = sum(times[:123]) - 1e-9
    taken, total = ls._advance(tm0, (tm1 - tm0) / (k - 1), tq0, (tq1 - tq0) / (k - 1), tc, k, limit)
    assert taken == 123 and total == pytest.approx(sum(times[:123]), rel=1e-12)


def test_rate_to_zero_gives_single_request_latencies(llama, engine):
    """As the rate goes to 0, TTFT is the prefill of one prompt alone and TPOT the batch-1 decode step
    (core/serve.py's serve(), which averages the decode step over the generation by quadrature)."""
    P, G = 1000, 300
    unit, rows = ls.unit_arrivals(20, seed=3)
    d = ls.summarize(engine.run(ls.workload(1e-4, unit, rows, [P], [G])), 1e-4)
    ref = sv.serve(llama, H100, 1, P, G)
    assert d["ttft_mean_seconds"] == pytest.approx(ref["prefill_seconds"].value, rel=1e-8)
    assert d["tpot_mean_seconds"] == pytest.approx(ref["decode_seconds_per_token"].value, rel=1e-6)
    assert d["mean_batch"] < 0.01 and not d["overloaded"]


def test_chunked_prefill_alone_is_the_sum_of_its_chunks(llama):
    """A prompt longer than max_batched_tokens is prefilled in chunks, each a serve.step over the cache so far."""
    eng = ls.build_engine(llama, H100, max_batched_tokens=2048)
    ttft, _ = ls.alone(eng, 5000, 2)
    chunks = [(0, 2048, 0), (2048, 2048, 0), (4096, 904, 1)]
    ref = sum(sv.step(llama, H100, 1, c, t, logits=lg)["seconds"].value for c, t, lg in chunks)
    assert ttft == pytest.approx(ref, rel=1e-9)


def _md1(llama, rho, requests, seeds):
    eng = ls.build_engine(llama, H100, max_seqs=1)
    P, G = 256, 4
    ref = sv.serve(llama, H100, 1, P, G)
    prefill, D = ref["prefill_seconds"].value, ref["e2e_seconds"].value   # D = prefill + (G − 1) decode steps
    rate = rho / D
    ttft = []
    for seed in seeds:
        unit, rows = ls.unit_arrivals(requests, seed=seed)
        sim = eng.run(ls.workload(rate, unit, rows, [P], [G]))
        _little(ls.summarize(sim, rate))
        ttft.append(sim.ttft)
    return np.concatenate(ttft), prefill, D, unit / rate


@pytest.mark.parametrize("rho,requests,seeds", [(0.3, 20_000, [11]), (0.6, 40_000, [11]),
                                                pytest.param(0.9, 250_000, [11, 12, 13, 14], marks=pytest.mark.slow)])
def test_one_sequence_at_a_time_is_md1(llama, rho, requests, seeds):
    """--max-seqs 1 with fixed lengths is an M/D/1 queue: mean TTFT = prefill + ρ·D/(2(1 − ρ))
    (Pollaczek-Khinchine), D the service time of one request alone (core/serve.py's e2e at batch 1).
    At ρ = 0.9 the sample mean converges slowly (a run of 250k requests scatters by ±3%), so four are pooled."""
    ttft, prefill, D, _ = _md1(llama, rho, requests, seeds)
    assert ttft.mean() == pytest.approx(prefill + ls.MD1_WAIT(rho=rho, D=D), rel=0.03)


def test_md1_sample_path_is_lindley(llama):
    """The same arrivals through Lindley's recursion W' = max(0, W + D − A) give every request's wait."""
    ttft, prefill, D, arrivals = _md1(llama, 0.9, 5000, [21])
    gaps = np.diff(arrivals)
    wait = np.zeros_like(arrivals)
    for i, a in enumerate(gaps):
        wait[i + 1] = max(0.0, wait[i] + D - a)
    np.testing.assert_allclose(ttft, prefill + wait, rtol=1e-9, atol=1e-9)


def _little(d):
    assert d["mean_in_system"] == pytest.approx(d["little_rate_times_e2e"], rel=1e-9)
    assert d["mean_in_system"] == pytest.approx(d["mean_batch"] + d["mean_queue"], rel=1e-9)


@pytest.mark.parametrize("rate", [0.5, 5, 20, 60])
def test_little_law_and_conservation(engine, rate):
    """Little's law holds in every run: the simulator integrates the running and waiting counts over its
    steps; the requests' own timestamps give rate × mean time in the system."""
    lengths = ([50, 400, 1500, 3000], [1, 30, 200, 600])
    unit, rows = ls.unit_arrivals(1500, seed=5, n_lengths=4)
    sim = engine.run(ls.workload(rate, unit, rows, *lengths))
    d = ls.summarize(sim, rate)
    _little(d)
    assert np.all(sim.ttft > 0) and np.all(sim.e2e >= sim.ttft)
    assert sim.output_tokens == int(np.asarray(lengths[1])[rows].sum())


def test_preemption_when_the_cache_runs_out(llama):
    """A pool of a few long sequences forces preemption (recompute); every request still completes, Little
    holds, and the same requests without the squeeze finish sooner."""
    tight = ls.build_engine(llama, H100)
    tight.blocks = 300                                     # 4800 tokens of cache
    roomy = ls.build_engine(llama, H100)
    unit, rows = ls.unit_arrivals(400, seed=2)
    w = ls.workload(8.0, unit, rows, [800], [400])
    a, b = tight.run(w), roomy.run(w)
    assert a.preemptions > 0 and b.preemptions == 0
    assert np.all(np.isfinite(a.e2e))
    _little(ls.summarize(a, 8.0))
    assert a.e2e.mean() > b.e2e.mean()


def test_overload_grows_with_n_and_is_flagged(engine):
    """Above capacity the queue never drains: latency grows with the number of requests, and the result says so."""
    mr = ls.summarize(engine.run(ls.workload(1.0, *ls.unit_arrivals(200, 0), [2000], [500])), 1.0)
    assert not mr["overloaded"]
    runs = []
    for n in (500, 2000):
        unit, rows = ls.unit_arrivals(n, seed=0)
        runs.append(ls.summarize(engine.run(ls.workload(400.0, unit, rows, [2000], [500])), 400.0))
    assert all(r["overloaded"] for r in runs)
    assert runs[1]["ttft_mean_seconds"] > 2.5 * runs[0]["ttft_mean_seconds"]
    assert runs[1]["achieved_rate"] < 400.0 / 2


def test_same_seed_same_answer(engine):
    def run(seed):
        unit, rows = ls.unit_arrivals(300, seed=seed, n_lengths=3)
        return ls.summarize(engine.run(ls.workload(15.0, unit, rows, [100, 900, 2000], [20, 200, 400])), 15.0)
    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert a["ttft_mean_seconds"] != c["ttft_mean_seconds"]


@pytest.fixture(scope="module")
def small(llama):
    return ls.build_engine(llama, H100, max_seqs=32, max_batched_tokens=2048)


SLOW_TTFT = [2.0, 0.6, 0.3, 0.15]


def test_max_rate_never_rises_when_an_slo_tightens(small):
    unit, rows = ls.unit_arrivals(300, seed=1)
    rates = [ls.max_rate(small, unit, rows, [1000], [200], slo_ttft=s, slo_tpot=0.05) for s in SLOW_TTFT]
    assert all(b <= a for a, b in zip(rates, rates[1:]))
    assert rates[0] > rates[-1] > 0
    tpots = [ls.max_rate(small, unit, rows, [1000], [200], slo_ttft=1.0, slo_tpot=s) for s in (0.05, 0.02, 0.012)]
    assert all(b <= a for a, b in zip(tpots, tpots[1:]))


def test_max_rate_meets_its_slo_and_a_faster_rate_does_not(small):
    unit, rows = ls.unit_arrivals(300, seed=1)
    mr = ls.max_rate(small, unit, rows, [1000], [200], slo_ttft=0.3, slo_tpot=0.05)
    at = ls.summarize(small.run(ls.workload(mr, unit, rows, [1000], [200])), mr, slo_ttft=0.3, slo_tpot=0.05)
    above = ls.summarize(small.run(ls.workload(mr * 1.02, unit, rows, [1000], [200])), mr * 1.02)
    assert ls.meets(at, 0.3, 0.05)
    assert not ls.meets(above, 0.3, 0.05)


@settings(max_examples=50, deadline=None)
@given(st.floats(0.01, 1e4), st.floats(1.0001, 10), st.floats(0.01, 100))
def test_replicas_never_fall_when_the_rate_rises(rate, factor, max_rate):
    assert ls.replicas(rate * factor, max_rate) >= ls.replicas(rate, max_rate)
    assert ls.replicas(rate, max_rate) * max_rate >= rate


@pytest.mark.parametrize("call,match", [
    (lambda e: ls.workload(0.0, *ls.unit_arrivals(5, 0), [10], [10]), "rate"),
    (lambda e: ls.workload(-1.0, *ls.unit_arrivals(5, 0), [10], [10]), "rate"),
    (lambda e: ls.unit_arrivals(0, 0), "requests"),
    (lambda e: ls.check_slo(e, [1000], [100], 1e-4, None), "cannot be met.*prefill"),
    (lambda e: ls.check_slo(e, [1000], [100], None, 1e-4), "cannot be met.*decodes"),
    (lambda e: ls.check_lengths([], [], blocks=e.blocks, block=e.block), "empty"),
    (lambda e: ls.check_lengths([0], [5], blocks=e.blocks, block=e.block), "at least 1"),
    (lambda e: ls.check_lengths([10**7], [5], blocks=e.blocks, block=e.block), "does not fit"),
    (lambda e: ls.build_engine(load_model("llama-3.1-8b"), H100, max_seqs=512, max_batched_tokens=256).run(
        ls.Workload([0.0], [10], [10])), "at least --max-seqs"),
])
def test_bad_input(engine, call, match):
    with pytest.raises(InputError, match=match):
        call(engine)


@pytest.fixture(scope="module")
def engines():
    out = {}
    for name, tp in (("gemma-2-9b", 1), ("mixtral-8x7b", 2), ("llama-3.1-8b", 1)):
        out[name] = ls.build_engine(load_model(name), H100, tp=tp, max_seqs=8, max_batched_tokens=512)
    return out


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(["gemma-2-9b", "mixtral-8x7b", "llama-3.1-8b"]),
       lengths=st.lists(st.tuples(st.integers(1, 6000), st.integers(1, 400)), min_size=1, max_size=6),
       rate=st.floats(0.05, 50), blocks=st.integers(400, 2000), seed=st.integers(0, 2**16))
def test_invariants_on_random_workloads(engines, name, lengths, rate, blocks, seed):
    """Any workload on a small engine (8 sequences, 512-token chunks, a tight block pool; windowed attention,
    MoE, TP): every request finishes, no block leaks, Little's law holds, and nobody beats running alone."""
    import dataclasses
    eng = dataclasses.replace(engines[name], blocks=blocks)
    prompts, gens = zip(*lengths)
    ls.check_lengths(prompts, gens, blocks=blocks, block=eng.block)
    unit, rows = ls.unit_arrivals(60, seed, len(lengths))
    sim = eng.run(ls.workload(rate, unit, rows, prompts, gens))
    assert np.all(np.isfinite(sim.e2e)) and sim.extra["free_blocks_end"] == blocks
    _little(ls.summarize(sim, rate))
    p, g = np.asarray(prompts)[rows], np.asarray(gens)[rows]
    for i in range(0, 60, 7):
        ttft, tpot = ls.alone(eng, int(p[i]), int(g[i]))
        assert sim.ttft[i] >= ttft - 1e-9                     # seconds: arrival times lose digits
        assert sim.e2e[i] >= ttft + (g[i] - 1) * (0 if g[i] == 1 else tpot) - 1e-9
