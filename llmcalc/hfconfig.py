"""Reading a Hugging Face ``config.json`` into a ModelSpec, offline and without ``transformers``.

Field names and defaults follow each family's configuration class in transformers 5.23; where a config omits a
field, the family's default applies (e.g. LlamaConfig ties no embeddings, GPT2Config does). What was read or
assumed is kept in ``spec.notes`` (one sentence each) for the command to print. docs/models.md lists the families.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from llmcalc.errors import InputError
from llmcalc.spec import MLASpec, ModelSpec, MoESpec, validate_model

# Llama-like families: model_type -> (tie_word_embeddings default, qkv bias (None: attention_bias), norm,
# max_position_embeddings default). Defaults from each transformers 5.23 configuration class.
_LLAMA_LIKE = {
    "llama": (False, None, "rmsnorm", 2048),
    "mistral": (False, False, "rmsnorm", 131072),
    "mixtral": (False, False, "rmsnorm", 131072),
    "qwen2": (False, True, "rmsnorm", 32768),
    "qwen2_moe": (False, True, "rmsnorm", 32768),
    "qwen3": (False, None, "rmsnorm", 32768),
    "qwen3_moe": (False, None, "rmsnorm", 32768),
    "gemma": (True, None, "rmsnorm", 8192),
    "gemma2": (True, None, "rmsnorm", 8192),
    "gemma3_text": (True, None, "rmsnorm", 131072),
    "phi3": (False, False, "rmsnorm", 4096),
    "phimoe": (False, None, "layernorm", 131072),
    "olmo": (False, None, "layernorm", 2048),
    "olmo2": (False, None, "rmsnorm", 2048),
    "olmoe": (False, None, "rmsnorm", 4096),
    "granite": (False, None, "rmsnorm", 2048),
    "cohere": (True, None, "layernorm", 8192),
    "starcoder2": (True, None, "layernorm", 4096),
    "deepseek_v3": (False, None, "rmsnorm", 4096),
    "deepseek_v2": (False, None, "rmsnorm", 2048),
    "internlm2": (False, None, "rmsnorm", 2048),
    "yi": (False, None, "rmsnorm", 4096),
    "llama4_text": (False, None, "rmsnorm", 131072),
    "gpt_oss": (False, None, "rmsnorm", 131072),
}
# Defaults of the text configuration classes behind the multimodal wrappers (transformers 5.23), for the keys a
# nested text_config may leave out (max_position_embeddings is handled apart: the outer config's comes first)
_TEXT_DEFAULTS = {
    "gemma3_text": {"intermediate_size": 9216, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                    "vocab_size": 262208},
    "llama4_text": {"intermediate_size": 8192, "intermediate_size_mlp": 16384, "num_attention_heads": 40,
                    "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 202048},
    "llama": {"intermediate_size": 11008, "num_attention_heads": 32, "vocab_size": 32000},
    "mistral": {"intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000},
}
_OTHERS = ("gpt2", "falcon", "gpt_neox", "opt", "bloom", "gptj", "gpt_bigcode", "phi", "mpt")
# multimodal wrappers: outer model_type -> the text model's model_type when text_config does not say
_WRAPPERS = {"gemma3": "gemma3_text", "llama4": "llama4_text", "llava": "llama", "mistral3": "mistral"}
# whose tie_word_embeddings ties a wrapper's LM head in transformers 5.23, and the wrapper's class default:
# the outer config's (text_config's ignored), text_config's (the outer one ignored), or either being true
_WRAPPER_TIE = {"gemma3": ("outer", True), "mistral3": ("outer", True), "llama4": ("text", None),
                "llava": ("either", False)}
SUPPORTED = tuple(sorted((*_OTHERS, *_LLAMA_LIKE, *_WRAPPERS)))
_NOT_TRANSFORMERS = {
    "mamba": "a state-space model (Mamba): no attention and no KV cache",
    "mamba2": "a state-space model (Mamba-2): no attention and no KV cache",
    "falcon_mamba": "a state-space model (Falcon Mamba): no attention and no KV cache",
    "rwkv": "a recurrent model (RWKV): no attention and no KV cache",
    "xlstm": "a recurrent model (xLSTM): no attention and no KV cache",
}
# hybrids: some layers are state-space, recurrent or linear-attention blocks with a fixed-size state, which
# llmcalc's per-layer KV and FLOP formulas would misstate
_HYBRIDS = ("jamba", "zamba", "zamba2", "bamba", "falcon_h1", "nemotron_h", "granitemoehybrid", "qwen3_next",
            "lfm2", "lfm2_moe", "recurrent_gemma", "kimi_linear", "olmo_hybrid", "minimax")
_NOT_TRANSFORMERS.update({t: "a hybrid whose state-space, recurrent or linear-attention layers keep no KV cache"
                          for t in _HYBRIDS})
# encoders and encoder-decoders have the standard keys too, but no causal decoding: never read them as Llama
_NOT_DECODERS = ("bert", "roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2", "xlm-roberta",
                 "modernbert", "t5", "mt5", "umt5", "bart", "mbart", "pegasus", "marian", "whisper", "vit", "clip",
                 "siglip", "siglip_vision_model", "clip_vision_model")
_STANDARD_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")


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


def _int_list(cfg, where, key) -> list[int] | None:
    value = cfg.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InputError(f"{where}: config.json field {key!r} must be a list of whole numbers, got {value!r}")
    return value


def spec_from_hf_config(cfg: Any, where: str = "config.json", name: str | None = None) -> ModelSpec:
    """A ModelSpec from a parsed config.json (``name``: what the user typed, e.g. a Hub id)."""
    if not isinstance(cfg, Mapping):
        raise InputError(f"{where}: expected a JSON object")
    notes: list[str] = []
    outer_type = cfg.get("model_type")
    vision = 0
    quant = cfg.get("quantization_config")
    if "text_config" in cfg:
        cfg, vision = _text_of_multimodal(cfg, where, notes)
        quant = quant if quant is not None else cfg.get("quantization_config")
    elif cfg.get("vision_config") is not None:
        notes.append("the config has a vision_config beside the language model's keys; that vision tower is not "
                     "counted (the weights reported are the language model's only)")
    model_type = cfg.get("model_type")
    if not isinstance(model_type, str):
        raise InputError(f"{where}: config.json has no model_type")
    name = (name or str(cfg.get("_name_or_path") or outer_type or model_type)).lower()
    if model_type in _NOT_TRANSFORMERS:
        raise InputError(f"{where}: model_type {model_type!r} is {_NOT_TRANSFORMERS[model_type]}, so the transformer "
                         "formulas of llmcalc do not apply")
    if model_type in _NOT_DECODERS or cfg.get("is_encoder_decoder") is True:
        raise InputError(f"{where}: model_type {model_type!r} is not supported: an encoder or encoder-decoder "
                         f"model, and llmcalc computes decoder-only language models (supported: {', '.join(SUPPORTED)})")
    try:
        spec = _dispatch(cfg, where, name, model_type, notes)
    except ZeroDivisionError:
        raise InputError(f"{where}: config.json has a zero size field") from None
    spec = _with(spec, vision_params=vision)
    if quant is not None:
        spec = _with(spec, **_quantization(quant, where, notes))
    return validate_model(_with(spec, notes=tuple(notes)), where)


def _with(spec: ModelSpec, **changes) -> ModelSpec:
    import dataclasses
    return dataclasses.replace(spec, **changes)


def _dispatch(cfg, where, name, model_type, notes) -> ModelSpec:
    builders = {"gpt2": _gpt2, "falcon": _falcon, "gpt_neox": _neox, "opt": _opt, "bloom": _bloom, "gptj": _gptj,
                "gpt_bigcode": _bigcode, "phi": _phi, "mpt": _mpt}
    if model_type in builders:
        return builders[model_type](cfg, where, name, notes)
    if model_type in _LLAMA_LIKE:
        return _llama_like(cfg, where, name, model_type, notes)
    if all(key in cfg for key in _STANDARD_KEYS):
        notes.append(f"model_type {model_type!r} is not one llmcalc knows; read as Llama-like (gated SiLU MLP, "
                     "RoPE, RMSNorm, no biases unless attention_bias/mlp_bias say so, untied head unless "
                     "tie_word_embeddings says so)")
        return _llama_like(cfg, where, name, "llama", notes, family=model_type)
    raise InputError(f"{where}: model_type {model_type!r} is not supported and its config lacks the standard keys "
                     f"({', '.join(_STANDARD_KEYS)}); supported: {', '.join(SUPPORTED)}")


# ----------------------------------------------------------------------------------------------
# Multimodal wrappers: the text model is computed, the vision tower is counted apart


def _text_of_multimodal(cfg, where, notes) -> tuple[dict, int]:
    outer_type = cfg.get("model_type")
    text = cfg["text_config"]
    if not isinstance(text, Mapping):
        raise InputError(f"{where}: config.json field 'text_config' must be an object")
    text = dict(text)
    text_type = text.get("model_type") or _WRAPPERS.get(outer_type)
    if not text_type:
        raise InputError(f"{where}: text_config has no model_type and {outer_type!r} is not a known wrapper")
    text["model_type"] = text_type
    if text.get("vocab_size") is None and cfg.get("vocab_size") is not None:
        text["vocab_size"] = cfg["vocab_size"]
    # as from_pretrained does, keys a text_config leaves out take its configuration class's defaults (Gemma 3 4B's
    # text_config gives only hidden_size, intermediate_size and num_hidden_layers); the two sizes that say which
    # model it is must be there
    defaults = {k: v for k, v in _TEXT_DEFAULTS.get(text_type, {}).items() if text.get(k) is None}
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
               if text.get(k) is None and (k in ("hidden_size", "num_hidden_layers") or k not in defaults)]
    if missing:
        raise InputError(f"{where}: text_config lacks {', '.join(missing)}; llmcalc needs the language model's "
                         "sizes (use the full config.json of the checkpoint)")
    if defaults:
        text.update(defaults)
        notes.append(f"text_config omits {', '.join(defaults)}; took the {text_type} configuration class defaults "
                     f"({', '.join(f'{v:,}' for v in defaults.values())}), as transformers does")
    if text.get("max_position_embeddings") is None:
        if cfg.get("max_position_embeddings") is not None:
            text["max_position_embeddings"] = cfg["max_position_embeddings"]
            notes.append("text_config has no max_position_embeddings; took the outer config's "
                         f"{cfg['max_position_embeddings']:,}")
        else:
            default = _LLAMA_LIKE.get(text_type, (None, None, None, None))[3]
            if default:
                notes.append(f"text_config has no max_position_embeddings; took the {text_type} configuration "
                             f"class default, {default:,}")
                text["max_position_embeddings"] = default
    # which tie_word_embeddings ties the LM head, as measured on transformers 5.23 (tests/test_hfconfig_inputs.py)
    rule, default = _WRAPPER_TIE.get(outer_type, ("text", None))
    outer_tie = _bool(cfg, where, "tie_word_embeddings", default) if default is not None else None
    text_tie = text.get("tie_word_embeddings")
    if rule == "outer":
        tie = outer_tie
        if text_tie is not None and text_tie != tie:
            notes.append(f"the {outer_type} config's tie_word_embeddings ({str(tie).lower()}) decides the LM head, "
                         "not text_config's, as in transformers")
        text["tie_word_embeddings"] = tie
    elif rule == "either":
        text["tie_word_embeddings"] = outer_tie or _bool(text, where, "tie_word_embeddings", False)
    vision = _vision_params(cfg, text, where, notes)
    return text, vision


def _vision_params(cfg, text, where, notes) -> int:
    from llmcalc.core import vision as V

    vc = cfg.get("vision_config")
    if vc is None:
        return 0
    if not isinstance(vc, Mapping):
        raise InputError(f"{where}: config.json field 'vision_config' must be an object")
    outer = cfg.get("model_type")
    vtype = vc.get("model_type") or {"gemma3": "siglip_vision_model", "llama4": "llama4_vision_model",
                                     "llava": "clip_vision_model", "mistral3": "pixtral"}.get(outer, "")
    w = f"{where} vision_config"
    # vision_config defaults: SiglipVisionConfig / Llama4VisionConfig / CLIPVisionConfig in transformers 5.23
    if vtype == "siglip_vision_model":
        D, F = _int(vc, w, "hidden_size", default=768), _int(vc, w, "intermediate_size", default=3072)
        n = V.siglip_params(D, F, _int(vc, w, "num_hidden_layers", default=12), _int(vc, w, "patch_size", default=16),
                            _int(vc, w, "image_size", default=224), _int(vc, w, "num_channels", default=3),
                            head=_bool(vc, w, "vision_use_head", True))
        proj = D * text["hidden_size"] + D if outer == "gemma3" else None   # mm_input_projection + soft-emb norm
    elif vtype == "llama4_vision_model":
        D, F = _int(vc, w, "hidden_size", default=768), _int(vc, w, "intermediate_size", default=5632)
        n = V.llama4_vision_params(D, F, _int(vc, w, "num_hidden_layers", default=34),
                                   _int(vc, w, "patch_size", default=14), _int(vc, w, "image_size", default=448),
                                   _int(vc, w, "num_channels", default=3),
                                   _int(vc, w, "projector_input_dim", default=4096),
                                   _int(vc, w, "projector_output_dim", default=4096))
        proj = _int(vc, w, "vision_output_dim", default=7680) * text["hidden_size"]   # linear_1, no bias
    elif vtype == "clip_vision_model":
        D, F = _int(vc, w, "hidden_size", default=768), _int(vc, w, "intermediate_size", default=3072)
        n = V.clip_params(D, F, _int(vc, w, "num_hidden_layers", default=12), _int(vc, w, "patch_size", default=32),
                          _int(vc, w, "image_size", default=224), _int(vc, w, "num_channels", default=3))
        T = text["hidden_size"]
        bias = _bool(cfg, where, "multimodal_projector_bias", True)
        layers = cfg.get("vision_feature_layer", -2)
        k = len(layers) if isinstance(layers, list) else 1
        proj = (k * D * T + T * T + (2 * T if bias else 0)) if outer == "llava" else None
    elif vtype == "pixtral":
        D, F = _int(vc, w, "hidden_size", default=1024), _int(vc, w, "intermediate_size", default=4096)
        n = V.pixtral_params(D, F, _int(vc, w, "num_hidden_layers", default=24), _int(vc, w, "patch_size", default=16),
                             _int(vc, w, "num_channels", default=3))
        T, s = text["hidden_size"], _int(cfg, where, "spatial_merge_size", default=2)
        bias = _bool(cfg, where, "multimodal_projector_bias", False)
        # Mistral 3 projector: RMSNorm D, patch merger D·s² -> D, then D -> T -> T
        proj = (D + D * s * s * D + D * T + T * T + (2 * T if bias else 0)) if outer == "mistral3" else None
    else:
        notes.append(f"vision tower {vtype or '(no model_type)'!r} is not counted: llmcalc knows siglip, clip, "
                     "pixtral and llama4 vision towers; the weights reported are the language model's only")
        return 0
    if proj is None:
        notes.append(f"the {outer} projector between vision tower and language model is not counted")
        proj = 0
    notes.append(f"multimodal: the language model is computed; the {vtype} vision tower and projector "
                 f"({n + proj:,} parameters) are reported apart as vision_params and counted in weight memory")
    return n + proj


# ----------------------------------------------------------------------------------------------
# quantization_config -> the model's default weight format


_QUANT_METHODS = ("gptq", "awq", "bitsandbytes", "fp8", "fbgemm_fp8", "compressed-tensors", "mxfp4")


def _quantization(q, where, notes) -> dict:
    w = f"{where} quantization_config"
    if not isinstance(q, Mapping):
        raise InputError(f"{w}: expected an object, got {type(q).__name__}")
    method = q.get("quant_method")
    if not isinstance(method, str):
        raise InputError(f"{w}: has no quant_method; known: {', '.join(_QUANT_METHODS)}")
    method = method.lower()
    skip = q.get("modules_to_not_convert") or q.get("llm_int8_skip_modules") or q.get("ignore") or []
    if not isinstance(skip, list) or not all(isinstance(s, str) for s in skip):
        raise InputError(f"{w}: the list of modules left unquantised must be a list of names, got {skip!r}")
    if method == "gptq":
        bits, group = _int(q, w, "bits"), _group(q, w, "group_size", 128)
        fmt = {4: "gptq-int4", 8: "int8"}.get(bits, "")
        what = f"GPTQ {bits}-bit, group {group or 'per channel'}"
    elif method == "awq":
        bits, group = _int(q, w, "bits", "w_bit"), _group(q, w, "group_size", 128, "q_group_size")
        fmt = "awq-int4" if bits == 4 else ""
        what = f"AWQ {bits}-bit, group {group}"
    elif method == "bitsandbytes":
        four, eight = _bool(q, w, "load_in_4bit", False), _bool(q, w, "load_in_8bit", False)
        if four == eight:
            raise InputError(f"{w}: bitsandbytes needs exactly one of load_in_4bit and load_in_8bit set to true")
        if four:
            kind = q.get("bnb_4bit_quant_type", "fp4")
            if kind not in ("nf4", "fp4"):
                raise InputError(f"{w}: bnb_4bit_quant_type must be nf4 or fp4, got {kind!r}")
            double = _bool(q, w, "bnb_4bit_use_double_quant", False)
            bits, group, fmt = 4, 64, "nf4"
            what = (f"bitsandbytes 4-bit {kind}, blocks of 64, " + ("double quantisation" if double else
                    "no double quantisation (the nf4 format assumes it: its fp32 absmax costs 0.44 more bits/weight)"))
            if kind == "fp4":
                what += "; fp4 is stored as nf4 is (4 bits and one absmax per 64)"
        else:
            bits, group, fmt, what = 8, 0, "int8", "bitsandbytes LLM.int8(), one scale per row"
    elif method in ("fp8", "fbgemm_fp8"):
        block = q.get("weight_block_size")
        group = math.prod(block) if isinstance(block, list) and block and all(
            isinstance(b, int) and b > 0 for b in block) else 0
        bits, fmt = 8, "fp8"
        what = f"fp8 ({q.get('fmt', 'e4m3')})" + (f", one scale per {block[0]}x{block[1]} block" if group else "")
    elif method == "mxfp4":
        bits, group, fmt, what = 4, 32, "mxfp4", "MXFP4 (OCP MX: 4-bit e2m1, one e8m0 scale per 32)"
    elif method == "compressed-tensors":
        bits, group, fmt, what = _compressed_tensors(q, w)
    else:
        raise InputError(f"{w}: unknown quant_method {method!r}; known: {', '.join(_QUANT_METHODS)} "
                         "(or give --weight-dtype)")
    if not fmt:
        notes.append(f"quantization_config: {what} has no named format in llmcalc; give --weight-dtype")
    else:
        kept = f"; left unquantised: {', '.join(skip)}" if skip else ""
        notes.append(f"quantization_config: {what} -> weight format {fmt}{kept} (--weight-dtype overrides)")
    return dict(weight_format=fmt, weight_bits=bits, weight_group_size=group, unquantised_modules=tuple(skip))


def _group(q, w, key, default, *more) -> int:
    value = _get(q, w, key, *more, default=default)
    if value == -1:          # GPTQ: -1 means one scale per output channel
        return 0
    return _int({key: value}, w, key)


def _compressed_tensors(q, w) -> tuple[int, int, str, str]:
    groups = q.get("config_groups")
    if not isinstance(groups, Mapping) or not groups:
        raise InputError(f"{w}: compressed-tensors needs config_groups with a 'weights' scheme")
    scheme = next(iter(groups.values()))
    weights = scheme.get("weights") if isinstance(scheme, Mapping) else None
    if not isinstance(weights, Mapping):
        raise InputError(f"{w}: the first config_groups entry has no 'weights' scheme")
    bits, kind = _int(weights, w, "num_bits"), weights.get("type", "int")
    strategy = weights.get("strategy", "tensor")
    group = _int(weights, w, "group_size", default=0) if strategy == "group" else 0
    if kind == "float" and bits == 8:
        fmt = "fp8"
    elif kind == "float" and bits == 4 and group == 16:
        fmt = "nvfp4"
    elif kind == "int" and bits in (4, 8):
        fmt = f"int{bits}"
    elif kind not in ("int", "float"):
        raise InputError(f"{w}: weights type must be int or float, got {kind!r}")
    else:
        fmt = ""
    return bits, group, fmt, f"compressed-tensors {kind} {bits}-bit, {strategy}" + (f" {group}" if group else "")


# ----------------------------------------------------------------------------------------------
# Families


def _gpt2(cfg, where, name, notes) -> ModelSpec:
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


def _bigcode(cfg, where, name, notes) -> ModelSpec:
    """GPTBigCode (SantaCoder, StarCoder): GPT-2 with multi-query attention (one K/V head) when multi_query."""
    spec = _gpt2(cfg, where, name, notes)
    mq = _bool(cfg, where, "multi_query", True)
    return _with(spec, kv_heads=1 if mq else spec.heads, family="gpt_bigcode",
                 activation=str(cfg.get("activation_function", "gelu_pytorch_tanh")))


def _falcon(cfg, where, name, notes) -> ModelSpec:
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


def _neox(cfg, where, name, notes) -> ModelSpec:
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


def _opt(cfg, where, name, notes) -> ModelSpec:
    """OPT (Zhang et al. 2022): learned positions with 2 extra rows (the table is max_position_embeddings + 2),
    ReLU MLP, LayerNorm with bias, biases everywhere (enable_bias), embedding tied to the head."""
    H = _int(cfg, where, "hidden_size")
    heads = _int(cfg, where, "num_attention_heads")
    _divides(H, heads, where)
    if _int(cfg, where, "word_embed_proj_dim", default=H) != H or not _bool(cfg, where, "do_layer_norm_before", True):
        raise InputError(f"{where}: OPT with word_embed_proj_dim != hidden_size or post-LayerNorm (OPT-350m's "
                         "project_in/project_out) is not modelled; describe it with a preset YAML")
    if not _bool(cfg, where, "layer_norm_elementwise_affine", True):
        raise InputError(f"{where}: OPT without LayerNorm weights (layer_norm_elementwise_affine false) is not modelled")
    bias = _bool(cfg, where, "enable_bias", True)
    return ModelSpec(
        name=name, layers=_int(cfg, where, "num_hidden_layers"), hidden=H, heads=heads, kv_heads=heads,
        head_dim=H // heads, ffn=_int(cfg, where, "ffn_dim", default=3072), vocab=_int(cfg, where, "vocab_size"),
        mlp="plain", activation=str(cfg.get("activation_function", "relu")), norm="layernorm", norm_bias=True,
        qkv_bias=bias, o_bias=bias, mlp_bias=bias, tie_embeddings=_bool(cfg, where, "tie_word_embeddings", True),
        position="learned", position_offset=2, max_seq=_int(cfg, where, "max_position_embeddings", default=2048),
        family="opt", source=where)


def _bloom(cfg, where, name, notes) -> ModelSpec:
    """BLOOM (BigScience 2022): ALiBi (no position table), a LayerNorm after the embedding, 4·H GELU MLP,
    biases everywhere, tied head."""
    H = _int(cfg, where, "hidden_size", "n_embed")
    heads = _int(cfg, where, "n_head", "num_attention_heads")
    _divides(H, heads, where)
    seq = _get(cfg, where, "seq_length", "n_positions", "max_position_embeddings")
    if seq is None:
        notes.append("BLOOM uses ALiBi and its config states no context length; max_seq taken as 2,048 "
                     "(the training length)")
    return ModelSpec(
        name=name, layers=_int(cfg, where, "n_layer", "num_hidden_layers"), hidden=H, heads=heads, kv_heads=heads,
        head_dim=H // heads, ffn=4 * H, vocab=_int(cfg, where, "vocab_size"), mlp="plain", activation="gelu",
        norm="layernorm", norm_bias=True, qkv_bias=True, o_bias=True, mlp_bias=True, embedding_norm=True,
        tie_embeddings=_bool(cfg, where, "tie_word_embeddings", True), position="alibi",
        max_seq=_int({"seq_length": seq if seq is not None else 2048}, where, "seq_length"),
        family="bloom", source=where)


def _gptj(cfg, where, name, notes) -> ModelSpec:
    """GPT-J (Wang & Komatsuzaki 2021): GPT-2's sizes, but attention and MLP in parallel off one LayerNorm,
    bias-free Q/K/V/O, biased MLP, untied head with a bias, rotary positions (no position table)."""
    spec = _gpt2(cfg, where, name, notes)
    return _with(spec, norms_per_layer=1, qkv_bias=False, o_bias=False, lm_head_bias=True, parallel_attn=True,
                 tie_embeddings=_bool(cfg, where, "tie_word_embeddings", False), position="rope",
                 max_seq=_int(cfg, where, "n_positions", default=2048), family="gptj")


def _phi(cfg, where, name, notes) -> ModelSpec:
    """Phi-1/1.5/2: parallel attention and MLP off one LayerNorm, biases everywhere, an LM head with a bias,
    partial rotary (changes no count), optional per-head LayerNorms on Q and K (qk_layernorm)."""
    H = _int(cfg, where, "hidden_size")
    heads = _int(cfg, where, "num_attention_heads")
    _divides(H, heads, where)
    d = H // heads
    return ModelSpec(
        name=name, layers=_int(cfg, where, "num_hidden_layers"), hidden=H, heads=heads,
        kv_heads=_int(cfg, where, "num_key_value_heads", default=heads), head_dim=d,
        ffn=_int(cfg, where, "intermediate_size", default=8192), vocab=_int(cfg, where, "vocab_size"), mlp="plain",
        activation=str(cfg.get("hidden_act", "gelu_new")), norm="layernorm", norm_bias=True, norms_per_layer=1,
        qk_norm_params=4 * d if _bool(cfg, where, "qk_layernorm", False) else 0,
        qkv_bias=True, o_bias=True, mlp_bias=True, lm_head_bias=True, parallel_attn=True,
        tie_embeddings=_bool(cfg, where, "tie_word_embeddings", False), position="rope",
        max_seq=_int(cfg, where, "max_position_embeddings", default=2048), family="phi", source=where)


def _mpt(cfg, where, name, notes) -> ModelSpec:
    """MPT (MosaicML 2023): ALiBi, no biases anywhere with no_bias (LayerNorms without beta), 4·d plain MLP
    (expansion_ratio), tied head. HF's MptModel has no position table whatever learned_pos_emb says."""
    H = _int(cfg, where, "d_model")
    heads = _int(cfg, where, "n_heads")
    _divides(H, heads, where)
    no_bias = _bool(cfg, where, "no_bias", True)
    ratio = _get(cfg, where, "expansion_ratio", default=4)
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or ratio <= 0 or H * ratio != int(H * ratio):
        raise InputError(f"{where}: config.json field 'expansion_ratio' must give a whole MLP width, got {ratio!r}")
    attn = cfg.get("attn_config") or {}
    if isinstance(attn, Mapping) and attn.get("alibi") is False:
        notes.append("attn_config.alibi is false, but transformers' MPT always uses ALiBi; read as ALiBi")
    return ModelSpec(
        name=name, layers=_int(cfg, where, "n_layers"), hidden=H, heads=heads, kv_heads=heads, head_dim=H // heads,
        ffn=int(H * ratio), vocab=_int(cfg, where, "vocab_size"), mlp="plain", activation="gelu",
        norm="layernorm", norm_bias=not no_bias, qkv_bias=not no_bias, o_bias=not no_bias, mlp_bias=not no_bias,
        tie_embeddings=_bool(cfg, where, "tie_word_embeddings", True), position="alibi",
        max_seq=_int(cfg, where, "max_seq_len", default=2048), family="mpt", source=where)


