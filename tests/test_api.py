"""The Python API (`import llmcalc`) is the CLI without the terminal: every README example gives the same JSON
through both, keyword arguments are exactly the CLI's long flags, bad input raises InputError with the CLI's
message, and nothing prints or exits."""

from __future__ import annotations

import importlib.util
import inspect
import json
import shlex
from pathlib import Path

import pytest

import llmcalc
from llmcalc import api
from test_docs_examples import epilog_examples, readme_examples

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ("flops", "train_mem", "kv", "roofline", "serve", "specdec", "parallel")


def _click_command(name: str):
    import typer.main

    from llmcalc.cli import make_app
    cli_name = api.COMMANDS[name]
    return typer.main.get_command(make_app(cli_name)).commands[cli_name]


# ----------------------------------------------------------------------------------------------
# The functions' parameters are the CLI's flags


@pytest.mark.parametrize("name", PUBLIC)
def test_function_parameters_are_the_commands_long_flags(name):
    """Read from the Click command Typer builds (what the CLI parses), independently of llmcalc.api."""
    output_flags = {"--json", "--format", "--explain", "--no-chart", "--help"}
    flags = []
    for param in _click_command(name).params:
        longs = [o for o in param.opts if o.startswith("--")]
        if not longs or output_flags & set(longs):
            continue
        own = "--" + param.name.replace("_", "-")
        flags.append((own if own in longs else longs[0])[2:].replace("-", "_"))
    func = getattr(llmcalc, name)
    params = inspect.signature(func).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is None for p in params.values())
    assert sorted(params) == sorted(flags)
    assert func.__doc__ and inspect.signature(func).return_annotation in ("Result", api.Result)
    import typing
    hints = typing.get_type_hints(func)
    assert set(hints) == set(params) | {"return"} and hints["return"] is api.Result


def test_generated_functions_are_current():
    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "scripts" / "gen_api.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.generate() in (ROOT / "llmcalc" / "api.py").read_text(), "run scripts/gen_api.py"


def test_package_exports_and_is_typed():
    assert set(PUBLIC) | {"run", "Result", "InputError"} <= set(dir(llmcalc))
    assert issubclass(llmcalc.InputError, ValueError)
    assert (ROOT / "llmcalc" / "py.typed").exists()
    with pytest.raises(AttributeError):
        llmcalc.no_such_function


# ----------------------------------------------------------------------------------------------
# Every README and --help example: the CLI's --json and the API's to_json are the same bytes


def _api_kwargs(name: str, args: list[str]) -> dict:
    """The CLI arguments as the API's keyword arguments, parsed by the CLI's own Click command: each flag the
    line gives, by its long name, with the text the CLI received (switches as True/False)."""
    command = _click_command(name)
    by_name = {p.name: p for p in command.params}
    ctx = command.make_context("llmcalc", list(args), resilient_parsing=True)
    kwargs = {}
    for pname, value in ctx.params.items():
        param = by_name[pname]
        if ctx.get_parameter_source(pname).name != "COMMANDLINE":
            continue
        longs = [o for o in param.opts if o.startswith("--")]
        own = "--" + pname.replace("_", "-")
        kwargs[(own if own in longs else longs[0])[2:].replace("-", "_")] = value
    return kwargs


NOT_API = ("presets", "--version")  # listing presets and the version are not calculations: no API function


def _readme_cases():
    cases = []
    for line in dict.fromkeys(readme_examples() + epilog_examples()):  # the README's, then each --help's
        command = line.split(" #")[0].split("|")[0].strip()  # a piped jq gets the document; compare that
        args = shlex.split(command)[1:]
        if args[0] in NOT_API or "--plot" in args:  # --plot writes an image file, not a result
            continue
        cases.append(pytest.param(args, id=command[8:60]))
    return cases


def _untimed(text: str) -> str:
    import re
    text = re.sub(r'"seconds": [0-9.e+-]+', '"seconds": T', text)
    return re.sub(r"layouts in [0-9.]+ (ms|s|µs)", "layouts in T", text)


def _as_json(args: list[str]) -> tuple[list[str], bool]:
    """The same run asking for JSON (-o yaml/csv/md/tsv is the same document in another dress)."""
    out, i, explain = [], 0, False
    while i < len(args):
        a = args[i]
        if a in ("-o", "--format"):
            i += 2
            continue
        if a.startswith("--format=") or a == "--json":
            i += 1
            continue
        explain |= a == "--explain"
        out.append(a)
        i += 1
    return out + ["--json"], explain


@pytest.mark.parametrize("args", _readme_cases())
def test_readme_example_gives_the_same_json_through_the_api(cli, args):
    json_args, explain = _as_json(args)
    run = cli(*json_args)
    assert run.code in ((0, 3) if "--check" in args else (0,)), run.stderr
    name = args[0].replace("-", "_")
    flags = {k: v for k, v in _api_kwargs(name, [a for a in json_args[1:] if a not in ("--json", "--explain")]).items()}
    result = getattr(llmcalc, name)(**flags)
    text = result.to_json(explain=explain)
    if args[0] == "parallel" and "--search" in args:  # the search reports its own run time: blank it out
        assert _untimed(text) == _untimed(run.stdout)
    else:
        assert text == run.stdout
    assert result.to_dict() == json.loads(result.to_json())
    if "--check" in args and run.code == 3:
        assert result["fits"] is False or False in result["fits"]


