"""`llmcalc explore`: the interactive explorer (optional extra `llmcalc[tui]`); Textual loads only here."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

EPILOG = ("Examples:\n\n  llmcalc explore\n\n  llmcalc explore -m llama-3.1-70b -g h100-sxm\n\n"
          "  llmcalc explore --screen kv\n\nNeeds the extra: pip install 'llmcalc[tui]'.\n")


def explore(
    model: Annotated[Optional[str], typer.Option("-m", "--model", help="Model preset to start with.")] = None,
    gpu: Annotated[Optional[str], typer.Option("-g", "--gpu", help="GPU preset to start with.")] = None,
    screen: Annotated[Optional[str], typer.Option(
        "--screen", help="Simulation to open: bound, operator, train-mem, kv, specdec or serve.")] = None,
) -> None:
    """Explore the seeds' simulations interactively: move a value, watch the arithmetic (needs Textual)."""
    from llmcalc.errors import InputError
    try:
        import textual  # noqa: F401
    except ImportError:
        raise InputError("llmcalc explore needs Textual, which is not installed: pip install 'llmcalc[tui]'") from None
    from llmcalc.presets import load_gpu, load_model
    from llmcalc.tui.app import ExplorerApp
    for ref, load in ((model, load_model), (gpu, load_gpu)):
        if ref:
            load(ref)  # a bad name fails here with the closest names, before the screen opens
    line = ExplorerApp(model, gpu, screen).run()
    if line:
        print(line)
