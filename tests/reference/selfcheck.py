"""Quick self-check of the reference harness over every model preset.

    .venv/bin/python -m tests.reference.selfcheck            # fast: layer-extrapolated FLOPs/KV (~30 s)
    .venv/bin/python -m tests.reference.selfcheck --full     # every layer built and run (~2.5 min on 2 cores)
    .venv/bin/python -m tests.reference.selfcheck --verify   # both, and assert they agree exactly
    .venv/bin/python -m tests.reference.selfcheck gpt2 mixtral-8x7b -v   # some presets, with per-op FLOPs

Prints per preset: HF parameter count (full model on meta; llmcalc's count beside it), forward and backward
FLOPs at (B=1, S=128) and (B=2, S=512), KV-cache bytes at (B=1, S=128) in bf16, and the seconds taken.

Scaling (default mode): decoder layers of one model are identical up to a repeating pattern, so any per-model
quantity Q(L) that is a sum over layers is exactly affine in the layer count: Q(L) = Q(La) + (L-La)/p ·
(Q(La+p) - Q(La)), with period p (2 for Gemma-2's alternating sliding/full layers, else 1) and La past any
leading dense layers (DeepSeek-V3: 3 dense, so La=4, 5). ``--verify`` checks this against the full models.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path

import torch
import yaml

from llmcalc.spec import ModelSpec, model_from_mapping
from .hf import build_meta, count_flops, count_params, kv_cache_bytes, resolve_family

ROOT = Path(__file__).resolve().parents[2]
POINTS = ((1, 128), (2, 512))
KV_POINT = (1, 128)


def load_presets(names: list[str]) -> list[ModelSpec]:
    specs = []
    for path in sorted(glob.glob(str(ROOT / "presets" / "models" / "*.yaml"))):
        name = os.path.basename(path)[:-5]
        data = yaml.safe_load(open(path))
        spec = model_from_mapping(data, name)
        if names and name not in names and spec.name not in names and not set(names) & set(spec.aliases):
            continue
        specs.append(spec)
    return specs


def layer_plan(spec: ModelSpec) -> tuple[int, int] | None:
    """(La, period) for extrapolation, or None when the model is small enough to run whole."""
    period = 2 if resolve_family(spec) == "gemma2" else 1
    base = spec.moe.dense_layers if spec.moe else 0
    la = base + period
    if spec.layers <= la + period or (spec.layers - la) % period:
        return None
    return la, period


def measure(spec: ModelSpec, layers: int | None, verbose: bool = False) -> dict:
    kw = {} if layers is None else {"num_hidden_layers": layers}
    model = build_meta(spec, **kw)
    out = {}
    for b, s in POINTS:
        fc = count_flops(model, b, s, backward=True)
        out[(b, s)] = (fc.forward, fc.backward)
        if verbose:
            out[("ops", b, s)] = (fc.forward_by_op, fc.backward_by_op)
    model.to(torch.bfloat16)
    out["kv"] = kv_cache_bytes(model, *KV_POINT)
    return out


def extrapolate(qa, qb, la: int, period: int, layers: int):
    steps = (layers - la) // period
    if isinstance(qa, tuple):
        return tuple(extrapolate(x, y, la, period, layers) for x, y in zip(qa, qb))
    return qa + steps * (qb - qa)


def run(spec: ModelSpec, mode: str, verbose: bool) -> dict:
    t0 = time.perf_counter()
    full_model = build_meta(spec)
    params = count_params(full_model)
    del full_model
    t_build = time.perf_counter() - t0
    plan = layer_plan(spec)
    res: dict = {"params": params, "build_s": t_build}
    t1 = time.perf_counter()
    if mode in ("fast", "verify") and plan:
        la, p = plan
        a, b = measure(spec, la, verbose), measure(spec, la + p, verbose)
        res.update({k: extrapolate(a[k], b[k], la, p, spec.layers) for k in a if k[0] != "ops"})
        res["how"] = f"L={la},{la + p} -> {spec.layers}"
        if verbose:
            res.update({k: v for k, v in b.items() if k[0] == "ops"})
    if mode == "full" or mode == "verify" or not plan:
        full = measure(spec, None, verbose)
        if mode == "verify" and plan:
            bad = [k for k in full if k[0] != "ops" and full[k] != res[k]]
            res["verify"] = "exact" if not bad else f"MISMATCH {bad}: full {[full[k] for k in bad]}"
        else:
            res.update(full)
            res["how"] = "full"
    res["count_s"] = time.perf_counter() - t1
    return res


def fmt(x: float) -> str:
    return f"{x:.4g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="preset names (default: all)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--full", action="store_true", help="build and run every layer")
    g.add_argument("--verify", action="store_true", help="run both ways and compare")
    ap.add_argument("-v", "--verbose", action="store_true", help="print per-op FLOP breakdowns")
    args = ap.parse_args(argv)
    mode = "full" if args.full else "verify" if args.verify else "fast"
    torch.set_num_threads(2)
    try:
        from llmcalc.core.params import total_params
    except ImportError:  # pragma: no cover
        total_params = None

    t_all = time.perf_counter()
    print(f"{'preset':16s} {'HF params':>16s} {'llmcalc':>8s} {'fwd B1S128':>10s} {'bwd B1S128':>10s} "
          f"{'fwd B2S512':>10s} {'bwd B2S512':>10s} {'KV bf16 S128':>12s} {'build':>6s} {'count':>6s}  scaling")
    failures = 0
    for spec in load_presets(args.names):
        try:
            r = run(spec, mode, args.verbose)
        except NotImplementedError as e:
            print(f"{spec.name:16s} not buildable: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - report and go on
            failures += 1
            print(f"{spec.name:16s} FAILED: {type(e).__name__}: {e}")
            continue
        ours = total_params(spec) if total_params else None
        same = "" if ours is None else ("=" if ours == r["params"] else f"{ours - r['params']:+d}")
        if spec.published_params and spec.published_params != r["params"]:
            same += f" (published {spec.published_params - r['params']:+,d})"
        (f1, b1), (f2, b2) = r[POINTS[0]], r[POINTS[1]]
        print(f"{spec.name:16s} {r['params']:16,d} {same:>8s} {fmt(f1):>10s} {fmt(b1):>10s} {fmt(f2):>10s} "
              f"{fmt(b2):>10s} {r['kv']:12,d} {r['build_s']:6.2f} {r['count_s']:6.2f}  {r['how']}"
              + (f"  verify: {r['verify']}" if "verify" in r else ""))
        if "verify" in r and r["verify"] != "exact":
            failures += 1
        if args.verbose:
            for (b, s) in POINTS:
                if ("ops", b, s) in r:
                    fo, bo = r[("ops", b, s)]
                    print(f"    ops B={b} S={s} (as measured, before scaling): fwd {fo}  bwd {bo}")
    print(f"total {time.perf_counter() - t_all:.1f} s ({mode})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