def _window(cfg, where, model_type, layers, notes) -> tuple[int, int]:
    """(window W, layers that use it; -1: all). layer_types wins; else each family's own rule."""
    layer_types = cfg.get("layer_types")
    if layer_types is not None and (not isinstance(layer_types, list) or len(layer_types) != layers
                                    or not all(isinstance(t, str) for t in layer_types)):
        raise InputError(f"{where}: config.json field 'layer_types' must list one attention type per layer "
                         f"({layers}), got {layer_types!r}")
    if model_type == "llama4_text":
        window = _int(cfg, where, "attention_chunk_size", default=8192)
        if layer_types is None:
            nope = _int_list(cfg, where, "no_rope_layers") or [
                int((i + 1) % _int(cfg, where, "no_rope_layer_interval", default=4) != 0) for i in range(layers)]
            layer_types = ["chunked_attention" if n else "full_attention" for n in nope]
        chunked = sum(t == "chunked_attention" for t in layer_types)
        if chunked:
            notes.append(f"Llama 4: {chunked} of {layers} layers attend within chunks of {window:,} tokens; their "
                         "cache holds at most one chunk, counted as a window of that size (causal FLOPs count a "
                         "sliding band, a little more than chunks)")
        return window if chunked else 0, chunked
    window = cfg.get("sliding_window") or 0
    if model_type in ("gemma3_text", "gpt_oss"):
        window = window or (4096 if model_type == "gemma3_text" else 128)     # class defaults
    if model_type.startswith("qwen") and not cfg.get("use_sliding_window", False):
        return 0, -1
    if not window:
        return 0, -1
    if isinstance(layer_types, list):
        return window, sum(t == "sliding_attention" for t in layer_types)
    if model_type in ("qwen2", "qwen3", "qwen2_moe"):   # the configuration classes' default layer_types
        first = _int(cfg, where, "max_window_layers", default=28)
        if model_type == "qwen2_moe":                    # even layers below max_window_layers slide
            return window, sum(1 for i in range(layers) if (i + 1) % 2 and i < first)
        return window, sum(1 for i in range(layers) if i >= first)   # layers from max_window_layers on slide
    if model_type == "gemma2":
        return window, (layers + 1) // 2  # layers 0, 2, 4, ... use the window
    if model_type == "gemma3_text":
        pattern = _int(cfg, where, "sliding_window_pattern", "_sliding_window_pattern", default=6)
        if pattern < 1:
            raise InputError(f"{where}: sliding_window_pattern must be at least 1")
        n = sum(1 for i in range(layers) if (i + 1) % pattern)
        notes.append(f"Gemma 3: no layer_types; sliding_window_pattern {pattern} makes {n} of {layers} layers local "
                     f"(window {window:,}) and every {pattern}th global. The local layers' own RoPE base "
                     "(rope_local_base_freq) changes no count")
        return window, n
    if model_type == "gpt_oss":
        return window, (layers + 1) // 2   # even layers slide (GptOssConfig's default layer_types)
    return window, -1


