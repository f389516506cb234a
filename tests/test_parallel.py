"""`llmcalc parallel` against the papers: ZeRO's Figure 1, the bubble and ring formulas, GPT-3's 3D layout
(seed 001) and Megatron-LM 2021's Table 1 (Narayanan et al., arXiv:2104.04473)."""

from __future__ import annotations

import pytest

from conftest import results
from llmcalc.cli_support import resolve_model
from llmcalc.core import parallel as par
from llmcalc.core import parallel_search as ps
from llmcalc.core.params import total_params
from llmcalc.presets import load_gpu, load_model
from llmcalc.spec import replace

GPT_INLINE = ("--vocab", "51200")


def megatron_gpt(hidden: int, heads: int, layers: int):
    """A Megatron-LM 2021 GPT (sec. 5.1): GPT-2 shape, vocabulary 51,200, sequence 2,048."""
    spec = resolve_model(None, dict(hidden=str(hidden), heads=str(heads), layers=str(layers), vocab="51200"))
    return replace(spec, max_seq=2048, name=f"gpt-{layers}x{hidden}")


# ----------------------------------------------------------------------------------------------
# ZeRO (Rajbhandari et al. 2020, arXiv:1910.02054) Figure 1: Ψ = 7.5B, N_d = 64, K = 12 (Adam, mixed precision).

FIGURE_1 = {0: 120e9, 1: 31.4e9, 2: 16.6e9, 3: 1.9e9}   # baseline, P_os, P_os+g, P_os+g+p (bytes, GB = 1e9)


@pytest.mark.parametrize("zero", [0, 1, 2, 3])
def test_zero_figure_1(cli, zero):
    # Megatron's 7.5B GPT (Table 1 row 3: h 4096, 36 layers, 32 heads) has Ψ = 7.47B, 0.4% under the figure's 7.5B
    # (inline here, with the inline default of 1,024 learned positions).
    psi = total_params(resolve_model(None, dict(hidden="4096", heads="32", layers="36", vocab="51200")))
    assert psi == pytest.approx(7.5e9, rel=5e-3)
    r = results(cli("parallel", "--hidden", "4096", "--heads", "32", "--layers", "36", *GPT_INLINE, "-g", "a100-80gb",
                    "--gpus", "64", "--zero", str(zero), "--global-batch", "64", "--seq", "2048", "--json"))
    states = r["weights_bytes"] + r["gradients_bytes"] + r["optimizer_bytes"]
    # The figure's formulas, with this model's Ψ: (2 + 2 + K)Ψ, 2Ψ + 2Ψ + KΨ/N_d, 2Ψ + (2+K)Ψ/N_d, (2+2+K)Ψ/N_d.
    exact = {0: 16 * psi, 1: 4 * psi + 12 * psi / 64, 2: 2 * psi + 14 * psi / 64, 3: 16 * psi / 64}[zero]
    assert states == pytest.approx(exact, rel=1e-9)
    # Scaled to the figure's Ψ = 7.5B, each lands within half a unit of the figure's last printed digit.
    half_unit = {0: 0.5e9, 1: 0.05e9, 2: 0.05e9, 3: 0.05e9}[zero]
    assert abs(states * 7.5e9 / psi - FIGURE_1[zero]) <= half_unit


# ----------------------------------------------------------------------------------------------
# Bubble (GPipe, Huang et al. 2019; Narayanan et al. 2021 sec. 2.2.1-2.2.2) and ring collectives.


@pytest.mark.parametrize("p,m,v", [(2, 1, 1), (4, 8, 1), (8, 64, 1), (12, 24, 1), (4, 8, 2), (8, 16, 4)])
def test_bubble_formulas(p, m, v):
    ratio = par.BUBBLE_RATIO(p=p, m=m, v=v)
    share = par.BUBBLE_FRACTION(p=p, m=m, v=v)
    assert ratio == pytest.approx((p - 1) / (v * m))                 # bubble time / ideal time
    assert share == pytest.approx(ratio / (1 + ratio))               # bubble share of the schedule
    if v == 1:
        assert share == pytest.approx((p - 1) / (m + p - 1))         # GPipe and 1F1B
    else:
        assert share < par.BUBBLE_FRACTION(p=p, m=m, v=1)             # interleaving shrinks it


