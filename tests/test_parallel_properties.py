"""Properties of `parallel` that must hold for any model and machine (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llmcalc.core import parallel as par
from llmcalc.core import parallel_search as ps
from llmcalc.spec import GpuSpec, ModelSpec

GPUS = st.sampled_from([1, 2, 4, 8, 16, 32, 64])


@st.composite
def models(draw):
    heads = draw(st.sampled_from([1, 2, 4, 6, 8, 12, 16, 32]))
    kv_heads = draw(st.sampled_from([d for d in range(1, heads + 1) if heads % d == 0]))
    head_dim = draw(st.sampled_from([8, 16, 64, 128]))
    return ModelSpec(name="h", layers=draw(st.integers(1, 48)), hidden=heads * head_dim, heads=heads,
                     kv_heads=kv_heads, head_dim=head_dim, ffn=draw(st.integers(16, 8192)),
                     vocab=draw(st.integers(100, 200_000)), mlp=draw(st.sampled_from(["gated", "plain"])),
                     tie_embeddings=draw(st.booleans()), max_seq=8192)


@st.composite
def gpus(draw):
    return GpuSpec(name="g", memory_bytes=draw(st.floats(2 * 2**30, 256 * 2**30)), hbm_bytes_per_s=3e12,
                   flops_per_s={"bf16": draw(st.floats(1e13, 2e15)), "fp8": 2e15, "tf32": 4e14, "fp32": 6e13},
                   nvlink_bytes_per_s_unidir=draw(st.floats(1e10, 1e12)),
                   net_bytes_per_s_unidir=draw(st.floats(1e9, 1e11)), gpus_per_node=draw(st.sampled_from([4, 8])))


def runs(seq, B):
    return st.builds(par.Training, seq=st.just(seq), global_batch=st.just(B),
                     precision=st.sampled_from(["mixed", "bf16", "fp32", "fp8"]),
                     optimizer=st.sampled_from(["adamw", "sgd", "adafactor"]), flash=st.booleans(),
                     schedule=st.sampled_from(["1f1b", "gpipe"]), overlap_dp=st.booleans(),
                     compute_mfu=st.floats(0.1, 1.0))


def tp_ok(spec, t):
    from llmcalc.core.layout import tp_allowed
    return bool(tp_allowed(spec, t))


def total(spec, gpu, run, **layout):
    r = par.evaluate(spec, gpu, par.Cluster.from_gpu(gpu), run, **layout)
    return float(r["total_bytes"].value)


# ----------------------------------------------------------------------------------------------
# Per-GPU memory never rises when a parallel degree rises at fixed global work (same model, global batch,
# sequence, micro-batch, ZeRO stage, recomputation, SP).


@settings(max_examples=120, deadline=None)
@given(models(), gpus(), st.data())
def test_memory_never_rises_with_a_parallel_degree(spec, gpu, data):
    seq = data.draw(st.sampled_from([128, 1024, 4096]))
    b = data.draw(st.sampled_from([1, 2, 4]))
    t = data.draw(st.sampled_from([x for x in (1, 2, 4, 8) if tp_ok(spec, x)]))
    p = data.draw(st.sampled_from([x for x in (1, 2, 3, 4, 6) if spec.layers % x == 0]))
    d = data.draw(st.sampled_from([1, 2, 4, 8]))
    B = d * b * 2 * data.draw(st.integers(1, 16))        # so dp can double and still divide it
    zero = data.draw(st.sampled_from([0, 1, 2, 3]))
    rec = data.draw(st.sampled_from(["none", "selective", "full"]))
    sp = data.draw(st.booleans())
    run = data.draw(runs(seq, B))
    base = dict(dp=d, tp=t, pp=p, micro_batch=b, zero=zero, recompute=rec, sp=sp)
    m0 = total(spec, gpu, run, **base)
    tol = 1e-9 * m0
    # Data parallelism: ZeRO shards over more GPUs, fewer micro-batches per replica.
    assert total(spec, gpu, run, **{**base, "dp": 2 * d}) <= m0 + tol
    # Tensor parallelism: weights and the split activations shrink.
    bigger_t = [x for x in (2, 4, 8, 16) if x > t and tp_ok(spec, x)]
    if bigger_t:
        assert total(spec, gpu, run, **{**base, "tp": bigger_t[0]}) <= m0 + tol
    # Pipeline parallelism (v = 1, p dividing the layers): stage 1 holds L/p layers of min(p, m) micro-batches
    # (1F1B) or m of them (GPipe), never more than L layers' worth; the last stage's logits leave it. The one
    # term that grows is the embedding output of each micro-batch in flight, (8 + h/t_sp)·b·s bytes (token
    # ids and dropout mask, Korthikanti et al. 2022): it outgrows the model states stage 1 sheds only when those
    # are tiny (a toy model, or ZeRO-3 over many GPUs). Everything else never rises.
    bigger_p = [x for x in range(p + 1, spec.layers + 1) if spec.layers % x == 0][:1]
    if bigger_p:
        q = bigger_p[0]
        r0 = par.evaluate(spec, gpu, par.Cluster.from_gpu(gpu), run, **base)
        r1 = par.evaluate(spec, gpu, par.Cluster.from_gpu(gpu), run, **{**base, "pp": q})
        extra = (float(r1["in_flight_microbatches"].value) - float(r0["in_flight_microbatches"].value)) * \
            (8 + spec.hidden / (t if sp else 1)) * b * seq
        assert float(r1["total_bytes"].value) <= m0 + max(extra, 0) + tol


def evaluate(spec, gpu, run, **layout):
    return par.evaluate(spec, gpu, par.Cluster.from_gpu(gpu), run, **layout)


def in_flight_embedding_growth(r0, r1, spec, t, sp, b, seq) -> float:
    """Bytes stage 1 adds for the extra micro-batches in flight: token ids (8 B) and the embedding's dropout
    mask (1 B per element, split by SP), per micro-batch (train-mem's Megatron count)."""
    more = float(r1["in_flight_microbatches"].value) - float(r0["in_flight_microbatches"].value)
    return max(more, 0.0) * (8 + spec.hidden / (t if sp else 1)) * b * seq


@pytest.mark.parametrize("name,gpu_name,seq", [("gpt2", "a100-80gb", 1024), ("llama-2-7b", "a100-80gb", 4096),
                                                ("llama-3.1-70b", "h100-sxm", 8192), ("gpt3-175b", "a100-80gb", 2048)])
@pytest.mark.parametrize("zero", [0, 1, 2, 3])
@pytest.mark.parametrize("rec", ["none", "full"])
def test_real_models_memory_never_rises_with_any_degree(name, gpu_name, seq, zero, rec):
    # Real models, every tp and pp, dp 1 and 8 (doubled): strict for data and tensor degrees; for pipeline
    # degrees up to the in-flight embedding outputs. Those do win where the states per GPU are already small:
    # Llama-2-7B, tp 8, dp 8, ZeRO-1, pp 8 -> 16 adds 8 × 4096·(8 + 4096) B = 134 MB and sheds 101 MB of states.
    from llmcalc.presets import load_gpu, load_model
    spec, gpu = load_model(name), load_gpu(gpu_name)
    run = par.Training(seq=seq, global_batch=512)
    pps = [p for p in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32) if spec.layers % p == 0]
    tps = [t for t in (1, 2, 4, 8) if tp_ok(spec, t)]
    for d in (1, 8):
        by_t = {}
        for t in tps:
            prev = None
            for p in pps:
                layout = dict(dp=d, tp=t, pp=p, micro_batch=1, zero=zero, recompute=rec)
                r = evaluate(spec, gpu, run, **layout)
                cur = float(r["total_bytes"].value)
                if prev is not None:
                    slack = in_flight_embedding_growth(prev, r, spec, t, False, 1, seq)
                    assert cur <= float(prev["total_bytes"].value) + slack + 1e-9 * cur, (d, t, p)
                assert float(evaluate(spec, gpu, run, **{**layout, "dp": 2 * d})["total_bytes"].value) <= cur
                prev = r
                by_t.setdefault(p, []).append(cur)
        for p, totals in by_t.items():           # rising tp at each pp
            assert all(b <= a * (1 + 1e-12) for a, b in zip(totals, totals[1:])), (d, p, totals)


