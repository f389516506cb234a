"""Traps that widely used calculators fall into, each made impossible here (issue 2)."""

from __future__ import annotations

import pytest

from conftest import results
from llmcalc.units import parse_bytes, parse_count, parse_rate


def test_mlp_width_is_the_models_and_gated_mlps_have_three_matrices(cli):
    # Llama-2-7B: intermediate 11,008 (not 4·4096 = 16,384), SwiGLU = gate, up, down.
    r = results(cli("flops", "-m", "llama-2-7b", "--seq", "2048", "--json"))
    assert r["mlp_flops"] == 2 * 2048 * 3 * 4096 * 11008 * 32


def test_one_vocabulary_matmul_not_two(cli):
    # The embedding lookup is a gather: only the LM head is a [T,H]x[H,V] matmul, tied or not.
    for model in ("gpt2", "llama-2-7b"):
        r = results(cli("flops", "-m", model, "--seq", "512", "--json"))
        rest = r["attention_projection_flops"] + r["attention_score_flops"] + r["mlp_flops"]
        doc = cli("presets", "show", model, "--json").json()
        assert r["forward_flops"] - rest == 2 * 512 * doc["model"]["hidden"] * doc["model"]["vocab"]


def test_attention_matmuls_are_counted(cli):
    # QKᵀ and attention × V: 4·B·S²·H per layer for multi-head attention (seed 000 ch. 1), never silently 0.
    r = results(cli("flops", "-m", "gpt2", "--seq", "1024", "--batch", "3", "--json"))
    assert r["attention_score_flops"] == 4 * 3 * 1024**2 * 768 * 12  # 12 layers


def test_gb_is_decimal_and_gib_is_binary():
    assert parse_bytes("80GB") == 80 * 10**9
    assert parse_bytes("80GiB") == 80 * 2**30
    assert parse_count("32k") == 32_000 and parse_count("32Ki") == 32_768 and parse_count("7B") == 7 * 10**9
    assert parse_rate("3.35TB/s") == pytest.approx(3.35e12) and parse_rate("989TFLOPS") == pytest.approx(989e12)


def test_tables_label_binary_units(cli):
    out = cli("presets", "show", "a100-80gb", "-o", "table").stdout
    assert "80 GiB" in out  # 85,899,345,920 bytes: never printed as "80 GB" or "85.9 GB" unlabelled


def test_no_silent_100_percent_mfu(cli):
    run = cli("flops", "-m", "llama-3.1-8b", "--seq", "8192", "--tokens", "1T", "-g", "h100-sxm", "-o", "tsv")
    assert "MFU 0.4 assumed" in run.stderr
    doc = cli("flops", "-m", "llama-3.1-8b", "--seq", "8192", "--tokens", "1T", "-g", "h100-sxm", "--json").json()
    assert doc["inputs"]["mfu"] == 0.4 and "MFU 0.4 assumed" in " ".join(doc["notes"])
    r = doc["results"]
    assert r["gpu_hours"] == pytest.approx(r["total_training_flops"] / (989.4e12 * 0.4) / 3600, rel=1e-3)


def test_measured_throughput_gives_mfu(cli):
    # Inverse: tokens/s measured on N GPUs -> MFU = 6-ish·P·tokens/s / (N·peak) (seed 003 eq. 3.5).
    doc = cli("flops", "-m", "llama-3.1-8b", "--seq", "8192", "-g", "h100-sxm", "--gpus", "8",
              "--tokens-per-s", "60000", "--json").json()
    r = doc["results"]
    per_token = r["training_flops"] / 8192
    assert r["mfu"] == pytest.approx(per_token * 60000 / (8 * 989.4e12), rel=1e-3)
