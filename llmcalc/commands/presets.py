"""`llmcalc presets`: list, show, and locate model and GPU presets."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from llmcalc.cli_support import FormatOpt, JsonOpt

app = typer.Typer(no_args_is_help=True, help="List, show and locate model and GPU presets.")


@app.command("list", epilog="Examples:\n\n  llmcalc presets list\n\n  llmcalc presets list gpus --json | jq -r '.rows[].name'\n")
def list_(
    kind: Annotated[Optional[str], typer.Argument(help="models or gpus (default: both)", show_default=False)] = None,
    as_json: JsonOpt = False, fmt: FormatOpt = None,
) -> None:
    """List presets with their key numbers and sources (user presets included)."""
    from llmcalc.cli_support import choice, output
    kinds = [choice("KIND", kind, ("models", "gpus"))] if kind else ["models", "gpus"]
    from llmcalc.render import choose_format
    chosen = choose_format(fmt, as_json)
    if len(kinds) == 2 and chosen in ("json", "yaml"):
        import json as _json
        import sys
        docs = {k: _rows(k) for k in kinds}
        from llmcalc.render import SCHEMA_VERSION, document
        merged = {"schema_version": SCHEMA_VERSION, "command": "presets list",
                  "rows": document(docs["models"])["rows"] + document(docs["gpus"])["rows"]}
        if chosen == "json":
            sys.stdout.write(_json.dumps(merged) + "\n")
        else:
            import yaml
            sys.stdout.write(yaml.safe_dump(merged, sort_keys=False))
        return
    for k in kinds:
        output(_rows(k), chosen, False, False)


# GPU fields that `presets list gpus` puts in JSON/TSV/CSV (not in the narrow table) and `presets show` prints.
_GPU_DETAIL = (
    ("gpus_per_node", "count", "GPUs per node (scale-up domain)"),
    ("nvlink_bytes_per_s_unidir", "byte/s", "scale-up link per GPU, one way"),
    ("net_bytes_per_s_unidir", "byte/s", "network per GPU, one way"),
    ("nics_per_node", "count", "NICs per node"),
    ("nic_bytes_per_s_unidir", "byte/s", "one NIC, one way"),
    ("sm_count", "count", "SMs / compute units"),
    ("l2_bytes", "byte", "L2 cache"),
    ("sram_bytes_per_sm", "byte", "L1/shared memory per SM"),
    ("memory_share", "ratio", "share of memory the accelerator may use"),
    ("unified_memory", "bool", "unified memory (shared with the CPU)"),
)


def _rows(kind: str):
    from llmcalc.core.formula import Results
    from llmcalc.core.params import active_params, total_params
    from llmcalc.presets import load_all
    from llmcalc.render import Input, Report

    specs = load_all(kind)
    r = Results()
    if kind == "models":
        r.put("kind", ["model"] * len(specs), "str", "kind")
        r.put("params", [total_params(s) for s in specs], "params", "parameters")
        r.put("active_params", [active_params(s) for s in specs], "params", "active per token")
        for key in ("layers", "hidden", "heads", "kv_heads", "vocab"):
            r.put(key, [getattr(s, key) for s in specs], "count", key)
    else:
        r.put("kind", ["gpu"] * len(specs), "str", "kind")
        r.put("memory_bytes", [s.memory_bytes for s in specs], "byte", "memory")
        r.put("hbm_bytes_per_s", [s.hbm_bytes_per_s for s in specs], "byte/s", "memory bandwidth")
        r.put("bf16_flops_per_s", [s.flops_per_s.get("bf16") or None for s in specs], "flop/s", "bf16 dense peak")
        r.put("board_power_watts", [s.board_power_watts or None for s in specs], "W", "board power")
        r.put("price_usd_per_hour", [s.price_usd_per_hour or None for s in specs], "usd/h", "reference price (USD/GPU-h)")
        for key, unit, label in _GPU_DETAIL:
            r.put(key, [getattr(s, key) for s in specs], unit, label)
    r.put("aliases", [", ".join(s.aliases) for s in specs], "str", "aliases")
    r.put("source", [s.source for s in specs], "str", "source")
    inputs = {"name": Input([s.name for s in specs], "str", "name")}
    narrow = {"source", "kind", "aliases", *(k for k, _, _ in _GPU_DETAIL)}
    cols = [k for k in r if k not in narrow]  # JSON/TSV keep them all; a table stays narrow
    return Report(f"presets list {kind}", inputs, r, swept=["name"], columns=cols)


@app.command("show", epilog="Examples:\n\n  llmcalc presets show llama-3.1-8b\n\n  llmcalc presets show h100-sxm --json | jq .gpu\n")
def show(
    name: Annotated[str, typer.Argument(help="A model or GPU preset name or alias.")],
    as_json: JsonOpt = False, fmt: FormatOpt = None,
) -> None:
    """Show one preset: every field, and for a model its parameter breakdown."""
    from llmcalc.cli_support import output
    from llmcalc.core.formula import Results
    from llmcalc.core.params import active_params, param_breakdown
    from llmcalc.errors import InputError
    from llmcalc.presets import load_gpu, load_model, names
    from llmcalc.render import Report

    r = Results()
    lowered = name.lower()
    from llmcalc.hub import parse_repo_id
    model_like = name.endswith((".json", ".yaml", ".yml")) or os.path.isdir(name) or parse_repo_id(name)
    if lowered in names("models") or (lowered not in names("gpus") and model_like):
        spec = load_model(name)
        for part, count in param_breakdown(spec).items():
            r.put(f"params_{part}" if part != "total" else "params", count, "params", f"parameters: {part}")
        r.put("params_active", active_params(spec), "params", "parameters active per token")
        r.put("params_vision", spec.vision_params, "params", "vision tower and projector (not in params)")
        report = Report("presets show", {}, r, model=spec)
    elif lowered in names("gpus"):
        gpu = load_gpu(name)
        r.put("memory_bytes", gpu.memory_bytes, "byte", "memory")
        r.put("hbm_bytes_per_s", gpu.hbm_bytes_per_s, "byte/s", "memory bandwidth")
        for dt, rate in gpu.flops_per_s.items():
            r.put(f"{dt}_flops_per_s", rate, "flop/s", f"{dt} dense peak")
        r.put("ridge_intensity_bf16", (gpu.flops_per_s.get("bf16") or 0) / gpu.hbm_bytes_per_s, "flop/byte",
              "ridge point, bf16 (FLOP/byte)")
        r.put("device_memory_bytes", gpu.device_memory_bytes, "byte", "memory the accelerator may use (share × memory)")
        r.put("board_power_watts", gpu.board_power_watts or None, "W", "board power")
        for key, unit, label in _GPU_DETAIL:
            r.put(key, getattr(gpu, key), unit, label)
        r.put("price_usd_per_hour", gpu.price_usd_per_hour or None, "usd/h", "reference price (USD per GPU-hour)")
        r.put("price_source", f"{gpu.price_source} ({gpu.price_date})" if gpu.price_usd_per_hour else None, "str",
              "price source and date")
        report = Report("presets show", {}, r, gpu=gpu)
    else:
        from llmcalc.presets import _unknown
        both = [k for k in ("models", "gpus")]
        raise InputError(str(_unknown(both[0], name)).replace("model preset", "preset"))
    if report.model is not None:
        report.notes.append(f"source: {report.model.source}")
    else:
        report.notes.append(f"source: {report.gpu.source}")
    output(report, fmt, as_json, False)


@app.command("path")
def path() -> None:
    """Print the folders searched for presets: built-in, then the user folder (which overrides)."""
    from llmcalc.presets import builtin_dir, user_dir
    print(f"builtin\t{builtin_dir()}")
    print(f"user\t{user_dir()}")
