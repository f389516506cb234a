"""What `-m org/name` costs when the repo's config.json is already in the Hugging Face cache (issue 11: at most
100 ms over a preset name), and that a preset name costs what it did (huggingface_hub is never imported).

    python benchmarks/hub.py              # 15 runs each: median wall time, least CPU time (as latency.py)
    python benchmarks/hub.py --runs 30 --check 100   # exit 1 if a cached id costs over 100 ms CPU over a preset

The cache is a temporary folder filled by huggingface_hub's own hf_hub_download from a local HTTP server standing
in for the Hub (the tests' server), then every timed run is offline-agnostic: the id resolves from the cache.
Offline (HF_HUB_OFFLINE=1) is timed too; nothing touches the internet.

Measured on a 2-core shared machine (4 runs of 15 rounds, huggingface_hub 2.4.0): a cached id costs +0 to +3 ms
of CPU over a preset name (82-90 ms both; +7 once while the machine was loaded), online or offline. It cost +119 ms (204 ms) while the cache was read through
``huggingface_hub.try_to_load_from_cache``: importing ``huggingface_hub.file_download`` loads its HTTP client
(httpx2, ~47 ms), PyYAML, filelock and tqdm; llmcalc/hub.py now finds a cached file with
``huggingface_hub.constants`` alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    parser.add_argument("--check", type=float, default=None, metavar="MS",
                        help="exit 1 if a cached id's least CPU time passes a preset name's by more than MS")
    args = parser.parse_args()
    runs = args.runs
    from latency import run_once   # (wall, CPU) seconds of one whole process, env = os.environ + NO_COLOR
    from test_hub import _Hub   # the tests' stand-in for the Hub

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update({"HF_HUB_CACHE": f"{tmp}/hub", "HF_HOME": f"{tmp}/home", "PYTHONPATH": str(ROOT),
                           "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}"})
        os.environ.pop("HF_TOKEN", None)
        cmd = [sys.executable, "-m", "llmcalc", "kv", "--seq", "32k", "--json", "-m"]
        subprocess.run(cmd + ["acme/tiny-llama"], check=True, stdout=subprocess.DEVNULL)  # fill the cache
        argvs = {"preset name (llama-3.1-8b)": cmd + ["llama-3.1-8b"],
                 "cached hub id (acme/tiny-llama)": cmd + ["acme/tiny-llama"]}
        times: dict[str, list] = {label: [] for label in argvs}
        for _ in range(runs):                         # interleaved round by round, as latency.py does
            for label, argv in argvs.items():
                times[label].append(run_once(argv))
        os.environ["HF_HUB_OFFLINE"] = "1"
        times["cached hub id, HF_HUB_OFFLINE=1"] = [run_once(argvs["cached hub id (acme/tiny-llama)"])
                                                    for _ in range(runs)]
        rows = [(label, statistics.median(w for w, _ in v), min(c for _, c in v)) for label, v in times.items()]
    server.shutdown()
    wall0, cpu0 = rows[0][1], rows[0][2]
    print(f"{'llmcalc kv --seq 32k --json -m ...':36s} {'wall ms':>8s} {'over preset':>12s} {'min CPU':>8s} "
          f"{'over preset':>12s}")
    for label, wall, cpu in rows:
        print(f"{label:36s} {wall * 1000:8.0f} {(wall - wall0) * 1000:+12.0f} {cpu * 1000:8.0f} {(cpu - cpu0) * 1000:+12.0f}")
    worst = max(cpu - cpu0 for _, _, cpu in rows) * 1000
    if args.check is not None and worst > args.check:
        print(f"a cached hub id costs {worst:+.0f} ms CPU over a preset name, over the {args.check:g} ms budget",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
