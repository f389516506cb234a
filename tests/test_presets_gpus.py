"""GPU presets: board power everywhere, dense (not sparse) peaks checked against the datasheets' own figures,
Apple unified memory, node networking, reference prices, and preset YAML that takes the command line's units."""

from __future__ import annotations

import datetime
import re

import pytest

from llmcalc.errors import InputError
from llmcalc.presets import builtin_dir, load_gpu
from llmcalc.spec import gpu_from_mapping

GPUS = [load_gpu(str(p)) for p in sorted((builtin_dir() / "gpus").glob("*.yaml"))]  # built-in only, never the user's
IDS = [g.name for g in GPUS]


@pytest.mark.parametrize("gpu", GPUS, ids=IDS)
def test_every_gpu_has_board_power_and_a_source(gpu):
    assert 10 <= gpu.board_power_watts <= 3000, gpu.name
    assert gpu.source and gpu.vendor


@pytest.mark.parametrize("gpu", [g for g in GPUS if g.vendor in ("nvidia", "amd")], ids=lambda g: g.name)
def test_nvidia_and_amd_presets_give_sm_count_l2_and_sram(gpu):
    # Issue 14's flash-attention and GEMM-efficiency models read these.
    assert gpu.sm_count > 0 and gpu.l2_bytes >= 2**20 and gpu.sram_bytes_per_sm >= 32 * 2**10, gpu.name


# Datasheet figures WITH 2:4 sparsity (or, where a vendor gives no dense figure, the sparse total it gives);
# a dense preset peak is half of it. (name, dtype, sparse FLOP/s, where the figure is printed)
SPARSE = [
    ("h800", "bf16", 1979e12, "H800 datasheet, SXM"),
    ("h800", "fp8", 3958e12, "H800 datasheet, SXM"),
    ("gh200", "fp8", 3958e12, "GH200 datasheet"),
    ("gh200", "bf16", 1979e12, "GH200 datasheet"),
    ("gb200", "bf16", 360e15 / 72, "GB200 NVL72 datasheet, rack total / 72"),
    ("gb200", "fp8", 720e15 / 72, "GB200 NVL72 datasheet, rack total / 72"),
    ("a10", "bf16", 250e12, "A10 datasheet"),
    ("a40", "bf16", 299.4e12, "A40 datasheet, bf16 with fp32 accumulate"),
    ("l40", "bf16", 362.1e12, "L40 datasheet"),
    ("rtx-a6000", "bf16", 309.7e12, "RTX A6000 datasheet, tensor TFLOPS"),
    ("rtx-6000-ada", "fp8", 1457e12, "RTX 6000 Ada datasheet, AI TFLOPS"),
    ("rtx-5090", "bf16", 419e12, "RTX Blackwell whitepaper, fp16 with fp32 accumulate"),
    ("mi325x", "bf16", 2614.9e12, "MI325X data sheet, with structured sparsity"),
    ("mi355x", "fp8", 10.1e15, "MI355X data sheet, with structured sparsity"),
    ("h100-sxm", "bf16", 1979e12, "H100 datasheet, SXM"),
]


@pytest.mark.parametrize("name, dtype, sparse, where", SPARSE)
def test_peaks_are_dense_half_the_sparse_datasheet_figure(name, dtype, sparse, where):
    assert load_gpu(name).flops_per_s[dtype] == pytest.approx(sparse / 2, rel=0.01), where


@pytest.mark.parametrize("name, dtype, sms, mhz, flop_per_clk", [
    # GA102 dense fp16 tensor rate: 512 FLOP/clk/SM with fp32 accumulate on GeForce-class parts (A10G), 1024 on
    # professional parts (RTX A6000) -- GA102 whitepaper. CDNA 4: 8,192 fp8 FLOP/clk/CU (AMD at ISSCC).
    # Apple: 128 fp32 lanes x 2 (FMA) per GPU core.
    ("a10g", "fp16", 80, 1710, 512),
    ("rtx-a6000", "fp16", 84, 1800, 1024),
    ("mi355x", "fp8", 256, 2400, 8192),
    ("apple-m2-ultra", "fp16", 76, 1398, 256),
    ("apple-m3-max", "fp16", 40, 1398, 256),
    ("apple-m4-max", "fp16", 40, 1678, 256),
])
def test_derived_peaks_are_units_times_clock(name, dtype, sms, mhz, flop_per_clk):
    gpu = load_gpu(name)
    assert gpu.sm_count == sms
    assert gpu.flops_per_s[dtype] == pytest.approx(sms * mhz * 1e6 * flop_per_clk, rel=0.005)


