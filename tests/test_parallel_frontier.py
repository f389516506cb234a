"""Frontier-scale mechanisms of `parallel`, each checked against a hand count written here (not the code's own
formulas): rail-aligned collectives across nodes (NVIDIA DGX H100: one 400 Gb/s NIC per GPU), ..."""

from __future__ import annotations

import pytest

from llmcalc.core import comm
from llmcalc.core import parallel as par
from llmcalc.presets import load_gpu, load_model


def _cluster(gpu="h100-sxm"):
    return par.Cluster.from_gpu(load_gpu(gpu))


# ----------------------------------------------------------------------------------------------
# Collectives (core/comm.py)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_hierarchical_inside_one_node_is_the_nvlink_ring(n):
    cl = _cluster()
    size = 3e9
    ring = 2 * (n - 1) * cl.nvlink_latency + 2 * (n - 1) / n * size / cl.nvlink_bw     # Patarasuk & Yuan
    assert comm.allreduce_seconds(size, n, 1, cl) == pytest.approx(ring)
    assert comm.gather_seconds(size, n, 1, cl) == pytest.approx(ring / 2)


def test_one_rank_per_node_is_the_flat_ring_over_the_network():
    cl = _cluster()
    size, n = 1e9, 64                      # DP 64 with TP 8: one rank per node, each on its own rail
    ring = 2 * (n - 1) * cl.net_latency + 2 * (n - 1) / n * size / cl.net_bw
    assert comm.allreduce_seconds(size, n, 8, cl) == pytest.approx(ring)


def test_rail_optimised_dp_on_two_dgx_nodes_is_the_ring_over_eight_nics():
    # DP 16 = 2 nodes × 8 GPUs, ZeRO-0: gradients all-reduced. Inside each node a reduce-scatter and an
    # all-gather over NVLink; across the two nodes the ring formula over the 8 NICs in parallel (8 × 50 GB/s).
    gpu, spec = load_gpu("h100-sxm"), load_model("llama-3.1-8b")
    cl = par.Cluster.from_gpu(gpu)
    run = par.Training(seq=4096, global_batch=16, overlap_dp=False)
    r = par.evaluate(spec, gpu, cl, run, dp=16, tp=1, pp=1, micro_batch=1, zero=0)
    S = r["params_per_gpu"].value * 2                                     # bf16 gradients
    nic, nics = 50e9, 8                                                   # DGX H100: 8 × 400 Gb/s NDR
    inside = 2 * (7 * cl.nvlink_latency + 7 / 8 * S / cl.nvlink_bw)       # reduce-scatter + all-gather, 8 GPUs
    across = 2 * (2 - 1) * cl.net_latency + 2 * (2 - 1) / 2 * S / (nics * nic)   # ring over 2 nodes, 8 NICs
    assert r["dp_grad_comm_seconds"].value == pytest.approx(inside + across, rel=1e-12)
    # The bytes each GPU sends are still the ring's 2(n−1)/n·S.
    assert r["dp_comm_bytes"].value == pytest.approx(2 * 15 / 16 * S)
    # ... and it is several times faster than one ring of 16 GPUs priced at one NIC per ring.
    flat = 2 * 15 * cl.net_latency + 2 * 15 / 16 * S / nic
    assert flat > 3 * (inside + across)


def test_alltoall_inside_and_across_nodes():
    cl = _cluster()
    size = 8e6
    # Inside a node: (n−1)/n of the buffer over NVLink, one latency.
    assert comm.alltoall_seconds(size, 8, 1, cl) == pytest.approx(cl.nvlink_latency + 7 / 8 * size / cl.nvlink_bw)
    # 16 ranks on 2 nodes: half the buffer leaves the node over the rail; 7/16 stays on NVLink, concurrently.
    assert comm.alltoall_seconds(size, 16, 1, cl) == pytest.approx(cl.net_latency + 8 / 16 * size / cl.net_bw)


def test_network_bandwidth_from_nics():
    # A node's NICs shared by its GPUs: 8 × 400 Gb/s over 8 GPUs = 50 GB/s each; 4 NICs would halve it.
    from llmcalc.spec import replace
    gpu = load_gpu("h100-sxm")
    try:
        four = replace(gpu, nics_per_node=4, nic_bytes_per_s_unidir=50e9)
    except TypeError:
        pytest.skip("GPU presets have no NIC fields yet")
    assert par.network_bw_per_gpu(four, 8) == pytest.approx(25e9)


# ----------------------------------------------------------------------------------------------
# One tensor-parallel rule (kv.check_tp: T divides the query heads, and T and the KV heads divide one another)


def test_search_and_min_dp_keep_the_kv_head_rule():
    from llmcalc.cli_support import resolve_model
    from llmcalc.core import parallel_search as ps
    spec = resolve_model(None, dict(hidden="3072", heads="24", kv_heads="8", layers="4", vocab="1000"))
    # 24 GPUs: 3, 6 and 12 divide the 24 query heads but neither divide nor are multiples of the 8 KV heads.
    assert ps.search_tp(spec, 24, 16, ps.SearchSpace()) == [1, 2, 4, 8]
    assert ps.search_tp(spec, 24, 16, ps.SearchSpace(tp=(6, 8))) == [8]
    # The smallest data-parallel degree comes from tp 8 × pp 1 (4 layers: pp ≤ 4 dividing 24/8 = 3 → 1).
    assert ps.min_dp(spec, 24, 16, ps.SearchSpace()) == 24 // 8


def test_bad_tp_on_the_command_line_is_one_line(cli):
    r = cli("parallel", "--hidden", "3072", "--heads", "24", "--kv-heads", "8", "--layers", "4", "--vocab", "1000",
            "-g", "h100-sxm", "--tp", "6", "--gpus", "12")
    assert r.code == 2 and r.stderr.count("\n") == 1 and "KV heads" in r.stderr
