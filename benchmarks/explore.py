"""Keystroke latency of `llmcalc explore`, per screen, driven by Textual's headless pilot.

    python benchmarks/explore.py               # 20 key presses per screen, medians and maxima (ms)
    python benchmarks/explore.py --presses 50 --check 50   # exit 1 if a screen's median update passes 50 ms

Two numbers per screen: the update (the app's recompute: run the CLI command in-process, the sweep behind the
chart if any, redraw every widget; `ExplorerApp.last_update_seconds`), and the pilot's round trip (press a key
and wait until the screen has settled, which adds Textual's event loop, layout and paint). The last line is
the pilot's own floor: the round trip of a key nothing is bound to.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmcalc.tui.app import ExplorerApp  # noqa: E402


async def measure(presses: int) -> list[tuple[str, list[float], list[float]]]:
    app = ExplorerApp()
    out = []
    async with app.run_test(size=(120, 42)) as pilot:
        await pilot.pause()
        for i, sim in enumerate(app.state.sims):
            await pilot.press(str(i + 1))
            await pilot.pause()
            updates, trips = [], []
            for n in range(presses):
                key = "right" if (n // 4) % 2 == 0 else "left"   # walk the first parameter up and down
                start = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                trips.append(time.perf_counter() - start)
                updates.append(app.last_update_seconds)
            out.append((sim.key, updates, trips))
        floor = []
        for _ in range(presses):
            start = time.perf_counter()
            await pilot.press("f12")  # bound to nothing: no update, the pilot's and Textual's floor
            await pilot.pause()
            floor.append(time.perf_counter() - start)
        out.append(("(unbound key)", [0.0], floor))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--check", type=float, default=None, help="fail if a median update exceeds this (ms)")
    args = parser.parse_args()
    rows = asyncio.run(measure(args.presses))
    print("| screen | update median (ms) | update max (ms) | pilot round trip median (ms) |")
    print("| --- | ---: | ---: | ---: |")
    worst = 0.0
    for key, updates, trips in rows:
        med = statistics.median(updates) * 1000
        worst = max(worst, med)
        print(f"| {key} | {med:.1f} | {max(updates) * 1000:.1f} | {statistics.median(trips) * 1000:.1f} |")
    if args.check is not None and worst > args.check:
        print(f"a screen's median update took {worst:.1f} ms > {args.check} ms", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
