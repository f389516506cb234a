"""Hostile input: random argument lists built from the real flag names of every subcommand, random
numbers (0, negative, huge, NaN, inf, fractions, suffixes, lists, ranges), random preset names and random
files, run in-process. Every case must end in exit 0 with a valid result (JSON: one object of finite
numbers), exit 2 with one line on stderr, or exit 3 (--check): never a traceback or another code.

The quick loop draws 200 cases; the ``slow`` run 5,000 others (another seed); LLMCALC_FUZZ_EXAMPLES raises
the slow run's count for a long run by hand.
"""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as seed_
from hypothesis import strategies as st

from conftest import assert_finite
from llmcalc.cli import app, main

QUICK = 200
EXAMPLES = int(os.environ.get("LLMCALC_FUZZ_EXAMPLES", "2000"))  # more by hand: LLMCALC_FUZZ_EXAMPLES=20000
SLOW_FLAGS = {"--search", "--simulate", "--plot", "--install-completion", "--show-completion", "--help", "-h",
              "--version"}


def _commands() -> dict[str, list[tuple[str, bool]]]:
    """command path -> [(flag, takes_value)], read from the Typer app itself."""
    import typer.main

    group = typer.main.get_command(app)
    out: dict[str, list[tuple[str, bool]]] = {}

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, path + [name])
            return
        flags = []
        for p in cmd.params:
            for opt in getattr(p, "opts", []):
                if opt.startswith("-") and opt not in SLOW_FLAGS:
                    flags.append((opt, not getattr(p, "is_flag", False)))
        out[" ".join(path)] = flags

    walk(group, [])
    return out


COMMANDS = _commands()

NUMBERS = ["0", "-1", "1", "2", "8", "0.5", "1e309", "nan", "inf", "-inf", "1e30", "7B", "32Ki", "32k", "1.5",
           "1,2", "1..8x2", "8..1", "1..4+1", "", " ", "abc", "1e-9", "3", "0.9", "12", "4096", "1_000", "2T",
           "80GB", "3.35TB/s", "989TFLOPS", "0x10", "--", "1,", "..", "1..2x1", "99999999999",
           "9" * 5000, "-0", "1e-400", "400Gb/s", "50TFLOPS", "3.35tb/s", "30ms", "20us", "1GiB/s", "\x1b[2J"]
NAMES = ["gpt2", "llama-3.1-8b", "mixtral-8x7b", "deepseek-v3", "gemma-2-9b", "h100-sxm", "a100-40gb",
         "tpu-v5e", "no-such", "GPT2", "llama-3.1-8b,mistral-7b", "", "../../etc/passwd", "bf16", "fp8", "int4",
         "adamw", "mixed", "selective", "full", "none", "megatron", "eager", "matmul", "table", "json", "xml"]


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    files = {
        "empty.yaml": b"",
        "binary.yaml": bytes(range(256)),
        "list.yaml": b"- 1\n- 2\n",
        "nested.yaml": b"[" * 200 + b"]" * 200,
        "alias.yaml": b"a: &a [1,2,3]\nb: [*a, *a]\nlayers: *a\n",
        "wrongtypes.yaml": b"layers: twelve\nhidden: [768]\nheads: {a: 1}\nvocab: null\n",
        "config.json": json.dumps({"model_type": "llama", "hidden_size": "4096", "num_attention_heads": None}).encode(),
        "badconfig.json": b'{"model_type": "gpt2", "n_layer": -3, "n_embd": 1e400}',
        "array.json": b"[1, 2, 3]",
        "notjson.json": b"{'single': quotes}",
        "gpu.yaml": b"name: x\nmemory_bytes: -5\nhbm_bytes_per_s: 0\nflops_per_s: {bf16: nan}\n",
        "hugeint.json": b'{"model_type": "gpt2", "n_layer": ' + b"9" * 5000 + b', "n_embd": 768, "n_head": 12}',
        "hugeint.yaml": b"layers: " + b"9" * 5000 + b"\nhidden: 64\nheads: 4\nffn: 256\nvocab: 100\n",
        "noexperts.json": json.dumps({"model_type": "mixtral", "hidden_size": 256, "num_hidden_layers": 2,
                                      "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 512,
                                      "vocab_size": 1000, "num_local_experts": 0,
                                      "num_experts_per_tok": 2}).encode(),
        "escape\x1b[2J.yaml": b'name: "a\\x1b[31m"\nlayers: 2\nhidden: 64\nheads: 4\nffn: 256\nvocab: 100\n',
    }
    paths = ["/dev/zero", str(d)]  # a device and a directory as paths
    fifo = d / "fifo.yaml"
    os.mkfifo(fifo)
    paths.append(str(fifo))
    for name, data in files.items():
        p = d / name
        p.write_bytes(data)
        paths.append(str(p))
    return paths


@st.composite
def argv(draw, files):
    command = draw(st.sampled_from(sorted(COMMANDS)))
    flags = COMMANDS[command]
    args = command.split()
    if flags:
        for flag, takes_value in draw(st.lists(st.sampled_from(flags), max_size=6)):
            args.append(flag)
            if takes_value:
                args.append(draw(st.one_of(st.sampled_from(NUMBERS), st.sampled_from(NAMES),
                                           st.sampled_from(files),
                                           st.floats(allow_nan=True, allow_infinity=True).map(repr),
                                           st.integers(-10**6, 10**12).map(str))))
    if draw(st.booleans()):
        args.append("--json")
    return args


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return int(code), out.getvalue(), err.getvalue()


def _fuzz(files, examples: int, seed: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,  # @seed: the same cases every run
              suppress_health_check=list(HealthCheck))
    @seed_(seed)
    @given(argv(files))
    def case(args):
        code, out, err = run(args)
        assert "Traceback" not in err + out, (args, err)
        assert "\x1b" not in err + out, (args, "a terminal escape was echoed")
        assert code in (0, 2, 3), (args, code, err)
        if code == 2:
            assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("llmcalc: error: "), (args, err)
        if code in (0, 3) and "--json" in args and out.strip():
            assert_finite(json.loads(out))

    case()


def test_fuzz_cli(hostile_files):
    _fuzz(hostile_files, QUICK, seed=0)


@pytest.mark.slow
def test_fuzz_cli_long(hostile_files):
    _fuzz(hostile_files, EXAMPLES, seed=1)
