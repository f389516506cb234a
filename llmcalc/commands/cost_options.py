"""The cost and energy flags (--gpu-cost, --gpu-power, --pue, --grid-intensity), declared once for flops,
parallel and serve, and the one place that turns them into notes and result keys (core/cost.py)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Optional

import typer

_option = partial(typer.Option, rich_help_panel="Cost and energy", show_default=False)
GpuCostOpt = Annotated[Optional[str], _option(
    "--gpu-cost", help="USD per GPU-hour (default: the GPU preset's dated reference price, if it has one).")]
GpuPowerOpt = Annotated[Optional[str], _option("--gpu-power", help="Board power per GPU in W (default: the GPU preset's).")]
PueOpt = Annotated[Optional[str], _option(
    "--pue", help="Data-centre power usage effectiveness (default 1.1, Google's fleet 2023).")]
GridOpt = Annotated[Optional[str], _option(
    "--grid-intensity", help="kg CO2eq per kWh (default 0.475, the world average, IEA 2019).")]


def _number(flag: str, text: str | None) -> float | None:
    from llmcalc.errors import InputError
    from llmcalc.units import parse_count
    if text is None:
        return None
    value = float(parse_count(text, flag))
    if not value > 0:
        raise InputError(f"{flag} must be a positive number; got {text!r}")
    return value


def resolve(gpu_spec, *, gpu_cost=None, gpu_power=None, pue=None, grid_intensity=None,
            notes: list[str] | None = None, energy: bool = True, inp=None) -> dict:
    """Price, power, PUE and grid intensity, with the defaults stated in ``notes`` and echoed as inputs."""
    from llmcalc.core import cost
    price, price_note = cost.gpu_price(gpu_spec, _number("--gpu-cost", gpu_cost))
    watts, watts_note = cost.board_power(gpu_spec, _number("--gpu-power", gpu_power))
    p = _number("--pue", pue)
    g = _number("--grid-intensity", grid_intensity)
    if notes is not None:
        notes.append(price_note)
        if energy:
            if watts_note:
                notes.append(watts_note)
            elif p is None or g is None:
                notes.append(f"energy at board power {watts:g} W × PUE {p or cost.DEFAULT_PUE:g} ({cost.PUE_SOURCE}); "
                             f"CO2 at {g or cost.DEFAULT_GRID_INTENSITY:g} kg/kWh ({cost.GRID_SOURCE}); "
                             "set --pue, --grid-intensity")
    c = dict(price=price, watts=watts, pue=cost.DEFAULT_PUE if p is None else p,
             intensity=cost.DEFAULT_GRID_INTENSITY if g is None else g)
    if inp is not None:
        inp.fixed("gpu_cost", price, unit="usd", label="USD per GPU-hour")
        if energy:
            inp.fixed("gpu_power", watts, unit="count", label="board power per GPU (W)")
            inp.fixed("pue", c["pue"], unit="factor", label="power usage effectiveness")
            inp.fixed("grid_intensity", c["intensity"], unit="count", label="kg CO2eq per kWh")
    return c


def training(r, gpu_hours, c: dict):
    """cost_usd, energy_kwh and co2_kg of a run of ``gpu_hours`` (null keys when unknown)."""
    from llmcalc.core import cost
    return cost.training(r, gpu_hours, **c)
