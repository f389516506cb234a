"""Serving under load: a continuous-batching engine fed by Poisson arrivals, simulated step by step.

The engine is scheduled the way vLLM's scheduler does with chunked prefill (Kwon et al. 2023,
arXiv:2309.06180; Agrawal et al. 2024, Sarathi-Serve, arXiv:2403.02310): each step runs one decode token for
every running sequence that has finished its prompt, then prompt chunks (running sequences first, then new
ones first-come first-served) until ``max_batched_tokens`` tokens are scheduled; at most ``max_seqs``
sequences run at once; a request is admitted only while free KV blocks (of ``block`` tokens) hold its
chunk; when a running sequence needs a block and none is free, the most recently admitted sequence is
preempted and later recomputed (its prompt and the tokens it already produced are prefilled again).

Step time. A mixed step is the roofline step of core/serve.py (``serve.step``) applied to the step's
whole work: its FLOPs and bytes are additive over tokens, attention key pairs, cached tokens read and
logits, except the weights, which are read once per step. ``StepCost`` takes each of those per-unit costs
from ``serve.step`` itself (evaluated once, vectorised over the token count) and turns the sums into
seconds with serve's own ``T_MATH``, ``T_MEM``, ``T_COMM`` and ``STEP_TIME`` formulas, so the step time is
written in one place; a test checks it against ``serve.step`` for uniform batches.

Why a hand-written loop and not simpy: the engine is a single synchronous server whose state changes only
at step boundaries, so there is no concurrency for a process library to manage, and simpy's per-event
cost (a generator resume and a heap push, tens of µs) would dominate. The loop advances whole spans of
pure-decode steps at once: while no request is admitted, no prompt chunk runs and nobody finishes, the
step's FLOPs and bytes grow linearly with the step index, so the time is the larger of two affine
functions plus a constant; the span's total time and the step at which the next arrival lands follow in
closed form (``_advance``); a test checks it against the steps summed one by one. Decoding sequences are
one cohort (``simulate``), so a pass costs the same at batch 1 and batch 256. That keeps the work per request
to about three scheduler passes: 10⁵ requests in 0.6-1.7 s of CPU (benchmarks/loadsim.py).

Measures (times in seconds; a request's TTFT = first token − arrival, TPOT = (finish − first token) ÷
(gen − 1), E2E = finish − arrival): means and percentiles, mean batch (running sequences, time-averaged),
mean queue (waiting requests, time-averaged), achieved rate N ÷ (last finish − 0), output tokens/s.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from llmcalc.core.formula import Formula, Results
from llmcalc.errors import InputError
from llmcalc.spec import GpuSpec, ModelSpec

DEFAULT_MAX_SEQS = 256              # vLLM's max_num_seqs default
DEFAULT_MAX_BATCHED_TOKENS = 8192   # vLLM V1's max_num_batched_tokens for online serving on large GPUs
DEFAULT_REQUESTS = 1000
DEFAULT_SEED = 0
DEFAULT_SLO_PERCENTILE = 99.0       # the "p99 TTFT under 500 ms"
HIST_BINS = 20

# Little's law (Little 1961): mean number in the system = arrival rate × mean time in the system.
LITTLE = Formula("rate * mean_time")
# M/D/1 mean wait in queue (Pollaczek-Khinchine with a deterministic service D): ρ·D / (2(1 − ρ)).
MD1_WAIT = Formula("rho * D / (2 * (1 - rho))")
REPLICAS = Formula("ceil(rate / max_rate)")
GPUS = Formula("replicas * T")


# ---------------------------------------------------------------------------------------------
# The step time of a mixed step, from serve.step


@dataclass
class StepCost:
    """Per-unit FLOPs and bytes of one engine step, taken from ``serve.step``; ``seconds`` turns a step's
    totals into time with serve's formulas.

    A step of N tokens in all, whose sequences attend over ``pairs_full`` (full layers) and ``pairs_win``
    (windowed layers) query-key pairs, read ``ctx_full``/``ctx_win`` cached tokens and compute ``logits``
    LM-head rows: F = f_N[N] + f_pf·pairs_full + f_pw·pairs_win + f_lg·logits,
    Q = q_N[N] + q_cf·ctx_full + q_cw·ctx_win (weights read once, touched experts by N, K/V written).
    """

    f_tok: list           # FLOPs of N tokens without attention scores and logits, N = 0..n_max
    q_tok: list           # bytes per GPU: weights read for N tokens / T + their K/V written
    comm: list            # T_comm seconds for N tokens
    f_pair_full: float
    f_pair_win: float
    f_logit: float
    q_ctx_full: float
    q_ctx_win: float
    window: float         # sliding window W (inf: none)
    tp: int
    peak: float
    bw: float
    mfu: float
    mbu: float

    @classmethod
    def build(cls, spec: ModelSpec, gpu: GpuSpec, n_max: int, **kw) -> "StepCost":
        """``kw``: serve.step's keywords (weight_dtype, kv_dtype, group_size, kv_group_size, scale_bytes, tp,
        mbu, mfu, alpha)."""
        import numpy as np

        from llmcalc.core import serve as sv
        from llmcalc.core.flops import ATTN_SCORE_WINDOWED, head_dims

        kw = dict(kw)
        tp = int(kw.get("tp", 1))
        wd = sv.check_dtype("--weight-dtype", kw.get("weight_dtype", "bf16"))
        mbu = sv.default_mbu(wd) if kw.get("mbu") is None else float(kw["mbu"])
        mfu = sv.DEFAULT_MFU if kw.get("mfu") is None else float(kw["mfu"])
        kw.update(mbu=mbu, mfu=mfu)
        n = np.arange(n_max + 1, dtype=float)
        # N sequences of one token and no cache: each token attends to itself only (one pair, one key).
        with np.errstate(invalid="ignore", divide="ignore"):     # N = 0: the per-sequence ceilings are 0/0
            base = sv.step(spec, gpu, n, 0, 1, logits=0, **kw)
        f_tok = np.asarray(base["flops"].value - base["attention_flops"].value, dtype=float)
        q_tok = np.asarray(base["bytes"].value, dtype=float)
        comm = np.broadcast_to(np.asarray(base["t_comm_seconds"].value, dtype=float), n.shape)
        one = sv.step(spec, gpu, 1, 0, 1, logits=1, **kw)["flops"].value
        none = sv.step(spec, gpu, 1, 0, 1, logits=0, **kw)["flops"].value
        d_qk, d_v = head_dims(spec)
        win = spec.window_layers
        pair = dict(B=1, n_heads=spec.heads, d_qk=d_qk, d_v=d_v, L_full=spec.layers - win, L_win=win)
        f_pf = ATTN_SCORE_WINDOWED(pairs_full=1, pairs_win=0, **pair)
        f_pw = ATTN_SCORE_WINDOWED(pairs_full=0, pairs_win=1, **pair)
        W = float(spec.sliding_window) if win else math.inf

        def kv_read(c):
            return float(sv.step(spec, gpu, 1, c, 1, **kw)["kv_read_bytes"].value)
        if win:
            q_cf = kv_read(W + 1) - kv_read(W)         # beyond the window only full layers grow
            q_cw = kv_read(1) - q_cf
        else:
            q_cf, q_cw = kv_read(1), 0.0
        return cls(f_tok.tolist(), q_tok.tolist(), comm.tolist(), float(f_pf), float(f_pw), float(one - none),
                   float(q_cf), float(q_cw), W, tp, gpu.peak_flops(kw.get("dtype") or "bf16"), gpu.hbm_bytes_per_s,
                   mfu, mbu)

    def __post_init__(self):
        from llmcalc.core.serve import STEP_TIME, T_MATH, T_MEM
        # T_MATH and T_MEM are proportional to F and Q: their value at F = 1 and Q = 1, once
        self._per_flop = T_MATH(F=1.0, T=self.tp, peak=self.peak, mfu=self.mfu)
        self._per_byte = T_MEM(Q=1.0, bw=self.bw, mbu=self.mbu)
        self._time = STEP_TIME

    def parts(self, N: int, pairs_full, pairs_win, ctx_full, ctx_win, logits):
        """(t_math, t_mem, t_comm) of a step; the pair/context/logit arguments may be NumPy arrays."""
        F = self.f_tok[N] + self.f_pair_full * pairs_full + self.f_pair_win * pairs_win + self.f_logit * logits
        Q = self.q_tok[N] + self.q_ctx_full * ctx_full + self.q_ctx_win * ctx_win
        return self._per_flop * F, self._per_byte * Q, self.comm[N]

    def seconds(self, N: int, pairs_full, pairs_win, ctx_full, ctx_win, logits):
        tm, tq, tc = self.parts(N, pairs_full, pairs_win, ctx_full, ctx_win, logits)
        return self._time(t_math=tm, t_mem=tq, t_comm=tc)

    def chunk(self, c: int, t: int):
        """(pairs_full, pairs_win, ctx_full, ctx_win) of one sequence with c cached tokens taking t new ones
        (serve.PAIRS: query j attends to min(c + j + 1, W) keys)."""
        from llmcalc.core.serve import CAP_QUERIES, PAIRS
        pf = t * c + t * (t + 1) / 2
        if self.window == math.inf:
            return pf, 0.0, c, 0.0
        W = self.window
        pw = PAIRS(m=CAP_QUERIES(W=W, c=c, t=t), c=c, t=t, W=W)
        return pf, pw, c, min(c, W)


def _advance(m0: float, dm: float, q0: float, dq: float, tc: float, k: int, limit: float):
    """Steps taken and seconds elapsed over a span of k decode steps whose step j takes
    max(m0 + j·dm, q0 + j·dq) + tc, stopping after the step during which ``limit`` seconds pass."""
    # split at the kink where the binding roof changes: at most two affine pieces
    cuts = [0, k]
    if dm != dq:
        x = (q0 - m0) / (dm - dq)
        if 0 < x < k:
            cuts = [0, int(math.ceil(x)), k]
    taken, elapsed = 0, 0.0
    for j0, j1 in zip(cuts, cuts[1:]):
        if j1 <= j0:
            continue
        a = max(m0 + j0 * dm, q0 + j0 * dq) + tc
        d = dm if m0 + (j0 + j1 - 1) / 2 * dm >= q0 + (j0 + j1 - 1) / 2 * dq else dq
        n = j1 - j0
        total = n * a + d * n * (n - 1) / 2
        if elapsed + total < limit:
            taken, elapsed = j1, elapsed + total
            continue
        m = int(_solve_cross(a, d, n, limit - elapsed))  # whole steps: D indexes the block-phase histogram
        return j0 + m, elapsed + m * a + d * m * (m - 1) / 2
    return taken, elapsed


def _solve_cross(t0: float, d: float, k: int, target: float) -> int:
    """Smallest j in 1..k with cum(j) = j·t0 + d·j(j−1)/2 ≥ target (k + 1 if none): steps 0..j−1 end at
    or after ``target``."""
    def cum(j):
        return j * t0 + d * j * (j - 1) / 2
    if cum(k) < target:
        return k + 1
    if abs(d) < 1e-30:
        j = math.ceil(target / t0)
    else:  # d/2 j² + (t0 − d/2) j − target = 0
        a, b = d / 2, t0 - d / 2
        disc = max(b * b + 4 * a * target, 0.0)
        j = math.ceil((-b + math.sqrt(disc)) / (2 * a))
    j = min(max(j, 1), k)
    while j > 1 and cum(j - 1) >= target:
        j -= 1
    while cum(j) < target:
        j += 1
    return j


# ---------------------------------------------------------------------------------------------
# The simulation


@dataclass
class Workload:
    """Arrival times (seconds, ascending) and the prompt and output lengths of each request."""

    arrivals: list
    prompt: list
    gen: list


@dataclass
class SimResult:
    ttft: object                 # NumPy arrays, one value per request
    tpot: object
    e2e: object
    end_seconds: float
    busy_seconds: float
    batch_time: float            # ∫ running sequences dt
    queue_time: float            # ∫ waiting requests dt
    steps: int
    preemptions: int
    output_tokens: int
    input_tokens: int
    prefill_seconds: float       # GPU-time attributed to prompt tokens (see attribute())
    decode_seconds: float
    queue_at_last_arrival: int
    extra: dict = field(default_factory=dict)


def kv_blocks(spec: ModelSpec, gpu: GpuSpec, *, block: int, weight_dtype="bf16", kv_dtype="bf16", group_size=0,
              kv_group_size=0, scale_bytes=2.0, tp=1, mem_util=None, transient_bytes=0.0) -> int:
    """Blocks of ``block`` tokens the cache holds per replica: (mem-util × memory − weights/T − the profiling
    pass's transient) ÷ (block × K/V bytes per token per GPU), as vLLM sizes its block pool (the capacity
    rule's budget, core/capacity.py)."""
    from llmcalc.core import serve as sv
    from llmcalc.core.capacity import BUDGET_ENGINE
    from llmcalc.core.kv import DEFAULT_MEM_UTIL, kv_bytes_per_token
    from llmcalc.core.quant import weight_bytes
    u = DEFAULT_MEM_UTIL if mem_util is None else mem_util
    budget = BUDGET_ENGINE(u=u, M=gpu.device_memory_bytes, W=weight_bytes(spec, weight_dtype, group_size, scale_bytes),
                           T=tp, t=transient_bytes)
    per_block = block * kv_bytes_per_token(spec, kv_dtype, kv_group_size) * sv.kv_share_per_gpu(spec, tp)
    return int(max(0, math.floor(budget / per_block)))


def simulate(cost: StepCost, work: Workload, *, max_seqs: int = DEFAULT_MAX_SEQS,
             max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS, blocks: int, block: int = 16,
             progress=None) -> SimResult:
    """Run the engine over ``work`` with ``blocks`` KV blocks of ``block`` tokens; ``progress(done, total)``
    is called now and then.

    Decoding sequences are kept as one cohort, so a step costs O(1) whatever the batch: every decoding
    sequence advances one token per step, so its cache length is ``off + D`` (D counts decode steps), its
    finish is the step D at which its last token comes out (a heap), and the blocks it needs follow from
    ``(off + D) mod block`` (a histogram over the block phase)."""
    import heapq

    import numpy as np

    arr, P, G = work.arrivals, work.prompt, work.gen
    n = len(arr)
    if n == 0:
        raise InputError("no requests to simulate: give --requests 1 or more")
    if max_batched_tokens < max_seqs:
        raise InputError(f"--max-batched-tokens ({max_batched_tokens}) must be at least --max-seqs ({max_seqs}): "
                         "every running sequence's decode token must fit in a step")
    bs = int(block)  # an index into the block-phase histogram
    W = cost.window
    windowed = W != math.inf
    ctx = [0] * n          # prefill phase: tokens in the cache
    target = list(P)       # tokens to prefill before decoding (prompt; + outputs after a preemption)
    done = [0] * n         # output tokens produced (decode phase: G − (fin − D))
    nblk = [0] * n         # blocks held (prefill phase)
    off = [0] * n          # decode phase: cache length − D
    fin = [0] * n          # decode phase: D at which the last token is out
    ver = [0] * n          # invalidates heap entries of a preempted sequence
    first = [math.nan] * n
    finish = [math.nan] * n
    enq = [0.0] * n
    state = [0] * n        # 0 not arrived/waiting, 1 prefilling, 2 decoding, 3 done
    waiting: deque = deque()
    running: dict = {}     # admission order (preemption takes the last)
    prefilling: dict = {}  # running sequences still in their prompt, admission order
    fin_heap: list = []
    cross_heap: list = []  # windowed: D at which a decoding sequence's cache reaches W
    hist = [0] * bs        # decoding sequences by off mod block
    below = [0] * n        # windowed: the sequence's cache is still shorter than W
    n_dec = s_off = 0
    n_below = s_off_below = 0
    D = 0
    free = blocks
    t = 0.0
    nxt = finished = steps = preempt = 0
    batch_time = queue_time = busy = pre_time = dec_time = 0.0
    q_last = 0
    allocated = False      # this step's decode blocks are taken
    tick = max(1, n // 100)
    next_tick = tick
    seconds, parts, chunk = cost.seconds, cost.parts, cost.chunk

    def start_decode(s):
        nonlocal n_dec, s_off, n_below, s_off_below
        o = ctx[s] - D
        off[s] = o
        fin[s] = D + G[s] - done[s]
        heapq.heappush(fin_heap, (fin[s], ver[s], s))
        hist[o % bs] += 1
        n_dec += 1
        s_off += o
        state[s] = 2
        if windowed and ctx[s] < W:
            below[s] = 1
            n_below += 1
            s_off_below += o
            heapq.heappush(cross_heap, (W - o, ver[s], s))

    def stop_decode(s):
        nonlocal n_dec, s_off, n_below, s_off_below
        o = off[s]
        hist[o % bs] -= 1
        n_dec -= 1
        s_off -= o
        ver[s] += 1
        if below[s]:
            below[s] = 0
            n_below -= 1
            s_off_below -= o
        return -(-(o + D) // bs)            # blocks it held

    def preempt_last():
        nonlocal free, preempt
        v, _ = running.popitem()
        if state[v] == 2:
            done[v] = G[v] - (fin[v] - D)
            if allocated and (off[v] + D) % bs == 0:
                free += 1                   # the block taken for this step's token, which it will not write
            free += stop_decode(v)
        else:
            del prefilling[v]
            free += nblk[v]
        nblk[v] = 0
        ctx[v] = 0
        target[v] = P[v] + done[v]
        state[v] = 0
        waiting.appendleft(v)
        enq[v] = t
        preempt += 1
        return v

    passes = 0
    while finished < n:
        passes += 1
        while nxt < n and arr[nxt] <= t:
            waiting.append(nxt)
            enq[nxt] = arr[nxt]
            nxt += 1
            if nxt == n:
                q_last = len(waiting)
        if not running and not waiting:
            t = arr[nxt]
            continue
        if windowed:
            while cross_heap and cross_heap[0][0] <= D:
                _, vv, s = heapq.heappop(cross_heap)
                if vv == ver[s] and below[s]:
                    below[s] = 0
                    n_below -= 1
                    s_off_below -= off[s]
        # ---- schedule one step: decode tokens, running prompts' chunks, then new requests
        preempted = False
        allocated = False
        want = hist[-D % bs]                # decoding sequences whose last block is full
        while want > free and running:
            v = preempt_last()
            preempted = True
            want = hist[-D % bs]
        if want:
            free -= want
        allocated = True
        budget = max_batched_tokens - n_dec
        sched = []
        for s in (list(prefilling) if prefilling else ()):
            if budget <= 0:
                break
            if s not in prefilling:         # preempted below while serving an earlier one
                continue
            need = min(target[s] - ctx[s], budget)
            w = -(-(ctx[s] + need) // bs) - nblk[s]
            while w > free and s in running:
                preempt_last()
                preempted = True
            if s not in running:
                break
            free -= w
            nblk[s] += w
            sched.append((s, need))
            budget -= need
        admitted = False
        if not preempted:
            while waiting and len(running) < max_seqs and budget > 0:
                s = waiting[0]
                need = min(target[s] - ctx[s], budget)
                w = -(-(ctx[s] + need) // bs) - nblk[s]
                if w > free:
                    break
                waiting.popleft()
                queue_time += t - enq[s]
                free -= w
                nblk[s] += w
                running[s] = None
                prefilling[s] = None
                state[s] = 1
                sched.append((s, need))
                budget -= need
                admitted = True
        if not sched and not n_dec:
            if preempted:
                continue
            raise AssertionError("scheduler stalled with an idle engine")  # lengths are checked to fit

        # ---- the step's work
        N = n_dec
        pf = s_off + n_dec * (D + 1)
        cf = s_off + n_dec * D
        if windowed:
            n_above = n_dec - n_below
            pw = s_off_below + n_below * (D + 1) + n_above * W
            cw = s_off_below + n_below * D + n_above * W
        else:
            pw = cw = 0
        logits = n_dec
        for s, need in sched:
            c = ctx[s]
            N += need
            a, b, d, e = chunk(c, need)
            pf += a
            pw += b
            cf += d
            cw += e
            if c + need >= target[s]:
                logits += 1

        # ---- a span of pure decode steps: nobody prefilling or finishing early, no admission possible
        k = 1
        if not sched and not preempted:
            while fin_heap and fin_heap[0][1] != ver[fin_heap[0][2]]:
                heapq.heappop(fin_heap)
            k = fin_heap[0][0] - D
            k = min(k, (free // n_dec) * bs + 1)     # each sequence needs ≤ ⌈(k − 1)/block⌉ more blocks
            if windowed:                             # keep min(c + j + 1, W) linear over the span
                while cross_heap and cross_heap[0][1] != ver[cross_heap[0][2]]:
                    heapq.heappop(cross_heap)
                if cross_heap:
                    k = min(k, cross_heap[0][0] - D)
            k = max(k, 1)
        if k > 1:
            tm0, tq0, tc = parts(N, pf, pw, cf, cw, logits)
            j = k - 1
            nb = n_below if windowed else 0
            tm1, tq1, _ = parts(N, pf + j * n_dec, pw + j * nb, cf + j * n_dec, cw + j * nb, logits)
            # an arrival is admitted at the step after it lands, unless admission is blocked for the whole
            # span (max_seqs reached, or a queue already waiting on blocks that only shrink in decode)
            can_admit = nxt < n and not waiting and len(running) < max_seqs
            k, elapsed = _advance(tm0, (tm1 - tm0) / j, tq0, (tq1 - tq0) / j, tc, k,
                                  arr[nxt] - t if can_admit else math.inf)
            # blocks taken by the steps after the first (the first step's were taken above)
            for r in range(bs):
                if hist[r]:
                    x = (-(r + D + 1)) % bs
                    if x < k - 1:
                        free -= hist[r] * (1 + (k - 2 - x) // bs)
        else:
            elapsed = seconds(N, pf, pw, cf, cw, logits)
        steps += k
        t_end = t + elapsed
        batch_time += len(running) * elapsed
        busy += elapsed
        dec_share = n_dec / N
        dec_time += elapsed * dec_share
        pre_time += elapsed * (1 - dec_share)
        if n_dec:
            D += int(k)
            while fin_heap and fin_heap[0][0] <= D:
                _, vv, s = heapq.heappop(fin_heap)
                if vv != ver[s]:
                    continue
                free += stop_decode(s)
                done[s] = G[s]
                finish[s] = t_end
                state[s] = 3
                del running[s]
                finished += 1
        for s, need in sched:
            ctx[s] += need
            if ctx[s] >= target[s]:
                done[s] += 1
                del prefilling[s]
                if done[s] == 1:
                    first[s] = t_end
                if done[s] >= G[s]:
                    finish[s] = t_end
                    free += nblk[s]
                    nblk[s] = 0
                    state[s] = 3
                    del running[s]
                    finished += 1
                else:
                    nblk[s] = 0              # the cohort's blocks follow from its cache length
                    start_decode(s)
        t = t_end
        if progress is not None and finished >= next_tick:
            progress(finished, n)
            next_tick = finished + tick

    a = np.asarray(arr, dtype=float)
    f = np.asarray(first)
    e = np.asarray(finish)
    g = np.asarray(G, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(g > 1, (e - f) / np.maximum(g - 1, 1), np.nan)
    return SimResult(f - a, tpot, e - a, float(e.max()), busy, batch_time, queue_time, steps, preempt,
                     int(g.sum()), int(np.sum(P)), pre_time, dec_time, q_last,
                     {"passes": passes, "free_blocks_end": free})


# ---------------------------------------------------------------------------------------------
# Workloads, summaries and solvers


def unit_arrivals(requests: int, seed: int, n_lengths: int = 1):
    """Common random numbers: cumulative unit-mean exponential gaps (arrival times at rate 1) and, for a
    lengths table of ``n_lengths`` rows, which row each request takes (uniform, with replacement)."""
    import numpy as np
    if requests < 1:
        raise InputError(f"--requests must be at least 1; got {requests}")
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, int(requests))
    rows = rng.integers(0, n_lengths, int(requests)) if n_lengths > 1 else np.zeros(int(requests), dtype=int)
    return np.cumsum(gaps), rows


def workload(rate: float, unit, rows, prompts, gens) -> Workload:
    """Poisson arrivals at ``rate`` requests/s (unit arrival times ÷ rate) with lengths from the table."""
    import numpy as np
    if not (rate > 0 and math.isfinite(rate)):
        raise InputError(f"--rate must be a positive number of requests per second; got {rate:g}")
    p = np.asarray(prompts, dtype=np.int64)[rows]
    g = np.asarray(gens, dtype=np.int64)[rows]
    return Workload((unit / rate).tolist(), p.tolist(), g.tolist())


def check_lengths(prompts, gens, *, blocks: int, block: int, where: str = "lengths") -> None:
    """Each request needs a prompt of ≥ 1 token and ≥ 1 output token, and must fit the block pool alone."""
    import numpy as np
    p, g = np.asarray(prompts), np.asarray(gens)
    if p.size == 0:
        raise InputError(f"{where}: no requests (an empty table)")
    if np.any(p < 1) or np.any(g < 1):
        raise InputError(f"{where}: every prompt and gen length must be at least 1 token")
    longest = int(np.max(p + g))
    cap = blocks * block
    if longest > cap:
        raise InputError(f"{where}: a request of {longest} tokens does not fit the KV cache of one replica "
                         f"({cap} tokens in {blocks} blocks); shorten it, raise --tp or --mem-util, or use a "
                         "smaller --kv-dtype")


def alone(engine: "Engine", prompt: int, gen: int) -> tuple[float, float]:
    """(TTFT, TPOT) of one request alone on the engine: its prompt in chunks of max_batched_tokens, then
    gen − 1 batch-1 decode steps (TPOT is NaN for a one-token answer)."""
    r = engine.run(Workload([0.0], [int(prompt)], [int(gen)]))
    return float(r.ttft[0]), float(r.tpot[0])


def summarize(sim: SimResult, rate: float, *, slo_ttft=None, slo_tpot=None,
              percentile: float = DEFAULT_SLO_PERCENTILE) -> dict:
    """The run's measures as plain numbers (seconds, requests/s, tokens/s, ratios) and histograms."""
    import numpy as np
    n = sim.ttft.size
    tpot = sim.tpot[np.isfinite(sim.tpot)]
    T = sim.end_seconds

    def pct(x, q):
        return float(np.percentile(x, q)) if x.size else None

    def mean(x):
        return float(np.mean(x)) if x.size else None
    ok = np.ones(n, dtype=bool)
    if slo_ttft is not None:
        ok &= sim.ttft <= slo_ttft
    if slo_tpot is not None:
        ok &= ~(sim.tpot > slo_tpot)      # a one-token answer has no TPOT: it meets any TPOT SLO
    little_lhs = (sim.batch_time + sim.queue_time) / T
    achieved = n / T
    d = {
        "ttft_mean_seconds": mean(sim.ttft), "ttft_p50_seconds": pct(sim.ttft, 50),
        "ttft_p90_seconds": pct(sim.ttft, 90), "ttft_p99_seconds": pct(sim.ttft, 99),
        "tpot_mean_seconds": mean(tpot), "tpot_p50_seconds": pct(tpot, 50), "tpot_p99_seconds": pct(tpot, 99),
        "e2e_mean_seconds": mean(sim.e2e), "e2e_p50_seconds": pct(sim.e2e, 50), "e2e_p99_seconds": pct(sim.e2e, 99),
        "mean_batch": sim.batch_time / T, "mean_queue": sim.queue_time / T, "mean_in_system": little_lhs,
        "little_rate_times_e2e": float(LITTLE(rate=achieved, mean_time=float(np.mean(sim.e2e)))),
        "achieved_rate": achieved, "output_tokens_per_second": sim.output_tokens / T,
        "slo_attainment": float(ok.mean()) if (slo_ttft is not None or slo_tpot is not None) else None,
        "overloaded": bool(sim.queue_at_last_arrival > max(0.05 * n, 10)),
        "preemptions": sim.preemptions, "steps": sim.steps, "busy_ratio": sim.busy_seconds / T,
        "ttft_slo_percentile_seconds": pct(sim.ttft, percentile), "tpot_slo_percentile_seconds": pct(tpot, percentile),
    }
    d["histograms"] = {"ttft_seconds": _hist(sim.ttft), "tpot_seconds": _hist(tpot)}
    del rate
    return d


def _hist(x) -> dict:
    import numpy as np
    if not x.size:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(x, bins=HIST_BINS)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def meets(d: dict, slo_ttft, slo_tpot) -> bool:
    """The SLOs hold at the chosen percentile and the engine keeps up."""
    if d["overloaded"]:
        return False
    if slo_ttft is not None and not d["ttft_slo_percentile_seconds"] <= slo_ttft:
        return False
    if slo_tpot is not None and d["tpot_slo_percentile_seconds"] is not None and not d["tpot_slo_percentile_seconds"] <= slo_tpot:
        return False
    return True


@dataclass
class Engine:
    """One replica: its step cost, block pool and scheduler limits."""

    cost: StepCost
    blocks: int
    block: int = 16
    max_seqs: int = DEFAULT_MAX_SEQS
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS

    def run(self, work: Workload, progress=None) -> SimResult:
        return simulate(self.cost, work, max_seqs=self.max_seqs, max_batched_tokens=self.max_batched_tokens,
                        blocks=self.blocks, block=self.block, progress=progress)


def build_engine(spec: ModelSpec, gpu: GpuSpec, *, max_seqs: int = DEFAULT_MAX_SEQS,
                 max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS, block: int = 16, mem_util=None,
                 **kw) -> Engine:
    """``kw``: serve.step's keywords (weight_dtype, kv_dtype, group_size, kv_group_size, scale_bytes, tp, mbu,
    mfu, alpha)."""
    from llmcalc.core.kv import check_tp
    if max_seqs < 1:
        raise InputError(f"--max-seqs must be at least 1; got {max_seqs}")
    if max_batched_tokens < 1:
        raise InputError(f"--max-batched-tokens must be at least 1; got {max_batched_tokens}")
    check_tp(spec, int(kw.get("tp", 1)))
    from llmcalc.core.servemem import transient_model
    # vLLM profiles one step of max_batched_tokens tokens over max_seqs sequences before sizing its pool
    profile = transient_model(spec, "vllm", int(kw.get("tp", 1)), max_batched_tokens).bytes(
        max_seqs, max_batched_tokens / max_seqs)
    blocks = kv_blocks(spec, gpu, block=block, mem_util=mem_util, transient_bytes=profile,
                       **{k: kw[k] for k in ("weight_dtype", "kv_dtype", "group_size", "kv_group_size",
                                             "scale_bytes", "tp") if k in kw})
    if blocks < 1:
        raise InputError(f"the weights leave no room for a KV cache on {kw.get('tp', 1)}× {gpu.name}; "
                         "raise --tp or --mem-util, or quantise the weights")
    cost = StepCost.build(spec, gpu, max(max_batched_tokens, max_seqs), **kw)
    return Engine(cost, blocks, block, int(max_seqs), int(max_batched_tokens))


def check_slo(engine: Engine, prompts, gens, slo_ttft, slo_tpot) -> None:
    """An SLO below what one request alone achieves cannot be met at any rate: say so, and why."""
    import numpy as np
    p_min = int(np.min(prompts))
    g_min = int(np.min(gens))
    pre, dec = alone(engine, p_min, max(g_min, 2))
    if slo_ttft is not None and slo_ttft < pre:
        raise InputError(f"--slo-ttft {slo_ttft * 1e3:.4g} ms cannot be met: the shortest prompt ({p_min} tokens) "
                         f"alone takes {pre * 1e3:.4g} ms to prefill on this replica")
    if slo_tpot is not None and slo_tpot < dec:
        raise InputError(f"--slo-tpot {slo_tpot * 1e3:.4g} ms cannot be met: one sequence alone decodes at "
                         f"{dec * 1e3:.4g} ms per token on this replica (batch 1, weights read every step)")


def max_rate(engine: Engine, unit, rows, prompts, gens, *, slo_ttft=None, slo_tpot=None,
             percentile: float = DEFAULT_SLO_PERCENTILE, rel_tol: float = 0.005, progress=None) -> float:
    """Largest Poisson rate (requests/s) one replica sustains within the SLOs: bisection on the simulation
    with common random numbers (the same unit arrivals and lengths at every rate) between 0 and an upper
    bound no engine can beat (Little's law: λ ≤ concurrency ÷ the mean time a request needs alone).
    The bracket does not depend on the SLOs, so a tighter SLO never gives a larger answer."""
    import numpy as np
    p = np.asarray(prompts)[rows]
    g = np.asarray(gens)[rows]
    sample = slice(0, min(len(p), 256))
    need = []
    for P, G in {(int(a), int(b)) for a, b in zip(p[sample], g[sample])}:
        pre, dec = alone(engine, P, G)
        need.append(pre + (G - 1) * (0.0 if G <= 1 else dec))
    conc = min(engine.max_seqs, engine.blocks * engine.block / float(np.min(p + g)))
    hi = 1.05 * conc / float(np.min(need))
    lo = 0.0
    it = 0
    while hi - lo > rel_tol * max(lo, hi * 1e-3) and it < 40:
        mid = (lo + hi) / 2
        d = summarize(engine.run(workload(mid, unit, rows, prompts, gens)), mid, slo_ttft=slo_ttft,
                      slo_tpot=slo_tpot, percentile=percentile)
        if meets(d, slo_ttft, slo_tpot):
            lo = mid
        else:
            hi = mid
        it += 1
        if progress is not None:
            progress(it, max(it + 1, math.ceil(math.log2(max(hi - lo, 1e-300) / (rel_tol * max(lo, hi * 1e-3))))
                             + it))
    return lo


def replicas(rate, max_rate_value):
    """Replicas of one engine for ``rate`` requests/s, each taking a Poisson share rate/n (random routing)."""
    if not max_rate_value > 0:
        return None
    return int(REPLICAS(rate=rate, max_rate=max_rate_value))


# ---------------------------------------------------------------------------------------------
# One point of `serve --rate`: the measures, and the solvers when SLOs are given

LOAD_KEYS = {
    "ttft_mean_seconds": ("s", "time to first token, mean"),
    "ttft_p50_seconds": ("s", "TTFT p50"),
    "ttft_p90_seconds": ("s", "TTFT p90"),
    "ttft_p99_seconds": ("s", "TTFT p99"),
    "tpot_mean_seconds": ("s", "time per output token after the first, mean"),
    "tpot_p50_seconds": ("s", "TPOT p50"),
    "tpot_p99_seconds": ("s", "TPOT p99"),
    "e2e_mean_seconds": ("s", "end-to-end latency, mean"),
    "e2e_p50_seconds": ("s", "end-to-end p50"),
    "e2e_p99_seconds": ("s", "end-to-end p99"),
    "mean_batch": ("factor", "running sequences per step (time average)"),
    "mean_queue": ("factor", "requests waiting for admission (time average)"),
    "achieved_rate": ("req/s", "completed requests ÷ time to the last completion (vLLM benchmark_serving's)"),
    "output_tokens_per_second": ("token/s", "generated tokens ÷ time to the last completion (one replica)"),
    "slo_attainment": ("ratio", "share of requests within every SLO given"),
    "overloaded": ("bool", "the queue grows with the number of requests (arrivals beyond capacity)"),
    "preemptions": ("count", "sequences preempted and recomputed when the KV cache ran out"),
    "prefill_busy_seconds": ("s", "GPU-time of the run spent on prompt tokens (by token share of each step)"),
    "decode_busy_seconds": ("s", "GPU-time of the run spent on output tokens"),
    "simulated_seconds": ("s", "simulated time to the last completion"),
    "cost_per_million_input_tokens": ("usd", "cost per million prompt tokens (prefill's share of the GPU time)"),
    "cost_per_million_output_tokens": ("usd", "cost per million generated tokens (decode's share of the GPU time)"),
    "max_rate": ("req/s", "largest Poisson rate one replica sustains within the SLOs"),
    "replicas": ("count", "replicas needed for --rate within the SLOs (random routing)"),
    "gpus": ("count", "GPUs: replicas × tensor-parallel GPUs"),
}


def load_point(engine: Engine, unit, rows, prompts, gens, *, rate=None, slo_ttft=None, slo_tpot=None,
               percentile: float = DEFAULT_SLO_PERCENTILE, tp: int = 1, price=None, progress=None,
               memo: dict | None = None) -> tuple[dict, dict]:
    """(values by LOAD_KEYS, histograms) for one configuration.

    Without SLOs: the run at ``rate`` on one replica. With SLOs: ``max_rate``; with ``rate`` as well,
    ``replicas`` and ``gpus``, and the measures are those of one replica at its share rate ÷ replicas;
    without ``rate``, the measures at ``max_rate``. ``price``: USD per GPU-hour, for the cost per token
    (core/cost.py's serving split). ``memo``: a dict shared by the points of one sweep, so that max_rate,
    which does not depend on ``rate``, is found once per engine and SLO."""
    from llmcalc.core import cost
    slo = slo_ttft is not None or slo_tpot is not None
    mr = reps = gpus = None
    run_rate = rate
    if slo:
        check_slo(engine, prompts, gens, slo_ttft, slo_tpot)
        key = (id(engine), id(prompts), slo_ttft, slo_tpot, percentile)
        memo = {} if memo is None else memo
        if key not in memo:
            memo[key] = max_rate(engine, unit, rows, prompts, gens, slo_ttft=slo_ttft, slo_tpot=slo_tpot,
                                 percentile=percentile,
                                 progress=None if progress is None else (lambda i, n: progress(i, n, "max_rate")))
        mr = memo[key]
        if rate is not None:
            reps = replicas(rate, mr)
            gpus = None if reps is None else int(GPUS(replicas=reps, T=tp))
            run_rate = rate / reps if reps else rate
        else:
            run_rate = mr if mr > 0 else None
    out = dict.fromkeys(LOAD_KEYS)
    hist: dict = {}
    if run_rate is not None:
        sim = engine.run(workload(run_rate, unit, rows, prompts, gens),
                         progress=None if progress is None else (lambda i, n: progress(i, n, "requests")))
        d = summarize(sim, run_rate, slo_ttft=slo_ttft, slo_tpot=slo_tpot, percentile=percentile)
        for k in LOAD_KEYS:
            if k in d:
                out[k] = d[k]
        out.update(prefill_busy_seconds=sim.prefill_seconds, decode_busy_seconds=sim.decode_seconds,
                   simulated_seconds=sim.end_seconds)
        hist = d["histograms"]
        c = cost.serving(Results(), gpus=tp, price=price, wall_seconds=sim.end_seconds,
                         prefill_busy=sim.prefill_seconds, decode_busy=sim.decode_seconds,
                         input_tokens=sim.input_tokens, output_tokens=sim.output_tokens)
        out.update({k: row.value for k, row in c.items() if k in LOAD_KEYS})
    out.update(max_rate=mr, replicas=reps, gpus=gpus)
    return out, hist


def load_results(points: list[dict]) -> Results:
    """Rows of ``load_point`` as one Results (a value per point when there are several)."""
    import numpy as np
    r = Results()
    for k, (unit, label) in LOAD_KEYS.items():
        vals = [p.get(k) for p in points]
        if len(vals) == 1:
            r.put(k, vals[0], unit, label)
        elif unit in ("bool", "str"):
            r.put(k, vals, unit, label)
        else:
            r.put(k, np.array([np.nan if v is None else float(v) for v in vals]), unit, label)
    return r
