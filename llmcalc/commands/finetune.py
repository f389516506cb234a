"""The fine-tuning flags (--method, --lora-rank, --lora-targets), declared once for train-mem, flops and parallel.
A comma list of methods is an outer sweep axis of ``Inputs`` (``Inputs.evaluate`` runs the core once per method).

Not a command module (cli.COMMANDS does not list it). Imports only typer and the standard library at top.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

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


def read_flags(inp, method: str | None, lora_rank: str | None, lora_targets: str | None) -> dict[str, Any]:
    """Check the fine-tuning flags together, record them as inputs, and return what the core takes:
    {"methods": [...], "lora_rank": number or array, "lora_targets": tuple of kinds}."""
    from llmcalc.core.params import DEFAULT_RANK, METHODS
    from llmcalc.errors import InputError

    picked = inp.choices("method", method, METHODS, default="full", label="fine-tuning method")
    chosen = picked if isinstance(picked, list) else [picked]
    if chosen == ["full"]:
        given = [f for f, v in (("--lora-rank", lora_rank), ("--lora-targets", lora_targets)) if v is not None]
        if given:
            raise InputError(f"{given[0]} applies to --method lora or qlora; add --method lora (or drop {given[0]})")
        return {"methods": chosen, "lora_rank": DEFAULT_RANK, "lora_targets": None}
    from llmcalc.core import lora
    targets = lora.parse_targets(lora_targets)
    rank = inp.number("lora_rank", lora_rank, default=DEFAULT_RANK, unit="count", label="LoRA rank",
                      integer=True)
    inp.fixed("lora_targets", ",".join(targets), unit="str")
    return {"methods": chosen, "lora_rank": rank, "lora_targets": targets}


def default_targets_note(flags: dict, given: str | None) -> list[str]:
    if flags["methods"] == ["full"] or given is not None:
        return []
    return ["LoRA targets all-linear (q,k,v,o,gate,up,down in every layer; not the LM head or embeddings), as the "
            "QLoRA paper recommends (Dettmers et al. 2023); choose others with --lora-targets"]


def blank_full(inp) -> None:
    """After ``Inputs.evaluate``: in a sweep over --method, the LoRA inputs are null in full fine-tuning's rows."""
    item = inp.items.get("method")
    if item is None or "method" not in inp.swept:
        return
    rows = item.value
    for other in ("lora_rank", "lora_targets"):
        it = inp.items.get(other)
        if it is None:
            continue
        values = it.value.tolist() if hasattr(it.value, "tolist") else (
            list(it.value) if isinstance(it.value, (list, tuple)) else [it.value] * len(rows))
        it.value = [None if m == "full" else x for m, x in zip(rows, values)]
        if other not in inp.swept:
            inp.swept.append(other)


def read_one(method: str | None, lora_rank: str | None, lora_targets: str | None) -> dict[str, Any]:
    """One fine-tuning method and rank, for a command whose sweep is over something else (parallel's layouts):
    {"method": ..., "lora_rank": ..., "lora_targets": ...}."""
    from llmcalc.cli_support import Inputs
    from llmcalc.errors import InputError
    from llmcalc.units import is_sweep
    if method and "," in method:
        raise InputError("parallel takes one --method (full, lora or qlora); train-mem and flops compare several")
    if lora_rank is not None and is_sweep(lora_rank):
        raise InputError("parallel takes one --lora-rank")
    flags = read_flags(Inputs(), method, lora_rank, lora_targets)
    return dict(method=flags["methods"][0], lora_rank=flags["lora_rank"], lora_targets=flags["lora_targets"])
