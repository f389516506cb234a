"""PEFT LoRA models built over the Hugging Face models of tests/reference/hf.py (test-only).

PEFT names the modules it adapts by their Hugging Face attribute names; llmcalc names module kinds. The mapping:

| kinds | Llama, Mistral, Qwen2, Gemma-2, Mixtral | GPT-2 (Conv1D) | Falcon | Phi-3 |
|---|---|---|---|---|
| q, k, v | q_proj, k_proj, v_proj | c_attn (one fused module for all three) | query_key_value | qkv_proj |
| o | o_proj | attn.c_proj | dense | o_proj |
| gate, up | gate_proj, up_proj | — / c_fc | — / dense_h_to_4h | gate_up_proj (fused) |
| down | down_proj | mlp.c_proj | dense_4h_to_h | down_proj |
| embed | embed_tokens | wte | word_embeddings | embed_tokens |
| lm_head | lm_head | lm_head | lm_head | lm_head |

``all-linear`` is passed to PEFT as its own ``"all-linear"`` (every linear module but the output layer), so the
comparison does not depend on this table.
"""

from __future__ import annotations

import torch.nn as nn

from llmcalc.spec import ModelSpec

from .hf import resolve_family

SEPARATE = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj",
            "down": "down_proj", "lm_head": "lm_head", "embed": "embed_tokens"}
FUSED = {
    "gpt2": {"q": "c_attn", "k": "c_attn", "v": "c_attn", "o": "attn.c_proj", "up": "c_fc", "down": "mlp.c_proj",
             "lm_head": "lm_head", "embed": "wte"},
    "falcon": {"q": "query_key_value", "k": "query_key_value", "v": "query_key_value", "o": "dense",
               "up": "dense_h_to_4h", "down": "dense_4h_to_h", "lm_head": "lm_head", "embed": "word_embeddings"},
    "phi3": {"q": "qkv_proj", "k": "qkv_proj", "v": "qkv_proj", "o": "o_proj", "gate": "gate_up_proj",
             "up": "gate_up_proj", "down": "down_proj", "lm_head": "lm_head", "embed": "embed_tokens"},
}


def target_modules(spec: ModelSpec, targets: str):
    """PEFT's ``target_modules`` for llmcalc's ``--lora-targets`` value."""
    if targets == "all-linear":
        return "all-linear"
    kinds = ["q", "k", "v", "o"] if targets == "attention" else targets.split(",")
    names = FUSED.get(resolve_family(spec), SEPARATE)
    return sorted({names[k] for k in kinds if k in names})


def lora_model(model: nn.Module, spec: ModelSpec, rank: int, targets: str) -> nn.Module:
    """``get_peft_model`` with a LoRA of ``rank`` on ``targets`` (dropout 0: nothing random is saved)."""
    from peft import LoraConfig, get_peft_model
    cfg = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=target_modules(spec, targets),
                     fan_in_fan_out=resolve_family(spec) == "gpt2")
    return get_peft_model(model, cfg)


def trainable_params(model: nn.Module) -> int:
    """PEFT's own count of trainable parameters (``get_nb_trainable_parameters()[0]``)."""
    return int(model.get_nb_trainable_parameters()[0])
