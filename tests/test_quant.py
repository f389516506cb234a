"""Named weight formats (core/quant.py) against independent references: the gguf package's block table,
llama.cpp's published bits per weight and loader logs, the QLoRA / OCP MX / NVIDIA layouts, and the file
sizes of published checkpoints."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcalc.core import quant
from llmcalc.core.params import total_params
from llmcalc.errors import InputError
from llmcalc.presets import load_model
from llmcalc.spec import MoESpec, ModelSpec

GB = 1e9


def test_ggml_block_table_is_the_gguf_packages():
    gguf = pytest.importorskip("gguf")
    for name, (block, nbytes) in quant.GGML_TYPES.items():
        assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name.upper()]] == (block, nbytes), name


@pytest.mark.parametrize("fmt,bpw", [
    # ggml-common.h comments on the block structs ("Effectively N bits per weight")
    ("q2_k", 2.625), ("q3_k_m", 3.4375), ("q4_k_m", 4.5), ("q4_k_s", 4.5), ("q5_k_m", 5.5), ("q5_k_s", 5.5),
    ("q6_k", 6.5625), ("q8_0", 8.5), ("q4_0", 4.5), ("iq4_xs", 4.25),
    # OCP Microscaling Formats v1.0 Table 1: MXFP4 = 32 E2M1 elements + one 8-bit E8M0 scale
    ("mxfp4", (32 * 4 + 8) / 32),
    # NVIDIA, "Introducing NVFP4": 16 E2M1 values share one FP8 E4M3 scale
    ("nvfp4", (16 * 4 + 8) / 16),
    ("bf16", 16), ("fp32", 32),
])
def test_bits_per_weight(fmt, bpw):
    assert quant.bits_per_weight(fmt) == pytest.approx(bpw, abs=1e-12)


def test_nf4_double_quantisation_is_the_qlora_papers_0_127_bits():
    # Dettmers et al. 2023 (QLoRA, arXiv:2305.14314) sec. 3: double quantisation takes the constants from
    # 32/64 = 0.5 bits per parameter to 8/64 + 32/(64·256) = 0.127 bits
    assert quant.bits_per_weight("nf4") - 4 == pytest.approx(0.127, abs=5e-4)


def test_gptq_layout_from_its_tensor_shapes():
    # AutoGPTQ / transformers QuantLinear, bits 4, group g, for an in×out matrix: qweight int32 (in/8, out),
    # qzeros int32 (in/g, out/8), scales fp16 (in/g, out), g_idx int32 (in); AWQ has no g_idx
    n_in, n_out, g = 4096, 11008, 128
    gptq = 4 * (n_in // 8 * n_out) + 4 * (n_in // g * n_out // 8) + 2 * (n_in // g * n_out) + 4 * n_in
    awq = gptq - 4 * n_in
    m = quant.Matrix("ffn_up", 0, n_in, n_out)
    assert quant.matrix_bytes(quant.main_storage("gptq-int4"), m) == gptq
    assert quant.matrix_bytes(quant.main_storage("awq-int4"), m) == awq


def test_q4_k_m_tensor_types_of_a_32_layer_llama_match_llama_cpps_loader():
    # llama.cpp's loader on a Llama-2-7B-shaped Q4_K_M (32 layers, vocab 32000; e.g. the run logs quoted in
    # llama.cpp issues): "type f32: 65 tensors, type q4_K: 193 tensors, type q6_K: 33 tensors"
    spec = load_model("llama-2-7b")
    types = [s.name for _, s in quant.matrix_storage(spec, "q4_k_m")]
    assert types.count("q4_k") == 193 and types.count("q6_k") == 33 and len(types) == 193 + 33
    assert spec.norms_per_layer * spec.layers + 1 == 65        # the f32 norms, stored as vectors


def test_q4_k_m_puts_attn_v_ffn_down_and_output_at_q6_k_per_use_more_bits():
    spec = load_model("llama-3.1-8b")
    by = {(m.kind, m.layer): s.name for m, s in quant.matrix_storage(spec, "q4_k_m")}
    bumped = [i for i in range(32) if by[("attn_v", i)] == "q6_k"]
    # first and last eighth of the 32 layers, and every third layer from layer 6 (llama-quant.cpp use_more_bits)
    assert bumped == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
    assert [i for i in range(32) if by[("ffn_down", i)] == "q6_k"] == bumped
    assert by[("output", -1)] == "q6_k" and by[("token_embd", -1)] == "q4_k" and by[("attn_q", 5)] == "q4_k"


def test_a_tied_token_table_takes_the_output_type():
    # llama-quant.cpp: with no output.weight the token table is quantised as the output tensor (Q6_K)
    spec = load_model("gemma-2-9b")
    assert spec.tie_embeddings
    by = {(m.kind, m.layer): s.name for m, s in quant.matrix_storage(spec, "q4_k_m")}
    assert by[("token_embd", -1)] == "q6_k" and ("output", -1) not in by


def test_rows_the_block_does_not_divide_fall_back():
    # llama-quant.cpp tensor_type_fallback: a 896-wide row (not a multiple of 256) takes Q5_0 for Q4_K,
    # Q8_0 for Q6_K; IQ4_XS falls back to IQ4_NL
    spec = ModelSpec(name="narrow", layers=8, hidden=896, heads=14, kv_heads=2, head_dim=64, ffn=4864, vocab=1000)
    by = {(m.kind, m.layer): s.name for m, s in quant.matrix_storage(spec, "q4_k_m")}
    assert by[("attn_q", 4)] == "q5_0" and by[("attn_v", 0)] == "q8_0" and by[("ffn_down", 4)] == "q4_k"
    narrow = {s.name for m, s in quant.matrix_storage(spec, "iq4_xs") if m.cols == 896}
    assert narrow == {"iq4_nl", "q5_1", "q8_0"}       # IQ4_XS -> IQ4_NL; attn_v's Q5_K -> Q5_1; output Q8_0


def test_matrices_and_vectors_add_up_to_the_published_parameter_count():
    for name in ("gpt2", "llama-3.1-8b", "mixtral-8x7b", "deepseek-v3", "gemma-2-9b", "qwen2.5-7b"):
        spec = load_model(name)
        parts = quant.weight_parts(spec, "q4_k_m")
        assert sum(p for p, _ in parts["by_type"].values()) == total_params(spec) == spec.published_params, name


# Published checkpoints: weight bytes predicted against the file sizes their repos list (GB = 1e9 bytes,
# rounded to the digits shown). Metadata (tokenizer, JSON headers) is under 0.2% of these files.
CHECKPOINTS = [
    # bartowski/Meta-Llama-3.1-8B-Instruct-GGUF, README "Download a file" table (llama.cpp b3472)
    ("llama-3.1-8b", "q4_k_m", 0, 4.92), ("llama-3.1-8b", "q8_0", 0, 8.54), ("llama-3.1-8b", "q6_k", 0, 6.60),
    ("llama-3.1-8b", "q5_k_m", 0, 5.73), ("llama-3.1-8b", "q5_k_s", 0, 5.60), ("llama-3.1-8b", "q4_k_s", 0, 4.69),
    ("llama-3.1-8b", "q3_k_m", 0, 4.02), ("llama-3.1-8b", "q2_k", 0, 3.18),
    # bartowski/Meta-Llama-3.1-70B-Instruct-GGUF, README "Download a file" table (Q8_0 and Q6_K split files)
    ("llama-3.1-70b", "q4_k_m", 0, 42.52), ("llama-3.1-70b", "q8_0", 0, 74.98), ("llama-3.1-70b", "q6_k", 0, 57.89),
    ("llama-3.1-70b", "q5_k_m", 0, 49.95), ("llama-3.1-70b", "q5_k_s", 0, 48.66), ("llama-3.1-70b", "q4_k_s", 0, 40.35),
    ("llama-3.1-70b", "q3_k_m", 0, 34.27), ("llama-3.1-70b", "q2_k", 0, 26.38),
    # bartowski's IQ4_XS files are made with an importance matrix (fewer Q5_K bumps): 37.90 GB for the 70B
    ("llama-3.1-70b", "iq4_xs", 0, 37.90),
    # TheBloke/Llama-2-7b-Chat-GPTQ, README "Provided files": main (4-bit, g128) 3.90 GB, 64g 4.02 GB, 32g 4.28 GB
    ("llama-2-7b", "gptq-int4", 0, 3.90), ("llama-2-7b", "gptq-int4", 64, 4.02), ("llama-2-7b", "gptq-int4", 32, 4.28),
    # TheBloke AWQ READMEs "Provided files" (4-bit, g128): Mistral-7B-v0.1-AWQ 4.15 GB,
    # Upstage-Llama-2-70B-instruct-v2-AWQ 36.61 GB (a Llama-2-70B), LLaMA2-13B-Tiefighter-AWQ 7.25 GB (a Llama-2-13B)
    ("mistral-7b", "awq-int4", 0, 4.15), ("llama-2-70b", "awq-int4", 0, 36.61), ("llama-2-13b", "awq-int4", 0, 7.25),
    # The Hub's file listings (3 significant digits, so each shard is +-0.5 in its last digit):
    # https://huggingface.co/hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4/tree/main
    #   model-00001-of-00002.safetensors 4.68 GB + model-00002-of-00002.safetensors 1.05 GB
    # https://huggingface.co/hugging-quants/Meta-Llama-3.1-8B-Instruct-GPTQ-INT4/tree/main
    #   model-00001-of-00002.safetensors 4.97 GB + model-00002-of-00002.safetensors 764 MB
    ("llama-3.1-8b", "awq-int4", 0, 4.68 + 1.05), ("llama-3.1-8b", "gptq-int4", 0, 4.97 + 0.764),
    # https://huggingface.co/unsloth/Meta-Llama-3.1-8B-bnb-4bit/tree/main (bitsandbytes NF4, double
    # quantisation): model.safetensors 5.7 GB, i.e. 5.695-5.705
    ("llama-3.1-8b", "nf4", 0, 5.70),
    # bartowski/gemma-2-9b-it-GGUF: Q4_K_M 5.76 GB, Q8_0 9.83 GB (tied token table at Q6_K / Q8_0)
    ("gemma-2-9b", "q4_k_m", 0, 5.76), ("gemma-2-9b", "q8_0", 0, 9.83),
]


@pytest.mark.parametrize("model,fmt,group,size_gb", CHECKPOINTS)
def test_published_checkpoint_sizes(model, fmt, group, size_gb):
    predicted = quant.weight_bytes(load_model(model), fmt, group)
    assert predicted == pytest.approx(size_gb * GB, rel=0.02)


def test_published_checkpoints_are_matched_well_inside_the_2_percent():
    errors = sorted(abs(quant.weight_bytes(load_model(m), f, g) / (s * GB) - 1) for m, f, g, s in CHECKPOINTS)
    assert errors[len(errors) // 2] < 0.002          # the median is within 0.2%
    assert errors[-1] < 0.011                        # the worst (IQ4_XS made with an importance matrix) ~1%


def test_moe_recipe_against_a_mixtral_q4_k_m_file():
    # bartowski/Mixtral-8x7B-Instruct-v0.1-GGUF Q4_K_M: 28,372,963,328 bytes (the byte count a downloader's
    # catalogue records for that file; llama.cpp's n_expert == 8 rules put attn_v/attn_k at Q8_0 and
    # attn_output at Q5_K)
    assert quant.weight_bytes(load_model("mixtral-8x7b"), "q4_k_m") == pytest.approx(28_372_963_328, rel=0.01)


def test_generic_formats_keep_the_old_rule():
    # weight-only int4 with G=32 (gpt-fast): every matrix but the embedding tables at 0.5 + 2/32 B
    spec = load_model("llama-2-7b")
    emb = spec.vocab * spec.hidden
    P = total_params(spec)
    norms = spec.layers * 2 * spec.hidden + spec.hidden
    assert quant.weight_bytes(spec, "int4", 32) == pytest.approx((P - emb - norms) * (0.5 + 2 / 32) + (emb + norms) * 2)
    assert quant.weight_bytes(spec, "bf16") == 2 * P and quant.weight_bytes(spec, "fp32") == 4 * P


def test_gathered_and_expert_parts():
    spec = load_model("mixtral-8x7b")
    p = quant.weight_parts(spec, "q4_k_m")
    assert p["gathered"] == spec.vocab * spec.hidden * 144 / 256         # the token table in Q4_K
    E = spec.moe.experts * spec.moe_layers
    assert 3 * spec.hidden * spec.moe.expert_ffn * 4.5 / 8 < p["expert"] < 3 * spec.hidden * spec.moe.expert_ffn * 6.5625 / 8
    assert p["expert"] * E < p["total"]
    tied = load_model("gemma-2-9b")
    assert quant.weight_parts(tied, "q4_k_m")["gathered"] == 0            # a tied table is streamed as the head


def test_unquantised_modules_from_a_config():
    spec = load_model("mixtral-8x7b")
    all_q = quant.weight_bytes(spec, "gptq-int4")
    kept = quant.weight_bytes(spec, "gptq-int4", keep=("model.layers.*.self_attn",))
    attn = sum(m.params for m, _ in quant.matrix_storage(spec, "bf16") if m.kind.startswith("attn"))
    assert kept - all_q == pytest.approx(attn * (2 - 4.15625 / 8), rel=0.01)


def test_mxfp4_on_a_moe_model_quantises_only_the_experts():
    # gpt-oss (OpenAI 2025 model card): MoE weights in MXFP4, attention and the rest in bf16
    spec = load_model("mixtral-8x7b")
    names = {m.kind: s.name for m, s in quant.matrix_storage(spec, "mxfp4")}
    assert names["ffn_down_exps"] == "mxfp4" and names["attn_q"] == "16-bit" and names["output"] == "16-bit"


@pytest.mark.parametrize("bad", ["q4_k_x", "int3", "", "Q4-K-M"])
def test_unknown_formats_name_the_choices(bad):
    with pytest.raises(InputError, match="unknown weight format .* choose one of fp32"):
        quant.check_format(bad)


def test_names_are_case_insensitive():
    assert quant.check_format("Q4_K_M") == "q4_k_m" and quant.check_format("GPTQ_INT4") == "gptq-int4"


def test_overrides_apply_only_where_the_format_has_them():
    quant.check_overrides("int4", 32, 4.0)
    quant.check_overrides("gptq-int4", 64)
    with pytest.raises(InputError, match="group size applies to"):
        quant.check_overrides("q4_k_m", 64)
    with pytest.raises(InputError, match="scale bytes per group apply to"):
        quant.check_overrides("nf4", 0, 4.0)


@pytest.mark.parametrize("model", ["llama-3.1-8b", "mixtral-8x7b", "deepseek-v3", "gpt2"])
def test_smaller_formats_hold_fewer_bytes(model):
    spec = load_model(model)
    ladder = ["fp32", "bf16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k"]
    sizes = [quant.weight_bytes(spec, f) for f in ladder]
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("layers,experts,gib", [(24, 32, 12.8), (36, 128, 60.8)])
def test_gpt_oss_mxfp4_checkpoints(layers, experts, gib):
    # OpenAI, gpt-oss-120b & gpt-oss-20b model card (2025): MoE weights in MXFP4, the rest in bf16; checkpoints
    # of 60.8 GiB (120b, 116.83B parameters) and 12.8 GiB (20b). Geometry from the repos' config.json: hidden
    # 2880, 64 query / 8 KV heads of 64, experts of 2880, vocabulary 201,088, biases on attention, experts and
    # router, untied head (the attention sinks, 64 per layer, are left out: 2,304 parameters at most)
    spec = ModelSpec(name="gpt-oss", layers=layers, hidden=2880, heads=64, kv_heads=8, head_dim=64, ffn=2880,
                     vocab=201088, qkv_bias=True, o_bias=True, mlp_bias=True,
                     moe=MoESpec(experts=experts, top_k=4, expert_ffn=2880, router_bias=True))
    if layers == 36:
        assert total_params(spec) == pytest.approx(116.83e9, rel=1e-4)
    assert quant.weight_bytes(spec, "mxfp4") / 2**30 == pytest.approx(gib, rel=0.02)


def test_a_checkpoints_own_group_size_and_unquantised_modules_apply_to_its_format():
    # a spec read from a quantised config.json carries weight_format / weight_group_size / unquantised_modules
    import dataclasses

    base = load_model("llama-2-7b")
    ckpt = dataclasses.replace(base, weight_format="gptq-int4", weight_group_size=32,
                               unquantised_modules=("model.layers.0.mlp",))
    layer0 = ("model.layers.0.mlp",)
    assert quant.weight_bytes(ckpt, "gptq-int4") == quant.weight_bytes(base, "gptq-int4", 32, keep=layer0)
    assert quant.weight_bytes(ckpt, "awq-int4") == quant.weight_bytes(base, "awq-int4")     # another format
    assert quant.weight_bytes(ckpt, "gptq-int4", 64) == quant.weight_bytes(base, "gptq-int4", 64, keep=layer0)
    # one layer's MLP kept in 16-bit: its three matrices at 2 bytes instead of 0.5 + 2.5/32 (+ g_idx)
    mlp = 3 * base.hidden * base.ffn
    gidx = 4 * (2 * base.hidden + base.ffn)
    assert (quant.weight_bytes(base, "gptq-int4", 32, keep=layer0) - quant.weight_bytes(base, "gptq-int4", 32)
            == pytest.approx(mlp * (2 - 0.5 - 2.5 / 32) - gidx))


@st.composite
def _specs(draw):
    heads = draw(st.sampled_from([4, 8, 16]))
    kv = draw(st.sampled_from([h for h in (1, 2, 4, 8, 16) if heads % h == 0]))
    moe = None
    if draw(st.booleans()):
        moe = MoESpec(experts=draw(st.integers(2, 16)), top_k=1, expert_ffn=draw(st.integers(16, 3000)),
                      shared_experts=draw(st.integers(0, 1)), dense_layers=draw(st.integers(0, 2)))
    return ModelSpec(name="h", layers=draw(st.integers(3, 40)), hidden=draw(st.integers(8, 5000)), heads=heads,
                     kv_heads=kv, head_dim=draw(st.sampled_from([32, 64, 80, 128])), ffn=draw(st.integers(8, 20000)),
                     vocab=draw(st.integers(8, 100_000)), mlp=draw(st.sampled_from(["gated", "plain"])),
                     tie_embeddings=draw(st.booleans()), qkv_bias=draw(st.booleans()),
                     position=draw(st.sampled_from(["rope", "learned"])), max_seq=512, moe=moe)


@settings(max_examples=60, deadline=None)
@given(_specs())
def test_every_parameter_is_stored_once_in_every_format(spec):
    P = total_params(spec)
    for fmt in quant.WEIGHT_FORMATS:
        parts = quant.weight_parts(spec, fmt)
        assert sum(p for p, _ in parts["by_type"].values()) == P, fmt
        assert 0 <= parts["gathered"] < parts["total"]
        # GGUF: every matrix ends in a type whose block divides its rows (else f16)
        if fmt in quant.GGUF_RECIPES:
            for m, s in quant.matrix_storage(spec, fmt):
                assert m.cols % s.block == 0, (fmt, m, s)
