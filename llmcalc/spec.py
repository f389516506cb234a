"""Typed, validated, immutable specs of a model architecture and of an accelerator.

Every field is explicit: a preset states ``head_dim``, ``kv_heads`` and ``tie_embeddings`` and they are
never silently derived over (STYLE.md #8). Only when an inline/HF input omits ``head_dim`` is it derived
as ``hidden / heads``, and then ``heads`` must divide ``hidden``.

Units: bytes, bytes/s, FLOP/s, all plain SI base units (no GB-vs-GiB ambiguity inside the core).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from llmcalc.errors import InputError, printable
from llmcalc.units import parse_count, parse_quantity

MLP_KINDS = ("gated", "plain")
NORM_KINDS = ("rmsnorm", "layernorm")
POSITION_KINDS = ("rope", "learned", "alibi", "none")
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")


@dataclass(frozen=True, slots=True)
class MoESpec:
    """Mixture-of-experts MLP (Mixtral; DeepSeek-V3 with shared experts and leading dense layers)."""

    experts: int                      # routed experts per MoE layer
    top_k: int                        # routed experts active per token
    expert_ffn: int                   # intermediate size of one routed expert
    shared_experts: int = 0           # always-on experts (DeepSeekMoE)
    shared_expert_ffn: int = 0        # total intermediate size of the shared expert block; 0 -> shared_experts*expert_ffn
    dense_layers: int = 0             # layers with a dense MLP of size ModelSpec.ffn (DeepSeek: the leading ones;
                                      # Llama 4 Maverick, Qwen-MoE mlp_only_layers: interleaved; only the count matters)
    router_bias: bool = False
    shared_gate: bool = False         # a sigmoid gate Linear(H, 1) on the shared expert (Qwen2-MoE)

    @property
    def shared_ffn(self) -> int:
        return self.shared_expert_ffn or self.shared_experts * self.expert_ffn


@dataclass(frozen=True, slots=True)
class MLASpec:
    """Multi-head latent attention (DeepSeek-V2/V3, arXiv:2405.04434 sec. 2.1)."""

    kv_lora_rank: int                 # d_c, the cached latent
    qk_rope_head_dim: int             # d_h^R, the decoupled rope key (cached, shared by heads)
    qk_nope_head_dim: int
    v_head_dim: int
    q_lora_rank: int = 0              # d_c'; 0 = queries projected directly from the hidden state


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A decoder-only transformer, as far as FLOPs and bytes care."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    mlp: str = "gated"                # gated: SwiGLU/GeGLU, three matrices; plain: two
    activation: str = "silu"
    norm: str = "rmsnorm"
    norm_bias: bool = False           # LayerNorm with beta
    norms_per_layer: int = 2          # Gemma-2 has 4 (pre and post norms)
    qk_norm_params: int = 0           # per-layer parameters of per-head query/key norms (Qwen3: 2·head_dim)
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    lm_head_bias: bool = False
    tie_embeddings: bool = False
    position: str = "rope"
    max_seq: int = 4096               # context length; learned position tables have this many rows
    sliding_window: int = 0           # 0: none
    sliding_window_layers: int = -1   # layers that use the window; -1: all layers (when a window is set)
    parallel_attn: bool = False       # attention and MLP read the same input (GPT-J, Falcon)
    moe: MoESpec | None = None
    mla: MLASpec | None = None
    family: str = ""                  # Hugging Face model_type, where there is one
    source: str = ""
    published_params: int = 0         # total parameters as published (0: unknown)
    aliases: tuple[str, ...] = ()
    # --- added for issue 11 (Hugging Face configs of more families); every default leaves older specs unchanged
    position_offset: int = 0          # extra rows of a learned position table (OPT: max_seq + 2)
    embedding_norm: bool = False      # a norm right after the token embedding (BLOOM's word_embeddings_layernorm)
    attention_sinks: bool = False     # one learned sink logit per head and layer (gpt-oss)
    vision_params: int = 0            # parameters of a multimodal model's vision tower and projector (not in P)
    weight_format: str = ""           # default weight format read from quantization_config (gptq-int4, nf4, ...)
    weight_bits: int = 0              # bits per quantised weight, as the quantization_config states
    weight_group_size: int = 0        # quantisation group size (0: per channel / not stated)
    unquantised_modules: tuple[str, ...] = ()   # module names the quantization_config leaves in 16-bit
    norm_affine: bool = True          # False: norms without any weights (OLMo-1's non-parametric LayerNorm)
    notes: tuple[str, ...] = ()       # what was read or assumed when the spec came from a config.json

    @property
    def q_dim(self) -> int:
        """Width of the concatenated query heads (heads · head_dim; MLA: heads · (nope + rope))."""
        if self.mla:
            return self.heads * (self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim)
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of K (and of V) for one token: kv_heads · head_dim."""
        return self.kv_heads * self.head_dim

    @property
    def attn_out_dim(self) -> int:
        """Width entering the output projection (heads · head_dim; MLA: heads · v_head_dim)."""
        if self.mla:
            return self.heads * self.mla.v_head_dim
        return self.heads * self.head_dim

    @property
    def mlp_matrices(self) -> int:
        return 3 if self.mlp == "gated" else 2

    @property
    def window_layers(self) -> int:
        """Number of layers whose attention (and cache) is limited to ``sliding_window`` tokens."""
        if not self.sliding_window:
            return 0
        return self.layers if self.sliding_window_layers < 0 else self.sliding_window_layers

    @property
    def moe_layers(self) -> int:
        return self.layers - self.moe.dense_layers if self.moe else 0

    @property
    def dense_mlp_layers(self) -> int:
        return self.layers - self.moe_layers

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("aliases", "unquantised_modules", "notes"):
            d[key] = list(getattr(self, key))
        return d


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """An accelerator. Peak rates are dense (never the 2:4-sparsity datasheet figure)."""

    name: str
    memory_bytes: float
    hbm_bytes_per_s: float
    flops_per_s: Mapping[str, float]          # dtype -> dense peak FLOP/s (int8/int4: OP/s)
    nvlink_bytes_per_s_unidir: float = 0.0    # per GPU, one direction, to its node peers
    pcie_bytes_per_s_unidir: float = 0.0
    net_bytes_per_s_unidir: float = 0.0       # per GPU, one direction, to other nodes
    gpus_per_node: int = 8
    l2_bytes: float = 0.0
    l2_bytes_per_s: float = 0.0
    sram_bytes_per_sm: float = 0.0            # shared memory / L1 per SM (or per core)
    sm_count: int = 0
    sram_bytes_per_s: float = 0.0             # aggregate on-chip SRAM bandwidth
    register_bytes_per_sm: float = 0.0
    board_power_watts: float = 0.0            # TDP / TBP / module power, as the vendor states it
    price_usd_per_hour: float = 0.0           # dated reference on-demand price per GPU-hour (0: none published)
    price_source: str = ""                    # provider and offer the price is from
    price_date: str = ""                      # when it was read, YYYY-MM or YYYY-MM-DD
    nics_per_node: int = 0                    # scale-out NICs in a node (DGX H100/B200: 8, rail-optimised)
    nic_bytes_per_s_unidir: float = 0.0       # one NIC, one direction (net_bytes_per_s_unidir stays the per-GPU share)
    memory_share: float = 1.0                 # share of memory_bytes the accelerator may use (Apple: wired limit)
    unified_memory: bool = False              # one memory shared by CPU and accelerator (Apple silicon)
    vendor: str = ""
    source: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def device_memory_bytes(self) -> float:
        """Memory the accelerator may hold tensors in: memory_share · memory_bytes (discrete GPUs: all of it)."""
        return self.memory_share * self.memory_bytes

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``; an error naming the dtypes this chip has if it lacks it."""
        value = self.flops_per_s.get(dtype)
        if not value:
            have = ", ".join(k for k, v in self.flops_per_s.items() if v)
            raise InputError(f"{self.name} has no {dtype} peak in its preset; it has: {have}")
        return float(value)

    @property
    def half_dtype(self) -> str:
        """The 16-bit matmul dtype the chip runs: bf16 where it has a bf16 peak, else fp16 (Volta and Turing,
        e.g. V100 and T4, have fp16 tensor cores only)."""
        return "bf16" if self.flops_per_s.get("bf16") else "fp16"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["flops_per_s"] = dict(self.flops_per_s)
        d["aliases"] = list(self.aliases)
        return d


# ----------------------------------------------------------------------------------------------
# Validation: from a plain mapping (YAML, config.json, flags) to a spec, with errors naming the field


def _check_int(where: str, key: str, value: Any, minimum: int = 1) -> int:
    value = _numeric_text(value)
    if isinstance(value, bool) or value is None:
        raise InputError(f"{where}: field '{key}' must be a whole number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise InputError(f"{where}: field '{key}' must be a whole number, got {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise InputError(f"{where}: field '{key}' must be a whole number, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise InputError(f"{where}: field '{key}' must be at least {minimum}, got {value}")
    if value > 10**15:
        raise InputError(f"{where}: field '{key}' is implausibly large ({value})")
    return value


def _numeric_text(value: Any) -> Any:
    """YAML 1.1 reads ``300e9`` (no dot, no exponent sign) as text; accept such numbers anyway, and counts
    with the command line's suffixes (``128Ki``, ``7B``)."""
    if isinstance(value, str):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            pass
        try:
            return parse_count(value)
        except InputError:
            return value
    return value


