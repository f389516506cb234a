"""LoRA against the real thing: PEFT's parameter count, PyTorch's FLOP counter and autograd's saved tensors.

- ``trainable_params`` equals PEFT's ``get_nb_trainable_parameters()`` exactly, for LoRA models PEFT builds on the
  meta device over full-depth Llama-2-7B, Llama-3.1-8B, Mistral-7B, Qwen2.5-7B and GPT-2, ranks 8, 16 and 64,
  targets q,v and all-linear (GPT-2's q,v is its fused Conv1D c_attn; all-linear is PEFT's own "all-linear");
- ``training_flops`` of ``--method lora`` equals FlopCounterMode over one forward and ``logits.sum().backward()``
  of small real CPU models with the base frozen (within 0.5%; exact in fact), beside the full fine-tuning step;
- ``--activations eager`` under ``--method lora`` is within 10% of the bytes autograd saves for backward
  (saved-tensor hooks deduplicated by storage; with gradient checkpointing the storages still alive), dropout off.

    python -m tests.test_lora_torch      # prints every ratio
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from llmcalc.core.flops import training_step_flops  # noqa: E402
from llmcalc.core.memory import training_memory  # noqa: E402
from llmcalc.presets import load_model  # noqa: E402

pytestmark = pytest.mark.torch

PRESETS = ["llama-2-7b", "llama-3.1-8b", "mistral-7b", "qwen2.5-7b", "gpt2"]


def _quiet():
    import transformers
    transformers.logging.set_verbosity_error()
    warnings.simplefilter("ignore")


def _check_against_peft(spec, rank, targets):
    from tests.reference.hf import build_meta
    from tests.reference.lora import lora_model, trainable_params
    _quiet()
    peft_model = lora_model(build_meta(spec), spec, rank, targets)
    ours = training_step_flops(spec, 1, 1, method="lora", lora_rank=rank, lora_targets=targets)
    assert ours["trainable_params"].value == trainable_params(peft_model), (spec.name, rank, targets)
    # PEFT's second figure is every parameter, base and adapters
    assert ours["frozen_params"].value + ours["trainable_params"].value == \
        peft_model.get_nb_trainable_parameters()[1]


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("rank", (8, 16, 64))
@pytest.mark.parametrize("targets", ("q,v", "all-linear"))
def test_trainable_params_equal_peft_on_meta(name, rank, targets):
    # two layers of the preset's real widths (adapters are per layer, so the count is linear in depth) ...
    _check_against_peft(dataclasses.replace(load_model(name), layers=2), rank, targets)


@pytest.mark.parametrize("name", ["llama-3.1-8b", "gpt2", "qwen2.5-7b"])
def test_named_embedding_and_lm_head_adapters_equal_peft(name):
    # not in all-linear, but a user may name them (GPT-2's head is tied to its embedding: both still adapt)
    _check_against_peft(dataclasses.replace(load_model(name), layers=2), 16, "q,v,embed,lm_head")


@pytest.mark.parametrize("name", PRESETS)
def test_trainable_params_equal_peft_full_depth(name):
    # ... and the whole model once per preset
    _check_against_peft(load_model(name), 16, "all-linear")


def _small_models():
    from tests.test_train_mem_torch import GPT2_STYLE, LLAMA_STYLE
    return GPT2_STYLE, LLAMA_STYLE


FLOP_CASES = list(itertools.product(("gpt2", "llama"), ("full", "q,v", "all-linear", "o,down", "embed,lm_head"),
                                    (2,)))


@pytest.mark.parametrize("family, targets, batch", FLOP_CASES)
def test_training_flops_equal_flop_counter(family, targets, batch):
    from tests.reference.hf import build_cpu, count_flops
    from tests.reference.lora import lora_model
    _quiet()
    torch.set_num_threads(2)
    spec = dict(zip(("gpt2", "llama"), _small_models()))[family]
    seq = 64
    model = build_cpu(spec)
    if targets == "full":
        ours = training_step_flops(spec, batch, seq)
    else:
        model = lora_model(model, spec, 8, targets)
        ours = training_step_flops(spec, batch, seq, method="lora", lora_rank=8, lora_targets=targets)
    measured = count_flops(model, batch, seq, backward=True)
    assert ours["forward_flops"].value == pytest.approx(measured.forward, rel=0.005)
    assert ours["training_flops"].value == pytest.approx(measured.forward + measured.backward, rel=0.005)
    assert ours["backward_flops"].value == pytest.approx(measured.backward, rel=1e-9)   # exact, in fact


def test_lora_step_costs_about_four_p_t_on_a_real_preset():
    # Full depth on meta: Llama-2-7B, r = 16 all-linear, 1 × 512 tokens. The base's dX and forward are each
    # ~2·P·T; the full step's weight gradients (another ~2·P·T) are gone.
    from tests.reference.hf import build_meta, count_flops
    from tests.reference.lora import lora_model
    _quiet()
    spec = dataclasses.replace(load_model("llama-2-7b"), layers=4)
    measured = count_flops(lora_model(build_meta(spec), spec, 16, "all-linear"), 1, 512, backward=True)
    ours = training_step_flops(spec, 1, 512, method="lora", lora_rank=16)
    full = training_step_flops(spec, 1, 512)
    assert ours["training_flops"].value == pytest.approx(sum(measured), rel=1e-9)
    assert 0.6 < ours["training_flops"].value / full["training_flops"].value < 0.75


ACT_CASES = list(itertools.product(("gpt2", "llama"), ("q,v", "all-linear", "o,down"), ("fp32", "bf16"),
                                   (False, True), ("eager", "sdpa")))
_built: dict = {}


def measured_lora_activations(family: str, targets: str, dtype: str, ckpt: bool, attn: str, batch=4, seq=128) -> int:
    from tests.reference.hf import build_cpu, saved_activation_bytes
    from tests.reference.lora import lora_model
    _quiet()
    torch.set_num_threads(2)
    spec = dict(zip(("gpt2", "llama"), _small_models()))[family]
    model = lora_model(build_cpu(spec, attn_implementation=attn), spec, 8, targets)
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    return saved_activation_bytes(model, batch, seq, dt, checkpointing=ckpt)


def predicted_lora_activations(family, targets, dtype, ckpt, attn, batch=4, seq=128, model="eager") -> float:
    spec = dict(zip(("gpt2", "llama"), _small_models()))[family]
    return training_memory(spec, batch, seq, precision=dtype, activations=model, flash=attn == "sdpa",
                           recompute="full" if ckpt else "none", method="lora", lora_rank=8,
                           lora_targets=targets)["activations_bytes"].value


@pytest.mark.slow
@pytest.mark.parametrize("case", ACT_CASES, ids=["-".join(map(str, c)) for c in ACT_CASES])
def test_eager_lora_activations_within_10_percent(case):
    measured = measured_lora_activations(*case)
    ours = predicted_lora_activations(*case)
    assert ours / measured == pytest.approx(1.0, abs=0.10), (ours, measured)
    # In fact exact, but for the CPU's bf16 LayerNorm statistics (2 B where CUDA keeps 4 B) and the mask:
    assert ours / measured == pytest.approx(1.0, abs=0.002), (ours, measured)


QUICK = [("llama", "q,v", "bf16", False, "eager"), ("gpt2", "all-linear", "fp32", False, "sdpa"),
         ("llama", "o,down", "fp32", False, "eager"), ("llama", "all-linear", "bf16", True, "sdpa")]


@pytest.mark.parametrize("case", QUICK, ids=["-".join(map(str, c)) for c in QUICK])
def test_eager_lora_activations_quick(case):
    # Without checkpointing the count is exact but for the CPU's bf16 LayerNorm statistics and the all-ones mask.
    measured = measured_lora_activations(*case)
    assert predicted_lora_activations(*case) / measured == pytest.approx(1.0, abs=0.002)


def main() -> None:
    print("| model | targets | dtype | checkpointing | attention | measured bytes | eager/measured | megatron/measured |")
    print("|---|---|---|---|---|---|---|---|")
    for case in ACT_CASES:
        m = measured_lora_activations(*case)
        e = predicted_lora_activations(*case)
        g = predicted_lora_activations(*case, model="megatron")
        print("| " + " | ".join(map(str, case)) + f" | {m:,} | {e / m:.4f} | {g / m:.4f} |")


if __name__ == "__main__":
    main()
