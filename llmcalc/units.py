"""Reading numbers the way people type them, and writing them the way people read them.

Counts: ``32k`` = 32,000, ``7B`` = 7e9, ``2T``, ``1.5e3``, ``1_000``; binary ``32Ki`` = 32,768 (numfmt's
``--from=auto`` convention: K/M/G/T are powers of 1000, Ki/Mi/Gi/Ti powers of 1024; "B" means billion
only for counts). Sizes: ``80GB`` = 80e9 bytes, ``80GiB`` = 80·2³⁰. Rates: ``3.35TB/s``, ``989TFLOPS``.
Sweeps: ``1,8,64``, ``1..256x2`` (powers of two), ``1k..32k+1k`` (a step).
"""

from __future__ import annotations

import math
import re

from llmcalc.errors import InputError

_DECIMAL = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12, "p": 1e15}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40, "pi": 2**50}
_NUMBER = r"[+-]?(?:\d[\d_]*\.?\d*|\.\d+)(?:e[+-]?\d+)?"
_COUNT_RE = re.compile(rf"^({_NUMBER})\s*([a-z]{{0,2}})$", re.IGNORECASE)
_BYTES_RE = re.compile(rf"^({_NUMBER})\s*([kmgtp]i?)?(b|bytes?)?$", re.IGNORECASE)

MAX_SWEEP_POINTS = 10_000_000


def _as_number(value: float) -> int | float:
    """Integral values become exact ints (parameter counts must stay exact)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 2**63:
        return int(value)
    return value


def _multiplier(suffix: str, what: str, text: str) -> float:
    s = suffix.lower()
    if s in _BINARY:
        return _BINARY[s]
    if s in _DECIMAL:
        return _DECIMAL[s]
    raise InputError(f"can't read {text!r} as {what}: unknown suffix {suffix!r}; "
                     "use k, M, B/G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024)")


def parse_count(text: str, what: str = "a number") -> int | float:
    """``32k`` -> 32000, ``32Ki`` -> 32768, ``7B`` -> 7000000000, ``0.5`` -> 0.5."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return _finite(float(text), text, what) if isinstance(text, float) else text
    raw = str(text).strip()
    m = _COUNT_RE.match(raw)
    if not m:
        raise InputError(f"can't read {raw!r} as {what}; try e.g. 32k, 7B, 1.5e3, 32Ki")
    number = float(m.group(1).replace("_", ""))
    value = _finite(number * _multiplier(m.group(2), what, raw), raw, what)
    return _as_number(value)


def parse_bytes(text: str, what: str = "a size") -> int | float:
    """``80GB`` -> 80e9, ``80GiB`` -> 85899345920, ``512`` -> 512 bytes."""
    raw = str(text).strip()
    m = _BYTES_RE.match(raw)
    if not m:
        raise InputError(f"can't read {raw!r} as {what}; try e.g. 80GB, 80GiB, 512MiB")
    number = float(m.group(1).replace("_", ""))
    value = number * _multiplier(m.group(2) or "", what, raw)
    return _as_number(_finite(value, raw, what))


# Units of each kind of rate. Bits and bytes differ by case, as in SI/IEC usage and network datasheets:
# ``B`` is a byte, ``b`` a bit (``400Gb/s`` = ``400Gbps`` = ``400Gbit/s`` = 50 GB/s; ``3.35TB/s`` bytes).
_BANDWIDTH_UNITS = {"B/s": 1.0, "Bps": 1.0, "byte/s": 1.0, "bytes/s": 1.0, "b/s": 0.125, "bps": 0.125,
                    "bit/s": 0.125, "bits/s": 0.125, "": 1.0}
_FLOP_RATE_UNITS = {"flops": 1.0, "flop/s": 1.0, "flops/s": 1.0, "ops": 1.0, "op/s": 1.0, "ops/s": 1.0, "": 1.0}
_TIME_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9,
               "min": 60.0, "h": 3600.0}
_NUMBER_THEN_UNIT = re.compile(rf"^({_NUMBER})\s*(\S*)$", re.IGNORECASE)
_PREFIXED = re.compile(r"^([kKmMgGtTpP]i?)?(.*)$")


