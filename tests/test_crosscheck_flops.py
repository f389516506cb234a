"""llmcalc against the real thing: Hugging Face models built on the meta device, measured by PyTorch.

- parameter count: llmcalc's total equals sum(p.numel()) of the transformers model, exactly;
- FLOPs: forward_flops and backward_flops equal torch.utils.flop_counter.FlopCounterMode's counts of an
  eager forward (logits at every position) and of its backward, within 0.1% (they agree exactly).

FlopCounterMode scores matmul-like ops only, 2 FLOPs per multiply-add, and the full S×S score matrix of
eager attention (a causal mask halves nothing): the convention llmcalc counts by default. To keep the
suite fast, FLOPs are measured on a shallow copy of each preset (same widths, a few layers: every kind
of layer it has), and on two full-depth models.
"""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.torch

from reference.hf import build_meta, count_flops, count_params  # noqa: E402

from llmcalc.core.flops import training_step_flops  # noqa: E402
from llmcalc.presets import load_model  # noqa: E402

# Every preset whose architecture transformers implements (all of them; gpt3-175b is GPT-2's).
PRESETS = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-175b", "llama-2-7b", "llama-2-13b",
           "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "mistral-7b", "mixtral-8x7b",
           "qwen2.5-7b", "qwen2.5-72b", "gemma-2-9b", "falcon-40b", "phi-3-mini", "deepseek-v3",
           # version-2 presets whose family reference/hf.py builds (the qwen3 ones: tests/test_presets_hf.py)
           "llama-3.2-1b", "llama-3.2-3b", "llama-3.3-70b", "mistral-small-24b", "mistral-nemo-12b",
           "mixtral-8x22b", "phi-4", "deepseek-r1"]


def shallow(spec):
    """Same widths, fewer layers: DeepSeek keeps its leading dense layers plus two MoE layers; windowed
    models keep one windowed and one global layer."""
    layers = (spec.moe.dense_layers + 2) if spec.moe else 2
    changes = {"layers": layers}
    if spec.sliding_window and spec.sliding_window_layers >= 0:
        changes["sliding_window_layers"] = 1
    return dataclasses.replace(spec, **changes)


@pytest.mark.parametrize("name", PRESETS)
def test_parameter_count_equals_hf(name):
    spec = load_model(name)
    assert count_params(build_meta(spec)) == training_step_flops(spec, 1, 1)["params"].value


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("batch, seq", [(1, 64), (2, 256)])
def test_forward_and_backward_flops_equal_flop_counter(name, batch, seq):
    spec = shallow(load_model(name))
    measured = count_flops(build_meta(spec), batch, seq, backward=True)
    ours = training_step_flops(spec, batch, seq)
    assert ours["forward_flops"].value == pytest.approx(measured.forward, rel=1e-3)
    assert ours["backward_flops"].value == pytest.approx(measured.backward, rel=1e-3)


@pytest.mark.parametrize("name, seq", [("gpt2", 1024), ("llama-2-7b", 512)])
def test_full_depth_models(name, seq):
    spec = load_model(name)
    measured = count_flops(build_meta(spec), 1, seq, backward=True)
    ours = training_step_flops(spec, 1, seq)
    assert ours["forward_flops"].value == pytest.approx(measured.forward, rel=1e-3)
    assert ours["backward_flops"].value == pytest.approx(measured.backward, rel=1e-3)
    # the seed's GPT-2 example (B=1, S=1024): 291.6 GFLOPs forward, measured by PyTorch itself
    if name == "gpt2":
        assert measured.forward == pytest.approx(291.65e9, rel=1e-4)
