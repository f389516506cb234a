"""Fine-tuning methods: full, LoRA and QLoRA — which modules carry adapters, how many parameters train, the frozen
base's storage (NF4 with double quantisation for QLoRA), and the FLOPs of a step with a frozen base.

LoRA (Hu et al. 2021, arXiv:2106.09685 sec. 4.1): a frozen linear W (d_out × d_in) gains ΔW = B·A with
A (r × d_in) and B (d_out × r): r·(d_in + d_out) trainable parameters per adapted module, as PEFT builds them
(``LoraLayer.update_layer``). Targets are module kinds (q, k, v, o, gate, up, down; ``attention`` = q,k,v,o;
``all-linear`` = all seven, the QLoRA paper's recommendation, Dettmers et al. 2023 arXiv:2305.14314 sec. 4,
and PEFT's ``all-linear``, which leaves out the LM head). ``lm_head``, ``embed`` and ``router`` may be named too.
Models whose Hugging Face modules fuse projections carry ONE adapter on the fused module when any of its
parts is named, as PEFT does with ``target_modules``: GPT-2's Conv1D ``c_attn`` (q,k,v), Falcon's
``query_key_value``, Phi-3's ``qkv_proj`` (q,k,v) and ``gate_up_proj`` (gate,up).

QLoRA (Dettmers et al. 2023 sec. 3): the frozen linear weights (not the embedding, norms, biases or LM head)
are stored in core/quant.py's ``nf4`` layout: 4-bit NF4 codes with one absmax per 64 weights; double
quantisation stores those absmax values in 8 bits with one fp32 scale per 256 of them: 4 + 8/64 + 32/(64·256)
= 4.127 bits per weight (the paper's "0.127 bits per parameter" of constants). Each layer dequantises its
weight to bf16 for the matmul and frees it: the largest such copy is transient memory on top.

A step with a frozen base (module doc of core/flops.py for the counting convention): the base forward,
the adapters' forward and backward, and the base's input-gradient (dX = dY·W) matmuls; no base weight
gradient. Layer 1 reads the frozen embedding, whose output carries no gradient: the matmuls whose input
carries none there (Q, K, V; and what follows them if they carry no adapter) skip their dX.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmcalc.core.formula import Formula, Results
from llmcalc.core.geometry import TARGET_KINDS, Linear, linear_modules
from llmcalc.core.params import DEFAULT_RANK, METHODS  # noqa: F401 - declared where full fine-tuning needs them
from llmcalc.errors import InputError
from llmcalc.spec import ModelSpec

DEFAULT_TARGETS = "all-linear"
TARGET_SETS = {"all-linear": TARGET_KINDS, "attention": ("q", "k", "v", "o")}
EXTRA_TARGETS = ("lm_head", "router", "embed")
ENDS = ("lm_head", "embedding")       # adapter blocks outside the layers
QLORA_PRECISIONS = ("mixed", "bf16")

# Modules that Hugging Face implementations fuse: one adapter on the fused module (its name, its parts).
FUSED = {"gpt2": (("c_attn", ("q", "k", "v")),),
         "falcon": (("query_key_value", ("q", "k", "v")),),
         "phi3": (("qkv_proj", ("q", "k", "v")), ("gate_up_proj", ("gate", "up")))}

TRAINABLE = Formula("r * W_ad")              # core/params.add_param_rows
FROZEN_WEIGHTS = Formula("((Q_l * b_q + U_l * b_u) * L_s / L + P_e * b_u) / t / z")
ADAPTERS_GPU = Formula("(A_l * L_s / L + A_e) / t")
ADAPTER_WEIGHTS = Formula("A_g * w / z")
DEQUANT = Formula("2 * W_max / t")
WEIGHTS_FT = Formula("frozen + adapters + dequantised")
ADAPTER_FWD = Formula("2 * B * S * r * W_ad")
FORWARD_FT = Formula("base + adapters")
BASE_DX = Formula("attn_proj + mlp + lm_head - 2 * B * S * W_skip")
SCORE_BWD = Formula("2 * attn_score - skip_score")
ADAPTER_BWD = Formula("2 * adapters - 2 * B * S * r * D_skip")
BACKWARD_FT = Formula("base_dx + score_bwd + adapters_bwd")


def _module_name(spec: ModelSpec) -> str:
    return (spec.family or "").lower().replace("-", "_")


def parse_targets(text: str | None) -> tuple[str, ...]:
    """``all-linear``, ``attention`` or a comma list of module kinds -> the kinds, in layer order."""
    raw = (text or DEFAULT_TARGETS).strip().lower()
    if raw in TARGET_SETS:
        return TARGET_SETS[raw]
    names = [n.strip() for n in raw.split(",") if n.strip()]
    known = TARGET_KINDS + EXTRA_TARGETS
    for n in names:
        if n not in known:
            import difflib
            close = difflib.get_close_matches(n, known + tuple(TARGET_SETS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise InputError(f"unknown LoRA target {n!r}{hint}; targets are all-linear, attention, or module kinds "
                             f"from {', '.join(known)}")
    if not names:
        raise InputError("no LoRA target given; use all-linear, attention, or module kinds such as q,v")
    return tuple(k for k in known if k in names)


@dataclass(frozen=True, slots=True)
class Adapter:
    """A LoRA pair on one kind of module (possibly a fused one): A (r × d_in), B (d_out × r)."""

    name: str
    kinds: tuple[str, ...]
    d_in: int
    d_out: int
    layers: int
    per_layer: int
    active: int
    reads: str
    block: str

    @property
    def count(self) -> int:
        return self.layers * self.per_layer


def _adapters(spec: ModelSpec, targets: tuple[str, ...]) -> list[Adapter]:
    mods = [m for m in linear_modules(spec) if _adapted(m, targets)]
    fused = FUSED.get(_module_name(spec), ())
    out: list[Adapter] = []
    taken: set[int] = set()
    for fname, parts in fused:
        group = [i for i, m in enumerate(mods) if m.target in parts and m.block in ("attention", "mlp")]
        if not group:
            continue
        for i in group:
            taken.add(i)
        # the fused module holds every part, named or not: its output width is the sum of all parts'
        whole = [m for m in linear_modules(spec) if m.target in parts and m.block == mods[group[0]].block]
        first = mods[group[0]]
        out.append(Adapter(fname, parts, first.d_in, sum(m.d_out for m in whole), first.layers, first.per_layer,
                           first.active, first.reads, first.block))
    for i, m in enumerate(mods):
        if i not in taken:
            out.append(Adapter(m.name, (m.target,), m.d_in, m.d_out, m.layers, m.per_layer, m.active, m.reads,
                               m.block))
    if "embed" in targets:
        # PEFT's Embedding LoRA: A (r × V) is gathered by token id (no FLOPs), then B (H × r) multiplies
        out.insert(0, Adapter("embed_tokens", ("embed",), spec.vocab, spec.hidden, 1, 1, 1, "ids", "embedding"))
    return out


def _adapted(m: Linear, targets: tuple[str, ...]) -> bool:
    if m.target == "kv":              # MLA's joint K/V projections
        return "k" in targets or "v" in targets
    return m.target in targets


@dataclass(frozen=True)
class FineTune:
    """What a parameter-efficient method trains and freezes (``plan`` builds it)."""

    method: str
    rank: int
    targets: tuple[str, ...]
    adapters: tuple[Adapter, ...]

    @property
    def quantised(self) -> bool:
        return self.method == "qlora"

    @property
    def width_layers(self) -> int:
        """Σ (d_in + d_out) over adapter instances inside the layers (times r: their parameters)."""
        return sum((a.d_in + a.d_out) * a.count for a in self.adapters if a.block not in ENDS)

    @property
    def width_head(self) -> int:
        """Σ (d_in + d_out) of the adapters outside the layers (LM head, embedding)."""
        return sum((a.d_in + a.d_out) * a.count for a in self.adapters if a.block in ENDS)

    @property
    def width_per_token(self) -> int:
        """Σ (d_in + d_out) over the adapters one token passes through (routed experts: top-k)."""
        return sum(((a.d_out if a.block == "embedding" else a.d_in + a.d_out) * a.active * a.layers)
                   for a in self.adapters)

    def adapted_kinds(self) -> set[str]:
        return {k for a in self.adapters for k in a.kinds}

    def reads(self) -> set[str]:
        """The tensors some adapter's A reads (so autograd keeps them)."""
        return {a.reads for a in self.adapters}


