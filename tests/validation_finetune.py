"""Fine-tuning rows of the validation registry (tests/validation_cases.py calls ``register``): LoRA and QLoRA
against the LoRA and QLoRA papers, PEFT, FlopCounterMode and autograd's saved tensors.

The measured rows reuse tests/test_lora_torch.py's harness; the published figures carry their citations.
"""

from __future__ import annotations

from functools import lru_cache

TITLE = (
    "Fine-tuning: LoRA and QLoRA",
    "`--method lora|qlora` (llmcalc/core/lora.py) against PEFT (`get_nb_trainable_parameters()` of LoRA models "
    "it builds on the meta device), PyTorch's FlopCounterMode over one forward and `logits.sum().backward()` of "
    "small CPU models with the base frozen, the bytes autograd saves for backward (dropout off), and the figures "
    "the LoRA (Hu et al. 2021, arXiv:2106.09685) and QLoRA (Dettmers et al. 2023, arXiv:2305.14314) papers "
    "publish. QLoRA's \"65B on one 48 GB GPU\" is checked as a bound: llmcalc's total for LLaMA-65B (r = 64 on "
    "all linear layers, B = 1, S = 512 as the paper's memory figure, gradient checkpointing, paged AdamW) must be "
    "below 48 GiB; \">780 GB\" for 16-bit full fine-tuning as the opposite bound.")

LORA = "Hu et al. 2021, arXiv:2106.09685"
QLORA = "Dettmers et al. 2023, arXiv:2305.14314"
GiB = 2**30


def _llama_65b():
    # LLaMA-65B (Touvron et al. 2023, arXiv:2302.13971 Table 2: dim 8192, 64 heads, 80 layers; FFN 22,016 and
    # vocabulary 32,000 as its Hugging Face config)
    from llmcalc.spec import ModelSpec
    return ModelSpec(name="llama-65b", layers=80, hidden=8192, heads=64, kv_heads=64, head_dim=128, ffn=22016,
                     vocab=32000, max_seq=2048, family="llama")


def _gpt3_separate():
    # GPT-3 175B as the LoRA paper adapts it: separate W_q, W_k, W_v, W_o (not GPT-2's fused c_attn)
    from llmcalc.presets import load_model
    from llmcalc.spec import replace
    return replace(load_model("gpt3-175b"), family="")


def _trainable(spec, rank, targets):
    from llmcalc.core.flops import training_step_flops
    return float(training_step_flops(spec, 1, 1, method="lora", lora_rank=rank, lora_targets=targets)
                 ["trainable_params"].value)


def _preset(name: str):
    from llmcalc.presets import load_model
    return load_model(name)


def _nf4_bits() -> float:
    from llmcalc.core.quant import bits_per_weight
    return float(bits_per_weight("nf4"))


def _gpt3_lora_states() -> float:
    from llmcalc.core.memory import training_memory
    return float(training_memory(_gpt3_separate(), 1, 1, method="lora", lora_rank=4, lora_targets="q,v",
                                 precision="bf16")["total_bytes"].value)


def _predicted_act(case: tuple) -> float:
    from tests.test_lora_torch import predicted_lora_activations
    return float(predicted_lora_activations(*case))


def _total(spec, **kw):
    from llmcalc.core.memory import training_memory
    return float(training_memory(spec, 1, 512, **kw)["total_bytes"].value)


# ----------------------------------------------------------------------------------------------
# Measured with PEFT and PyTorch


@lru_cache(maxsize=None)
def _peft_trainable(name: str, rank: int, targets: str) -> float:
    import warnings
    warnings.simplefilter("ignore")
    from llmcalc.presets import load_model
    from tests.reference.hf import build_meta
    from tests.reference.lora import lora_model, trainable_params
    spec = load_model(name)
    return float(trainable_params(lora_model(build_meta(spec), spec, rank, targets)))


@lru_cache(maxsize=None)
def _counted(family: str, targets: str) -> float:
    from tests.reference.hf import build_cpu, count_flops
    from tests.reference.lora import lora_model
    from tests.test_lora_torch import _small_models
    spec = dict(zip(("gpt2", "llama"), _small_models()))[family]
    model = build_cpu(spec)
    if targets != "full":
        model = lora_model(model, spec, 8, targets)
    return float(sum(count_flops(model, 2, 64, backward=True)))


def _train_flops(family: str, targets: str) -> float:
    from llmcalc.core.flops import training_step_flops
    from tests.test_lora_torch import _small_models
    spec = dict(zip(("gpt2", "llama"), _small_models()))[family]
    kw = {} if targets == "full" else dict(method="lora", lora_rank=8, lora_targets=targets)
    return float(training_step_flops(spec, 2, 64, **kw)["training_flops"].value)


@lru_cache(maxsize=None)
def _saved(case: tuple) -> float:
    from tests.test_lora_torch import measured_lora_activations
    return float(measured_lora_activations(*case))


