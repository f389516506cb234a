"""`llmcalc kv` against Hugging Face transformers: build each preset's model (meta device; GPT-2 for real on the
CPU), run a prefill of S tokens with use_cache=True, and sum the bytes of the key and value tensors the cache
holds (tests/reference/hf.py ``kv_cache_bytes``: numel × element size). llmcalc must equal that exactly, for
every model preset transformers implements.

Reduced depth: each model is built with 2 layers (MoE models with leading dense layers: dense + 1, so
DeepSeek-V3 has 4), and llmcalc is asked about the same reduced spec; every layer of a family caches the same
shape, so the full-depth figure is the reduced one × L / n, which is checked too (and one model is run at
full depth with no scaling at all).

Where the Hugging Face cache is laid out differently from what a serving engine (vLLM, TensorRT-LLM, the
papers) stores, llmcalc reports the serving engine's figure and the test pins the exact difference:

* Sliding-window layers (Mistral-7B v0.1, Phi-3-mini, Gemma-2's local layers): after a prefill of S ≥ W
  tokens, HF's DynamicSlidingWindowLayer keeps the last W - 1 tokens (the new token's own K/V is appended
  before attention, making W). llmcalc counts min(S, W), Mistral's rolling buffer of W slots (arXiv:2310.06825
  sec. 2), i.e. what the step actually needs resident: HF = llmcalc - B · L_win · (bytes per layer and token).
  Also, right after the prefill HF's windowed keys are a *view* of the full S-token tensor, so the storage
  behind them still holds all S tokens until the next decode step (``storage_bytes`` below).
* Falcon-40B (new_decoder_architecture, 8 KV heads of 64 for 128 query heads): HF broadcasts K and V to all
  128 heads *before* the cache update, so its cache is heads / kv_heads = 16× the GQA size. A serving engine
  stores the 8 KV heads; llmcalc reports that (seed 003 sec. 8's "4 GiB × B" is the 128-head figure).
* DeepSeek-V3 (MLA): in transformers 5.23 the cache holds the compressed latent c_KV [B, 1, S, 512] as
  "keys" and the shared rope key [B, 1, S, 64] as "values" — the MLA layout of DeepSeek-V2 sec. 2.1 — so it
  equals llmcalc exactly. (Older transformers releases decompressed per-head K/V before caching:
  128 × (192 + 128) per layer and token, 71× more; llmcalc reports the latent.)
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")      # a guard only: CI installs the test extra and runs these
pytest.importorskip("transformers")

pytestmark = pytest.mark.torch

from llmcalc.core.kv import kv_bytes_per_token, kv_cache_bytes  # noqa: E402
from llmcalc.presets import builtin_dir, load_model  # noqa: E402
from llmcalc.spec import replace  # noqa: E402
from reference import hf  # noqa: E402

MODELS = sorted(p.stem for p in (builtin_dir() / "models").glob("*.yaml"))
CANONICAL = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-175b", "llama-2-7b", "llama-2-13b",
             "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "mistral-7b", "mixtral-8x7b",
             "qwen2.5-7b", "qwen2.5-72b", "gemma-2-9b", "falcon-40b", "phi-3-mini", "deepseek-v3"]
B = 2


def reduced(spec, n: int | None = None):
    """The spec with n layers (2; MoE with leading dense layers: dense + 1), windows on the same share."""
    if n is None:
        n = spec.moe.dense_layers + 1 if spec.moe and spec.moe.dense_layers else 2
    changes = {"layers": n}
    if spec.window_layers and spec.sliding_window_layers >= 0:       # Gemma-2: every other layer
        changes["sliding_window_layers"] = spec.window_layers * n // spec.layers
    return replace(spec, **changes)


def per_layer_token(spec, dtype="bf16") -> float:
    return kv_bytes_per_token(spec, dtype) / spec.layers


def hf_layout_adjustment(spec, batch: int, seq: int, dtype: str = "bf16") -> float:
    """HF bytes minus llmcalc bytes, for the documented layout differences (0 where they agree)."""
    if spec.family == "falcon" and spec.kv_heads not in (1, spec.heads):
        return kv_cache_bytes(spec, batch, seq, dtype) * (spec.heads / spec.kv_heads - 1)
    if spec.window_layers and seq >= spec.sliding_window:
        return -batch * spec.window_layers * per_layer_token(spec, dtype)
    return 0.0


def lengths(spec) -> list[int]:
    """A short prefill, and for windowed models one past the window."""
    return [40] + ([spec.sliding_window + 57] if spec.sliding_window else [])


@pytest.mark.parametrize("name", MODELS)
def test_kv_cache_equals_hugging_face(name):
    full = load_model(name)
    try:
        hf.resolve_family(full)
    except NotImplementedError as exc:
        pytest.skip(str(exc))
    spec = reduced(full)
    model = hf.build_meta(spec, dtype=torch.bfloat16)
    for seq in lengths(spec):
        measured = hf.kv_cache_bytes(model, B, seq)
        ours = kv_cache_bytes(spec, B, seq, "bf16")
        assert measured == ours + hf_layout_adjustment(spec, B, seq), (name, seq)
        # the full-depth model: every layer caches the same shape, so it scales by L / n
        assert kv_cache_bytes(full, B, seq) == ours * full.layers / spec.layers, (name, seq)


def test_every_canonical_preset_is_checked():
    for name in CANONICAL:
        hf.resolve_family(load_model(name))    # raises if a canonical model lost its HF reference


@pytest.mark.parametrize("name", ["mistral-7b", "gemma-2-9b", "phi-3-mini"])
def test_sliding_window_layout(name):
    # HF keeps W - 1 tokens in a windowed layer (DynamicSlidingWindowLayer); llmcalc min(S, W). With the window
    # shortened by one token llmcalc reproduces HF exactly; below the window both hold all S tokens.
    spec = reduced(load_model(name))
    W = spec.sliding_window
    model = hf.build_meta(spec, dtype=torch.bfloat16)
    layout = hf.kv_cache_layout(model, B, W + 57)
    windowed = [e for e in layout if e.kind == "DynamicSlidingWindowLayer"]
    assert len(windowed) == spec.window_layers
    for e in windowed:
        assert e.keys_shape[2] == W - 1                                   # tokens kept: W - 1
        assert e.storage_bytes == e.logical_bytes * (W + 57) / (W - 1)   # a view of the whole prefill
    assert hf.kv_cache_bytes(model, B, W + 57) == kv_cache_bytes(replace(spec, sliding_window=W - 1), B, W + 57)
    assert hf.kv_cache_bytes(model, B, W - 1) == kv_cache_bytes(spec, B, W - 1)


def test_falcon_40b_broadcast_heads():
    # HF's Falcon (new_decoder_architecture) caches K/V for all 128 heads; the model has 8 KV heads.
    spec = reduced(load_model("falcon-40b"))
    layout = hf.kv_cache_layout(hf.build_meta(spec, dtype=torch.bfloat16), B, 40)
    assert layout[0].keys_shape == (B, 128, 40, 64)
    assert kv_cache_bytes(spec, B, 40) * 16 == sum(e.logical_bytes for e in layout)


def test_deepseek_v3_caches_the_latent():
    spec = reduced(load_model("deepseek-v3"))
    layout = hf.kv_cache_layout(hf.build_meta(spec, dtype=torch.bfloat16), B, 40)
    assert {(e.keys_shape, e.values_shape) for e in layout} == {((B, 1, 40, 512), (B, 1, 40, 64))}
    assert sum(e.logical_bytes for e in layout) == kv_cache_bytes(spec, B, 40)


def test_full_depth_without_scaling():
    # Llama-3.1-8B at all 32 layers: no reduction, no scaling, fp32 this time
    spec = load_model("llama-3.1-8b")
    model = hf.build_meta(spec, dtype=torch.float32)
    assert hf.kv_cache_bytes(model, 3, 50) == kv_cache_bytes(spec, 3, 50, "fp32") == 3 * 50 * 2 * 32 * 8 * 128 * 4


def test_gpt2_for_real_on_the_cpu():
    # real tensors, a real forward: GPT-2 small (2 of its 12 layers) in fp32 and in bf16. Full depth: the
    # cheat sheet's two figures, 73,728 bytes per token in fp32 and 36,864 in fp16/bf16 (seed 000 ch. 8).
    full = load_model("gpt2")
    spec = replace(reduced(full), vocab=1024)          # the vocabulary does not touch the cache; it costs init time
    model = hf.build_cpu(spec, dtype=torch.float32, bos_token_id=0, eos_token_id=0)
    assert hf.kv_cache_bytes(model, 2, 64) == kv_cache_bytes(spec, 2, 64, "fp32") == 2 * 64 * 73_728 * 2 / 12
    model = model.to(torch.bfloat16)
    assert hf.kv_cache_bytes(model, 2, 64) == kv_cache_bytes(spec, 2, 64, "bf16") == 2 * 64 * 36_864 * 2 / 12
    assert kv_bytes_per_token(full, "fp32") == 73_728 and kv_bytes_per_token(full, "bf16") == 36_864
