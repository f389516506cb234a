"""Frontier-scale mechanisms of `parallel`, each checked against a hand count written here (not the code's own
formulas): rail-aligned collectives across nodes (NVIDIA DGX H100: one 400 Gb/s NIC per GPU), context and
expert parallelism, TP overlap, uneven and interleaved pipeline stages, FP8 compute, and bad input."""

from __future__ import annotations

import pytest

from conftest import results
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


# ----------------------------------------------------------------------------------------------
# Context parallelism


def test_cp_2_halves_activation_memory_at_a_fixed_layout(cli):
    base = ("parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--tp", "8", "--pp", "4", "--dp", "2",
            "--seq", "32768", "--global-batch", "16", "--recompute", "selective", "--json")
    one = results(cli(*base))
    two = results(cli(*base, "--cp", "2"))
    assert two["activations_bytes"] == pytest.approx(one["activations_bytes"] / 2, rel=1e-9)
    # the same model states per GPU (ZeRO-0: replicated over the cp ranks too), twice the GPUs
    assert two["weights_bytes"] == one["weights_bytes"]
    # each micro-batch's K/V crosses cp − 1 times per layer per pass: 3 passes (forward K/V; backward K/V + dK/dV)
    kv = 1 * 32768 / 2 * 2 * 1 * 128 * 2           # b · s/cp · (K, V) · max(8 KV heads / tp 8, 1) · d_h · bf16
    m, layers = 16 // 2, 80 // 4
    assert two["cp_comm_bytes"] == pytest.approx(3 * layers * m * (2 - 1) * kv)
    assert one["cp_comm_bytes"] == 0


def test_cp_ring_hides_behind_attention_allgather_does_not(cli):
    # Llama 3's long-context stage (Table 4 row 3): TP 8, CP 16, PP 16, DP 4 at 131,072 tokens.
    base = ("parallel", "-m", "llama-3.1-405b", "-g", "h100-sxm", "--tp", "8", "--pp", "16", "--cp", "16",
            "--dp", "4", "--seq", "131072", "--global-batch", "16", "--json")
    ring = results(cli(*base))
    gather = results(cli(*base, "--cp-comm", "allgather"))
    assert ring["cp_comm_exposed_seconds"] <= ring["cp_comm_seconds"]
    assert gather["cp_comm_exposed_seconds"] == gather["cp_comm_seconds"] > 0
    # at 131K tokens attention dominates: the ring's passes are hidden entirely
    assert ring["cp_comm_exposed_seconds"] == 0


# ----------------------------------------------------------------------------------------------
# Expert parallelism


def test_alltoall_bytes_are_a_hand_count_for_mixtral(cli):
    # Mixtral 8x7B, EP 8 over 8 data-parallel GPUs, one sequence of 4,096 tokens per GPU, no TP: each MoE layer
    # dispatches every token to its top-2 experts and combines them back, forward and backward (4 all-to-alls),
    # 4096 tokens × 2 × 4096 hidden × 2 bytes each, 7/8 of which leaves the GPU.
    r = results(cli("parallel", "-m", "mixtral-8x7b", "-g", "h100-sxm", "--dp", "8", "--ep", "8", "--seq", "4096",
                    "--global-batch", "8", "--zero", "1", "--json"))
    one = 4096 * 2 * 4096 * 2
    assert r["ep_comm_bytes"] == pytest.approx(4 * 32 * 7 / 8 * one)
    assert r["ep_comm_seconds"] > 0
    # Experts sharded 8 ways: the weights held per GPU drop by 7/8 of the experts' share.
    spec = load_model("mixtral-8x7b")
    from llmcalc.core.params import mlp_block_params
    experts = 32 * 8 * mlp_block_params(spec, spec.moe.expert_ffn)
    dense = results(cli("parallel", "-m", "mixtral-8x7b", "-g", "h100-sxm", "--dp", "8", "--seq", "4096",
                        "--global-batch", "8", "--zero", "1", "--json"))
    assert dense["params_per_gpu"] - r["params_per_gpu"] == pytest.approx(experts * 7 / 8)


# ----------------------------------------------------------------------------------------------
# Overlap and uneven stages


@pytest.mark.parametrize("model,layout", [
    ("llama-3.1-70b", ("--tp", "8", "--pp", "4", "--dp", "4", "--sp")),
    ("llama-3.1-8b", ("--tp", "2", "--dp", "8")),
    ("gpt3-175b", ("--tp", "8", "--pp", "12", "--dp", "2", "--recompute", "full")),
    ("llama-3.1-405b", ("--tp", "16", "--pp", "8", "--dp", "2")),          # TP across nodes
])
def test_tp_overlap_never_makes_a_step_slower(cli, model, layout):
    base = ("parallel", "-m", model, "-g", "h100-sxm", *layout, "--seq", "4096", "--global-batch", "64", "--json")
    plain, hidden = results(cli(*base)), results(cli(*base, "--tp-overlap"))
    assert hidden["step_seconds"] <= plain["step_seconds"]
    assert hidden["tp_comm_exposed_seconds"] <= plain["tp_comm_exposed_seconds"] == plain["tp_comm_seconds"]
    # what it hides is at most the GEMMs' time
    assert plain["tp_comm_seconds"] - hidden["tp_comm_exposed_seconds"] <= hidden["compute_seconds"]


