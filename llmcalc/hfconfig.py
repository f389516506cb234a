"""Reading a Hugging Face ``config.json`` into a ModelSpec, offline and without ``transformers``.

Field names and defaults follow each family's ``Configuration*`` class in transformers; where a config
omits a field, the family's default applies (e.g. LlamaConfig ties no embeddings, GPT2Config does).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from llmcalc.errors import InputError
from llmcalc.spec import MLASpec, ModelSpec, MoESpec, validate_model

# model_type -> (tie_word_embeddings default, qkv bias, norm, mlp kind)
_LLAMA_LIKE = {
    "llama": (False, None, "rmsnorm"),
    "mistral": (False, False, "rmsnorm"),
    "mixtral": (False, False, "rmsnorm"),
    "qwen2": (False, True, "rmsnorm"),
    "qwen2_moe": (False, True, "rmsnorm"),
    "qwen3": (False, None, "rmsnorm"),
    "qwen3_moe": (False, None, "rmsnorm"),
    "gemma": (True, None, "rmsnorm"),
    "gemma2": (True, None, "rmsnorm"),
    "gemma3_text": (True, None, "rmsnorm"),
    "phi3": (False, False, "rmsnorm"),
    "olmo": (False, None, "layernorm"),
    "granite": (False, None, "rmsnorm"),
    "cohere": (True, None, "layernorm"),
    "starcoder2": (True, None, "layernorm"),
    "deepseek_v3": (False, None, "rmsnorm"),
    "deepseek_v2": (False, None, "rmsnorm"),
    "internlm2": (False, None, "rmsnorm"),
    "yi": (False, None, "rmsnorm"),
}
SUPPORTED = ("gpt2", "falcon", "gpt_neox", *_LLAMA_LIKE)


def _get(cfg: Mapping[str, Any], where: str, *keys: str, default: Any = None, required: bool = False) -> Any:
    for key in keys:
        if key in cfg and cfg[key] is not None:
            return cfg[key]
    if required:
        raise InputError(f"{where}: config.json has no {keys[0]!r}")
    return default


def _int(cfg, where, *keys, default=None, required=True) -> int:
    value = _get(cfg, where, *keys, default=default, required=required and default is None)
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value) or value < 0 or value > 10**15):
        raise InputError(f"{where}: config.json field {keys[0]!r} must be a non-negative whole number, got {value!r}")
    return int(value)


def _bool(cfg, where, key, default: bool) -> bool:
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"{where}: config.json field {key!r} must be true or false, got {value!r}")
    return value


def spec_from_hf_config(cfg: Any, where: str = "config.json") -> ModelSpec:
    if not isinstance(cfg, Mapping):
        raise InputError(f"{where}: expected a JSON object")
    if isinstance(cfg.get("text_config"), Mapping):  # multimodal wrappers keep the LM in text_config
        cfg = {**cfg["text_config"], "model_type": cfg["text_config"].get("model_type", cfg.get("model_type"))}
    model_type = cfg.get("model_type")
    if not isinstance(model_type, str):
        raise InputError(f"{where}: config.json has no model_type")
    name = str(cfg.get("_name_or_path") or model_type).lower()
    try:
        if model_type == "gpt2":
            spec = _gpt2(cfg, where, name)
        elif model_type == "falcon":
            spec = _falcon(cfg, where, name)
        elif model_type == "gpt_neox":
            spec = _neox(cfg, where, name)
        elif model_type in _LLAMA_LIKE:
            spec = _llama_like(cfg, where, name, model_type)
        else:
            raise InputError(f"{where}: model_type {model_type!r} is not supported; supported: {', '.join(SUPPORTED)}")
    except ZeroDivisionError:
        raise InputError(f"{where}: config.json has a zero size field") from None
    return validate_model(spec, where)


def _gpt2(cfg, where, name) -> ModelSpec:
    H = _int(cfg, where, "n_embd", "hidden_size")
    heads = _int(cfg, where, "n_head", "num_attention_heads")
    _divides(H, heads, where)
    return ModelSpec(
        name=name, layers=_int(cfg, where, "n_layer", "num_hidden_layers"), hidden=H, heads=heads, kv_heads=heads,
        head_dim=H // heads, ffn=_int(cfg, where, "n_inner", default=4 * H), vocab=_int(cfg, where, "vocab_size"),
        mlp="plain", activation=str(cfg.get("activation_function", "gelu_new")), norm="layernorm", norm_bias=True,
        qkv_bias=True, o_bias=True, mlp_bias=True, tie_embeddings=_bool(cfg, where, "tie_word_embeddings", True),
        position="learned", max_seq=_int(cfg, where, "n_positions", "max_position_embeddings", default=1024),
        family="gpt2", source=where)


def _falcon(cfg, where, name) -> ModelSpec:
    H = _int(cfg, where, "hidden_size")
    heads = _int(cfg, where, "num_attention_heads", "n_head")
    _divides(H, heads, where)
    new_arch = _bool(cfg, where, "new_decoder_architecture", False)
    if new_arch:
        kv = _int(cfg, where, "num_kv_heads", "n_head_kv", default=heads)
    elif _bool(cfg, where, "multi_query", True):
        kv = 1
    else:
        kv = heads
    parallel = _bool(cfg, where, "parallel_attn", True)
    bias = _bool(cfg, where, "bias", False)
    norms = 2 if (new_arch or not parallel) else 1
    return ModelSpec(
        name=name, layers=_int(cfg, where, "num_hidden_layers", "n_layer"), hidden=H, heads=heads, kv_heads=kv,
        head_dim=H // heads, ffn=_int(cfg, where, "ffn_hidden_size", default=4 * H),
        vocab=_int(cfg, where, "vocab_size"), mlp="plain", activation="gelu", norm="layernorm", norm_bias=True,
        norms_per_layer=norms, qkv_bias=bias, o_bias=bias, mlp_bias=bias,
        tie_embeddings=_bool(cfg, where, "tie_word_embeddings", True),
        position="alibi" if _bool(cfg, where, "alibi", False) else "rope",
        max_seq=_int(cfg, where, "max_position_embeddings", default=2048), parallel_attn=parallel,
        family="falcon", source=where)


def _neox(cfg, where, name) -> ModelSpec:
    H = _int(cfg, where, "hidden_size")
    heads = _int(cfg, where, "num_attention_heads")
    _divides(H, heads, where)
    return ModelSpec(
        name=name, layers=_int(cfg, where, "num_hidden_layers"), hidden=H, heads=heads, kv_heads=heads,
        head_dim=H // heads, ffn=_int(cfg, where, "intermediate_size"), vocab=_int(cfg, where, "vocab_size"),
        mlp="plain", activation=str(cfg.get("hidden_act", "gelu")), norm="layernorm", norm_bias=True,
        qkv_bias=_bool(cfg, where, "attention_bias", True), o_bias=_bool(cfg, where, "attention_bias", True),
        mlp_bias=True, tie_embeddings=_bool(cfg, where, "tie_word_embeddings", False), position="rope",
        max_seq=_int(cfg, where, "max_position_embeddings", default=2048),
        parallel_attn=_bool(cfg, where, "use_parallel_residual", True), family="gpt_neox", source=where)


def _llama_like(cfg, where, name, model_type) -> ModelSpec:
    tie_default, qkv_bias_default, norm = _LLAMA_LIKE[model_type]
    H = _int(cfg, where, "hidden_size")
    heads = _int(cfg, where, "num_attention_heads")
    head_dim = _get(cfg, where, "head_dim")
    if head_dim is None:
        _divides(H, heads, where)
        head_dim = H // heads
    head_dim = _int({"head_dim": head_dim}, where, "head_dim")
    kv_heads = _int(cfg, where, "num_key_value_heads", default=heads)
    attention_bias = _bool(cfg, where, "attention_bias", False)
    qkv_bias = attention_bias if qkv_bias_default is None else qkv_bias_default
    o_bias = attention_bias if model_type not in ("qwen2", "qwen2_moe") else False
    layers = _int(cfg, where, "num_hidden_layers")
    window = cfg.get("sliding_window") or 0
    if model_type.startswith("qwen") and not cfg.get("use_sliding_window", False):
        window = 0
    window_layers = -1
    layer_types = cfg.get("layer_types")
    if window and isinstance(layer_types, list):
        window_layers = sum(1 for t in layer_types if t == "sliding_attention")
    elif window and model_type == "gemma2":
        window_layers = (layers + 1) // 2  # layers 0, 2, 4, ... use the window
    moe = mla = None
    ffn = _int(cfg, where, "intermediate_size", default=4 * H)
    if model_type == "mixtral":
        moe = MoESpec(experts=_int(cfg, where, "num_local_experts"), top_k=_int(cfg, where, "num_experts_per_tok"),
                      expert_ffn=ffn)
    elif model_type in ("deepseek_v3", "deepseek_v2"):
        moe = MoESpec(experts=_int(cfg, where, "n_routed_experts"), top_k=_int(cfg, where, "num_experts_per_tok"),
                      expert_ffn=_int(cfg, where, "moe_intermediate_size"),
                      shared_experts=_int(cfg, where, "n_shared_experts", default=0),
                      shared_expert_ffn=_int(cfg, where, "n_shared_experts", default=0)
                      * _int(cfg, where, "moe_intermediate_size"),
                      dense_layers=_int(cfg, where, "first_k_dense_replace", default=0))
        mla = MLASpec(kv_lora_rank=_int(cfg, where, "kv_lora_rank"), qk_rope_head_dim=_int(cfg, where, "qk_rope_head_dim"),
                      qk_nope_head_dim=_int(cfg, where, "qk_nope_head_dim"), v_head_dim=_int(cfg, where, "v_head_dim"),
                      q_lora_rank=_int(cfg, where, "q_lora_rank", default=0))
        head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    elif model_type in ("qwen2_moe", "qwen3_moe"):
        raise InputError(f"{where}: {model_type} (shared-expert gates) is not supported yet")
    return ModelSpec(
        name=name, layers=layers, hidden=H, heads=heads, kv_heads=kv_heads, head_dim=head_dim, ffn=ffn,
        vocab=_int(cfg, where, "vocab_size"), mlp="gated", activation=str(cfg.get("hidden_act", "silu")),
        norm=norm, norm_bias=norm == "layernorm" and model_type != "olmo",
        norms_per_layer=4 if model_type in ("gemma2", "gemma3_text") else 2,
        qk_norm_params=2 * head_dim if model_type in ("qwen3", "gemma3_text") else 0,
        qkv_bias=qkv_bias, o_bias=o_bias, mlp_bias=_bool(cfg, where, "mlp_bias", False),
        tie_embeddings=_bool(cfg, where, "tie_word_embeddings", tie_default), position="rope",
        max_seq=_int(cfg, where, "max_position_embeddings", default=4096),
        sliding_window=_int({"w": window}, where, "w"), sliding_window_layers=window_layers,
        moe=moe, mla=mla, family=model_type, source=where)


def _divides(hidden: int, heads: int, where: str) -> None:
    if heads == 0 or hidden % heads:
        raise InputError(f"{where}: num_attention_heads ({heads}) does not divide hidden_size ({hidden}) "
                         "and the config gives no head_dim")
