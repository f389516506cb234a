"""`llmcalc parallel`: a 3D-parallel layout (data × tensor × pipeline, ZeRO, sequence parallelism): memory per
GPU, communication, pipeline bubble and step time; or, with --search, every layout of N GPUs ranked."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from llmcalc.commands.finetune import LoraRankOpt, LoraTargetsOpt, MethodOpt
from llmcalc.cli_support import GpuOpt, ModelOpt, output, shared_options

EPILOG = """Examples:

  llmcalc parallel -m gpt3-175b -g a100-80gb --gpus 6144 --tp 8 --pp 12 --global-batch 1536 --recompute full

  llmcalc parallel -m llama-3.1-70b -g h100-sxm --gpus 64 --tp 8 --pp 1,2,4,8 --zero 1 --recompute full --global-batch 512 --seq 8192

  llmcalc parallel -m llama-3.1-405b -g h100-sxm --gpus 16384 --global-batch 2048 --seq 8192 --search --json | jq -r '.rows[] | [.tp, .pp, .dp, .zero, .recompute, .step_seconds, .mfu] | @tsv'
"""

LAYOUT = "Layout"
SEARCH = "Search"
LINKS = "Interconnect"
TIME = "Step time"
MEMORY = "Memory (as train-mem)"


def _opt(flag: str, help_: str, panel: str, *more: str):
    return Annotated[Optional[str], typer.Option(flag, *more, help=help_, rich_help_panel=panel, show_default=False)]


GpusOpt = _opt("--gpus", "GPUs in all (N). Default dp × tp × pp.", LAYOUT, "--num-gpus")
DpOpt = _opt("--dp", "Data-parallel degree. Any two of --dp/--tp/--pp with --gpus give the third.", LAYOUT)
TpOpt = _opt("--tp", "Tensor-parallel degree (divides the heads; within a node unless asked).", LAYOUT)
PpOpt = _opt("--pp", "Pipeline stages.", LAYOUT)
ZeroOpt = _opt("--zero", "ZeRO stage over the data-parallel GPUs: 0, 1 (optimizer), 2 (+ gradients), 3 (+ weights, FSDP). Default 0.", LAYOUT)
MicroBatchOpt = _opt("--micro-batch", "Sequences per GPU per micro-batch (b). Default 1.", LAYOUT)
GlobalBatchOpt = _opt("--global-batch", "Sequences per step over all replicas (B); m = B/(dp·b) micro-batches. Default about 4M tokens.", LAYOUT)
SeqOpt = _opt("--seq", "Tokens per sequence; default the model's context length, at most 8,192.", LAYOUT, "-s")
RecomputeOpt = _opt("--recompute", "none, selective or full activation recomputation. Default none.", LAYOUT)
VirtualStagesOpt = _opt("--virtual-stages", "Interleaved 1F1B: model chunks per GPU (v); the bubble shrinks v-fold. Default 1.", LAYOUT)
GpusPerNodeOpt = _opt("--gpus-per-node", "GPUs joined by NVLink in one node (default from the GPU preset).", LINKS)
NvlinkBwOpt = _opt("--nvlink-bw", "One-way bytes/s per GPU inside a node (default from the preset).", LINKS)
NetBwOpt = _opt("--net-bw", "One-way bytes/s per GPU across nodes (default from the preset).", LINKS)
NvlinkLatencyOpt = _opt("--nvlink-latency", "Seconds per ring step inside a node (default 2e-6).", LINKS)
NetLatencyOpt = _opt("--net-latency", "Seconds per ring step across nodes (default 5e-6).", LINKS)
ComputeMfuOpt = _opt("--compute-mfu", "Fraction of the dense peak the GPUs reach while computing, before bubble and communication (default 0.5).", TIME, "--mfu")
TokensOpt = _opt("--tokens", "A training token budget (e.g. 15T): days and GPU-hours to train it.", TIME)
DtypeOpt = _opt("--dtype", "Dtype of the peak FLOP/s (default: fp8 for --precision fp8, else bf16; fp32 uses tf32).", TIME)
GradDtypeOpt = _opt("--grad-dtype", "Gradient dtype, also on the wire: fp32, bf16 or fp16 (default as train-mem: bf16 under mixed).", MEMORY)
ReserveOpt = _opt("--reserve", "Memory set aside per GPU for the CUDA context (default 1GiB).", MEMORY)
FragmentationOpt = _opt("--fragmentation", "Fraction of GPU memory lost to fragmentation (default 0.05).", MEMORY)


@shared_options()
def parallel(
    model: ModelOpt = None,
    gpu: GpuOpt = None,
    gpus: GpusOpt = None,
    dp: DpOpt = None,
    tp: TpOpt = None,
    pp: PpOpt = None,
    zero: ZeroOpt = None,
    micro_batch: MicroBatchOpt = None,
    global_batch: GlobalBatchOpt = None,
    seq: SeqOpt = None,
    recompute: RecomputeOpt = None,
    sp: Annotated[Optional[bool], typer.Option("--sp/--no-sp", help="Sequence parallelism with --tp (default off; --search tries both).",
                                               rich_help_panel=LAYOUT, show_default=False)] = None,
    virtual_stages: VirtualStagesOpt = None,
    schedule: Annotated[str, typer.Option("--schedule", help="1f1b (p micro-batches in flight) or gpipe (all m).",
                                          rich_help_panel=LAYOUT)] = "1f1b",
    search: Annotated[bool, typer.Option("--search", help="Rank every layout of --gpus that fits (tp, pp, dp, ZeRO, micro-batch, recompute, SP, v); layout flags given narrow it.",
                                         rich_help_panel=SEARCH)] = False,
    top: Annotated[str, typer.Option("--top", help="Rows --search prints (0 = every layout that fits).", rich_help_panel=SEARCH)] = "10",
    uneven_pp: Annotated[bool, typer.Option("--uneven-pp", help="Let --search try pipeline degrees that do not divide the layers (the busiest stage sets the pace).",
                                            rich_help_panel=SEARCH)] = False,
    gpus_per_node: GpusPerNodeOpt = None,
    nvlink_bw: NvlinkBwOpt = None,
    net_bw: NetBwOpt = None,
    nvlink_latency: NvlinkLatencyOpt = None,
    net_latency: NetLatencyOpt = None,
    compute_mfu: ComputeMfuOpt = None,
    overlap_dp: Annotated[bool, typer.Option("--overlap-dp/--no-overlap-dp", help="Hide data-parallel communication behind the backward pass.",
                                             rich_help_panel=TIME)] = False,
    tokens: TokensOpt = None,
    dtype: DtypeOpt = None,
    causal: Annotated[bool, typer.Option("--causal", help="Count only the causal triangle of the attention scores.", rich_help_panel=TIME)] = False,
    precision: Annotated[str, typer.Option("--precision", help="fp32, mixed (bf16 + fp32 master), bf16 (pure) or fp8.", rich_help_panel=MEMORY)] = "mixed",
    grad_dtype: GradDtypeOpt = None,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw, adam, sgd, sgd-momentum, adafactor or adam-8bit.", rich_help_panel=MEMORY)] = "adamw",
    activations: Annotated[str, typer.Option("--activations", help="megatron or eager activation accounting.", rich_help_panel=MEMORY)] = "megatron",
    flash: Annotated[bool, typer.Option("--flash/--no-flash", help="Flash attention (no S² scores saved).", rich_help_panel=MEMORY)] = True,
    reserve: ReserveOpt = None,
    fragmentation: FragmentationOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 3 when the layout does not fit (with --search: when none does).")] = False,
    method: MethodOpt = None, lora_rank: LoraRankOpt = None, lora_targets: LoraTargetsOpt = None,
    arch: dict = None, out: dict = None,
) -> int:
    """Data × tensor × pipeline parallelism with ZeRO: per-GPU memory (train-mem's model), DP/TP/PP bytes and
    seconds per step, the pipeline bubble, step time, tokens/s and MFU; with --search, every layout of
    --gpus that fits, ranked by throughput, with what bounds each."""
    from llmcalc.cli_support import Inputs, choice, resolve_gpu, resolve_model
    from llmcalc.core import memory as mem
    from llmcalc.core import parallel as par
    from llmcalc.errors import ExitStatus
    from llmcalc.spec import DTYPES
    from llmcalc.units import parse_bytes, parse_rate

    spec = resolve_model(model, arch)
    gpu_spec = resolve_gpu(gpu, required=True)
    precision = choice("--precision", precision, mem.PRECISIONS)
    grad = choice("--grad-dtype", grad_dtype, mem.GRAD_DTYPES) if grad_dtype is not None else None
    optimizer = choice("--optimizer", optimizer, mem.OPTIMIZERS)
    activations = choice("--activations", activations, mem.ACTIVATION_MODELS)
    schedule = choice("--schedule", schedule, par.SCHEDULES)
    peak_dtype = choice("--dtype", dtype, DTYPES) if dtype is not None else None
    if peak_dtype:
        gpu_spec.peak_flops(peak_dtype)

    notes: list[str] = []
    scratch = Inputs()                       # read now, echoed after the layout
    cluster = par.Cluster.from_gpu(
        gpu_spec,
        _scalar(scratch, "gpus_per_node", gpus_per_node, gpu_spec.gpus_per_node or 1, "GPUs per node"),
        _scalar(scratch, "nvlink_bw", nvlink_bw, None, "", unit="byte/s", parse=parse_rate),
        _scalar(scratch, "net_bw", net_bw, None, "", unit="byte/s", parse=parse_rate),
        _scalar(scratch, "nvlink_latency", nvlink_latency, None, "", unit="s", minimum=0, strict=False),
        _scalar(scratch, "net_latency", net_latency, None, "", unit="s", minimum=0, strict=False))
    reserve_v = _scalar(scratch, "reserve", reserve, mem.DEFAULT_RESERVE_BYTES, "", unit="byte",
                        parse=parse_bytes, minimum=0, strict=False)
    frag_v = _scalar(scratch, "fragmentation", fragmentation, mem.DEFAULT_FRAGMENTATION, "", unit="ratio",
                     minimum=0, strict=False, maximum=0.9)
    seq_default = min(spec.max_seq, par.DEFAULT_MAX_SEQ)
    if seq is None and spec.max_seq > par.DEFAULT_MAX_SEQ:
        notes.append(f"--seq {seq_default:,}: {spec.name}'s context is {spec.max_seq:,}; pre-training runs at a "
                     "shorter length (set --seq)")
    common = dict(precision=precision, grad=grad, optimizer=optimizer, activations=activations, flash=flash,
                  causal=causal, reserve=reserve_v, fragmentation=frag_v, overlap_dp=overlap_dp,
                  peak_dtype=peak_dtype, cluster=cluster, finetune=_finetune_flags(method, lora_rank, lora_targets))
    inp = Inputs()

    if search:
        return _search(spec, gpu_spec, inp, notes, common, seq_default, dict(
            gpus=gpus, dp=dp, tp=tp, pp=pp, zero=zero, micro_batch=micro_batch, global_batch=global_batch, seq=seq,
            recompute=recompute, sp=sp, virtual_stages=virtual_stages, schedule=schedule, top=top,
            uneven_pp=uneven_pp, compute_mfu=compute_mfu, tokens=tokens, check=check, **out))

    # ---- one layout (or a sweep of layouts) ----------------------------------------------------
    zero_stage = _zero(zero)
    rec = choice("--recompute", recompute or "none", mem.RECOMPUTE_MODES)
    use_sp = bool(sp)
    for name, text, label in (("gpus", gpus, "GPUs"), ("dp", dp, "data-parallel degree"),
                              ("tp", tp, "tensor-parallel degree"), ("pp", pp, "pipeline stages")):
        inp.number(name, text, unit="count", label=label, integer=True)
    inp.fixed("zero", zero_stage, unit="count", label="ZeRO stage")
    inp.number("micro_batch", micro_batch, default=1, unit="count", label="sequences per micro-batch", integer=True)
    inp.number("global_batch", global_batch, unit="count", label="sequences per step", integer=True)
    inp.number("seq", seq, default=seq_default, unit="count", label="tokens per sequence", integer=True)
    inp.number("virtual_stages", virtual_stages, default=1, unit="count", label="model chunks per GPU", integer=True)
    inp.fixed("schedule", schedule, unit="str")
    inp.fixed("recompute", rec, unit="str")
    inp.fixed("sp", use_sp, unit="bool")
    inp.number("compute_mfu", compute_mfu, default=par.DEFAULT_COMPUTE_MFU, unit="ratio",
               label="achievable fraction of peak while computing", maximum=1.0)
    inp.number("tokens", tokens, unit="count", label="training tokens")
    _common_inputs(inp, gpu_spec, common)
    v = inp.grid()
    n = _points(inp)
    rows = []
    for i in range(n):
        par.check_degrees(spec, _at(v["tp"], i), _at(v["pp"], i))
        N, d, t, p = par.resolve_layout(_at(v["gpus"], i), _at(v["dp"], i), _at(v["tp"], i), _at(v["pp"], i))
        b, s, vv = _at(v["micro_batch"], i), _at(v["seq"], i), _at(v["virtual_stages"], i)
        B = _at(v["global_batch"], i)
        if B is None:
            B = par.default_global_batch(s, d * b * (p if vv > 1 else 1))
        for note in par.check_layout(spec, N, d, t, p, vv, b, B, schedule, cluster.gpus_per_node):
            if note not in notes:
                notes.append(note)
        rows.append((N, d, t, p, B))
    cols = list(zip(*rows))
    for name, values, label in (("gpus", cols[0], "GPUs"), ("dp", cols[1], "data-parallel degree"),
                                ("tp", cols[2], "tensor-parallel degree"), ("pp", cols[3], "pipeline stages"),
                                ("global_batch", cols[4], "sequences per step")):
        _set_derived(inp, name, values, label)
    if global_batch is None:
        gb = inp.items["global_batch"].value
        first = gb if not hasattr(gb, "__len__") else gb[0]
        notes.append(f"--global-batch {first:,} sequences: about {par.DEFAULT_BATCH_TOKENS / 1e6:.1f}M tokens per "
                     "step by default (set --global-batch)")
    if use_sp and max(cols[2]) == 1:
        notes.append("--sp has no effect without --tp > 1")
    v = {k: it.value for k, it in inp.items.items()}
    _closing_notes(notes, common, compute_mfu, inp)
    run = _training(common, v["seq"], v["global_batch"], schedule, v["compute_mfu"], v["tokens"])
    r = par.evaluate(spec, gpu_spec, cluster, run, dp=v["dp"], tp=v["tp"], pp=v["pp"], micro_batch=v["micro_batch"],
                     virtual=v["virtual_stages"], zero=zero_stage, recompute=rec, sp=use_sp)
    if not inp.swept:
        r.put("bound", par.bound(r), "str", "what bounds it")
    from llmcalc.render import Report
    report = Report("parallel", inp.items, r, model=spec, gpu=gpu_spec, swept=inp.swept, notes=notes,
                    columns=["total_bytes", "fits", "bubble_fraction", "step_seconds", "tokens_per_second", "mfu"])
    output(report, **out)
    fits = r["fits"].value
    if check and not (bool(fits.all()) if hasattr(fits, "all") else bool(fits)):
        import sys
        sys.stderr.write("llmcalc: does not fit: the layout needs more memory per GPU than "
                         f"{gpu_spec.name} has usable\n")
        return ExitStatus.CHECK_FAILED
    return ExitStatus.OK


# ----------------------------------------------------------------------------------------------
# --search


def _search(spec, gpu_spec, inp, notes: list[str], common: dict, seq_default: int, a: dict[str, Any]) -> int:
    """--search: every layout of --gpus, vectorised; layout flags given narrow the space."""
    from llmcalc.core import memory as mem
    from llmcalc.core import parallel as par
    from llmcalc.core.formula import Results
    from llmcalc.errors import ExitStatus, InputError
    from llmcalc.render import Report, choose_format
    from llmcalc.units import is_sweep

    if a["gpus"] is None:
        raise InputError("--search needs --gpus N: the number of GPUs to lay out")
    N = _int_flag("--gpus", a["gpus"])
    for flag, key in (("--global-batch", "global_batch"), ("--seq", "seq"), ("--compute-mfu", "compute_mfu"),
                      ("--tokens", "tokens")):
        if a[key] is not None and is_sweep(a[key]):
            raise InputError(f"{flag} takes one value with --search (the layouts are what it varies)")
    space = par.SearchSpace(
        tp=_int_list("--tp", a["tp"]), pp=_int_list("--pp", a["pp"]), dp=_int_list("--dp", a["dp"]),
        zero=_zero_list(a["zero"]), micro_batch=_int_list("--micro-batch", a["micro_batch"]),
        recompute=_recompute_list(a["recompute"], mem.RECOMPUTE_MODES),
        sp=None if a["sp"] is None else (a["sp"],), virtual=_int_list("--virtual-stages", a["virtual_stages"]),
        uneven_pp=a["uneven_pp"])
    top_n = _int_flag("--top", a["top"], minimum=0)
    cluster = common["cluster"]
    inp.fixed("gpus", N, unit="count", label="GPUs")
    s = inp.number("seq", a["seq"], default=seq_default, unit="count", label="tokens per sequence", integer=True)
    B = inp.number("global_batch", a["global_batch"], unit="count", label="sequences per step", integer=True)
    if B is None:
        B = par.default_global_batch(s)
        min_dp = _min_dp(spec, N, cluster.gpus_per_node, space)
        raised = bool(min_dp and B % min_dp)
        if raised:
            B = -(-B // min_dp) * min_dp
        inp.items["global_batch"].value = B
        notes.append(f"--global-batch {B:,} sequences ({B * s / 1e6:.1f}M tokens) by default"
                     + (f", raised to a multiple of the smallest data-parallel degree, {min_dp:,}" if raised else "")
                     + " (set --global-batch)")
    inp.fixed("schedule", a["schedule"], unit="str")
    eta = inp.number("compute_mfu", a["compute_mfu"], default=par.DEFAULT_COMPUTE_MFU, unit="ratio",
                     label="achievable fraction of peak while computing", maximum=1.0)
    budget = inp.number("tokens", a["tokens"], unit="count", label="training tokens")
    _common_inputs(inp, gpu_spec, common)
    run = _training(common, s, B, a["schedule"], eta, budget)
    res = par.search(spec, gpu_spec, cluster, run, N, space, top=top_n)
    _closing_notes(notes, common, a["compute_mfu"], inp)
    summary = {"candidates": res.candidates, "fitting": res.fitting, "seconds": res.seconds}
    notes.append(f"searched {res.candidates:,} layouts in {res.seconds * 1e3:.0f} ms; {res.fitting:,} fit"
                 + (f"; showing the best {top_n}" if top_n and res.fitting > top_n else ""))
    if not res.fitting:
        import sys
        why = ("no layout to try: check --tp/--pp/--dp, and that --global-batch is a multiple of the data-parallel "
               "degree" if not res.candidates else
               "none fits: try more GPUs, --recompute full, ZeRO, a smaller --seq or --micro-batch")
        sys.stderr.write(f"llmcalc: no layout of {N:,} GPUs fits {gpu_spec.name}: {why}\n")
        r = Results()
        r.put("candidates", res.candidates, "count", "layouts tried")
        r.put("fitting", 0, "count", "layouts that fit")
        report = Report("parallel", inp.items, r, model=spec, gpu=gpu_spec, notes=notes,
                        extra={"search": summary, "rows": []})
        output(report, fmt=a["fmt"], as_json=a["as_json"], explain=False, fields=None, no_chart=True)
        return ExitStatus.CHECK_FAILED if a["check"] else ExitStatus.OK
    k = len(res.layouts["tp"])
    lay = res.layouts
    inp.fixed("rank", list(range(1, k + 1)), unit="count", label="rank")
    for name, key, unit in (("tp", "tp", "count"), ("pp", "pp", "count"), ("dp", "dp", "count"),
                            ("zero", "zero", "count"), ("micro_batch", "micro_batch", "count"),
                            ("virtual_stages", "virtual", "count"), ("recompute", "recompute", "str"),
                            ("sp", "sp", "bool")):
        inp.fixed(name, _plain_list(lay[key]), unit=unit, label=name)
    swept = ["rank", "tp", "pp", "dp", "zero", "micro_batch", "virtual_stages", "recompute", "sp"]
    columns = ["step_seconds", "mfu", "total_bytes", "bound", "why"]
    if choose_format(a["fmt"], a["as_json"]) in ("table", "md") and not a["fields"]:
        # People read one compact layout column; machines get one column per degree (JSON, TSV, CSV, YAML).
        inp.fixed("layout", [par.layout_text(*(lay[key][i] for key in par.LAYOUT_KEYS)) for i in range(k)],
                  unit="str", label="layout")
        swept = ["rank", "layout"]
        columns = ["step_seconds", "mfu", "total_bytes", "why"]
    items = {n: it for n, it in inp.items.items() if n in swept or not isinstance(it.value, list)}
    extra: dict[str, Any] = {"search": summary}
    text = _explain_best(spec, gpu_spec, cluster, run, lay) if a["explain"] else ""
    one_document = choose_format(a["fmt"], a["as_json"]) in ("json", "yaml")
    if text and one_document:       # JSON/YAML carry it inside, as render does: one document on stdout
        extra["explain"] = [line.strip() for line in text.splitlines()[2:] if line.strip()]
    report = Report("parallel", items, res.results, model=spec, gpu=gpu_spec, swept=swept, notes=notes,
                    columns=columns, extra=extra)
    output(report, fmt=a["fmt"], as_json=a["as_json"], explain=False, fields=a["fields"], no_chart=a["no_chart"])
    if text and not one_document:
        import sys
        sys.stdout.write(text)
    return ExitStatus.OK


def _explain_best(spec, gpu_spec, cluster, run, lay) -> str:
    """--explain with --search: the formulas of the best layout, evaluated on its own."""
    from llmcalc.core import parallel as par
    from llmcalc.render import Input, Report, explanation

    best = {k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in lay.items()}
    r = par.evaluate(spec, gpu_spec, cluster, run, dp=int(best["dp"]), tp=int(best["tp"]), pp=int(best["pp"]),
                     micro_batch=int(best["micro_batch"]), virtual=int(best["virtual"]), zero=int(best["zero"]),
                     recompute=best["recompute"], sp=bool(best["sp"]))
    text = explanation(Report("parallel", {k: Input(v) for k, v in best.items()}, r))
    return text.replace("How each result was computed", "How the best layout's results were computed", 1)


def _min_dp(spec, N: int, gpus_per_node: int, space) -> int:
    from llmcalc.core import parallel as par
    tps = space.tp or [t for t in par.divisors(N) if t <= gpus_per_node and spec.heads % t == 0]
    best = 0
    for t in tps:
        for p in par.divisors(N // t) if N % t == 0 else []:
            if p <= spec.layers and (space.uneven_pp or spec.layers % p == 0) and (space.pp is None or p in space.pp):
                best = max(best, t * p)
    return N // best if best else 0


# ----------------------------------------------------------------------------------------------
# Helpers


def _common_inputs(inp, gpu_spec, c: dict) -> None:
    """Echo the inputs every mode shares (after the layout ones)."""
    from llmcalc.core import memory as mem
    from llmcalc.core import parallel as par
    cl = c["cluster"]
    inp.fixed("overlap_dp", c["overlap_dp"], unit="bool")
    inp.fixed("precision", c["precision"], unit="str")
    inp.fixed("grad_dtype", c["grad"] or mem.DEFAULT_GRAD[c["precision"]], unit="str")
    inp.fixed("optimizer", c["optimizer"], unit="str")
    inp.fixed("activations", c["activations"], unit="str")
    inp.fixed("flash", c["flash"], unit="bool")
    inp.fixed("causal", c["causal"], unit="bool")
    inp.fixed("dtype", par.peak_dtype(gpu_spec, c["precision"], c["peak_dtype"]), unit="str")
    inp.fixed("reserve", c["reserve"], unit="byte")
    inp.fixed("fragmentation", c["fragmentation"], unit="ratio")
    ft = c["finetune"]
    inp.fixed("method", ft["method"], unit="str")
    if ft["method"] != "full":
        inp.fixed("lora_rank", ft["lora_rank"], unit="count")
        inp.fixed("lora_targets", ",".join(ft["lora_targets"]), unit="str")
    inp.fixed("gpus_per_node", cl.gpus_per_node, unit="count")
    inp.fixed("nvlink_bw", cl.nvlink_bw, unit="byte/s")
    inp.fixed("net_bw", cl.net_bw, unit="byte/s")
    inp.fixed("nvlink_latency", cl.nvlink_latency, unit="s")
    inp.fixed("net_latency", cl.net_latency, unit="s")


def _finetune_flags(method, lora_rank, lora_targets) -> dict:
    """One fine-tuning method (train-mem and flops sweep a comma list; here the layout is what varies)."""
    from llmcalc.cli_support import Inputs
    from llmcalc.commands import finetune
    from llmcalc.errors import InputError
    if method and "," in method:
        raise InputError("parallel takes one --method (full, lora or qlora); train-mem and flops compare several")
    if lora_rank is not None and "," in lora_rank or lora_rank is not None and ".." in lora_rank:
        raise InputError("parallel takes one --lora-rank")
    flags = finetune.read_flags(Inputs(), method, lora_rank, lora_targets)
    return dict(method=flags["methods"][0], lora_rank=flags["lora_rank"], lora_targets=flags["lora_targets"])


def _training(c: dict, seq, global_batch, schedule: str, compute_mfu, tokens):
    from llmcalc.core import parallel as par
    return par.Training(seq=seq, global_batch=global_batch, precision=c["precision"], grad_dtype=c["grad"],
                        optimizer=c["optimizer"], activations=c["activations"], flash=c["flash"], causal=c["causal"],
                        schedule=schedule, compute_mfu=compute_mfu, overlap_dp=c["overlap_dp"], dtype=c["peak_dtype"],
                        tokens=tokens, reserve_bytes=c["reserve"], fragmentation=c["fragmentation"],
                        **c["finetune"])


def _closing_notes(notes: list[str], c: dict, compute_mfu_given, inp) -> None:
    from llmcalc.core import parallel as par
    from llmcalc.units import fmt_value
    cl = c["cluster"]
    notes.append(f"links: NVLink {fmt_value(cl.nvlink_bw, 'byte/s')} one way per GPU inside a node of "
                 f"{cl.gpus_per_node}, network {fmt_value(cl.net_bw, 'byte/s')} across nodes; "
                 f"{cl.nvlink_latency * 1e6:g}/{cl.net_latency * 1e6:g} µs per ring step")
    if compute_mfu_given is None:
        notes.append(f"compute at {par.DEFAULT_COMPUTE_MFU:.0%} of the dense {inp.items['dtype'].value} peak "
                     "before bubble and communication (set --compute-mfu)")
    if c["grad"] is None and c["precision"] in ("mixed", "fp8"):
        notes.append("gradients in bf16, on the wire too (Megatron-LM reduces them in fp32: --grad-dtype fp32)")


def _scalar(inp, name: str, text: str | None, default, label: str, *, unit: str = "count", parse=None,
            minimum: float = 0.0, strict: bool = True, maximum: float | None = None):
    from llmcalc.cli_support import Inputs
    from llmcalc.errors import InputError
    from llmcalc.units import is_sweep, parse_count
    flag = "--" + name.replace("_", "-")
    if text is not None and is_sweep(text):
        raise InputError(f"{flag} takes one value, not a list")
    target = inp if inp is not None else Inputs()
    return target.number(name, text, default=default, unit=unit, label=label, parse=parse or parse_count,
                         minimum=minimum, strict=strict, maximum=maximum,
                         integer=(unit == "count"))


def _int_flag(flag: str, text: str, minimum: int = 1) -> int:
    from llmcalc.errors import InputError
    from llmcalc.units import parse_count
    v = parse_count(text, flag)
    if v != int(v) or v < minimum:
        raise InputError(f"{flag} must be a whole number of at least {minimum}, got {text!r}")
    return int(v)


def _int_list(flag: str, text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    from llmcalc.units import parse_count, parse_values
    return tuple(_int_flag(flag, str(x)) for x in parse_values(text, parse_count, flag))


def _zero(text: str | None) -> int:
    from llmcalc.errors import InputError
    from llmcalc.units import is_sweep
    if text is None:
        return 0
    if is_sweep(text):
        raise InputError("--zero takes one stage (0, 1, 2 or 3); lists only with --search")
    return _zero_list(text)[0]


def _zero_list(text: str | None) -> tuple[int, ...] | None:
    from llmcalc.errors import InputError
    if text is None:
        return None
    out = []
    for part in str(text).split(","):
        p = part.strip()
        if p not in ("0", "1", "2", "3"):
            raise InputError(f"--zero must be 0, 1, 2 or 3; got {part.strip()!r}")
        out.append(int(p))
    return tuple(out)


def _recompute_list(text: str | None, modes) -> tuple[str, ...] | None:
    from llmcalc.cli_support import choice
    if text is None:
        return None
    return tuple(choice("--recompute", p.strip(), modes) for p in str(text).split(","))


def _points(inp) -> int:
    if not inp.swept:
        return 1
    return len(inp.items[inp.swept[0]].value)


def _at(value, i: int):
    if value is None:
        return None
    if hasattr(value, "shape") and getattr(value, "ndim", 0):
        return int(value[i])
    if isinstance(value, (list, tuple)):
        return int(value[i])
    return int(value)


def _set_derived(inp, name: str, values, label: str) -> None:
    """A layout value resolved per point: a scalar when it is the same everywhere, else a column."""
    distinct = set(values)
    if len(distinct) == 1 and name not in inp.swept:
        inp.fixed(name, values[0], unit="count", label=label)
        return
    import numpy as np
    inp.fixed(name, np.asarray(values, dtype=np.float64), unit="count", label=label)
    if name not in inp.swept:
        inp.swept.append(name)


def _plain_list(arr) -> list:
    out = []
    for x in arr.tolist() if hasattr(arr, "tolist") else arr:
        if isinstance(x, float) and x.is_integer():
            x = int(x)
        out.append(x)
    return out
