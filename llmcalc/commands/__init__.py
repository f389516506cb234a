"""Thin Typer commands: parse flags, call the core, hand the result to the renderer."""