# ----------------------------------------------------------------------------------------------
# The search


def hand_layouts(spec, N, G, B):
    """Every layout a person could pick by hand, written independently of the search's enumeration."""
    out = []
    for t in (1, 2, 4, 8, 16):
        if t > G or N % t or not tp_ok(spec, t):
            continue
        for p in range(1, spec.layers + 1):
            if spec.layers % p or (N // t) % p:
                continue
            d = N // (t * p)
            for b in (1, 2, 4, 8):
                if B % (d * b) == 0:
                    out.append((d, t, p, b))
    return out


@settings(max_examples=60, deadline=None)
@given(models(), gpus(), GPUS, st.data())
def test_search_returns_only_layouts_that_fit_and_its_best_beats_any_hand_pick(spec, gpu, N, data):
    seq = data.draw(st.sampled_from([256, 2048]))
    B = N * data.draw(st.sampled_from([1, 2, 4, 8]))
    run = data.draw(runs(seq, B))
    cluster = par.Cluster.from_gpu(gpu)
    res = ps.search(spec, gpu, cluster, run, N, top=0)
    r = res.results
    if res.fitting:
        assert np.all(r["fits"].value)
        assert np.all(r["total_bytes"].value <= r["usable_memory_bytes"].value)
        assert np.all(np.diff(r["step_seconds"].value) >= 0)                     # best first
        lay = res.layouts
        assert np.all(lay["tp"] * lay["pp"] * lay["dp"] == N)
        assert np.all(np.isfinite(r["step_seconds"].value)) and np.all(r["mfu"].value > 0)
        # The vectorised evaluation agrees with a scalar one of the same layout.
        i = data.draw(st.integers(0, res.fitting - 1))
        one = par.evaluate(spec, gpu, cluster, run, dp=int(lay["dp"][i]), tp=int(lay["tp"][i]),
                           pp=int(lay["pp"][i]), micro_batch=int(lay["micro_batch"][i]),
                           virtual=int(lay["virtual"][i]), zero=int(lay["zero"][i]), recompute=lay["recompute"][i],
                           sp=bool(lay["sp"][i]))
        assert float(one["step_seconds"].value) == pytest.approx(float(r["step_seconds"].value[i]), rel=1e-9)
        assert float(one["total_bytes"].value) == pytest.approx(float(r["total_bytes"].value[i]), rel=1e-9)
    # A layout picked by hand, if it fits, is never faster than the search's best.
    picks = hand_layouts(spec, N, gpu.gpus_per_node, B)
    assume(picks)
    d, t, p, b = data.draw(st.sampled_from(picks))
    zero = data.draw(st.sampled_from([0, 1, 2, 3])) if d > 1 else 0
    rec = data.draw(st.sampled_from(["none", "selective", "full"]))
    sp = data.draw(st.booleans()) if t > 1 else False
    hand = par.evaluate(spec, gpu, cluster, run, dp=d, tp=t, pp=p, micro_batch=b, zero=zero, recompute=rec, sp=sp)
    if bool(hand["fits"].value):
        assert res.fitting > 0
        assert float(r["step_seconds"].value[0]) <= float(hand["step_seconds"].value) * (1 + 1e-12)


# ----------------------------------------------------------------------------------------------
# JSON is finite, whatever the layout


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(heads=st.sampled_from([4, 8, 16]), layers=st.sampled_from([2, 4, 12]), N=st.sampled_from([1, 8, 32]),
       search=st.booleans(), zero=st.sampled_from(["0", "1", "2", "3"]), rec=st.sampled_from(["none", "full"]))
def test_json_is_finite(cli, heads, layers, N, search, zero, rec):
    args = ["parallel", "--hidden", str(heads * 64), "--heads", str(heads), "--layers", str(layers), "--vocab",
            "32000", "-g", "h100-sxm", "--gpus", str(N), "--seq", "1024", "--json"]
    if search:
        args += ["--search", "--top", "0"]
    else:
        args += ["--zero", zero, "--recompute", rec, "--tokens", "1T"]
    doc = cli(*args).json()               # asserts exit 0 and every number finite
    rows = doc.get("rows", [doc.get("results")])
    for row in rows:
        for key in ("total_bytes", "step_seconds", "mfu", "bubble_fraction", "dp_comm_bytes", "tp_comm_bytes",
                    "pp_comm_bytes"):
            assert isinstance(row[key], (int, float)) and math.isfinite(row[key])


# ----------------------------------------------------------------------------------------------
# Overlap never makes a step slower; context parallelism shrinks activations and keeps the FLOPs.


@settings(max_examples=80, deadline=None)
@given(models(), gpus(), st.data())
def test_overlap_never_slows_a_step_and_cp_divides_activations(spec, gpu, data):
    import dataclasses
    seq = data.draw(st.sampled_from([1024, 4096, 16384]))
    t = data.draw(st.sampled_from([x for x in (1, 2, 4, 8, 16) if tp_ok(spec, x)]))
    p = data.draw(st.sampled_from([x for x in (1, 2, 4) if x <= spec.layers]))
    d = data.draw(st.sampled_from([1, 2, 8]))
    cp = data.draw(st.sampled_from([1, 2, 4]))
    B = d * 2 * data.draw(st.integers(1, 8))
    layout = dict(dp=d, tp=t, pp=p, micro_batch=1, zero=data.draw(st.sampled_from([0, 1, 2, 3])),
                  recompute=data.draw(st.sampled_from(["none", "selective", "full"])), sp=data.draw(st.booleans()),
                  cp=cp)
    run = data.draw(runs(seq, B))
    cl = par.Cluster.from_gpu(gpu)
    plain = par.evaluate(spec, gpu, cl, dataclasses.replace(run, tp_overlap=False, overlap_dp=False), **layout)
    for change in (dict(tp_overlap=True), dict(overlap_dp=True), dict(tp_overlap=True, overlap_dp=True)):
        hidden = par.evaluate(spec, gpu, cl, dataclasses.replace(run, **{"overlap_dp": False, **change}), **layout)
        assert float(hidden["step_seconds"].value) <= float(plain["step_seconds"].value) * (1 + 1e-12)
    if cp > 1 and run.flash:
        one = par.evaluate(spec, gpu, cl, run, **{**layout, "cp": 1})
        many = par.evaluate(spec, gpu, cl, run, **layout)
        assert float(many["activations_bytes"].value) == pytest.approx(float(one["activations_bytes"].value) / cp)
        assert float(many["hardware_flops"].value) == float(one["hardware_flops"].value)
