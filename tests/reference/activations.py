"""Op-by-op list of the tensors a GPT-2 and a Llama layer save for backward, in symbols.

    .venv/bin/python -m tests.reference.activations          # prints the tables (about 5 s)

Tiny models (3 layers) run for real on the CPU with dimensions chosen so every size is unambiguous
(B=3, S=40, heads=4, head_dim=32, H=128, F=352, V=1000; kv_heads=2 for the GQA variant); each saved
storage's shape is then rewritten in symbols. Layer 1 (a middle layer) is listed: layer 0 additionally
holds the few tensors shared by all layers (rope cos/sin), listed under "once per model".
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict

import torch

from llmcalc.spec import ModelSpec
from .hf import SavedReport, build_cpu, live_bytes_after_forward, saved_activation_report

DIMS = {"B": 3, "S": 40, "n": 4, "d": 32, "H": 128, "F": 352, "V": 1000, "kv": 2}
# n = heads, d = head_dim, H = n·d, kv = kv_heads (GQA variant only), F = ffn

GPT2 = ModelSpec(name="gpt2-tiny", layers=3, hidden=128, heads=4, kv_heads=4, head_dim=32, ffn=352, vocab=1000,
                 mlp="plain", activation="gelu_tanh", norm="layernorm", norm_bias=True, qkv_bias=True, o_bias=True,
                 mlp_bias=True, tie_embeddings=True, position="learned", max_seq=64, family="gpt2")
LLAMA = ModelSpec(name="llama-tiny", layers=3, hidden=128, heads=4, kv_heads=4, head_dim=32, ffn=352, vocab=1000,
                  max_seq=64, family="llama")
LLAMA_GQA = dataclasses.replace(LLAMA, name="llama-gqa-tiny", kv_heads=2)


def _symbols(value: int, dims: dict[str, int]) -> tuple[str, ...] | None:
    """Factor one dimension into up to three symbols (shortest first)."""
    if value == 1:
        return ()
    names = [k for k in dims if k != "kv" or dims.get("_gqa")]
    for r in (1, 2, 3):
        for combo in itertools.combinations_with_replacement(names, r):
            p = 1
            for c in combo:
                p *= dims[c]
            if p == value:
                return combo
    return None


def monomial(shape: tuple[int, ...], dims: dict[str, int]) -> str:
    syms: list[str] = []
    for v in shape:
        f = _symbols(v, dims)
        if f is None:
            return "·".join(map(str, shape))
        syms.extend(f)
    # canonical: n·d -> H, kv·d -> Hkv
    while "n" in syms and "d" in syms:
        syms.remove("n"), syms.remove("d"), syms.append("H")
    while "kv" in syms and "d" in syms:
        syms.remove("kv"), syms.remove("d"), syms.append("Hkv")
    order = {k: i for i, k in enumerate(["B", "n", "kv", "S", "H", "Hkv", "F", "d", "V"])}
    syms.sort(key=lambda s: order.get(s, 99))
    return "·".join(syms) if syms else "1"


def sym_shape(shape: tuple[int, ...], dims: dict[str, int]) -> str:
    parts = []
    for v in shape:
        f = _symbols(v, dims)
        parts.append(str(v) if f is None else ("1" if not f else "·".join(f)))
    return "[" + ", ".join(parts) + "]"


def layer_rows(rep: SavedReport, layer: int | None, dims: dict[str, int]):
    """Rows for the entries of one layer (layer=None: outside the layers)."""
    rows = []
    by_index = {e.index: e for e in rep.entries}
    for e in rep.entries:
        if e.layer != layer or e.kind not in ("activation", "input"):
            continue
        elem = e.tensor_bytes // max(1, torch.Size(e.shape).numel()) if e.shape else e.tensor_bytes
        alias = ""
        if not e.first:
            a = by_index[e.alias_of]
            alias = f"same storage as #{a.index} ({a.module.split('.')[-1]} {a.node})"
        view = "" if e.tensor_bytes == e.storage_bytes else f" (view; storage {e.storage_bytes} B)"
        rows.append(dict(i=e.index, module=e.sub if layer is not None else e.module, op=f"{e.node}.{e.attr[7:]}",
                         shape=sym_shape(e.shape, dims), dtype=e.dtype, elem=elem,
                         mono=monomial(e.shape, dims), counted=e.first, note=alias + view))
    return rows


def summarise(rows) -> str:
    acc: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["counted"]:
            acc[r["mono"]] += r["elem"]
    return " + ".join(f"{v}·{k}" for k, v in sorted(acc.items(), key=lambda kv: -len(kv[0])))


def print_table(title: str, rep: SavedReport, layer: int | None, dims: dict[str, int]) -> None:
    rows = layer_rows(rep, layer, dims)
    print(f"\n### {title}")
    print(f"| # | module | autograd node.saved | shape | dtype | B/elt | counted |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        c = "yes" if r["counted"] else "no: " + r["note"]
        print(f"| {r['i']} | {r['module']} | {r['op']} | {r['shape']} | {r['dtype']} | {r['elem']} | {c} |")
    print(f"bytes = {summarise(rows)}")


def report(spec: ModelSpec, dtype: torch.dtype, dims: dict[str, int], **kw) -> SavedReport:
    model = build_cpu(spec)
    return saved_activation_report(model, dims["B"], dims["S"], dtype, **kw)


def main() -> None:
    torch.set_num_threads(2)
    for spec in (GPT2, LLAMA, LLAMA_GQA):
        dims = dict(DIMS, _gqa=spec.kv_heads != spec.heads)
        for dtype in (torch.float32, torch.bfloat16):
            rep = report(spec, dtype, dims)
            name = f"{spec.name} {str(dtype)[6:]}"
            print_table(f"{name}: one layer (layer 1)", rep, 1, dims)
            extra0 = [r for r in layer_rows(rep, 0, dims) if r["counted"]]
            n1 = len([r for r in layer_rows(rep, 1, dims) if r["counted"]])
            if len(extra0) != n1:
                l1 = {(r["op"], r["shape"], r["dtype"]) for r in layer_rows(rep, 1, dims) if r["counted"]}
                once = [r for r in extra0 if (r["op"], r["shape"], r["dtype"]) not in l1]
                print("once per model (first saved in layer 0): " +
                      "; ".join(f"{r['module']} {r['op']} {r['shape']} {r['dtype']}" for r in once))
            print_table(f"{name}: outside the layers (embeddings, final norm, LM head, loss)", rep, None, dims)
            per = rep.per_layer()
            print(f"totals: {per}; all = {rep.total_bytes} B")
        if spec is GPT2:
            rep = report(spec, torch.float32, dims, dropout=True)
            print_table(f"{spec.name} float32 WITH dropout (p=0.1, train mode): layer 1", rep, 1, dims)
        m = build_cpu(spec)
        for dtype in (torch.float32, torch.bfloat16):
            ck = live_bytes_after_forward(m, dims["B"], dims["S"], dtype, checkpointing=True)
            full = live_bytes_after_forward(m, dims["B"], dims["S"], dtype)
            print(f"{spec.name} {str(dtype)[6:]}: live after forward (minus outputs): no checkpointing "
                  f"{full['live_minus_outputs']} B, HF checkpointing {ck['live_minus_outputs']} B")


if __name__ == "__main__":
    main()
