"""What `-m org/name` costs when the repo's config.json is already in the Hugging Face cache (issue 11: at most
100 ms over a preset name), and that a preset name costs what it did (huggingface_hub is never imported).

    python benchmarks/hub.py              # 15 runs each, medians
    python benchmarks/hub.py --runs 30

The cache is a temporary folder filled by huggingface_hub's own hf_hub_download from a local HTTP server standing
in for the Hub (the tests' server), then every timed run is offline-agnostic: the id resolves from the cache.
Offline (HF_HUB_OFFLINE=1) is timed too; nothing touches the internet.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def timed(argv: list[str], env: dict, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    from test_hub import _Hub  # the tests' stand-in for the Hub

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_HUB_CACHE": f"{tmp}/hub", "HF_HOME": f"{tmp}/home", "NO_COLOR": "1",
               "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}", "PYTHONPATH": str(ROOT)}
        env.pop("HF_TOKEN", None)
        cmd = [sys.executable, "-m", "llmcalc", "kv", "--seq", "32k", "--json", "-m"]
        subprocess.run(cmd + ["acme/tiny-llama"], env=env, check=True, stdout=subprocess.DEVNULL)  # fill the cache
        rows = [("preset name (llama-3.1-8b)", timed(cmd + ["llama-3.1-8b"], env, runs)),
                ("cached hub id (acme/tiny-llama)", timed(cmd + ["acme/tiny-llama"], env, runs)),
                ("cached hub id, HF_HUB_OFFLINE=1", timed(cmd + ["acme/tiny-llama"], {**env, "HF_HUB_OFFLINE": "1"},
                                                          runs))]
    server.shutdown()
    base = rows[0][1]
    print(f"{'llmcalc kv --seq 32k --json -m ...':36s} {'median ms':>10s} {'over preset':>12s}")
    for label, seconds in rows:
        print(f"{label:36s} {seconds * 1000:10.0f} {(seconds - base) * 1000:+11.0f}")


if __name__ == "__main__":
    main()
