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
    import os
    import sys

    from llmcalc.presets import load_gpu, load_model
    from llmcalc.tui.app import ExplorerApp
    for ref, load in ((model, load_model), (gpu, load_gpu)):
        if ref and "," in ref and not os.path.exists(ref):
            raise InputError(f"explore starts from one model and one GPU, not a list ({ref!r}); "
                             "press m or g inside to switch")
        if ref:
            load(ref)  # a bad name fails here with the closest names, before the screen opens
    import gc
    gc.enable()     # a long session: the cyclic collector back on (python -m llmcalc turns it off for one answer)
    app = ExplorerApp(model, gpu, screen)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InputError("llmcalc explore is interactive: run it in a terminal, not with its input or output "
                         "redirected (for numbers in a script use the other subcommands, e.g. llmcalc kv --json)")
    line = app.run()
    if line:
        print(line)
