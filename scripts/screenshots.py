#!/usr/bin/env python3
"""Regenerate the README's terminal screenshots, docs/img/*.svg.

Each command below is run as a user would run it: in a pseudo-terminal 110 columns wide, so llmcalc
sees a colour terminal (Rich tables, the charts and the specdec heat map all in colour), with an
empty user preset folder so only the built-in presets are used. Its output (stdout and stderr, in the
order written) is turned back into styled text with Rich and saved as SVG, with the command as the
window title and as a prompt line on top.

    python scripts/screenshots.py            # all images
    python scripts/screenshots.py kv serve   # only these (names as in SHOTS)
    python scripts/screenshots.py --list     # the commands

The output is deterministic: llmcalc prints no dates, and the one wall-clock figure it prints
(`parallel --search`'s "searched N layouts in 84 ms") has its time removed. Requires a POSIX pty.
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
WIDTH = 110

# name -> command line. One per subcommand (plus a comparison), each showing something instructive.
SHOTS: dict[str, str] = {
    "flops": "llmcalc flops -m gpt2 --seq 1024 --explain",
    "compare": "llmcalc flops -m llama-3.1-8b,mistral-7b,qwen2.5-7b --seq 8192",
    "train-mem": "llmcalc train-mem -m llama-3.1-8b -g h100-sxm --seq 8192 --batch 1..32x2 --zero 3 --dp 8 "
                 "--recompute full",
    "kv": "llmcalc kv -m llama-3.1-8b -g h100-sxm --seq 32k",
    "roofline": "llmcalc roofline -g h100-sxm -m llama-3.1-8b --batch 1..512x2 --seq 4096",
    "serve": "llmcalc serve -m llama-2-7b -g a100-80gb --batch 1..256x2 --prompt 512 --gen 256",
    "specdec": "llmcalc specdec --alpha 0.6..0.9+0.1 --k 1..8+1 --cost-ratio 0.05 --fields speedup,optimal_k",
    "parallel": "llmcalc parallel -m llama-3.1-70b -g h100-sxm --gpus 64 --search",
    "presets": "llmcalc presets list gpus",
}

# Wall-clock times llmcalc reports, removed so that the images only change when the answers do.
_TIMINGS = [(re.compile(r" in [\d.,]+ ?(?:ns|µs|us|ms|s)\b"), "")]


def run_in_pty(argv: list[str], env: dict[str, str], columns: int = WIDTH, rows: int = 50) -> str:
    """Run argv on a pseudo-terminal of the given size; return everything it wrote, as text."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # no "\r\n" for "\n"
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                            close_fds=True, start_new_session=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError as exc:  # EIO: the child closed the terminal
            if exc.errno != errno.EIO:
                raise
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait()
    text = b"".join(chunks).decode("utf-8", errors="replace")
    if code != 0:
        raise SystemExit(f"{shlex.join(argv)} exited {code}:\n{text}")
    return text


def capture(command: str, config_dir: str) -> str:
    args = shlex.split(command)
    assert args[0] == "llmcalc", command
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": config_dir,
        "LLMCALC_CONFIG_DIR": config_dir,  # empty: built-in presets only
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "COLUMNS": str(WIDTH),
        "LINES": "50",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",  # stdout and stderr interleave in the order written, as on a terminal
        "PYTHONHASHSEED": "0",
    }
    text = run_in_pty([sys.executable, "-m", "llmcalc", *args[1:]], env)
    for pattern, repl in _TIMINGS:
        text = pattern.sub(repl, text)
    return text.rstrip()


def prompt_lines(command: str, width: int = WIDTH) -> list[str]:
    """``$ command``, broken before an option with a trailing backslash where it would pass the width."""
    lines, line = [], "$"
    for word in shlex.split(command):
        word = shlex.quote(word)
        if len(line) + 1 + len(word) > width - 2 and line.strip() != "$":
            lines.append(line + " \\")
            line = "   "
        line += " " + word
    return lines + [line]


def terminal_lines(output: str, width: int = WIDTH):
    """The output as a terminal of that width shows it: lines longer than the width continue on the next row."""
    from rich.cells import cell_len
    from rich.text import Text

    for line in Text.from_ansi(output).split("\n", allow_blank=True):
        plain = line.plain
        if cell_len(plain) <= width:
            yield line
            continue
        cuts, used = [], 0
        for i, ch in enumerate(plain):
            w = cell_len(ch)
            if used + w > width:
                cuts.append(i)
                used = 0
            used += w
        yield from line.divide(cuts)


def to_svg(command: str, output: str, path: Path) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(record=True, width=WIDTH, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", no_color=False, legacy_windows=False)
    for line in prompt_lines(command):
        prompt = Text(line[:2], style="bold green")
        prompt.append(line[2:], style="bold")
        console.print(prompt, no_wrap=True, overflow="ignore", crop=False)
    for line in terminal_lines(output):
        console.print(line, no_wrap=True, overflow="ignore", crop=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(path), title=command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"images to make (default all): {', '.join(SHOTS)}")
    parser.add_argument("--list", action="store_true", help="print the commands and exit")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the SVG files (default docs/img)")
    args = parser.parse_args(argv)
    if args.list:
        for name, command in SHOTS.items():
            print(f"{name}\t{command}")
        return 0
    unknown = [n for n in args.names if n not in SHOTS]
    if unknown:
        parser.error(f"unknown image(s) {', '.join(unknown)}; choose from {', '.join(SHOTS)}")
    with tempfile.TemporaryDirectory() as config_dir:
        for name in args.names or SHOTS:
            command = SHOTS[name]
            path = args.out / f"{name}.svg"
            to_svg(command, capture(command, config_dir), path)
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}\t{command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