def test_llama3_405b_126_layers_on_16_stages_of_8_virtual(cli):
    # Llama 3 (arXiv:2407.21783 sec. 3.3.2, Table 4): 126 layers, PP 16, interleaved; frameworks put the
    # embedding and the LM head on the first and last stages, which hold one layer fewer.
    r = results(cli("parallel", "-m", "llama-3.1-405b", "-g", "h100-sxm", "--tp", "8", "--pp", "16",
                    "--virtual-stages", "8", "--dp", "128", "--seq", "8192", "--global-batch", "2048",
                    "--recompute", "none", "--json"))
    assert r["layers_per_stage"] == 8                                    # ⌈126/16⌉ on the busiest GPU
    # slowest stage: max(8 layers, 7 layers + LM head) against the mean of 126/16 layers (+ head/16)
    spec = load_model("llama-3.1-405b")
    from llmcalc.core.flops import training_step_flops
    fl = training_step_flops(spec, 2048, 8192)
    head = 3 * fl["lm_head_flops"].value
    layer = (fl["hardware_flops"].value - head) / 126
    assert r["stage_imbalance"] == pytest.approx(max(8 * layer, 7 * layer + head) * 16 / fl["hardware_flops"].value)
    # 8 GPUs' worth of 126 layers cannot be split into 200 chunks
    bad = cli("parallel", "-m", "llama-3.1-405b", "-g", "h100-sxm", "--tp", "8", "--pp", "16",
              "--virtual-stages", "9", "--dp", "128", "--seq", "8192", "--global-batch", "2048")
    assert bad.code == 2 and "chunks" in bad.stderr


# ----------------------------------------------------------------------------------------------
# Bad input: one line, exit 2


