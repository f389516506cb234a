"""The capacity rule, written once: memory an engine may use, what is left for the KV cache beside the
weights, how many sequences fit, whether a batch fits, and the longest sequence a batch can hold.

Budget per GPU (the Decoder-Only Transformers notes eq. 7.1, with vLLM's gpu_memory_utilization u and
tensor parallelism over T GPUs): u·M − W/T, less the engine's prefill transient t(B, P) (core/servemem.py:
vLLM sizes its KV pool after a profiling pass of its largest prefill step, so the pool is u·M − W/T − t).
Every command that answers "does it fit?" for inference (kv, serve, specdec, roofline) uses these formulas;
``--engine none`` (t = 0) is the seeds' arithmetic, weights + cache only.

The transient is max(w·min(C, B·P), B·g) per GPU: w bytes per prefill token, at most C tokens per step, g
bytes of logits per sequence (g grows with P when every position's logits are kept). A batch fits when both
B·s + w·min(C, B·P) ≤ x and B·s + B·g ≤ x (x = u·M − W/T, s the cache per sequence), and the first holds
when either B·s + w·B·P ≤ x or B·s + w·C ≤ x, so the largest batch is min(max(B₁, B₂), B₃) in closed form;
the longest sequence likewise, each term being the windowed cache rule with an extra cost per token.
"""

from __future__ import annotations

from llmcalc.core.formula import Formula, Results

USABLE = Formula("u * M")
BUDGET = Formula("u * M - W / T")
MAX_BATCH = Formula("max(0, floor(budget / per_seq))")
BUDGET_ENGINE = Formula("u * M - W / T - t")
MAX_BATCH_ENGINE = Formula("max(0, min(max(floor(x / (s + w * P)), floor((x - w * C) / s)), floor(x / (s + g))))")
MAX_BATCH_UNCHUNKED = Formula("max(0, min(floor(x / (s + w * P)), floor(x / (s + g))))")   # C = ∞ (hf)
MAX_TOKENS = Formula("max(0, floor(budget / per_seq * S))")
FITS = Formula("B <= max_batch")
# Longest S with per_seq(S) + c·S ≤ x (x: bytes per sequence), per_seq(S) = a·(L_full·S + L_win·min(S, W)), a the
# cache per token per layer: linear in S below the window, slower above it (only full layers grow); c: a prefill
# transient that grows with the prompt (0 without one).
MAX_SEQ = Formula("max(0, where(x <= (a * L + c) * W, floor(x / (a * L + c)), "
                  "floor((x - a * L_win * W) / (a * L_full + c))))")
MAX_SEQ_NO_WINDOW = Formula("max(0, floor(x / (a * L + c)))")
MAX_SEQ_ENGINE = Formula("min(max(s_chunk, s_capped), s_logits)")   # a batch fits when each term does (above)
PER_SEQUENCE_BUDGET = Formula("budget / B")


