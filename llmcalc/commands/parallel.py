"""`llmcalc parallel`: a training layout's memory per GPU, communication, bubble and step time, or with --search
every layout of N GPUs ranked. The arithmetic, the search and the table of which flags go together live in
core/parallel.py and core/parallel_search.py; this module declares the flags, reads them and hands over."""

from __future__ import annotations

from typing import Any

from llmcalc.cli_support import declared, output, shared_options

EPILOG = """Examples:

  llmcalc parallel -m gpt3-175b -g a100-80gb --gpus 6144 --tp 8 --pp 12 --global-batch 1536 --recompute full

  llmcalc parallel -m llama-3.1-70b -g h100-sxm --gpus 64 --tp 8 --pp 1,2,4,8 --zero 1 --recompute full --global-batch 512 --seq 8192

  llmcalc parallel -m llama-3.1-405b -g h100-sxm --gpus 16384 --tp 8 --cp 16 --pp 16 --virtual-stages 8 --seq 128Ki --global-batch 128 --tp-overlap --overlap-dp

  llmcalc parallel -m llama-3.1-405b -g h100-sxm --gpus 16384 --global-batch 2048 --seq 8192 --search --json | jq -r '.rows[] | [.tp, .pp, .dp, .zero, .recompute, .step_seconds, .mfu] | @tsv'
"""

LAYOUT, SEARCH, LINKS, TIME, MEMORY = "Layout", "Search", "Interconnect", "Step time", "Memory (as train-mem)"