def test_bubble_from_the_cli(cli):
    # GPT-3 as in seed 001: PP 12, global batch 1536 over DP 64 -> m = 24 micro-batches: (p−1)/(m+p−1) = 11/35.
    r = results(cli("parallel", "-m", "gpt3-175b", "-g", "a100-80gb", "--gpus", "6144", "--tp", "8", "--pp", "12",
                    "--global-batch", "1536", "--recompute", "full", "--json"))
    assert r["micro_batches"] == 24
    assert r["bubble_fraction"] == pytest.approx(11 / 35)
    assert r["bubble_ratio"] == pytest.approx(11 / 24)
    # Interleaving 2 chunks per GPU: the bubble time halves, (p−1)/(v·m).
    r2 = results(cli("parallel", "-m", "gpt3-175b", "-g", "a100-80gb", "--gpus", "6144", "--tp", "8", "--pp", "12",
                     "--virtual-stages", "2", "--global-batch", "1536", "--recompute", "full", "--json"))
    assert r2["bubble_ratio"] == pytest.approx(11 / 48)
    assert r2["bubble_seconds"] == pytest.approx(r["bubble_seconds"] / 2, rel=1e-3)


@pytest.mark.parametrize("n", [1, 2, 8, 64, 1024])
def test_ring_volumes(n):
    size = 1e9
    assert par.ALLREDUCE_BYTES(n=n, size=size) == pytest.approx(2 * (n - 1) / n * size)
    assert par.GATHER_BYTES(n=n, size=size) == pytest.approx((n - 1) / n * size)
    # All-reduce = reduce-scatter + all-gather (seed 003 App. B), in bytes and in time.
    assert par.ALLREDUCE_BYTES(n=n, size=size) == pytest.approx(2 * par.GATHER_BYTES(n=n, size=size))
    t_ar = par.ALLREDUCE_SECONDS(n=n, size=size, bw=1e11, alpha=5e-6)
    assert t_ar == pytest.approx(2 * par.GATHER_SECONDS(n=n, size=size, bw=1e11, alpha=5e-6))
    assert t_ar == pytest.approx(2 * (n - 1) * 5e-6 + 2 * (n - 1) / n * size / 1e11)


def test_dp_traffic_zero_paper_sec_7(cli):
    # ZeRO sec. 7: plain DP all-reduces 2Ψ per GPU; P_os and P_os+g move the same 2Ψ; P_os+g+p 3Ψ (1.5x).
    base = ("--hidden", "4096", "--heads", "32", "--layers", "36", *GPT_INLINE, "-g", "a100-80gb", "--gpus", "64",
            "--global-batch", "64", "--seq", "2048", "--json")
    psi = total_params(resolve_model(None, dict(hidden="4096", heads="32", layers="36", vocab="51200")))
    got = {z: results(cli("parallel", *base, "--zero", str(z)))["dp_comm_bytes"] for z in (0, 1, 2, 3)}
    ring = 2 * 63 / 64 * psi * 2             # 2(n−1)/n · Ψ elements · 2 bytes (bf16 gradients and weights)
    assert got[0] == pytest.approx(ring)
    assert got[1] == pytest.approx(ring)
    assert got[2] == pytest.approx(ring)    # one micro-batch per step here (64 sequences over 64 GPUs)
    assert got[3] == pytest.approx(1.5 * ring)


def test_tp_and_pp_traffic_by_hand(cli):
    # Megatron-LM 2019 sec. 3: 2 all-reduces of b·s·h per layer forward, 2 backward (+2 with full recompute).
    r = results(cli("parallel", "-m", "gpt3-175b", "-g", "a100-80gb", "--gpus", "6144", "--tp", "8", "--pp", "12",
                    "--global-batch", "1536", "--recompute", "full", "--json"))
    b, s, h, t, m, layers = 1, 2048, 12288, 8, 24, 96 // 12
    one = 2 * (t - 1) / t * b * s * h * 2                 # ring all-reduce of bf16 activations
    assert r["tp_comm_bytes"] == pytest.approx(6 * layers * m * one)
    # Pipeline: one activation forward and one gradient backward per micro-batch, b·s·h/t with scatter/gather.
    assert r["pp_comm_bytes"] == pytest.approx(2 * m * b * s * h * 2 / t)


