"""docs/api.md's examples run as doctests, so the API's guide cannot drift from the API."""

from __future__ import annotations

import doctest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_api_guide_examples_run():
    result = doctest.testfile(str(ROOT / "docs" / "api.md"), module_relative=False, verbose=False, report=True,
                              optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 15
    assert result.failed == 0


def test_readme_links_the_api_guide_and_shows_an_example():
    text = (ROOT / "README.md").read_text()
    assert "docs/api.md" in text and "import llmcalc" in text


def test_readme_python_examples_run():
    import re
    text = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if ">>>" in b]
    assert blocks
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for i, block in enumerate(blocks):
        runner.run(doctest.DocTestParser().get_doctest(block, {}, f"README python block {i}", "README.md", 0))
    assert runner.summarize(verbose=False).failed == 0
