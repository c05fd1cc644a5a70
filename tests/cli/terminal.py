"""Running the real ``moorage`` command: through pipes, or in a pseudo-terminal, and a
small terminal screen to see what is left on it once the command is done.

`Screen` understands what rich writes for tables and live progress displays (carriage
returns, cursor moves, line erasing, colours and cursor hiding, which it ignores), so a
test can tell a progress bar that was drawn and then erased (transient) from one that
was left behind.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

__all__ = [
    "COLOUR",
    "HIDE_CURSOR",
    "Run",
    "Screen",
    "colour_codes",
    "moorage",
    "moorage_in_terminal",
    "plain_text",
]

#: What rich writes when a live display starts (and undoes when it stops).
HIDE_CURSOR = "\x1b[?25l"
#: Any escape sequence at all.
ESCAPE = "\x1b"
_CSI = re.compile(r"\x1b\[([0-9;?]*)([@-~])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
#: SGR parameters that set a colour: 30-38 and 40-48 (foreground, background), 90-97
#: and 100-107 (bright ones).
COLOUR = {*range(30, 39), *range(40, 49), *range(90, 98), *range(100, 108)}


@dataclasses.dataclass
class Run:
    """A finished command: its exit status and what it wrote."""

    code: int
    stdout: str
    stderr: str = ""


def moorage(*args: str, env: dict[str, str], cwd: Path, stdin: str = "") -> Run:
    """Run ``python -m moorage ARGS`` with its stdout and stderr on pipes."""
    done = subprocess.run(
        [sys.executable, "-m", "moorage", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def moorage_in_terminal(
    *args: str, env: dict[str, str], cwd: Path, columns: int = 160, stdin: str = ""
) -> Run:
    """Run ``python -m moorage ARGS`` with stdin, stdout and stderr on one pseudo-terminal
    of ``columns`` columns; ``stdout`` is everything it wrote there, escapes included."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "moorage", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
        close_fds=True,
    )
    os.close(slave)
    if stdin:
        os.write(master, stdin.encode())
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the command ended and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    code = process.wait()
    os.close(master)
    return Run(code, b"".join(chunks).decode("utf-8", "replace"))


def plain_text(text: str) -> str:
    """``text`` without its escape sequences (everything ever written, erased or not)."""
    return _OSC.sub("", _CSI.sub("", text))


def colour_codes(text: str) -> list[str]:
    """The SGR sequences in ``text`` that set a colour (bold or underline do not)."""
    found = []
    for match in _SGR.finditer(text):
        params = [int(p) for p in match.group(1).split(";") if p]
        if any(p in COLOUR for p in params):
            found.append(match.group(0))
    return found


class Screen:
    """What a terminal shows after ``text`` was written to it."""

    def __init__(self, text: str) -> None:
        self.rows: list[list[str]] = [[]]
        self.row = self.column = 0
        self._feed(text)

    def _line(self) -> list[str]:
        while len(self.rows) <= self.row:
            self.rows.append([])
        return self.rows[self.row]

    def _feed(self, text: str) -> None:
        at = 0
        while at < len(text):
            if text[at] == ESCAPE:
                match = _CSI.match(text, at) or _OSC.match(text, at)
                if match is None:  # a two-character escape (ESC 7, ESC 8...): no text
                    at += 2
                    continue
                if match.re is _CSI:
                    self._control(match.group(1), match.group(2))
                at = match.end()
                continue
            character = text[at]
            at += 1
            if character == "\r":
                self.column = 0
            elif character == "\n":
                self.row += 1
            elif character == "\b":
                self.column = max(0, self.column - 1)
            elif character >= " ":
                line = self._line()
                line.extend(" " * (self.column + 1 - len(line)))
                line[self.column] = character
                self.column += 1

    def _control(self, params: str, final: str) -> None:
        number = int(params) if params.isdigit() else None
        count = number or 1
        if final == "A":
            self.row = max(0, self.row - count)
        elif final == "B":
            self.row += count
        elif final == "C":
            self.column += count
        elif final == "D":
            self.column = max(0, self.column - count)
        elif final == "G":
            self.column = count - 1
        elif final == "K":
            line = self._line()
            if number == 2:
                line.clear()
            elif number == 1:
                line[: self.column] = [" "] * min(self.column, len(line))
            else:
                del line[self.column :]
        # m (colours), h and l (cursor shown or hidden), J: nothing shown changes here

    @property
    def text(self) -> str:
        """The screen's lines, trailing spaces and empty lines at the end left out."""
        return "\n".join("".join(line).rstrip() for line in self.rows).rstrip()
