"""Test-only reference harness: measure FLOPs, parameters, KV-cache and saved-activation bytes of the real
Hugging Face / PyTorch models, to cross-check llmcalc's analytical numbers. See README.md in this folder."""
