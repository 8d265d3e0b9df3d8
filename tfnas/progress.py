"""Progress of long work that is not a training loop: downloads, scoring, export stages.

A `Progress` redraws a bar in place (``\\r``) when its stream is a terminal,
writes a plain line now and then (and one at the end) when it is not, and
writes nothing when quiet. Functions that report progress take a
`ProgressTarget`: False (silent), True (``sys.stderr``) or a text stream.
(``keras.utils.Progbar`` writes to ``sys.stdout`` only and draws its bar
whatever the stream is, so it does not fit logs and piped output.)
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator, TextIO, Union

__all__ = ["LOG_INTERVAL", "TERMINAL_INTERVAL", "Progress", "ProgressTarget"]

#: False: silent; True: ``sys.stderr``; or the stream to write to.
ProgressTarget = Union[bool, TextIO]
#: Least seconds between two redraws of a bar on a terminal.
TERMINAL_INTERVAL = 0.1
#: Least seconds between two plain lines (output that is not a terminal).
LOG_INTERVAL = 10.0


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
        self._drawn = 0  # length of the bar on screen
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
        if not self.terminal:
            self.stream.write(f"{self.label}: {text}\n")
        else:
            bar = ""
            if self.total:
                filled = min(self.width, self.width * self.done // self.total)
                bar = "[" + ("=" * filled + (">" if filled < self.width else "")).ljust(self.width) + "] "
            line = f"{self.label} {bar}{text}"
            self.stream.write("\r" + line.ljust(self._drawn) + ("\n" if final else ""))
            self._drawn = len(line)
        self.stream.flush()
