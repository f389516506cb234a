"""The fine-tuning flags (--method, --lora-rank, --lora-targets), declared once for train-mem, flops and parallel,
and a local runner for choice flags given as comma lists (``--method full,lora,qlora``): the command is evaluated
once per choice and the rows are stitched into one sweep, a key that does not apply to a choice being null.

Not a command module (cli.COMMANDS does not list it). Imports only typer and the standard library at top.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Optional

import typer

FT = "Fine-tuning"

MethodOpt = Annotated[Optional[str], typer.Option(
    "--method", help="full (every weight trains), lora (frozen base + adapters) or qlora (frozen NF4 base + "
    "adapters). A comma list sweeps. Default full.", rich_help_panel=FT, show_default=False)]
LoraRankOpt = Annotated[Optional[str], typer.Option(
    "--lora-rank", help="LoRA rank r (default 16). Lists/ranges sweep.", rich_help_panel=FT, show_default=False)]
LoraTargetsOpt = Annotated[Optional[str], typer.Option(
    "--lora-targets", help="Modules that get adapters: all-linear (default, as the QLoRA paper), attention, or "
    "kinds from q,k,v,o,gate,up,down (lm_head, embed and router may be named).", rich_help_panel=FT, show_default=False)]


def methods(text: str | None) -> list[str]:
    """``--method`` as a list of methods (one unless a comma list), each checked."""
    from llmcalc.core.lora import METHODS
    from llmcalc.errors import InputError

    names = [m.strip().lower() for m in (text or "full").split(",") if m.strip()]
    for m in names:
        if m not in METHODS:
            raise InputError(f"--method must be one of {', '.join(METHODS)} (or a comma list); got {m!r}")
    if not names:
        raise InputError("--method needs a value: full, lora or qlora")
    return list(dict.fromkeys(names))


def read_flags(inp, method: str | None, lora_rank: str | None, lora_targets: str | None) -> dict[str, Any]:
    """Check the fine-tuning flags together, record them as inputs, and return what the core takes:
    {"methods": [...], "lora_rank": number or array, "lora_targets": tuple of kinds}."""
    from llmcalc.core import lora
    from llmcalc.errors import InputError

    chosen = methods(method)
    if chosen == ["full"]:
        given = [f for f, v in (("--lora-rank", lora_rank), ("--lora-targets", lora_targets)) if v is not None]
        if given:
            raise InputError(f"{given[0]} applies to --method lora or qlora; add --method lora (or drop {given[0]})")
        inp.fixed("method", "full", unit="str")
        return {"methods": chosen, "lora_rank": lora.DEFAULT_RANK, "lora_targets": None}
    targets = lora.parse_targets(lora_targets)
    add_choice(inp, "method", chosen, "fine-tuning method")
    rank = inp.number("lora_rank", lora_rank, default=lora.DEFAULT_RANK, unit="count", label="LoRA rank",
                      integer=True)
    inp.fixed("lora_targets", ",".join(targets), unit="str")
    return {"methods": chosen, "lora_rank": rank, "lora_targets": targets}


def default_targets_note(flags: dict, given: str | None) -> list[str]:
    if flags["methods"] == ["full"] or given is not None:
        return []
    return ["LoRA targets all-linear (q,k,v,o,gate,up,down in every layer; not the LM head or embeddings), as the "
            "QLoRA paper recommends (Dettmers et al. 2023); choose others with --lora-targets"]


def add_choice(inp, name: str, values: list[str], label: str) -> None:
    """A choice input: fixed when one value; a sweep axis (of choice indices, until ``label_choices``) when many."""
    if len(values) == 1:
        inp.fixed(name, values[0], unit="str")
        return
    inp.number(name, ",".join(str(i) for i in range(len(values))), unit="str", label=label, minimum=-1)
    inp.items[name].choices = values


def label_choices(inp, name: str) -> None:
    """After ``Inputs.grid()``: a swept choice axis shows its names, one per row."""
    item = inp.items.get(name)
    if item is None or not hasattr(item, "choices") or name not in inp.swept:
        return
    item.value = [item.choices[int(i)] for i in item.value]
    if name == "method":               # the LoRA inputs do not apply to full fine-tuning's rows
        for other in ("lora_rank", "lora_targets"):
            it = inp.items.get(other)
            if it is None:
                continue
            values = it.value.tolist() if hasattr(it.value, "tolist") else (
                list(it.value) if isinstance(it.value, (list, tuple)) else [it.value] * len(item.value))
            it.value = [None if m == "full" else x for m, x in zip(item.value, values)]
            if other not in inp.swept:
                inp.swept.append(other)


def by_choice(inp, grid: dict, name: str, values: list[str], compute: Callable[[str], Any]):
    """Evaluate ``compute(choice)`` for each choice and keep, row by row, the one the grid's ``name`` axis
    picks. One choice: ``compute`` itself. Keys a choice lacks are null (NaN) in its rows."""
    if len(values) == 1:
        return compute(values[0])
    import numpy as np

    from llmcalc.core.formula import Results

    index = np.asarray(grid[name])
    n = index.shape[0]
    runs = [compute(v) for v in values]
    keys = list(dict.fromkeys(k for r in runs for k in r))
    out = Results()
    for k in keys:
        first = next(r[k] for r in runs if k in r)
        cols = [np.broadcast_to(np.asarray(r[k].value), (n,)) if k in r else None for r in runs]
        boolean = all(c is None or c.dtype == bool for c in cols)
        textual = any(c is not None and c.dtype.kind in "OUS" for c in cols)
        if boolean or textual:
            col = np.empty(n, dtype=object)
            col[:] = None
        else:
            col = np.full(n, np.nan)
        for i, c in enumerate(cols):
            if c is not None:
                col[index == i] = c[index == i]
        out.put(k, col, first.unit, first.label, first.note)
    return out