def add_capacity(r: Results, *, memory_bytes: float, mem_util, weights_bytes, tp, batch, per_seq,
                 per_token, layers: int, window: int = 0, window_layers: int = 0, seq=None,
                 what: str = "sequences of length S", transient=None, prompt=None) -> None:
    """usable_memory_bytes, kv_budget_bytes, max_batch, (max_tokens), fits and max_seq, per GPU.

    ``per_seq`` and ``per_token`` are the cache bytes per sequence and per token on one GPU. ``transient``: the
    engine's prefill transient per GPU (a servemem.Transient) for prompts of ``prompt`` tokens; with
    ``prompt=None`` the prompt is the whole sequence (``seq``), so max_seq lets the transient grow with it."""
    r.calc("usable_memory_bytes", USABLE, "byte", "memory the engine may use per GPU (--mem-util)",
           u=mem_util, M=memory_bytes)
    if transient is None or (transient.w == 0 and transient.g == 0 and transient.g_token == 0):
        budget = r.calc("kv_budget_bytes", BUDGET, "byte", "left for the KV cache per GPU after the weights",
                        u=mem_util, M=memory_bytes, W=weights_bytes, T=tp)
        mb = r.calc("max_batch", MAX_BATCH, "count", f"{what} that fit beside the weights", budget=budget,
                    per_seq=per_seq)
        _fits_and_max_seq(r, batch, mb, budget, per_seq, per_token, layers, window, window_layers, seq)
        return
    P = seq if prompt is None else prompt
    x = BUDGET(u=mem_util, M=memory_bytes, W=weights_bytes, T=tp)
    t = transient.bytes(batch, P)
    budget = r.calc("kv_budget_bytes", BUDGET_ENGINE, "byte", "left for the KV cache per GPU after the weights and "
                    "the prefill transient", u=mem_util, M=memory_bytes, W=weights_bytes, T=tp, t=t)
    chunked = transient.cap != float("inf")
    mb = r.calc("max_batch", MAX_BATCH_ENGINE if chunked else MAX_BATCH_UNCHUNKED, "count", f"{what} that fit "
                "beside the weights and the prefill transient", x=x, s=per_seq, w=transient.w, P=P,
                g=transient.g + transient.g_token * P, **({"C": transient.cap} if chunked else {}))
    if prompt is not None:                      # the prompt is fixed: the transient at this batch is a constant
        _fits_and_max_seq(r, batch, mb, budget, per_seq, per_token, layers, window, window_layers, seq)
        return
    # the prompt is the sequence: B·cache(S) + max(w·min(C, B·S), B·(g + g_token·S)) ≤ x, term by term
    if seq is not None:
        r.calc("max_tokens", MAX_TOKENS, "count", "tokens of cache that fit (at length S)", budget=budget,
               per_seq=per_seq, S=seq)
    r.calc("fits", FITS, "bool", "the requested batch fits", B=batch, max_batch=mb)
    shape = dict(per_token=per_token, layers=layers, window=window, window_layers=window_layers)
    chunk = _longest(PER_SEQUENCE_BUDGET(budget=x, B=batch), c=transient.w, **shape)[0]
    logits = _longest(PER_SEQUENCE_BUDGET(budget=x - batch * transient.g, B=batch), c=transient.g_token, **shape)[0]
    capped = (_longest(PER_SEQUENCE_BUDGET(budget=x - transient.w * transient.cap, B=batch), c=0.0, **shape)[0]
              if chunked else 0)
    r.calc("max_seq", MAX_SEQ_ENGINE, "count", "longest sequence (tokens) B sequences can hold, its prefill "
           "transient included", s_chunk=chunk, s_capped=capped, s_logits=logits)


def _longest(x, *, c: float, per_token, layers: int, window: int, window_layers: int):
    """(longest S, formula, its symbols) with a·(L_full·S + L_win·min(S, W)) + c·S ≤ x (x: bytes per sequence);
    formula None when every layer is windowed and nothing else grows (then S is unbounded once W fits)."""
    a, full = per_token / layers, layers - window_layers
    if window and window_layers and (full or c):
        sym = dict(x=x, a=a, L=layers, W=window, L_win=window_layers, L_full=full, c=c)
        return MAX_SEQ(**sym), MAX_SEQ, sym
    sym = dict(x=x, a=a, L=layers, c=c)
    limit = MAX_SEQ_NO_WINDOW(**sym)
    if window and window_layers:
        from llmcalc.core.formula import where
        return where(limit >= window, float("inf"), limit), None, sym
    return limit, MAX_SEQ_NO_WINDOW, sym


def _fits_and_max_seq(r: Results, batch, mb, budget, per_seq, per_token, layers: int, window: int,
                      window_layers: int, seq) -> None:
    """max_tokens, fits and max_seq once the budget for the cache at this batch is known."""
    if seq is not None:
        r.calc("max_tokens", MAX_TOKENS, "count", "tokens of cache that fit (at length S)", budget=budget,
               per_seq=per_seq, S=seq)
    r.calc("fits", FITS, "bool", "the requested batch fits", B=batch, max_batch=mb)
    longest, formula, sym = _longest(PER_SEQUENCE_BUDGET(budget=budget, B=batch), c=0.0, per_token=per_token,
                                     layers=layers, window=window, window_layers=window_layers)
    if formula is None:
        r.put("max_seq", longest, "count", "longest sequence B sequences can hold (unbounded once every layer's "
              "window fits)")
    else:
        r.calc("max_seq", formula, "count", "longest sequence (tokens) B sequences can hold", **sym)
