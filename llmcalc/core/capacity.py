"""The capacity rule, written once: memory an engine may use, what is left for the KV cache beside the
weights, how many sequences fit, whether a batch fits, and the longest sequence a batch can hold.

Budget per GPU (the Decoder-Only Transformers notes eq. 7.1, with vLLM's gpu_memory_utilization u and
tensor parallelism over T GPUs): u·M − W/T. Every command that answers "does it fit?" for inference
(kv, serve, specdec, roofline) uses these formulas.
"""

from __future__ import annotations

from llmcalc.core.formula import Formula, Results

USABLE = Formula("u * M")
BUDGET = Formula("u * M - W / T")
MAX_BATCH = Formula("max(0, floor(budget / per_seq))")
MAX_TOKENS = Formula("max(0, floor(budget / per_seq * S))")
FITS = Formula("B <= max_batch")
# Longest S with B·per_seq(S) ≤ budget, where per_seq(S) = a·(L_full·S + L_win·min(S, W)) and a is the
# cache per token per layer: linear in S below the window, slower above it (only full layers grow).
MAX_SEQ = Formula("max(0, where(x <= a * L * W, floor(x / (a * L)), floor((x / a - L_win * W) / L_full)))")
MAX_SEQ_NO_WINDOW = Formula("max(0, floor(x / (a * L)))")
PER_SEQUENCE_BUDGET = Formula("budget / B")


def add_capacity(r: Results, *, memory_bytes: float, mem_util, weights_bytes, tp, batch, per_seq,
                 per_token, layers: int, window: int = 0, window_layers: int = 0, seq=None,
                 what: str = "sequences of length S") -> None:
    """usable_memory_bytes, kv_budget_bytes, max_batch, (max_tokens), fits and max_seq, per GPU.

    ``per_seq`` and ``per_token`` are the cache bytes per sequence and per token on one GPU."""
    r.calc("usable_memory_bytes", USABLE, "byte", "memory the engine may use per GPU (--mem-util)",
           u=mem_util, M=memory_bytes)
    budget = r.calc("kv_budget_bytes", BUDGET, "byte", "left for the KV cache per GPU after the weights",
                    u=mem_util, M=memory_bytes, W=weights_bytes, T=tp)
    mb = r.calc("max_batch", MAX_BATCH, "count", f"{what} that fit beside the weights", budget=budget,
                per_seq=per_seq)
    if seq is not None:
        r.calc("max_tokens", MAX_TOKENS, "count", "tokens of cache that fit (at length S)", budget=budget,
               per_seq=per_seq, S=seq)
    r.calc("fits", FITS, "bool", "the requested batch fits", B=batch, max_batch=mb)
    x = PER_SEQUENCE_BUDGET(budget=budget, B=batch)
    a = per_token / layers
    full = layers - window_layers
    if window and window_layers and full:
        r.calc("max_seq", MAX_SEQ, "count", "longest sequence (tokens) B sequences can hold", x=x, a=a, L=layers,
               W=window, L_win=window_layers, L_full=full)
    elif window and window_layers:  # every layer windowed: the cache stops growing at W tokens
        limit = MAX_SEQ_NO_WINDOW(x=x, a=a, L=layers)
        from llmcalc.core.formula import where
        r.put("max_seq", where(limit >= window, float("inf"), limit), "count",
              "longest sequence B sequences can hold (unbounded once every layer's window fits)")
    else:
        r.calc("max_seq", MAX_SEQ_NO_WINDOW, "count", "longest sequence (tokens) B sequences can hold", x=x, a=a,
               L=layers)
