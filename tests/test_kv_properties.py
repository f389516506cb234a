"""Properties of the KV-cache arithmetic that must hold for any architecture (hypothesis)."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_finite
from llmcalc.core.kv import KV_DTYPES, kv_bytes_per_token, kv_cache_bytes, kv_report
from llmcalc.presets import load_gpu
from llmcalc.spec import MLASpec, ModelSpec


@st.composite
def models(draw):
    heads = draw(st.integers(1, 16))
    kv_heads = draw(st.sampled_from([d for d in range(1, heads + 1) if heads % d == 0]))
    layers = draw(st.integers(1, 64))
    window = draw(st.sampled_from([0, 0, 1, 16, 4096]))
    window_layers = draw(st.integers(-1, layers)) if window else -1
    mla = None
    if draw(st.integers(0, 4)) == 0:
        mla = MLASpec(kv_lora_rank=draw(st.integers(1, 1024)), qk_rope_head_dim=draw(st.integers(1, 128)),
                      qk_nope_head_dim=draw(st.integers(1, 128)), v_head_dim=draw(st.integers(1, 128)))
    return ModelSpec(name="h", layers=layers, hidden=draw(st.integers(8, 1024)), heads=heads, kv_heads=kv_heads,
                     head_dim=draw(st.integers(1, 256)), ffn=draw(st.integers(1, 4096)),
                     vocab=draw(st.integers(1, 100_000)), sliding_window=window,
                     sliding_window_layers=window_layers, mla=mla)


dtypes = st.sampled_from(KV_DTYPES)
groups = st.sampled_from([0, 32, 64, 128])


@settings(max_examples=200, deadline=None)
@given(models(), st.integers(1, 256), st.integers(1, 200_000), dtypes, groups)
def test_monotone_nonnegative_and_bounded(spec, batch, seq, dtype, g):
    g = g if dtype in ("fp8", "int8", "int4") else 0
    here = kv_cache_bytes(spec, batch, seq, dtype, g)
    assert here > 0
    assert kv_cache_bytes(spec, batch + 1, seq, dtype, g) > here                 # strictly more sequences
    assert kv_cache_bytes(spec, batch, seq + 1, dtype, g) >= here                # never less (windows: equal)
    assert kv_cache_bytes(spec, batch, seq, dtype, g) == batch * kv_cache_bytes(spec, 1, seq, dtype, g)
    assert here <= batch * seq * kv_bytes_per_token(spec, dtype, g)             # windows only ever cap
    if not spec.window_layers:
        assert here == batch * seq * kv_bytes_per_token(spec, dtype, g)


@settings(max_examples=100, deadline=None)
@given(models(), st.integers(1, 64), st.integers(1, 100_000), dtypes, st.sampled_from([1, 2, 4, 8]),
       st.floats(0.05, 1.0), st.integers(1, 64), st.integers(0, 4096), st.integers(0, 4096))
def test_report_is_sane(spec, batch, seq, dtype, tp, util, block, o1, o2):
    from llmcalc.core.layout import tp_allowed
    if not tp_allowed(spec, tp):
        tp = 1
    o_mean, o_max = sorted((o1, o2))
    r = kv_report(spec, batch, seq, kv_dtype=dtype, gpu=load_gpu("h100-sxm"), mem_util=util, tp=tp,
                  block_size=block, mean_output=o_mean, max_output=o_max)
    v = r.values_dict()
    for key, value in v.items():
        if isinstance(value, bool):
            continue
        if key == "max_seq" and spec.window_layers == spec.layers and value == math.inf:
            continue  # every layer windowed: the cache stops growing, so any length fits once the window does
        assert math.isfinite(value) and value >= 0, key
    assert v["decode_flops_without_cache"] >= v["decode_flops_with_cache"] > 0
    assert v["paged_kv_bytes_per_sequence"] >= (v.get("kv_bytes_per_sequence_per_gpu") or v["kv_bytes_per_sequence"])
    assert v["paged_bytes_per_request"] <= v["contiguous_bytes_per_request"] + block * v["kv_bytes_per_token"]
    assert v["fits"] == (batch <= v["max_batch"])
    assert v["max_requests_paged"] >= 0 and v["max_requests_contiguous"] >= 0
    for key, row in r.items():                             # every --explain formula gives its value
        if row.formula is not None:
            assert row.formula(**row.symbols) == row.value, key


@settings(max_examples=40, deadline=None)
@given(models(), st.integers(1, 64), st.integers(1, 65_536))
def test_capacity_monotone(spec, batch, seq):
    gpu = load_gpu("a100-80gb")
    small = kv_report(spec, batch, seq, gpu=gpu)
    longer = kv_report(spec, batch, seq * 2, gpu=gpu)
    more = kv_report(spec, batch, seq, gpu=gpu, mem_util=1.0)
    assert longer["max_batch"].value <= small["max_batch"].value      # longer sequences: never more of them
    assert more["max_batch"].value >= small["max_batch"].value        # more memory: never fewer


@settings(max_examples=20, deadline=None)
@given(models(), st.lists(st.integers(1, 64), min_size=1, max_size=3),
       st.lists(st.integers(1, 100_000), min_size=1, max_size=3))
def test_vectorised_equals_pointwise(spec, batches, seqs):
    gpu = load_gpu("l4")
    B, S = np.meshgrid(np.array(batches, float), np.array(seqs, float), indexing="ij")
    got = kv_report(spec, B.ravel(), S.ravel(), gpu=gpu, max_output=300)
    for i, (b, s) in enumerate(zip(B.ravel(), S.ravel())):
        one = kv_report(spec, int(b), int(s), gpu=gpu, max_output=300)
        for key, row in one.items():
            arr = np.broadcast_to(np.asarray(got[key].value), B.ravel().shape)
            # counts and bytes are exact; a ratio of two exact integers may differ in its last bit as float64
            assert arr[i] == row.value or math.isclose(arr[i], row.value, rel_tol=1e-12), key


# the cli fixture reads capsys afresh on every call, so reusing it across examples is safe
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 96), st.sampled_from([(32, 8), (32, 32), (64, 1), (12, 12)]), st.sampled_from(
    ["1", "1,7,64", "1..256x2"]), st.sampled_from(["1", "1k..64k+9k", "100,5000"]), dtypes)
def test_cli_json_is_finite(cli, layers, heads, batch, seq, dtype):
    h, k = heads
    run = cli("kv", "--layers", layers, "--hidden", h * 64, "--heads", h, "--kv-heads", k, "--vocab", "32000",
              "-g", "rtx-4090", "--batch", batch, "--seq", seq, "--kv-dtype", dtype, "--max-output", "512", "--json")
    doc = run.json()
    assert_finite(doc)
    json.dumps(doc, allow_nan=False)
    rows = doc.get("rows") or [doc["results"]]
    for row in rows:
        assert row["kv_bytes"] >= 0 and row["max_batch"] >= 0
