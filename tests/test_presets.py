"""Every preset loads, reproduces its published parameter count exactly, and holds dense peaks."""

from __future__ import annotations

import pytest

from llmcalc.core.params import active_params, param_breakdown, total_params
from llmcalc.presets import load_gpu, load_model, preset_files

MODELS = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-175b", "llama-2-7b", "llama-2-13b", "llama-2-70b",
          "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "mistral-7b", "mixtral-8x7b", "qwen2.5-7b",
          "qwen2.5-72b", "gemma-2-9b", "falcon-40b", "phi-3-mini", "deepseek-v3",
          # INTERFACE.md version 2 (dense presets of supported architectures; tests/test_presets_hf.py checks them
          # against transformers)
          "llama-3.2-1b", "llama-3.2-3b", "llama-3.3-70b", "qwen3-0.6b", "qwen3-4b", "qwen3-8b", "qwen3-14b",
          "qwen3-32b", "mistral-small-24b", "mistral-nemo-12b", "mixtral-8x22b", "phi-4", "deepseek-r1"]
GPUS = ["v100-sxm2-32gb", "a100-40gb", "a100-80gb-sxm", "a100-80gb", "a100-80gb-pcie", "h100-sxm", "h100-pcie",
        "h100-nvl", "h200", "b200", "l4", "l40s", "rtx-4090", "rtx-3090", "mi250x", "mi300x", "tpu-v5e", "tpu-v5p",
        # INTERFACE.md version 2
        "t4", "a10g", "a10", "a40", "rtx-a6000", "l40", "rtx-6000-ada", "rtx-5090", "rtx-pro-6000", "h800", "h20",
        "gh200", "gb200", "mi325x", "mi355x", "gaudi3", "tpu-v4", "tpu-v6e", "apple-m2-ultra", "apple-m3-max",
        "apple-m4-max"]

# Totals as published (model cards / papers), independent of the presets' own published_params field.
PUBLISHED = {"llama-2-7b": 6_738_415_616, "llama-2-13b": 13_015_864_320, "llama-2-70b": 68_976_648_192,
             "llama-3.1-8b": 8_030_261_248, "llama-3.1-70b": 70_553_706_496, "llama-3.1-405b": 405_853_388_800,
             "mistral-7b": 7_241_732_096, "mixtral-8x7b": 46_702_792_704, "gpt2": 124_439_808,
             "gpt2-xl": 1_557_611_200}


@pytest.mark.parametrize("name", MODELS)
def test_model_presets(name):
    spec = load_model(name)
    assert spec.name == name and spec.source
    assert total_params(spec) == spec.published_params
    if name in PUBLISHED:
        assert total_params(spec) == PUBLISHED[name]
    parts = param_breakdown(spec)
    assert sum(v for k, v in parts.items() if k != "total") == parts["total"]


def test_moe_active_params():
    # Mixtral: 12.9B active of 46.7B (Jiang et al. 2024, "13B active parameters");
    # DeepSeek-V3: 37B activated of 671B (DeepSeek-AI 2024, abstract).
    assert active_params(load_model("mixtral-8x7b")) == pytest.approx(12.9e9, rel=0.01)
    assert active_params(load_model("deepseek-v3")) == pytest.approx(37e9, rel=0.02)


def test_untied_head_is_counted():
    # A trap of other calculators: Llama-2-7B is 6,738,415,616 parameters, not 6.61B without its LM head.
    spec = load_model("llama-2-7b")
    assert param_breakdown(spec)["lm_head"] == 32000 * 4096


@pytest.mark.parametrize("name", GPUS)
def test_gpu_presets(name):
    gpu = load_gpu(name)
    assert gpu.source and gpu.memory_bytes > 1e9 and gpu.hbm_bytes_per_s > 1e11
    rates = gpu.flops_per_s
    assert rates.get("bf16", 0) > 0 or rates.get("fp16", 0) > 0
    if rates.get("fp8") and rates.get("bf16"):
        assert rates["fp8"] <= 2.05 * rates["bf16"]


def test_dense_not_sparse_peaks():
    # Datasheets star the 2:4-sparsity figures; presets hold dense ones (NVIDIA H100 SXM: 989 TFLOPS bf16
    # dense, 1,979 with sparsity; A100: 312 dense, 624 with sparsity).
    assert load_gpu("h100-sxm").flops_per_s["bf16"] == pytest.approx(989.4e12, rel=0.01)
    assert load_gpu("a100-80gb").flops_per_s["bf16"] == pytest.approx(312e12)


def test_case_insensitive_and_aliases():
    assert load_model("LLaMA-3.1-8B").name == "llama-3.1-8b"
    assert load_gpu("A100-80GB").name == "a100-80gb-sxm"


def test_every_file_is_valid():
    for kind, loader in (("models", load_model), ("gpus", load_gpu)):
        for stem, path in preset_files(kind).items():
            assert loader(str(path)).name == stem
