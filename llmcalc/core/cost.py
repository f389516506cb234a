"""Dollars, energy and emissions of GPU time.

* Training: cost_usd = GPU-hours × price per GPU-hour (the rental model of llm-analysis's
  ``--cost_per_gpu_hour``, and of every cloud price list).
* Energy (the accounting of Patterson et al. 2021, arXiv:2104.10350, eq. 1; Luccioni et al. 2022,
  arXiv:2211.02001 sec. 4): energy_kwh = GPU-hours × board power (W) ÷ 1000 × PUE, every GPU drawing its board
  power for the whole run; co2_kg = energy_kwh × grid intensity (kg CO₂eq per kWh). Published tables that
  quote "power" already adjusted for the data centre (Llama 2, arXiv:2307.09288 Table 2) are reproduced with
  PUE 1.
* Serving: the replica's GPU time over a run is split between prompt and output tokens in proportion to the
  GPU time each kind of work took (core/loadsim.py divides every step's time by its token shares; a single
  batch gives prefill to the prompt and the decode steps to the output); each share ÷ its tokens × 10⁶ ×
  the price of the replica's GPUs per second gives cost_per_million_input_tokens and
  cost_per_million_output_tokens, so cost_out × output tokens/s = GPUs × price ÷ 3600 × 10⁶ × decode share.

Defaults: PUE 1.1 (Google's fleet-wide trailing-twelve-month PUE, 1.10 in its 2023 Environmental Report;
the Uptime Institute's 2023 survey puts the industry average at 1.58); grid intensity 0.475 kg CO₂eq/kWh (the
world average of 2018, IEA Global Energy & CO2 Status Report 2019).
"""

from __future__ import annotations

from llmcalc.core.formula import Formula, Results

DEFAULT_PUE = 1.1
DEFAULT_GRID_INTENSITY = 0.475      # kg CO2eq per kWh
PUE_SOURCE = "Google 2023 Environmental Report: fleet PUE 1.10; industry average 1.58 (Uptime Institute 2023)"
GRID_SOURCE = "world average 475 g CO2/kWh, IEA Global Energy & CO2 Status Report 2019"

TRAIN_COST = Formula("gpu_hours * price")
ENERGY_KWH = Formula("gpu_hours * watts / 1000 * pue")
CO2_KG = Formula("energy * intensity")
PER_MILLION = Formula("gpus * price / 3600 * seconds / tokens * 1e6")
SHARE = Formula("part / (part + other)")


def gpu_price(gpu, override=None) -> tuple[float | None, str]:
    """(USD per GPU-hour, a note saying which price was used): ``override`` (--gpu-cost), else the preset's
    dated reference price, else none."""
    if override is not None:
        return float(override), f"GPU price {override:g} USD per GPU-hour (--gpu-cost)"
    price = getattr(gpu, "price_usd_per_hour", None) if gpu is not None else None
    if price:
        src, date = getattr(gpu, "price_source", ""), getattr(gpu, "price_date", "")
        where = ", ".join(x for x in (src, date) if x)
        return float(price), (f"GPU price {price:g} USD per GPU-hour from the {gpu.name} preset"
                              + (f" ({where})" if where else "") + "; set --gpu-cost")
    name = gpu.name if gpu is not None else "no GPU"
    return None, f"no price for {name}: give --gpu-cost USD per GPU-hour for the cost keys"


def board_power(gpu, override=None) -> tuple[float | None, str | None]:
    """(board power in W, a note when it is missing)."""
    if override is not None:
        return float(override), None
    watts = getattr(gpu, "board_power_watts", 0.0) if gpu is not None else 0.0
    if watts:
        return float(watts), None
    name = gpu.name if gpu is not None else "no GPU"
    return None, f"no board power for {name}: give --gpu-power W for energy_kwh and co2_kg"


def training(r: Results, gpu_hours, *, price=None, watts=None, pue=DEFAULT_PUE,
             intensity=DEFAULT_GRID_INTENSITY) -> Results:
    """Adds cost_usd, energy_kwh and co2_kg for ``gpu_hours`` (null where it, the price or the power is unknown)."""
    if gpu_hours is None:
        price = watts = None
    if price is None:
        r.put("cost_usd", None, "usd", "cost of the run (no price)")
    else:
        r.calc("cost_usd", TRAIN_COST, "usd", "cost of the run: GPU-hours × price", gpu_hours=gpu_hours, price=price)
    if watts is None:
        r.put("energy_kwh", None, "kWh", "energy (no board power)")
        r.put("co2_kg", None, "kg", "emissions (no board power)")
    else:
        e = r.calc("energy_kwh", ENERGY_KWH, "kWh", "energy: GPU-hours × board power × PUE", gpu_hours=gpu_hours,
                   watts=watts, pue=pue)
        r.calc("co2_kg", CO2_KG, "kg", "emissions: energy × grid intensity (kg CO₂eq)", energy=e, intensity=intensity)
    return r


def serving(r: Results, *, gpus, price, wall_seconds, prefill_busy, decode_busy, input_tokens,
            output_tokens) -> Results:
    """Adds cost_per_million_input_tokens and cost_per_million_output_tokens: the wall time of ``gpus`` GPUs
    split by the busy GPU time of prefill and decode (all None without a price)."""
    if price is None or wall_seconds is None:
        r.put("cost_per_million_input_tokens", None, "usd", "cost per million prompt tokens (no price)")
        r.put("cost_per_million_output_tokens", None, "usd", "cost per million generated tokens (no price)")
        return r
    share_in = SHARE(part=prefill_busy, other=decode_busy)
    r.calc("cost_per_million_input_tokens", PER_MILLION, "usd",
           "cost per million prompt tokens (prefill's share of the GPU time)", gpus=gpus, price=price,
           seconds=wall_seconds * share_in, tokens=input_tokens)
    r.calc("cost_per_million_output_tokens", PER_MILLION, "usd",
           "cost per million generated tokens (decode's share of the GPU time)", gpus=gpus, price=price,
           seconds=wall_seconds * (1 - share_in), tokens=output_tokens)
    return r