# ----------------------------------------------------------------------------------------------
# Python values become the CLI's text


def test_numbers_and_lists_mean_what_their_text_means(cli):
    by_cli = cli("serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--batch", "1,8,64", "--prompt", "1000",
                 "--mbu", "0.7", "--json").stdout
    by_api = llmcalc.serve(model="llama-3.1-8b", gpu="h100-sxm", batch=[1, 8, 64], prompt=1000, mbu=0.7)
    assert by_api.to_json() == by_cli
    assert by_api.is_sweep and [r["batch"] for r in by_api.rows] == [1, 8, 64]
    assert len(by_api["throughput_tokens_per_second"]) == 3


def test_a_range_object_sweeps_like_a_comma_list(cli):
    expected = cli("kv", "-m", "gpt2", "--seq", "256,512,768", "--json").json()
    got = llmcalc.kv(model="gpt2", seq=range(256, 1024, 256)).to_dict()
    assert got == expected


def test_switches_take_booleans_and_max_flags_keep_their_cli_names(cli):
    expected = cli("train-mem", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "8192", "--zero", "3", "--dp", "8",
                   "--recompute", "full", "--max-batch", "--json").json()
    got = llmcalc.train_mem(model="llama-3.1-8b", gpu="h100-sxm", seq=8192, zero=3, dp=8, recompute="full",
                            max_batch=True)
    assert got.to_dict() == expected
    assert got["max_batch"] == expected["results"]["max_batch"] and got["max_batch"] >= 1
    with pytest.raises(llmcalc.InputError, match="switch"):
        llmcalc.train_mem(model="gpt2", max_batch="yes")
    with pytest.raises(llmcalc.InputError, match="takes a value"):
        llmcalc.kv(model="gpt2", seq=True)


def test_a_model_list_compares_like_a_comma_list(cli):
    expected = cli("kv", "-m", "llama-3.1-8b,mistral-7b", "-g", "h100-sxm", "--seq", "32k", "--json").stdout
    got = llmcalc.kv(model=["llama-3.1-8b", "mistral-7b"], gpu="h100-sxm", seq="32k")
    assert got.to_json() == expected
    assert [r["model"] for r in got.rows] == ["llama-3.1-8b", "mistral-7b"]


# ----------------------------------------------------------------------------------------------
# Spec objects where a name goes


def test_a_model_spec_object_is_used_as_given(cli, tmp_path):
    from llmcalc import spec as specs
    from llmcalc.presets import load_model
    import yaml

    half = specs.replace(load_model("llama-3.1-8b"), layers=16, name="llama-half")
    path = tmp_path / "llama-half.yaml"  # the same model as a preset file, through the CLI
    path.write_text(yaml.safe_dump(half.to_dict()))
    expected = cli("kv", "-m", str(path), "-g", "h100-sxm", "--seq", "8192", "--json").json()
    got = llmcalc.kv(model=half, gpu="h100-sxm", seq=8192)
    assert got.to_dict()["results"] == expected["results"]
    assert got.model["name"] == "llama-half"
    from llmcalc import presets
    assert not presets.REGISTERED  # the object is registered for the call only


def test_a_gpu_spec_object_and_a_draft_model_object():
    from llmcalc import spec as specs
    from llmcalc.presets import load_gpu, load_model

    h100 = load_gpu("h100-sxm")
    fast = specs.replace(h100, name="h100-2x-bw", hbm_bytes_per_s=2 * h100.hbm_bytes_per_s)
    base = llmcalc.roofline(gpu=h100)
    doubled = llmcalc.roofline(gpu=fast)
    assert doubled["bandwidth"] == 2 * base["bandwidth"] == 2 * 3.35e12  # the H100 SXM datasheet: 3.35 TB/s
    assert doubled["ridge_intensity"] == pytest.approx(base["ridge_intensity"] / 2)
    draft = load_model("llama-3.1-8b")
    by_object = llmcalc.specdec(model="llama-3.1-70b", draft=draft, gpu=h100, tp=4, alpha=0.8)
    by_name = llmcalc.specdec(model="llama-3.1-70b", draft="llama-3.1-8b", gpu="h100-sxm", tp=4, alpha=0.8)
    assert dict(by_object) == dict(by_name)


# ----------------------------------------------------------------------------------------------
# Errors, silence, no exits


def test_bad_input_raises_input_error_with_the_clis_message(cli):
    run = cli("kv", "-m", "no-such-model")
    assert run.code == 2
    with pytest.raises(llmcalc.InputError) as info:
        llmcalc.kv(model="no-such-model")
    assert f"llmcalc: error: {info.value}" == run.stderr.strip()
    with pytest.raises(ValueError, match="--seq"):
        llmcalc.kv(model="gpt2", seq=-5)
    with pytest.raises(llmcalc.InputError, match="did you mean 'seq'"):
        llmcalc.run("kv", model="gpt2", sek=5)
    with pytest.raises(llmcalc.InputError, match="unknown command"):
        llmcalc.run("presets")