def register(add, groups: dict, rounding_band) -> None:
    """Add the fine-tuning group and its cases to the registry."""
    groups["finetune"] = TITLE
    add("qlora/llama-65b-48gb", "finetune", "QLoRA LLaMA-65B, r = 64 all-linear, B = 1, S = 512, checkpointing, "
        "paged AdamW: total bytes per GPU, against one 48 GB GPU",
        lambda: _total(_llama_65b(), method="qlora", lora_rank=64, recompute="full", optimizer="paged-adamw"),
        48 * GiB, (0.5, 1.0), QLORA + ", abstract and sec. 1 (\"finetune a 65B parameter model on a single 48GB GPU\")",
        "bytes", "a bound: the ratio must be at most 1")
    add("full/llama-65b-780gb", "finetune", "full 16-bit fine-tuning of LLaMA-65B (mixed precision, AdamW): total bytes",
        lambda: _total(_llama_65b()), 780e9, (1.0, 1.5),
        QLORA + ", sec. 1 (\"from >780GB of GPU memory to <48GB\")", "bytes",
        "a bound: the ratio must be at least 1 (780 GB is 12 B/param; llmcalc counts 16 B/param + activations)")
    add("qlora/nf4-bits", "finetune", "NF4 with double quantisation: bits per weight",
        _nf4_bits, 4.127,
        rounding_band(4.127, 0.0005), QLORA + ", sec. 3 (4 bits + 8/64 + 32/(64·256) = 0.127 bits of constants)", "bits")
    add("lora/gpt3-table5-params", "finetune", "GPT-3 175B, LoRA r = 8 on W_q: trainable parameters",
        lambda: _trainable(_gpt3_separate(), 8, "q"), 18e6, (1.0, 1.06), LORA + ", Table 5 (\"18M\")", "params",
        "printed as 18M; the count is 18.87M (8 · 2 · 12,288 · 96)")
    add("lora/gpt3-vram", "finetune", "GPT-3 175B, LoRA r = 4 on W_q, W_v, 16-bit: model-state bytes (B = S = 1)",
        _gpt3_lora_states, 350e9, rounding_band(350e9, 5e9), LORA + ", sec. 4.2 (\"from 1.2TB to 350GB\")",
        "bytes")
    add("lora/gpt3-checkpoint", "finetune", "GPT-3 175B, LoRA r = 4 on W_q, W_v: adapter checkpoint bytes (16-bit)",
        lambda: 2 * _trainable(_gpt3_separate(), 4, "q,v"), 35e6, (1.0, 1.1),
        LORA + ", sec. 4.2 (\"roughly 10,000× (from 350GB to 35MB)\")", "bytes", "the paper's \"roughly\": 37.7 MB")
    for _name, _r, _t in (("llama-2-7b", 16, "all-linear"), ("llama-3.1-8b", 8, "q,v"), ("mistral-7b", 64, "all-linear"),
                          ("qwen2.5-7b", 16, "q,v"), ("gpt2", 8, "q,v")):
        add(f"peft/{_name}/r{_r}/{_t}", "finetune", f"{_name}, r = {_r}, targets {_t}: trainable parameters",
            lambda n=_name, r=_r, t=_t: _trainable(_preset(n), r, t),
            lambda n=_name, r=_r, t=_t: _peft_trainable(n, r, t), (1.0, 1.0),
            "PEFT get_nb_trainable_parameters() on the meta device (tests/test_lora_torch.py)", "params", torch=True)
    for _fam, _t in (("llama", "all-linear"), ("llama", "q,v"), ("gpt2", "all-linear"), ("llama", "full")):
        add(f"flops/{_fam}-small/{_t}", "finetune", f"{_fam}-style 2-layer CPU model, B = 2, S = 64, "
            + ("full fine-tuning" if _t == "full" else f"LoRA r = 8 on {_t}") + ": training FLOPs of one step",
            lambda f=_fam, t=_t: _train_flops(f, t), lambda f=_fam, t=_t: _counted(f, t), (0.995, 1.005),
            "FlopCounterMode over forward + logits.sum().backward() (tests/test_lora_torch.py)", "FLOPs", torch=True)
    for _case in (("llama", "all-linear", "bf16", False, "sdpa"), ("llama", "q,v", "fp32", False, "eager"),
                  ("gpt2", "all-linear", "bf16", False, "eager"), ("llama", "all-linear", "bf16", True, "sdpa"),
                  ("gpt2", "q,v", "fp32", True, "eager")):
        _fam, _t, _dt, _ck, _attn = _case
        add(f"activations/{_fam}-small/{_t}/{_dt}/{_attn}{'/ckpt' if _ck else ''}", "finetune",
            f"{_fam}-style CPU model, LoRA r = 8 on {_t}, {_dt}, {_attn} attention"
            + (", checkpointing" if _ck else "") + ": activation bytes (`--activations eager`)",
            lambda c=_case: _predicted_act(c),
            lambda c=_case: _saved(c), (0.998, 1.002),
            "saved-tensor hooks / live storages after a checkpointed forward (tests/test_lora_torch.py)", "bytes",
            "the test's bound is 10%; exact but for the CPU's bf16 LayerNorm statistics", torch=True)