# ----------------------------------------------------------------------------------------------
# GPT-3 175B with DP = 64, TP = 8, PP = 12 (seed 001 "3-D parallelism").


def test_gpt3_3d_layout_fits_80gb_with_recomputation(cli):
    r = results(cli("parallel", "-m", "gpt3-175b", "-g", "a100-80gb", "--dp", "64", "--tp", "8", "--pp", "12",
                    "--global-batch", "1536", "--seq", "2048", "--recompute", "full", "--json"))
    assert r["fits"] is True
    assert r["total_bytes"] < 80e9
    # The model states: 16 B for each parameter stage 1 holds, 175B/(8·12) = 1.82B plus its slice of the
    # embedding (30 GB in all).
    assert r["weights_bytes"] + r["gradients_bytes"] + r["optimizer_bytes"] == 16 * r["params_per_gpu"]
    emb = (50257 + 2048) * 12288                      # token and position tables, on stage 1, split over TP 8
    assert r["params_per_gpu"] == pytest.approx((174.6e9 - emb) / 96 + emb / 8, rel=1e-3)
    # Without recomputation and with materialised attention scores (2020 kernels) it does not fit.
    r2 = results(cli("parallel", "-m", "gpt3-175b", "-g", "a100-80gb", "--dp", "64", "--tp", "8", "--pp", "12",
                     "--global-batch", "1536", "--seq", "2048", "--no-flash", "--json"))
    assert r2["fits"] is False


# ----------------------------------------------------------------------------------------------
# Megatron-LM 2021 (Narayanan et al., arXiv:2104.04473) Table 1: A100-80GB, s = 2048, V = 51,200, mixed
# precision, activation recomputation (eq. 3 counts its extra forward). Columns: parameters (billion), heads,
# hidden, layers, TP, PP, GPUs, global batch, achieved teraFLOP/s per GPU.

TABLE_1 = [
    (1.7, 24, 2304, 24, 1, 1, 32, 512, 137),
    (3.6, 32, 3072, 30, 2, 1, 64, 512, 138),
    (7.5, 32, 4096, 36, 4, 1, 128, 512, 142),
    (18.4, 48, 6144, 40, 8, 1, 256, 1024, 135),
    (39.1, 64, 8192, 48, 8, 2, 512, 1536, 138),
    (76.1, 80, 10240, 60, 8, 4, 1024, 1792, 140),
    (145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148),
    (310.1, 128, 16384, 96, 8, 16, 1920, 2160, 155),
    (529.6, 128, 20480, 105, 8, 35, 2520, 2520, 163),
    (1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 163),
]


def megatron_row(row, micro_batch=1, virtual=1):
    """(modelled teraFLOP/s per GPU counted as the paper does, the evaluation) for one Table 1 row."""
    P, heads, h, L, t, p, N, B, X = row
    spec = megatron_gpt(h, heads, L)
    gpu = load_gpu("a100-80gb")
    run = par.Training(seq=2048, global_batch=B, grad_dtype="fp32")   # Megatron reduces gradients in fp32
    r = par.evaluate(spec, gpu, par.Cluster.from_gpu(gpu), run, dp=N // (t * p), tp=t, pp=p,
                     micro_batch=micro_batch, virtual=virtual, recompute="full")
    s, V = 2048, 51200
    F = 96 * B * s * L * h**2 * (1 + s / (6 * h) + V / (16 * L * h))   # eq. (3), FLOPs per iteration
    return F / (float(r["step_seconds"].value) * N) / 1e12, r, spec, F


@pytest.mark.parametrize("row", TABLE_1, ids=[f"{r[0]}B" for r in TABLE_1])
def test_megatron_table_1_fits_and_matches_its_counts(row):
    P, *_ = row
    tflops, r, spec, F = megatron_row(row)
    assert total_params(spec) / 1e9 == pytest.approx(P, abs=0.05)     # eq. (2): the published sizes
    assert float(r["hardware_flops"].value) == pytest.approx(F, rel=1e-12)   # eq. (3) = our full-recompute count
    assert bool(r["fits"].value)                                       # on 80 GB A100s


