"""When an answer is "does not fit", say what would: each suggestion is computed (the same core run with
one thing changed, at the point that needs the most memory) and printed with the command that shows it."""

from __future__ import annotations

from typing import Any, Callable

TP_CHOICES = (2, 4, 8, 16, 32, 64)


def _at_worst(items: dict, results, key: str) -> dict[str, Any]:
    """Scalar inputs at the sweep point where ``key`` (a memory total) is largest."""
    import numpy as np

    value = results[key].value
    i = int(np.argmax(np.asarray(value, dtype=float).reshape(-1))) if np.ndim(value) else 0
    point = {}
    for name, inp in items.items():
        v = inp.value
        if isinstance(v, (list, tuple)) or (hasattr(v, "shape") and np.ndim(v)):
            v = v[i] if len(v) > i else v[0]
        point[name] = v.item() if hasattr(v, "item") else v
    return point


def _command(name: str, spec, gpu, point: dict, flags: dict[str, Any], keep: tuple[str, ...]) -> str:
    parts = [f"llmcalc {name} -m {spec.name} -g {gpu.name}"]
    for key in keep:
        value = flags.get(key, point.get(key))
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {_text(value)}")
    for key, value in flags.items():
        if key not in keep:
            parts.append(f"--{key.replace('_', '-')} {_text(value)}")
    return " ".join(parts)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def first_fit(changes: list[dict[str, Any]], fits: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    for change in changes:
        try:
            if fits(change):
                return change
        except Exception:  # noqa: BLE001 - a change the model does not allow (e.g. --tp not dividing heads)
            continue
    return None


def kv_fixes(spec, gpu, items: dict, results) -> list[str]:
    """For ``kv``: the smallest --tp, an 8-bit cache, 4-bit weights, or a larger GPU preset that fits."""
    from llmcalc.core.kv import kv_report

    point = _at_worst(items, results, "total_bytes_per_gpu")

    def fits(p: dict, on) -> bool:
        r = kv_report(spec, p["batch"], p["seq"], kv_dtype=p["kv_dtype"], weight_dtype=p["weight_dtype"],
                      group_size=int(p.get("kv_group_size") or 0),
                      weight_group_size=int(p.get("weight_group_size") or 0), gpu=on, mem_util=p["mem_util"],
                      tp=int(p["tp"]), **_engine(p))
        return bool(r["fits"].value)

    return _fixes("kv", spec, gpu, point, fits, ("batch", "seq", "kv_dtype", "weight_dtype", "tp") + _engine_kept(point))


def serve_fixes(spec, gpu, items: dict, results) -> list[str]:
    """For ``serve``: the same alternatives, judged by serve's own capacity (prompt + gen tokens cached)."""
    from llmcalc.core import serve as sv

    point = _at_worst(items, results, "kv_bytes")

    def fits(p: dict, on) -> bool:
        r = sv.serve(spec, on, p["batch"], p["prompt"], p["gen"], weight_dtype=p["weight_dtype"],
                     kv_dtype=p["kv_dtype"], tp=int(p["tp"]), mem_util=p["mem_util"], **_engine(p))
        return bool(r["fits"].value)

    return _fixes("serve", spec, gpu, point, fits,
                  ("batch", "prompt", "gen", "kv_dtype", "weight_dtype", "tp") + _engine_kept(point))


def _engine(p: dict) -> dict:
    """The point's prefill engine, which decides what fits beside the cache (core/capacity.py)."""
    return {"engine": p.get("engine") or "vllm", "max_batched_tokens": int(p.get("max_batched_tokens") or 8192)}


def _engine_kept(point: dict) -> tuple[str, ...]:
    """Repeat --engine and --max-batched-tokens in a suggested command only when they were not the defaults."""
    return tuple(k for k, default in (("engine", "vllm"), ("max_batched_tokens", 8192))
                 if point.get(k) not in (None, default))


def _fixes(command: str, spec, gpu, point: dict, fits: Callable, keep: tuple[str, ...]) -> list[str]:
    def run(change: dict, on=gpu) -> bool:
        return fits({**point, **change}, on)

    notes = []
    tp = first_fit([{"tp": t} for t in TP_CHOICES if t > point["tp"]], run)
    if tp:
        notes.append(f"fits with --tp {tp['tp']}: {_command(command, spec, gpu, point, tp, keep)}")
    if point["kv_dtype"] in ("fp32", "bf16", "fp16") and run({"kv_dtype": "fp8"}):
        notes.append(f"fits with an fp8 cache: {_command(command, spec, gpu, point, {'kv_dtype': 'fp8'}, keep)}")
    if point["weight_dtype"] in ("fp32", "bf16", "fp16", "fp8", "int8") and run({"weight_dtype": "int4"}):
        notes.append("fits with int4 weights: "
                     + _command(command, spec, gpu, point, {"weight_dtype": "int4"}, keep))
    bigger = _larger_gpu(gpu, lambda g: run({}, on=g))
    if bigger is not None:
        notes.append(f"fits on one {bigger.name}: {_command(command, spec, bigger, point, {}, keep)}")
    if not notes:
        notes.append("nothing simple fits: fewer or shorter sequences (max_batch, max_seq), or shard further with "
                     "more GPUs")
    return notes


def _larger_gpu(gpu, fits: Callable) -> Any:
    """The preset GPU with the least memory above this one's on which ``fits`` holds."""
    from llmcalc.presets import load_all

    try:
        gpus = sorted((g for g in load_all("gpus") if g.memory_bytes > gpu.memory_bytes),
                      key=lambda g: (g.memory_bytes, g.name))
    except Exception:  # noqa: BLE001 - a broken user preset must not turn an answer into an error
        return None
    for g in gpus:
        try:
            if fits(g):
                return g
        except Exception:  # noqa: BLE001 - e.g. a chip without the needed peak
            continue
    return None


def train_mem_fixes(spec, gpu_spec, v, r, kw, inp) -> list[str]:
    """For ``train-mem`` (a single point that does not fit): ZeRO-3 over the smallest --dp, QLoRA, or the
    smallest larger preset GPU (core/memory.what_fits), each with the command that shows it."""
    from llmcalc.core import memory as mem
    from llmcalc.presets import load_all
    from llmcalc.units import fmt_bytes

    def room(g) -> float:
        return float(mem.USABLE(M=g.device_memory_bytes, R=v["reserve"], f=v["fragmentation"]))

    gpus = []
    for g in load_all("gpus"):  # one directory listing (a lookup per name lists it once per GPU)
        if g.device_memory_bytes > gpu_spec.device_memory_bytes:
            gpus.append((g.name, room(g)))
    found = mem.what_fits(spec, v["batch"], v["seq"], float(r["usable_memory_bytes"].value), gpus, **kw)
    if not found:
        return ["does not fit, and neither ZeRO-3 over up to 4,096 GPUs, QLoRA nor a larger preset GPU makes it fit: "
                "try --recompute full, a smaller --batch or --seq"]
    base = {"-m": spec.name, "-g": gpu_spec.name, "--batch": inp.items["batch"].value,
            "--seq": inp.items["seq"].value, "--precision": kw["precision"], "--method": kw["method"],
            "--recompute": kw["recompute"], "--optimizer": kw["optimizer"], "--activations": kw["activations"]}
    if kw["method"] != "full":
        base.update({"--lora-rank": int(kw["lora_rank"]), "--lora-targets": ",".join(kw["lora_targets"])})
    for flag, key, default in (("--zero", "zero", 0), ("--dp", "dp", 1), ("--tp", "tp", 1), ("--pp", "pp", 1)):
        if kw[key] != default:
            base[flag] = int(kw[key])
    if not kw["flash"]:
        base["--no-flash"] = ""
    notes = []
    for change, need in found:
        flags = dict(base)
        flags.update({("-g" if k == "gpu" else "--" + k): val for k, val in change.items()})
        what = ", ".join(f"--{k} {val}" if k != "gpu" else f"-g {val}" for k, val in change.items())
        cmd = "llmcalc train-mem " + " ".join(f"{k} {val}".strip() for k, val in flags.items())
        notes.append(f"does not fit; it would with {what} ({fmt_bytes(need)} per GPU): {cmd}")
    return notes