def _quantity_kind(key: str) -> str | None:
    """The kind of quantity a field holds, read from the unit in its name (STYLE.md #4)."""
    if key.startswith("flops_per_s"):
        return "flop/s"
    if "_bytes_per_s" in key and not key.endswith("_per_sm"):
        return "byte/s"
    if key.endswith(("_bytes", "_bytes_per_sm")):
        return "byte"
    if key.endswith("_watts"):
        return "W"
    return None


def _check_float(where: str, key: str, value: Any, minimum: float = 0.0) -> float:
    kind = _quantity_kind(key)
    if kind and isinstance(value, str):  # "48GiB", "864GB/s", "989TFLOPS", "700W", as on the command line
        try:
            value = parse_quantity(value, kind, f"field '{key}'")
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    value = _numeric_text(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: field '{key}' must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < minimum:
        raise InputError(f"{where}: field '{key}' must be a finite number >= {minimum}, got {value!r}")
    return value


def _check_bool(where: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{where}: field '{key}' must be true or false, got {value!r}")
    return value


def _check_str(where: str, key: str, value: Any, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where}: field '{key}' must be text, got {value!r}")
    if choices is not None and value not in choices:
        raise InputError(f"{where}: field '{key}' must be one of {', '.join(choices)}; got {value!r}")
    return value


def _fields_of(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _coerce(cls, where: str, data: Mapping[str, Any], nested: dict[str, Any]) -> dict[str, Any]:
    """Type-check ``data`` against ``cls``'s annotations; unknown keys are an error (typos matter)."""
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    fields = _fields_of(cls)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or key not in fields:
            known = ", ".join(sorted(fields))
            raise InputError(f"{where}: unknown field {key!r}; known fields: {known}")
        if key in nested:
            out[key] = None if value is None else nested[key](f"{where}.{key}", value)
            continue
        f = fields[key]
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if kind == "int":
            minimum = -1 if key == "sliding_window_layers" else 0
            out[key] = _check_int(where, key, value, minimum)
        elif kind == "float":
            out[key] = _check_float(where, key, value)
        elif kind == "bool":
            out[key] = _check_bool(where, key, value)
        elif kind == "str":
            out[key] = printable(_check_str(where, key, value if value is not None else ""))  # no terminal escapes
        elif kind.startswith("tuple"):
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not all(isinstance(a, str) for a in items):
                raise InputError(f"{where}: field '{key}' must be a list of names")
            out[key] = tuple(printable(a.lower() if key == "aliases" else a) for a in items)
        elif kind.startswith("Mapping"):
            if not isinstance(value, Mapping):
                raise InputError(f"{where}: field '{key}' must be a mapping of dtype to FLOP/s")
            rates = {}
            for dt, rate in value.items():
                if dt not in DTYPES:
                    raise InputError(f"{where}: '{key}' has unknown dtype {dt!r}; known: {', '.join(DTYPES)}")
                rates[dt] = 0.0 if rate is None else _check_float(where, f"{key}.{dt}", rate)
            out[key] = rates
        else:  # pragma: no cover - a field type added without a checker is a bug
            raise TypeError(f"no checker for field {key} of type {kind}")
    return out


def moe_from_mapping(where: str, data: Mapping[str, Any]) -> MoESpec:
    moe = MoESpec(**_require(where, _coerce(MoESpec, where, data, {}), MoESpec))
    for key in ("experts", "top_k", "expert_ffn"):
        if getattr(moe, key) < 1:
            raise InputError(f"{where}: field '{key}' must be at least 1")
    if moe.top_k > moe.experts:
        raise InputError(f"{where}: top_k ({moe.top_k}) cannot exceed experts ({moe.experts})")
    return moe


def mla_from_mapping(where: str, data: Mapping[str, Any]) -> MLASpec:
    mla = MLASpec(**_require(where, _coerce(MLASpec, where, data, {}), MLASpec))
    for key in ("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
        if getattr(mla, key) < 1:
            raise InputError(f"{where}: field '{key}' must be at least 1")
    return mla


def model_from_mapping(data: Mapping[str, Any], where: str = "model") -> ModelSpec:
    """Validate a mapping into a ModelSpec. ``head_dim`` is derived only when absent."""
    values = _coerce(ModelSpec, where, dict(data) if isinstance(data, Mapping) else data,
                     {"moe": moe_from_mapping, "mla": mla_from_mapping})
    if "head_dim" not in values and "heads" in values and "hidden" in values:
        if values["heads"] and values["hidden"] % values["heads"]:
            raise InputError(
                f"{where}: heads ({values['heads']}) does not divide hidden ({values['hidden']}); "
                "give --head-dim explicitly or fix --heads")
        values["head_dim"] = values["hidden"] // max(values["heads"], 1)
    if "kv_heads" not in values and "heads" in values:
        values["kv_heads"] = values["heads"]
    values.setdefault("name", "custom")
    spec = ModelSpec(**_require(where, values, ModelSpec))
    return validate_model(spec, where)


def _require(where: str, values: dict[str, Any], cls) -> dict[str, Any]:
    fields = _fields_of(cls)
    missing = [n for n, f in fields.items()
               if f.default is dataclasses.MISSING and n not in values]
    if "heads" in missing:  # kv_heads and head_dim follow from heads (and hidden): ask for heads only
        missing = [m for m in missing if m not in ("kv_heads", "head_dim")]
    if missing:
        flags = ", ".join("--" + m.replace("_", "-") for m in missing)
        raise InputError(f"{where}: missing {', '.join(missing)}; give a preset with -m or the flags {flags}")
    return values


def validate_model(spec: ModelSpec, where: str = "model") -> ModelSpec:
    """Cross-field checks. Returns the spec unchanged when it is consistent."""
    for key in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "max_seq"):
        if getattr(spec, key) < 1:
            raise InputError(f"{where}: {key} must be at least 1, got {getattr(spec, key)}")
    if spec.heads % spec.kv_heads:
        raise InputError(f"{where}: kv_heads ({spec.kv_heads}) must divide heads ({spec.heads})")
    _check_str(where, "mlp", spec.mlp, MLP_KINDS)
    _check_str(where, "norm", spec.norm, NORM_KINDS)
    _check_str(where, "position", spec.position, POSITION_KINDS)
    if spec.sliding_window_layers > spec.layers:
        raise InputError(f"{where}: sliding_window_layers ({spec.sliding_window_layers}) exceeds layers ({spec.layers})")
    if spec.moe and (spec.moe.experts < 1 or spec.moe.top_k < 1 or spec.moe.expert_ffn < 1):
        raise InputError(f"{where}: moe experts ({spec.moe.experts}), top_k ({spec.moe.top_k}) and expert_ffn "
                         f"({spec.moe.expert_ffn}) must each be at least 1 (num_local_experts / n_routed_experts, "
                         "num_experts_per_tok, moe_intermediate_size in a config.json)")
    if spec.moe and spec.moe.top_k > spec.moe.experts:
        raise InputError(f"{where}: moe top_k ({spec.moe.top_k}, num_experts_per_tok in a config.json) exceeds "
                         f"the {spec.moe.experts} routed experts; a token cannot use more experts than exist")
    if spec.moe and spec.moe.dense_layers > spec.layers:
        raise InputError(f"{where}: moe.dense_layers ({spec.moe.dense_layers}) exceeds layers ({spec.layers})")
    return spec


def gpu_from_mapping(data: Mapping[str, Any], where: str = "gpu") -> GpuSpec:
    values = _coerce(GpuSpec, where, data, {})
    values = _require(where, values, GpuSpec)
    gpu = GpuSpec(**values)
    if gpu.memory_bytes <= 0 or gpu.hbm_bytes_per_s <= 0:
        raise InputError(f"{where}: memory_bytes and hbm_bytes_per_s must be positive")
    if not any(gpu.flops_per_s.values()):
        raise InputError(f"{where}: flops_per_s needs at least one dtype with a positive peak")
    if not 0 < gpu.memory_share <= 1:
        raise InputError(f"{where}: field 'memory_share' is the share of memory the accelerator may use, "
                         f"a number in (0, 1]; got {gpu.memory_share!r}")
    if gpu.price_usd_per_hour and not (gpu.price_source and gpu.price_date):
        raise InputError(f"{where}: a price_usd_per_hour needs its price_source (provider and offer) and "
                         "price_date (YYYY-MM or YYYY-MM-DD)")
    if gpu.price_date and not _DATE_RE.match(gpu.price_date):
        raise InputError(f"{where}: field 'price_date' must be YYYY-MM or YYYY-MM-DD, got {gpu.price_date!r}")
    if gpu.nics_per_node and not gpu.nic_bytes_per_s_unidir:
        raise InputError(f"{where}: nics_per_node is set but nic_bytes_per_s_unidir (one NIC, one way) is not")
    return gpu


_DATE_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$")


def replace(spec, **changes):
    """dataclasses.replace that re-validates (used for inline flag overrides)."""
    new = dataclasses.replace(spec, **changes)
    if isinstance(new, ModelSpec):
        return validate_model(new, f"model {new.name}")
    return new


__all__ = [
    "ModelSpec", "MoESpec", "MLASpec", "GpuSpec", "model_from_mapping", "gpu_from_mapping",
    "validate_model", "replace", "DTYPES", "field",
]
