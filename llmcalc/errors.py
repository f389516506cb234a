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
    """Bad user input: a preset, a flag value, a file. Reported as one line on stderr, exit 2."""