def test_consumer_cards_use_the_fp32_accumulate_rate():
    # GeForce cards run fp16/bf16 with fp32 accumulate at half the fp16-accumulate rate, which the whitepapers'
    # appendix tables list separately: RTX 5090 419 (fp16 accumulate) vs 209.5; RTX 4090 330.3 vs 165.2.
    for name, fp16_accumulate in (("rtx-5090", 419e12), ("rtx-4090", 330.3e12)):
        assert load_gpu(name).flops_per_s["bf16"] == pytest.approx(fp16_accumulate / 2, rel=0.001)


@pytest.mark.parametrize("gpu", [g for g in GPUS if g.vendor == "apple"], ids=lambda g: g.name)
def test_apple_usable_memory_is_the_wired_share(gpu):
    assert gpu.unified_memory and gpu.memory_share == 0.75
    assert gpu.device_memory_bytes == 0.75 * gpu.memory_bytes
    assert gpu.flops_per_s["fp16"] == gpu.flops_per_s["fp32"]   # no matrix units: fp16 at the ALU rate


def test_half_dtype_is_fp16_where_the_chip_has_no_bf16():
    # Volta and Turing tensor cores do fp16 only (V100 and T4 whitepapers); every later chip lists bf16.
    assert load_gpu("t4").half_dtype == "fp16" and load_gpu("v100").half_dtype == "fp16"
    assert all(g.half_dtype == "bf16" for g in GPUS if g.name not in ("t4", "v100-sxm2-32gb")), "bf16 peak missing"


def test_discrete_gpus_use_all_their_memory():
    for gpu in GPUS:
        if gpu.vendor != "apple":
            assert not gpu.unified_memory and gpu.device_memory_bytes == gpu.memory_bytes, gpu.name


@pytest.mark.parametrize("gpu", [g for g in GPUS if g.nics_per_node], ids=lambda g: g.name)
def test_nics_add_up_to_the_per_gpu_network_share(gpu):
    # net_bytes_per_s_unidir is each GPU's share of the node's NICs.
    assert gpu.nics_per_node * gpu.nic_bytes_per_s_unidir == pytest.approx(
        gpu.net_bytes_per_s_unidir * gpu.gpus_per_node, rel=1e-9)


def test_dgx_nodes_have_one_400g_nic_per_gpu():
    # DGX H100 / DGX B200 user guides: 8x 400 Gb/s ConnectX-7, rail-optimised, one per GPU.
    for name in ("h100-sxm", "b200", "h200"):
        gpu = load_gpu(name)
        assert (gpu.nics_per_node, gpu.nic_bytes_per_s_unidir) == (8, 400e9 / 8)


@pytest.mark.parametrize("gpu", [g for g in GPUS if g.price_usd_per_hour], ids=lambda g: g.name)
def test_prices_are_dated_and_sourced(gpu):
    assert 0.05 <= gpu.price_usd_per_hour <= 50
    assert gpu.price_source and datetime.date.fromisoformat(gpu.price_date)


# ----------------------------------------------------------------------------------------------
# YAML units


def _gpu_yaml(tmp_path, **fields):
    text = "name: test-gpu\nsource: test\n" + "".join(f"{k}: {v}\n" for k, v in fields.items())
    path = tmp_path / "test-gpu.yaml"
    path.write_text(text)
    return path


def test_preset_yaml_takes_the_command_line_units(tmp_path):
    path = _gpu_yaml(tmp_path, memory_bytes="48GiB", hbm_bytes_per_s="864GB/s", board_power_watts="1.2kW",
                     l2_bytes="96MiB", sm_count="142", nic_bytes_per_s_unidir="50GB/s", nics_per_node=8,
                     flops_per_s="{bf16: 362.05TFLOPS, fp8: 0.733PFLOPS, int8: 733TOPS, fp32: 91.6e12}")
    gpu = load_gpu(str(path))
    assert gpu.memory_bytes == 48 * 2**30 and gpu.hbm_bytes_per_s == 864e9 and gpu.board_power_watts == 1200
    assert gpu.l2_bytes == 96 * 2**20 and gpu.sm_count == 142 and gpu.nic_bytes_per_s_unidir == 50e9
    assert gpu.flops_per_s == pytest.approx({"bf16": 362.05e12, "fp8": 733e12, "int8": 733e12, "fp32": 91.6e12})


