"""Memory while serving: weights + KV cache + the transient peak of a prefill.

A forward pass frees each layer's intermediates before the next layer, so the transient peak of a prefill
of T tokens is the larger of

* the workspace of one layer: the residual stream in and out (2·T·D) plus the larger of attention's
  (Q, K, V and its output: T·(q + 2·kv + o)) and the MLP's (gated: gate, up and their product, 3·T·F;
  plain: 2·T·F; MoE: the k routed experts' and the shared experts' widths) — flash/SDPA attention keeps no
  T×T score matrix;
* the logits at the LM head: B·n·V in the model's dtype and a float32 copy (p + 4 bytes per element),
  n the positions whose logits are computed.

Engines differ in T and n:

* ``vllm``: chunked prefill, T = min(max_batched_tokens, B·P); logits only for each sequence's last
  position (n = 1). vLLM sizes its KV pool after a profiling pass of max_batched_tokens tokens
  (Kwon et al. 2023; vLLM's ``gpu_memory_utilization``), which this transient is.
* ``hf``: Hugging Face ``generate`` in transformers ≥ 4.45: the whole prompt of the batch in one pass,
  T = B·P, last-position logits only (``generate`` passes ``num_logits_to_keep=1``/``logits_to_keep``).
* ``hf-legacy``: transformers < 4.45, whose models computed the logits of every prompt position and
  upcast them to float32 (``logits.float()``): n = P, B·P·V·(p + 4) bytes — the dominant term for long
  prompts (Qwen2's speed benchmark, transformers 4.38: 42.6 GB for a 30k prompt of a 7B model).

* ``none``: no transient: weights + cache only (the seeds' capacity arithmetic, e.g. seed 000 ch. 5).

Activations are 16-bit (p = 2). The same transient, per GPU under tensor parallelism (attention and MLP
intermediates split over the T GPUs, the residual stream and the gathered logits whole), joins the weights in
the capacity rule (core/capacity.py): vLLM sizes its KV pool after its profiling pass in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmcalc.core.formula import Formula, Results
from llmcalc.spec import ModelSpec

ENGINES = ("vllm", "hf", "hf-legacy", "none")
DEFAULT_ENGINE = "vllm"
ACT_BYTES = 2.0

CHUNK_VLLM = Formula("min(M, B * P)")
CHUNK_HF = Formula("B * P")
WS_ATTN = Formula("T * (q + 2 * kv + o) * p")
WS_MLP = Formula("n_mat * T * F * p")
WS_RESID = Formula("2 * T * D * p")
WORKSPACE = Formula("resid + max(attn, mlp)")
LOGITS = Formula("B * n * V * (p + 4)")
TRANSIENT = Formula("max(workspace, logits)")
PEAK = Formula("total + transient")


@dataclass(frozen=True)
class Transient:
    """The prefill transient on one GPU for B prompts of P tokens: max(w·min(C, B·P), B·(g + g_token·P)) bytes,
    the larger of one layer's workspace (w bytes per prefill token, C tokens per step at most) and the logits
    (g bytes per sequence, g_token more per prompt token when every position's logits are kept)."""
    w: float = 0.0
    cap: float = float("inf")
    g: float = 0.0
    g_token: float = 0.0

    def bytes(self, batch, prompt):
        return TRANSIENT(workspace=WORKSPACE_PER_GPU(w=self.w, C=self.cap, B=batch, P=prompt),
                         logits=LOGITS_PER_GPU(B=batch, g=self.g, g_tok=self.g_token, P=prompt))


WORKSPACE_PER_GPU = Formula("w * min(C, B * P)")
LOGITS_PER_GPU = Formula("B * (g + g_tok * P)")


def transient_model(spec: ModelSpec, engine: str = DEFAULT_ENGINE, tp: int = 1,
                    max_batched_tokens=8192) -> Transient:
    """The ``engine``'s prefill transient on one of ``tp`` GPUs (the module docstring's terms, per token)."""
    engine = check_engine(engine)
    if engine == "none":
        return Transient()
    p = ACT_BYTES      # the workspace and logits formulas above at one token (T = 1, B = n = 1)
    w = WORKSPACE(resid=WS_RESID(T=1, D=spec.hidden, p=p),
                  attn=WS_ATTN(T=1, q=spec.q_dim, kv=spec.kv_dim, o=spec.attn_out_dim, p=p) / tp,
                  mlp=WS_MLP(n_mat=spec.mlp_matrices, T=1, F=mlp_width(spec), p=p) / tp)
    logits = LOGITS(B=1, n=1, V=spec.vocab, p=p)
    return Transient(w=w, cap=float(max_batched_tokens) if engine == "vllm" else float("inf"),
                     g=0.0 if engine == "hf-legacy" else logits, g_token=logits if engine == "hf-legacy" else 0.0)


def capacity_note(engine) -> str:
    """What peak_memory_bytes, fits, max_batch and max_seq count, for an engine (or a list of them)."""
    if engine == "none":
        return ("--engine none: fits, max_batch and max_seq count weights + cache only (the seeds' arithmetic), "
                "and peak_memory_bytes adds no prefill transient")
    shown = ", ".join(engine) if isinstance(engine, list) else engine
    return (f"peak_memory_bytes, fits, max_batch and max_seq include the prefill transient of --engine {shown}"
            + (" (the default: chunks of --max-batched-tokens, last-token logits)" if shown == DEFAULT_ENGINE else "")
            + ", as vLLM sizes its KV pool after a profiling pass; --engine none counts weights + cache only (the "
            "seeds' arithmetic)")


def check_engine(engine: str) -> str:
    from llmcalc.core.serve import check_dtype      # one "must be one of" check for every choice
    return check_dtype("--engine", engine, ENGINES)


def mlp_width(spec: ModelSpec) -> int:
    """Intermediate width per token of the widest MLP layer: dense F, or k routed experts + the shared ones."""
    if not spec.moe:
        return spec.ffn
    moe = spec.moe.top_k * spec.moe.expert_ffn + spec.moe.shared_ffn
    return max(moe, spec.ffn if spec.moe.dense_layers else 0)


def prefill_transient(spec: ModelSpec, batch, prompt, *, engine: str = DEFAULT_ENGINE, max_batched_tokens=8192,
                      out: Results | None = None) -> Results:
    """``prefill_tokens`` (T), ``workspace_bytes``, ``logits_bytes`` and ``transient_bytes`` of a prefill of
    ``batch`` prompts of ``prompt`` tokens (numbers or NumPy arrays)."""
    engine = check_engine(engine)
    r = Results() if out is None else out
    p = ACT_BYTES
    if engine == "none":
        for key, unit, label in (("prefill_tokens", "count", "no prefill transient counted (--engine none)"),
                                 ("workspace_bytes", "byte", "no activations counted"),
                                 ("logits_bytes", "byte", "no logits counted"),
                                 ("transient_bytes", "byte", "no transient: weights + cache only")):
            r.put(key, 0, unit, label)
        return r
    if engine == "vllm":
        T = r.calc("prefill_tokens", CHUNK_VLLM, "count", "tokens in the largest prefill step (chunked)",
                   M=max_batched_tokens, B=batch, P=prompt)
    else:
        T = r.calc("prefill_tokens", CHUNK_HF, "count", "tokens in the prefill pass (the whole batch's prompts)",
                   B=batch, P=prompt)
    attn = WS_ATTN(T=T, q=spec.q_dim, kv=spec.kv_dim, o=spec.attn_out_dim, p=p)
    mlp = WS_MLP(n_mat=spec.mlp_matrices, T=T, F=mlp_width(spec), p=p)
    ws = r.calc("workspace_bytes", WORKSPACE, "byte", "one layer's activations: residual + max(attention, MLP)",
                resid=WS_RESID(T=T, D=spec.hidden, p=p), attn=attn, mlp=mlp)
    n = prompt if engine == "hf-legacy" else 1
    lg = r.calc("logits_bytes", LOGITS, "byte", "logits at the LM head (model dtype + fp32 copy)", B=batch, n=n,
                V=spec.vocab, p=p)
    r.calc("transient_bytes", TRANSIENT, "byte", "transient prefill peak: max(workspace, logits)", workspace=ws,
           logits=lg)
    return r


def add_peak(r: Results, spec: ModelSpec, batch, prompt, total, *, engine: str = DEFAULT_ENGINE,
             max_batched_tokens=8192, after: str | None = None) -> Results:
    """Adds ``peak_memory_bytes`` = ``total`` (weights + cache) + the transient, and the transient's rows,
    placed right after the row ``after`` (default: at the end)."""
    t = prefill_transient(spec, batch, prompt, engine=engine, max_batched_tokens=max_batched_tokens)
    new = Results()
    new.calc("peak_memory_bytes", PEAK, "byte", f"peak memory: weights + cache + prefill transient ({engine})",
             total=total, transient=t["transient_bytes"].value)
    new.update(t)
    if after is None or after not in r:
        r.update(new)
        return r
    rows = list(r.items())
    r.clear()
    for k, row in rows:
        r[k] = row
        if k == after:
            r.update(new)
    return r
