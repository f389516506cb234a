"""Write presets/index.json: every built-in preset YAML already parsed, keyed by its file and the CRC-32 and
length of its text, so a preset name needs no YAML import at run time (llmcalc.presets._indexed). A preset edited since
falls back to YAML by itself; `--check` (run by the tests) says when the index is stale.

    python scripts/preset_index.py            # write it
    python scripts/preset_index.py --check    # exit 1 if it is not what this writes
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "presets"


def build() -> str:
    import yaml

    index = {}
    for kind in ("models", "gpus"):
        for path in sorted((FOLDER / kind).glob("*.yaml")):
            text = path.read_text(encoding="utf-8")
            data = yaml.safe_load(text)
            try:
                json.dumps(data, allow_nan=False)
            except (TypeError, ValueError):
                continue  # not plain JSON (e.g. a YAML date): that preset is parsed as YAML at run time
            index[f"{kind}/{path.name}"] = {"crc32": zlib.crc32(text.encode("utf-8")), "length": len(text),
                                            "data": data}
    return json.dumps(index, sort_keys=True, separators=(",", ":")) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if presets/index.json is stale")
    args = parser.parse_args()
    text = build()
    target = FOLDER / "index.json"
    if args.check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            print(f"{target} is stale: run python scripts/preset_index.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({len(json.loads(text))} presets)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
