"""FLOPs of one training step (forward, backward) of a decoder-only transformer.

Counting convention (seed 000 ch. 1-2; seed 003 sec. 3): a dense [M,K]x[K,N] product is 2·M·K·N FLOPs;
element-wise ops (norms, activations, softmax, residual adds, rotary) are not counted; the embedding
lookup is a gather, not a matmul, and costs nothing; backward is twice forward (a weight-gradient and an
input-gradient matmul for every forward matmul). Attention scores count the full S×S square, as an
eager implementation computes it, unless ``causal`` (then only the lower triangle, or the band of a
sliding window). This is what ``torch.utils.flop_counter.FlopCounterMode`` counts for an eager model.

Every function takes batch ``B`` and sequence ``S`` as numbers or NumPy arrays of the same shape.
"""

from __future__ import annotations

from llmcalc.core.formula import Formula, Results
from llmcalc.core.geometry import attention_linears, weights_per_token
from llmcalc.errors import InputError
from llmcalc.core.params import active_params, embedding_params, total_params
from llmcalc.spec import ModelSpec

RECOMPUTE_MODES = ("none", "selective", "full")

# Symbols: B batch, S sequence, L layers, H hidden, V vocab, F ffn, W_attn the attention projection
# weights of one layer (H·(q + 2·kv) + o; 4·H² for plain multi-head attention).
ATTN_PROJ = Formula("2 * B * S * W_attn * L")
SCORE_PAIRS_FULL = Formula("S * S")
# Causal: query s attends to min(s, W) keys; summed over s this is S·W - W²/2 (S²/2 when W >= S).
SCORE_PAIRS_CAUSAL = Formula("S * min(S, W) - min(S, W)**2 / 2")
ATTN_SCORE = Formula("2 * B * n_heads * (d_qk + d_v) * pairs * L")
ATTN_SCORE_WINDOWED = Formula("2 * B * n_heads * (d_qk + d_v) * (L_full * pairs_full + L_win * pairs_win)")
MLP_DENSE = Formula("2 * B * S * n_mat * H * F * L")
MLP_MOE = Formula("2 * B * S * (L_dense * n_mat * H * F + L_moe * (H * E + k * n_mat * H * F_e + n_mat * H * F_s))")
LM_HEAD = Formula("2 * B * S * H * V")
FORWARD = Formula("attn_proj + attn_score + mlp + lm_head")
BACKWARD = Formula("2 * forward")
TRAINING = Formula("forward + backward")
HW_SELECTIVE = Formula("training + attn_score")
HW_FULL = Formula("training + forward - lm_head")
NAPKIN_FWD = Formula("2 * P * B * S")
NAPKIN_TRAIN = Formula("6 * P * B * S")
TOTAL_TRAIN = Formula("training / (B * S) * D")
NAPKIN_TOTAL = Formula("6 * P * D")
GPU_HOURS = Formula("total / (peak * mfu) / 3600")
TRAINING_DAYS = Formula("gpu_hours / N / 24")
MFU_MEASURED = Formula("training / (B * S) * tokens_per_s / (N * peak)")


def attention_projection_weights(spec: ModelSpec) -> int:
    """Weights of Q, K, V and O in one layer (no biases, no norms): the matmul sizes per token
    (core/geometry.py)."""
    return weights_per_token(attention_linears(spec))


def head_dims(spec: ModelSpec) -> tuple[int, int]:
    """(query/key width per head, value width per head) entering QKᵀ and attention × V."""
    if spec.mla:
        return spec.mla.qk_nope_head_dim + spec.mla.qk_rope_head_dim, spec.mla.v_head_dim
    return spec.head_dim, spec.head_dim


