"""Formulas written once: the expression that computes a result is the text `--explain` shows.

A ``Formula`` is a Python arithmetic expression over named symbols, compiled once. Evaluated with
plain numbers it gives a number; with NumPy arrays it gives an array (a sweep is one call). The same
text, with ``*`` shown as ``·``, is what ``--explain`` prints beside the numbers put into it, so the
explanation cannot drift from the computation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _scalar_or_numpy(name: str, scalar):
    """``scalar`` on plain numbers, ``numpy.<name>`` when any argument is an array (NumPy loads only then)."""
    def function(*args):
        for a in args:          # a plain loop: this runs for every min/max/where of every formula
            if hasattr(a, "dtype") and hasattr(a, "shape"):
                import numpy as np
                return getattr(np, name)(*args)
        return scalar(*args)
    function.__name__ = name
    return function


minimum = _scalar_or_numpy("minimum", lambda a, b: a if a <= b else b)
maximum = _scalar_or_numpy("maximum", lambda a, b: a if a >= b else b)
where = _scalar_or_numpy("where", lambda cond, a, b: a if cond else b)
floor = _scalar_or_numpy("floor", math.floor)
ceil = _scalar_or_numpy("ceil", math.ceil)
log = _scalar_or_numpy("log", math.log)
sqrt = _scalar_or_numpy("sqrt", math.sqrt)
any_of = _scalar_or_numpy("any", bool)    # any_of(x > y): a bool for a number or an array
all_of = _scalar_or_numpy("all", bool)


_NAMESPACE = {"__builtins__": {}, "min": minimum, "max": maximum, "where": where, "floor": floor,
              "ceil": ceil, "log": log, "sqrt": sqrt}


class Formula:
    """A compiled expression; ``F(**symbols)`` evaluates it, ``F.text`` is how it is shown."""

    __slots__ = ("expr", "_code", "_text")

    def __init__(self, expr: str):
        self.expr = expr
        self._code = None   # compiled on first use: a command imports hundreds of formulas and runs a few
        self._text = None

    @property
    def code(self):
        if self._code is None:
            self._code = compile(self.expr, f"<formula {self.expr}>", "eval")
        return self._code

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = pretty(self.expr)
        return self._text

    def __call__(self, **symbols):
        return eval(self._code or self.code, _NAMESPACE, symbols)  # noqa: S307 - expressions of this package

    def __repr__(self) -> str:
        return f"Formula({self.expr!r})"


def pretty(expr: str) -> str:
    """``2 * B * S * H**2`` -> ``2·B·S·H²``; other powers as ``^`` (``a**(k + 1)`` -> ``a^(k + 1)``)."""
    out = expr.replace("**2", "²").replace("**3", "³").replace("**", "^").replace(" * ", "·").replace("*", "·")
    return out.replace(" / ", "/")


@dataclass(slots=True)
class Row:
    """One named result: value (number, array, bool or text), unit kind, label, and how it was made."""

    value: Any
    unit: str
    label: str
    formula: Formula | None = None
    symbols: dict[str, Any] = field(default_factory=dict)
    note: str = ""


class Results(dict):
    """Ordered ``key -> Row``; ``calc`` evaluates a formula and records its inputs for --explain."""

    def calc(self, key: str, formula: Formula, unit: str, label: str, note: str = "", **symbols) -> Any:
        value = formula(**symbols)
        self[key] = Row(value, unit, label, formula, symbols, note)
        return value

    def put(self, key: str, value: Any, unit: str, label: str, note: str = "") -> Any:
        self[key] = Row(value, unit, label, None, {}, note)
        return value

    def values_dict(self) -> dict[str, Any]:
        return {k: r.value for k, r in self.items()}
