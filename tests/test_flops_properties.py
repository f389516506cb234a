"""Properties of the FLOP count that must hold for any architecture (hypothesis)."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcalc.core.flops import training_step_flops
from llmcalc.spec import ModelSpec, MoESpec

sizes = st.integers(min_value=1, max_value=64)


@st.composite
def models(draw):
    heads = draw(st.integers(1, 16))
    kv_heads = draw(st.sampled_from([d for d in range(1, heads + 1) if heads % d == 0]))
    moe = None
    if draw(st.booleans()):
        experts = draw(st.integers(1, 16))
        moe = MoESpec(experts=experts, top_k=draw(st.integers(1, experts)), expert_ffn=draw(st.integers(1, 512)),
                      shared_experts=draw(st.integers(0, 2)))
    return ModelSpec(name="h", layers=draw(sizes), hidden=draw(st.integers(8, 1024)), heads=heads,
                     kv_heads=kv_heads, head_dim=draw(st.integers(1, 128)), ffn=draw(st.integers(1, 4096)),
                     vocab=draw(st.integers(1, 100_000)), mlp=draw(st.sampled_from(["gated", "plain"])), moe=moe)


@settings(max_examples=150, deadline=None)
@given(models(), st.integers(1, 64), st.integers(1, 8192), st.booleans())
def test_linear_in_batch_and_backward_twice_forward(spec, batch, seq, causal):
    one = training_step_flops(spec, 1, seq, causal)
    many = training_step_flops(spec, batch, seq, causal)
    assert many["forward_flops"].value == batch * one["forward_flops"].value
    assert many["backward_flops"].value == 2 * many["forward_flops"].value
    parts = sum(many[k].value for k in ("attention_projection_flops", "attention_score_flops", "mlp_flops",
                                       "lm_head_flops"))
    assert parts == many["forward_flops"].value  # the breakdown adds up to its total


@settings(max_examples=150, deadline=None)
@given(models(), st.integers(1, 8), st.integers(1, 4096),
       st.sampled_from(["layers", "hidden", "heads", "head_dim", "ffn", "vocab"]))
def test_grows_with_every_size(spec, batch, seq, field):
    import dataclasses
    base = training_step_flops(spec, batch, seq)["forward_flops"].value
    bigger = dataclasses.replace(spec, **{field: getattr(spec, field) * 2})
    if field == "heads":
        bigger = dataclasses.replace(bigger, kv_heads=spec.kv_heads * 2)
    grown = training_step_flops(bigger, batch, seq)["forward_flops"].value
    if field == "ffn" and spec.moe and not spec.moe.dense_layers:
        assert grown == base  # every layer is MoE: the dense MLP width is not used
    else:
        assert grown > base
    assert training_step_flops(spec, batch, seq + 1)["forward_flops"].value > base
    assert training_step_flops(spec, batch + 1, seq)["forward_flops"].value > base


@settings(max_examples=100, deadline=None)
@given(models(), st.integers(1, 8), st.integers(1, 4096))
def test_doubling_layers_doubles_the_per_layer_part(spec, batch, seq):
    import dataclasses
    r1 = training_step_flops(spec, batch, seq)
    r2 = training_step_flops(dataclasses.replace(spec, layers=2 * spec.layers), batch, seq)
    per_layer = lambda r: r["forward_flops"].value - r["lm_head_flops"].value  # noqa: E731
    assert per_layer(r2) == 2 * per_layer(r1)
    assert r2["lm_head_flops"].value == r1["lm_head_flops"].value


@settings(max_examples=100, deadline=None)
@given(models(), st.integers(1, 4096))
def test_causal_never_more_and_recompute_never_less(spec, seq):
    full = training_step_flops(spec, 1, seq)
    causal = training_step_flops(spec, 1, seq, causal=True)
    assert causal["attention_score_flops"].value <= full["attention_score_flops"].value
    sel = training_step_flops(spec, 1, seq, recompute="selective")["hardware_flops"].value
    rec = training_step_flops(spec, 1, seq, recompute="full")["hardware_flops"].value
    assert full["training_flops"].value <= sel <= rec


@settings(max_examples=60, deadline=None)
@given(models(), st.lists(st.integers(1, 100_000), min_size=1, max_size=20))
def test_vectorised_sweep_equals_pointwise(spec, seqs):
    arr = training_step_flops(spec, np.ones(len(seqs)), np.asarray(seqs, dtype=np.float64), causal=True)
    for i, s in enumerate(seqs):
        point = training_step_flops(spec, 1, s, causal=True)
        assert np.isclose(arr["forward_flops"].value[i], point["forward_flops"].value, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_cli_json_always_finite(batch, seq):
    from llmcalc.cli import main
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["flops", "-m", "llama-3.1-405b", "--batch", str(batch), "--seq", str(seq), "--json"])
    assert code == 0
    from conftest import assert_finite
    assert_finite(json.loads(out.getvalue()))
