"""config.json corner cases (no torch): quantization_config blocks as the Hub's quantised checkpoints ship them,
Gemma 3's layer pattern without layer_types, nested text_config, families llmcalc refuses, and every bad input
a user can put in a config.json — one line on stderr, exit 2."""

from __future__ import annotations

import json

import pytest

from llmcalc.core.kv import kv_cache_bytes
from llmcalc.core.params import total_params
from llmcalc.errors import InputError
from llmcalc.hfconfig import SUPPORTED, spec_from_hf_config

LLAMA = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
         "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072}
LLAMA_3_1_8B = 8_030_261_248   # tests/test_hfconfig.py PUBLISHED (LlamaForCausalLM on meta)


def _write(tmp_path, cfg, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return str(path)


# quantization_config blocks as the quantised checkpoints ship them (key names as in their config.json)
QUANT = [
    # TheBloke/Llama-2-7B-GPTQ, Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4
    ({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}, "gptq-int4", 4, 128),
    ({"quant_method": "gptq", "bits": 8, "group_size": 128}, "int8", 8, 128),          # ...-GPTQ-Int8
    ({"quant_method": "gptq", "bits": 4, "group_size": -1}, "gptq-int4", 4, 0),         # per channel
    ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}, "awq-int4", 4, 128),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
      "bnb_4bit_use_double_quant": True, "llm_int8_skip_modules": ["lm_head"]}, "nf4", 4, 64),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "int8", 8, 0),
    # deepseek-ai/DeepSeek-V3, Qwen/Qwen3-8B-FP8: block-wise fp8
    ({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [128, 128]},
     "fp8", 8, 16384),
    ({"quant_method": "fbgemm_fp8", "modules_to_not_convert": ["lm_head"]}, "fp8", 8, 0),  # Llama-3.1-405B-FP8
    # RedHatAI/*-FP8-dynamic and *-quantized.w4a16 (llm-compressor)
    ({"quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"], "config_groups": {
        "group_0": {"targets": ["Linear"], "weights": {"num_bits": 8, "type": "float", "strategy": "channel"}}}},
     "fp8", 8, 0),
    ({"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {
        "group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group",
                                                       "group_size": 128}}}}, "int4", 4, 128),
    ({"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized", "config_groups": {
        "group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "float", "strategy": "group",
                                                       "group_size": 16}}}}, "nvfp4", 4, 16),
    ({"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"]}, "mxfp4", 4, 32),
]


@pytest.mark.parametrize("quant, fmt, bits, group", QUANT)
def test_quantization_config_sets_the_default_weight_format(quant, fmt, bits, group):
    spec = spec_from_hf_config({**LLAMA, "quantization_config": quant})
    assert (spec.weight_format, spec.weight_bits, spec.weight_group_size) == (fmt, bits, group)
    assert total_params(spec) == LLAMA_3_1_8B                       # the architecture is unchanged
    skipped = quant.get("modules_to_not_convert") or quant.get("llm_int8_skip_modules") or quant.get("ignore") or []
    assert spec.unquantised_modules == tuple(skipped)
    assert any(n.startswith("quantization_config:") and fmt in n for n in spec.notes)


def test_quantization_note_reaches_the_user(cli, tmp_path):
    path = _write(tmp_path, {**LLAMA, "quantization_config": QUANT[0][0]})
    run = cli("kv", "-m", path, "--seq", "1k", "-o", "tsv")
    assert run.code == 0 and "GPTQ 4-bit, group 128 -> weight format gptq-int4" in run.stderr
    doc = cli("kv", "-m", path, "--seq", "1k", "--json").json()
    assert doc["model"]["weight_format"] == "gptq-int4"
    assert any("gptq-int4" in n for n in doc["notes"])


