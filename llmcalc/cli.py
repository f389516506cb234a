"""The Typer application: one thin command per subcommand, errors as one line on stderr.

Only typer and the standard library load at start-up; each command imports the core, NumPy (sweeps)
and Rich (tables) when it runs.
"""

from __future__ import annotations

import sys

import typer
import typer.main

import importlib

from llmcalc import __version__
from llmcalc.errors import ExitStatus, InputError

HELP = "Count every FLOP, trace every byte: training and inference arithmetic for transformers."

# (command name, module in llmcalc.commands exporting a function of the same name and EPILOG)
COMMANDS = (("flops", "flops"), ("train-mem", "train_mem"), ("kv", "kv"), ("roofline", "roofline"),
            ("serve", "serve"), ("specdec", "specdec"), ("parallel", "parallel"), ("presets", "presets"))


def _version(value: bool) -> None:
    if value:
        print(f"llmcalc {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Count every FLOP, trace every byte: training and inference arithmetic for transformers."""


def make_app(only: str | None = None) -> typer.Typer:
    """The app with every subcommand, or with just ``only`` (what a run needs: Typer's introspection of
    all eight commands' options costs ~80 ms, one command's a tenth of that)."""
    application = typer.Typer(name="llmcalc", no_args_is_help=True, pretty_exceptions_enable=False,
                              add_completion=True, context_settings={"help_option_names": ["-h", "--help"]},
                              help=HELP)
    application.callback()(_root)
    for name, module in COMMANDS:
        if only is not None and name != only:
            continue
        mod = importlib.import_module(f"llmcalc.commands.{module}")
        if name == "presets":
            application.add_typer(mod.app, name="presets")
        else:
            application.command(name, epilog=mod.EPILOG)(getattr(mod, module))
    return application


app = make_app()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; bad input is one line on stderr and exit 2, never a traceback.

    ``-m a,b,c`` and ``-g x,y`` compare: the command runs once per model × GPU and the reports are
    printed together, one row per model/GPU (and per sweep point). ``-g all``: every GPU preset."""
    args = list(sys.argv[1:] if argv is None else argv)
    variants = _comparisons(args)
    if variants is None:
        return _run(args)
    from llmcalc import cli_support
    from llmcalc.render import combine

    cli_support.COLLECTED = []
    try:
        codes = []
        for variant in variants:
            code = _run(variant)
            if code not in (ExitStatus.OK, ExitStatus.CHECK_FAILED):
                return code
            codes.append(code)
        collected = cli_support.COLLECTED
    finally:
        cli_support.COLLECTED = None
    if not collected:
        return max(codes, default=0)
    options = collected[0][1]
    try:
        cli_support.emit_report(combine([r for r, _ in collected]), **options)
    except InputError as exc:
        _error(str(exc))
        return ExitStatus.BAD_INPUT
    return max(codes)


_COMPARABLE = ("-m", "--model", "-g", "--gpu")


def _comparisons(args: list[str]) -> list[list[str]] | None:
    """Expand comma lists given to -m/--model and -g/--gpu into one argument list per combination."""
    import itertools
    import os

    slots: list[tuple[int, str, list[str]]] = []
    for i, a in enumerate(args):
        flag, eq, value = a.partition("=")
        if flag in _COMPARABLE and eq:
            pass
        elif a in _COMPARABLE and i + 1 < len(args):
            flag, value = a, args[i + 1]
            i += 1
        else:
            continue
        if flag in ("-g", "--gpu") and value.strip().lower() == "all" and not os.path.exists(value):
            from llmcalc.presets import preset_files
            slots.append((i, flag if eq else "", list(preset_files("gpus"))))
        elif "," in value and not os.path.exists(value):
            names = [v.strip() for v in value.split(",") if v.strip()]
            if names:
                slots.append((i, flag if eq else "", names))
    if not slots:
        return None
    variants = []
    for combo in itertools.product(*(names for _, _, names in slots)):
        v = list(args)
        for (i, flag, _), name in zip(slots, combo):
            v[i] = f"{flag}={name}" if flag else name
        variants.append(v)
    return variants


def _run(argv: list[str]) -> int:
    from typer import Abort
    try:
        from typer._click.exceptions import ClickException  # Typer >= 0.26 ships its own Click
    except ImportError:
        from click.exceptions import ClickException

    try:
        rv = _click_command(_subcommand(argv)).main(args=argv, prog_name="llmcalc", standalone_mode=False)
    except InputError as exc:
        _error(str(exc))
        return ExitStatus.BAD_INPUT
    except ClickException as exc:
        _error(exc.format_message())
        return ExitStatus.BAD_INPUT if exc.exit_code == 2 else exc.exit_code
    except Abort:
        _error("aborted")
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            return ExitStatus.OK
    except KeyboardInterrupt:
        return 130
    return rv if isinstance(rv, int) else ExitStatus.OK


_BUILT: dict = {}


def _subcommand(argv: list[str]) -> str | None:
    """The subcommand a run asks for (its first word), if it is one; None for --help, --version, typos."""
    names = {name for name, _ in COMMANDS}
    first = argv[0] if argv else None
    return first if first in names else None


def _click_command(only: str | None = None):
    """The Click command Typer builds, once per process and subcommand (tests call main() often)."""
    if only not in _BUILT:
        _BUILT[only] = typer.main.get_command(app if only is None else make_app(only))
    return _BUILT[only]


def _error(message: str) -> None:
    text = " ".join(str(message).split())  # one line
    import re
    text = re.sub(r"( [^.?!]+[.?!])(\1)+", r"\1", text)  # Click and Typer both append "Did you mean …?"
    sys.stderr.write(f"llmcalc: error: {text}\n")