def test_nothing_prints_and_a_failed_check_is_just_fits_false(capfd):
    r = llmcalc.kv(model="llama-3.1-70b", gpu="rtx-4090", seq="32k", check=True)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert r["fits"] is False and r["max_batch"] == 0


# ----------------------------------------------------------------------------------------------
# The Result object


def test_result_is_a_read_only_mapping_in_base_units(cli):
    expected = cli("kv", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--seq", "32k", "--json").json()
    r = llmcalc.kv(model="llama-3.1-8b", gpu="h100-sxm", seq="32k")
    assert dict(r) == expected["results"]
    assert r.inputs == expected["inputs"] and r.notes == expected["notes"]
    assert r.rows == [expected["results"]] and not r.is_sweep
    # base units: bytes per sequence = 2 (K, V) · layers · kv_heads · head_dim · 2 bytes · tokens
    m = expected["model"]
    assert r["kv_bytes_per_sequence"] == 2 * m["layers"] * m["kv_heads"] * m["head_dim"] * 2 * 32000
    with pytest.raises(TypeError):
        r["kv_bytes"] = 0
    with pytest.raises(KeyError, match="available"):
        r["no_such_key"]


def test_explain_gives_the_formula_with_its_numbers(cli):
    r = llmcalc.kv(model="llama-3.1-8b", seq="32k")
    text = r.explain("kv_bytes_per_sequence")
    assert "kv_bytes_per_sequence =" in text and "32,000" in text
    cli_text = cli("kv", "-m", "llama-3.1-8b", "--seq", "32k", "--explain", "-o", "tsv").stdout
    assert all(line.strip() in cli_text for line in text.splitlines())
    assert len(r.explain().splitlines()) > len(text.splitlines())
    with pytest.raises(KeyError):
        r.explain("nope")


def test_notebook_renderings(cli):
    r = llmcalc.serve(model="llama-3.1-8b", gpu="h100-sxm", batch=[1, 8])
    assert r._repr_markdown_() == cli("serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--batch", "1,8",
                                      "-o", "md").stdout
    html = r._repr_html_()
    assert html.count("<tr>") == 1 + 2 and "<th>batch</th>" in html


def test_to_pandas_has_the_wide_csv_columns(cli):
    pd = pytest.importorskip("pandas")
    import io
    r = llmcalc.kv(model="gpt2", seq=[512, 1024])
    csv = cli("kv", "-m", "gpt2", "--seq", "512,1024", "-o", "csv").stdout
    expected = pd.read_csv(io.StringIO(csv))
    df = r.to_pandas()
    assert list(df.columns) == list(expected.columns) and len(df) == 2
    numeric = [c for c in expected.columns if expected[c].dtype.kind in "if"]
    assert "kv_bytes_per_sequence" in numeric
    for c in numeric:
        assert df[c].astype(float).tolist() == pytest.approx(expected[c].astype(float).tolist(), nan_ok=True), c


def test_a_mapping_is_read_as_a_preset_and_a_wrong_spec_is_refused(cli, tmp_path):
    import yaml
    tiny = {"name": "tiny", "layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "head_dim": 16, "ffn": 256,
            "vocab": 1000, "max_seq": 512}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny))
    expected = cli("kv", "-m", str(path), "--seq", "100", "--json").json()["results"]
    got = llmcalc.kv(model=tiny, seq=100)
    assert dict(got) == expected
    assert got["kv_bytes_per_sequence"] == 2 * 2 * 2 * 16 * 2 * 100  # K,V · layers · kv_heads · d_h · bf16 · S
    from llmcalc.presets import load_gpu
    with pytest.raises(llmcalc.InputError, match="model= takes a ModelSpec"):
        llmcalc.kv(model=load_gpu("h100-sxm"))
    with pytest.raises(llmcalc.InputError, match="layers"):
        llmcalc.kv(model={**tiny, "layers": 0})


def test_calls_from_threads_do_not_mix_their_reports():
    from concurrent.futures import ThreadPoolExecutor
    seqs = [512, 1024, 2048, 4096] * 3
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda s: llmcalc.kv(model="gpt2", seq=s), seqs))
    per_token = results[0]["kv_bytes_per_token"]
    assert [r.inputs["seq"] for r in results] == seqs
    assert [r["kv_bytes_per_sequence"] for r in results] == [per_token * s for s in seqs]


def test_serve_check_that_fails_is_a_result_not_an_exit(cli, capsys):
    args = dict(model="llama-3.1-70b", gpu="rtx-4090", batch=8, check=True)
    run = cli("serve", "-m", "llama-3.1-70b", "-g", "rtx-4090", "--batch", "8", "--check", "--json")
    assert run.code == 3
    capsys.readouterr()
    r = llmcalc.serve(**args)
    assert capsys.readouterr() == ("", "")
    assert r.to_json() == run.stdout
    assert r["fits"] is False