def test_gemma3_pattern_without_layer_types():
    # google/gemma-3-1b-pt ships sliding_window_pattern 6 and no layer_types: layers 6, 12, 18, 24 are global,
    # the other 22 hold at most the 512-token window. At 32k the cache is 4·S + 22·W tokens per layer-slot,
    # not 26·W (everything windowed, as read before) — about 5.9× more.
    cfg = {"model_type": "gemma3_text", "hidden_size": 1152, "intermediate_size": 6912, "num_hidden_layers": 26,
           "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 262144,
           "max_position_embeddings": 32768, "sliding_window": 512, "sliding_window_pattern": 6}
    spec = spec_from_hf_config(cfg)
    assert (spec.sliding_window, spec.window_layers) == (512, 22)
    per_layer_token = 2 * 1 * 256 * 2                                  # K and V, 1 KV head of 256, bf16
    S = 32_000
    assert kv_cache_bytes(spec, 1, S) == per_layer_token * (4 * S + 22 * 512)
    assert kv_cache_bytes(spec, 1, S) / (per_layer_token * 26 * 512) > 5
    assert any("rope_local_base_freq" in n and "changes no count" in n for n in spec.notes)
    # layer_types, when given, wins over the pattern
    explicit = spec_from_hf_config({**cfg, "layer_types": ["sliding_attention"] * 20 + ["full_attention"] * 6})
    assert explicit.window_layers == 20


def test_sparse_text_config_takes_the_class_defaults():
    # google/gemma-3-4b-it's text_config names only these keys; transformers fills the rest from Gemma3TextConfig
    cfg = {"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", "hidden_size": 2560,
                                                   "intermediate_size": 10240, "num_hidden_layers": 34,
                                                   "sliding_window": 1024}}
    spec = spec_from_hf_config(cfg)
    assert (spec.heads, spec.kv_heads, spec.head_dim, spec.vocab) == (8, 4, 256, 262208)
    assert any("class defaults" in n and "num_attention_heads" in n for n in spec.notes)


@pytest.mark.parametrize("outer, inner, wrapper, tied", [
    (None, None, "mistral3", True), (None, False, "mistral3", True), (False, None, "mistral3", False),
    (False, True, "mistral3", False), (None, None, "gemma3", True), (False, True, "gemma3", False),
    (None, None, "llava", False), (False, True, "llava", True), (True, False, "llava", True),
    (None, None, "llama4", False), (None, True, "llama4", True), (True, False, "llama4", False)])
def test_the_wrapper_decides_the_tied_head(outer, inner, wrapper, tied):
    # which tie_word_embeddings ties the head, measured by building each case with transformers 5.23 on meta
    # (whether an lm_head parameter exists): Gemma 3 and Mistral 3 follow the outer config (default true),
    # Llama 4 its text_config (default false), Llava either one being true
    text = {**LLAMA, "model_type": {"gemma3": "gemma3_text", "llama4": "llama4_text"}.get(wrapper, "llama")}
    if inner is not None:
        text["tie_word_embeddings"] = inner
    cfg = {"model_type": wrapper, "text_config": text}
    if outer is not None:
        cfg["tie_word_embeddings"] = outer
    assert spec_from_hf_config(cfg).tie_embeddings is tied


def test_nested_text_config_context_length():
    text = {k: v for k, v in LLAMA.items() if k != "max_position_embeddings"}
    outer = spec_from_hf_config({"model_type": "llava", "text_config": text, "max_position_embeddings": 8192})
    assert outer.max_seq == 8192 and any("outer config" in n for n in outer.notes)
    default = spec_from_hf_config({"model_type": "llava", "text_config": text})
    assert default.max_seq == 2048 and any("class default" in n for n in default.notes)   # LlamaConfig's
    assert default.max_seq != 4096


def test_unknown_model_type_with_standard_keys_is_read_as_llama(cli, tmp_path):
    spec = spec_from_hf_config({**LLAMA, "model_type": "brand_new_lm"})
    assert total_params(spec) == LLAMA_3_1_8B
    assert spec.family == "brand_new_lm" and any("read as Llama-like" in n for n in spec.notes)
    run = cli("flops", "-m", _write(tmp_path, {**LLAMA, "model_type": "brand_new_lm"}), "--seq", "128", "-o", "tsv")
    assert run.code == 0 and "Llama-like" in run.stderr


