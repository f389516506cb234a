"""`llmcalc explore`: the seeds' simulations in the terminal (optional extra ``llmcalc[tui]``, Textual).

``engine`` (no Textual) defines the simulations and runs each one through the CLI's own command code;
``app`` draws them. The plain CLI never imports this package.
"""
