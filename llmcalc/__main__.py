"""`python -m llmcalc` and the `llmcalc` script (pyproject's [project.scripts])."""

import gc


def run() -> int:
    # One answer is a short process that makes few reference cycles, and the cyclic collector, set off again and
    # again by start-up's imports (Typer, Click, llmcalc), costs about 3 ms of a 65 ms answer: off for the CLI
    # (the Python API and tests keep it; `llmcalc explore`, a long session, turns it back on).
    gc.disable()
    from llmcalc.cli import main
    return main()


if __name__ == "__main__":
    raise SystemExit(run())