def test_a_vision_config_that_is_not_counted_is_said():
    spec = spec_from_hf_config({**LLAMA, "model_type": "qwen2_vl", "vision_config": {"depth": 32}})
    assert spec.vision_params == 0 and any("vision tower is not counted" in n for n in spec.notes)


@pytest.mark.parametrize("cfg", [
    {"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
     "intermediate_size": 3072, "vocab_size": 30522},                    # has every standard key, yet no decoder
    {"model_type": "my_seq2seq", "is_encoder_decoder": True, **{k: v for k, v in LLAMA.items() if k != "model_type"}},
])
def test_encoders_are_not_read_as_llama(cli, tmp_path, cfg):
    run = cli("kv", "-m", _write(tmp_path, cfg), "--seq", "1k")
    assert run.code == 2 and "encoder" in run.stderr and run.stderr.count("\n") == 1


@pytest.mark.parametrize("model_type, why", [("mamba", "no attention and no KV cache"),
                                             ("falcon_mamba", "no attention and no KV cache"),
                                             ("rwkv", "no attention and no KV cache"),
                                             ("jamba", "keep no KV cache"), ("qwen3_next", "keep no KV cache")])
def test_non_transformers_are_refused(cli, tmp_path, model_type, why):
    # these configs carry the standard keys, so without the refusal they would be read as Llama-like
    run = cli("kv", "-m", _write(tmp_path, {**LLAMA, "model_type": model_type}), "--seq", "1k")
    assert run.code == 2 and why in run.stderr and run.stderr.count("\n") == 1


def test_unsupported_type_lists_exactly_the_supported_ones(cli, tmp_path):
    run = cli("kv", "-m", _write(tmp_path, {"model_type": "xyz_lm", "d_model": 512}), "--seq", "1k")
    assert run.code == 2 and run.stderr.count("\n") == 1
    listed = run.stderr.split("supported: ")[1].strip().split(", ")
    assert listed == list(SUPPORTED)


def _minimal(model_type: str) -> dict:
    """A small config of each listed type, with the keys its reader needs."""
    base = {"model_type": model_type, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 1000, "n_embd": 256, "n_head": 4, "n_layer": 2,
            "d_model": 256, "n_heads": 4, "n_layers": 2}
    extra = {"mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2},
             "phimoe": {"num_local_experts": 4, "num_experts_per_tok": 2},
             "deepseek_v2": {"n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 64,
                             "kv_lora_rank": 32, "qk_rope_head_dim": 16, "qk_nope_head_dim": 32, "v_head_dim": 32},
             "deepseek_v3": {"n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 64,
                             "kv_lora_rank": 32, "qk_rope_head_dim": 16, "qk_nope_head_dim": 32, "v_head_dim": 32}}
    cfg = {**base, **extra.get(model_type, {})}
    if model_type in ("gemma3", "llama4", "llava", "mistral3"):
        cfg = {"model_type": model_type, "text_config": {k: v for k, v in base.items() if k != "model_type"}}
    return cfg


@pytest.mark.parametrize("model_type", SUPPORTED)
def test_every_listed_type_is_accepted(model_type):
    spec = spec_from_hf_config(_minimal(model_type))          # no "not supported" for a listed type
    assert total_params(spec) > 0