def test_megatron_table_1_throughput_within_30_percent():
    """Modelled per-GPU throughput / reported, at the stated defaults (compute at 50% of peak, 1F1B, micro-batch
    1). The paper used the interleaved schedule with unstated v; v = 1 is the conservative reading."""
    ratios = {row[0]: megatron_row(row)[0] / row[-1] for row in TABLE_1}
    print("\nMegatron-LM 2021 Table 1, modelled / reported teraFLOP/s per GPU:")
    for P, ratio in ratios.items():
        print(f"  {P:7.1f}B  {ratio:.3f}")
    within = [P for P, ratio in ratios.items() if 0.7 <= ratio <= 1.3]
    assert len(within) >= 3
    assert len(within) == len(TABLE_1)        # in fact every row lands within 30%


# ----------------------------------------------------------------------------------------------
# The search


def test_search_405b_on_16k_h100s_under_a_second():
    spec, gpu = load_model("llama-3.1-405b"), load_gpu("h100-sxm")
    run = par.Training(seq=8192, global_batch=2048)
    res = ps.search(spec, gpu, par.Cluster.from_gpu(gpu), run, 16384, top=0)
    assert res.seconds < 1.0
    assert res.fitting > 0 and res.candidates >= res.fitting
    assert all(res.results["fits"].value)
    steps = res.results["step_seconds"].value
    assert all(steps[i] <= steps[i + 1] for i in range(len(steps) - 1))   # best first


def test_search_top_row_beats_the_seed_layout():
    # GPT-3 on 6,144 A100s: the search's best is at least as fast as seed 001's DP 64 × TP 8 × PP 12.
    spec, gpu = load_model("gpt3-175b"), load_gpu("a100-80gb")
    cluster = par.Cluster.from_gpu(gpu)
    run = par.Training(seq=2048, global_batch=1536)
    res = ps.search(spec, gpu, cluster, run, 6144, top=1)
    hand = par.evaluate(spec, gpu, cluster, run, dp=64, tp=8, pp=12, micro_batch=1, recompute="full")
    assert float(res.results["step_seconds"].value[0]) <= float(hand["step_seconds"].value)


def test_search_cli_json_rows_best_first(cli):
    doc = cli("parallel", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "16", "--seq", "4096",
              "--global-batch", "256", "--search", "--top", "5", "--json").json()
    rows = doc["rows"]
    assert 1 <= len(rows) <= 5
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(r["fits"] for r in rows)
    assert [r["step_seconds"] for r in rows] == sorted(r["step_seconds"] for r in rows)
    for key in ("tp", "pp", "dp", "zero", "micro_batch", "recompute", "sp", "weights_bytes", "gradients_bytes",
                "optimizer_bytes", "activations_bytes", "total_bytes", "bubble_fraction", "dp_comm_bytes",
                "tp_comm_bytes", "pp_comm_bytes", "step_seconds", "mfu", "bound", "why"):
        assert key in rows[0]
    assert rows[0]["tp"] * rows[0]["cp"] * rows[0]["pp"] * rows[0]["dp"] == 16
    assert doc["search"]["candidates"] >= doc["search"]["fitting"] >= len(rows)


def test_search_flags_narrow_the_space(cli):
    doc = cli("parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--gpus", "64", "--seq", "4096",
              "--global-batch", "256", "--search", "--tp", "8", "--zero", "1,3", "--recompute", "full", "--top", "0",
              "--json").json()
    assert doc["rows"]
    assert {r["tp"] for r in doc["rows"]} == {8}
    assert {r["zero"] for r in doc["rows"]} <= {1, 3}
    assert {r["recompute"] for r in doc["rows"]} == {"full"}