def plan(spec: ModelSpec, method: str, rank=DEFAULT_RANK, targets=None) -> FineTune | None:
    """The adapters of ``method`` on ``spec`` (None for full fine-tuning). Raises InputError for a rank that is
    not positive or exceeds an adapted module's smaller dimension."""
    method = str(method).lower()
    if method not in METHODS:
        raise InputError(f"fine-tuning method must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "full":
        return None
    kinds = targets if isinstance(targets, tuple) else parse_targets(targets)
    if hasattr(rank, "ravel"):       # a sweep: checked in one pass
        bad = (rank < 1) | (rank != rank.round())
        if bad.any():
            raise InputError(f"LoRA rank must be a whole number of at least 1; got {rank[bad].ravel()[0]:g}")
        top = float(rank.max())
    else:
        if rank != int(rank) or rank < 1:
            raise InputError(f"LoRA rank must be a whole number of at least 1; got {rank:g}")
        top = rank
    adapters = tuple(_adapters(spec, kinds))
    if not adapters:
        raise InputError(f"{spec.name} has no module of the LoRA target kinds {', '.join(kinds)}")
    for a in adapters:
        if top > min(a.d_in, a.d_out):
            raise InputError(f"LoRA rank {int(top)} exceeds the smaller dimension ({min(a.d_in, a.d_out):,}) of "
                             f"{spec.name}'s {a.name} module ({a.d_in:,} -> {a.d_out:,}); choose a rank of at most "
                             f"{min(a.d_in, a.d_out):,}")
    return FineTune(method, rank, kinds, adapters)


# ----------------------------------------------------------------------------------------------
# Memory: the frozen base, the adapters, the transient dequantised weight


def quantised_weights(spec: ModelSpec) -> tuple[int, int]:
    """(weight elements QLoRA stores in NF4: every linear of the layers but the MoE router, as core/quant.py's
    nf4 keeps it, all instances; the largest one)."""
    mods = [m for m in linear_modules(spec) if m.block not in ("lm_head", "router")]
    return sum(m.weights * m.count for m in mods), max(m.weights for m in mods)


def weight_rows(parts: Results, spec: ModelSpec, ft: FineTune, *, w: float, P_layers, P_ends, L_s, tp, z) -> tuple:
    """Weights of a frozen-base method per GPU, by part; returns (weights_bytes, adapter params per GPU)."""
    L = spec.layers
    Q_l, W_max = quantised_weights(spec)
    if ft.quantised:
        from llmcalc.core.quant import weight_parts
        n_q, bytes_q = weight_parts(spec, "nf4")["by_type"]["nf4"]     # core/quant.py: the one NF4 layout
        b_q, b_u = bytes_q / n_q, 2
        frozen_label = f"frozen base: linear weights in NF4 ({8 * b_q:.4g} bits), the rest in bf16"
    else:
        b_q = b_u = w
        frozen_label = f"frozen base ({w:g} B/param)"
    frozen = parts.calc("weights/frozen", FROZEN_WEIGHTS, "byte", frozen_label + (", ZeRO-3 sharded" if hasattr(z, "shape") or z != 1 else ""),
                        Q_l=Q_l, b_q=b_q, U_l=P_layers - Q_l, b_u=b_u, L_s=L_s, L=L, P_e=P_ends, t=tp, z=z)
    A_g = parts.calc("trainable_params_per_gpu", ADAPTERS_GPU, "params", "adapter parameters held per GPU",
                     A_l=ft.rank * ft.width_layers, L_s=L_s, L=L, A_e=ft.rank * ft.width_head, t=tp)
    adapters = parts.calc("weights/adapters", ADAPTER_WEIGHTS, "byte", f"LoRA adapters ({w:g} B/param)",
                          A_g=A_g, w=w, z=z)
    if ft.quantised:
        deq = parts.calc("weights/dequantised", DEQUANT, "byte",
                         "transient bf16 copy of the largest weight, dequantised for its matmul", W_max=W_max, t=tp)
    else:
        deq = parts.put("weights/dequantised", 0, "byte", "no dequantisation (the base is not quantised)")
    weights = parts.calc("weights_bytes", WEIGHTS_FT, "byte", "weights: frozen base + adapters (+ dequantised copy)",
                         frozen=frozen, adapters=adapters, dequantised=deq)
    return weights, A_g


def optimizer_shape(ft: FineTune, min_8bit: int) -> tuple[float, float]:
    """(Adafactor's factored elements per adapter parameter, the share of adapter parameters in tensors large
    enough for 8-bit optimizer states): A and B are matrices r × d_in and d_out × r."""
    r = ft.rank
    if hasattr(r, "ravel"):
        r = float(r.ravel()[0]) if r.size == 1 else r
    total = sum(r * (a.d_in + a.d_out) * a.count for a in ft.adapters)
    factored = sum((2 * r + a.d_in + a.d_out) * a.count for a in ft.adapters)
    from llmcalc.core.formula import where
    big = sum(where(r * a.d_in >= min_8bit, r * a.d_in, 0) * a.count + where(r * a.d_out >= min_8bit, r * a.d_out, 0)
              * a.count for a in ft.adapters)
    return factored / total, big / total


# ----------------------------------------------------------------------------------------------
# Activations: which inputs a frozen base still keeps


def activation_flags(spec: ModelSpec, ft: FineTune, flash: bool, norms: int) -> tuple[dict, dict]:
    """Indicators for the activation formulas of core/memory.py under a frozen base: (every layer but the
    first, the first layer), each a dict of 0/1 flags and R.

    A frozen ``nn.Linear`` keeps its input only for a weight gradient; LoRA's A reads the same tensor, so the
    input stays saved exactly when an adapter sits on a module that reads it (c_a: the attention input, c_m:
    the MLP input, c_o: the attention output, c_d: the MLP's hidden). bitsandbytes' 4-bit matmul (QLoRA) keeps
    its input whenever that input carries a gradient (``MatMul4Bit.forward``: ``ctx.tensors = (A, B)``), so
    under QLoRA every linear's input stays. Flash attention keeps its output anyway (it is the O input).
    Each adapter keeps its r-wide A output for B's gradient: R = r · adapters a token passes per layer.
    c_h: an adapter on the LM head keeps its input. ``norms``: norms per layer that keep their input (n_n).

    The first layer reads the frozen embedding, whose output carries no gradient: its first norm keeps
    nothing, and attention keeps an operand only for the other operand's gradient (c_q: Q for dK, c_k: K for
    dQ, c_v and c_s: V and the probabilities when Q or K carries one), the MLP's F-wide tensors (c_f) only if
    its hidden carries a gradient.
    """
    reads = ft.reads()
    qlora = ft.quantised
    per_layer = sum(a.active * a.layers for a in ft.adapters if a.block not in ENDS) / spec.layers
    flow = _first_layer(spec, ft)

    def kept(tensor: str, needs_grad: bool) -> float:
        return float(tensor in reads or (qlora and needs_grad))

    every = dict(c_a=kept("x_attn", True), c_m=kept("x_mlp", True), c_o=max(kept("attn_out", True), float(flash)),
                 c_d=kept("mlp_hidden", True), c_q=1.0, c_k=1.0, c_v=1.0, c_s=1.0, c_f=1.0, n_n=norms,
                 R=ft.rank * per_layer)
    any_qkv = flow["q"] or flow["k"] or flow["v"]
    first = dict(c_a=kept("x_attn", False), c_m=kept("x_mlp", flow["x_mlp"]),
                 c_o=max(kept("attn_out", flow["attn_out"]), float(flash and any_qkv)),
                 c_d=kept("mlp_hidden", flow["mlp_hidden"]),
                 c_q=float(any_qkv if flash else flow["k"]), c_k=float(any_qkv if flash else flow["q"]),
                 c_v=float(any_qkv if flash else flow["probs"]), c_s=float(any_qkv if flash else flow["probs"]),
                 c_f=float(flow["mlp_hidden"]), n_n=(norms - 1) if flow["x_mlp"] else 0, R=every["R"])
    if "embed" in ft.adapted_kinds():   # an adapted embedding's output carries a gradient: layer 1 is as any
        first = every
    return every, first


def head_flag(ft: FineTune) -> float:
    """1 when an adapter on the LM head keeps its input (the final norm's output), else 0."""
    return float("final" in ft.reads())


# ----------------------------------------------------------------------------------------------
# FLOPs of a step with a frozen base


def _first_layer(spec: ModelSpec, ft: FineTune) -> dict[str, bool]:
    """Which tensors of layer 1 carry a gradient when the embedding is frozen (its output carries none)."""
    kinds = ft.adapted_kinds()
    if "embed" in kinds:                # the embedding's adapter gives its output a gradient: all flows
        return dict.fromkeys(("x_attn", "q_latent", "kv_latent", "attn_out", "x_mlp", "mlp_hidden", "final", "q",
                              "k", "v", "probs", "ids"), True)
    mla = spec.mla is not None
    q = "q" in kinds
    k = ("k" in kinds) or (mla and "v" in kinds)
    v = ("v" in kinds) or (mla and "k" in kinds)
    probs = q or k
    attn = probs or v
    h1 = attn or "o" in kinds
    x_mlp = h1 and not spec.parallel_attn
    hidden = x_mlp or "gate" in kinds or "up" in kinds
    return {"x_attn": False, "q_latent": q, "kv_latent": k or v, "attn_out": attn, "x_mlp": x_mlp,
            "mlp_hidden": hidden, "final": True, "q": q, "k": k, "v": v, "probs": probs, "ids": True}


def _first_layer_modules(spec: ModelSpec) -> list[Linear]:
    mods = [m for m in linear_modules(spec) if m.block != "lm_head"]
    first_is_moe = spec.moe is not None and spec.moe.dense_layers == 0
    return [m for m in mods if m.block == "attention" or (m.block == "mlp") != first_is_moe]


def add_flops_rows(r: Results, spec: ModelSpec, ft: FineTune, batch, seq) -> None:
    """Forward and backward of a frozen-base step, component by component, onto ``r`` (which holds
    core/flops.forward_breakdown's rows of the base)."""
    from llmcalc.core.flops import head_dims

    flow = _first_layer(spec, ft)
    W_skip = sum(m.weights * m.active for m in _first_layer_modules(spec) if not flow[m.reads])
    D_skip = sum(a.d_in * a.active for a in ft.adapters if a.block not in ENDS and not flow[a.reads])
    d_qk, d_v = head_dims(spec)
    score0 = r["attention_score_flops"].value / spec.layers          # layer 1's share (mean over layers)
    qk0, av0 = score0 * d_qk / (d_qk + d_v), score0 * d_v / (d_qk + d_v)
    skip_score = (qk0 * ((not flow["q"]) + (not flow["k"])) + av0 * ((not flow["probs"]) + (not flow["v"])))

    base_fwd = r["forward_flops"].value
    ad_fwd = r.calc("adapter_forward_flops", ADAPTER_FWD, "flop",
                    "LoRA adapters forward (A then B on every adapted module)", B=batch, S=seq, r=ft.rank,
                    W_ad=ft.width_per_token)
    r.calc("forward_flops", FORWARD_FT, "flop", "forward, one step (frozen base + adapters)", base=base_fwd,
           adapters=ad_fwd)
    base_dx = r.calc("base_input_grad_flops", BASE_DX, "flop",
                     "frozen base, input gradients dX = dY·W only (no weight gradients); layer 1's Q/K/V read the "
                     "frozen embedding and skip theirs", attn_proj=r["attention_projection_flops"].value,
                     mlp=r["mlp_flops"].value, lm_head=r["lm_head_flops"].value, B=batch, S=seq, W_skip=W_skip)
    score_bwd = r.calc("attention_score_backward_flops", SCORE_BWD, "flop",
                       "attention scores backward (layer 1: only the operands that carry a gradient)",
                       attn_score=r["attention_score_flops"].value, skip_score=skip_score)
    ad_bwd = r.calc("adapter_backward_flops", ADAPTER_BWD, "flop",
                    "LoRA adapters backward: weight and input gradients (layer 1's A on the embedding path: no dX)",
                    adapters=ad_fwd, B=batch, S=seq, r=ft.rank, D_skip=D_skip)
    r.calc("backward_flops", BACKWARD_FT, "flop", "backward, one step (no base weight gradients)",
           base_dx=base_dx, score_bwd=score_bwd, adapters_bwd=ad_bwd)
