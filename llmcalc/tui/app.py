"""The Textual app of `llmcalc explore`: a parameter panel, the results with units, the focused result's
formula, and a text chart, for each simulation of ``engine``. Keyboard first; nothing relies on colour."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Header, OptionList, Static

from llmcalc.errors import InputError
from llmcalc.tui import engine

HELP = """llmcalc explore: keys

  1-6        simulation: 1 bound  2 operator  3 train-mem  4 kv  5 specdec  6 serve
  tab        move between the parameters and the results
  up/down    choose a parameter (or a result: its formula shows below)
  left/right or -/+   change the chosen parameter
  m / g      pick the model / the GPU from the presets
  c          show (and copy) the equivalent `llmcalc …` command line
  ?          this help        q  quit (the command line is printed on exit)

Every number is computed by the same code as the CLI command shown at the bottom.
Press any key to close."""


class ParamPanel(Widget, can_focus=True):
    """The simulation's parameters; `>` marks the chosen one, left/right (or -/+) step its value."""

    BINDINGS = [Binding("up", "move(-1)", "prev", show=False), Binding("down", "move(1)", "next", show=False),
                Binding("left,minus", "change(-1)", "−"), Binding("right,plus,equals_sign", "change(1)", "+")]
    DEFAULT_CSS = "ParamPanel { height: auto; border: round $primary; padding: 0 1; }"

    def __init__(self, state: engine.State, **kw) -> None:
        super().__init__(**kw)
        self.state = state
        self.cursor = 0

    def render(self) -> str:
        lines = []
        for i, p in enumerate(self.state.sim.params):
            mark = ">" if i == self.cursor else " "
            lines.append(f"{mark} {p.label:<18} < {p.value:>8} >   ({p.values[0]} … {p.values[-1]})")
        return "\n".join(lines)

    def on_click(self, event) -> None:
        """A click chooses a parameter; on its `<` or `>` it also steps the value."""
        offset = event.get_content_offset(self)
        if offset is None or not 0 <= offset.y < len(self.state.sim.params):
            return
        self.cursor = offset.y
        line = self.render().splitlines()[offset.y]
        left, right = line.index("<"), line.index(">", line.index("<"))
        if abs(offset.x - left) <= 1:
            self.action_change(-1)
        elif abs(offset.x - right) <= 1:
            self.action_change(1)
        self.refresh()

    def action_move(self, delta: int) -> None:
        self.cursor = (self.cursor + delta) % len(self.state.sim.params)
        self.refresh()

    def action_change(self, delta: int) -> None:
        if self.state.sim.params[self.cursor].step(delta):
            self.app.recompute()
        self.refresh()


class Picker(ModalScreen[str]):
    """A list of presets; enter picks one, escape keeps the current one."""

    BINDINGS = [Binding("escape", "dismiss_none", "back")]
    DEFAULT_CSS = ("Picker { align: center middle; } "
                   "Picker OptionList { width: 50; height: 80%; border: round $accent; }")

    def __init__(self, kind: str, current: str) -> None:
        super().__init__()
        from llmcalc.presets import preset_files
        self.names = sorted(preset_files(kind))
        self.kind, self.current = kind, current

    def compose(self) -> ComposeResult:
        options = OptionList(*self.names, id="picker")
        options.border_title = f"{self.kind} (enter picks, esc back)"
        yield options

    def on_mount(self) -> None:
        opts = self.query_one(OptionList)
        if self.current in self.names:
            opts.highlighted = self.names.index(self.current)
        opts.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.names[event.option_index])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class Help(ModalScreen[None]):
    DEFAULT_CSS = ("Help { align: center middle; } "
                   "Help Static { width: 90; height: auto; border: round $accent; padding: 1 2; }")

    def compose(self) -> ComposeResult:
        yield Static(HELP, markup=False)

    def on_key(self, event) -> None:
        event.stop()
        self.dismiss(None)


