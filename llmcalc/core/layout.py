"""Which tensor- and pipeline-parallel degrees a model can be split into: THE rule, used by every command.

Tensor parallelism (Megatron-LM, Shoeybi et al. 2019 sec. 3; vLLM's loader) splits each attention layer by
heads and each MLP by its intermediate width, so a degree T must

- divide the query heads H (each GPU holds H/T whole heads);
- divide the key/value heads K, or be a multiple of them (then each KV head is replicated on T/K GPUs:
  vLLM's ``QKVParallelLinear``); MLA models cache one shared latent, so K does not constrain them;
- divide the MLP width F (Megatron-LM's ``ColumnParallelLinear`` takes ``divide(F, T)``, which asserts it),
  and each routed expert's width under MoE.

The vocabulary does not constrain T: Megatron-LM pads it to a multiple of 128·T and vLLM to 64·T.
Pipeline parallelism needs at least one layer per stage: P ≤ L (stages may hold ⌊L/P⌋ or ⌈L/P⌉ layers).

Each function takes a scalar degree or a NumPy array of degrees (a sweep).
"""

from __future__ import annotations

from llmcalc.errors import InputError


def _widths(spec) -> list[int]:
    """The MLP widths a TP degree must divide: the dense MLP (if any layer has one) and a routed expert's."""
    widths = []
    dense_layers = spec.layers if not spec.moe else spec.moe.dense_layers
    if dense_layers:
        widths.append(spec.ffn)
    if spec.moe:
        widths.append(spec.moe.expert_ffn)
    return widths


def tp_allowed(spec, t):
    """True where ``t`` is a tensor-parallel degree the model can be split into (scalar or array)."""
    if hasattr(t, "shape"):
        import numpy as np
        positive = t >= 1
        t = np.where(positive, t, 1)
    elif t < 1 or t != int(t):
        return False
    else:
        positive = True
    ok = positive & (spec.heads % t == 0)
    if not spec.mla:
        ok = ok & ((spec.kv_heads % t == 0) | (t % spec.kv_heads == 0))
    for width in _widths(spec):
        ok = ok & (width % t == 0)
    return ok


def tp_degrees(spec, limit: int = 64) -> list[int]:
    """Every allowed tensor-parallel degree up to ``limit``."""
    return [t for t in range(1, limit + 1) if tp_allowed(spec, t)]


def check_tp(spec, t, what: str = "tensor-parallel degree") -> None:
    """Raise InputError, naming the constraint broken, when ``t`` (scalar or array) cannot split the model.
    ``what`` names the degree in the message: the concept by default, or the flag a command was given."""
    bad = _first_failing(t, tp_allowed(spec, t))
    if bad is None:
        return
    if bad < 1 or bad != int(bad):
        raise InputError(f"{what} {bad:g} must be a whole number of at least 1")
    bad = int(bad)
    hint = f"; use one of {', '.join(map(str, tp_degrees(spec)))}"
    if spec.heads % bad:
        raise InputError(f"{what} {bad} must divide the {spec.heads} attention heads of {spec.name}{hint}")
    if not spec.mla and spec.kv_heads % bad and bad % spec.kv_heads:
        raise InputError(f"{what} {bad} and the {spec.kv_heads} KV heads of {spec.name} must divide one another"
                         f"{hint}")
    width = next(w for w in _widths(spec) if w % bad)
    kind = "expert MLP width" if spec.moe and width == spec.moe.expert_ffn else "MLP width"
    raise InputError(f"{what} {bad} must divide the {kind} ({width:,}) of {spec.name}{hint}")


def check_pp(spec, p, what: str = "pipeline degree") -> None:
    """Raise InputError when ``p`` (scalar or array) leaves a pipeline stage without a layer, or is not whole."""
    bad = _first_failing(p, (p >= 1) & (p <= spec.layers) & (p == p // 1))
    if bad is None:
        return
    if bad < 1 or bad != int(bad):
        raise InputError(f"{what} {bad:g} must be a whole number of at least 1")
    raise InputError(f"{what} {int(bad):,} exceeds the {spec.layers} layers of {spec.name}: each pipeline stage "
                     f"needs at least one layer; use at most {spec.layers}")


def _first_failing(values, ok):
    """The first value where ``ok`` is false (scalar or array), or None."""
    if hasattr(ok, "shape") and getattr(ok, "ndim", 0):
        import numpy as np
        failing = np.flatnonzero(~np.asarray(ok, dtype=bool))
        if not failing.size:
            return None
        return float(np.broadcast_to(values, ok.shape).ravel()[failing[0]])
    return None if bool(ok) else float(values)
