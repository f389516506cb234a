"""Cost, energy and emissions (core/cost.py): the serving cost identity, and the published training tables
(the same figures are validation rows in tests/validation_cases.py, group "energy")."""

from __future__ import annotations

import pytest

from llmcalc.core import cost
from llmcalc.core import loadsim as ls
from llmcalc.core.formula import Results
from llmcalc.presets import load_gpu, load_model


def _co2_tonnes(gpu_hours, watts, intensity, pue=1.0):
    r = cost.training(Results(), gpu_hours, price=2.0, watts=watts, pue=pue, intensity=intensity)
    return r["co2_kg"].value / 1000, r["energy_kwh"].value, r["cost_usd"].value


def test_training_arithmetic():
    t, kwh, usd = _co2_tonnes(1000.0, 700.0, 0.5, pue=1.2)
    assert kwh == pytest.approx(1000 * 0.7 * 1.2)
    assert t == pytest.approx(kwh * 0.5 / 1000)
    assert usd == pytest.approx(2000.0)


def test_no_price_or_power_gives_nulls_and_a_note():
    r = cost.training(Results(), 10.0, price=None, watts=None)
    assert r["cost_usd"].value is None and r["energy_kwh"].value is None and r["co2_kg"].value is None
    price, note = cost.gpu_price(load_gpu("h100-sxm"))
    assert (price is None and "--gpu-cost" in note) or (price > 0 and "USD per GPU-hour" in note)
    assert cost.gpu_price(load_gpu("h100-sxm"), 2.5) == (2.5, "GPU price 2.5 USD per GPU-hour (--gpu-cost)")


# BLOOM (Luccioni, Viguier & Ligozat 2022, arXiv:2211.02001, Table 1 and sec. 4): 1,082,990 A100 GPU-hours at
# the 400 W TDP give 433,196 kWh of dynamic energy; at the French grid's 57 g/kWh, 24.69 t CO2eq.
def test_bloom_dynamic_energy_and_emissions():
    t, kwh, _ = _co2_tonnes(1_082_990, 400, 0.057)
    assert kwh == pytest.approx(433_196, abs=0.5)
    assert t == pytest.approx(24.69, abs=0.005)


# Llama 2 (arXiv:2307.09288 Table 2): GPU-hours, power (already adjusted for PUE), t CO2eq. Meta gives no grid
# intensity; the table implies 0.4235 kg/kWh in every row, which this reproduces to the printed digits.
LLAMA2 = [("7B", 184_320, 400, 31.22), ("13B", 368_640, 400, 62.44), ("34B", 1_038_336, 350, 153.90),
          ("70B", 1_720_320, 400, 291.42)]


@pytest.mark.parametrize("name,hours,watts,tonnes", LLAMA2)
def test_llama2_rows_share_one_grid_intensity(name, hours, watts, tonnes):
    t, _, _ = _co2_tonnes(hours, watts, 0.42346)
    assert t == pytest.approx(tonnes, rel=0.0005)


def test_llama2_total():
    assert sum(h for _, h, _, _ in LLAMA2) == 3_311_616
    total = sum(_co2_tonnes(h, w, 0.42346)[0] for _, h, w, _ in LLAMA2)
    assert total == pytest.approx(539.00, rel=0.0005)


@pytest.fixture(scope="module")
def run():
    eng = ls.build_engine(load_model("llama-3.1-8b"), load_gpu("h100-sxm"), tp=2)
    unit, rows = ls.unit_arrivals(400, seed=9, n_lengths=2)
    sim = eng.run(ls.workload(12.0, unit, rows, [300, 1500], [50, 400]))
    return sim


@pytest.mark.parametrize("price", [0.5, 2.99])
def test_serving_cost_identity(run, price):
    """cost_per_million_output_tokens × output tokens/s = GPUs × price/3600 × 10⁶ × decode share, and the
    two shares add up to the whole bill."""
    r = cost.serving(Results(), gpus=2, price=price, wall_seconds=run.end_seconds, prefill_busy=run.prefill_seconds,
                     decode_busy=run.decode_seconds, input_tokens=run.input_tokens, output_tokens=run.output_tokens)
    out_tps = run.output_tokens / run.end_seconds
    in_tps = run.input_tokens / run.end_seconds
    share_out = run.decode_seconds / (run.prefill_seconds + run.decode_seconds)
    bill = 2 * price / 3600 * 1e6
    assert r["cost_per_million_output_tokens"].value * out_tps == pytest.approx(bill * share_out, rel=1e-12)
    total = r["cost_per_million_output_tokens"].value * out_tps + r["cost_per_million_input_tokens"].value * in_tps
    assert total == pytest.approx(bill, rel=1e-12)
    assert run.prefill_seconds + run.decode_seconds == pytest.approx(run.busy_seconds, rel=1e-12)


def test_flops_cli_cost_energy_and_stated_defaults(cli):
    doc = cli("flops", "-m", "llama-2-7b", "--seq", "4096", "--tokens", "2T", "-g", "a100-80gb-sxm", "--gpus", "1024",
              "--gpu-cost", "1.5", "--gpu-power", "400", "--json").json()
    r, i = doc["results"], doc["inputs"]
    assert r["cost_usd"] == pytest.approx(r["gpu_hours"] * 1.5)
    assert r["energy_kwh"] == pytest.approx(r["gpu_hours"] * 0.4 * cost.DEFAULT_PUE)
    assert r["co2_kg"] == pytest.approx(r["energy_kwh"] * cost.DEFAULT_GRID_INTENSITY)
    assert i["pue"] == cost.DEFAULT_PUE and i["grid_intensity"] == cost.DEFAULT_GRID_INTENSITY
    assert any("PUE 1.1" in n for n in doc["notes"]) and any("1.5 USD per GPU-hour" in n for n in doc["notes"])


def test_serve_cli_cost_identity_single_batch(cli):
    r = cli("serve", "-m", "llama-3.1-8b", "-g", "h100-sxm", "--tp", "2", "--batch", "32", "--prompt", "1000",
            "--gen", "200", "--gpu-cost", "2", "--json").json()["results"]
    out_tps = 32 * 200 / r["e2e_seconds"]
    share_out = (r["e2e_seconds"] - r["prefill_seconds"]) / r["e2e_seconds"]
    assert r["cost_per_million_output_tokens"] * out_tps == pytest.approx(2 * 2 / 3600 * 1e6 * share_out, rel=1e-9)


@pytest.mark.parametrize("flag", ["--gpu-cost", "--pue", "--grid-intensity", "--gpu-power"])
def test_bad_cost_flags(cli, flag):
    run = cli("flops", "-m", "gpt2", "--tokens", "1B", "-g", "h100-sxm", flag, "0")
    assert run.code == 2 and flag in run.stderr and len(run.stderr.strip().splitlines()) == 1
