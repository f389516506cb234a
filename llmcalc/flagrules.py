"""Which flags go together, declared as a table (one place per command), checked before any work.

A command lists its rules in order; the first broken one is the error. ``given`` is the set of concepts the
user set (parameter names, plus any the command derives, such as ``heads`` for either heads flag).

    RULES = (needs("draft", "model", "--draft needs the target too: -m TARGET --draft DRAFT -g GPU"),
             conflict(("model", "cost_ratio"), "give either --cost-ratio or -m/--draft, not both"))
    check(RULES, given)
"""

from __future__ import annotations

from typing import NamedTuple


from llmcalc.errors import InputError


class Rule(NamedTuple):   # a NamedTuple: built in a fraction of a frozen dataclass's import time
    when: tuple[str, ...]          # all of these given ...
    needs: tuple[str, ...] | None  # ... then one of these must be given too; None: ``when`` together is refused
    message: str


def needs(when: str | tuple[str, ...], alternatives: str | tuple[str, ...], message: str) -> Rule:
    """``when`` (one concept or all of several) requires one of ``alternatives``; ``when=()``: always."""
    as_tuple = (lambda x: (x,) if isinstance(x, str) else tuple(x))
    return Rule(as_tuple(when), as_tuple(alternatives), message)


def conflict(together: tuple[str, ...], message: str) -> Rule:
    return Rule(tuple(together), None, message)


def broken(rules: tuple[Rule, ...], given: set[str]) -> Rule | None:
    for rule in rules:
        if not all(w in given for w in rule.when):
            continue
        if rule.needs is None or not any(n in given for n in rule.needs):
            return rule
    return None


def check(rules: tuple[Rule, ...], given: set[str]) -> None:
    rule = broken(rules, given)
    if rule is not None:
        raise InputError(rule.message)
