"""`llmcalc explore` driven headless with Textual's pilot: every screen shows what the CLI's --json says for
the same inputs, its --explain text for the chosen result, and the command line that reproduces it."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow   # Textual's pilot: ~30 s in all; the quick loop leaves it to CI

pytest.importorskip("textual")

from llmcalc.tui import engine  # noqa: E402
from llmcalc.tui.app import ExplorerApp  # noqa: E402
from llmcalc.units import fmt_value  # noqa: E402

SCREENS = [s.key for s in engine.simulations()]
SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZE = (120, 42)


def drive(keys: list[str], check, app: ExplorerApp | None = None, size=SIZE):
    """Start the app headless, press ``keys``, then call ``check(app)`` while it runs."""
    app = app or ExplorerApp()

    async def go():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            for key in keys:
                await pilot.press(key)
            await pilot.pause()
            return check(app)

    return asyncio.run(go())


def command_line(app: ExplorerApp) -> str:
    text = str(app.query_one("#command").render())
    assert text.startswith("$ llmcalc "), text
    return text[2:]


def cli(line: str, *extra: str) -> subprocess.CompletedProcess:
    args = shlex.split(line)[1:]
    proc = subprocess.run([sys.executable, "-m", "llmcalc", *args, *extra], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert proc.returncode == 0, proc.stderr
    return proc


def displayed(app: ExplorerApp) -> dict[str, str]:
    table = app.query_one("#results")
    return {str(table.get_row_at(i)[1]): str(table.get_row_at(i)[0]) for i in range(table.row_count)}


# The key presses for each screen: the first parameter up twice, the second up once, and what must follow.
MOVES = {
    "bound": (["right", "right", "down", "right"], ["--batch 32", "--seq 2048"]),
    "operator": (["right", "right", "down", "right"], ["--op attention", "--batch 2"]),
    "train-mem": (["right", "right", "down", "right"], ["--batch 4", "--seq 8192"]),
    "kv": (["right", "right", "down", "right"], ["--batch 4", "--seq 16384"]),
    "specdec": (["minus", "left", "down", "plus"], ["--alpha 0.7", "--k 5"]),  # -/+ as well as arrows
    "serve": (["right", "right", "down", "right"], ["--batch 4", "--prompt 2048"]),
}


@pytest.mark.parametrize("screen", SCREENS)
def test_each_screen_shows_what_the_cli_computes(screen):
    keys, expected = MOVES[screen]
    got = drive([str(SCREENS.index(screen) + 1), *keys],
                lambda app: (command_line(app), displayed(app), app.report, app.error, app.result.to_dict()))
    line, shown, report, error, ours = got
    assert not error
    for flag in expected:
        assert flag in line, (flag, line)
    doc = json.loads(cli(line, "--json").stdout)
    for key, text in shown.items():
        unit = report.results[key].unit
        if doc["results"][key] is None:  # JSON's null: does not apply (—) or no finite answer (∞, never crosses)
            assert text in ("—", "∞"), key
        else:
            assert text == fmt_value(doc["results"][key], unit), key
    assert ours == doc  # the API run behind the screen = the CLI's whole JSON document


@pytest.mark.parametrize("screen", ["bound", "train-mem", "specdec"])
def test_the_chosen_result_shows_the_cli_explain_text(screen):
    def check(app):
        table = app.query_one("#results")
        key = str(table.get_row_at(table.cursor_row)[1])
        return key, str(app.query_one("#explain").render()), command_line(app)

    key, text, line = drive([str(SCREENS.index(screen) + 1), "tab", "down", "down"], check)
    assert key == [s for s in engine.simulations() if s.key == screen][0].keys[2]
    ours = " ".join(part.strip() for part in text.splitlines() if not part.strip().startswith("("))
    ours = ours.split("   [")[0]  # a note in brackets, as the CLI's line ends
    lines = [ln.strip().split("   [")[0] for ln in cli(line, "--explain", "-o", "tsv").stdout.splitlines()]
    said = set(lines) | {a + " " + b for a, b in zip(lines, lines[1:])}  # "label:" then "key = formula = …"
    assert ours in said, (ours, [ln for ln in lines if key in ln])


def test_start_from_the_command_line_and_pick_a_gpu():
    def check(app):
        return command_line(app)

    line = drive([], check, ExplorerApp("llama-3.1-70b", "a100-80gb", "kv"))
    assert line.startswith("llmcalc kv -m llama-3.1-70b -g a100-80gb ")
    from llmcalc.presets import preset_files
    gpus = sorted(preset_files("gpus"))
    start = gpus.index("h100-sxm")
    line = drive(["g", "down", "enter"], check)
    assert f"-g {gpus[start + 1]} " in line
    line = drive(["m", "escape"], check)
    assert "-m llama-3.1-8b " in line  # escape keeps the model


def test_quit_returns_the_one_liner_and_help_opens_and_closes():
    def check(app):
        return app.screen_text()

    text = drive(["question_mark"], check)
    assert "left/right or -/+" in text and "q  quit" in text
    app = ExplorerApp()
    drive(["question_mark", "x", "5", "right", "q"], lambda a: None, app)
    assert app.return_value == "llmcalc specdec --alpha 0.85 --k 4 --cost-ratio 0.05"


def test_bad_input_is_one_line_not_a_crash():
    with pytest.raises(engine.InputError, match="h100"):
        engine.run(["kv", "-m", "gpt2", "-g", "h100-sxmm", "--seq", "1024"])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    for args, says in ((["-m", "no-such-model"], "model"), (["--screen", "nope"], "screen"),
                       (["-m", "gpt2,llama-2-7b"], "one model"),
                       (["-m", "gpt2"], "terminal")):  # piped, not a terminal: nothing to draw on
        proc = subprocess.run([sys.executable, "-m", "llmcalc", "explore", *args], capture_output=True, text=True,
                              timeout=60, env=env, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert says in proc.stderr and "Traceback" not in proc.stderr


def test_the_mouse_chooses_and_steps_a_parameter():
    app = ExplorerApp()

    async def go():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            panel = app.query_one("#params")
            line = panel.render().splitlines()[1]  # context
            # content starts inside the border (1 cell) and the padding (1 cell)
            await pilot.click("#params", offset=(2 + line.index(">", line.index("<")), 1 + 1))
            await pilot.pause()
            return panel.cursor, command_line(app)

    cursor, line = asyncio.run(go())
    assert cursor == 1 and "--seq 2048" in line


def test_an_input_the_command_refuses_is_shown_and_the_session_goes_on():
    def check(app):
        app.state.model = "no-such-model"
        app.recompute()
        refused = (app.error, str(app.query_one("#command").render()), app.query_one("#results").row_count)
        app.state.model = "gpt2"
        app.recompute()
        return refused, app.error, displayed(app)

    (error, command, rows), after, shown = drive(["4"], check)
    assert "no-such-model" in error and command.startswith("error: ") and rows == 0
    assert after == "" and shown["kv_bytes_per_token"] == "36 KiB"  # GPT-2: K and V, 12 layers × 768 × 2 B = 36,864 B


def test_a_narrow_terminal_gets_one_scrolling_column():
    def check(app):
        return app.screen.has_class("narrow"), app.query_one("#left").region, app.query_one("#right").region

    narrow, left, right = drive(["3", "tab"], check, size=(80, 24))
    assert narrow and left.width >= 76 and right.y >= left.bottom  # stacked, not squeezed side by side
    narrow, left, right = drive([], check)
    assert not narrow and right.x >= left.right


def test_without_textual_it_says_how_to_install():
    code = ("import sys; sys.modules['textual'] = None\n"
            "from llmcalc.cli import main\nraise SystemExit(main(['explore']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "pip install 'llmcalc[tui]'" in lines[0]


def test_no_color_is_readable():
    # every mark on the screen is a character (> chosen, O point, | limit, # bars), none is colour only
    env_before = os.environ.get("NO_COLOR")
    os.environ["NO_COLOR"] = "1"
    try:
        text = drive(["3"], lambda app: app.screen_text())
    finally:
        if env_before is None:
            del os.environ["NO_COLOR"]
        else:
            os.environ["NO_COLOR"] = env_before
    assert "> micro-batch" in text and "|" in text.split("usable GPU memory")[0]


@pytest.mark.parametrize("screen", SCREENS)
def test_snapshot(screen):
    """The stored screenshot's text equals this render (LLMCALC_UPDATE_SNAPSHOTS=1 rewrites them)."""
    def check(app):
        return app.screen_text(), app.export_screenshot(title=f"llmcalc explore: {screen}")

    text, svg = drive([str(SCREENS.index(screen) + 1)], check)
    text = "\n".join(line.rstrip() for line in text.splitlines()).rstrip() + "\n"
    txt, image = SNAPSHOTS / f"explore-{screen}.txt", SNAPSHOTS / f"explore-{screen}.svg"
    if os.environ.get("LLMCALC_UPDATE_SNAPSHOTS"):
        txt.write_text(text, encoding="utf-8")
        image.write_text(svg, encoding="utf-8")
    assert image.exists()
    assert text == txt.read_text(encoding="utf-8")


def test_each_keystroke_updates_quickly():
    """Loose bound (the benchmark, benchmarks/explore.py, measures the 50 ms target): run + redraw."""
    def check(app):
        return app.last_update_seconds

    for i, screen in enumerate(SCREENS):
        times = [drive([str(i + 1), "right", "right", "right"], check)]
        assert min(times) < 0.5, screen
