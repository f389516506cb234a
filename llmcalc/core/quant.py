"""Weight formats and the bytes a model's weights take in each: plain dtypes, GGUF recipes, GPTQ/AWQ,
bitsandbytes NF4, OCP MXFP4, NVIDIA NVFP4.

The single place where a weight format becomes bytes: every command (kv, serve, specdec, roofline,
train-mem's frozen base) calls ``weight_bytes`` / ``weight_parts``; nothing else decides which tensors a
format keeps at another type.

A model is a list of weight matrices (``weight_matrices``: per layer q, k, v, o, gate, up, down, MoE experts
and router; the token table, a learned position table and the LM head) plus vectors (norms, biases). A
format assigns each matrix a storage type; a type stores blocks of ``k`` weights in ``b`` bytes, so
bits per weight = 8·b/k (ggml-common.h ``block_*`` structs; gguf-py ``GGML_QUANT_SIZES``):

    q4_0   32 w: fp16 d + 16 B of 4-bit codes                               = 18 B  (4.5 bpw)
    q8_0   32 w: fp16 d + 32 int8                                           = 34 B  (8.5 bpw)
    q2_k  256 w: 16 B 4-bit scales/mins + 64 B 2-bit codes + fp16 d, dmin   = 84 B  (2.625 bpw)
    q3_k  256 w: 32 B high bits + 64 B 2-bit codes + 12 B 6-bit scales + d  = 110 B (3.4375 bpw)
    q4_k  256 w: fp16 d, dmin + 12 B 6-bit scales/mins + 128 B codes        = 144 B (4.5 bpw)
    q5_k  256 w: q4_k + 32 B high bits                                      = 176 B (5.5 bpw)
    q6_k  256 w: 128 B low 4 bits + 64 B high 2 bits + 16 int8 scales + d   = 210 B (6.5625 bpw)
    iq4_xs 256 w: fp16 d + 2 B + 4 B scales + 128 B non-linear 4-bit codes  = 136 B (4.25 bpw)

GGUF recipes follow llama.cpp src/llama-quant.cpp ``llama_tensor_get_type``: the output matrix (or a tied
token table) at Q6_K (Q8_0 for Q8_0); the token table at the recipe's own type; ``attn_v`` and ``ffn_down``
bumped in chosen layers (``use_more_bits``: the first and last eighth and every third layer between);
norms, biases, the MoE router and position tables kept at f32; a type whose block does not divide a row
falls back (Q4_K -> Q5_0, Q6_K -> Q8_0, ...). Files quantised without an importance matrix are assumed.

Other formats quantise the linear layers of the transformer blocks and keep the token table and the LM
head in 16-bit (their published recipes): GPTQ/AWQ int4 (group 128: a packed 4-bit code per weight, an
fp16 scale and a 4-bit zero per group and output column; GPTQ adds an int32 ``g_idx`` per input column),
bitsandbytes NF4 with double quantisation (Dettmers et al. 2023, QLoRA, arXiv:2305.14314 sec. 3: 4-bit codes,
one absmax per 64 weights quantised to 8 bits, an fp32 second-level scale per 256 of those), OCP MXFP4
(OCP Microscaling Formats v1.0 sec. 5: 32 FP4 E2M1 elements share one 8-bit E8M0 scale; gpt-oss quantises
only the MoE experts), NVFP4 (NVIDIA, "Introducing NVFP4": 16 FP4 elements share an FP8 E4M3 scale, plus an
fp32 scale per tensor). The generic ``int8``/``int4``/``fp8`` (gpt-fast style, seed 001) quantise every matrix
but the embedding tables, LM head included, with ``scale_bytes`` per ``group_size`` weights.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from llmcalc.core.dtypes import DTYPE_BYTES
from llmcalc.errors import InputError

# GGML storage types: (weights per block, bytes per block), ggml-common.h / gguf-py GGML_QUANT_SIZES.
GGML_TYPES: dict[str, tuple[int, int]] = {
    "f32": (1, 4), "f16": (1, 2), "bf16": (1, 2),
    "q4_0": (32, 18), "q4_1": (32, 20), "q5_0": (32, 22), "q5_1": (32, 24), "q8_0": (32, 34),
    "q2_k": (256, 84), "q3_k": (256, 110), "q4_k": (256, 144), "q5_k": (256, 176), "q6_k": (256, 210),
    "iq4_nl": (32, 18), "iq4_xs": (256, 136), "mxfp4": (32, 17),
}
# Recipe (llama.cpp ftype) -> its default tensor type (llama_ftype_get_default_type).
GGUF_RECIPES = {"q8_0": "q8_0", "q6_k": "q6_k", "q5_k_m": "q5_k", "q5_k_s": "q5_k", "q4_k_m": "q4_k",
                "q4_k_s": "q4_k", "q4_0": "q4_0", "q3_k_m": "q3_k", "q2_k": "q2_k", "iq4_xs": "iq4_xs"}
# A row whose length the block does not divide falls back (llama-quant.cpp tensor_type_fallback).
GGUF_FALLBACK = {"iq4_xs": "iq4_nl", "q2_k": "q4_0", "q3_k": "q4_0", "q4_k": "q5_0", "q5_k": "q5_1",
                 "q6_k": "q8_0"}

PLAIN = ("fp32", "bf16", "fp16")
GENERIC = ("fp8", "int8", "int4")        # gpt-fast style weight-only quantisation, scales set by flags
NAMED = ("gptq-int4", "awq-int4", "nf4", "mxfp4", "nvfp4")
WEIGHT_FORMATS = PLAIN + GENERIC + tuple(GGUF_RECIPES) + NAMED
GROUPED = GENERIC + ("gptq-int4", "awq-int4")   # formats that take --weight-group-size
SCALED = GENERIC                                  # formats that take --scale-bytes
DEFAULT_SCALE_BYTES = 2.0                         # one fp16 scale per group (dtypes.py)


class Storage(NamedTuple):   # a NamedTuple: built in a fraction of a frozen dataclass's import time
    """``block`` weights in ``block_bytes`` bytes, plus ``tensor_bytes`` per matrix and ``col_bytes`` per
    input column (GPTQ's g_idx)."""

    name: str
    block: int
    block_bytes: float
    tensor_bytes: float = 0.0
    col_bytes: float = 0.0

    @property
    def bits(self) -> float:
        return 8 * self.block_bytes / self.block


def _ggml(name: str) -> Storage:
    k, b = GGML_TYPES[name]
    return Storage(name, k, b)


def _plain(name: str) -> Storage:
    return Storage(name, 1, DTYPE_BYTES[name])


F32, B16 = _ggml("f32"), Storage("16-bit", 1, 2.0)
GPTQ_AWQ_GROUP = 128
# NF4 with double quantisation (QLoRA sec. 3): 0.5 B code + 1 B absmax / 64 + 4 B fp32 / (64·256); per
# tensor the 16-entry code book and the 256-entry 8-bit-absmax code book (fp32) and its offset.
NF4 = Storage("nf4", 64 * 256, 64 * 256 / 2 + 256 + 4, tensor_bytes=16 * 4 + 256 * 4 + 4)
# OCP MX v1.0: 32 E2M1 codes (16 B) + one E8M0 scale (1 B).
MXFP4 = Storage("mxfp4", 32, 17)
# NVFP4: 16 E2M1 codes (8 B) + one E4M3 scale (1 B); fp32 weight_scale_2 and input_scale per tensor.
NVFP4 = Storage("nvfp4", 16, 9, tensor_bytes=8)


def _grouped(fmt: str, group_size: int, scale_bytes: float) -> Storage:
    """A code per weight and ``scale_bytes`` per ``group_size`` weights (seed 001: INT4 with group scales)."""
    if fmt in ("gptq-int4", "awq-int4"):
        g = group_size or GPTQ_AWQ_GROUP
        # packed int32 qweight (4 bits), fp16 scales and 4-bit packed qzeros per (group, output column)
        return Storage(fmt, g, g / 2 + 2 + 0.5, col_bytes=4.0 if fmt == "gptq-int4" else 0.0)
    code = DTYPE_BYTES[fmt]
    if group_size:
        return Storage(fmt, group_size, group_size * code + scale_bytes)
    return Storage(fmt, 1, code)


class Matrix(NamedTuple):   # a NamedTuple: built in a fraction of a frozen dataclass's import time
    """One weight matrix kind of one layer (``layer`` -1: model-level), ``copies`` of it (routed experts).
    ``cols`` is the input width, the row length that blocks run along (ggml's ne[0])."""

    kind: str
    layer: int
    cols: int
    rows: int
    copies: int = 1

    @property
    def params(self) -> int:
        return self.cols * self.rows * self.copies


EXPERT_KINDS = ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps")
EMBEDDING_KINDS = ("token_embd", "pos_embd")


# GGUF tensor names of core/geometry.py's module kinds, by block
GGUF_NAMES = {"attention": {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output", "q_a": "attn_q_a",
                            "q_b": "attn_q_b", "kv_a": "attn_kv_a_mqa", "kv_b": "attn_kv_b"},
              "mlp": "ffn_{}", "experts": "ffn_{}_exps", "shared": "ffn_{}_shexp", "router": "ffn_gate_inp"}


def _gguf_name(block: str, name: str) -> str:
    names = GGUF_NAMES[block]
    return names[name] if isinstance(names, dict) else names.format(name)


def weight_matrices(spec) -> tuple[Matrix, ...]:
    """Every weight matrix of the model, by kind and layer: core/geometry.py's linear modules under their GGUF
    tensor names (attn_q/k/v/output, ffn_gate/up/down, _exps for routed experts, _shexp for shared ones,
    ffn_gate_inp the router; MLA: attn_q_a/q_b, attn_kv_a_mqa, attn_kv_b), plus the embedding tables."""
    from llmcalc.core.geometry import linear_modules

    H, L = spec.hidden, spec.layers
    out: list[Matrix] = [Matrix("token_embd", -1, H, spec.vocab)]
    if spec.position == "learned":
        out.append(Matrix("pos_embd", -1, H, spec.max_seq))
    first_moe = L - spec.moe_layers
    mods = [m for m in linear_modules(spec) if m.block != "lm_head"]
    moe_blocks = ("router", "experts", "shared")
    for i in range(L):
        for m in mods:
            if (m.block in moe_blocks) != (i >= first_moe) and m.block != "attention":
                continue
            out.append(Matrix(_gguf_name(m.block, m.name), i, m.d_in, m.d_out, m.per_layer))
    if not spec.tie_embeddings:
        out.append(Matrix("output", -1, H, spec.vocab))
    return tuple(out)


def check_format(fmt: str) -> str:
    """The canonical name of a weight format, or an InputError naming the choices."""
    f = str(fmt).strip().lower()
    if f.startswith(("gptq", "awq")):
        f = f.replace("_", "-")
    if f not in WEIGHT_FORMATS:
        raise InputError(f"unknown weight format {fmt!r}; choose one of {', '.join(WEIGHT_FORMATS)}")
    return f


def check_overrides(fmt: str, group_size=0, scale_bytes=None) -> None:
    """Group size applies to grouped formats, scale bytes to the generic ones; named block formats fix both."""
    fmt = check_format(fmt)
    if group_size and fmt not in GROUPED:
        raise InputError(f"a weight group size applies to {', '.join(GROUPED)}, not {fmt} "
                         "(its blocks are fixed by the format)")
    if scale_bytes is not None and scale_bytes != DEFAULT_SCALE_BYTES and fmt not in SCALED:
        raise InputError(f"scale bytes per group apply to {', '.join(SCALED)}, not {fmt} "
                         "(its scales are fixed by the format)")


def main_storage(fmt: str, group_size: int = 0, scale_bytes: float = DEFAULT_SCALE_BYTES) -> Storage:
    """The storage of the bulk of the weights in ``fmt`` (the recipe's default type)."""
    fmt = check_format(fmt)
    if fmt in PLAIN:
        return _plain(fmt)
    if fmt in GROUPED:
        return _grouped(fmt, group_size, scale_bytes)
    if fmt in GGUF_RECIPES:
        return _ggml(GGUF_RECIPES[fmt])
    return {"nf4": NF4, "mxfp4": MXFP4, "nvfp4": NVFP4}[fmt]


def bits_per_weight(fmt: str, group_size: int = 0, scale_bytes: float = DEFAULT_SCALE_BYTES) -> float:
    """Bits per weight of the format's main storage type, scales included (Q4_K 4.5, Q6_K 6.5625, ...)."""
    return main_storage(fmt, group_size, scale_bytes).bits


def _use_more_bits(i: int, n: int) -> bool:
    # llama-quant.cpp: the first and last eighth of the layers, and every third layer between
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _gguf_type(recipe: str, m: Matrix, spec) -> str:
    """The GGML type llama.cpp's recipe gives matrix ``m`` (llama_tensor_get_type_impl, ftypes above)."""
    t = GGUF_RECIPES[recipe]
    L = spec.layers
    gqa = spec.heads // spec.kv_heads if not spec.mla else 1
    n_expert = spec.moe.experts if spec.moe else 0
    is_70b = L == 80 and not spec.moe           # llama.cpp's LLM_TYPE_70B: 80-layer Llama/Qwen2 models
    k = m.kind
    if k == "output" or (k == "token_embd" and spec.tie_embeddings):
        if m.cols % GGML_TYPES[t][0]:
            t = "q8_0"
        elif t != "q8_0":
            t = "q6_k"
    elif k == "token_embd":
        pass
    elif k in ("attn_v", "attn_kv_b"):
        i = m.layer
        if recipe == "q2_k":
            t = "q4_k" if gqa >= 4 else "q3_k"
        elif recipe == "q3_k_m":
            t = "q5_k" if i < 2 else "q4_k"
        elif recipe == "iq4_xs" and gqa >= 4:
            t = "q5_k"
        elif recipe in ("q4_k_m", "q5_k_m") and _use_more_bits(i, L):
            t = "q6_k"
        elif recipe == "q4_k_s" and i < 4:
            t = "q5_k"
        if is_70b and t in ("q3_k", "q4_k"):
            t = "q5_k"
        if n_expert == 8:
            t = "q8_0"
    elif k == "attn_k":
        if n_expert == 8:
            t = "q8_0"
    elif k.startswith("ffn_down"):
        i = m.layer
        if recipe == "q2_k":
            t = "q3_k"
        elif recipe == "q3_k_m":
            t = "q5_k" if i < L // 16 else "q4_k"
        elif recipe == "q4_k_m":
            if _use_more_bits(i, L):
                t = "q6_k"
        elif recipe == "iq4_xs" and i < L // 8:      # without an importance matrix
            t = "q5_k"
        elif recipe == "q5_k_m" and _use_more_bits(i, L):
            t = "q6_k"
        elif recipe == "q4_k_s" and i < L // 8:
            t = "q5_k"
    elif k == "attn_output":
        if n_expert == 8:
            if recipe in ("q2_k", "q3_k_m", "q4_k_s", "q4_k_m", "iq4_xs"):
                t = "q5_k"
        elif recipe == "q2_k":
            t = "q3_k"
        elif recipe == "q3_k_m":
            t = "q4_k"
    if m.cols % GGML_TYPES[t][0]:
        t = GGUF_FALLBACK.get(t, "f16")
        if m.cols % GGML_TYPES[t][0]:
            t = "f16"
    return t


# Module names a config may list as not quantised (Hugging Face ``modules_to_not_convert`` and the like)
# -> the matrix kinds they cover.
_MODULE_KINDS = {
    "lm_head": ("output",), "embed_tokens": ("token_embd",), "wte": ("token_embd",), "wpe": ("pos_embd",),
    "q_proj": ("attn_q", "attn_q_a", "attn_q_b"), "k_proj": ("attn_k",), "v_proj": ("attn_v",),
    "o_proj": ("attn_output",), "gate_proj": ("ffn_gate", "ffn_gate_shexp"), "up_proj": ("ffn_up", "ffn_up_shexp"),
    "down_proj": ("ffn_down", "ffn_down_shexp"), "router": ("ffn_gate_inp",), "gate": ("ffn_gate_inp",),
    "experts": EXPERT_KINDS, "shared_expert": ("ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"),
    "shared_experts": ("ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"),
}
_ATTENTION = ("attn_q", "attn_k", "attn_v", "attn_output", "attn_q_a", "attn_q_b", "attn_kv_a_mqa", "attn_kv_b")
_FFN = ("ffn_gate", "ffn_up", "ffn_down", "ffn_gate_inp") + EXPERT_KINDS + _MODULE_KINDS["shared_experts"]
_MODULE_KINDS.update({"self_attn": _ATTENTION, "attn": _ATTENTION, "attention": _ATTENTION, "mlp": _FFN,
                      "block_sparse_moe": _FFN, "feed_forward": _FFN})


def kept_kinds(modules) -> frozenset[tuple[str, int | None]]:
    """(matrix kind, layer or None for every layer) covered by a list of module names left unquantised
    (``lm_head``, ``model.layers.*.self_attn``, ``model.layers.3.mlp.down_proj``): the last dotted component
    names the kind, a ``layers.N`` component the layer."""
    import re

    kept: set[tuple[str, int | None]] = set()
    for name in modules or ():
        text = str(name).strip().rstrip(".*")
        layer = re.search(r"layers\.(\d+)(\.|$)", text)
        for kind in _MODULE_KINDS.get(text.split(".")[-1], ()):
            kept.add((kind, int(layer.group(1)) if layer else None))
    return frozenset(kept)


def _storage_of(fmt: str, m: Matrix, spec, main: Storage, keep: frozenset) -> Storage:
    """The storage format ``fmt`` gives matrix ``m``: the one rule of which tensors a format keeps at
    another type (quantised formats keep embedding tables in 16-bit; GGUF recipes per llama.cpp)."""
    if fmt in PLAIN:
        return main
    if fmt in GGUF_RECIPES:
        if m.kind == "pos_embd" or m.kind == "ffn_gate_inp":
            return F32
        return _ggml(_gguf_type(fmt, m, spec))
    if m.kind in EMBEDDING_KINDS or (m.kind, None) in keep or (m.kind, m.layer) in keep:
        return B16
    if fmt in GENERIC:                      # gpt-fast: every Linear, the LM head and router included
        return main
    if m.kind in ("output", "ffn_gate_inp"):
        return B16
    if fmt == "mxfp4" and spec.moe and m.kind not in EXPERT_KINDS:
        return B16                          # gpt-oss: only the MoE experts are MXFP4
    return main


def matrix_bytes(s: Storage, m: Matrix) -> float:
    """Bytes of matrix ``m`` (all its copies) stored as ``s``."""
    return m.copies * (m.cols * m.rows * s.block_bytes / s.block + s.tensor_bytes + s.col_bytes * m.cols)


def matrix_storage(spec, fmt: str = "bf16", group_size=0, scale_bytes=None, *, keep=()) -> list:
    """[(Matrix, Storage)]: the storage type ``fmt`` gives each weight matrix of ``spec``."""
    group_size, keep = _checkpoint_defaults(spec, fmt, group_size, keep)
    fmt, gs, sb, kept = _key(fmt, group_size, scale_bytes, keep)
    main = main_storage(fmt, gs, sb)
    return [(m, _storage_of(fmt, m, spec, main, kept)) for m in weight_matrices(spec)]


@lru_cache(maxsize=256)
def _parts(spec, fmt: str, group_size: int, scale_bytes: float, keep: frozenset) -> dict:
    from llmcalc.core.params import total_params

    main = main_storage(fmt, group_size, scale_bytes)
    by_type: dict[str, list[float]] = {}
    gathered = experts = 0.0
    matrix_params = 0
    for m in weight_matrices(spec):
        s = _storage_of(fmt, m, spec, main, keep)
        b = matrix_bytes(s, m)
        slot = by_type.setdefault(s.name, [0, 0.0])
        slot[0] += m.params
        slot[1] += b
        matrix_params += m.params
        if m.kind in EMBEDDING_KINDS and not (m.kind == "token_embd" and spec.tie_embeddings):
            gathered += b
        if m.kind in EXPERT_KINDS:
            experts += b
    vectors = total_params(spec) - matrix_params          # norms and biases
    vec = F32 if fmt in GGUF_RECIPES else main if fmt in PLAIN else B16
    slot = by_type.setdefault(vec.name, [0, 0.0])
    slot[0] += vectors
    slot[1] += vectors * vec.block_bytes
    total = sum(v[1] for v in by_type.values())
    if fmt in PLAIN:                                       # every parameter at the dtype: P·p exactly
        total = total_params(spec) * main.block_bytes
    n_experts = spec.moe.experts * spec.moe_layers if spec.moe else 0
    return {"total": total, "gathered": gathered, "expert": experts / n_experts if n_experts else 0.0,
            "by_type": {k: (int(p), b) for k, (p, b) in by_type.items()}, "main": main}


def _key(fmt, group_size, scale_bytes, keep):
    fmt = check_format(fmt)
    gs = int(group_size or 0)
    sb = DEFAULT_SCALE_BYTES if scale_bytes is None else float(scale_bytes)
    return fmt, gs, sb, kept_kinds(keep)


def _checkpoint_defaults(spec, fmt: str, group_size, keep):
    """A spec read from a quantised checkpoint (``weight_format``, ``weight_group_size`` and
    ``unquantised_modules`` from its quantization_config) supplies the group size and the modules left
    unquantised when the format asked for is the checkpoint's own."""
    if fmt and check_format(fmt) == getattr(spec, "weight_format", None):
        if not group_size and check_format(fmt) in GROUPED:
            group_size = getattr(spec, "weight_group_size", 0) or 0
        keep = tuple(keep or ()) + tuple(getattr(spec, "unquantised_modules", ()) or ())
    return group_size, keep


def weight_parts(spec, fmt: str = "bf16", group_size=0, scale_bytes=None, *, keep=()) -> dict:
    """Weights in ``fmt``: ``total`` bytes; ``gathered``, the embedding tables read one row per token (not
    streamed in decode; a tied token table is the LM head and is streamed); ``expert``, the bytes of one
    routed expert (mean over MoE layers); ``by_type``, storage type -> (parameters, bytes); ``main``, the
    format's main Storage. ``keep``: module names left unquantised (from a config)."""
    group_size, keep = _checkpoint_defaults(spec, fmt, group_size, keep)
    return _parts(spec, *_key(fmt, group_size, scale_bytes, keep))


def weight_bytes(spec, fmt: str = "bf16", group_size=0, scale_bytes=None, *, keep=()) -> float:
    """Bytes of every weight of ``spec`` stored in ``fmt`` (see the module docstring for each layout)."""
    return weight_parts(spec, fmt, group_size=group_size, scale_bytes=scale_bytes, keep=keep)["total"]


def mbu_class(fmt: str) -> str:
    """Which measured decode-bandwidth class a format's kernels fall in (serve.DEFAULT_MBU keys): 16-bit
    formats stream; 8-bit and 4-bit ones dequantise (gpt-fast's int8 and int4 rows)."""
    fmt = check_format(fmt)
    if fmt in PLAIN or fmt in GENERIC:
        return fmt
    return "int8" if main_storage(fmt).bits >= 8 else "int4"
