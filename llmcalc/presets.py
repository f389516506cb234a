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
    """``llmcalc/_presets`` in an installed wheel; the repository's ``presets/`` in a source checkout (looked up
    once per process: listing every GPU for a suggestion asks ~40 times)."""
    global _BUILTIN
    if _BUILTIN is None:
        here = Path(__file__).resolve().parent
        packaged = here / "_presets"
        _BUILTIN = packaged if packaged.is_dir() else here.parent / "presets"
    return _BUILTIN


_BUILTIN: Path | None = None


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
        with open(path, "rb") as f:  # a regular file (preset_files checks): read its head, never all of it
            text = f.read(4096).decode("utf-8", errors="replace")
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
    key = _file_key(path)
    if key in _PARSED:
        import copy
        return copy.deepcopy(_PARSED[key])
    data = _parse_yaml(path)
    if key is not None:
        _PARSED[key] = data
    return data


def _file_key(path: Path) -> tuple | None:
    """A file's identity for the per-process caches: path, modification time and size."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_mtime_ns, st.st_size)


INDEX = "index.json"   # the built-in presets already parsed (scripts/preset_index.py; tests check it is current)
_INDEX: dict | None = None


def _indexed(path: Path, text: str):
    """The parsed mapping of a built-in preset whose text is the one the index was made from, else None: a
    preset name then costs no YAML import (PyYAML's alone is ~13 ms of a ~35 ms answer)."""
    global _INDEX
    folder = builtin_dir()
    if path.parent.parent != folder:
        return None
    if _INDEX is None:
        import json
        try:
            _INDEX = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _INDEX = {}
    entry = _INDEX.get(f"{path.parent.name}/{path.name}")
    if not entry:
        return None
    import zlib  # a checksum, not security: OpenSSL's hashlib alone costs ~2 ms to import
    if zlib.crc32(text.encode("utf-8")) != entry["crc32"] or len(text) != entry["length"]:
        return None          # edited since the index was written: parse the YAML
    return entry["data"]


def _parse_yaml(path: Path):
    text = read_small_text(path)
    data = _indexed(path, text)
    if data is not None:
        return data
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
    except InputError:
        raise
    except (ValueError, OverflowError) as exc:  # e.g. an integer past Python's int-str digit limit
        raise InputError(f"{_shown(path)}: a value cannot be read: {str(exc).splitlines()[0]}") from None


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
    """The text of a small regular file. Devices, FIFOs and directories are refused before any read (a
    FIFO is opened non-blocking, so it cannot hang; ``/dev/zero`` has ``st_size`` 0, so the size is also
    bounded by reading at most MAX_FILE_BYTES + 1 bytes); every OS error is one line naming the file."""
    import stat
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(f"can't read {_shown(path)}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a pipe" if stat.S_ISFIFO(st.st_mode) else \
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
            raise InputError(f"{_shown(path)}: is {kind}, not a preset YAML or config.json file")
        if st.st_size > MAX_FILE_BYTES:
            raise InputError(f"{_shown(path)}: {st.st_size:,} bytes is too large for a preset or config file "
                             "(limit 1 MiB)")
        chunks, left = [], MAX_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise InputError(f"can't read {_shown(path)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{_shown(path)}: more than 1 MiB is too large for a preset or config file")
    if b"\x00" in data:
        raise InputError(f"{_shown(path)}: is a binary file, not YAML or JSON")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{_shown(path)}: is not UTF-8 text") from None


def _shown(path, limit: int = 120) -> str:
    """A path as echoed in a message: long names shortened in the middle."""
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-limit // 2:]}"


def _suggest(kind: str, name: str) -> str:
    """"did you mean a, b, c?" from the closest preset names and aliases (difflib), or ""."""
    table = names(kind)
    key = name.lower()
    candidates = [key, key.split("/")[-1].split("@")[0]] if "/" in key else [key]
    close = [c for k in candidates for c in difflib.get_close_matches(k, list(table), n=8, cutoff=0.5)]
    close = list(dict.fromkeys(table[c].stem for c in close))[:3]  # canonical names, each model once
    return f"did you mean {', '.join(close)}?" if close else ""


def _unknown(kind: str, name: str) -> InputError:
    flag = "-m/--model" if kind == "models" else "-g/--gpu"
    hint = _suggest(kind, name)
    hint = f"; {hint}" if hint else ""
    return InputError(f"unknown {kind[:-1]} preset {name!r}{hint} (`llmcalc presets list {kind}` lists them; "
                      f"{flag} also takes a file path)")


def _missing(ref: str) -> InputError:
    """A path that names no preset file: missing, or something other than a regular file (a device, a FIFO)."""
    try:
        there = Path(ref).expanduser().exists()
    except OSError:  # a name too long, a loop of links
        there = False
    if there:
        return InputError(f"{ref} is not a regular file; give a preset YAML, a config.json or a directory holding one")
    return InputError(f"no such file: {ref}")


def _looks_like_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml", ".json")) or os.sep in text or text.startswith(".")


# Spec objects handed to the Python API (``llmcalc.kv(model=my_spec)``): the API registers each under a token
# for the length of one call, and the loaders below return the object itself for that token.
REGISTERED: dict[str, object] = {}


def load_model(ref: str) -> ModelSpec:
    """Resolve ``-m``, in this order: a preset name or alias (case-insensitive); a path to a preset YAML, a
    Hugging Face config.json, or a directory holding a config.json; a Hugging Face repo id
    ``org/name[@revision]`` (llmcalc/hub.py: the local HF cache first, else a download of config.json)."""
    if ref in REGISTERED:
        return REGISTERED[ref]
    ref = ref.strip()
    path = find("models", ref)
    if path is not None:  # names and aliases first: "meta-llama/llama-3.1-8b" is an alias, not a path
        return _from_yaml(path)
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"{ref}: the directory holds no config.json; pass a preset, a config.json or a "
                             "Hugging Face repo id")
        return _from_config_json(path / "config.json", name=path.resolve().name)
    if path.is_file():
        return _from_config_json(path) if path.suffix == ".json" else _from_yaml(path)
    from llmcalc.hub import parse_repo_id  # light: the regex only; huggingface_hub loads only for an id
    repo = parse_repo_id(ref)
    if repo is not None:
        from llmcalc.hub import config_json
        return _from_config_json(config_json(*repo, suggestion=lambda: _suggest("models", ref)), name=ref)
    if _looks_like_path(ref):
        raise _missing(ref)
    raise _unknown("models", ref)


def _from_yaml(path: Path) -> ModelSpec:
    data = read_yaml(path)
    if isinstance(data, dict):
        data.setdefault("name", path.stem.lower())
    return model_from_mapping(data, str(path))


def _from_config_json(path: Path, name: str | None = None) -> ModelSpec:
    from llmcalc.hfconfig import spec_from_hf_config
    return spec_from_hf_config(_read_json(path), str(path), name=name)


def load_gpu(ref: str) -> GpuSpec:
    if ref in REGISTERED:
        return REGISTERED[ref]
    ref = ref.strip()
    path = find("gpus", ref)
    if path is None:
        if not _looks_like_path(ref):
            raise _unknown("gpus", ref)
        path = Path(ref).expanduser()
        if not path.exists():
            raise InputError(f"no such file: {ref}")
    return _gpu_at(path)


_GPUS: dict[tuple, GpuSpec] = {}


def _gpu_at(path: Path) -> GpuSpec:
    """The GPU preset in a file, validated once per process (GpuSpec is frozen: one object serves every
    caller; the larger-GPU suggestions read every preset on each run of an interactive session)."""
    key = _file_key(path)
    if key in _GPUS:
        return _GPUS[key]
    data = read_yaml(path)
    if isinstance(data, dict):
        data.setdefault("name", path.stem.lower())
    spec = gpu_from_mapping(data, str(path))
    if key is not None:
        _GPUS[key] = spec
    return spec


def _read_json(path: Path):
    """Parse a small JSON file. Integers longer than Python's digit limit, and NaN/Infinity literals, are
    errors naming the file (a config holds no such numbers)."""
    text = read_small_text(path)
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise InputError(f"{_shown(path)}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise InputError(f"{_shown(path)}: JSON nested too deeply") from None
    except ValueError as exc:  # from the two hooks below, or the int-str conversion limit itself
        raise InputError(f"{_shown(path)}: {str(exc).splitlines()[0] if str(exc) else 'bad number'}") from None


MAX_JSON_DIGITS = 30  # no count in a config comes near 10^30; longer integers are refused, not converted


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-')):,} digits is not a plausible config value")
    return int(text)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a valid number in a config file")


def load_all(kind: str) -> list:
    """Every preset of a kind, parsed (for `presets list`). A broken preset is an error, not skipped."""
    loader = _from_yaml if kind == "models" else _gpu_at
    return [loader(path) for path in preset_files(kind).values()]  # one listing, not one lookup per preset
