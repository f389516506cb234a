"""The CLI end to end: output formats, resolved inputs, sweeps, and bad input as one line with exit 2."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from conftest import results


def test_json_document_shape(cli):
    doc = cli("flops", "-m", "llama-3.1-8b", "--seq", "32k", "--json").json()
    assert doc["schema_version"] == 2 and doc["command"] == "flops"
    assert doc["inputs"]["seq"] == 32000          # --seq 32k visibly became 32,000
    assert doc["model"]["name"] == "llama-3.1-8b"
    for key in ("params", "params_embedding", "forward_flops", "backward_flops", "training_flops",
                "attention_projection_flops", "attention_score_flops", "mlp_flops", "lm_head_flops",
                "napkin_forward_flops", "napkin_training_flops"):
        assert isinstance(doc["results"][key], (int, float)), key


def test_binary_suffix_and_underscores(cli):
    doc = cli("flops", "-m", "gpt2", "--seq", "1Ki", "--batch", "1_0", "--json").json()
    assert doc["inputs"]["seq"] == 1024 and doc["inputs"]["batch"] == 10


@pytest.mark.parametrize("fmt", ["tsv", "csv", "yaml", "md", "table", "json"])
def test_every_format_prints_the_same_numbers(cli, fmt):
    run = cli("flops", "-m", "gpt2", "--seq", "1024", "-o", fmt)
    assert run.code == 0 and run.stderr == ""
    forward = 291648307200
    if fmt == "json":
        assert json.loads(run.stdout)["results"]["forward_flops"] == forward
    elif fmt == "yaml":
        assert yaml.safe_load(run.stdout)["results"]["forward_flops"] == forward
    elif fmt in ("tsv", "csv"):
        delim = "\t" if fmt == "tsv" else ","
        (rows,) = csv.DictReader(io.StringIO(run.stdout), delimiter=delim)  # wide: one line per point
        assert int(rows["forward_flops"]) == forward
        assert rows["seq"] == "1024" and rows["model"] == "gpt2"
    else:
        assert "292 GFLOPs" in run.stdout  # human units in tables and Markdown


def test_piped_default_is_tsv_untruncated(cli):
    run = cli("flops", "-m", "gpt2", "--seq", "1024")
    header, line = run.stdout.splitlines()
    assert header.split("\t")[:4] == ["model", "gpu", "batch", "seq"] and "forward_flops" in header
    assert line.split("\t")[header.split("\t").index("forward_flops")] == "291648307200"


def test_sweep_rows(cli):
    doc = cli("flops", "-m", "gpt2", "--seq", "256..1024x2", "--batch", "1,4", "--json").json()
    rows = doc["rows"]
    assert [(r["batch"], r["seq"]) for r in rows] == [(1, 256), (1, 512), (1, 1024), (4, 256), (4, 512), (4, 1024)]
    one = results(cli("flops", "-m", "gpt2", "--seq", "512", "--batch", "4", "--json"))
    assert rows[4]["forward_flops"] == one["forward_flops"]


def test_step_range(cli):
    doc = cli("flops", "-m", "gpt2", "--seq", "1k..4k+1k", "--json").json()
    assert [r["seq"] for r in doc["rows"]] == [1000, 2000, 3000, 4000]


def test_fields_selection_and_typo(cli):
    doc = cli("flops", "-m", "gpt2", "--fields", "forward_flops,params", "--json").json()
    assert list(doc["results"]) == ["forward_flops", "params"]
    bad = cli("flops", "-m", "gpt2", "--fields", "forwrd_flops", "--json")
    assert bad.code == 2 and "Available fields" in bad.stderr and bad.stdout == ""


def test_explain_shows_formula_and_numbers(cli):
    run = cli("flops", "--hidden", "768", "--layers", "12", "--heads", "12", "--vocab", "50257", "--seq", "1024",
              "--explain", "-o", "tsv")
    assert "mlp_flops = 2·B·S·n_mat·H·F·L = 2 × 1 × 1024 × 2 × 768 × 3072 × 12 = 116 GFLOPs" in run.stdout


def test_explain_rows_evaluate_to_their_values():
    from llmcalc.core.flops import add_training_run, training_step_flops
    from llmcalc.presets import load_model

    for name in ("gpt2", "mixtral-8x7b", "deepseek-v3", "gemma-2-9b"):
        r = training_step_flops(load_model(name), 2, 4096, causal=True, recompute="selective")
        add_training_run(r, load_model(name), 2, 4096, tokens=1e12, peak=1e15, gpus=8, mfu=0.5, tokens_per_s=1e4)
        for key, row in r.items():
            if row.formula is not None:
                assert row.formula(**row.symbols) == row.value, key


@pytest.mark.parametrize("args, message", [
    (["flops", "-m", "no-such-model"], "unknown model preset"),
    (["flops", "-m", "lama-3.1-8b"], "did you mean llama-3.1-8b"),
    (["flops", "--hidden", "0", "--layers", "12", "--heads", "12", "--seq", "8"], "--hidden must be"),
    (["flops", "--hidden", "770", "--layers", "12", "--heads", "12", "--vocab", "100"], "does not divide"),
    (["flops", "-m", "gpt2", "--seq", "-5"], "--seq must be greater than 0"),
    (["flops", "-m", "gpt2", "--seq", "nan"], "--seq"),
    (["flops", "-m", "gpt2", "--seq", "inf"], "--seq"),
    (["flops", "-m", "gpt2", "--seq", "7X"], "can't read '7X'"),
    (["flops", "-m", "gpt2", "--seq", "1.5"], "whole number"),
    (["flops", "-m", "gpt2", "--seq", "10..1"], "no points"),
    (["flops", "-m", "gpt2", "--seq", "1,,2"], "empty item"),
    (["flops", "-m", "gpt2", "-g", "h100-sxm", "--dtype", "fp7"], "--dtype must be one of"),
    (["flops", "-m", "gpt2", "--recompute", "half"], "--recompute must be one of"),
    (["flops", "-m", "gpt2", "-o", "xml"], "unknown output format"),
    (["flops", "-m", "gpt2", "--no-such-flag"], "No such option"),
    (["flops", "-m", "gpt2", "-g", "h100-sxm", "--mfu", "1.5"], "--mfu must be at most 1"),
    (["flops", "-m", "gpt2", "--mfu", "0.5"], "need a GPU"),
    (["flops"], "no model given"),
    (["flops", "-m", "gpt2", "-g", "no-gpu"], "unknown gpu preset"),
])
def test_bad_input_is_one_line_exit_2(cli, args, message):
    run = cli(*args)
    assert run.code == 2
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith("llmcalc: error: ")
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_bad_files(cli, tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("layers: [12\nhidden: 768\n")
    run = cli("flops", "-m", str(bad_yaml))
    assert run.code == 2 and "not valid YAML" in run.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text("layers: 12\nhiden: 768\nheads: 12\nvocab: 100\nffn: 10\n")
    run = cli("flops", "-m", str(typo))
    assert run.code == 2 and "unknown field 'hiden'" in run.stderr
    bad_json = tmp_path / "config.json"
    bad_json.write_text('{"model_type": "llama", "hidden_size": "big"')
    run = cli("flops", "-m", str(bad_json))
    assert run.code == 2 and "not valid JSON" in run.stderr
    bad_json.write_text('{"model_type": "llama", "hidden_size": "big", "num_attention_heads": 8}')
    run = cli("flops", "-m", str(bad_json))
    assert run.code == 2 and "hidden_size" in run.stderr
    binary = tmp_path / "x.yaml"
    binary.write_bytes(b"\x00\x01\x02")
    assert cli("flops", "-m", str(binary)).code == 2
    assert cli("flops", "-m", str(tmp_path / "missing.yaml")).code == 2


def test_version_and_help(cli):
    run = cli("--version")
    assert run.code == 0 and run.stdout.startswith("llmcalc ")
    run = cli("flops", "--help")
    assert run.code == 0 and "llmcalc flops -m gpt2 --seq 1024" in run.stdout


def test_presets_list_and_show(cli):
    doc = cli("presets", "list", "models", "--json").json()
    names = {r["name"] for r in doc["rows"]}
    assert {"gpt2", "llama-3.1-405b", "deepseek-v3", "mixtral-8x7b"} <= names
    doc = cli("presets", "show", "llama-2-7b", "--json").json()
    assert doc["results"]["params"] == 6_738_415_616
    doc = cli("presets", "show", "H100-SXM", "--json").json()  # case-insensitive
    assert doc["gpu"]["name"] == "h100-sxm"
    assert cli("presets", "show", "nope").code == 2


def test_user_presets_override_and_add(cli, tmp_path, monkeypatch):
    folder = tmp_path / "user" / "models"
    folder.mkdir(parents=True)
    (folder / "tiny.yaml").write_text(
        "layers: 2\nhidden: 64\nheads: 4\nkv_heads: 4\nhead_dim: 16\nffn: 256\nvocab: 100\nmlp: plain\n"
        "source: test\n")
    monkeypatch.setenv("LLMCALC_CONFIG_DIR", str(tmp_path / "user"))
    doc = cli("flops", "-m", "tiny", "--seq", "8", "--json").json()
    assert doc["model"]["name"] == "tiny" and doc["results"]["params"] > 0
    run = cli("presets", "path")
    assert str(tmp_path / "user") in run.stdout


def test_comparison_of_models_and_gpus_is_a_sweep(cli):
    doc = cli("flops", "-m", "llama-3.1-8b,mistral-7b,qwen2.5-7b", "--seq", "4096", "--json").json()
    assert [r["model"] for r in doc["rows"]] == ["llama-3.1-8b", "mistral-7b", "qwen2.5-7b"]
    for row in doc["rows"]:
        single = results(cli("flops", "-m", row["model"], "--seq", "4096", "--json"))
        assert row["forward_flops"] == single["forward_flops"]
    doc = cli("flops", "-m", "gpt2,gpt2-xl", "-g", "a100-80gb,h100-sxm", "--seq", "512,1024", "--tokens", "1B",
              "--json").json()
    assert len(doc["rows"]) == 8 and {r["gpu"] for r in doc["rows"]} == {"a100-80gb-sxm", "h100-sxm"}
    bad = cli("flops", "-m", "gpt2,nope", "--json")
    assert bad.code == 2 and "nope" in bad.stderr and bad.stdout == ""


@pytest.mark.parametrize("content", [
    "- " * 400_000 + "x\n",                                   # deep block nesting (crashes libyaml's composer)
    "[" * 100_000 + "]" * 100_000,                            # deep flow nesting
    "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nlayers: *b\n",  # alias expansion
])
def test_hostile_yaml_is_refused_fast(cli, tmp_path, content):
    path = tmp_path / "hostile.yaml"
    path.write_text(content)
    run = cli("flops", "-m", str(path), "--json")
    assert run.code == 2 and len(run.stderr.splitlines()) == 1


def test_oversized_file_is_refused(cli, tmp_path):
    path = tmp_path / "big.json"
    path.write_text(" " * (2 << 20) + "{}")
    run = cli("flops", "-m", str(path))
    assert run.code == 2 and "too large" in run.stderr
