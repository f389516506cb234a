"""Reference measurements of the real thing: Hugging Face transformers models, counted with PyTorch.

Test-only. Nothing here downloads anything: configs are built from llmcalc's ``ModelSpec`` and models are
instantiated on the ``meta`` device (shapes only, no memory) or, when small, for real on the CPU.

API (see README.md for what each number means and the caveats found):

    hf_config(spec, **overrides)            -> transformers PretrainedConfig faithful to the spec
    build_meta(spec, **overrides)           -> model on the meta device, eval mode, eager attention
    build_cpu(spec, dtype=..., **overrides) -> small model for real on the CPU (same config)
    config_from_json(cfg, **overrides)      -> transformers config from a config.json dict (as the Hub ships it)
    build_from_json(cfg, device="meta", dtype=None, **overrides) -> that model (text or image-text-to-text)
    count_params(model)                     -> sum(p.numel()) over distinct parameters
    count_flops(model, batch, seq, backward=False) -> FlopCount (unpacks as (forward, backward))
    kv_cache_bytes(model, batch, seq)       -> bytes of all keys+values held by the cache after a prefill
    kv_cache_layout(model, batch, seq)      -> per-layer cache tensors (shapes, dtypes, logical/storage bytes)
    saved_activation_bytes(model, batch, seq, dtype, checkpointing=False) -> bytes saved for backward
    saved_activation_report(...)            -> the same, with every saved storage (module, op, shape, dtype)
    live_bytes_after_forward(...)           -> bytes of all storages alive after a training forward
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from llmcalc.spec import ModelSpec

# ----------------------------------------------------------------------------------------------
# Config


class UnrepresentableSpec(ValueError):
    """The spec asks for something the Hugging Face implementation of its family cannot express."""


FAMILIES = ("gpt2", "llama", "mistral", "mixtral", "qwen2", "gemma2", "falcon", "phi3", "deepseek_v3")
# spec.family values that are built with another family's HF class
FAMILY_ALIASES = {"gpt3": "gpt2", "gpt-3": "gpt2", "openai-gpt3": "gpt2"}


def resolve_family(spec: ModelSpec) -> str:
    fam = (spec.family or "").lower().replace("-", "_")
    if not fam and spec.name.lower().startswith("gpt3"):
        fam = "gpt3"
    fam = FAMILY_ALIASES.get(fam, fam)
    if fam not in FAMILIES:
        raise NotImplementedError(
            f"{spec.name}: no Hugging Face reference for family {spec.family!r} (supported: {', '.join(FAMILIES)})")
    return fam


_ACT = {  # spec activation -> (gpt2-style name, generic HF name)
    "gelu_tanh": ("gelu_new", "gelu_pytorch_tanh"),
    "gelu_new": ("gelu_new", "gelu_pytorch_tanh"),
    "gelu_pytorch_tanh": ("gelu_new", "gelu_pytorch_tanh"),
    "gelu": ("gelu", "gelu"),
    "silu": ("silu", "silu"),
    "swish": ("silu", "silu"),
    "swiglu": ("silu", "silu"),
    "geglu": ("gelu", "gelu"),
    "relu": ("relu", "relu"),
}


def _act(spec: ModelSpec, gpt2_style: bool = False) -> str:
    a = spec.activation.lower()
    if a not in _ACT:
        return a
    return _ACT[a][0 if gpt2_style else 1]


def _need(ok: bool, spec: ModelSpec, fam: str, what: str) -> None:
    if not ok:
        raise UnrepresentableSpec(f"{spec.name}: HF {fam} cannot represent {what}")


def _check_dense_rope(spec: ModelSpec, fam: str, qkv_bias: bool | None = None, o_bias: bool = False,
                      norm: str = "rmsnorm") -> None:
    _need(spec.mlp == "gated", spec, fam, f"mlp={spec.mlp} (it is gated)")
    _need(spec.norm == norm and not spec.norm_bias, spec, fam, f"norm={spec.norm}, norm_bias={spec.norm_bias}")
    _need(spec.position == "rope", spec, fam, f"position={spec.position}")
    _need(not spec.parallel_attn, spec, fam, "parallel attention")
    _need(not spec.mlp_bias or fam == "llama", spec, fam, "MLP biases")
    _need(not spec.lm_head_bias, spec, fam, "an LM-head bias")
    if qkv_bias is not None:
        _need(spec.qkv_bias == qkv_bias, spec, fam, f"qkv_bias={spec.qkv_bias} (fixed to {qkv_bias})")
    _need(spec.o_bias == o_bias, spec, fam, f"o_bias={spec.o_bias} (fixed to {o_bias})")


def hf_config(spec: ModelSpec, **overrides: Any):
    """A transformers config for ``spec.family`` whose model has exactly the spec's structure.

    ``overrides`` are passed to the config class and win (e.g. ``num_hidden_layers=2`` for a small variant; for
    GPT-2 ``num_hidden_layers`` is translated to ``n_layer``). Special keys:

    * ``attn_implementation`` (default ``"eager"``): on a real CPU the fused SDPA kernel
      (_scaled_dot_product_flash_attention_for_cpu) has no FLOP formula and attention counts 0; on meta,
      transformers 5.23's SDPA mask builder calls a data-dependent ``.all()`` and fails. Eager works on both.
    * ``experts_implementation`` (MoE only; default ``"batched_mm"``): transformers 5 defaults to
      ``grouped_mm`` which has no FLOP formula (counted 0); ``"eager"`` loops over the experts hit, which
      needs data (``nonzero``) and fails on meta; ``"batched_mm"`` gathers each token's expert weights and runs
      ``bmm`` -> counted exactly as 2·tokens·top_k·(matrix size) and works on meta.
    """
    fam = resolve_family(spec)
    overrides = dict(overrides)
    attn_impl = overrides.pop("attn_implementation", "eager")
    experts_impl = overrides.pop("experts_implementation", "batched_mm" if spec.moe else None)
    window = spec.sliding_window or None
    tie = spec.tie_embeddings
    common = dict(vocab_size=spec.vocab, tie_word_embeddings=tie, use_cache=True)

    if fam == "gpt2":
        from transformers import GPT2Config as C
        _need(spec.hidden == spec.heads * spec.head_dim and spec.kv_heads == spec.heads, spec, fam,
              "GQA or head_dim != hidden/heads")
        _need(spec.mlp == "plain" and spec.norm == "layernorm" and spec.norm_bias, spec, fam,
              "anything but a plain MLP with LayerNorm(bias)")
        _need(spec.qkv_bias and spec.o_bias and spec.mlp_bias and not spec.lm_head_bias, spec, fam,
              "other bias layouts (it has all Linear biases, no LM-head bias)")
        _need(spec.position == "learned" and not spec.parallel_attn and not window and not spec.moe, spec, fam,
              "non-learned positions, parallel attention, sliding windows or MoE")
        if "num_hidden_layers" in overrides:
            overrides["n_layer"] = overrides.pop("num_hidden_layers")
        kw = dict(n_embd=spec.hidden, n_layer=spec.layers, n_head=spec.heads, n_inner=spec.ffn,
                  n_positions=spec.max_seq, activation_function=_act(spec, gpt2_style=True), **common)
    elif fam in ("llama", "mistral", "qwen2", "phi3", "mixtral"):
        kw = dict(hidden_size=spec.hidden, intermediate_size=spec.ffn, num_hidden_layers=spec.layers,
                  num_attention_heads=spec.heads, num_key_value_heads=spec.kv_heads, hidden_act=_act(spec),
                  max_position_embeddings=spec.max_seq, **common)
        if fam == "llama":
            from transformers import LlamaConfig as C
            _check_dense_rope(spec, fam, o_bias=spec.qkv_bias)   # attention_bias covers q, k, v and o
            _need(not window, spec, fam, "a sliding window")
            kw.update(head_dim=spec.head_dim, attention_bias=spec.qkv_bias, mlp_bias=spec.mlp_bias)
        elif fam == "mistral":
            from transformers import MistralConfig as C
            _check_dense_rope(spec, fam, qkv_bias=False)
            _need(spec.window_layers in (0, spec.layers), spec, fam, "a window on only some layers")
            kw.update(head_dim=spec.head_dim, sliding_window=window)      # default would be 4096: be explicit
        elif fam == "qwen2":
            from transformers import Qwen2Config as C
            _check_dense_rope(spec, fam, qkv_bias=True)
            _need(spec.head_dim * spec.heads == spec.hidden, spec, fam, "head_dim != hidden/heads")
            kw.update(use_sliding_window=bool(window), sliding_window=window or 4096,
                      max_window_layers=spec.layers - spec.window_layers if window else spec.layers)
        elif fam == "phi3":
            from transformers import Phi3Config as C
            _check_dense_rope(spec, fam, qkv_bias=False)
            _need(spec.head_dim * spec.heads == spec.hidden, spec, fam, "head_dim != hidden/heads")
            _need(spec.window_layers in (0, spec.layers), spec, fam, "a window on only some layers")
            kw.update(sliding_window=window, original_max_position_embeddings=spec.max_seq,
                      resid_pdrop=0.0, embd_pdrop=0.0)
        else:  # mixtral
            from transformers import MixtralConfig as C
            m = spec.moe
            _check_dense_rope(spec, fam, qkv_bias=False)
            _need(m is not None and not m.shared_ffn and not m.dense_layers and not m.router_bias, spec, fam,
                  "shared experts, dense layers or a router bias")
            _need(spec.window_layers in (0, spec.layers), spec, fam, "a window on only some layers")
            kw.update(head_dim=spec.head_dim, intermediate_size=m.expert_ffn, num_local_experts=m.experts,
                      num_experts_per_tok=m.top_k, sliding_window=window)
    elif fam == "gemma2":
        from transformers import Gemma2Config as C
        _check_dense_rope(spec, fam, qkv_bias=spec.qkv_bias, o_bias=spec.qkv_bias)
        _need(spec.norms_per_layer == 4, spec, fam, f"norms_per_layer={spec.norms_per_layer} (it has 4)")
        _need(not window or spec.window_layers == (spec.layers + 1) // 2, spec, fam,
              "a window on other than every other layer (even layers slide)")
        kw = dict(hidden_size=spec.hidden, intermediate_size=spec.ffn, num_hidden_layers=spec.layers,
                  num_attention_heads=spec.heads, num_key_value_heads=spec.kv_heads, head_dim=spec.head_dim,
                  hidden_activation=_act(spec), max_position_embeddings=spec.max_seq,
                  attention_bias=spec.qkv_bias, query_pre_attn_scalar=spec.head_dim, **common)
        if window:
            kw["sliding_window"] = window
        else:
            kw.update(sliding_window=None, layer_types=["full_attention"] * overrides.get(
                "num_hidden_layers", spec.layers))
    elif fam == "falcon":
        from transformers import FalconConfig as C
        _need(spec.norm == "layernorm" and spec.norm_bias and spec.mlp == "plain", spec, fam,
              "anything but LayerNorm(bias) and a plain MLP")
        _need(spec.head_dim * spec.heads == spec.hidden, spec, fam, "head_dim != hidden/heads")
        _need(spec.qkv_bias == spec.o_bias == spec.mlp_bias and not spec.lm_head_bias, spec, fam,
              "mixed bias flags (one `bias` switch covers all Linear layers)")
        _need(spec.position in ("rope", "alibi"), spec, fam, f"position={spec.position}")
        _need(not window and not spec.moe, spec, fam, "a sliding window or MoE")
        _need(spec.norms_per_layer in (1, 2), spec, fam, f"norms_per_layer={spec.norms_per_layer}")
        if spec.kv_heads == 1:          # Falcon-7B: multi-query, one LayerNorm shared by attention and MLP
            arch = dict(new_decoder_architecture=False, multi_query=True)
        elif spec.kv_heads == spec.heads and not spec.parallel_attn:
            arch = dict(new_decoder_architecture=False, multi_query=False)
        else:                            # Falcon-40B/180B: grouped KV, two LayerNorms
            _need(spec.parallel_attn, spec, fam, "grouped KV without parallel attention")
            arch = dict(new_decoder_architecture=True, multi_query=False)
        _need(not (not spec.parallel_attn and spec.norms_per_layer != 2), spec, fam, "sequential with 1 norm")
        kw = dict(hidden_size=spec.hidden, num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                  num_kv_heads=spec.kv_heads, ffn_hidden_size=spec.ffn, parallel_attn=spec.parallel_attn,
                  num_ln_in_parallel_attn=spec.norms_per_layer if spec.parallel_attn else None,
                  bias=spec.qkv_bias, alibi=spec.position == "alibi", activation=_act(spec),
                  max_position_embeddings=spec.max_seq, **arch, **common)
    elif fam == "deepseek_v3":
        from transformers import DeepseekV3Config as C
        m, a = spec.moe, spec.mla
        _need(m is not None and a is not None, spec, fam, "a model without MoE and MLA")
        _need(spec.mlp == "gated" and spec.norm == "rmsnorm" and not spec.mlp_bias and not spec.o_bias
              and not spec.lm_head_bias and not window and not spec.parallel_attn, spec, fam,
              "biases outside q_a/kv_a, sliding windows, parallel attention")
        _need(m.shared_ffn % m.expert_ffn == 0 and not m.router_bias, spec, fam,
              "a shared-expert width that is not a multiple of expert_ffn, or a router bias")
        layers = overrides.get("num_hidden_layers", spec.layers)
        n_group = 8 if m.experts % 8 == 0 and m.experts // 8 >= 2 else 1
        kw = dict(hidden_size=spec.hidden, intermediate_size=spec.ffn, moe_intermediate_size=m.expert_ffn,
                  num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                  num_key_value_heads=spec.heads, n_shared_experts=m.shared_ffn // m.expert_ffn,
                  n_routed_experts=m.experts, num_experts_per_tok=m.top_k,
                  first_k_dense_replace=min(m.dense_layers, layers),
                  kv_lora_rank=a.kv_lora_rank, q_lora_rank=a.q_lora_rank or None,
                  qk_rope_head_dim=a.qk_rope_head_dim, qk_nope_head_dim=a.qk_nope_head_dim,
                  v_head_dim=a.v_head_dim, n_group=n_group, topk_group=min(4, n_group),
                  attention_bias=spec.qkv_bias, hidden_act=_act(spec), max_position_embeddings=spec.max_seq,
                  **common)
    else:  # pragma: no cover - resolve_family guards this
        raise NotImplementedError(fam)

    kw.update(overrides)
    if attn_impl is not None:
        kw["attn_implementation"] = attn_impl
    if experts_impl is not None:
        kw["experts_implementation"] = experts_impl
    cfg = C(**kw)
    # transformers 5 stores these on private attributes; make sure they stuck
    if attn_impl is not None:
        cfg._attn_implementation = attn_impl
    if experts_impl is not None:
        cfg._experts_implementation = experts_impl
    return cfg


# ----------------------------------------------------------------------------------------------
# Building


def _from_config(cfg, dtype: torch.dtype | None = None):
    from transformers import AutoModelForCausalLM
    kw = {}
    if cfg._attn_implementation is not None:
        kw["attn_implementation"] = cfg._attn_implementation
    if getattr(cfg, "_experts_implementation", None) is not None:
        kw["experts_implementation"] = cfg._experts_implementation
    if dtype is not None:
        kw["dtype"] = dtype
    return AutoModelForCausalLM.from_config(cfg, **kw)


def build_meta(spec: ModelSpec, dtype: torch.dtype | None = None, **overrides: Any) -> nn.Module:
    """The model on the meta device (no memory, any size), eval mode, eager attention."""
    cfg = hf_config(spec, **overrides)
    with torch.device("meta"):
        model = _from_config(cfg, dtype)
    return model.eval()


def build_cpu(spec: ModelSpec, dtype: torch.dtype = torch.float32, seed: int = 0, **overrides: Any) -> nn.Module:
    """The model for real on the CPU (only for small variants: pass num_hidden_layers / hidden overrides)."""
    cfg = hf_config(spec, **overrides)
    torch.manual_seed(seed)
    model = _from_config(cfg, dtype)
    return model.eval()


def config_from_json(cfg: dict, **overrides: Any):
    """A transformers config from a config.json dict, the way ``from_pretrained`` reads one (the class defaults
    fill what the dict omits). ``overrides`` win; eager attention, and batched_mm experts (see ``hf_config``)."""
    from transformers import AutoConfig
    kw = {k: v for k, v in cfg.items() if k != "model_type"}
    kw.update(overrides)
    conf = AutoConfig.for_model(cfg["model_type"], **kw)
    conf._attn_implementation = "eager"
    for sub in ("text_config", "vision_config"):
        if getattr(conf, sub, None) is not None:
            getattr(conf, sub)._attn_implementation = "eager"
    conf._experts_implementation = "batched_mm"
    if getattr(conf, "text_config", None) is not None:
        conf.text_config._experts_implementation = "batched_mm"
    return conf


def build_from_json(cfg: dict, device: str = "meta", dtype: torch.dtype | None = None, **overrides: Any) -> nn.Module:
    """The model of a config.json on ``device`` (meta: shapes only). Configs with a ``vision_config`` are built
    with AutoModelForImageTextToText (the whole multimodal model), the rest with AutoModelForCausalLM."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
    conf = config_from_json(cfg, **overrides)
    auto = AutoModelForImageTextToText if "vision_config" in cfg else AutoModelForCausalLM
    kw = {"attn_implementation": "eager"}
    if dtype is not None:
        kw["dtype"] = dtype
    with torch.device(device):
        torch.manual_seed(0)
        model = auto.from_config(conf, **kw)
    return model.eval()