def forward_breakdown(spec: ModelSpec, batch, seq, causal: bool = False, out: Results | None = None) -> Results:
    """Forward FLOPs by part: attention projections, attention scores, MLP, LM head, and their sum."""
    r = Results() if out is None else out
    L, H = spec.layers, spec.hidden
    r.calc("attention_projection_flops", ATTN_PROJ, "flop", "attention projections (Q, K, V, O)",
           B=batch, S=seq, W_attn=attention_projection_weights(spec), L=L)

    window = spec.sliding_window if (causal and spec.window_layers) else 0
    pairs_full = SCORE_PAIRS_CAUSAL(S=seq, W=seq) if causal else SCORE_PAIRS_FULL(S=seq)
    d_qk, d_v = head_dims(spec)
    label = "attention scores (QKᵀ and attention × V)" + (", causal" if causal else ", full S×S")
    if window:
        r.calc("attention_score_flops", ATTN_SCORE_WINDOWED, "flop", label + f", {spec.window_layers} windowed layers",
               B=batch, n_heads=spec.heads, d_qk=d_qk, d_v=d_v, L_full=L - spec.window_layers,
               pairs_full=pairs_full, L_win=spec.window_layers, pairs_win=SCORE_PAIRS_CAUSAL(S=seq, W=window))
    else:
        r.calc("attention_score_flops", ATTN_SCORE, "flop", label,
               B=batch, n_heads=spec.heads, d_qk=d_qk, d_v=d_v, pairs=pairs_full, L=L)

    n_mat = spec.mlp_matrices
    if spec.moe:
        moe = spec.moe
        r.calc("mlp_flops", MLP_MOE, "flop", f"MLP (router + top-{moe.top_k} experts + shared)",
               B=batch, S=seq, L_dense=spec.dense_mlp_layers, L_moe=spec.moe_layers, n_mat=n_mat, H=H,
               F=spec.ffn, E=moe.experts + int(moe.shared_gate), k=moe.top_k, F_e=moe.expert_ffn, F_s=moe.shared_ffn)
    else:
        r.calc("mlp_flops", MLP_DENSE, "flop", f"MLP ({n_mat} matrices)",
               B=batch, S=seq, n_mat=n_mat, H=H, F=spec.ffn, L=L)
    r.calc("lm_head_flops", LM_HEAD, "flop", "LM head (vocabulary projection)", B=batch, S=seq, H=H, V=spec.vocab)
    r.calc("forward_flops", FORWARD, "flop", "forward, one step",
           attn_proj=r["attention_projection_flops"].value, attn_score=r["attention_score_flops"].value,
           mlp=r["mlp_flops"].value, lm_head=r["lm_head_flops"].value)
    return r


def training_step_flops(spec: ModelSpec, batch, seq, causal: bool = False, recompute: str = "none",
                        method: str = "full", lora_rank=16, lora_targets=None) -> Results:
    """Parameters, forward/backward/training FLOPs of one step, hardware FLOPs under recomputation,
    and the napkin 2·P·T / 6·P·T figures beside the exact count (seed 000 ch. 1-2; seed 002).

    ``method`` lora/qlora: a frozen base with adapters (core/lora.py): base forward + adapters forward and
    backward + the base's input gradients only, about 4·P·T + adapters instead of 6·P·T.

    Recomputation (Korthikanti et al. 2022, arXiv:2205.05198 sec. 4-5): ``selective`` recomputes the
    attention core (QKᵀ, softmax, × V) in backward; ``full`` re-runs every layer's forward.
    """
    if recompute not in RECOMPUTE_MODES:
        from llmcalc.errors import InputError
        raise InputError(f"--recompute must be one of {', '.join(RECOMPUTE_MODES)}; got {recompute!r}")
    from llmcalc.core.params import add_param_rows, finetune_plan
    ft = finetune_plan(spec, method, lora_rank, lora_targets)
    r = Results()
    P_total, P_active = total_params(spec), active_params(spec)
    r.put("params", P_total, "params", "parameters (total)")
    r.put("params_embedding", embedding_params(spec), "params", "embedding parameters (tokens + positions)")
    if spec.moe:
        r.put("params_active", P_active, "params", "parameters active per token")
    add_param_rows(r, spec, ft, P_total)
    forward_breakdown(spec, batch, seq, causal, r)
    if ft is None:
        fwd = r["forward_flops"].value
        bwd = r.calc("backward_flops", BACKWARD, "flop", "backward (2 × forward)", forward=fwd)
    else:
        from llmcalc.core import lora
        lora.add_flops_rows(r, spec, ft, batch, seq)
        fwd, bwd = r["forward_flops"].value, r["backward_flops"].value
    train = r.calc("training_flops", TRAINING, "flop", "training step (forward + backward)", forward=fwd, backward=bwd)
    if recompute == "selective":
        r.calc("hardware_flops", HW_SELECTIVE, "flop", "hardware FLOPs with selective recomputation",
               training=train, attn_score=r["attention_score_flops"].value)
    elif recompute == "full":
        r.calc("hardware_flops", HW_FULL, "flop", "hardware FLOPs with full recomputation",
               training=train, forward=fwd, lm_head=r["lm_head_flops"].value)
    else:
        r.put("hardware_flops", train, "flop", "hardware FLOPs (no recomputation: = training)")
    note = ("P counts every parameter, embeddings included (the CS 229s notes); the exact count adds attention's "
            "S² term and counts the LM head, but not the embedding lookup")
    r.calc("napkin_forward_flops", NAPKIN_FWD, "flop", "napkin forward 2·P·T", note=note, P=P_active, B=batch, S=seq)
    r.calc("napkin_training_flops", NAPKIN_TRAIN, "flop", "napkin training 6·P·T", P=P_active, B=batch, S=seq)
    return r


