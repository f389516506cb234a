"""Finding and loading model and GPU presets.

A preset's name is its file stem (``presets/models/llama-3.1-8b.yaml``). Built-in presets ship inside
the package; a user folder (``$LLMCALC_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/llmcalc``, else
``~/.config/llmcalc``) with ``models/`` and ``gpus/`` subfolders adds presets or overrides built-in ones
of the same name. Only the preset asked for is parsed (names and aliases are read from the files'
``name:``/``aliases:`` lines without a YAML parse), with libyaml's C loader when it is available.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path

from llmcalc.errors import InputError
from llmcalc.spec import GpuSpec, ModelSpec, gpu_from_mapping, model_from_mapping

KINDS = ("models", "gpus")
MAX_FILE_BYTES = 1 << 20  # presets and config.json files are small; refuse anything bigger than 1 MiB
_ALIASES_RE = re.compile(r"^aliases:\s*\[(.*)\]\s*$", re.MULTILINE)


def builtin_dir() -> Path:
    """``llmcalc/_presets`` in an installed wheel; the repository's ``presets/`` in a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_presets"
    return packaged if packaged.is_dir() else here.parent / "presets"


def user_dir() -> Path:
    env = os.environ.get("LLMCALC_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(xdg) / "llmcalc"


def preset_files(kind: str) -> dict[str, Path]:
    """name -> file, built-in first, then the user folder (which overrides by name)."""
    found: dict[str, Path] = {}
    for base in (builtin_dir(), user_dir()):
        folder = base / kind
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix in (".yaml", ".yml") and path.is_file():
                    found[path.stem.lower()] = path
    return found


def _aliases(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return []
    m = _ALIASES_RE.search(text)
    if not m:
        return []
    return [a.strip().strip("'\"").lower() for a in m.group(1).split(",") if a.strip()]


def find(kind: str, ref: str) -> Path | None:
    """The preset file for a name or alias: file stems first (a directory listing), aliases only if needed."""
    key = ref.lower()
    files = preset_files(kind)
    if key in files:
        return files[key]
    return names(kind).get(key)


def names(kind: str) -> dict[str, Path]:
    """Every name and alias -> file."""
    files = preset_files(kind)
    table: dict[str, Path] = {}
    for name, path in files.items():
        for alias in _aliases(path):
            table.setdefault(alias, path)
    table.update(files)  # canonical names win over aliases
    return table


_PARSED: dict[tuple, object] = {}


def read_yaml(path: Path):
    """Parse a small YAML file with a safe loader; errors name the file. Parsed once per process."""
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key in _PARSED:
        import copy
        return copy.deepcopy(_PARSED[key])
    data = _parse_yaml(path)
    if key is not None:
        _PARSED[key] = data
    return data


def _parse_yaml(path: Path):
    text = read_small_text(path)
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_events(path, text, yaml, loader)
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise InputError(f"{path}: YAML nested too deeply") from None


MAX_NESTING = 64


def _check_events(path: Path, text: str, yaml, loader) -> None:
    """Scan the YAML event stream (libyaml's parser does not recurse) before composing, which does:
    refuse nesting deeper than MAX_NESTING and any alias, so neither a stack overflow in the C
    composer nor a "billion laughs" expansion can happen. About 1 ms for a preset."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_NESTING:
                raise InputError(f"{path}: nested more than {MAX_NESTING} levels deep; presets are flat")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            raise InputError(f"{path}: YAML aliases (*name) are not allowed in presets; write the values out")


def read_small_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size:,} bytes is too large for a preset or config file (limit 1 MiB)")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"can't read {path}: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise InputError(f"{path}: is a binary file, not YAML or JSON")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: is not UTF-8 text") from None


def _unknown(kind: str, name: str) -> InputError:
    table = names(kind)
    close = difflib.get_close_matches(name.lower(), list(table), n=8, cutoff=0.5)
    close = list(dict.fromkeys(table[c].stem for c in close))[:3]  # canonical names, each model once
    flag = "-m/--model" if kind == "models" else "-g/--gpu"
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return InputError(f"unknown {kind[:-1]} preset {name!r}{hint} (`llmcalc presets list {kind}` lists them; "
                      f"{flag} also takes a file path)")


def _looks_like_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml", ".json")) or os.sep in text or text.startswith(".")


def load_model(ref: str) -> ModelSpec:
    """A model preset name or alias (case-insensitive), a preset YAML path, or a HF config.json path."""
    ref = ref.strip()
    path = find("models", ref)
    if path is not None:  # names and aliases first: "meta-llama/llama-3.1-8b" is an alias, not a path
        data = read_yaml(path)
        if isinstance(data, dict):
            data.setdefault("name", path.stem.lower())
        return model_from_mapping(data, str(path))
    if _looks_like_path(ref) or Path(ref).is_file():
        path = Path(ref).expanduser()
        if not path.exists():
            raise InputError(f"no such file: {ref}")
        if path.suffix == ".json":
            from llmcalc.hfconfig import spec_from_hf_config
            return spec_from_hf_config(_read_json(path), str(path))
        data = read_yaml(path)
        if isinstance(data, dict):
            data.setdefault("name", path.stem.lower())
        return model_from_mapping(data, str(path))
    raise _unknown("models", ref)


def load_gpu(ref: str) -> GpuSpec:
    ref = ref.strip()
    path = find("gpus", ref)
    if path is None:
        if not _looks_like_path(ref):
            raise _unknown("gpus", ref)
        path = Path(ref).expanduser()
        if not path.exists():
            raise InputError(f"no such file: {ref}")
    data = read_yaml(path)
    if isinstance(data, dict):
        data.setdefault("name", path.stem.lower())
    return gpu_from_mapping(data, str(path))


def _read_json(path: Path):
    try:
        return json.loads(read_small_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None


def load_all(kind: str) -> list:
    """Every preset of a kind, parsed (for `presets list`). A broken preset is an error, not skipped."""
    loader = load_model if kind == "models" else load_gpu
    return [loader(str(path)) for path in preset_files(kind).values()]
