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
from llmcalc.errors import ExitStatus, InputError, OutputError, printable

HELP = "Count every FLOP, trace every byte: training and inference arithmetic for transformers."

# (command name, module in llmcalc.commands exporting a function of the same name and EPILOG)
COMMANDS = (("flops", "flops"), ("train-mem", "train_mem"), ("kv", "kv"), ("roofline", "roofline"),
            ("serve", "serve"), ("specdec", "specdec"), ("parallel", "parallel"), ("presets", "presets"),
            ("explore", "explore"))


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
            func = getattr(mod, module)
            # the docstring as one paragraph: its hard line breaks would show in --help mid-sentence
            application.command(name, epilog=mod.EPILOG, help=" ".join((func.__doc__ or "").split()))(func)
    return application


def __getattr__(name: str):
    """``llmcalc.cli.app``, the whole app, is built on first use: a run builds only its own subcommand
    (``_click_command``), so it imports and introspects one command module, not eight."""
    if name == "app":
        globals()["app"] = application = make_app()
        return application
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; bad input is one line on stderr and exit 2, never a traceback.

    ``-m a,b,c`` and ``-g x,y`` compare: the command runs once per model × GPU and the reports are
    printed together, one row per model/GPU (and per sweep point). ``-g all``: every GPU preset.

    Standard output that cannot take the answer is handled here, not by Click (which exits 1 on EPIPE):
    the reader leaving early (``| head -1``) is exit 0 and silence, as ripgrep does: the reader had what it
    wanted; a closed stdout (``>&-``) or a full device (``>/dev/full``) is one line and exit 2, since the
    answer was not delivered. A console that cannot encode ×, ·, µ or box drawing gets ASCII stand-ins."""
    if sys.stdout is None:  # started with fd 1 closed
        _error("standard output is closed; nothing can be printed (run without >&-)")
        return ExitStatus.BAD_INPUT
    real = sys.stdout
    for stream in (sys.stdout, sys.stderr):
        _degrade_encoding(stream)
    sys.stdout = _Stdout(real)
    try:
        code = _main(argv)
    except OutputError as exc:
        return _output_failed(real, exc.errno)
    finally:
        sys.stdout = real
    try:
        real.flush()  # what is still buffered: the write that fails may be this one
    except OSError as exc:
        return _output_failed(real, exc.errno)
    return code


def _main(argv: list[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    variants = None if args[:1] == ["explore"] else _comparisons(args)  # explore: one session, not one per name
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
    if any(a in ("--install-completion", "--show-completion") for a in argv):
        return _completion(argv)
    return _invoke(argv)


def _invoke(argv: list[str]) -> int:
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
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `llmcalc` (or a group): the help is the answer
            message = exc.format_message()  # empty when Typer's Rich formatter already printed it
            if message:
                sys.stdout.write(message + "\n")
            return ExitStatus.OK
        _error(exc.format_message())
        return ExitStatus.BAD_INPUT if exc.exit_code == 2 else exc.exit_code
    except Abort:
        _error("aborted")
        return 130
    except OutputError:
        raise
    except OSError as exc:  # a path that cannot be probed (name too long, a loop), an unwritable HOME
        name = str(exc.filename or "")
        where = f" {name if len(name) <= 120 else name[:60] + '…' + name[-60:]}" if name else ""
        what = "install shell completion in" if "--install-completion" in argv else "use"
        _error(f"can't {what}{where}: {exc.strerror or exc}")
        return ExitStatus.BAD_INPUT
    except MemoryError as exc:  # a sweep too large for this machine: say so, never a traceback
        detail = str(exc).split(" for an array")[0] if str(exc) else "out of memory"
        _error(f"not enough memory for this run ({detail}); use fewer sweep points")
        return ExitStatus.BAD_INPUT
    except KeyboardInterrupt:
        return 130
    return rv if isinstance(rv, int) else ExitStatus.OK


def _completion(argv: list[str]) -> int:
    """Typer's completion flags, whose failures (a shell it cannot detect: "Shell None is not supported", on
    stdout, exit 1) become one line on stderr and exit 2 like any other bad input or environment."""
    import io
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    try:
        try:
            code = _invoke(argv)
        except SystemExit as exc:  # Typer's callbacks end with sys.exit(0) when they succeed
            code = exc.code if isinstance(exc.code, int) else 0
        text, problem = sys.stdout.getvalue(), sys.stderr.getvalue()
    finally:
        sys.stdout, sys.stderr = out, err
    if code == 1:
        detail = (problem + " " + text).strip() or "it failed"
        _error(f"can't set up shell completion: {detail} (run it from bash, zsh, fish or powershell)")
        return ExitStatus.BAD_INPUT
    sys.stderr.write(problem)
    sys.stdout.write(text)
    return code


_BUILT: dict = {}


def _subcommand(argv: list[str]) -> str | None:
    """The subcommand a run asks for (its first word), if it is one; None for --help, --version, typos."""
    names = {name for name, _ in COMMANDS}
    first = argv[0] if argv else None
    return first if first in names else None


def _click_command(only: str | None = None):
    """The Click command Typer builds, once per process and subcommand (tests call main() often)."""
    if only not in _BUILT:
        _BUILT[only] = typer.main.get_command(make_app(only))
    return _BUILT[only]


def _error(message: str) -> None:
    text = " ".join(printable(message).split())  # one line, no terminal escapes
    import re
    text = re.sub(r"( [^.?!]+[.?!])(\1)+", r"\1", text)  # Click and Typer both append "Did you mean …?"
    if len(text) > 2000:
        text = text[:1000] + " … " + text[-500:]
    try:
        sys.stderr.write(f"llmcalc: error: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # stderr closed too: the exit status still tells
        pass


# ----------------------------------------------------------------------------------------------
# Standard output that may be closed, full, gone, or unable to encode the answer


class _Stdout:
    """sys.stdout, whose write errors become OutputError (which Click does not intercept)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise OutputError(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(exc) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _output_failed(stream, errno_: int | None) -> int:
    """Point fd 1 at /dev/null so the interpreter's last flush cannot fail again; EPIPE is a quiet exit 0."""
    import errno
    import os
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (tests pass a StringIO)
    if errno_ == errno.EPIPE:
        return ExitStatus.OK
    reason = os.strerror(errno_) if errno_ else "write failed"
    _error(f"can't write the output to standard output: {reason}")
    return ExitStatus.BAD_INPUT


_STAND_INS = {"×": "x", "·": "*", "µ": "u", "−": "-", "–": "-", "—": "-", "…": "...", "≤": "<=", "≥": ">=",
              "≈": "~", "∞": "inf", "²": "^2", "³": "^3", "ᵀ": "^T", "√": "sqrt", "Σ": "sum", "⌈": "ceil(",
              "⌉": ")", "⌊": "floor(", "⌋": ")", "→": "->", "₂": "2", "‘": "'", "’": "'", "“": '"', "”": '"',
              "│": "|", "─": "-", "┃": "|", "━": "-", "█": "#", "▏": "|", "•": "*", "✓": "v", "✗": "x"}


def _stand_in(err: UnicodeError):
    bad = err.object[err.start:err.end]
    return "".join(_STAND_INS.get(c, "?") for c in bad), err.end


def _degrade_encoding(stream) -> None:
    """On a console that is not UTF-8 (PYTHONIOENCODING=ascii, a Latin-1 terminal), write ASCII stand-ins
    (× as x, µ as u, ᵀ as ^T) instead of failing with UnicodeEncodeError."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if not encoding or encoding.startswith("utf") or not hasattr(stream, "reconfigure"):
        return
    import codecs
    try:
        codecs.lookup_error("llmcalc-stand-in")
    except LookupError:
        codecs.register_error("llmcalc-stand-in", _stand_in)
    try:
        stream.reconfigure(errors="llmcalc-stand-in")
    except (ValueError, OSError):
        pass