@pytest.mark.parametrize("args,needle", [
    (("-m", "llama-3.1-8b", "-g", "h100-sxm", "--dp", "8", "--ep", "2"), "dense"),
    (("-m", "llama-3.1-8b", "-g", "h100-sxm", "--dp", "8", "--cp", "3", "--seq", "4096"), "multiple of 6"),
    (("-m", "llama-3.1-8b", "-g", "a100-80gb", "--dp", "8", "--compute-dtype", "fp8"), "FP8"),
    (("-m", "llama-3.1-8b", "-g", "v100", "--dp", "8", "--compute-dtype", "fp8"), "FP8"),
    (("-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "64", "--dp", "2", "--tp", "8", "--pp", "2", "--cp", "4"),
     "not --gpus 64"),
    (("-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "64", "--tp", "8", "--cp", "3"), "--cp"),
    (("-m", "mixtral-8x7b", "-g", "h100-sxm", "--dp", "4", "--ep", "8"), "dp × cp"),
    (("-m", "mixtral-8x7b", "-g", "h100-sxm", "--dp", "6", "--ep", "3"), "experts"),
    (("-m", "llama-3.1-8b", "-g", "h100-sxm", "--dp", "8", "--cp-comm", "tree"), "--cp-comm"),
    (("-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "64", "--search", "--ep", "2"), "dense"),
    (("-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "48", "--search", "--cp", "3", "--seq", "4096"),
     "multiple of 6"),
    (("-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "64", "--search", "--tp", "0"), "--tp"),
])
def test_frontier_bad_input_exits_2(cli, args, needle):
    run = cli("parallel", *args)
    assert run.code == 2, run.stdout
    assert needle in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------------------------
# Compute dtype


def test_fp8_compute_runs_matmuls_at_the_fp8_peak_and_attention_in_bf16():
    from llmcalc.core import serve as sv
    from llmcalc.core.precision import FP8_GEMM_SHARE
    spec, gpu = load_model("llama-3.1-8b"), load_gpu("h100-sxm")
    bf = sv.step(spec, gpu, 1, 0, 4096, logits=1, mfu=0.5)
    f8 = sv.step(spec, gpu, 1, 0, 4096, logits=1, mfu=0.5, dtype="fp8")
    F, attn = bf["flops"].value, bf["attention_flops"].value
    by_hand = ((F - attn) / (1979e12 * FP8_GEMM_SHARE) + attn / 989.4e12) / 0.5     # seconds of math, one GPU
    assert f8["t_math_seconds"].value == pytest.approx(by_hand, rel=1e-3)
    assert bf["t_math_seconds"].value == pytest.approx(F / 989.4e12 / 0.5, rel=1e-3)
    # prefill-heavy serving speeds up by less than 2× (attention and the GEMM share stay)
    assert 1.5 < bf["t_math_seconds"].value / f8["t_math_seconds"].value < 2


def test_fp8_training_memory_names_both_recipes(cli):
    base = ("parallel", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--dp", "8", "--seq", "4096", "--global-batch", "64",
            "--json")
    docs = {name: cli(*base, *more).json() for name, more in (
        ("bf16", ()), ("te", ("--compute-dtype", "fp8")),          # Transformer Engine: bf16 weights + fp8 caches
        ("primary", ("--precision", "fp8")))}                      # fp8 primary weights
    bf16, te, primary = (docs[k]["results"] for k in ("bf16", "te", "primary"))
    assert te["fp8_weight_cache_bytes"] == pytest.approx(2 * te["params_per_gpu"])   # 1 B copy + 1 B transpose
    assert te["total_bytes"] == pytest.approx(bf16["total_bytes"] + te["fp8_weight_cache_bytes"])
    assert primary["fp8_weight_cache_bytes"] == 0 and primary["weights_bytes"] < bf16["weights_bytes"]
    assert [docs[k]["inputs"]["compute_dtype"] for k in ("bf16", "te", "primary")] == ["bf16", "fp8", "fp8"]
    assert te["step_seconds"] < bf16["step_seconds"]


def test_serving_alltoall_per_decode_step_for_mixtral():
    # Mixtral 8x7B decode on EP 8 (one node): 64 sequences, one new token each: 8 tokens per GPU, each sent to
    # its 2 experts as 4096 bf16 values and gathered back: 2 all-to-alls × 32 MoE layers, 7/8 leaving the GPU.
    from llmcalc.core.moe import step_alltoall
    cl = _cluster()
    r = step_alltoall(load_model("mixtral-8x7b"), cl, 64, 1, 8)
    buf = 8 * 2 * 4096 * 2
    assert r["ep_alltoall_bytes"].value == pytest.approx(2 * 32 * 7 / 8 * buf)
    assert r["ep_alltoall_seconds"].value == pytest.approx(2 * 32 * (cl.nvlink_latency + 7 / 8 * buf / cl.nvlink_bw))
    # decode is latency-bound: the α terms are most of it
    assert 2 * 32 * cl.nvlink_latency > 0.5 * r["ep_alltoall_seconds"].value
    with pytest.raises(Exception, match="dense"):
        step_alltoall(load_model("llama-3.1-8b"), cl, 64, 1, 8)


def test_ep_overlap_hides_alltoalls_up_to_the_compute(cli):
    base = ("parallel", "-m", "mixtral-8x7b", "-g", "h100-sxm", "--dp", "16", "--ep", "8", "--seq", "4096",
            "--global-batch", "64", "--zero", "1", "--json")
    plain, hidden = results(cli(*base)), results(cli(*base, "--ep-overlap"))
    assert plain["ep_comm_exposed_seconds"] == plain["ep_comm_seconds"] > 0
    assert hidden["ep_comm_exposed_seconds"] == max(0, hidden["ep_comm_seconds"] - hidden["compute_seconds"])
    assert hidden["step_seconds"] <= plain["step_seconds"]


# ----------------------------------------------------------------------------------------------
# The search covers cp and ep


def test_search_405b_with_cp_and_uneven_interleaving_under_a_second():
    from llmcalc.core import parallel_search as ps
    spec, gpu = load_model("llama-3.1-405b"), load_gpu("h100-sxm")
    run = par.Training(seq=8192, global_batch=2048)
    res = ps.search(spec, gpu, par.Cluster.from_gpu(gpu), run, 16384, ps.SearchSpace(uneven_pp=True), top=0)
    assert res.seconds < 1.0
    assert {1, 2, 4} <= set(res.layouts["cp"].tolist())          # 8,192 tokens: cp up to 4 (2,048 per rank)
    # 126 layers on 16 stages × 8 chunks is among the layouts
    lay = res.layouts
    assert any(p == 16 and v == 8 for p, v in zip(lay["pp"].tolist(), lay["virtual"].tolist()))
    # every layout multiplies out to the GPUs
    assert all(t * c * p * d == 16384 for t, c, p, d in zip(lay["tp"], lay["cp"], lay["pp"], lay["dp"]))


def test_choice_flags_sweep_a_single_layout(cli):
    # Contract v2: every choice flag takes a comma list; each combination is a row, the layout resolved once.
    doc = cli("parallel", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--dp", "8", "--tp", "1,2", "--seq", "4096",
              "--global-batch", "64", "--zero", "0,3", "--precision", "mixed,fp8", "--recompute", "none,full",
              "--json").json()
    rows = doc["rows"]
    assert len(rows) == 2 * 2 * 2 * 2
    assert {(r["zero"], r["precision"], r["recompute"], r["tp"]) for r in rows} == {
        (z, p, rc, t) for z in (0, 3) for p in ("mixed", "fp8") for rc in ("none", "full") for t in (1, 2)}
    assert all(r["gpus"] == 8 * r["tp"] for r in rows)
    one = cli("parallel", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--dp", "8", "--tp", "2", "--seq", "4096",
              "--global-batch", "64", "--zero", "3", "--precision", "fp8", "--recompute", "full", "--json").json()
    match = [r for r in rows if (r["zero"], r["precision"], r["recompute"], r["tp"]) == (3, "fp8", "full", 2)][0]
    assert match["step_seconds"] == pytest.approx(one["results"]["step_seconds"])
    assert match["total_bytes"] == pytest.approx(one["results"]["total_bytes"])


def test_search_takes_lists_that_include_one(cli):
    doc = cli("parallel", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--gpus", "64", "--seq", "4096", "--global-batch",
              "64", "--search", "--cp", "1,2", "--tp", "1,2", "--zero", "0,3", "--top", "0", "--json").json()
    rows = doc["rows"]
    assert {r["cp"] for r in rows} == {1, 2} and {r["tp"] for r in rows} <= {1, 2} and {r["zero"] for r in rows} <= {0, 3}


def test_search_covers_expert_parallelism_for_moe():
    from llmcalc.core import parallel_search as ps
    spec, gpu = load_model("mixtral-8x7b"), load_gpu("h100-sxm")
    run = par.Training(seq=4096, global_batch=512)
    res = ps.search(spec, gpu, par.Cluster.from_gpu(gpu), run, 64, ps.SearchSpace(tp=(1, 2), pp=(1, 2)), top=0)
    eps = set(res.layouts["ep"].tolist())
    assert eps == {1, 2, 4, 8}
    assert all((d * c) % e == 0 for d, c, e in zip(res.layouts["dp"], res.layouts["cp"], res.layouts["ep"]))
    # a dense model is never searched with ep > 1
    assert ps.search_ep(load_model("llama-3.1-8b"), ps.SearchSpace()) == [1]


@pytest.mark.parametrize("command", [
    ("flops", "-m", "llama-3.1-8b", "--tokens", "1T", "--gpus", "64"),
    ("serve", "-m", "llama-3.1-8b", "--prompt", "2048", "--gen", "128", "--batch", "16"),
    ("parallel", "-m", "llama-3.1-8b", "--dp", "8", "--seq", "4096", "--global-batch", "64"),
])
def test_compute_dtype_on_every_command(cli, command):
    from llmcalc.presets import preset_files
    fp8 = cli(*command, "-g", "h100-sxm", "--compute-dtype", "fp8", "--json").json()
    bf16 = cli(*command, "-g", "h100-sxm", "--compute-dtype", "bf16", "--json").json()
    assert fp8["inputs"]["compute_dtype"] == "fp8" and bf16["inputs"]["compute_dtype"] == "bf16"
    key = {"flops": "gpu_hours", "serve": "prefill_seconds", "parallel": "step_seconds"}[command[0]]
    assert fp8["results"][key] < bf16["results"][key]
    for gpu in ["v100-sxm2-32gb", "a100-80gb"] + [g for g in ("t4",) if g in preset_files("gpus")]:   # no FP8
        bad = cli(*command, "-g", gpu, "--compute-dtype", "fp8")
        assert bad.code == 2 and "FP8" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_serve_ep_swaps_moe_allreduces_for_alltoalls(cli):
    base = ("serve", "-m", "mixtral-8x7b", "-g", "h100-sxm", "--tp", "8", "--batch", "64", "--prompt", "1000",
            "--gen", "2", "--json")
    tp = results(cli(*base))
    ep = results(cli(*base, "--ep"))
    a, link, B, D, L = 20e-6, 450e9, 64, 4096, 32           # default all-reduce latency, NVLink one way
    ar = a + 2 * 7 / 8 * B * D * 2 / link                    # one ring all-reduce of the step's activations
    a2a = a + 7 / 8 * (B / 8) * 2 * D * 2 / link             # 8 tokens per GPU, top-2, bf16
    assert tp["decode_comm_seconds"] == pytest.approx(2 * L * ar)
    assert ep["decode_comm_seconds"] == pytest.approx((2 * L - L) * ar + 2 * L * a2a)
    bad = cli("serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--tp", "8", "--ep")
    assert bad.code == 2 and "dense" in bad.stderr
