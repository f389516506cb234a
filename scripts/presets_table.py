#!/usr/bin/env python3
"""Write the README's table of built-in presets, between the presets:start and presets:end markers.

    python scripts/presets_table.py           # rewrite README.md in place
    python scripts/presets_table.py --check   # exit 1 if README.md's table is not what this generates
    python scripts/presets_table.py --print   # print the table only

The table is generated from the YAML files in presets/ through llmcalc's own loader and parameter
count (so the parameter column is what `llmcalc flops` prints), never from the user preset folder.
The "source" column is each file's `source` field without its parenthesised details, with Hugging Face
repositories and arXiv papers linked; `llmcalc presets show NAME` prints the full text.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START = "<!-- presets:start -->"
END = "<!-- presets:end -->"


def _natural(name: str) -> list:
    """llama-2-7b < llama-2-13b < llama-2-70b."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _trim(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _strip_parentheses(text: str) -> str:
    out, depth = [], 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


_HF_REPO = re.compile(r"\b([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*) config\.json")
_ARXIV = re.compile(r"arXiv:(\d{4}\.\d{4,5})")


def short_source(text: str) -> str:
    """The documents a preset's `source` names, without the figures quoted from them, as Markdown."""
    text = re.sub(r"\s*\((arXiv:[\d.]+)\)", r", \1", text)  # keep a paper's id given in parentheses
    text = _strip_parentheses(text).split(": ")[0]  # what follows a colon quotes the figures
    parts = []
    for part in text.split(";"):
        part = re.split(r"\.\s+(?=[A-Z])", part)[0]  # a document's name, not the sentence after it
        part = re.sub(r"\s+", " ", part).strip(" ,.")
        part = re.sub(r"\s+,", ",", part)
        if part:
            parts.append(part)
    md = "; ".join(parts).replace("|", "\\|")
    md = _HF_REPO.sub(lambda m: f"[{m.group(1)}](https://huggingface.co/{m.group(1)}) config.json", md)
    return _ARXIV.sub(lambda m: f"[arXiv:{m.group(1)}](https://arxiv.org/abs/{m.group(1)})", md)


def _builtin(kind: str) -> list[Path]:
    from llmcalc.presets import builtin_dir

    folder = builtin_dir() / kind
    return sorted((p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")), key=lambda p: _natural(p.stem))


def models_table() -> str:
    from llmcalc.core.params import active_params, total_params
    from llmcalc.presets import read_yaml
    from llmcalc.spec import model_from_mapping

    rows = ["| Model | Parameters | Layers × hidden | Heads / KV heads | Context | Source |",
            "|---|---:|---:|---:|---:|---|"]
    for path in _builtin("models"):
        spec = model_from_mapping(read_yaml(path), str(path))
        total, active = total_params(spec), active_params(spec)
        params = f"{total:,}"
        if active != total:
            params += f" ({active:,} active)"
        notes = []
        if spec.moe:
            shared = f" + {spec.moe.shared_experts} shared" if spec.moe.shared_experts else ""
            notes.append(f"MoE {spec.moe.experts}× top-{spec.moe.top_k}{shared}")
        if spec.mla:
            notes.append("MLA")
        name = f"`{spec.name}`" + (f" ({', '.join(notes)})" if notes else "")
        rows.append(f"| {name} | {params} | {spec.layers} × {spec.hidden:,} | {spec.heads} / {spec.kv_heads} "
                    f"| {spec.max_seq:,} | {short_source(spec.source)} |")
    return "\n".join(rows)


def gpus_table() -> str:
    from llmcalc.presets import read_yaml
    from llmcalc.spec import gpu_from_mapping

    rows = ["| GPU | Memory | Bandwidth | bf16 dense | fp8 dense | Scale-up link, one way | Board power "
            "| Reference price | Source |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for path in _builtin("gpus"):
        gpu = gpu_from_mapping(read_yaml(path), str(path))
        peaks = gpu.flops_per_s

        def peak(dtype: str) -> str:
            return f"{_trim(peaks[dtype] / 1e12, 2)} TFLOP/s" if peaks.get(dtype) else "—"

        bf16 = peak("bf16")
        if bf16 == "—" and peaks.get("fp16"):
            bf16 = f"— (fp16 {peak('fp16')})"
        memory = f"{_trim(gpu.memory_bytes / 2**30, 2)} GiB"
        if gpu.memory_share < 1:
            memory += f" ({_trim(gpu.device_memory_bytes / 2**30, 2)} for the GPU)"
        if gpu.unified_memory:
            memory += ", unified"
        link = (f"{_trim(gpu.nvlink_bytes_per_s_unidir / 1e9, 2)} GB/s" if gpu.nvlink_bytes_per_s_unidir
                else "—")
        power = f"{gpu.board_power_watts:,.0f} W" if gpu.board_power_watts else "—"
        price = (f"${gpu.price_usd_per_hour:.2f}/h ({_provider(gpu.price_source)}, {gpu.price_date})"
                 if gpu.price_usd_per_hour else "—")
        rows.append(f"| `{gpu.name}` | {memory} | {_trim(gpu.hbm_bytes_per_s / 1e12, 4)} TB/s | {bf16} "
                    f"| {peak('fp8')} | {link} | {power} | {price} | {short_source(gpu.source)} |")
    return "\n".join(rows)


def _provider(source: str) -> str:
    """"Lambda on-demand, 1x H100 SXM instance (...)" -> "Lambda"."""
    return re.split(r"[ ,(]", source.strip(), maxsplit=1)[0].replace("|", "\\|")


def table() -> str:
    """The Markdown that goes between the markers (markers excluded)."""
    return "\n".join([
        "",
        "<!-- Generated by scripts/presets_table.py from presets/*.yaml; edit those, then run the script. -->",
        "",
        "**Models.** Parameters are llmcalc's own count, which equals the published Hugging Face count to the "
        "parameter (embeddings included; MoE: all experts, then the parameters each token uses).",
        "",
        models_table(),
        "",
        "**GPUs.** Dense peaks (never the 2:4-sparsity figures; on GeForce-class cards the fp16 rate with fp32 "
        "accumulate), memory in GiB (binary), bandwidth in TB/s (decimal), links per GPU and direction. Board "
        "power is the vendor's TDP/TBP (module or system power where stated in the preset). A reference price is "
        "an on-demand price per GPU-hour from the named provider on that date, used when `--gpu-cost` is not "
        "given; `llmcalc presets show NAME` prints its full source.",
        "",
        gpus_table(),
        "",
    ])


def splice(readme: str, body: str) -> str:
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return readme[: start + len(START)] + "\n" + body + "\n" + readme[end:]


def current(readme: str) -> str:
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return readme[start + len(START): end].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    group.add_argument("--print", action="store_true", help="print the table instead of writing README.md")
    args = parser.parse_args(argv)
    body = table()
    if args.print:
        sys.stdout.write(body + "\n")
        return 0
    text = README.read_text(encoding="utf-8")
    if args.check:
        if current(text) != body.strip("\n"):
            print("README.md's presets table is out of date: run python scripts/presets_table.py", file=sys.stderr)
            return 1
        return 0
    new = splice(text, body)
    if new != text:
        README.write_text(new, encoding="utf-8")
        print("README.md: presets table updated")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
