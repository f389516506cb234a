"""Flash attention's HBM traffic with the GPU's on-chip SRAM and L2, and the attainable FLOP/s it bounds.

FlashAttention (Dao et al. 2022, arXiv:2205.14135; FA2, Dao 2023, arXiv:2307.08691 Alg. 1; FA3, Shah et al.
2024, arXiv:2407.08608) keeps a Br-row query tile in shared memory and streams K and V through it in Bc-row
tiles: every query tile reads all of K and V. Counted from HBM alone that is ⌈S/Br⌉ reads of K and V
(core/roofline.py's ATTENTION_FLASH_Q), which on an H100 caps attention below what FA3 measures. The re-reads
are served by L2 while the K and V of the heads being worked on fit in it:

- tile: Br = the largest power of two ≤ the requested Br (default 128) whose Q tile and double-buffered K and V
  tiles, (Br + 4·Bc)·d·p bytes with Bc = Br, fit one SM's shared memory;
- heads in flight: the SMs each work on one query tile, so ⌈SMs / ⌈S/Br⌉⌉ (query) heads run at once, sharing
  ⌈that / g⌉ K/V heads (g = query heads per K/V head, GQA);
- L2: while those heads' K and V (2·S·d·p each) fit in L2, K and V leave HBM once; beyond it, the share that
  does not fit is re-read by every later query tile: hit h = min(1, L2 / working set), re-reads
  (⌈S/Br⌉ − 1)·(1 − h) (causal: half the tiles);
- HBM bytes = Q read and O written once (2·Z·S·d·p) + K and V of the Z_kv heads × (1 + re-reads).

Attainable FLOP/s = min(peak, intensity × HBM bandwidth) with the attention FLOPs 4·Z·S²·d (half when causal).
It is an upper bound (no softmax exponentials, no pipeline bubbles, L2 bandwidth not a roof): FA2 on A100 and
FA3 on H100 (bf16 and fp8) measure below it (tests/test_flash.py). FP8 attention (FA3's fp8 path) is a choice
of the engine: the bound is computed for the dtype asked for.
"""

from __future__ import annotations

from llmcalc.core.formula import Formula, Results
from llmcalc.spec import GpuSpec

DEFAULT_TILE = 128

FLOPS = Formula("where(causal, 0.5, 1) * 4 * Z * S**2 * d")
TILES = Formula("ceil(S / Br)")
HEADS_IN_FLIGHT = Formula("max(min(ceil(sms / tiles), Z), 1)")
WORKING_SET = Formula("ceil(heads / g) * 2 * S * d * p")
L2_HIT = Formula("min(1, L2 / working_set)")
REREADS = Formula("(tiles - 1) * where(causal, 0.5, 1) * (1 - hit)")
HBM_BYTES = Formula("2 * Z * S * d * p + 2 * Z_kv * S * d * p * (1 + rereads)")
INTENSITY = Formula("F / Q")
ATTAINABLE = Formula("min(peak, intensity * bw)")


TILE_FIT = Formula("min(Br, max(16, 2 ** floor(log(sram / (5 * d * p)) / log(2))))")


def tile_rows(gpu: GpuSpec, d: int, p: float, requested=DEFAULT_TILE):
    """The query tile: ``requested`` rows, or the largest power of two below it whose Q tile and double-buffered
    K/V tiles, 5·Br·d·p bytes, fit one SM's shared memory (no SRAM size in the preset: the request)."""
    if not gpu.sram_bytes_per_sm:
        return requested
    return TILE_FIT(Br=requested, sram=gpu.sram_bytes_per_sm, d=d, p=p)


def flash_bound(gpu: GpuSpec, *, Z, S, d: int, p: float, peak: float, g: int = 1, causal: bool = False,
                Br: int = DEFAULT_TILE, out: Results | None = None, prefix: str = "flash_") -> Results:
    """HBM traffic of flash attention over Z query heads (Z/g K/V heads) of length S, with SRAM and L2, and
    the attainable FLOP/s at ``peak``: keys ``{prefix}tile_rows``, ``…cache_hit`` (L2), ``…hbm_bytes``,
    ``…intensity``, ``…attainable_flops_per_s``."""
    r = out if out is not None else Results()
    br = r.put(prefix + "tile_rows", tile_rows(gpu, d, p, Br), "count", "flash query tile rows Br (fits SRAM)")
    F = r.calc(prefix + "flops", FLOPS, "flop", "attention FLOPs (QKᵀ and P·V)", causal=causal, Z=Z, S=S, d=d)
    tiles = TILES(S=S, Br=br)
    heads = HEADS_IN_FLIGHT(sms=gpu.sm_count or 1, tiles=tiles, Z=Z)
    ws = r.calc(prefix + "working_set_bytes", WORKING_SET, "byte", "K and V of the heads in flight",
                heads=heads, g=g, S=S, d=d, p=p)
    hit = r.calc(prefix + "cache_hit", L2_HIT, "ratio", "share of K/V re-reads L2 serves", L2=gpu.l2_bytes or 0,
                 working_set=ws)
    again = REREADS(tiles=tiles, causal=causal, hit=hit)
    Q = r.calc(prefix + "hbm_bytes", HBM_BYTES, "byte", "HBM bytes: Q and O once, K and V once + re-reads past L2",
               Z=Z, S=S, d=d, p=p, Z_kv=Z / g, rereads=again)
    I = r.calc(prefix + "intensity", INTENSITY, "flop/byte", "FLOPs per HBM byte", F=F, Q=Q)
    r.calc(prefix + "attainable_flops_per_s", ATTAINABLE, "flop/s", "attainable FLOP/s (upper bound)", peak=peak,
           intensity=I, bw=gpu.hbm_bytes_per_s)
    return r
