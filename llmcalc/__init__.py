"""llmcalc: count every FLOP, trace every byte of a transformer.

The Python API (docs/api.md): ``llmcalc.flops``, ``train_mem``, ``kv``, ``roofline``, ``serve``, ``specdec`` and
``parallel`` take the CLI's long flags as keyword arguments and return a ``Result``; ``llmcalc.run(command,
**flags)`` runs any of them by name. Bad input raises ``llmcalc.InputError`` (a ValueError). Importing the
package loads only the standard library: each function imports its command when called.
"""

__version__ = "0.2.0"

from llmcalc.errors import InputError

__all__ = ["InputError", "Result", "flops", "kv", "parallel", "roofline", "run", "serve", "specdec", "train_mem",
           "__version__"]

_API = frozenset(__all__) - {"InputError", "__version__"}


def __getattr__(name: str):
    """The API's functions, loaded from llmcalc.api on first use (``import llmcalc`` stays cheap)."""
    if name in _API:
        from llmcalc import api
        return getattr(api, name)
    raise AttributeError(f"module 'llmcalc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)
