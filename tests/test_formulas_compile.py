"""Formulas compile on first use (start-up cost); this checks every one the core defines compiles."""

import importlib
import pkgutil

import llmcalc.core
from llmcalc.core.formula import Formula


def test_every_formula_of_the_core_compiles():
    count = 0
    for info in pkgutil.iter_modules(llmcalc.core.__path__):
        module = importlib.import_module(f"llmcalc.core.{info.name}")
        for value in vars(module).values():
            formulas = value.values() if isinstance(value, dict) else [value]
            for f in formulas:
                if isinstance(f, Formula):
                    assert f.code is not None and f.text, f.expr
                    count += 1
    assert count > 150