@pytest.mark.parametrize("field, value, kinds", [
    ("memory_bytes", "864GB/s", ("a size", "a bandwidth")),
    ("hbm_bytes_per_s", "48GiB", ("a bandwidth", "a size")),
    ("hbm_bytes_per_s", "989TFLOPS", ("a bandwidth", "a compute rate")),
    ("board_power_watts", "80GB", ("a power", "a size")),
])
def test_a_unit_of_the_wrong_kind_names_file_and_field(tmp_path, field, value, kinds):
    fields = dict(memory_bytes="80GiB", hbm_bytes_per_s="3.35TB/s", flops_per_s="{bf16: 989TFLOPS}")
    fields[field] = value
    path = _gpu_yaml(tmp_path, **fields)
    with pytest.raises(InputError) as err:
        load_gpu(str(path))
    message = str(err.value)
    assert str(path) in message and f"'{field}'" in message and value in message
    assert all(k in message for k in kinds)


def test_wrong_unit_in_a_peak_names_the_dtype(tmp_path):
    path = _gpu_yaml(tmp_path, memory_bytes="80GiB", hbm_bytes_per_s="3.35TB/s", flops_per_s="{bf16: 3.35TB/s}")
    with pytest.raises(InputError, match=r"flops_per_s\.bf16.*compute rate"):
        load_gpu(str(path))


def test_wrong_unit_through_the_cli_is_one_line_exit_2(tmp_path, cli):
    path = _gpu_yaml(tmp_path, memory_bytes="864GB/s", hbm_bytes_per_s="3.35TB/s", flops_per_s="{bf16: 989TFLOPS}")
    run = cli("roofline", "-g", str(path), "--intensity", "10")
    assert run.code == 2 and run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and "memory_bytes" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("fields, words", [
    (dict(memory_share=1.5), "memory_share"),
    (dict(memory_share=0), "memory_share"),
    (dict(price_usd_per_hour=2.0), "price_source"),
    (dict(price_usd_per_hour=2.0, price_source="x", price_date="last week"), "price_date"),
    (dict(nics_per_node=8), "nic_bytes_per_s_unidir"),
])
def test_new_fields_are_validated(fields, words):
    base = dict(name="x", memory_bytes=80e9, hbm_bytes_per_s=2e12, flops_per_s={"bf16": 1e15})
    with pytest.raises(InputError, match=re.escape(words)):
        gpu_from_mapping({**base, **fields}, "x.yaml")


def test_old_presets_without_the_new_fields_still_load():
    gpu = gpu_from_mapping(dict(name="x", memory_bytes=80e9, hbm_bytes_per_s=2e12, flops_per_s={"bf16": 1e15}))
    assert (gpu.board_power_watts, gpu.price_usd_per_hour, gpu.nics_per_node, gpu.memory_share,
            gpu.unified_memory) == (0.0, 0.0, 0, 1.0, False)


def test_presets_show_and_list_print_the_new_fields(cli):
    shown = cli("presets", "show", "apple-m4-max", "--json").json()["results"]
    assert shown["board_power_watts"] == 140 and shown["memory_share"] == 0.75 and shown["unified_memory"] is True
    assert shown["device_memory_bytes"] == 0.75 * 128 * 2**30
    h100 = cli("presets", "show", "h100-sxm", "--json").json()["results"]
    assert h100["nics_per_node"] == 8 and h100["price_usd_per_hour"] > 0 and "2026" in h100["price_source"]
    rows = {r["name"]: r for r in cli("presets", "list", "gpus", "--json").json()["rows"]}
    assert rows["t4"]["board_power_watts"] == 70 and rows["gb200"]["gpus_per_node"] == 72
    assert all(r["board_power_watts"] for r in rows.values())


def test_serve_runs_on_a_gpu_without_bf16(cli):
    # T4 (Turing) has fp16 tensor cores only: serve takes its 16-bit peak from fp16 instead of failing on bf16.
    run = cli("serve", "-m", "llama-3.2-1b", "-g", "t4", "--batch", "1", "--prompt", "512", "--gen", "16", "--json")
    r = run.json()["results"]
    # prefill of 512 tokens at MFU x the 65 TFLOPS fp16 peak is at least 2 x params x tokens / peak
    assert r["prefill_seconds"] >= 2 * 1_235_814_400 * 512 / 65e12


def test_model_yaml_counts_take_the_command_line_suffixes(tmp_path):
    # Counts in a model preset read like the command line's: 128Ki = 131,072, 32k = 32,000.
    from llmcalc.presets import load_model
    path = tmp_path / "tiny.yaml"
    path.write_text("name: tiny\nlayers: 2\nhidden: 1Ki\nheads: 8\nffn: 4Ki\nvocab: 32k\nmax_seq: 128Ki\n")
    spec = load_model(str(path))
    assert (spec.hidden, spec.ffn, spec.vocab, spec.max_seq) == (1024, 4096, 32_000, 131_072)
