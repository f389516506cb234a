"""What `-m org/name` costs when the repo's config.json is already in the Hugging Face cache (issue 11: at most
100 ms over a preset name), and that a preset name costs what it did (huggingface_hub is never imported).

    python benchmarks/hub.py              # 15 runs each, medians of wall time and of CPU time
    python benchmarks/hub.py --runs 30

The cache is a temporary folder filled by huggingface_hub's own hf_hub_download from a local HTTP server standing
in for the Hub (the tests' server), then every timed run is offline-agnostic: the id resolves from the cache.
Offline (HF_HUB_OFFLINE=1) is timed too; nothing touches the internet.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]


def cpu_seconds(argv: list[str], runs: int) -> float:
    """Median CPU time (user + system) of the child process: steadier than wall time on a loaded machine."""
    import resource
    import statistics

    times = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    from latency import timed   # median wall time of a whole process, env = os.environ + NO_COLOR
    from test_hub import _Hub   # the tests' stand-in for the Hub

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update({"HF_HUB_CACHE": f"{tmp}/hub", "HF_HOME": f"{tmp}/home", "PYTHONPATH": str(ROOT),
                           "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}"})
        os.environ.pop("HF_TOKEN", None)
        cmd = [sys.executable, "-m", "llmcalc", "kv", "--seq", "32k", "--json", "-m"]
        subprocess.run(cmd + ["acme/tiny-llama"], check=True, stdout=subprocess.DEVNULL)  # fill the cache
        both = lambda ref: (timed(cmd + [ref], runs), cpu_seconds(cmd + [ref], runs))  # noqa: E731
        rows = [("preset name (llama-3.1-8b)", *both("llama-3.1-8b")),
                ("cached hub id (acme/tiny-llama)", *both("acme/tiny-llama"))]
        os.environ["HF_HUB_OFFLINE"] = "1"
        rows.append(("cached hub id, HF_HUB_OFFLINE=1", *both("acme/tiny-llama")))
    server.shutdown()
    wall0, cpu0 = rows[0][1], rows[0][2]
    print(f"{'llmcalc kv --seq 32k --json -m ...':36s} {'wall ms':>8s} {'over preset':>12s} {'CPU ms':>8s} "
          f"{'over preset':>12s}")
    for label, wall, cpu in rows:
        print(f"{label:36s} {wall * 1000:8.0f} {(wall - wall0) * 1000:+12.0f} {cpu * 1000:8.0f} {(cpu - cpu0) * 1000:+12.0f}")


if __name__ == "__main__":
    main()
