"""Reading Hugging Face config.json files (offline): the fields of the published configs, as shipped on
the Hub for each checkpoint, give the published parameter counts exactly and the same spec as the preset."""

from __future__ import annotations

import json

import pytest

from llmcalc.core.params import total_params
from llmcalc.hfconfig import spec_from_hf_config
from llmcalc.presets import load_model

# The architecture fields of each checkpoint's config.json (other keys, e.g. rope scaling, omitted).
CONFIGS = {
    "gpt2": {"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024,
             "vocab_size": 50257, "activation_function": "gelu_new"},
    "llama-3.1-8b": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
                     "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
                     "vocab_size": 128256, "max_position_embeddings": 131072, "tie_word_embeddings": False,
                     "attention_bias": False, "mlp_bias": False, "hidden_act": "silu", "head_dim": 128},
    "mistral-7b": {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
                   "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
                   "vocab_size": 32000, "max_position_embeddings": 32768, "sliding_window": 4096,
                   "tie_word_embeddings": False},
    "mixtral-8x7b": {"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336,
                     "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
                     "vocab_size": 32000, "num_local_experts": 8, "num_experts_per_tok": 2,
                     "max_position_embeddings": 32768, "sliding_window": None, "tie_word_embeddings": False},
    "qwen2.5-7b": {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
                   "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
                   "vocab_size": 152064, "max_position_embeddings": 131072, "sliding_window": 131072,
                   "use_sliding_window": False, "tie_word_embeddings": False},
    "gemma-2-9b": {"model_type": "gemma2", "hidden_size": 3584, "intermediate_size": 14336,
                   "num_attention_heads": 16, "num_hidden_layers": 42, "num_key_value_heads": 8,
                   "head_dim": 256, "vocab_size": 256000, "max_position_embeddings": 8192,
                   "sliding_window": 4096, "hidden_activation": "gelu_pytorch_tanh"},
    "phi-3-mini": {"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192,
                   "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
                   "vocab_size": 32064, "max_position_embeddings": 4096, "sliding_window": 2047,
                   "tie_word_embeddings": False},
    "falcon-40b": {"model_type": "falcon", "hidden_size": 8192, "num_attention_heads": 128,
                   "num_hidden_layers": 60, "num_kv_heads": 8, "new_decoder_architecture": True,
                   "parallel_attn": True, "bias": False, "vocab_size": 65024, "alibi": False},
    "deepseek-v3": {"model_type": "deepseek_v3", "hidden_size": 7168, "intermediate_size": 18432,
                    "moe_intermediate_size": 2048, "num_attention_heads": 128, "num_key_value_heads": 128,
                    "num_hidden_layers": 61, "n_routed_experts": 256, "n_shared_experts": 1,
                    "num_experts_per_tok": 8, "first_k_dense_replace": 3, "q_lora_rank": 1536,
                    "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
                    "vocab_size": 129280, "max_position_embeddings": 163840, "tie_word_embeddings": False},
}

# Parameter counts of the transformers models built from those configs (sum of p.numel()).
PUBLISHED = {"gpt2": 124_439_808, "llama-3.1-8b": 8_030_261_248, "mistral-7b": 7_241_732_096,
             "mixtral-8x7b": 46_702_792_704, "qwen2.5-7b": 7_615_616_512, "gemma-2-9b": 9_241_705_984,
             "phi-3-mini": 3_821_079_552, "falcon-40b": 41_303_293_952, "deepseek-v3": 671_026_404_352}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_json_gives_published_params(name, tmp_path, cli):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIGS[name]))
    spec = spec_from_hf_config(CONFIGS[name], str(path))
    assert total_params(spec) == PUBLISHED[name]
    preset = load_model(name)
    for field in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "mlp", "tie_embeddings",
                  "qkv_bias", "sliding_window", "window_layers", "moe", "mla"):
        assert getattr(spec, field) == getattr(preset, field), field
    # and through the CLI, the same FLOPs as the preset
    a = cli("flops", "-m", str(path), "--seq", "2048", "--json").json()["results"]
    b = cli("flops", "-m", name, "--seq", "2048", "--json").json()["results"]
    assert a["forward_flops"] == b["forward_flops"]


def test_multimodal_wrapper_reads_text_config():
    cfg = {"model_type": "llava", "text_config": CONFIGS["llama-3.1-8b"]}
    assert total_params(spec_from_hf_config(cfg)) == PUBLISHED["llama-3.1-8b"]


@pytest.mark.parametrize("cfg, message", [
    ({"hidden_size": 10}, "no model_type"),
    ({"model_type": "t5"}, "not supported"),
    ({"model_type": "llama", "hidden_size": 100, "num_attention_heads": 3, "num_hidden_layers": 2,
      "vocab_size": 10, "intermediate_size": 10}, "does not divide"),
    ({"model_type": "llama", "hidden_size": True}, "whole number"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_configs(cfg, message):
    from llmcalc.errors import InputError
    with pytest.raises(InputError, match=message):
        spec_from_hf_config(cfg)