def _kind_of(unit: str) -> str | None:
    """What a unit text measures, for the message when a flag is given the wrong kind."""
    u = unit.lower()
    if "flop" in u or u.endswith(("ops", "op/s", "ops/s")):
        return "a compute rate (FLOP/s)"
    if u.endswith(("b/s", "bps", "byte/s", "bytes/s", "bit/s", "bits/s")):
        return "a bandwidth (bytes/s)"
    if u.endswith(("ib", "b", "byte", "bytes")):
        return "a size (bytes)"
    if u in _TIME_UNITS:
        return "a time"
    return None


def _with_unit(text, what: str, units: dict[str, float], kind: str, example: str, case_sensitive: bool,
               prefixes: bool = True) -> float:
    raw = str(text).strip()
    m = _NUMBER_THEN_UNIT.match(raw)
    if not m:
        raise InputError(f"can't read {raw!r} as {what}; try e.g. {example}")
    rest = m.group(2)
    table = units if case_sensitive else {k.lower(): v for k, v in units.items()}
    readings = [("", rest)]  # "ms" is a time unit, "Ms" is not
    if prefixes and _PREFIXED.match(rest).group(1):
        readings.insert(0, _PREFIXED.match(rest).groups())
    for prefix, unit in readings:
        key = unit if case_sensitive else unit.lower()
        if key in table:
            if prefix and prefix[0] in "mgtp" and unit in ("b/s", "bps"):
                raise InputError(f"{raw!r} for {what} is ambiguous: write {prefix.upper()}B/s for bytes or "
                                 f"{prefix.upper()}b/s (bits, ÷ 8)")
            number = float(m.group(1).replace("_", ""))
            scale = _multiplier(prefix, what, raw) if prefix else 1
            factor = table[key]  # divide by 10^6 rather than multiply by 1e-6: 20us is exactly 2e-05
            value = number * scale * factor if factor >= 1 else number * scale / round(1 / factor)
            return _finite(value, raw, what)
    other = _kind_of(rest)
    if other and other != kind:
        raise InputError(f"{what} takes {kind}, but {raw!r} is {other}; try e.g. {example}")
    raise InputError(f"can't read {raw!r} as {what}: unknown unit {rest!r}; try e.g. {example}")


def parse_bandwidth(text: str, what: str = "a bandwidth") -> float:
    """Bytes/s: ``3.35TB/s`` -> 3.35e12; bits: ``400Gb/s`` = ``400Gbps`` = ``400Gbit/s`` -> 5e10 (÷ 8); a bare
    number (``2e12``) is bytes/s. A FLOP rate or a size is refused."""
    return _with_unit(text, what, _BANDWIDTH_UNITS, "a bandwidth (bytes/s)", "3.35TB/s, 400Gb/s, 2e12",
                      case_sensitive=True)


def parse_flop_rate(text: str, what: str = "a FLOP rate") -> float:
    """FLOP/s: ``989TFLOPS`` -> 9.89e14, ``989 TFLOP/s``, ``2POPS`` (int ops); a bare number is FLOP/s.
    A bandwidth or a size is refused."""
    return _with_unit(text, what, _FLOP_RATE_UNITS, "a compute rate (FLOP/s)", "989TFLOPS, 1.98e15",
                      case_sensitive=False)


def parse_time(text: str, what: str = "a time") -> float:
    """Seconds: ``30ms`` -> 0.03, ``20us``/``20µs`` -> 2e-5, ``0.5``/``0.5s`` -> 0.5, ``2min``, ``1h``."""
    return _with_unit(text, what, _TIME_UNITS, "a time", "30ms, 20us, 0.5s", case_sensitive=True, prefixes=False)


parse_size = parse_bytes  # the name by kind: count, size, bandwidth, FLOP rate, time
parse_seconds = parse_time


def parse_rate(text: str, what: str = "a rate") -> float:
    """A bandwidth or a FLOP rate, whichever its unit says (kept for callers that take either); prefer
    ``parse_bandwidth`` or ``parse_flop_rate``, which refuse the other kind."""
    m = _NUMBER_THEN_UNIT.match(str(text).strip())
    if m and _kind_of(m.group(2)) == "a compute rate (FLOP/s)":
        return parse_flop_rate(text, what)
    return parse_bandwidth(text, what)


_QUANTITY_RE = re.compile(
    rf"^({_NUMBER})\s*([kmgtp]i?)?\s*(b/s|bytes?/s|flops?(?:/s)?|flop/s|ops?(?:/s)?|b|bytes?|w|watts?)?$",
    re.IGNORECASE)
