"""Fit core/gemm_efficiency.py's TILE, ETA and T0 once: least squares on log throughput over the FIT rows of
tests/reference/xla_matmul_h100.py (OpenXLA's published H100 bf16 matmul table, every dimension ≤ 2,048), then
report the error on its CHECK rows (a 4,096 dimension), which the fit does not see.

    .venv/bin/python scripts/fit_gemm_efficiency.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from llmcalc.core.gemm_efficiency import gemm_seconds  # noqa: E402
from llmcalc.presets import load_gpu  # noqa: E402
from reference.xla_matmul_h100 import CHECK, FIT  # noqa: E402


def errors(gpu, rows, tile, eta, t0):
    out = []
    for b, m, n, k, tf in rows:
        pred = 2 * b * m * n * k / gemm_seconds(gpu, m, n, k, b=b, tile=tile, eta=eta, t0=t0)
        out.append(math.log(pred / (tf * 1e12)))
    return out


def main() -> None:
    gpu = load_gpu("h100-sxm")
    best = None
    for tile in ((128, 128), (128, 256), (256, 128)):
        for eta in [x / 100 for x in range(70, 101, 2)]:
            for t0 in [x * 1e-7 for x in range(20, 80, 2)]:
                sse = sum(e * e for e in errors(gpu, FIT, tile, eta, t0))
                if best is None or sse < best[0]:
                    best = (sse, tile, eta, t0)
    sse, tile, eta, t0 = best
    for name, rows in (("fit", FIT), ("check", CHECK)):
        e = [abs(x) for x in errors(gpu, rows, tile, eta, t0)]
        print(f"{name:5s} {len(rows):3d} rows: rms log error {math.sqrt(sum(x * x for x in e) / len(e)):.3f}, "
              f"worst ratio {math.exp(max(e)):.2f}")
    print(f"TILE_M, TILE_N = {tile}; ETA = {eta:.2f}; T0 = {t0:.1e}")


if __name__ == "__main__":
    main()