BAD = [
    ({**LLAMA, "quantization_config": "gptq"}, "quantization_config: expected an object"),
    ({**LLAMA, "quantization_config": {"bits": 4}}, "has no quant_method"),
    ({**LLAMA, "quantization_config": {"quant_method": "hqq", "nbits": 4}}, "unknown quant_method 'hqq'"),
    ({**LLAMA, "quantization_config": {"quant_method": "gptq", "bits": "four"}}, "'bits' must be"),
    ({**LLAMA, "quantization_config": {"quant_method": "bitsandbytes"}}, "exactly one of load_in_4bit"),
    ({**LLAMA, "quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True,
                                       "bnb_4bit_quant_type": "int3"}}, "nf4 or fp4"),
    ({**LLAMA, "quantization_config": {"quant_method": "compressed-tensors"}}, "config_groups"),
    ({**LLAMA, "quantization_config": {"quant_method": "awq", "bits": 4, "modules_to_not_convert": "lm_head"}},
     "list of names"),
    ({"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", "hidden_size": 1152}},
     "text_config lacks num_hidden_layers"),
    ({"model_type": "llava", "text_config": {"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24}},
     "text_config lacks num_attention_heads, vocab_size"),
    ({"model_type": "gemma3", "text_config": "gemma"}, "'text_config' must be an object"),
    ({**LLAMA, "layer_types": ["full_attention"] * 3}, "one attention type per layer"),
    ({**LLAMA, "model_type": "qwen2_moe", "mlp_only_layers": "all"}, "'mlp_only_layers' must be a list"),
    ({**LLAMA, "model_type": "qwen3_moe", "num_experts": 4, "num_experts_per_tok": 8}, "exceeds the number"),
    ({**LLAMA, "model_type": "opt", "word_embed_proj_dim": 512}, "OPT-350m"),
    ({**LLAMA, "model_type": "gemma3", "text_config": {**LLAMA, "model_type": "gemma3_text"},
      "vision_config": [1]}, "'vision_config' must be an object"),
]


@pytest.mark.parametrize("cfg, message", BAD)
def test_bad_config_is_one_line_exit_2(cli, tmp_path, cfg, message):
    with pytest.raises(InputError, match=None) as exc:
        spec_from_hf_config(cfg)
    assert message in str(exc.value)
    run = cli("kv", "-m", _write(tmp_path, cfg), "--seq", "1k")
    assert run.code == 2 and run.stdout == "" and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert message in run.stderr


def test_docs_table_lists_every_supported_type():
    from pathlib import Path
    text = (Path(__file__).parent.parent / "docs" / "models.md").read_text()
    table = text.split("## Supported `model_type`s")[1].split("\n## ")[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")][1:]   # past the header
    listed = {name.strip(" `") for row in rows for name in row.split(",")}
    assert listed == set(SUPPORTED)


def test_vision_tower_counts_in_weight_memory(cli):
    from llmcalc.presets import load_model
    spec = load_model("gemma-3-4b")
    doc = cli("kv", "-m", "gemma-3-4b", "--seq", "1k", "--json").json()
    assert doc["model"]["vision_params"] == spec.vision_params > 0
    assert doc["results"]["weights_bytes"] == 2 * (total_params(spec) + spec.vision_params)   # bf16
    # a decode step reads the language model's weights and the cache, not the vision tower
    assert doc["results"]["decode_bytes_with_cache"] == 2 * total_params(spec) + doc["results"]["kv_bytes"]


def test_vision_tower_is_held_but_not_read_per_token(cli, tmp_path):
    # serve: the weights held include the vision tower, but a decode step reads the language model only, so
    # gemma-3-4b decodes exactly as fast as the same language model without a vision tower
    from llmcalc.presets import builtin_dir, load_model
    spec = load_model("gemma-3-4b")
    text = (builtin_dir() / "models" / "gemma-3-4b.yaml").read_text()
    no_vision = tmp_path / "gemma-3-4b-text.yaml"
    no_vision.write_text(text.replace(f"vision_params: {spec.vision_params}", "vision_params: 0")
                         .replace("name: gemma-3-4b", "name: gemma-3-4b-text"))
    args = ["serve", "-g", "h100-sxm", "--prompt", "512", "--gen", "64", "--json", "-m"]
    a = cli(*args, "gemma-3-4b").json()["results"]
    b = cli(*args, str(no_vision)).json()["results"]
    assert a["weights_bytes"] - b["weights_bytes"] == 2 * spec.vision_params > 0
    assert a["decode_seconds_per_token"] == b["decode_seconds_per_token"]
