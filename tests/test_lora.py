"""Fine-tuning (--method full|lora|qlora) without torch: published figures, properties, the CLI end to end.

The torch cross-checks (PEFT's parameter count, FlopCounterMode, saved tensors) are in test_lora_torch.py; the
published figures are also rows of the validation registry (validation_finetune.py).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llmcalc.core import lora
from llmcalc.core.flops import training_step_flops
from llmcalc.core.memory import training_memory
from llmcalc.presets import load_model, preset_files

MODELS = sorted(preset_files("models"))


def test_nf4_double_quantisation_is_4_127_bits_per_weight():
    # Dettmers et al. 2023 (arXiv:2305.14314) sec. 3, Double Quantization: the constants cost
    # 8/64 + 32/(64·256) = 0.127 bits per parameter on top of the 4-bit codes.
    from llmcalc.core.quant import bits_per_weight, weight_parts
    assert bits_per_weight("nf4") == pytest.approx(4 + 0.127, abs=5e-4)
    # QLoRA's frozen base is core/quant.py's nf4: the same linear weights, the same bytes
    for name in MODELS:
        spec = load_model(name)
        n_q, bytes_q = weight_parts(spec, "nf4")["by_type"]["nf4"]
        assert n_q == lora.quantised_weights(spec)[0]
        r = training_memory(spec, 1, 128, method="qlora")
        assert r["weights/frozen"].value == pytest.approx(weight_parts(spec, "nf4")["total"], rel=1e-12)


def test_lora_paper_table_5_trainable_parameters():
    # Hu et al. 2021 (arXiv:2106.09685) Table 5: GPT-3 175B with "18M" trainable parameters for W_q at r = 8,
    # W_q,W_v at r = 4 and all four at r = 2 (separate projections there, not GPT-2's fused c_attn).
    gpt3 = dataclasses.replace(load_model("gpt3-175b"), family="")
    counts = {(r, t): training_step_flops(gpt3, 1, 1, method="lora", lora_rank=r, lora_targets=t)
              ["trainable_params"].value for r, t in ((8, "q"), (8, "k"), (4, "q,v"), (2, "attention"))}
    assert len(set(counts.values())) == 1
    assert 18e6 <= counts[(8, "q")] < 19e6


def test_fused_modules_carry_one_adapter():
    # GPT-2's c_attn is one Conv1D H -> 3H: naming q alone adapts all of it, as PEFT's target_modules=["c_attn"].
    gpt2 = load_model("gpt2")
    H, L, r = gpt2.hidden, gpt2.layers, 8
    got = training_step_flops(gpt2, 1, 1, method="lora", lora_rank=r, lora_targets="q")["trainable_params"].value
    assert got == r * (H + 3 * H) * L


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(MODELS), rank=st.integers(1, 64), batch=st.integers(1, 4), seq=st.integers(64, 4096),
       precision=st.sampled_from(["mixed", "bf16", "fp32"]), optimizer=st.sampled_from(
           ["adamw", "adam-8bit", "paged-adamw", "paged-adamw-8bit", "adafactor"]),
       activations=st.sampled_from(["megatron", "eager"]), recompute=st.sampled_from(["none", "selective", "full"]),
       targets=st.sampled_from(["all-linear", "attention", "q,v", "o,down"]), method=st.sampled_from(["lora", "qlora"]))
def test_lora_never_needs_more_memory_than_full(name, rank, batch, seq, precision, optimizer, activations,
                                                  recompute, targets, method):
    # With a stateful optimizer and ranks people use (≤ 64) at up to 16k tokens per micro-batch. (Not for every
    # setting: each adapter keeps its r-wide A output for backward, which full fine-tuning does not, so plain SGD
    # in bf16 at very many tokens per step can need more with LoRA.)
    if method == "qlora" and precision == "fp32":
        method = "lora"
    spec = load_model(name)
    kw = dict(precision=precision, optimizer=optimizer, activations=activations, recompute=recompute)
    full = training_memory(spec, batch, seq, **kw)["total_bytes"].value
    ft = training_memory(spec, batch, seq, method=method, lora_rank=rank, lora_targets=targets, **kw)
    assert ft["total_bytes"].value <= full
    if spec.moe is None:  # MoE: an adapter on each of 128 experts keeps its r-wide A output: can pass 2%
        assert ft["activations_bytes"].value <= training_memory(spec, batch, seq, **kw)["activations_bytes"].value * 1.02


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(MODELS), rank=st.integers(1, 256), tp=st.sampled_from([1, 2, 4, 8]),
       pp=st.sampled_from([1, 2, 4]), zero=st.integers(0, 3), dp=st.sampled_from([1, 8]),
       precision=st.sampled_from(["mixed", "bf16"]), targets=st.sampled_from(["all-linear", "q,v", "down"]))
def test_qlora_weights_never_exceed_lora_weights(name, rank, tp, pp, zero, dp, precision, targets):
    from llmcalc.core.layout import tp_allowed
    spec = load_model(name)
    assume(tp_allowed(spec, tp))  # a layout the model can take (core/layout.py)
    kw = dict(precision=precision, tp=tp, pp=pp, zero=zero, dp=dp, lora_rank=rank, lora_targets=targets)
    q = training_memory(spec, 1, 512, method="qlora", **kw)["weights_bytes"].value
    assert q <= training_memory(spec, 1, 512, method="lora", **kw)["weights_bytes"].value


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(MODELS), rank=st.integers(1, 64), k=st.integers(2, 4),
       targets=st.sampled_from(["all-linear", "attention", "q,v", "gate,up,down", "q,lm_head"]))
def test_trainable_params_grow_linearly_in_rank(name, rank, k, targets):
    spec = load_model(name)

    def trainable(r):
        return training_step_flops(spec, 1, 1, method="lora", lora_rank=r, lora_targets=targets)["trainable_params"].value

    assert trainable(k * rank) == k * trainable(rank)
    assert trainable(rank) == rank * trainable(1)


def test_adapter_memory_parts_add_up():
    spec = load_model("llama-3.1-8b")
    r = training_memory(spec, 2, 1024, method="qlora", lora_rank=64, optimizer="paged-adamw-8bit")
    assert r["weights_bytes"].value == pytest.approx(
        r["weights/frozen"].value + r["weights/adapters"].value + r["weights/dequantised"].value)
    assert r["total_bytes"].value == pytest.approx(sum(r[k].value for k in (
        "weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes")))
    # adapters only: the gradient is the adapters' bf16 copy
    assert r["gradients_bytes"].value == r["weights/adapters"].value


# ----------------------------------------------------------------------------------------------
# CLI


@pytest.mark.parametrize("args, says", [
    (["--method", "lora", "--lora-rank", "0"], "--lora-rank"),
    (["--method", "lora", "--lora-rank", "5000"], "rank"),
    (["--method", "lora", "--lora-targets", "q,attn"], "target"),
    (["--method", "qlora", "--precision", "fp32"], "precision"),
    (["--lora-rank", "8"], "--method"),
    (["--method", "full", "--lora-targets", "q,v"], "--method"),
    (["--method", "dora"], "--method"),
])
@pytest.mark.parametrize("command", ["train-mem", "flops"])
def test_bad_input_is_one_line_and_exit_2(cli, command, args, says):
    if command == "flops" and "--precision" in args:
        args = ["--method", "qlora", "--lora-targets", "nope"]
        says = "target"
    run = cli(command, "-m", "llama-2-7b", "--seq", "512", *args)
    assert run.code == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and says in run.stderr and "Traceback" not in run.stderr


def test_method_sweep_gives_one_row_per_method(cli):
    doc = cli("train-mem", "-m", "llama-2-7b", "--seq", "1024", "--method", "full,lora,qlora", "--json").json()
    rows = doc["rows"]
    assert [r["method"] for r in rows] == ["full", "lora", "qlora"]
    assert rows[0]["trainable_params"] == rows[0]["params_per_gpu"] and rows[0]["frozen_params"] == 0
    assert rows[0]["total_bytes"] > rows[1]["total_bytes"] > rows[2]["total_bytes"]
    assert rows[0]["weights/frozen"] == 0 and rows[1]["weights/frozen"] > rows[2]["weights/frozen"] > 0
    assert set(rows[0]) == set(rows[1]) == set(rows[2])


def test_rank_sweep(cli):
    rows = cli("flops", "-m", "qwen2.5-7b", "--seq", "2048", "--method", "lora", "--lora-rank", "8,16,64",
               "--json").json()["rows"]
    assert [r["lora_rank"] for r in rows] == [8, 16, 64]
    assert rows[2]["trainable_params"] == 8 * rows[0]["trainable_params"]
    # a LoRA step: about 4·P·T (the full step's 6·P·T without the base's weight gradients)
    for r in rows:
        assert 0.6 < r["training_flops"] / r["napkin_training_flops"] < 0.8


def test_flops_explain_shows_each_component(cli):
    run = cli("flops", "-m", "llama-2-7b", "--seq", "2048", "--method", "lora", "--explain", "-o", "table")
    assert run.code == 0, run.stderr
    for key in ("adapter_forward_flops", "base_input_grad_flops", "attention_score_backward_flops",
                "adapter_backward_flops"):
        assert key in run.stdout
    assert "all-linear" in run.stdout      # the note on the default targets


def test_what_would_fit_is_computed_and_runs(cli):
    doc = cli("train-mem", "-m", "llama-2-7b", "-g", "rtx-4090", "--seq", "2048", "--json").json()
    assert doc["results"]["fits"] is False
    suggestions = [n for n in doc["notes"] if n.startswith("does not fit; it would with")]
    assert len(suggestions) == 3          # ZeRO-3 over --dp, QLoRA, a larger GPU
    for note in suggestions:
        command = note.split(": llmcalc ", 1)[1].split()
        again = cli(*command, "--json").json()
        assert again["results"]["fits"] is True, note


def test_what_would_fit_keeps_the_lora_settings(cli):
    doc = cli("train-mem", "-m", "llama-2-13b", "-g", "rtx-4090", "--seq", "4096", "--method", "lora",
              "--lora-rank", "64", "--lora-targets", "q,v", "--activations", "eager", "--json").json()
    assert doc["results"]["fits"] is False
    for note in [n for n in doc["notes"] if n.startswith("does not fit; it would with")]:
        assert "--lora-rank 64 --lora-targets q,v" in note and "--activations eager" in note
        assert cli(*note.split(": llmcalc ", 1)[1].split(), "--json").json()["results"]["fits"] is True, note


def test_max_rank_is_the_largest_that_fits(cli):
    args = ["train-mem", "-m", "llama-3.1-8b", "-g", "l4", "--seq", "1024", "--method", "qlora", "--json"]
    best = cli(*args, "--max-rank").json()["results"]["max_rank"]
    assert best >= 1
    assert cli(*args, "--lora-rank", str(best)).json()["results"]["fits"] is True
    assert cli(*args, "--lora-rank", str(best + 1)).json()["results"]["fits"] is False


def test_one_row_per_gpu(cli):
    doc = json.loads(cli("train-mem", "-m", "llama-3.1-8b", "--seq", "2048", "--method", "qlora", "-g", "all",
                         "--json").stdout)
    gpus = [r["gpu"] for r in doc["rows"]]
    assert len(gpus) == len(preset_files("gpus")) and len(set(gpus)) == len(gpus)


def test_parallel_method_uses_the_frozen_base_step(cli):
    args = ["parallel", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "8", "--dp", "8", "--seq", "4096", "--json"]
    full = cli(*args).json()["results"]
    lora_ = cli(*args, "--method", "lora", "--lora-rank", "16").json()["results"]
    flops_full = training_step_flops(load_model("llama-3.1-8b"), 1, 4096)["training_flops"].value
    flops_lora = training_step_flops(load_model("llama-3.1-8b"), 1, 4096, method="lora")["training_flops"].value
    # compute time scales with the step's FLOPs; DP traffic with what trains
    assert lora_["step_seconds"] < full["step_seconds"]
    assert lora_["step_seconds"] == pytest.approx(full["step_seconds"] * flops_lora / flops_full, rel=0.05)
    mem = training_memory(load_model("llama-3.1-8b"), 1, 4096, method="lora")
    assert lora_["dp_comm_bytes"] == pytest.approx(
        full["dp_comm_bytes"] * mem["trainable_params_per_gpu"].value / mem["params_per_gpu"].value)
    assert cli(*args, "--method", "full,lora").code == 2