def _moe_layers(cfg, where, layers, experts) -> int:
    """Qwen2/3-MoE: layer i is sparse unless listed in mlp_only_layers, and only when (i + 1) is a multiple of
    decoder_sparse_step (transformers' Qwen2MoeDecoderLayer). Returns the number of dense-MLP layers."""
    only = set(_int_list(cfg, where, "mlp_only_layers") or [])
    step = _int(cfg, where, "decoder_sparse_step", default=1)
    if step < 1:
        raise InputError(f"{where}: decoder_sparse_step must be at least 1")
    sparse = sum(1 for i in range(layers) if i not in only and experts > 0 and (i + 1) % step == 0)
    return layers - sparse


def _llama_like(cfg, where, name, model_type, notes, family: str | None = None) -> ModelSpec:
    tie_default, qkv_bias_default, norm, max_pos = _LLAMA_LIKE[model_type]
    H = _int(cfg, where, "hidden_size")
    heads = _int(cfg, where, "num_attention_heads")
    head_dim = _get(cfg, where, "head_dim")
    if head_dim is None:
        if model_type in ("gemma3_text", "llama4_text", "gpt_oss"):
            head_dim = {"gemma3_text": 256, "llama4_text": 128, "gpt_oss": 64}[model_type]   # class defaults
        else:
            _divides(H, heads, where)
            head_dim = H // heads
    head_dim = _int({"head_dim": head_dim}, where, "head_dim")
    kv_heads = _int(cfg, where, "num_key_value_heads", default=heads)
    attention_bias = _bool(cfg, where, "attention_bias", model_type in ("gpt_oss",))
    if model_type == "qwen2_moe":
        qkv_bias = _bool(cfg, where, "qkv_bias", True)
    else:
        qkv_bias = attention_bias if qkv_bias_default is None else qkv_bias_default
    o_bias = attention_bias if model_type not in ("qwen2", "qwen2_moe") else False
    layers = _int(cfg, where, "num_hidden_layers")
    window, window_layers = _window(cfg, where, model_type, layers, notes)
    moe = mla = None
    ffn = _int(cfg, where, "intermediate_size", default=4 * H)
    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    qk_norm = {"qwen3": 2 * head_dim, "qwen3_moe": 2 * head_dim, "gemma3_text": 2 * head_dim,
               "olmo2": q_dim + kv_dim, "olmoe": q_dim + kv_dim}.get(model_type, 0)
    if model_type in ("mixtral", "phimoe"):
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
        experts = _int(cfg, where, "num_experts", "num_local_experts", default=60 if model_type == "qwen2_moe" else 128)
        shared = _int(cfg, where, "shared_expert_intermediate_size", default=5632) if model_type == "qwen2_moe" else 0
        moe = MoESpec(experts=experts, top_k=_int(cfg, where, "num_experts_per_tok", default=4 if shared else 8),
                      expert_ffn=_int(cfg, where, "moe_intermediate_size", default=1408 if shared else 768),
                      shared_experts=1 if shared else 0, shared_expert_ffn=shared, shared_gate=bool(shared),
                      dense_layers=_moe_layers(cfg, where, layers, experts))
    elif model_type == "olmoe":
        moe = MoESpec(experts=_int(cfg, where, "num_experts", default=64),
                      top_k=_int(cfg, where, "num_experts_per_tok", default=8), expert_ffn=ffn)
    elif model_type == "llama4_text":
        experts = _int(cfg, where, "num_local_experts", default=16)
        sparse = _int_list(cfg, where, "moe_layers")
        if sparse is None:
            step = _int(cfg, where, "interleave_moe_layer_step", default=1)
            sparse = list(range(step - 1, layers, step)) if step else []
        moe = MoESpec(experts=experts, top_k=_int(cfg, where, "num_experts_per_tok", default=1), expert_ffn=ffn,
                      shared_experts=1, shared_expert_ffn=ffn,
                      dense_layers=layers - len({i for i in sparse if 0 <= i < layers}))
        ffn = _int(cfg, where, "intermediate_size_mlp", default=16384)
    elif model_type == "gpt_oss":
        moe = MoESpec(experts=_int(cfg, where, "num_local_experts", default=128),
                      top_k=_int(cfg, where, "num_experts_per_tok", default=4), expert_ffn=ffn, router_bias=True)
    plain = model_type == "starcoder2"           # StarCoder2: a plain c_fc/c_proj MLP, every bias from use_bias
    bias = _bool(cfg, where, "use_bias", True) if plain else None
    if model_type == "cohere" and _bool(cfg, where, "use_qk_norm", False):
        qk_norm = q_dim + kv_dim                 # Command R+: per-head LayerNorms over Q and K
    if moe is not None and moe.top_k > moe.experts:
        raise InputError(f"{where}: num_experts_per_tok ({moe.top_k}) exceeds the number of experts ({moe.experts})")
    return ModelSpec(
        name=name, layers=layers, hidden=H, heads=heads, kv_heads=kv_heads, head_dim=head_dim, ffn=ffn,
        vocab=_int(cfg, where, "vocab_size"), mlp="plain" if plain else "gated",
        activation=str(cfg.get("hidden_activation") or cfg.get("hidden_act")
                       or ("gelu_pytorch_tanh" if model_type.startswith("gemma") else "silu")),
        norm=norm, norm_bias=norm == "layernorm" and model_type not in ("olmo", "cohere") and bias is not False,
        norm_affine=model_type != "olmo",        # OLMo-1: LayerNorm with no weight and no bias
        norms_per_layer={"gemma2": 4, "gemma3_text": 4, "cohere": 1}.get(model_type, 2), qk_norm_params=qk_norm,
        parallel_attn=model_type == "cohere",    # Cohere: attention and MLP off one LayerNorm
        qkv_bias=qkv_bias if bias is None else bias, o_bias=o_bias if bias is None else bias,
        mlp_bias=_bool(cfg, where, "mlp_bias", False) or model_type == "gpt_oss" or bool(bias),
        lm_head_bias=_bool(cfg, where, "lm_head_bias", False) if model_type == "phimoe" else False,
        tie_embeddings=_bool(cfg, where, "tie_word_embeddings", tie_default), position="rope",
        max_seq=_int(cfg, where, "max_position_embeddings", default=max_pos),
        sliding_window=_int({"w": window}, where, "w"), sliding_window_layers=window_layers,
        attention_sinks=model_type == "gpt_oss", moe=moe, mla=mla, family=family or model_type, source=where)


def _divides(hidden: int, heads: int, where: str) -> None:
    if heads == 0 or hidden % heads:
        raise InputError(f"{where}: num_attention_heads ({heads}) does not divide hidden_size ({hidden}) "
                         "and the config gives no head_dim")
