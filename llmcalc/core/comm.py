"""Collectives, written once: ring all-reduce, all-gather / reduce-scatter, point-to-point, the hierarchical
(rail-aligned) forms that clusters of NVLink nodes run, and all-to-all. Every command that prices
communication (parallel, serve, specdec through serve) builds its formulas from these.

α-β model (Hockney; ring collectives after Patarasuk & Yuan 2009, seed 003 App. B): a collective of a
``size``-byte buffer over n ranks costs (steps)·α + (bytes each rank sends)/bw, bw the one-way bytes/s of each
rank's link.

- ring all-reduce: each rank sends 2(n−1)/n·size, in 2(n−1) steps;
- ring all-gather and reduce-scatter (size = the whole gathered buffer): (n−1)/n·size in n−1 steps;
- point-to-point: α + size/bw;
- hierarchical / rail-aligned (NCCL's tree/ring over NVLink nodes; Jeaugey, "Massively scale your DL training
  with NCCL 2.4", NVIDIA 2019; the rail-optimised fabric of DGX SuperPOD, NVIDIA DGX H100 reference
  architecture): a group of n = g·k ranks with g inside each node and k nodes. The all-reduce is a
  reduce-scatter inside the node over NVLink, k-node all-reduces of the size/g shards (every GPU on its own
  rail, all rails at once), then an all-gather inside the node. With k = 1 it is the NVLink ring; with g = 1 the
  flat ring over the network. Its bytes per rank add up to the ring's 2(n−1)/n·size.
- all-to-all (MoE dispatch/combine; DeepSpeed-MoE, arXiv:2201.05596 sec. 5): each rank keeps 1/n of its
  buffer and sends (n−1)/n; the (g−1)/n that stays in the node goes over NVLink while the (n−g)/n that leaves
  goes over the network, concurrently; one latency step (the sends are issued together).

The ``*_expr`` functions return expression text with the caller's symbols substituted, so a command's
Formula shows the collective inline in --explain while the collective itself is written here only.
"""

from __future__ import annotations

from llmcalc.core.formula import Formula

# Expression templates over n (ranks), size (bytes), bw (one-way bytes/s per rank), alpha (s per step).
_ALLREDUCE_WIRE = "2 * ({n} - 1) / {n} * {size}"
_GATHER_WIRE = "({n} - 1) / {n} * {size}"


def allreduce_bytes_expr(n: str = "n", size: str = "size") -> str:
    """Bytes each rank sends in a ring all-reduce: 2(n−1)/n·size."""
    return _ALLREDUCE_WIRE.format(n=n, size=size)


def gather_bytes_expr(n: str = "n", size: str = "size") -> str:
    """Bytes each rank sends in a ring all-gather or reduce-scatter of a ``size``-byte buffer: (n−1)/n·size."""
    return _GATHER_WIRE.format(n=n, size=size)


def allreduce_seconds_expr(n="n", size="size", bw="bw", alpha="alpha", steps: str | None = None) -> str:
    """Ring all-reduce time. ``steps``: how many α the call pays (default the ring's 2(n−1); serve's small
    all-reduces pay one fixed latency each, NCCL's LL protocol)."""
    steps = f"2 * ({n} - 1)" if steps is None else steps
    latency = alpha if steps == "1" else f"{steps} * {alpha}"
    return f"{latency} + {allreduce_bytes_expr(n, size)} / {bw}"


def gather_seconds_expr(n="n", size="size", bw="bw", alpha="alpha") -> str:
    return f"({n} - 1) * {alpha} + {gather_bytes_expr(n, size)} / {bw}"


def hier_allreduce_seconds_expr(size="size", g="g", k="k", bw_in="bw_in", bw_out="bw_out", a_in="a_in",
                                a_out="a_out") -> str:
    """Hierarchical all-reduce: reduce-scatter + all-gather over g ranks in a node, all-reduce of size/g over k
    nodes on every rail at once."""
    return (f"2 * ({gather_seconds_expr(g, size, bw_in, a_in)}) + "
            f"{allreduce_seconds_expr(k, f'{size} / {g}', bw_out, a_out)}")


def hier_gather_seconds_expr(size="size", g="g", k="k", bw_in="bw_in", bw_out="bw_out", a_in="a_in",
                             a_out="a_out") -> str:
    """Hierarchical all-gather (or reduce-scatter) of a ``size``-byte buffer."""
    return f"{gather_seconds_expr(g, size, bw_in, a_in)} + {gather_seconds_expr(k, f'{size} / {g}', bw_out, a_out)}"


ALLREDUCE_BYTES = Formula(allreduce_bytes_expr())
GATHER_BYTES = Formula(gather_bytes_expr())                # all-gather and reduce-scatter alike
ALLREDUCE_SECONDS = Formula(allreduce_seconds_expr())
GATHER_SECONDS = Formula(gather_seconds_expr())
P2P_SECONDS = Formula("alpha + size / bw")
HIER_ALLREDUCE_SECONDS = Formula(hier_allreduce_seconds_expr())
HIER_GATHER_SECONDS = Formula(hier_gather_seconds_expr())
# Ranks of a group (n ranks, ``stride`` apart in Megatron's rank order) that share a node of G GPUs, and nodes.
RANKS_PER_NODE = Formula("where(n * stride <= G, n, max(floor(G / stride), 1))")
NODES = Formula("n / g")
# All-to-all of a ``size``-byte buffer per rank (what each rank holds before the exchange).
ALLTOALL_BYTES = Formula("(n - 1) / n * size")
ALLTOALL_SECONDS = Formula("where(n > 1, where(n > g, a_out, a_in), 0) + "
                           "max((g - 1) / n * size / bw_in, (n - g) / n * size / bw_out)")


def ranks_per_node(n, stride, G):
    """(g, k): ranks of an n-rank group at ``stride`` inside one node of G GPUs, and nodes it spans."""
    g = RANKS_PER_NODE(n=n, stride=stride, G=G)
    return g, NODES(n=n, g=g)


def allreduce_seconds(size, n, stride, cluster):
    """Hierarchical all-reduce time of ``size`` bytes over n ranks at ``stride`` on ``cluster`` (a
    core.parallel.Cluster: gpus_per_node, nvlink_bw, net_bw per GPU, latencies)."""
    g, k = ranks_per_node(n, stride, cluster.gpus_per_node)
    return HIER_ALLREDUCE_SECONDS(size=size, g=g, k=k, bw_in=cluster.nvlink_bw, bw_out=cluster.net_bw,
                                  a_in=cluster.nvlink_latency, a_out=cluster.net_latency)


def gather_seconds(size, n, stride, cluster):
    """Hierarchical all-gather (or reduce-scatter) time of a ``size``-byte buffer."""
    g, k = ranks_per_node(n, stride, cluster.gpus_per_node)
    return HIER_GATHER_SECONDS(size=size, g=g, k=k, bw_in=cluster.nvlink_bw, bw_out=cluster.net_bw,
                               a_in=cluster.nvlink_latency, a_out=cluster.net_latency)


def alltoall_seconds(size, n, stride, cluster):
    """All-to-all time of ``size`` bytes per rank over n ranks at ``stride``."""
    g, _ = ranks_per_node(n, stride, cluster.gpus_per_node)
    return ALLTOALL_SECONDS(size=size, n=n, g=g, bw_in=cluster.nvlink_bw, bw_out=cluster.net_bw,
                            a_in=cluster.nvlink_latency, a_out=cluster.net_latency)
