"""Reading a table of request lengths (``serve --lengths FILE``): CSV with a header, or JSON Lines, each row
holding a ``prompt`` and a ``gen`` token count. Every problem is one InputError naming the file and the line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from llmcalc.errors import InputError

COLUMNS = ("prompt", "gen")


def _count(path: str, line: int, column: str, value) -> int:
    try:
        f = float(str(value).strip())
    except (TypeError, ValueError):
        raise InputError(f"{path}, line {line}: {column} must be a whole number of tokens; got {value!r}") from None
    if not f.is_integer() or f < 1:
        raise InputError(f"{path}, line {line}: {column} must be a whole number of tokens, at least 1; got {value!r}")
    return int(f)


def read_lengths(path: str) -> tuple[list[int], list[int]]:
    """(prompts, gens) from ``path``: JSON Lines when the first non-blank character is ``{``, else CSV."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"--lengths: can't read {path}: {e.strerror or e}") from None
    if b"\x00" in raw[:8192]:
        raise InputError(f"--lengths: {path} is a binary file; give a CSV or JSON Lines table with prompt and gen "
                         "columns")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"--lengths: {path} is not UTF-8 text; give a CSV or JSON Lines table with prompt and "
                         "gen columns") from None
    if not text.strip():
        raise InputError(f"--lengths: {path} is empty; give a CSV or JSON Lines table with prompt and gen columns")
    prompts: list[int] = []
    gens: list[int] = []
    if text.lstrip().startswith("{"):
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}, line {i}: not a JSON object ({e.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}, line {i}: each line must be a JSON object with prompt and gen")
            missing = [c for c in COLUMNS if c not in row]
            if missing:
                raise InputError(f"{path}, line {i}: no {' or '.join(missing)} field (it has: "
                                 f"{', '.join(map(str, row)) or 'nothing'})")
            prompts.append(_count(path, i, "prompt", row["prompt"]))
            gens.append(_count(path, i, "gen", row["gen"]))
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise InputError(f"{path}: the CSV header has no {' or '.join(missing)} column (it has: "
                             f"{', '.join(header) or 'nothing'}); name them prompt and gen")
        for i, row in enumerate(reader, 2):
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            prompts.append(_count(path, i, "prompt", row["prompt"]))
            gens.append(_count(path, i, "gen", row["gen"]))
    if not prompts:
        raise InputError(f"--lengths: {path} has a header but no rows")
    return prompts, gens
