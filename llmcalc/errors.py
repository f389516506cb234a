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
