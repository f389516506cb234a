"""The adversarial suite (issue 10, "Hostile input"): the CLI run as a subprocess (``python -m llmcalc``) under a
1 GiB address-space limit and a timeout, over hostile inputs of every class the issue lists:

- devices, FIFOs, directories, over-long names and symlink loops given as -m / -g / --draft paths;
- product-size and very long sweeps;
- overflow and underflow in flags and in config files (1e400, -0, 5,000-digit integers, nan, inf);
- units of the wrong kind (a FLOP rate as a bandwidth, a size as a count, bits as bytes);
- closed, full, early-closed (``| head -1`` under pipefail), narrow and non-UTF-8 standard output;
- terminal escape sequences inside preset names;
- ``llmcalc`` with no arguments;
- the same key set in sweep rows and single points.

Every run must end in exit 0 with output, exit 2 with exactly one line on stderr, or exit 3; never a
traceback, never more than 1 GiB, never a hang. The cases are sampled per class, not enumerated: a
subprocess costs about half a second here, so the suite is marked ``slow`` (CI runs it; the quick loop,
``-m "not slow and not torch"``, leaves it out), and ``test_random_hostile_sample`` draws a larger random sample.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 1 << 30  # bytes of address space: "no hostile input may use more than 1 GB"
TIMEOUT = 30            # seconds: "or hang"
pytestmark = pytest.mark.slow  # ~16 s of subprocesses: CI, not the quick loop
EVERY = os.environ.get("LLMCALC_HOSTILE_ALL") == "1"  # every case of every class, not a sample (by hand)


def sample(items, k: int, *always, seed: int = 10) -> list:
    """``always`` plus ``k`` more drawn from ``items`` (all of them with LLMCALC_HOSTILE_ALL=1)."""
    items = list(items)
    if EVERY:
        return items
    rest = [i for i in items if i not in always]
    return list(always) + random.Random(seed).sample(rest, min(k, len(rest)))


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}  # nothing an earlier test may have left behind
    env.update(PYTHONPATH=str(ROOT), LLMCALC_CONFIG_DIR=str(tmp_path / "config"), HOME=str(tmp_path / "home"),
               HF_HUB_OFFLINE="1", OPENBLAS_NUM_THREADS="1")
    env.update(extra)
    return env


class Run:
    def __init__(self, args, code: int, out: bytes, err: bytes) -> None:
        self.args, self.code, self.out, self.err = args, code, out, err

    def __repr__(self) -> str:
        return f"Run({self.args!r}, exit {self.code}, stdout {self.out[-300:]!r}, stderr {self.err[-600:]!r})"


def llmcalc(tmp_path: Path, *args: str, env: dict | None = None, stdout=subprocess.PIPE, shell: str | None = None) -> Run:
    """Run the CLI under the memory limit and the timeout (``shell``: a bash command line instead, where
    ``LLMCALC`` stands for the CLI)."""
    environment = env or _env(tmp_path)
    if shell is not None:
        cmd = ["bash", "-c", shell.replace("LLMCALC", f"{sys.executable} -m llmcalc")]
    else:
        cmd = [sys.executable, "-m", "llmcalc", *args]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, env=environment,
                              cwd=str(tmp_path), timeout=TIMEOUT, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {TIMEOUT} s: {args or shell}")
    return Run(list(args) or shell, proc.returncode, proc.stdout or b"", proc.stderr)


def assert_contract(run: Run, *, output: bool = True) -> None:
    """Exit 0 with output, 2 with exactly one stderr line, or 3; never a traceback."""
    text = run.out + run.err
    assert b"Traceback" not in text, run
    assert run.code in (0, 2, 3), run
    if run.code == 2:
        lines = run.err.decode("utf-8", "replace").strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("llmcalc: error: "), run
    if run.code == 0 and output:
        assert run.out.strip(), run


def assert_refused(run: Run, *words: str) -> None:
    assert_contract(run)
    assert run.code == 2, run
    message = run.err.decode("utf-8", "replace").lower()
    for word in words:
        assert word.lower() in message, (word, run)


# ----------------------------------------------------------------------------------------------
# Paths: devices, FIFOs, directories, long names, loops


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("places")
    fifo = d / "fifo.yaml"
    os.mkfifo(fifo)
    loop = d / "loop.yaml"
    loop.symlink_to(d / "loop2.yaml")
    (d / "loop2.yaml").symlink_to(loop)
    (d / "big.json").write_bytes(b" " * (2 << 20) + b"{}")
    (d / "folder.yaml").mkdir()
    return {"/dev/zero": "/dev/zero", "/dev/urandom": "/dev/urandom", "fifo": str(fifo), "directory": str(d),
            "dir.yaml": str(d / "folder.yaml"), "loop": str(loop), "long": "x" * 300,
            "long path": str(d / ("y" * 300 + ".json")), "big": str(d / "big.json"), "missing": str(d / "nope.yaml")}


PATH_CASES = [("-m", ("kv", "-m", "{}")), ("-g", ("kv", "-m", "gpt2", "-g", "{}")),
              ("--draft", ("specdec", "-m", "llama-3.1-8b", "--draft", "{}", "-g", "h100-sxm", "--alpha", "0.8"))]


@pytest.mark.parametrize("flag,template", PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_paths_that_are_not_small_regular_files(tmp_path, places, flag, template):
    # -m gets a sample of every kind of place; -g and --draft the two worst (the same reader serves all three)
    chosen = sample(sorted(places), 3, "/dev/zero", "fifo") if flag == "-m" else sample(places, 0, "/dev/zero", "fifo")
    for name in chosen:
        args = [a.replace("{}", places[name]) for a in template]
        assert_refused(llmcalc(tmp_path, *args))


def test_huge_preset_files_are_not_read(tmp_path):
    """A 5 GB (sparse) file among the user's presets: named, it is refused by size; unnamed, the alias scan
    that looks for a close name reads only its head."""
    models = tmp_path / "config" / "models"
    models.mkdir(parents=True)
    with open(models / "huge.yaml", "wb") as f:
        f.truncate(5 * 10**9)
    assert_refused(llmcalc(tmp_path, "kv", "-m", "huge"), "too large")
    assert_refused(llmcalc(tmp_path, "kv", "-m", "hugh"), "unknown model preset")


# ----------------------------------------------------------------------------------------------
# Product sizes and long sweeps


def test_sweep_product_is_capped_before_allocating(tmp_path):
    run = llmcalc(tmp_path, "kv", "-m", "gpt2", "--batch", "1..1e5+1", "--seq", "1..1e5+1")
    assert_refused(run, "points")
    assert b"memory" not in run.err


def test_huge_sweeps_end_in_one_line_not_a_traceback(tmp_path):
    for args in sample([["kv", "-m", "gpt2", "--batch", "1..1e5+1", "--seq", "1..1e5+1"],
                        ["kv", "-m", "gpt2", "--batch", "1..1e8+1"],
                        ["flops", "-m", "gpt2", "--seq", "1..1e12x1.0000001"]], 1, seed=1):
        assert_contract(llmcalc(tmp_path, *args))


def test_long_ranges_become_arrays_without_a_traceback(tmp_path):
    run = llmcalc(tmp_path, "kv", "-m", "gpt2", "-g", "h100-sxm", "--seq", "100", "--max-output", "1..5000+1",
                  "--mean-output", "1")
    assert_contract(run)
    assert run.code == 0 and len(run.out.splitlines()) == 5001, run


def test_target_latency_search_is_bounded(tmp_path):
    """More than 10^6 sequences fit; the old search built every batch up to a silent cap of 10^6 (GBs)."""
    run = llmcalc(tmp_path, "serve", "-m", "gpt2", "-g", "b200", "--prompt", "1", "--gen", "1", "--engine", "none",
                  "--target-latency", "1000s", "--json")     # weights + cache only: each sequence's logits aside
    assert_contract(run)
    r = json.loads(run.out)["results"]
    assert r["target_batch"] == r["max_batch"] > 10**6


# ----------------------------------------------------------------------------------------------
# Overflow and underflow: flags and files

NUMBERS = ["1e400", "-1e400", "1e-400", "-0", "0", "nan", "inf", "-inf", "9" * 5000, "1" + "0" * 400,
           "0x10", "1e30", "-1"]
NUMERIC_FLAGS = [("kv", "--batch"), ("kv", "--seq"), ("serve", "--gen"), ("serve", "--mbu"), ("flops", "--tokens"),
                 ("train-mem", "--tp"), ("train-mem", "--pp"), ("parallel", "--net-bw"),
                 ("serve", "--target-latency"), ("specdec", "--alpha"), ("roofline", "--intensity")]
BASE = {"kv": ["-m", "gpt2"], "serve": ["-m", "gpt2", "-g", "h100-sxm"], "flops": ["-m", "gpt2", "-g", "h100-sxm"],
        "train-mem": ["-m", "gpt2"], "parallel": ["-m", "gpt2", "-g", "h100-sxm", "--gpus", "8"],
        "specdec": ["--k", "4", "--cost-ratio", "0.1"], "roofline": ["-g", "h100-sxm"]}


def test_overflow_and_underflow_in_flags(tmp_path):
    pairs = [(c, f, v) for c, f in NUMERIC_FLAGS for v in NUMBERS]
    for command, flag, value in sample(pairs, 8, ("kv", "--seq", "9" * 5000), ("parallel", "--net-bw", "1e400")):
        assert_contract(llmcalc(tmp_path, command, *BASE[command], f"{flag}={value}"))


CONFIG = {"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
          "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 1000, "max_position_embeddings": 512}


@pytest.mark.parametrize("field,raw", sample(
    [("num_hidden_layers", "9" * 5000), ("hidden_size", "1e400"), ("vocab_size", "NaN"), ("intermediate_size", "-0"),
     ("num_attention_heads", "Infinity"), ("max_position_embeddings", "1e-400"), ("num_local_experts", "0"),
     ("num_experts_per_tok", "9")], 1, ("num_hidden_layers", "9" * 5000), ("num_local_experts", "0"),
    ("num_experts_per_tok", "9")), ids=lambda x: x[:12] if isinstance(x, str) else x)
def test_overflow_and_nonsense_in_config_json(tmp_path, field, raw):
    data = dict(CONFIG)
    if "expert" in field:
        data.update(model_type="mixtral", num_local_experts=4, num_experts_per_tok=2)
    data[field] = "RAW"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data).replace('"RAW"', raw))
    run = llmcalc(tmp_path, "serve", "-m", str(path), "-g", "h100-sxm")
    assert_refused(run, "config.json")


def test_huge_integer_in_a_yaml_preset(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(f"layers: {'9' * 5000}\nhidden: 64\nheads: 4\nffn: 256\nvocab: 100\n")
    assert_refused(llmcalc(tmp_path, "kv", "-m", str(path)), "m.yaml")


# ----------------------------------------------------------------------------------------------
# Units of the wrong kind

WRONG_KIND = [("parallel", "--net-bw", "50TFLOPS"), ("parallel", "--nvlink-bw", "80GB"),
              ("parallel", "--nvlink-latency", "400Gb/s"), ("kv", "--batch", "80GB"), ("kv", "--seq", "3.35TB/s"),
              ("train-mem", "--reserve", "989TFLOPS"), ("serve", "--target-latency", "5GB"),
              ("serve", "--allreduce-latency", "1TB/s"), ("parallel", "--net-bw", "3.35tb/s")]


@pytest.mark.parametrize("command,flag,value", sample(WRONG_KIND, 3, WRONG_KIND[0], WRONG_KIND[-1]),
                         ids=lambda x: x if isinstance(x, str) else None)
def test_each_flag_takes_only_its_kind_of_unit(tmp_path, command, flag, value):
    base = BASE[command] + (["-g", "h100-sxm"] if command == "train-mem" else [])
    assert_refused(llmcalc(tmp_path, command, *base, flag, value), flag)


def test_bits_are_an_eighth_of_bytes(tmp_path):
    runs = {v: llmcalc(tmp_path, "parallel", *BASE["parallel"], "--net-bw", v, "--json")
            for v in sample(("400Gb/s", "400Gbps", "400Gbit/s", "50GB/s"), 0, "400Gb/s", "50GB/s")}
    for run in runs.values():
        assert_contract(run)
    seen = {v: json.loads(r.out)["inputs"]["net_bw"] for v, r in runs.items()}
    assert set(seen.values()) == {400e9 / 8}


# ----------------------------------------------------------------------------------------------
# Terminals: closed, full, gone, narrow, not UTF-8


def test_closed_stdout(tmp_path):
    run = llmcalc(tmp_path, shell="LLMCALC kv -m gpt2 >&-")
    assert_refused(run, "standard output")


def test_full_stdout(tmp_path):
    run = llmcalc(tmp_path, shell="LLMCALC kv -m gpt2 --batch 1..2000+1 >/dev/full")
    assert_refused(run, "no space")


@pytest.mark.parametrize("args", sample(["kv -m gpt2 --batch 1..20000+1", "flops -m gpt2 --explain -o table",
                                         "presets list models"], 1, "kv -m gpt2 --batch 1..20000+1"))
def test_reader_leaving_early_is_not_a_failure(tmp_path, args):
    run = llmcalc(tmp_path, shell=f"set -o pipefail; LLMCALC {args} | head -1")
    assert run.code == 0 and b"Traceback" not in run.err and not run.err.strip(), run
    assert len(run.out.splitlines()) == 1


CONSOLE = [["kv", "-m", "gpt2", "-o", "table"], ["flops", "-m", "gpt2", "--explain"], ["kv", "--help"],
           ["serve", "-m", "gpt2", "-g", "h100", "--batch", "1,8", "-o", "table"]]


@pytest.mark.parametrize("encoding,args", sample([(e, a) for a in CONSOLE for e in ("ascii", "latin-1")], 0,
                                                 ("ascii", CONSOLE[0]), ("latin-1", CONSOLE[1]),
                                                 ("ascii", CONSOLE[2]), ("latin-1", CONSOLE[3])),
                         ids=lambda x: x if isinstance(x, str) else x[0])
def test_non_utf8_console(tmp_path, encoding, args):
    run = llmcalc(tmp_path, *args, env=_env(tmp_path, PYTHONIOENCODING=encoding))
    assert_contract(run)
    assert run.code == 0
    run.out.decode(encoding)  # what was written is valid in the console's encoding


def test_narrow_terminal(tmp_path):
    for args in sample([["kv", "-m", "gpt2", "-o", "table"], ["--help"],
                        ["serve", "-m", "gpt2", "-g", "h100", "--batch", "1..64", "-o", "table"]], 0,
                       ["kv", "-m", "gpt2", "-o", "table"], ["--help"]):
        assert_contract(llmcalc(tmp_path, *args, env=_env(tmp_path, COLUMNS="20")))


def test_unwritable_home_for_completion(tmp_path):
    # from bash (detected: the install fails on HOME), or from a parent Typer cannot name (shell None)
    run = llmcalc(tmp_path, shell="LLMCALC --install-completion; exit $?", env=_env(tmp_path, HOME="/dev/null/home"))
    assert_refused(run, "completion")


@pytest.mark.parametrize("flag", ["--install-completion", "--show-completion"])
def test_completion_from_an_unsupported_shell(tmp_path, flag):
    run = llmcalc(tmp_path, shell=f"sh -c 'LLMCALC {flag}; exit $?'")
    assert_refused(run, "completion", "bash")


# ----------------------------------------------------------------------------------------------
# Terminal escapes in preset names


def test_escape_sequences_in_preset_names_are_not_echoed(tmp_path):
    models = tmp_path / "config" / "models"
    models.mkdir(parents=True)
    body = "layers: 2\nhidden: 64\nheads: 4\nffn: 256\nvocab: 100\n"
    (models / "evil.yaml").write_text('name: "evil\\x1b]0;pwned\\x07\\x1b[31m"\n' + body)
    (models / "clear\x1b[2J.yaml").write_text(body)
    cases = [["presets", "list", "models"], ["kv", "-m", "evil", "-o", "table"], ["kv", "-m", "evil", "--json"],
             ["kv", "-m", "evil"], ["presets", "show", "evil"], ["kv", "-m", "clear\x1b[2J", "-o", "table"],
             ["kv", "-m", "nope\x1b[2J\x07"], ["kv", "-m", "gpt2", "-g", "\x1b[31mred"]]
    for args in sample(cases, 1, cases[0], cases[1], cases[5], cases[6]):
        run = llmcalc(tmp_path, *args)
        assert_contract(run)
        assert b"\x1b" not in run.out + run.err and b"\x07" not in run.out + run.err, run


# ----------------------------------------------------------------------------------------------
# No arguments; refusals the model or GPU implies


def test_no_arguments_prints_help(tmp_path):
    run = llmcalc(tmp_path)
    assert run.code == 0 and b"Usage" in run.out and not run.err.strip(), run


@pytest.mark.parametrize("args,words", [
    (["train-mem", "-m", "gpt2", "--tp", "5"], ["--tp 5", "12 attention heads"]),
    (["train-mem", "-m", "gpt2", "--pp", "1000"], ["--pp 1,000", "12 layers"]),
    (["flops", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--tokens-per-s", "1e6"], ["peak", "mfu"]),
], ids=["tp", "pp", "mfu"])
def test_impossible_layouts_and_throughputs(tmp_path, args, words):
    assert_refused(llmcalc(tmp_path, *args), *words)


# ----------------------------------------------------------------------------------------------
# The same key set in sweep rows and single points


@pytest.mark.parametrize("command,args,axis", sample([
    ("kv", ["-m", "gpt2", "-g", "h100-sxm"], "--batch"), ("serve", ["-m", "gpt2", "-g", "h100-sxm"], "--batch"),
    ("flops", ["-m", "gpt2"], "--seq"), ("train-mem", ["-m", "gpt2", "-g", "h100-sxm"], "--batch")], 1,
    ("kv", ["-m", "gpt2", "-g", "h100-sxm"], "--batch")), ids=lambda x: x if isinstance(x, str) else "")
def test_same_keys_for_a_point_and_a_sweep(tmp_path, command, args, axis):
    one = llmcalc(tmp_path, command, *args, axis, "2", "--json")
    many = llmcalc(tmp_path, command, *args, axis, "1,2", "--json")
    assert_contract(one)
    assert_contract(many)
    point, sweep = json.loads(one.out), json.loads(many.out)
    swept = {axis.lstrip("-").replace("-", "_")}  # a row holds the swept inputs, then every result key
    assert set(point["results"]) == set(sweep["rows"][0]) - swept


# ----------------------------------------------------------------------------------------------
# A larger random sample by hand or in CI: random flags × hostile values, each under the limits

HOSTILE_VALUES = NUMBERS + ["80GB", "50TFLOPS", "400Gb/s", "30ms", "1..1e7+1", "1,2,", "..", "1..8x1", "7B",
                            "\x1b[2J", "a" * 300, "/dev/zero", "1e5..1", "2..1e6x1.000001"]


@pytest.mark.slow
def test_random_hostile_sample(tmp_path):
    import typer.main

    from llmcalc.cli import app
    group = typer.main.get_command(app)
    flags = {name: [o for p in cmd.params for o in getattr(p, "opts", []) if o.startswith("--")
                    and not getattr(p, "is_flag", False) and o not in ("--plot", "--install-completion")]
             for name, cmd in group.commands.items() if name != "presets"}
    rng = random.Random(int(os.environ.get("LLMCALC_HOSTILE_SEED", "10")))
    for _ in range(int(os.environ.get("LLMCALC_HOSTILE_RUNS", "60"))):
        command = rng.choice(sorted(flags))
        args = [command, *BASE.get(command, [])]
        for flag in rng.sample(flags[command], min(2, len(flags[command]))):
            args += [flag, rng.choice(HOSTILE_VALUES)]
        assert_contract(llmcalc(tmp_path, *args), output=False)


def test_bash_and_the_memory_limit_are_available():
    """The suite's own preconditions (so a skipped shell does not pass silently)."""
    assert shutil.which("bash"), "bash runs the pipe, closed and full stdout cases"
