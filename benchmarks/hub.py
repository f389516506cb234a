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
import subprocess
import sys
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]


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
        rows = [("preset name (llama-3.1-8b)", timed(cmd + ["llama-3.1-8b"], runs)),
                ("cached hub id (acme/tiny-llama)", timed(cmd + ["acme/tiny-llama"], runs))]
        os.environ["HF_HUB_OFFLINE"] = "1"
        rows.append(("cached hub id, HF_HUB_OFFLINE=1", timed(cmd + ["acme/tiny-llama"], runs)))
    server.shutdown()
    base = rows[0][1]
    print(f"{'llmcalc kv --seq 32k --json -m ...':36s} {'median ms':>10s} {'over preset':>12s}")
    for label, seconds in rows:
        print(f"{label:36s} {seconds * 1000:10.0f} {(seconds - base) * 1000:+11.0f}")


if __name__ == "__main__":
    main()