def count_params_by_prefix(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level part of a multimodal model: {"language_model": n, "vision_tower": n, ...}."""
    out: dict[str, int] = defaultdict(int)
    for name, p in model.named_parameters():
        parts = name.split(".")
        part = parts[1] if parts[0] == "model" and len(parts) > 1 else parts[0]
        out[part] += p.numel()
    return dict(out)


def count_params(model: nn.Module) -> int:
    """Distinct parameters (a tied LM head is the embedding tensor and counts once)."""
    return sum(p.numel() for p in model.parameters())


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _inputs(model: nn.Module, batch: int, seq: int) -> dict[str, torch.Tensor]:
    """input_ids plus an all-ones attention_mask. The explicit mask matters on meta: without it
    transformers 5 inspects position_ids for packed sequences with a data-dependent ``.all()``."""
    ids = _input_ids(model, batch, seq)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _input_ids(model: nn.Module, batch: int, seq: int) -> torch.Tensor:
    dev = _device(model)
    if dev.type == "meta":
        return torch.zeros(batch, seq, dtype=torch.long, device=dev)
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, model.config.vocab_size, (batch, seq), generator=g).to(dev)


# ----------------------------------------------------------------------------------------------
# FLOPs


class FlopCount(tuple):
    """``(forward, backward)`` FLOPs (multiply-add = 2), with the per-op / per-module breakdowns as attributes:

    ``forward_by_op`` / ``backward_by_op``: {aten op name: FLOPs} over the whole model;
    ``forward_by_module``: {module path: {op: FLOPs}} (FlopCounterMode.get_flop_counts(); "Global" = total);
    ``seconds``: wall time of the counted passes.
    """

    def __new__(cls, forward: int, backward: int, **info: Any):
        self = super().__new__(cls, (forward, backward))
        self.__dict__.update(info)
        return self

    @property
    def forward(self) -> int:
        return self[0]

    @property
    def backward(self) -> int:
        return self[1]


def _ops(counts: dict) -> dict[str, int]:
    return {str(op): int(n) for op, n in counts.get("Global", {}).items()}


def count_flops(model: nn.Module, batch: int, seq: int, backward: bool = False) -> FlopCount:
    """FLOPs of one full-sequence forward (logits for every position, no loss) and, with ``backward``, of
    ``logits.sum().backward()`` — measured by torch.utils.flop_counter.FlopCounterMode.

    Only matmul-like ops have formulas (mm, addmm, bmm, baddbmm, convolution, SDPA/flash/efficient attention,
    _scaled_mm): norms, activations, softmax, rope, residual adds, the router's softmax/top-k are 0.
    The causal mask saves nothing: eager attention multiplies the full S×S score matrix (4·B·heads·S²·head_dim
    for QKᵀ and AV); a sliding window is only a mask in eager mode and saves nothing either.
    Backward = grad-input + grad-weight of every matmul = exactly 2 × forward for all presets.
    Works on meta (parameters keep requires_grad there, backward runs fine) and on CPU.
    """
    inputs = _inputs(model, batch, seq)
    t0 = time.perf_counter()
    grad_ctx = contextlib.nullcontext() if backward else torch.no_grad()
    with grad_ctx:
        with FlopCounterMode(display=False) as fwd_counter:
            out = model(**inputs, use_cache=False)
        fwd = fwd_counter.get_total_flops()
        bwd, bwd_ops = 0, {}
        if backward:
            logits = out.logits
            with FlopCounterMode(display=False) as bwd_counter:
                logits.sum().backward()
            bwd = bwd_counter.get_total_flops()
            bwd_ops = _ops(bwd_counter.get_flop_counts())
            model.zero_grad(set_to_none=True)
    fwd_counts = fwd_counter.get_flop_counts()
    return FlopCount(int(fwd), int(bwd), forward_by_op=_ops(fwd_counts), backward_by_op=bwd_ops,
                     forward_by_module={k: {str(op): int(n) for op, n in v.items()} for k, v in fwd_counts.items()},
                     seconds=time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------
# KV cache


@dataclass
class CacheEntry:
    layer: int
    kind: str                 # cache layer class, e.g. DynamicLayer / DynamicSlidingWindowLayer
    keys_shape: tuple
    values_shape: tuple
    dtype: str
    logical_bytes: int        # numel · element_size of keys + values (what the cache holds for future steps)
    storage_bytes: int        # bytes of the underlying storages (a sliding layer's keys are a view of all S)
    sliding_window: int = 0


def kv_cache_layout(model: nn.Module, batch: int, seq: int) -> list[CacheEntry]:
    """Run a prefill of ``seq`` tokens with use_cache=True and describe every cache layer.

    Meta is fine: bytes are numel · element_size. Layouts (transformers 5.23):
    * full-attention layers (DynamicLayer): keys and values [B, kv_heads, S, head_dim] each;
    * sliding layers (DynamicSlidingWindowLayer): only the last ``sliding_window - 1`` tokens are kept
      (a slice *view* of the S-token tensor after a prefill, so the storage still holds S tokens until the
      next decode step concatenates);
    * Falcon with new_decoder_architecture (40B/180B): K/V are broadcast to all heads *before* the cache
      update, so the cache holds [B, heads, S, head_dim] — heads/kv_heads times the GQA size;
    * DeepSeek-V3 (MLA): the cache holds the compressed latent, not per-head K/V: ``keys`` =
      normalised c_KV [B, 1, S, kv_lora_rank] and ``values`` = roped shared key [B, 1, S, qk_rope_head_dim].
    """
    with torch.no_grad():
        out = model(**_inputs(model, batch, seq), use_cache=True)
    cache = out.past_key_values
    entries = []
    for i, layer in enumerate(getattr(cache, "layers", [])):
        k, v = getattr(layer, "keys", None), getattr(layer, "values", None)
        if k is None or v is None or (isinstance(k, torch.Tensor) and k.numel() == 0 and v.numel() == 0):
            continue
        logical = k.numel() * k.element_size() + v.numel() * v.element_size()
        sk, sv = k.untyped_storage(), v.untyped_storage()
        storage = sk.nbytes() + (sv.nbytes() if sv._cdata != sk._cdata else 0)
        entries.append(CacheEntry(i, type(layer).__name__, tuple(k.shape), tuple(v.shape), str(k.dtype).replace(
            "torch.", ""), logical, storage, int(getattr(layer, "sliding_window", 0) or 0)))
    return entries


def kv_cache_bytes(model: nn.Module, batch: int, seq: int, storage: bool = False) -> int:
    """Bytes of all key and value tensors in the cache after a prefill of ``seq`` tokens (logical numel ·
    element size; ``storage=True``: bytes of the storages behind them). Cast first: ``model.to(dtype)``."""
    return sum(e.storage_bytes if storage else e.logical_bytes for e in kv_cache_layout(model, batch, seq))


# ----------------------------------------------------------------------------------------------
# Saved activations


def _storage_key(t: torch.Tensor) -> int:
    """Identity of a tensor's storage; works on meta too (where data_ptr() is 0 for every tensor)."""
    return t.untyped_storage()._cdata


@dataclass
class SavedTensor:
    index: int
    module: str                   # innermost module whose forward was running when it was saved
    node: str                     # autograd node that saved it (e.g. MmBackward0), "" if not found
    attr: str                     # attribute on the node (e.g. _saved_self, _saved_result)
    shape: tuple
    dtype: str
    tensor_bytes: int             # numel · element_size of the saved view
    storage_bytes: int            # bytes of its storage (counted once per storage)
    storage: int                  # storage identity
    kind: str                     # activation | parameter | buffer | input
    first: bool                   # first time this storage is saved (the one that is counted)
    alias_of: int = -1            # index of the entry that first saved this storage (-1: this one)

    @property
    def layer(self) -> int | None:
        m = re.search(r"\.(?:layers|h)\.(\d+)(?:\.|$)", self.module)
        return int(m.group(1)) if m else None

    @property
    def sub(self) -> str:
        m = re.search(r"\.(?:layers|h)\.\d+\.?(.*)$", self.module)
        return m.group(1) if m else self.module


@dataclass
class SavedReport:
    total_bytes: int                                   # distinct activation (+input) storages, params excluded
    entries: list[SavedTensor] = field(default_factory=list)
    outputs_bytes: int = 0

    def per_layer(self) -> dict[Any, int]:
        acc: dict[Any, int] = defaultdict(int)
        for e in self.entries:
            if e.first and e.kind in ("activation", "input"):
                acc[e.layer if e.layer is not None else "outside"] += e.storage_bytes
        return dict(acc)

    def layer_entries(self, layer: int) -> list[SavedTensor]:
        return [e for e in self.entries if e.layer == layer]

    def table(self, layer: int | None = None, counted_only: bool = True) -> str:
        rows = [e for e in self.entries if (layer is None or e.layer == layer)
                and (e.first or not counted_only) and e.kind in ("activation", "input")]
        lines = [f"{'module':38s} {'node.attr':40s} {'shape':26s} {'dtype':9s} {'bytes':>12s}"]
        for e in rows:
            lines.append(f"{e.module[-38:]:38s} {(e.node + e.attr.replace('_saved', ''))[:40]:40s} "
                         f"{str(list(e.shape)):26s} {e.dtype:9s} {e.storage_bytes:12d}")
        return "\n".join(lines)


class _ModuleStack:
    """Tracks the innermost running module via global forward hooks."""

    def __init__(self, model: nn.Module):
        self.names = {id(m): n for n, m in model.named_modules()}
        self.stack: list[str] = []

    def __enter__(self):
        def pre(mod, args):
            self.stack.append(self.names.get(id(mod), type(mod).__name__))

        def post(mod, args, out):
            if self.stack:
                self.stack.pop()

        self._h = [nn.modules.module.register_module_forward_pre_hook(pre),
                   nn.modules.module.register_module_forward_hook(post, always_call=True)]
        return self

    def __exit__(self, *exc):
        for h in self._h:
            h.remove()

    @property
    def current(self) -> str:
        return self.stack[-1] if self.stack else ""


@contextlib.contextmanager
def _training_mode(model: nn.Module, checkpointing: bool, dropout: bool):
    """Train mode when checkpointing or dropout is wanted; dropout probabilities zeroed unless ``dropout``.

    HF checkpointing only engages in train mode (GradientCheckpointingLayer checks self.training).
    F.dropout(p=0, training=True) returns its input unchanged and saves no mask.
    """
    was_training = model.training
    saved_p = {}
    if checkpointing or dropout:
        model.train()
    else:
        model.eval()
    if not dropout:
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                saved_p[m] = m.p
                m.p = 0.0
            for attr in ("attention_dropout", "dropout"):
                v = getattr(m, attr, None)
                if isinstance(v, float) and v:
                    saved_p[(m, attr)] = v
                    setattr(m, attr, 0.0)
    if checkpointing:
        # use_reentrant=True: the checkpointed layer inputs go through ctx.save_for_backward, which our
        # saved_tensors_hooks see. The default non-reentrant variant installs its own saved_tensors_hooks
        # (they win over ours) and keeps the inputs alive in a closure: same memory, invisible to hooks —
        # live_bytes_after_forward() measures that variant.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": _REENTRANT[0]})
    try:
        yield
    finally:
        if checkpointing:
            model.gradient_checkpointing_disable()
        for k, v in saved_p.items():
            if isinstance(k, tuple):
                setattr(k[0], k[1], v)
            else:
                k.p = v
        model.train(was_training)


_REENTRANT = [True]


def _param_keys(model: nn.Module) -> tuple[set[int], set[int]]:
    params = {_storage_key(p) for p in model.parameters()}
    buffers = {_storage_key(b) for b in model.buffers()}
    return params, buffers


def saved_activation_report(model: nn.Module, batch: int, seq: int, dtype: torch.dtype | None = None,
                            checkpointing: bool = False, dropout: bool = False) -> SavedReport:
    """Every tensor saved for backward during one training forward ``model(ids, labels=ids)``.

    Counted: distinct storages (keyed by the storage's C++ identity, which works on meta where every
    data_ptr() is 0), excluding parameters and buffers; the int64 input_ids (saved by the embedding and the
    loss) are included as kind "input". The loss path is included (HF upcasts logits to fp32 for the
    cross-entropy). Each entry names the innermost module, and the autograd node and attribute that hold it.
    """
    if dtype is not None:
        model.to(dtype)
    inputs = _inputs(model, batch, seq)
    ids = inputs["input_ids"]
    params, buffers = _param_keys(model)
    ids_key = _storage_key(ids)
    records: list[dict] = []
    where: dict[int, tuple[str, str]] = {}
    current_access: list[tuple[str, str]] = [("", "")]

    def pack(t: torch.Tensor):
        records.append({"t": t, "module": stack.current})
        return len(records) - 1

    def unpack(i: int):
        where.setdefault(i, current_access[0])
        return records[i]["t"]

    with _training_mode(model, checkpointing, dropout), _ModuleStack(model) as stack:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            out = model(**inputs, labels=ids, use_cache=False)
    loss = out.loss

    # walk the graph once to learn which node / attribute holds each saved tensor
    seen, todo = set(), [loss.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names = [a for a in dir(node) if a.startswith("_saved_")]
        if hasattr(node, "saved_tensors") and not names:
            names = ["saved_tensors"]
        for a in names:
            current_access[0] = (node.name(), a)
            try:
                getattr(node, a)
            except Exception:   # noqa: BLE001 - freed or non-tensor attributes
                pass
        todo.extend(fn for fn, _ in getattr(node, "next_functions", ()) if fn is not None)

    entries, counted = [], {}
    for i, r in enumerate(records):
        t = r["t"]
        key = _storage_key(t)
        kind = ("parameter" if key in params else "buffer" if key in buffers else
                "input" if key == ids_key else "activation")
        node, attr = where.get(i, ("", ""))
        first = key not in counted
        counted.setdefault(key, i)
        entries.append(SavedTensor(i, r["module"], node, attr, tuple(t.shape), str(t.dtype).replace("torch.", ""),
                                   t.numel() * t.element_size(), t.untyped_storage().nbytes(), key, kind, first,
                                   -1 if first else counted[key]))
    total = sum(e.storage_bytes for e in entries if e.first and e.kind in ("activation", "input"))
    out_bytes = sum(x.numel() * x.element_size() for x in (out.logits, loss) if x is not None)
    rep = SavedReport(total, entries, out_bytes)
    del out, loss, records
    return rep


def saved_activation_bytes(model: nn.Module, batch: int, seq: int, dtype: torch.dtype | None = None,
                           checkpointing: bool = False, dropout: bool = False, method: str = "") -> int:
    """Bytes of distinct storages held for backward after one training forward ``model(ids, labels=ids)``
    (parameters and buffers excluded; the loss path and the int64 input_ids included; logits/loss *outputs*
    excluded unless autograd saved them).

    ``method="hooks"`` (default without checkpointing): saved_tensors_hooks, deduplicated by storage.
    ``method="live"`` (default with checkpointing): storages still alive after the forward minus the
    returned outputs. With HF checkpointing (non-reentrant, the HF default) only ``live`` is complete: the
    checkpoint keeps each layer's inputs *and* its keyword arguments (attention mask, rope cos/sin) alive in a
    closure that no saved-tensor hook sees. Without checkpointing both methods agree to the byte (the live
    figure can exceed by the all-ones attention_mask input, B·S·8 bytes).
    """
    method = method or ("live" if checkpointing else "hooks")
    if method == "live":
        return live_bytes_after_forward(model, batch, seq, dtype, checkpointing, dropout)["live_minus_outputs"]
    return saved_activation_report(model, batch, seq, dtype, checkpointing, dropout).total_bytes


def live_bytes_after_forward(model: nn.Module, batch: int, seq: int, dtype: torch.dtype | None = None,
                             checkpointing: bool = False, dropout: bool = False,
                             use_reentrant: bool = False) -> dict[str, int]:
    """Independent cross-check: bytes of every storage created during the training forward (plus input_ids)
    that is still alive afterwards, while the output is held; parameters/buffers excluded.

    Unlike the saved-tensor hooks this also sees what non-reentrant checkpointing keeps in its closures.
    Returns {"live": all, "outputs": logits + loss, "live_minus_outputs": ...}.
    """
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    if dtype is not None:
        model.to(dtype)
    inputs = _inputs(model, batch, seq)
    ids = inputs["input_ids"]
    params, buffers = _param_keys(model)
    refs: dict[int, tuple[StorageWeakRef, int]] = {}

    def track(t):
        if isinstance(t, torch.Tensor):
            s = t.untyped_storage()
            k = s._cdata
            if k not in refs and k not in params and k not in buffers:
                refs[k] = (StorageWeakRef(s), s.nbytes())

    class Track(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                track(t)
            return out

    track(ids)
    _REENTRANT[0] = use_reentrant
    try:
        with _training_mode(model, checkpointing, dropout), Track():
            out = model(**inputs, labels=ids, use_cache=False)
    finally:
        _REENTRANT[0] = True
    live = sum(n for r, n in refs.values() if not r.expired())
    outs = 0
    for x in (out.logits, out.loss):
        s = x.untyped_storage()
        if s._cdata in refs:
            outs += s.nbytes()
    del out
    return {"live": live, "outputs": outs, "live_minus_outputs": live - outs}


__all__ = [
    "FAMILIES", "UnrepresentableSpec", "resolve_family", "hf_config", "build_meta", "build_cpu", "count_params",
    "FlopCount", "count_flops", "CacheEntry", "kv_cache_layout", "kv_cache_bytes", "SavedTensor", "SavedReport",
    "saved_activation_report", "saved_activation_bytes", "live_bytes_after_forward",
]