QUANTITY_KINDS = {"byte": "a size", "byte/s": "a bandwidth", "flop/s": "a compute rate", "W": "a power"}
_QUANTITY_EXAMPLES = {"byte": "80GiB, 48GB", "byte/s": "3.35TB/s, 864GB/s", "flop/s": "989TFLOPS, 624TOPS",
                      "W": "700W, 1.2kW"}


def _unit_kind(unit: str) -> str:
    u = unit.lower()
    if u.endswith("/s") and u.startswith("b"):
        return "byte/s"
    if u.startswith(("flop", "op")):
        return "flop/s"
    if u.startswith("b"):
        return "byte"
    return "W"


_RATE_PARSERS = {"byte/s": parse_bandwidth, "flop/s": parse_flop_rate}


def parse_quantity(text, kind: str, what: str = "a value") -> int | float:
    """A number with an optional SI/binary prefix and a unit that must be of ``kind`` (byte, byte/s, flop/s, W).

    ``48GiB`` and ``80e9`` are sizes, ``864GB/s`` a bandwidth, ``989TFLOPS`` a compute rate, ``700W`` a power;
    a bare number (``3.35T``, ``300e9``) is taken in the base unit. A unit of another kind is an error that
    names both kinds (a bandwidth given where a size belongs is a slip worth catching).
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text
    if kind in _RATE_PARSERS:  # the command line's parsers: bits (Gb/s) are an eighth of bytes (GB/s)
        return _as_number(_RATE_PARSERS[kind](text, what))
    raw = str(text).strip()
    m = _QUANTITY_RE.match(raw)
    if not m:
        raise InputError(f"can't read {raw!r} as {what}, {QUANTITY_KINDS[kind]}; "
                         f"try e.g. {_QUANTITY_EXAMPLES[kind]}")
    unit = m.group(3)
    if unit and _unit_kind(unit) != kind:
        found = _unit_kind(unit)
        raise InputError(f"{what} is {QUANTITY_KINDS[kind]}, but {raw!r} is {QUANTITY_KINDS[found]}; "
                         f"write e.g. {_QUANTITY_EXAMPLES[kind]}")
    number = float(m.group(1).replace("_", ""))
    return _as_number(_finite(number * _multiplier(m.group(2) or "", what, raw), raw, what))


def _finite(value: float, text, what: str) -> float:
    if not math.isfinite(value):
        raise InputError(f"can't use {text!r} as {what}: it must be a finite number")
    return value


# ----------------------------------------------------------------------------------------------
# Sweeps


def is_sweep(text: str | None) -> bool:
    return text is not None and ("," in str(text) or ".." in str(text))


def parse_values(text: str, parse=parse_count, what: str = "a number") -> list:
    """One value, a comma list, or a range ``a..b`` with ``xN`` (geometric) or ``+N`` (arithmetic) step.

    A range without a step doubles (``1..256`` = ``1..256x2``). Returns a plain list (NumPy stays
    unloaded until a sweep is evaluated).
    """
    raw = str(text).strip()
    if "," in raw:
        parts = [p for p in raw.split(",")]
        if any(not p.strip() for p in parts):
            raise InputError(f"{what}: empty item in the comma list {raw!r}")
        values: list = []
        for p in parts:
            values.extend(parse_values(p, parse, what))
        return values
    if ".." not in raw:
        return [parse(raw, what)]
    m = re.match(r"^(.+?)\.\.(.+?)(?:([x*+])(.+))?$", raw)
    if not m:
        raise InputError(f"can't read range {raw!r} for {what}; try 1..256x2 or 1k..32k+1k")
    start, stop = parse(m.group(1), what), parse(m.group(2), what)
    op, step = m.group(3) or "x", parse(m.group(4) or "2", what)
    if stop < start:
        raise InputError(f"{what}: range {raw!r} has no points (its end is below its start)")
    values = []
    if op in "x*":
        if step <= 1 or start <= 0:
            raise InputError(f"{what}: a geometric range needs a start > 0 and a factor > 1, got {raw!r}")
        n = int(math.floor(math.log(stop / start) / math.log(step) + 1e-9)) + 1
        _check_points(n, raw, what)
        values = _points(start, step, n, geometric=True)
    else:
        if step <= 0:
            raise InputError(f"{what}: a stepped range needs a step > 0, got {raw!r}")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        _check_points(n, raw, what)
        values = _points(start, step, n, geometric=False)
    return values


def _points(start, step, n: int, geometric: bool):
    """The points of a range: a plain list, or for long ranges a NumPy array (built in one call)."""
    if n <= 4096:
        if geometric:
            return [_as_number(start * step**i) for i in range(n)]
        return [_as_number(start + step * i) for i in range(n)]
    import numpy as np
    i = np.arange(n, dtype=np.float64)
    return start * np.power(float(step), i) if geometric else start + step * i


def _check_points(n: int, raw: str, what: str) -> None:
    if n < 1:
        raise InputError(f"{what}: range {raw!r} has no points")
    if n > MAX_SWEEP_POINTS:
        raise InputError(f"{what}: range {raw!r} has {n:,} points; the limit is {MAX_SWEEP_POINTS:,}")


# ----------------------------------------------------------------------------------------------
# Formatting for people (tables); JSON never uses these.

_SI = ((1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_IEC = ((2**80, "Yi"), (2**70, "Zi"), (2**60, "Ei"), (2**50, "Pi"), (2**40, "Ti"), (2**30, "Gi"), (2**20, "Mi"),
        (2**10, "Ki"))


def _scaled(value: float, table, unit: str, digits: int = 3) -> str:
    a = abs(value)
    for factor, prefix in table:
        if a >= factor:
            return f"{_sig(value / factor, digits)} {prefix}{unit}"
    return f"{_sig(value, digits)} {unit}".rstrip()


def _sig(x: float, digits: int) -> str:
    """``digits`` significant figures, never in exponent form below 10⁶ (1000 MiB, not 1e+03 MiB)."""
    if abs(x) >= 10**digits and abs(x) < 1e6:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def fmt_flops(value: float) -> str:
    return _scaled(value, _SI, "FLOPs")


def fmt_bytes(value: float) -> str:
    return _scaled(value, _IEC, "B")


def fmt_seconds(value: float) -> str:
    a = abs(value)
    if a == 0:
        return "0 s"
    if a < 1e-3:
        return f"{value * 1e6:.3g} µs"
    if a < 1:
        return f"{value * 1e3:.3g} ms"
    if a < 3600:
        return f"{value:.3g} s"
    if a < 86400 * 3:
        return f"{value / 3600:.3g} h"
    return f"{value / 86400:.3g} days"


def fmt_count(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:.4g}"


def fmt_value(value, unit: str, compact: bool = False) -> str:
    """Human text for a value of the given unit kind (``compact``: for the cells of a sweep table)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "∞" if v > 0 else ("−∞" if v < 0 else "n/a")
    if unit == "flop":
        return fmt_flops(v)
    if unit == "byte":
        return fmt_bytes(v)
    if unit == "s":
        return fmt_seconds(v)
    if unit == "flop/s":
        return _scaled(v, _SI, "FLOP/s")
    if unit == "byte/s":
        return _scaled(v, _SI, "B/s")
    if unit == "token/s":
        return _scaled(v, _SI, "tok/s") if v >= 1e4 else f"{v:.4g} tok/s"
    if unit == "byte/element":
        return f"{v:.4g} B"
    if unit == "number":
        return f"{v:,.4g}"
    if unit == "flop/byte":
        return f"{v:.4g} FLOP/B"
    if unit == "req/s":
        return f"{v:.4g} req/s"
    if unit == "usd":
        return f"${v:,.2f}" if abs(v) >= 100 else f"${v:.4g}"
    if unit in ("kWh", "kg"):
        return (f"{v:,.0f} " if abs(v) >= 1e3 else f"{v:.4g} ") + unit
    if unit == "factor":
        return f"{v:,.0f}" if 1e4 <= abs(v) < 1e15 else f"{v:.4g}"
    if unit == "ratio":  # a 0-1 fraction, shown as a percentage
        return f"{v * 100:.3g}%"
    if unit == "percent":  # already 0-100
        return f"{v:.3g}%"
    if unit == "params" and compact:
        return _scaled(v, _SI, "").strip() if v >= 1e3 else fmt_count(v)
    if unit == "params":
        return f"{fmt_count(v)} ({_scaled(v, _SI, '').strip()})" if v >= 1e3 else fmt_count(v)
    if unit == "h":
        return f"{v:,.4g} h" if v < 1e6 else f"{v / 1e6:.4g}M h"
    if unit == "days":
        return f"{v:.4g} days"
    if unit == "W":
        return _scaled(v, _SI, "W")
    if unit == "usd/h":
        return f"${v:,.2f}/h"
    return fmt_count(v)
