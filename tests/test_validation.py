"""The validation report's check: every predicted ÷ reference ratio in tests/validation_cases.py lies in its band.

One test per case (ids as in docs/validation.md). Cases whose reference is measured with PyTorch and
transformers are skipped when those are not installed. Expensive measurements are cached in the registry,
so the parameter, FLOP and cache rows of a model share one build.

    .venv/bin/python scripts/validation_report.py     # regenerate docs/validation.md
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from validation_cases import CASES, GROUPS, evaluate

HAVE_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
DOC = Path(__file__).resolve().parents[1] / "docs" / "validation.md"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.torch] if c.torch else [])
                                  for c in CASES])
def test_ratio_within_band(case):
    if case.torch and not HAVE_TORCH:
        pytest.skip("reference measured with torch + transformers (pip install -e '.[test]')")
    out = evaluate(case)
    lo, hi = case.band
    assert out.ok, (f"{case.id}: {case.what}: predicted {out.predicted:.6g} / reference {out.reference:.6g} = "
                    f"{out.ratio:.6g}, outside its band [{lo:.6g}, {hi:.6g}] ({case.source})")


def test_registry_is_well_formed():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert {c.group for c in CASES} == set(GROUPS), "a group without cases, or a case outside GROUPS"
    for c in CASES:
        lo, hi = c.band
        assert 0 < lo <= hi, c.id
        assert c.source and c.what, c.id


def test_report_lists_every_case():
    # docs/validation.md is generated from the registry: a case added without regenerating it fails here.
    text = DOC.read_text(encoding="utf-8")
    missing = [c.id for c in CASES if f"`{c.id}`" not in text]
    assert not missing, f"docs/validation.md is stale (run scripts/validation_report.py); missing {missing[:5]}"