def test_search_nothing_fits_is_an_answer(cli):
    run = cli("parallel", "-m", "llama-3.1-405b", "-g", "rtx-4090", "--gpus", "8", "--seq", "8192", "--search",
              "--json")
    assert run.code == 0
    doc = run.json()
    assert doc["rows"] == [] and doc["results"]["fitting"] == 0
    assert "fits" in run.stderr
    assert cli("parallel", "-m", "llama-3.1-405b", "-g", "rtx-4090", "--gpus", "8", "--seq", "8192", "--search",
               "--check", "--json").code == 3


# ----------------------------------------------------------------------------------------------
# The command as a user runs it


def test_layout_resolution(cli):
    r = cli("parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--gpus", "64", "--tp", "8", "--pp", "2",
            "--global-batch", "512", "--recompute", "full", "--json").json()
    assert (r["inputs"]["dp"], r["inputs"]["tp"], r["inputs"]["pp"]) == (4, 8, 2)
    r = cli("parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--gpus", "64", "--dp", "4", "--pp", "2",
            "--global-batch", "512", "--recompute", "full", "--json").json()
    assert r["inputs"]["tp"] == 8
    r = cli("parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--dp", "2", "--tp", "8", "--pp", "4",
            "--global-batch", "512", "--recompute", "full", "--json").json()
    assert r["inputs"]["gpus"] == 64
    assert par.resolve_layout(64, None, None, None) == (64, 64, 1, 1)


def test_sweep_rows_and_token_budget(cli):
    doc = cli("parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--gpus", "64", "--tp", "8", "--pp", "1,2,4,8",
              "--zero", "1", "--recompute", "full", "--global-batch", "512", "--seq", "8192", "--tokens", "15T",
              "--json").json()
    rows = doc["rows"]
    assert [(r["pp"], r["dp"]) for r in rows] == [(1, 8), (2, 4), (4, 2), (8, 1)]
    for r in rows:
        assert r["training_days"] == pytest.approx(15e12 / r["tokens_per_second"] / 86400)
        assert r["gpu_hours"] == pytest.approx(r["training_days"] * 24 * 64)
    totals = [r["total_bytes"] for r in rows]
    assert totals == sorted(totals, reverse=True)      # deeper pipelines, less per GPU


def test_mfu_and_step_breakdown_add_up(cli):
    r = results(cli("parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--gpus", "64", "--tp", "8", "--pp", "4",
                    "--zero", "1", "--recompute", "selective", "--global-batch", "256", "--seq", "4096", "--json"))
    parts = (r["compute_seconds"] + r["tp_comm_seconds"] + r["bubble_seconds"] + r["pp_comm_seconds"]
             + r["dp_comm_exposed_seconds"])
    assert r["step_seconds"] == pytest.approx(parts)
    assert r["mfu"] == pytest.approx(r["model_flops"] / (r["step_seconds"] * 64 * r["peak_flops"]))
    assert r["mfu"] < r["hfu"] <= 0.5 + 1e-12     # never above the compute fraction it was given
    assert r["tokens_per_second"] == pytest.approx(256 * 4096 / r["step_seconds"])


def test_overlap_hides_dp_communication(cli):
    args = ("parallel", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "64", "--zero", "3", "--global-batch",
            "256", "--seq", "4096", "--json")
    plain = results(cli(*args))
    hidden = results(cli(*args, "--overlap-dp"))
    assert hidden["dp_comm_exposed_seconds"] < plain["dp_comm_exposed_seconds"]
    assert hidden["dp_comm_bytes"] == plain["dp_comm_bytes"]
    assert hidden["step_seconds"] < plain["step_seconds"]


def test_links_inside_and_across_nodes(cli):
    # TP 8 inside a DGX uses NVLink; TP 16 spills onto the network and costs far more, even run hierarchically
    # (each layer's all-reduce then also crosses the 50 GB/s rails: 2·(1/2)·(S/8)/50e9 on top of NVLink's share).
    base = ("parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--gpus", "64", "--global-batch", "64", "--seq",
            "4096", "--recompute", "full", "--json")
    in_node = results(cli(*base, "--tp", "8"))
    across = cli(*base, "--tp", "16")
    assert any("spans nodes" in n for n in across.json()["notes"])
    assert results(across)["tp_comm_seconds"] > 2 * in_node["tp_comm_seconds"]
    # --net-bw and --gpus-per-node are honoured.
    faster = results(cli(*base, "--tp", "16", "--gpus-per-node", "16"))
    assert faster["tp_comm_seconds"] < results(across)["tp_comm_seconds"]