# The flags, declared once (cli_support.declared): name, flag(s), panel, default, help.
OPTIONS = (
    ("gpus", "--gpus --num-gpus", LAYOUT, None, "GPUs in all (N). Default dp × tp × pp."),
    ("dp", "--dp", LAYOUT, None, "Data-parallel degree. Any two of --dp/--tp/--pp with --gpus give the third."),
    ("tp", "--tp", LAYOUT, None, "Tensor-parallel degree (divides the heads; within a node unless asked)."),
    ("pp", "--pp", LAYOUT, None, "Pipeline stages."),
    ("cp", "--cp", LAYOUT, None, "Context-parallel degree: each sequence split over cp GPUs, two chunks each (causal load balance). Default 1."),
    ("cp_comm", "--cp-comm", LAYOUT, "ring", "ring (Megatron-Core: K/V passed round, hidden behind attention) or allgather (Llama 3: K/V gathered, exposed)."),
    ("ep", "--ep", LAYOUT, None, "Expert-parallel degree (MoE): experts sharded over ep of the dp·cp GPUs. Default 1."),
    ("zero", "--zero", LAYOUT, None, "ZeRO stage over the data-parallel GPUs: 0, 1 (optimizer), 2 (+ gradients), 3 (+ weights, FSDP). Default 0."),
    ("micro_batch", "--micro-batch", LAYOUT, None, "Sequences per GPU per micro-batch (b). Default 1."),
    ("global_batch", "--global-batch", LAYOUT, None, "Sequences per step over all replicas (B); m = B/(dp·b) micro-batches. Default about 4M tokens."),
    ("seq", "--seq -s", LAYOUT, None, "Tokens per sequence; default the model's context length, at most 8,192."),
    ("recompute", "--recompute", LAYOUT, None, "none, selective or full activation recomputation. Default none."),
    ("sp", "--sp/--no-sp", LAYOUT, None, "Sequence parallelism with --tp (default off; --search tries both)."),
    ("virtual_stages", "--virtual-stages", LAYOUT, None, "Interleaved 1F1B: model chunks per GPU (v); the bubble shrinks v-fold. Default 1."),
    ("schedule", "--schedule", LAYOUT, "1f1b", "1f1b (p micro-batches in flight) or gpipe (all m)."),
    ("search", "--search", SEARCH, False, "Rank every layout of --gpus that fits (tp, pp, dp, ZeRO, micro-batch, recompute, SP, v); layout flags given narrow it."),
    ("top", "--top", SEARCH, None, "Rows --search prints (0 = every layout that fits). Default 10."),
    ("uneven_pp", "--uneven-pp", SEARCH, False, "Let --search try pipeline degrees that do not divide the layers (the busiest stage sets the pace)."),
    ("gpus_per_node", "--gpus-per-node", LINKS, None, "GPUs joined by NVLink in one node (default from the GPU preset)."),
    ("nvlink_bw", "--nvlink-bw", LINKS, None, "One-way bytes/s per GPU inside a node (default from the preset)."),
    ("net_bw", "--net-bw", LINKS, None, "One-way bytes/s per GPU across nodes (default: the node's NICs over its GPUs, from the preset)."),
    ("nvlink_latency", "--nvlink-latency", LINKS, None, "Time per ring step inside a node, with a unit (default 2us)."),
    ("net_latency", "--net-latency", LINKS, None, "Time per ring step across nodes, with a unit (default 5us)."),
    ("compute_mfu", "--compute-mfu --mfu", TIME, None, "Fraction of the dense peak the GPUs reach while computing, before bubble and communication (default 0.5)."),
    ("overlap_dp", "--overlap-dp/--no-overlap-dp", TIME, False, "Hide data-parallel communication behind compute (gradient reduction in backward, weight gathers prefetched)."),
    ("tp_overlap", "--tp-overlap/--no-tp-overlap", TIME, False, "Hide TP communication behind the GEMMs it feeds (Megatron-Core's --tp-comm-overlap), up to their time."),
    ("pp_overlap", "--pp-overlap/--no-pp-overlap", TIME, False, "Hide pipeline sends behind the next model chunk's compute under --virtual-stages (Megatron-Core's --overlap-p2p-communication)."),
    ("ep_overlap", "--ep-overlap/--no-ep-overlap", TIME, False, "Hide the MoE all-to-alls behind another micro-batch's compute (DeepSeek-V3's DualPipe)."),
    ("compute_dtype", "--compute-dtype", TIME, None, "Matmul precision, bf16 or fp8 (default fp8 under --precision fp8, else bf16); attention stays bf16."),
    ("capacity_factor", "--capacity-factor", TIME, None, "MoE under --ep: tokens on the busiest experts' GPU / the mean (default 1.0, dropless and balanced)."),
    ("tokens", "--tokens", TIME, None, "A training token budget (e.g. 15T): days and GPU-hours to train it."),
    ("dtype", "--dtype", TIME, None, "Dtype of the peak FLOP/s (default: fp8 for --precision fp8, else bf16; fp32 uses tf32)."),
    ("causal", "--causal", TIME, False, "Count only the causal triangle of the attention scores."),
    ("precision", "--precision", MEMORY, "mixed", "fp32, mixed (bf16 + fp32 master), bf16 (pure) or fp8."),
    ("grad_dtype", "--grad-dtype", MEMORY, None, "Gradient dtype, also on the wire: fp32, bf16 or fp16 (default as train-mem: bf16 under mixed)."),
    ("optimizer", "--optimizer", MEMORY, "adamw", "adamw, adam, sgd, sgd-momentum, adafactor or adam-8bit."),
    ("activations", "--activations", MEMORY, "megatron", "megatron or eager activation accounting."),
    ("flash", "--flash/--no-flash", MEMORY, True, "Flash attention (no S² scores saved)."),
    ("reserve", "--reserve", MEMORY, None, "Memory set aside per GPU for the CUDA context (default 1GiB)."),
    ("fragmentation", "--fragmentation", MEMORY, None, "Fraction of GPU memory lost to fragmentation (default 0.05)."),
    ("method", "--method", MEMORY, None, "full (default), lora or qlora: a frozen base with adapters (train-mem --method)."),
    ("lora_rank", "--lora-rank", MEMORY, None, "LoRA rank r (default 16)."),
    ("lora_targets", "--lora-targets", MEMORY, None, "Module kinds given adapters: all-linear (default), attention, or q,k,v,o,gate,up,down."),
    ("gpu_cost", "--gpu-cost", "Cost and energy", None, "USD per GPU-hour (default: the GPU preset's dated reference price, if it has one)."),
    ("gpu_power", "--gpu-power", "Cost and energy", None, "Board power per GPU in W (default: the GPU preset's)."),
    ("pue", "--pue", "Cost and energy", None, "Data-centre power usage effectiveness (default 1.1, Google's fleet 2023)."),
    ("grid_intensity", "--grid-intensity", "Cost and energy", None, "kg CO2eq per kWh (default 0.475, the world average, IEA 2019)."),
    ("check", "--check", None, False, "Exit 3 when the layout does not fit (with --search: when none does)."),
)


