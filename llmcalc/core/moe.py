"""Expert parallelism while serving a mixture of experts: the all-to-all of every decode (or prefill) step.

With ``ep`` GPUs each holding E/ep of the routed experts (DeepSeek-V3's serving layout, arXiv:2412.19437
sec. 3.4; vLLM/SGLang expert parallelism), every MoE layer sends each token's hidden state to its top-k
experts and gathers the results back: two all-to-alls per MoE layer per step (dispatch, combine), each of
T·k·h·a bytes per GPU for the T tokens a GPU holds (the batch split over the ep GPUs, attention data-parallel),
(ep−1)/ep of it leaving the GPU, NVLink inside a node and the network across (core/comm.py's all-to-all). In
decode the bytes are small and the latency term dominates: 2·L_moe latencies per token.
"""

from __future__ import annotations

from llmcalc.core import comm
from llmcalc.core.formula import Formula, Results
from llmcalc.errors import InputError
from llmcalc.spec import ModelSpec

TOKENS_PER_GPU = Formula("B * t / ep")
ALLTOALL_BUFFER = Formula("T * k * h * a")
STEP_BYTES = Formula(f"2 * L_moe * {comm.gather_bytes_expr('ep', 'buf')}")
STEP_SECONDS = Formula(f"2 * L_moe * ({comm.ALLTOALL_SECONDS.expr})")


def check_ep(spec: ModelSpec, ep: int) -> None:
    if ep > 1 and not spec.moe:
        raise InputError(f"--ep {ep}: {spec.name} is a dense model; expert parallelism needs a mixture of experts")
    if spec.moe and spec.moe.experts % ep:
        raise InputError(f"--ep {ep} does not divide the {spec.moe.experts} experts of {spec.name}")


def step_alltoall(spec: ModelSpec, cluster, batch, tokens, ep: int, act_bytes: float = 2.0,
                  out: Results | None = None, prefix: str = "") -> Results:
    """Bytes each GPU sends and seconds of the dispatch and combine all-to-alls of one step of ``tokens`` new
    tokens for ``batch`` sequences over ``ep`` GPUs (``cluster``: core.parallel.Cluster)."""
    check_ep(spec, ep)
    r = out if out is not None else Results()
    L_moe = spec.moe_layers if spec.moe else 0
    k = spec.moe.top_k if spec.moe else 0
    T = r.calc(prefix + "ep_tokens_per_gpu", TOKENS_PER_GPU, "count", "tokens each GPU holds this step",
               B=batch, t=tokens, ep=ep)
    buf = ALLTOALL_BUFFER(T=T, k=k, h=spec.hidden, a=act_bytes)
    r.calc(prefix + "ep_alltoall_bytes", STEP_BYTES, "byte", "all-to-all bytes each GPU sends per step",
           L_moe=L_moe, ep=ep, buf=buf)
    g, _ = comm.ranks_per_node(ep, 1, cluster.gpus_per_node)
    r.calc(prefix + "ep_alltoall_seconds", STEP_SECONDS, "s", "dispatch + combine all-to-alls per step",
           L_moe=L_moe, size=buf, n=ep, g=g, bw_in=cluster.nvlink_bw, bw_out=cluster.net_bw,
           a_in=cluster.nvlink_latency, a_out=cluster.net_latency)
    return r