def test_gpipe_holds_every_micro_batch(cli):
    base = ("parallel", "-m", "gpt3-175b", "-g", "a100-80gb", "--gpus", "6144", "--tp", "8", "--pp", "12",
            "--global-batch", "1536", "--recompute", "full", "--json")
    one_f = results(cli(*base))
    gpipe = results(cli(*base, "--schedule", "gpipe"))
    assert one_f["in_flight_microbatches"] == 12 and gpipe["in_flight_microbatches"] == 24
    assert gpipe["activations_bytes"] > one_f["activations_bytes"]
    assert gpipe["bubble_fraction"] == one_f["bubble_fraction"]


@pytest.mark.parametrize("fmt", ["table", "tsv", "csv", "yaml", "md"])
def test_formats(cli, fmt):
    run = cli("parallel", "-m", "gpt2", "-g", "a100-80gb", "--gpus", "8", "-o", fmt)
    assert run.code == 0 and run.stdout
    run = cli("parallel", "-m", "gpt2", "-g", "a100-80gb", "--gpus", "8", "--search", "--top", "3", "-o", fmt)
    assert run.code == 0 and run.stdout


def test_explain(cli):
    run = cli("parallel", "-m", "gpt2", "-g", "a100-80gb", "--gpus", "8", "--tp", "2", "--explain", "-o", "tsv")
    assert run.code == 0
    assert "2·(t - 1)/t" in run.stdout or "(t - 1)" in run.stdout
    run = cli("parallel", "-m", "gpt2", "-g", "a100-80gb", "--gpus", "8", "--search", "--explain", "-o", "tsv")
    assert run.code == 0 and "best layout" in run.stdout
    for args in (("--json",), ("--search", "--json")):          # JSON stays one document, explanation inside
        doc = cli("parallel", "-m", "gpt2", "-g", "a100-80gb", "--gpus", "8", "--explain", *args).json()
        assert any("step_seconds" in line for line in doc["explain"])


def test_check_exit_3(cli):
    args = ("parallel", "-m", "llama-3.1-70b", "-g", "a100-80gb", "--gpus", "8", "--tp", "8", "--seq", "8192",
            "--global-batch", "8", "--json")
    assert cli(*args).code == 0                      # "does not fit" is an answer
    assert results(cli(*args))["fits"] is False
    assert cli(*args, "--check").code == 3


@pytest.mark.parametrize("args,needle", [
    (("-m", "gpt3-175b", "--gpus", "64"), "GPU"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--tp", "7"), "heads"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--tp", "8", "--pp", "3"), "divide"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--dp", "4", "--tp", "4", "--pp", "2"), "not --gpus 64"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--tp", "8", "--global-batch", "100"), "multiple"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--tp", "8", "--pp", "4", "--virtual-stages", "25"), "layers"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--tp", "8", "--virtual-stages", "2"), "--pp > 1"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--zero", "5"), "--zero"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--search", "--precision", "mixed,bf16"), "one value"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--recompute", "most"), "--recompute"),
    (("-m", "gpt3-175b", "-g", "a100", "--search"), "--gpus"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--dp", "8"), "--tp or --pp"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "0"), "--gpus"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--pp", "200"), "layers"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--compute-mfu", "1.5"), "--compute-mfu"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "nan"), "--gpus"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--search", "--global-batch", "64,128"), "one value"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--net-bw", "fast"), "--net-bw"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--schedule", "zb"), "--schedule"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--precision", "int3"), "--precision"),
    (("-m", "gpt3-175b", "-g", "a100", "--gpus", "64", "--gpus-per-node", "1,2"), "one value"),
    (("-m", "gpt3-175b", "-g", "nope-gpu", "--gpus", "64"), "nope-gpu"),
])
def test_bad_input_exits_2(cli, args, needle):
    run = cli("parallel", *args)
    assert run.code == 2, run.stdout
    assert run.stdout == ""
    assert needle in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