def add_training_run(r: Results, spec: ModelSpec, batch, seq, tokens=None, peak=None, gpus=1, mfu=None,
                     tokens_per_s=None) -> Results:
    """Whole-run compute for ``tokens`` tokens, and on ``gpus`` GPUs of dense ``peak`` FLOP/s at ``mfu``:
    GPU-hours and wall-clock days (seed 002 "How long does it take to train a Llama?"). With a measured
    ``tokens_per_s`` (all GPUs together) the MFU that throughput implies (seed 003 eq. 3.5), and the run's
    hours and days at that MFU rather than an assumed one."""
    train = r["training_flops"].value
    if tokens_per_s is not None and peak is not None:
        mfu = r.calc("mfu", MFU_MEASURED, "ratio", "MFU implied by the measured tokens/s",
                     training=train, B=batch, S=seq, tokens_per_s=tokens_per_s, N=gpus, peak=peak)
        from llmcalc.core.formula import maximum
        if maximum(mfu, 0) > 1 if not hasattr(mfu, "shape") else (mfu > 1).any():
            worst = float(mfu) if not hasattr(mfu, "shape") else float(mfu.max())
            raise InputError(f"the measured throughput implies an MFU of {worst:.3g}: more FLOP/s than {gpus} GPU(s) "
                             "can deliver at their dense peak; check the tokens/s, the GPU count and the dtype")
    elif peak is not None and mfu is not None:
        r.put("mfu", mfu, "ratio", "MFU assumed for the run's time")
    if tokens is not None:
        total = r.calc("total_training_flops", TOTAL_TRAIN, "flop", "training run (exact per-token × tokens)",
                       training=train, B=batch, S=seq, D=tokens)
        r.calc("napkin_total_training_flops", NAPKIN_TOTAL, "flop", "training run, napkin 6·P·D",
               P=r["params_active"].value if "params_active" in r else r["params"].value, D=tokens)
        if peak is not None and mfu is not None:
            hours = r.calc("gpu_hours", GPU_HOURS, "h", "GPU-hours at that MFU", total=total, peak=peak, mfu=mfu)
            r.calc("training_days", TRAINING_DAYS, "days", "wall-clock days on all GPUs", gpu_hours=hours, N=gpus)
            r.calc("napkin_gpu_hours", GPU_HOURS, "h", "GPU-hours from the napkin 6·P·D", total=r[
                "napkin_total_training_flops"].value, peak=peak, mfu=mfu)
    return r
