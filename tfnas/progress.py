"""Progress of long work that is not a training loop: downloads, scoring, export stages.

A `Progress` redraws a bar in place when its stream is a terminal, writes a
plain line now and then (and one at the end) when it is not, and writes
nothing when quiet. Functions that report progress take a
`ProgressTarget`: False (silent), True (``sys.stderr``) or a text stream.

On a terminal `tqdm` draws the line: the bar (``[===>    ]``, tqdm's ASCII
bar with ``>`` for a half-filled cell), redrawn in place (``\\r``, with
padding over a longer previous line). `Progress` decides what the line says
and when it is redrawn (tqdm never draws by itself here), keeps it whole
(tqdm would cut it at the terminal's width, count and note included) and
ends it. The plain lines stay hand-written: tqdm
redraws with ``\\r`` on any stream, while logs and piped output need one
line per report, seldom (`LOG_INTERVAL`).
(``keras.utils.Progbar`` writes to ``sys.stdout`` only and draws its bar
whatever the stream is, so it fits neither.)
"""
from __future__ import annotations

import math
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator, TextIO, Union

from tqdm import tqdm

__all__ = ["LOG_INTERVAL", "TERMINAL_INTERVAL", "Progress", "ProgressTarget"]

#: False: silent; True: ``sys.stderr``; or the stream to write to.
ProgressTarget = Union[bool, TextIO]
#: Least seconds between two redraws of a bar on a terminal.
TERMINAL_INTERVAL = 0.1
#: Least seconds between two plain lines (output that is not a terminal).
LOG_INTERVAL = 10.0
#: tqdm's bar characters: the empty part, a half-filled cell, a filled cell.
BAR_CHARACTERS = " >="


def _bytes_unit(size: int) -> tuple[float, str]:
    """The divisor and name of the unit that shows ``size`` bytes best."""
    return next(((d, name) for d, name in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")) if size >= d), (1, "B"))


class Progress:
    """Reports how many units of work out of ``total`` are done (see the module docstring).

    Args:
        label: what is being done, e.g. ``"scoring test.txt"``.
        total: units in all, or None when unknown (then no bar and no percentage).
        unit: the unit's name (``"windows"``, ``"formats"``); ``"B"`` shows bytes in kB, MB or GB.
        stream: where to write (default ``sys.stderr``).
        quiet: write nothing.
        interval: least seconds between two writes (default `TERMINAL_INTERVAL`
            on a terminal, else `LOG_INTERVAL`); a new note and the end are always written.
        width: characters of the bar.
    """

    def __init__(self, label: str, total: int | None = None, *, unit: str = "", stream: TextIO | None = None,
                 quiet: bool = False, interval: float | None = None, width: int = 30) -> None:
        self.label, self.total, self.unit, self.quiet, self.width = label, total, unit, quiet, width
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.terminal = bool(isatty is not None and isatty())
        self.interval = (TERMINAL_INTERVAL if self.terminal else LOG_INTERVAL) if interval is None else interval
        self.done = 0
        self.note = ""
        self._start = time.monotonic()
        self._written: float | None = None  # when the last write was
        # The terminal's bar: tqdm draws it when `_draw` asks, never by itself (delay=inf), and never cuts the
        # line at the terminal's width (ncols), which would hide the count and the note behind a long label.
        self._bar = tqdm(total=total, file=self.stream, ascii=BAR_CHARACTERS, position=0, delay=math.inf,
                         ncols=sys.maxsize) if self.terminal and not quiet else None
        self._closed = False

    @classmethod
    def to(cls, target: ProgressTarget, label: str, total: int | None = None, unit: str = "") -> Progress:
        """A `Progress` on ``target`` (False: quiet; True: ``sys.stderr``; else that stream)."""
        if isinstance(target, bool):
            return cls(label, total, unit=unit, quiet=not target)
        return cls(label, total, unit=unit, stream=target)

    def update(self, done: int, note: str | None = None) -> None:
        """Sets the units done (and the note shown after the count)."""
        renamed = note is not None and note != self.note
        self.done = done
        self.note = self.note if note is None else note
        now = time.monotonic()
        if renamed or self._written is None or now - self._written >= self.interval:
            self._write(now, final=False)

    def advance(self, count: int = 1, note: str | None = None) -> None:
        """Counts ``count`` more units done."""
        self.update(self.done + count, note)

    def describe(self, note: str) -> None:
        """Shows ``note`` (what is being done now) after the count."""
        self.update(self.done, note)

    @contextmanager
    def stage(self, note: str) -> Iterator[None]:
        """Shows ``note`` while the block runs, then counts one unit done."""
        self.describe(note)
        yield
        self.advance()

    def close(self) -> None:
        """Writes the final count (ending the bar's line on a terminal); later calls do nothing."""
        if not self._closed:
            self._closed = True
            self._write(time.monotonic(), final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _text(self, final: bool) -> str:
        divisor, unit = _bytes_unit(self.total or self.done) if self.unit == "B" else (1, self.unit)
        digits = 0 if divisor == 1 else 1
        count = f"{self.done / divisor:.{digits}f}"
        if self.total is not None:
            count += f"/{self.total / divisor:.{digits}f}"
        count = f"{count} {unit}".rstrip()
        if self.total:
            count += f" ({100 * self.done / self.total:.0f}%)"
        if final:
            return f"{count} in {time.monotonic() - self._start:.1f} s"
        return f"{count} | {self.note}" if self.note else count

    def _write(self, now: float, final: bool) -> None:
        if self.quiet:
            return
        self._written = now
        text = self._text(final)
        if self.terminal:
            self._draw(text, final)
        else:
            self.stream.write(f"{self.label}: {text}\n")
        self.stream.flush()

    def _draw(self, text: str, final: bool) -> None:
        """Redraws ``label [bar] text`` with tqdm (the bar only when the total is known); ``final`` ends the line."""
        bar = self._bar
        bar.bar_format = _literal(self.label) + " " + (f"[{{bar:{self.width}}}] " if self.total else "") + \
            _literal(text)
        bar.n = min(self.done, self.total) if self.total else self.done
        bar.refresh()
        if final:
            self.stream.write("\n")
            bar.close()  # writes nothing: tqdm never drew by itself


def _literal(text: str) -> str:
    """``text`` as a literal part of a tqdm ``bar_format`` (a `str.format` template)."""
    return text.replace("{", "{{").replace("}", "}}")
