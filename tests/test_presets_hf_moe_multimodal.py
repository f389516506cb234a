"""The model presets added for issue 11 (Gemma 3, gpt-oss, Llama 4, Qwen3-MoE, OLMo 2): each preset equals what
llmcalc reads from its checkpoint's config.json (tests/data/preset_configs.json: the architecture fields as
published on the Hub), and transformers 5.23, building that config on the meta device, counts exactly the
preset's parameters (plus vision_params for the multimodal ones). The totals also equal the published figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmcalc.core.params import active_params, total_params
from llmcalc.hfconfig import spec_from_hf_config
from llmcalc.presets import load_model

CONFIGS = json.loads((Path(__file__).parent / "data" / "preset_configs.json").read_text())
# Totals as published, parameters of the whole checkpoint (vision tower included), independent of llmcalc:
# Gemma 3 model cards / HF "Model size"; gpt-oss model card arXiv:2508.10925 Table 1 (20.91B / 116.83B);
# Llama 4 model card (109B / 400B); Qwen3 arXiv:2505.09388 Table 2 (30.5B / 235B); OLMo 2 7B (7.30B).
PUBLISHED_B = {"gemma-3-1b": 1.0, "gemma-3-4b": 4.3, "gemma-3-12b": 12.2, "gemma-3-27b": 27.4,
               "gpt-oss-20b": 20.91, "gpt-oss-120b": 116.83, "llama-4-scout": 109, "llama-4-maverick": 400,
               "qwen3-30b-a3b": 30.5, "qwen3-235b-a22b": 235, "olmo-2-7b": 7.3}
# active parameters per token as published: the gpt-oss card leaves out the embedding table, Qwen3 counts it
ACTIVE_B = {"gpt-oss-20b": (3.61, False), "gpt-oss-120b": (5.13, False), "qwen3-30b-a3b": (3.3, True),
            "qwen3-235b-a22b": (22, True)}
FIELDS = ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "mlp", "norm", "norm_bias",
          "norms_per_layer", "qk_norm_params", "qkv_bias", "o_bias", "mlp_bias", "tie_embeddings", "max_seq",
          "sliding_window", "window_layers", "attention_sinks", "vision_params", "moe", "weight_format")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_preset_equals_its_config_json(name):
    preset, read = load_model(name), spec_from_hf_config(CONFIGS[name])
    for field in FIELDS:
        assert getattr(preset, field) == getattr(read, field), field
    whole = total_params(preset) + preset.vision_params
    assert abs(whole / 1e9 - PUBLISHED_B[name]) <= 0.006 * PUBLISHED_B[name], whole
    if name in ACTIVE_B:
        published, with_embedding = ACTIVE_B[name]
        active = active_params(preset) - (0 if with_embedding else preset.vocab * preset.hidden)
        assert abs(active / 1e9 - published) <= 0.02 * published, active


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_preset_equals_transformers_on_meta(name):
    pytest.importorskip("transformers")
    from reference import hf

    model = hf.build_from_json(CONFIGS[name])
    preset = load_model(name)
    assert hf.count_params(model) == total_params(preset) + preset.vision_params


@pytest.mark.parametrize("name, gib", [("gpt-oss-20b", 12.8), ("gpt-oss-120b", 60.8)])
def test_gpt_oss_in_its_own_format_matches_the_checkpoint(name, gib):
    # the preset carries the checkpoint's quantization_config (mxfp4 experts; attention, router, embedding and
    # head left unquantised): its weights in that format are the checkpoint sizes of the gpt-oss model card
    # (arXiv:2508.10925: 12.8 GiB and 60.8 GiB)
    from llmcalc.core import quant
    spec = load_model(name)
    assert spec.weight_format == "mxfp4"
    assert quant.weight_bytes(spec, spec.weight_format) / 2**30 == pytest.approx(gib, rel=0.005)
