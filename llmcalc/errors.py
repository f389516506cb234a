"""Exit statuses and the one exception type that means "the user gave bad input"."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Process exit codes (clig.dev; httpie's ExitStatus)."""

    OK = 0
    BUG = 1
    BAD_INPUT = 2
    CHECK_FAILED = 3  # only under an explicit --check: the answer was "does not fit"


class InputError(ValueError):
    """Bad user input: a preset, a flag value, a file. Reported as one line on stderr, exit 2.

    The core names concepts, not flags: ``InputError("tensor-parallel degree 3 ...", concept="draft_tp")``;
    a command whose flag for that concept differs maps it with ``for_flags``."""

    def __init__(self, message: str = "", concept: str | None = None):
        super().__init__(message)
        self.concept = concept

    def for_flags(self, flags: dict[str, str]) -> "InputError":
        """This error as a command shows it: ``--flag: message`` when the concept is one of its flags."""
        flag = flags.get(self.concept) if self.concept else None
        return InputError(f"{flag}: {self}") if flag else self


class OutputError(Exception):
    """Standard output could not be written (closed, a full disk, the reader went away). Not an OSError,
    so that Click's own EPIPE handler (which exits 1) lets it through to ``llmcalc.cli.main``."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.errno = error.errno


_CONTROL = dict.fromkeys([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)])


def printable(text: object) -> str:
    """``text`` with terminal control characters (ESC, BEL, CR, the C1 set …) shown as ``\\x1b``-style escapes,
    so a name read from a file or the command line cannot move the cursor or recolour the terminal when
    echoed. Tabs and newlines are kept (tables and messages use them)."""
    s = str(text)
    if not any(ord(c) in _CONTROL for c in s):
        return s
    return "".join(f"\\x{ord(c):02x}" if ord(c) in _CONTROL else c for c in s)
