"""`llmcalc roofline` end to end: keys of the interface, formats, charts, and bad input (exit 2)."""

from __future__ import annotations

import pytest

from conftest import results


def test_interface_keys(cli):
    r = results(cli("roofline", "-g", "h100-sxm", "--json"))
    assert r["peak_flops"] == 989.4e12 and r["bandwidth"] == 3.35e12
    assert r["ridge_intensity"] == pytest.approx(989.4 / 3.35)
    for op in (["--intensity", "100"], ["--op", "matmul", "--m", "64", "--k", "4096", "--n", "4096"],
               ["-m", "llama-3.1-8b", "--batch", "8"]):
        r = results(cli("roofline", "-g", "h100-sxm", *op, "--json"))
        for key in ("peak_flops", "bandwidth", "ridge_intensity", "intensity", "attainable_flops", "bound"):
            assert key in r, (op, key)
        assert r["bound"] in ("memory", "compute")


def test_time_at_the_roof_max_and_sum(cli):
    # STYLE.md #5: T_math, T_mem, the lower bound max(...) and the upper bound sum(...), and which binds.
    r = results(cli("roofline", "-g", "a100", "--op", "matmul", "--m", "8192", "--k", "8192", "--n", "8192",
                    "--json"))
    assert r["t_math_seconds"] == pytest.approx(2 * 8192**3 / 312e12)
    assert r["t_mem_seconds"] == pytest.approx(3 * 2 * 8192**2 / 2.039e12)
    assert r["time_seconds"] == max(r["t_math_seconds"], r["t_mem_seconds"])
    assert r["time_upper_seconds"] == pytest.approx(r["t_math_seconds"] + r["t_mem_seconds"])
    assert r["bound"] == "compute" and r["attainable_flops"] == 312e12


def test_dtype_changes_peak_and_bytes(cli):
    bf16 = results(cli("roofline", "-g", "h100", "--op", "matmul", "--m", "256", "--k", "8k", "--n", "8k", "--json"))
    fp8 = results(cli("roofline", "-g", "h100", "--dtype", "fp8", "--op", "matmul", "--m", "256", "--k", "8k",
                      "--n", "8k", "--json"))
    assert fp8["peak_flops"] == pytest.approx(2 * bf16["peak_flops"], rel=1e-4)   # 1978.9 vs 989.4
    assert fp8["bytes"] == bf16["bytes"] / 2 and fp8["intensity"] == 2 * bf16["intensity"]


def test_resolved_inputs_echoed(cli):
    doc = cli("roofline", "-g", "a100", "--op", "attention", "--seq", "32k", "--json").json()
    assert doc["inputs"]["seq"] == 32000 and doc["inputs"]["tile"] == 128 and doc["inputs"]["head_dim"] == 128


def test_attention_from_a_model(cli):
    doc = cli("roofline", "-g", "a100", "--op", "attention", "-m", "llama-3.1-8b", "--seq", "8k", "--json").json()
    assert doc["inputs"]["heads"] == 32 and doc["inputs"]["head_dim"] == 128


def test_sweep_rows_and_decode_sweep(cli):
    doc = cli("roofline", "-g", "a100", "-m", "llama-2-7b", "--batch", "1..512x2", "--seq", "128", "--json").json()
    rows = doc["rows"]
    assert [r["batch"] for r in rows] == [2**i for i in range(10)]
    mem = [r["t_mem_seconds"] for r in rows]
    math = [r["t_math_seconds"] for r in rows]
    assert mem == sorted(mem) and math == sorted(math)
    assert len({r["crossover_batch"] for r in rows}) == 1 and len({r["max_batch"] for r in rows}) == 1
    assert [r["fits"] for r in rows] == [r["batch"] <= rows[0]["max_batch"] for r in rows]


def test_phase_prefill_main(cli):
    r = results(cli("roofline", "-g", "a100", "-m", "gpt2", "--phase", "prefill", "--seq", "1024", "--json"))
    assert r["bound"] == "compute" and r["decode_bound"] == "memory"
    assert r["intensity"] > r["decode_intensity"]


def test_chart_under_table_by_default(cli):
    run = cli("roofline", "-g", "a100", "--op", "matmul", "--m", "1", "--k", "4096", "--n", "4096", "-o", "table")
    assert run.code == 0
    assert "roof" in run.stdout and "ceilings" in run.stdout and "ridge 153 FLOP/B" in run.stdout
    assert "matmul" in run.stdout
    assert "arithmetic intensity (FLOP/byte)" in run.stdout
    quiet = cli("roofline", "-g", "a100", "--op", "matmul", "--m", "1", "--k", "4096", "--n", "4096", "-o", "table",
                "--no-chart")
    assert "ridge 153 FLOP/B" not in quiet.stdout


def test_no_chart_in_machine_formats(cli):
    for fmt in ("tsv", "csv", "json", "md"):
        run = cli("roofline", "-g", "a100", "--intensity", "10", "-o", fmt)
        assert run.code == 0 and "ridge 153 FLOP/B" not in run.stdout, fmt


@pytest.mark.slow   # loads matplotlib
@pytest.mark.parametrize("ext", ["png", "svg"])
def test_plot_file(cli, tmp_path, ext):
    path = tmp_path / f"roof.{ext}"
    run = cli("roofline", "-g", "a100", "-m", "llama-2-7b", "--plot", path, "--json")
    assert run.code == 0 and path.stat().st_size > 5000
    assert run.json()["notes"][-1] == f"chart written to {path}"
    sweep = tmp_path / f"sweep.{ext}"
    assert cli("roofline", "-g", "a100", "-m", "gpt2-xl", "--seq", "1", "--batch", "1..1024x2", "--plot", sweep,
               "--json").code == 0
    assert sweep.stat().st_size > 5000


def test_explain(cli):
    run = cli("roofline", "-g", "a100", "--op", "matmul", "--m", "2", "--k", "3", "--n", "4", "-o", "tsv", "--explain")
    assert "flops = 2·M·K·N" not in run.stdout  # the matmul FLOPs are put, the placement is explained
    assert "intensity = F/Q" in run.stdout and "ridge_intensity = peak/bw" in run.stdout


@pytest.mark.parametrize("args,message", [
    (["--op", "conv"], "--op must be one of"),
    (["--op", "matmul", "--m", "4", "--k", "4"], "--n is missing"),
    (["--intensity", "10", "--op", "softmax", "--n", "4"], "give one operation"),
    (["--intensity", "-3"], "--intensity must be greater than 0"),
    (["--intensity", "ten"], "can't read 'ten'"),
    (["--op", "softmax"], "needs --n"),
    (["--k", "4"], "--k applies to --op matmul"),
    (["--dtype", "int2"], "--dtype must be one of"),
    (["--plot", "out.jpg"], "must end in .png, .svg or .pdf"),
    (["-m", "llama-9"], "llama"),
    (["-m", "gpt2", "--weight-dtype", "int3"], "--weight-dtype must be one of"),
    (["-m", "gpt2", "--batch", "0"], "--batch must be greater than 0"),
])
def test_bad_input_exit_2(cli, args, message):
    run = cli("roofline", "-g", "a100", *args)
    assert run.code == 2, run.stdout
    assert message in run.stderr and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_gpu_required_and_dtype_missing(cli):
    run = cli("roofline")
    assert run.code == 2 and "no GPU given" in run.stderr
    run = cli("roofline", "-g", "h100-sxm", "--dtype", "int4")
    assert run.code == 2 and "h100-sxm has no int4 peak" in run.stderr
    run = cli("roofline", "-g", "h10O")
    assert run.code == 2 and "h100" in run.stderr