class ExplorerApp(App[str]):
    """`llmcalc explore`. Returns the last screen's equivalent command line."""

    TITLE = "llmcalc explore"
    CSS = """
    #main { layout: horizontal; }
    #left { width: 64; height: auto; }
    #right { height: auto; }
    .narrow #main { layout: vertical; overflow-y: auto; }
    .narrow #left { width: 100%; }
    #results { height: auto; max-height: 16; border: round $primary; }
    #explain { height: auto; border: round $secondary; padding: 0 1; }
    #chart { height: auto; border: round $secondary; padding: 0 1; }
    #command { height: auto; padding: 0 1; }
    """
    BINDINGS = [Binding("q", "quit_with_command", "quit"), Binding("question_mark", "help", "help"),
                Binding("c", "command", "command line"), Binding("m", "pick('models')", "model"),
                Binding("g", "pick('gpus')", "GPU")] + \
               [Binding(str(i + 1), f"switch({i})", name, show=False) for i, name in
                enumerate(("bound", "operator", "train-mem", "kv", "specdec", "serve"))]

    def __init__(self, model: str | None = None, gpu: str | None = None, screen: str | None = None) -> None:
        super().__init__()
        self.state = engine.State()
        if model:
            self.state.model = model
        if gpu:
            self.state.gpu = gpu
        if screen:
            keys = [s.key for s in self.state.sims]
            if screen not in keys:
                raise InputError(f"unknown explorer screen {screen!r}; choose one of {', '.join(keys)}")
            self.state.current = keys.index(screen)
        self.result = self.report = None  # the API's Result and the Report behind it
        self.error = ""
        self.shown_keys: list[str] | None = None  # the result rows the table holds
        self.last_update_seconds = 0.0  # the last recompute: run the command, redraw (benchmarks read it)

    def compose(self) -> ComposeResult:
        yield Header()
        with Container(id="main"):  # side by side; one column, scrolling, under 110 columns
            with Vertical(id="left"):
                yield ParamPanel(self.state, id="params")
                yield Static(id="chart", markup=False)
            with Vertical(id="right"):
                table = DataTable(id="results", cursor_type="row", zebra_stripes=False)
                table.add_columns("value", "key", "result")
                yield table
                yield Static(id="explain", markup=False)
        yield Static(id="command", markup=False)
        yield Footer()

    def on_resize(self, event) -> None:
        self.screen.set_class(event.size.width < 110, "narrow")

    def on_mount(self) -> None:
        self.screen.set_class(self.size.width < 110, "narrow")
        self.query_one("#results", DataTable).border_title = "results (up/down: formula)"
        self.query_one("#explain", Static).border_title = "formula of the chosen result (--explain)"
        self.query_one("#params", ParamPanel).focus()
        self.recompute()

    # -- computing and drawing

    def recompute(self) -> None:
        """Run the simulation's command for the current state and redraw everything from its report."""
        import time
        start = time.perf_counter()
        sim = self.state.sim
        used = ([f"model {self.state.model}"] if sim.uses_model else []) + \
            ([f"GPU {self.state.gpu}"] if sim.uses_gpu else [])
        self.sub_title = f"{self.state.current + 1}/6 {sim.title}" + (f" · {', '.join(used)}" if used else "")
        self.query_one("#params", ParamPanel).border_title = f"{self.state.current + 1} {sim.key}: parameters"
        self.query_one("#chart", Static).border_title = sim.title
        try:
            self.result = engine.run(self.state.argv())
            self.report = engine.report_of(self.result)
            chart = engine.chart(self.state, self.report)
            self.error = ""
        except InputError as exc:
            self.report, chart, self.error = None, "", str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug must not close the session; it is shown, not hidden
            self.report, chart, self.error = None, "", f"internal error, please report: {type(exc).__name__}: {exc}"
        table = self.query_one("#results", DataTable)
        if self.report is not None and self.shown_keys == sim.keys:  # same rows: new values in place
            value_column, label_column = table.ordered_columns[0].key, table.ordered_columns[2].key
            for key in sim.keys:
                r = self.report.results.get(key)
                table.update_cell(key, value_column, engine.shown(self.report, key))
                table.update_cell(key, label_column, r.label if r else key)
        else:
            row = table.cursor_row
            table.clear()
            self.shown_keys = None
            if self.report is not None:
                for key in sim.keys:
                    r = self.report.results.get(key)
                    table.add_row(engine.shown(self.report, key), key, r.label if r else key, key=key)
                table.move_cursor(row=min(row, len(sim.keys) - 1))
                self.shown_keys = sim.keys
        self.query_one("#chart", Static).update(chart)
        self.query_one("#command", Static).update(
            ("error: " + self.error + "\n" if self.error else "") + "$ " + self.state.one_liner())
        self.show_explain()
        self.last_update_seconds = time.perf_counter() - start

    def screen_text(self) -> str:
        """The screen as plain text (what export_screenshot draws, without the SVG)."""
        import io

        from rich.console import Console
        width, height = self.size
        console = Console(width=width, height=height, file=io.StringIO(), record=True, color_system=None,
                          legacy_windows=False, safe_box=False)
        console.print(self.screen._compositor.render_update(full=True, screen_stack=self._background_screens))
        return console.export_text()

    def show_explain(self) -> None:
        text = ""
        if self.report is not None:
            table = self.query_one("#results", DataTable)
            keys = self.state.sim.keys
            text = engine.explain(self.result, keys[min(table.cursor_row, len(keys) - 1)])
        self.query_one("#explain", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_explain()

    # -- actions

    def action_switch(self, index: int) -> None:
        self.state.current = index
        panel = self.query_one("#params", ParamPanel)
        panel.cursor = 0
        panel.refresh(layout=True)
        self.recompute()

    def action_help(self) -> None:
        self.push_screen(Help())

    def action_command(self) -> None:
        line = self.state.one_liner()
        self.copy_to_clipboard(line)
        self.notify(line, title="equivalent command (copied)", timeout=8)

    def action_pick(self, kind: str) -> None:
        current = self.state.model if kind == "models" else self.state.gpu

        def chosen(name: str | None) -> None:
            if name:
                if kind == "models":
                    self.state.model = name
                else:
                    self.state.gpu = name
                self.recompute()

        self.push_screen(Picker(kind, current), chosen)

    def action_quit_with_command(self) -> None:
        self.exit(self.state.one_liner())
