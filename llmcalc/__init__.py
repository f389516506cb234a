"""llmcalc: count every FLOP, trace every byte of a transformer."""

__version__ = "0.2.0"
