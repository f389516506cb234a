"""The version-2 model presets against Hugging Face transformers, built on the meta device from their config.json.

Each entry below is the architecture part of the repository's ``config.json`` (the repo is named in the preset's
``source``), written here as data. transformers builds the model from it on the meta device (shapes only, no
memory) and counts ``sum(p.numel())``. The preset must give that count to the parameter, llmcalc's own
config.json reader must agree, and the preset's fields must be the config's values (so a typo in either is caught).
"""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmcalc.core.params import total_params  # noqa: E402
from llmcalc.hfconfig import spec_from_hf_config  # noqa: E402
from llmcalc.presets import load_model  # noqa: E402

pytestmark = pytest.mark.torch

LLAMA_3_2 = dict(vocab_size=128256, max_position_embeddings=131072, num_key_value_heads=8)
QWEN3 = dict(vocab_size=151936, max_position_embeddings=40960, num_key_value_heads=8, head_dim=128)

# preset -> (model_type, config.json fields that set the architecture)
HF_CONFIGS = {
    "llama-3.2-1b": ("llama", dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                   num_attention_heads=32, head_dim=64, tie_word_embeddings=True, **LLAMA_3_2)),
    "llama-3.2-3b": ("llama", dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
                                   num_attention_heads=24, head_dim=128, tie_word_embeddings=True, **LLAMA_3_2)),
    "llama-3.3-70b": ("llama", dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                                    num_attention_heads=64, head_dim=128, tie_word_embeddings=False, **LLAMA_3_2)),
    "qwen3-0.6b": ("qwen3", dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                                 num_attention_heads=16, tie_word_embeddings=True, **QWEN3)),
    "qwen3-4b": ("qwen3", dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                               num_attention_heads=32, tie_word_embeddings=True, **QWEN3)),
    "qwen3-8b": ("qwen3", dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                               num_attention_heads=32, tie_word_embeddings=False, **QWEN3)),
    "qwen3-14b": ("qwen3", dict(hidden_size=5120, intermediate_size=17408, num_hidden_layers=40,
                                num_attention_heads=40, tie_word_embeddings=False, **QWEN3)),
    "qwen3-32b": ("qwen3", dict(hidden_size=5120, intermediate_size=25600, num_hidden_layers=64,
                                num_attention_heads=64, tie_word_embeddings=False, **QWEN3)),
    "mistral-small-24b": ("mistral", dict(hidden_size=5120, intermediate_size=32768, num_hidden_layers=40,
                                          num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                                          vocab_size=131072, max_position_embeddings=32768, sliding_window=None,
                                          tie_word_embeddings=False)),
    "mistral-nemo-12b": ("mistral", dict(hidden_size=5120, intermediate_size=14336, num_hidden_layers=40,
                                         num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                                         vocab_size=131072, max_position_embeddings=1024000, sliding_window=None,
                                         tie_word_embeddings=False)),
    "mixtral-8x22b": ("mixtral", dict(hidden_size=6144, intermediate_size=16384, num_hidden_layers=56,
                                      num_attention_heads=48, num_key_value_heads=8, head_dim=128, vocab_size=32000,
                                      max_position_embeddings=65536, num_local_experts=8, num_experts_per_tok=2,
                                      sliding_window=None, tie_word_embeddings=False)),
    "phi-4": ("phi3", dict(hidden_size=5120, intermediate_size=17920, num_hidden_layers=40, num_attention_heads=40,
                           num_key_value_heads=10, vocab_size=100352, max_position_embeddings=16384,
                           sliding_window=None, tie_word_embeddings=False)),
    "deepseek-r1": ("deepseek_v3", dict(hidden_size=7168, intermediate_size=18432, moe_intermediate_size=2048,
                                        num_hidden_layers=61, num_attention_heads=128, num_key_value_heads=128,
                                        n_shared_experts=1, n_routed_experts=256, num_experts_per_tok=8,
                                        first_k_dense_replace=3, n_group=8, topk_group=4, q_lora_rank=1536,
                                        kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64,
                                        v_head_dim=128, vocab_size=129280, max_position_embeddings=163840,
                                        tie_word_embeddings=False)),
}


def hf_param_count(model_type: str, config: dict) -> int:
    from transformers import AutoConfig, AutoModelForCausalLM
    cfg = AutoConfig.for_model(model_type, **config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(HF_CONFIGS))
def test_preset_equals_hugging_face_count(name):
    model_type, config = HF_CONFIGS[name]
    measured = hf_param_count(model_type, config)
    spec = load_model(name)
    assert total_params(spec) == measured == spec.published_params
    # llmcalc's own reading of the same config.json gives the same model
    assert total_params(spec_from_hf_config({"model_type": model_type, **config})) == measured


@pytest.mark.parametrize("name", sorted(HF_CONFIGS))
def test_preset_fields_are_the_config_values(name):
    model_type, c = HF_CONFIGS[name]
    spec = load_model(name)
    heads = c["num_attention_heads"]
    assert (spec.layers, spec.hidden, spec.heads, spec.kv_heads, spec.vocab, spec.max_seq) == (
        c["num_hidden_layers"], c["hidden_size"], heads, c["num_key_value_heads"], c["vocab_size"],
        c["max_position_embeddings"])
    if not spec.mla:
        assert spec.head_dim == c.get("head_dim", c["hidden_size"] // heads)
    assert spec.tie_embeddings is c["tie_word_embeddings"]
    assert spec.sliding_window == 0 and not spec.qkv_bias
    assert spec.qk_norm_params == (2 * c["head_dim"] if model_type == "qwen3" else 0)
    if model_type == "mixtral":
        assert (spec.moe.experts, spec.moe.top_k, spec.moe.expert_ffn) == (
            c["num_local_experts"], c["num_experts_per_tok"], c["intermediate_size"])
    elif model_type == "deepseek_v3":
        assert spec.moe.experts == c["n_routed_experts"] and spec.mla.kv_lora_rank == c["kv_lora_rank"]
    else:
        assert spec.moe is None and spec.ffn == c["intermediate_size"]
    assert re.match(r"[\w.-]+/[\w.-]+ config\.json \(", spec.source), "source must name the HF repo's config.json"


def test_deepseek_r1_is_deepseek_v3_architecture():
    # DeepSeek-AI 2025 (arXiv:2501.12948): R1 is trained from DeepSeek-V3-Base; same config.json sizes.
    r1, v3 = load_model("deepseek-r1").to_dict(), load_model("deepseek-v3").to_dict()
    for key in ("name", "aliases", "source"):
        r1.pop(key), v3.pop(key)
    assert r1 == v3
