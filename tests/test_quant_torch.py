"""NF4 weight bytes against the real thing: bitsandbytes quantises a small Llama-style and a small MoE model
on the CPU (transformers' BitsAndBytesConfig, nf4, double quantisation), and the tensors of the saved
safetensors file are counted. llmcalc's ``weight_bytes(spec, "nf4")`` must match them within 0.5%."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("bitsandbytes")
safetensors = pytest.importorskip("safetensors")

from llmcalc.core.quant import weight_bytes  # noqa: E402
from llmcalc.spec import ModelSpec  # noqa: E402

pytestmark = pytest.mark.torch

LLAMA = ModelSpec(name="llama-nf4-test", layers=2, hidden=512, heads=8, kv_heads=2, head_dim=64, ffn=1408,
                  vocab=2048, max_seq=256, family="llama")
TIED = ModelSpec(name="llama-tied-nf4-test", layers=2, hidden=512, heads=8, kv_heads=8, head_dim=64, ffn=1024,
                 vocab=2048, max_seq=256, tie_embeddings=True, family="llama")


def _saved_tensor_bytes(spec: ModelSpec, tmp_path) -> int:
    import warnings

    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from tests.reference.hf import build_cpu

    torch.manual_seed(0)
    base = build_cpu(spec, dtype=torch.bfloat16)
    base.save_pretrained(tmp_path / "base")
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = AutoModelForCausalLM.from_pretrained(tmp_path / "base", quantization_config=cfg, device_map="cpu")
        q.save_pretrained(tmp_path / "nf4")
    total = 0
    for name in os.listdir(tmp_path / "nf4"):
        if name.endswith(".safetensors"):
            with safe_open(str(tmp_path / "nf4" / name), "pt") as f:
                for key in f.keys():
                    t = f.get_tensor(key)
                    total += t.numel() * t.element_size()
    return total


@pytest.mark.parametrize("spec", [LLAMA, TIED], ids=lambda s: s.name)
def test_nf4_bytes_match_bitsandbytes(spec, tmp_path):
    measured = _saved_tensor_bytes(spec, tmp_path)
    assert weight_bytes(spec, "nf4") == pytest.approx(measured, rel=0.005)
