"""Every supported model_type, checked against transformers itself: one real config.json per family (the
architecture fields of a published checkpoint, as on the Hub) is read by llmcalc and built by transformers 5.23
on the meta device. The parameter count equals llmcalc's exactly; the KV cache after a prefill at two lengths
equals kv_bytes; the forward FLOPs equal FlopCounterMode's.

KV and FLOPs are measured on a shallow copy (the same config with fewer layers, the layer pattern kept), which
llmcalc reads as well, so both sides see the same model. Documented layout differences, pinned exactly:

* a sliding or chunked layer in HF (DynamicSlidingWindowLayer) keeps W - 1 tokens after a prefill of S >= W;
  llmcalc counts min(S, W), the rolling buffer of W slots a serving engine keeps (tests/test_kv_hf.py);
* Llama 4's experts in transformers run every token through every expert (Llama4TextExperts: bmm over all E,
  the router's scores zero the unchosen ones), so HF's FLOPs hold E routed experts per token, llmcalc's top-k.
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmcalc.core.flops import forward_breakdown  # noqa: E402
from llmcalc.core.kv import kv_bytes_per_token, kv_cache_bytes  # noqa: E402
from llmcalc.core.params import mlp_block_params, total_params  # noqa: E402
from llmcalc.hfconfig import SUPPORTED, spec_from_hf_config  # noqa: E402
from reference import hf  # noqa: E402

pytestmark = pytest.mark.torch

# The architecture fields of one published config.json per family (other keys, e.g. rope scaling, omitted).
CONFIGS = {
    "opt": {"model_type": "opt", "hidden_size": 768, "ffn_dim": 3072, "num_hidden_layers": 12,  # facebook/opt-125m
            "num_attention_heads": 12, "vocab_size": 50272, "max_position_embeddings": 2048,
            "word_embed_proj_dim": 768, "do_layer_norm_before": True, "activation_function": "relu"},
    "bloom": {"model_type": "bloom", "hidden_size": 1024, "n_layer": 24, "n_head": 16,  # bigscience/bloom-560m
              "vocab_size": 250880},
    "gptj": {"model_type": "gptj", "n_embd": 4096, "n_layer": 28, "n_head": 16, "n_positions": 2048,  # gpt-j-6b
             "rotary_dim": 64, "vocab_size": 50400, "tie_word_embeddings": False},
    "gpt_bigcode": {"model_type": "gpt_bigcode", "n_embd": 2048, "n_layer": 24, "n_head": 16,  # starcoderbase-1b
                    "n_positions": 8192, "n_inner": 8192, "vocab_size": 49152, "multi_query": True},
    "phi": {"model_type": "phi", "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 32,  # phi-2
            "num_attention_heads": 32, "vocab_size": 51200, "max_position_embeddings": 2048,
            "partial_rotary_factor": 0.4, "tie_word_embeddings": False},
    "mpt": {"model_type": "mpt", "d_model": 4096, "n_heads": 32, "n_layers": 32, "expansion_ratio": 4,  # mpt-7b
            "max_seq_len": 2048, "vocab_size": 50432, "no_bias": True},
    "olmo2": {"model_type": "olmo2", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 100352,  # OLMo-2-1124-7B
              "max_position_embeddings": 4096, "tie_word_embeddings": False},
    "granite": {"model_type": "granite", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 40,
                "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 49155,  # granite-3.0-2b-base
                "max_position_embeddings": 4096, "tie_word_embeddings": True, "attention_bias": False},
    "qwen2_moe": {"model_type": "qwen2_moe", "hidden_size": 2048, "intermediate_size": 5632,  # Qwen1.5-MoE-A2.7B
                  "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 16, "num_experts": 60,
                  "num_experts_per_tok": 4, "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
                  "vocab_size": 151936, "max_position_embeddings": 8192, "decoder_sparse_step": 1,
                  "tie_word_embeddings": False},
    "qwen3_moe": {"model_type": "qwen3_moe", "hidden_size": 2048, "intermediate_size": 6144,  # Qwen3-30B-A3B
                  "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
                  "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
                  "vocab_size": 151936, "max_position_embeddings": 40960, "decoder_sparse_step": 1,
                  "mlp_only_layers": [], "tie_word_embeddings": False},
    "olmoe": {"model_type": "olmoe", "hidden_size": 2048, "intermediate_size": 1024, "num_hidden_layers": 16,
              "num_attention_heads": 16, "num_key_value_heads": 16, "num_experts": 64,  # OLMoE-1B-7B-0924
              "num_experts_per_tok": 8, "vocab_size": 50304, "max_position_embeddings": 4096},
    "phimoe": {"model_type": "phimoe", "hidden_size": 4096, "intermediate_size": 6400,  # Phi-3.5-MoE-instruct
               "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
               "num_local_experts": 16, "num_experts_per_tok": 2, "vocab_size": 32064,
               "max_position_embeddings": 131072, "sliding_window": 131072, "attention_bias": True,
               "lm_head_bias": True, "tie_word_embeddings": False},
    "gemma3_text": {"model_type": "gemma3_text", "hidden_size": 1152, "intermediate_size": 6912,  # gemma-3-1b-pt
                    "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
                    "vocab_size": 262144, "max_position_embeddings": 32768, "sliding_window": 512,
                    "sliding_window_pattern": 6, "rope_local_base_freq": 10000.0, "query_pre_attn_scalar": 256},
    "gemma3": {"model_type": "gemma3", "mm_tokens_per_image": 256,  # google/gemma-3-4b-pt
               "text_config": {"model_type": "gemma3_text", "hidden_size": 2560, "intermediate_size": 10240,
                               "num_hidden_layers": 34, "num_attention_heads": 8, "num_key_value_heads": 4,
                               "head_dim": 256, "sliding_window": 1024, "vocab_size": 262208,
                               "rope_local_base_freq": 10000.0, "query_pre_attn_scalar": 256},
               "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "image_size": 896,
                                 "intermediate_size": 4304, "num_attention_heads": 16, "num_hidden_layers": 27,
                                 "patch_size": 14, "vision_use_head": False}},
    "llama4": {"model_type": "llama4",  # meta-llama/Llama-4-Scout-17B-16E
               "text_config": {"model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
                               "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
                               "num_key_value_heads": 8, "head_dim": 128, "num_local_experts": 16,
                               "num_experts_per_tok": 1, "interleave_moe_layer_step": 1, "vocab_size": 202048,
                               "max_position_embeddings": 10485760, "attention_chunk_size": 8192,
                               "use_qk_norm": True, "no_rope_layers": []},
               "vision_config": {"model_type": "llama4_vision_model", "hidden_size": 1408, "intermediate_size": 5632,
                                 "num_hidden_layers": 34, "num_attention_heads": 16, "image_size": 336,
                                 "patch_size": 14, "vision_output_dim": 4096, "projector_input_dim": 4096,
                                 "projector_output_dim": 4096, "pixel_shuffle_ratio": 0.5}},
    "gpt_oss": {"model_type": "gpt_oss", "hidden_size": 2880, "intermediate_size": 2880,  # openai/gpt-oss-20b
                "num_hidden_layers": 24, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64,
                "num_local_experts": 32, "num_experts_per_tok": 4, "vocab_size": 201088, "sliding_window": 128,
                "max_position_embeddings": 131072, "tie_word_embeddings": False,
                "layer_types": ["sliding_attention", "full_attention"] * 12,
                "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
                    "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}},
    # already supported families, one each
    "gpt2": {"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024,
             "vocab_size": 50257},
    "gpt_neox": {"model_type": "gpt_neox", "hidden_size": 2048, "intermediate_size": 8192,  # pythia-1b
                 "num_hidden_layers": 16, "num_attention_heads": 8, "vocab_size": 50304,
                 "max_position_embeddings": 2048, "use_parallel_residual": True, "tie_word_embeddings": False},
    "falcon": {"model_type": "falcon", "hidden_size": 4544, "num_attention_heads": 71, "num_hidden_layers": 32,
               "multi_query": True, "parallel_attn": True, "bias": False, "vocab_size": 65024},  # falcon-7b
    "llama": {"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
              "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
              "max_position_embeddings": 131072, "tie_word_embeddings": True},  # Llama-3.2-1B
    "mistral": {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
                "max_position_embeddings": 32768, "sliding_window": 4096},
    "mixtral": {"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000, "num_local_experts": 8,
                "num_experts_per_tok": 2, "max_position_embeddings": 32768},
    "qwen2": {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
              "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,  # Qwen2.5-0.5B
              "max_position_embeddings": 32768, "tie_word_embeddings": True, "use_sliding_window": False},
    "qwen2+window": {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                     "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
                     "use_sliding_window": True, "sliding_window": 64, "max_window_layers": 1},  # window from layer 1
    "qwen2_moe+window": {"model_type": "qwen2_moe", "hidden_size": 256, "intermediate_size": 512,
                         "num_hidden_layers": 24, "num_attention_heads": 4, "num_key_value_heads": 4,
                         "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 64,
                         "shared_expert_intermediate_size": 128, "vocab_size": 1000, "use_sliding_window": True,
                         "sliding_window": 64, "max_window_layers": 21, "mlp_only_layers": [1],
                         "decoder_sparse_step": 1},
    "qwen3": {"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
              "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
              "max_position_embeddings": 40960, "tie_word_embeddings": True},  # Qwen3-0.6B
    "gemma": {"model_type": "gemma", "hidden_size": 2048, "intermediate_size": 16384, "num_hidden_layers": 18,
              "num_attention_heads": 8, "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 256000,
              "max_position_embeddings": 8192},  # gemma-2b
    "gemma2": {"model_type": "gemma2", "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
               "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 256000,
               "max_position_embeddings": 8192, "sliding_window": 4096},  # gemma-2-2b
    "phi3": {"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32064,
             "max_position_embeddings": 4096, "sliding_window": 2047},
    "olmo": {"model_type": "olmo", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
             "num_attention_heads": 16, "vocab_size": 50304, "max_position_embeddings": 2048,
             "tie_word_embeddings": True},  # OLMo-1B-hf
    "cohere": {"model_type": "cohere", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
               "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 256000,
               "max_position_embeddings": 8192},  # aya-23-8B
    "starcoder2": {"model_type": "starcoder2", "hidden_size": 3072, "intermediate_size": 12288,
                   "num_hidden_layers": 30, "num_attention_heads": 24, "num_key_value_heads": 2,
                   "vocab_size": 49152, "max_position_embeddings": 16384, "sliding_window": 4096,
                   "use_bias": True},  # starcoder2-3b
    "deepseek_v3": {"model_type": "deepseek_v3", "hidden_size": 1024, "intermediate_size": 2048,  # a small V3
                    "moe_intermediate_size": 256, "num_attention_heads": 8, "num_key_value_heads": 8,
                    "num_hidden_layers": 4, "n_routed_experts": 16, "n_shared_experts": 1, "num_experts_per_tok": 2,
                    "first_k_dense_replace": 1, "q_lora_rank": 384, "kv_lora_rank": 128, "qk_nope_head_dim": 64,
                    "qk_rope_head_dim": 32, "v_head_dim": 64, "vocab_size": 32000, "n_group": 4, "topk_group": 2,
                    "max_position_embeddings": 4096},
    "deepseek_v2": {"model_type": "deepseek_v2", "hidden_size": 2048, "intermediate_size": 10944,  # V2-Lite
                    "moe_intermediate_size": 1408, "num_attention_heads": 16, "num_key_value_heads": 16,
                    "num_hidden_layers": 27, "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6,
                    "first_k_dense_replace": 1, "q_lora_rank": None, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
                    "qk_rope_head_dim": 64, "v_head_dim": 128, "vocab_size": 102400,
                    "max_position_embeddings": 163840, "topk_method": "greedy", "n_group": 1, "topk_group": 1},
    "llava": {"model_type": "llava", "vision_feature_layer": -2, "projector_hidden_act": "gelu",  # llava-1.5-7b-hf
              "text_config": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
                              "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
                              "vocab_size": 32064, "max_position_embeddings": 4096},
              "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024, "intermediate_size": 4096,
                                "num_hidden_layers": 24, "num_attention_heads": 16, "image_size": 336,
                                "patch_size": 14, "projection_dim": 768}},
    "mistral3": {"model_type": "mistral3", "spatial_merge_size": 2, "multimodal_projector_bias": False,
                 "tie_word_embeddings": False,
                 # mistralai/Mistral-Small-3.1-24B-Base-2503
                 "text_config": {"model_type": "mistral", "hidden_size": 5120, "intermediate_size": 32768,
                                 "num_hidden_layers": 40, "num_attention_heads": 32, "num_key_value_heads": 8,
                                 "head_dim": 128, "vocab_size": 131072, "max_position_embeddings": 131072,
                                 "sliding_window": None},
                 "vision_config": {"model_type": "pixtral", "hidden_size": 1024, "intermediate_size": 4096,
                                   "num_hidden_layers": 24, "num_attention_heads": 16, "head_dim": 64,
                                   "image_size": 1540, "patch_size": 14}},
}
# families llmcalc reads that transformers 5.23 does not ship (remote code), or wrappers built through another entry
NOT_IN_TRANSFORMERS = {"internlm2", "yi", "gemma3_text", "llama4_text"}
# shallow copies: enough layers to hold one whole layer pattern
LAYERS = {"qwen2+window": 3, "qwen2_moe+window": 3, "gemma3_text": 6, "gemma3": 6, "llama4": 4, "deepseek_v2": 2, "deepseek_v3": 2}
B = 2


def _text(cfg: dict) -> dict:
    """The language model's config.json (multimodal configs: text_config with the family's model_type)."""
    if "text_config" not in cfg:
        return cfg
    return {**cfg["text_config"], "vocab_size": cfg["text_config"].get("vocab_size", cfg.get("vocab_size"))}


def _shallow(cfg: dict, n: int) -> dict:
    """The config with n layers, the per-layer lists cut to match."""
    c = copy.deepcopy(_text(cfg))
    key = next(k for k in ("num_hidden_layers", "n_layer", "n_layers") if k in c)
    c[key] = n
    if isinstance(c.get("layer_types"), list):
        c["layer_types"] = c["layer_types"][:n]
    if c.get("model_type") == "llama4_text":
        c["no_rope_layers"] = [int((i + 1) % 4 != 0) for i in range(n)]
    return c


def test_every_supported_type_has_a_config():
    assert set(SUPPORTED) - set(CONFIGS) <= NOT_IN_TRANSFORMERS
    # wrappers are exercised through the multimodal configs, text models through the text-only ones
    assert "gemma3" in CONFIGS and "llama4" in CONFIGS


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_parameter_count_equals_transformers(family):
    cfg = CONFIGS[family]
    spec = spec_from_hf_config(cfg)
    model = hf.build_from_json(cfg)
    if "vision_config" in cfg:
        parts = hf.count_params_by_prefix(model)
        assert total_params(spec) == parts.pop("language_model") + parts.pop("lm_head", 0), family
        assert spec.vision_params == sum(parts.values()) > 0, (family, parts)
    else:
        assert total_params(spec) == hf.count_params(model), family


def _lengths(spec) -> list[int]:
    return [40] + ([spec.sliding_window + 57] if 0 < spec.sliding_window <= 10_000 else [])


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_kv_cache_equals_transformers(family):
    cfg = _shallow(CONFIGS[family], LAYERS.get(family, 2))
    spec = spec_from_hf_config(cfg)
    model = hf.build_from_json(cfg, dtype=torch.bfloat16)
    for seq in _lengths(spec):
        measured = hf.kv_cache_bytes(model, B, seq)
        # HF keeps W - 1 tokens in a sliding (or chunked) layer once S >= W; llmcalc the W-slot rolling buffer
        adjust = B * spec.window_layers * kv_bytes_per_token(spec) / spec.layers if (
            spec.window_layers and seq >= spec.sliding_window) else 0
        if family == "falcon" and spec.kv_heads not in (1, spec.heads):
            adjust = kv_cache_bytes(spec, B, seq) * (spec.heads / spec.kv_heads - 1)
        assert measured == kv_cache_bytes(spec, B, seq) - adjust, (family, seq)


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_forward_flops_equal_flop_counter(family):
    cfg = _shallow(CONFIGS[family], LAYERS.get(family, 2))
    spec = spec_from_hf_config(cfg)
    model = hf.build_from_json(cfg)
    S = 24
    measured = hf.count_flops(model, B, S).forward
    ours = forward_breakdown(spec, B, S)["forward_flops"].value
    if family == "llama4":   # every token through every expert in HF (module docstring)
        moe = spec.moe
        ours += 2 * B * S * spec.moe_layers * (moe.experts - moe.top_k) * mlp_block_params(spec, moe.expert_ffn)
    assert measured == ours, (family, measured - ours)


_TINY_TEXT = {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 1, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 64, "vocab_size": 1000}
_TINY = {  # wrapper -> (text model_type, extra text keys, a tiny vision_config)
    "llava": ("llama", {}, {"model_type": "clip_vision_model", "hidden_size": 64, "intermediate_size": 128,
                            "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28, "patch_size": 14}),
    "gemma3": ("gemma3_text", {}, {"model_type": "siglip_vision_model", "hidden_size": 64, "intermediate_size": 128,
                                   "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28,
                                   "patch_size": 14}),
    "llama4": ("llama4_text", {"num_local_experts": 2, "intermediate_size_mlp": 512},
               {"model_type": "llama4_vision_model", "hidden_size": 64, "intermediate_size": 128,
                "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28, "patch_size": 14,
                "vision_output_dim": 64, "projector_input_dim": 64, "projector_output_dim": 64}),
    "mistral3": ("mistral", {}, {"model_type": "pixtral", "hidden_size": 64, "intermediate_size": 128,
                                 "num_hidden_layers": 1, "num_attention_heads": 2, "head_dim": 32, "patch_size": 14}),
}


@pytest.mark.parametrize("wrapper", sorted(_TINY))
@pytest.mark.parametrize("outer", [None, False, True])
@pytest.mark.parametrize("inner", [None, False, True])
def test_wrapper_tie_and_vision_equal_transformers(wrapper, outer, inner):
    # whichever tie_word_embeddings a multimodal wrapper honours, llmcalc ties the head exactly when transformers
    # does, and counts the same language model and vision tower
    text_type, extra, vision = _TINY[wrapper]
    text = {**_TINY_TEXT, **extra, "model_type": text_type}
    if inner is not None:
        text["tie_word_embeddings"] = inner
    cfg = {"model_type": wrapper, "text_config": text, "vision_config": vision}
    if outer is not None:
        cfg["tie_word_embeddings"] = outer
    spec = spec_from_hf_config(cfg)
    model = hf.build_from_json(cfg)
    assert spec.tie_embeddings is not any("lm_head" in name for name, _ in model.named_parameters())
    assert total_params(spec) + spec.vision_params == hf.count_params(model)