@shared_options()
@declared(OPTIONS)
def parallel(model: Any, gpu: Any, f: dict, arch: dict, out: dict) -> int:
    """Data × tensor × pipeline parallelism with ZeRO: per-GPU memory (train-mem's model), DP/TP/PP bytes and
    seconds per step, the pipeline bubble, step time, tokens/s and MFU; with --search, every layout of
    --gpus that fits, ranked by throughput, with what bounds each."""
    from llmcalc.cli_support import Inputs, choice, resolve_gpu, resolve_model
    from llmcalc.commands import finetune
    from llmcalc.core import memory as mem
    from llmcalc.core import parallel as par
    from llmcalc.errors import ExitStatus
    from llmcalc.spec import DTYPES
    from llmcalc.units import is_sweep, parse_bandwidth, parse_bytes, parse_time

    par.check_flags(f, f["search"], is_sweep)
    spec, gpu_spec = resolve_model(model, arch), resolve_gpu(gpu, required=True)
    c = {k: choice("--" + k.replace("_", "-"), f[k].split(",")[0], modes) if f[k] else None for k, modes in (
        ("precision", mem.PRECISIONS), ("grad_dtype", mem.GRAD_DTYPES), ("optimizer", mem.OPTIMIZERS),
        ("activations", mem.ACTIVATION_MODELS), ("schedule", par.SCHEDULES), ("dtype", DTYPES),
        ("cp_comm", par.CP_MODES), ("compute_dtype", par.COMPUTE_DTYPES))}
    inp = Inputs()
    one = lambda name, **kw: inp.number(name, f[name], **{"integer": kw.get("unit", "count") == "count", **kw})  # noqa: E731
    cluster = par.Cluster.from_gpu(
        gpu_spec, one("gpus_per_node", default=gpu_spec.gpus_per_node or 1),
        one("nvlink_bw", unit="byte/s", parse=parse_bandwidth), one("net_bw", unit="byte/s", parse=parse_bandwidth),
        one("nvlink_latency", unit="s", parse=parse_time, strict=False),
        one("net_latency", unit="s", parse=parse_time, strict=False))
    for k in ("gpus_per_node", "nvlink_bw", "net_bw", "nvlink_latency", "net_latency"):
        inp.fixed(k, getattr(cluster, k), unit=inp.items[k].unit)
    dtype = par.peak_dtype(gpu_spec, c["precision"], c["dtype"])
    cd = par.compute_dtype(gpu_spec, c["precision"], c["compute_dtype"])
    notes = par.run_notes(spec, cluster, dtype, f["seq"] is not None, f["compute_mfu"] is not None, c["precision"],
                          c["grad_dtype"] is not None, cd)
    run_kw = dict(precision=c["precision"], grad_dtype=c["grad_dtype"], optimizer=c["optimizer"],
                  activations=c["activations"], flash=f["flash"], causal=f["causal"], schedule=c["schedule"],
                  overlap_dp=f["overlap_dp"], dtype=c["dtype"], tp_overlap=f["tp_overlap"],
                  pp_overlap=f["pp_overlap"], ep_overlap=f["ep_overlap"], cp_comm=c["cp_comm"], compute_dtype=cd,
                  shape_efficiency=f["compute_mfu"] is None,
                  capacity_factor=one("capacity_factor", default=par.DEFAULT_CAPACITY_FACTOR, unit="factor", minimum=1,
                                      strict=False),
                  reserve_bytes=one("reserve", default=mem.DEFAULT_RESERVE_BYTES, unit="byte", parse=parse_bytes,
                                    strict=False),
                  fragmentation=one("fragmentation", default=mem.DEFAULT_FRAGMENTATION, unit="ratio", strict=False,
                                    maximum=0.9),
                  **finetune.read_one(f["method"], f["lora_rank"], f["lora_targets"]))
    inp.fixed("method", run_kw["method"], unit="str")
    inp.fixed("lora_rank", run_kw["lora_rank"] if run_kw["method"] != "full" else None, unit="count")
    inp.fixed("lora_targets", ",".join(run_kw["lora_targets"]) if run_kw["method"] != "full" else None, unit="str")
    layout = ("gpus", "dp", "tp", "pp", "cp", "ep", "micro_batch", "virtual_stages")
    if f["search"]:
        from llmcalc.commands import parallel_search as ranked
        space, N = ranked.space(f), one("gpus", integer=True)
    else:
        for k in layout:
            inp.number(k, f[k], default=1 if k in ("cp", "ep", "micro_batch", "virtual_stages") else None, integer=True)
        for k, allowed, default in (("zero", ("0", "1", "2", "3"), "0"), ("recompute", mem.RECOMPUTE_MODES, "none"),
                                    ("precision", mem.PRECISIONS, "mixed"), ("optimizer", mem.OPTIMIZERS, "adamw"),
                                    ("activations", mem.ACTIVATION_MODELS, "megatron")):
            inp.choices(k, f[k], allowed, default=default)         # a comma list is an outer sweep axis
        inp.fixed("sp", bool(f["sp"]), unit="bool")
    inp.number("seq", f["seq"], default=min(spec.max_seq, par.DEFAULT_MAX_SEQ), integer=True)
    inp.number("global_batch", f["global_batch"], integer=True)
    inp.number("compute_mfu", f["compute_mfu"], default=par.DEFAULT_COMPUTE_MFU, unit="ratio", maximum=1.0)
    inp.number("tokens", f["tokens"])
    for k, unit in (("schedule", "str"), ("overlap_dp", "bool"), ("tp_overlap", "bool"), ("pp_overlap", "bool"),
                    ("ep_overlap", "bool"), ("cp_comm", "str"),
                    ("compute_dtype", "str"), ("precision", "str"), ("optimizer", "str"), ("activations", "str"),
                    ("flash", "bool"), ("causal", "bool")):
        if k not in inp.items:
            inp.fixed(k, run_kw[k], unit=unit)
    one_precision = "precision" not in inp.outer                   # else each row resolves its own defaults
    inp.fixed("grad_dtype", c["grad_dtype"] or (mem.DEFAULT_GRAD[c["precision"]] if one_precision else None), unit="str")
    inp.fixed("dtype", dtype if one_precision else c["dtype"], unit="str")
    from llmcalc.render import Report
    if f["search"]:
        return ranked.report(spec, gpu_spec, cluster, run_kw, N, space, inp, notes, f, out)
    cols: dict = {}

    def compute(v):                                      # once per point of the outer (choice) axes
        n = len(v[inp.swept[0]]) if inp.swept else 1
        resolved, more = par.resolve_points(spec, v, n, c["schedule"], cluster.gpus_per_node,
                                            f["global_batch"] is not None, bool(f["sp"]))
        cols.update(resolved)
        notes.extend(x for x in more if x not in notes)
        lay = {k: (par._np().asarray(x, dtype=float) if n > 1 else x[0]) for k, x in resolved.items()}
        run = par.Training(seq=v["seq"], global_batch=lay["global_batch"], compute_mfu=v["compute_mfu"], tokens=v["tokens"],
                           **{**run_kw, **{k: v[k] for k in ("precision", "optimizer", "activations")},
                              "compute_dtype": par.compute_dtype(gpu_spec, v["precision"], c["compute_dtype"])})
        return par.evaluate(spec, gpu_spec, cluster, run, dp=lay["dp"], tp=lay["tp"], pp=lay["pp"], cp=v["cp"], ep=v["ep"],
                            micro_batch=v["micro_batch"], virtual=v["virtual_stages"], zero=int(v["zero"]),
                            recompute=v["recompute"], sp=v["sp"])
    r = inp.evaluate(compute)
    rows = len(r["step_seconds"].value) if inp.swept else 1
    for name, values in cols.items():
        inp.derived(name, values * (rows // len(values)))
    z = inp.items["zero"]
    z.value, z.unit = ([int(x) for x in z.value] if isinstance(z.value, list) else int(z.value)), "count"
    r.put("bound", par.bound(r) if not inp.swept else list(par.bounds(r)), "str", "what bounds it")
    from llmcalc.commands import cost_options
    hours = r["gpu_hours"].value if f["tokens"] is not None else None
    cost_options.training(r, hours, cost_options.resolve(
        gpu_spec, gpu_cost=f["gpu_cost"], gpu_power=f["gpu_power"], pue=f["pue"], grid_intensity=f["grid_intensity"],
        notes=notes if hours is not None else None, inp=inp if hours is not None else None))
    output(Report("parallel", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                  columns=["total_bytes", "fits", "bubble_fraction", "step_seconds", "tokens_per_second", "mfu"]), **out)
    fits = r["fits"].value
    if f["check"] and not (bool(fits.all()) if hasattr(fits, "all") else bool(fits)):
        import sys
        sys.stderr.write(f"llmcalc: does not fit: the layout needs more memory per GPU than {gpu_spec.name} has usable\n")
        return ExitStatus.CHECK_FAILED
    return ExitStatus.OK
