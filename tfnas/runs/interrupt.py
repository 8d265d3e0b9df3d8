"""Ctrl-C at a step boundary: an interrupted run writes a checkpoint of a consistent state, then stops.

Inside `deferred_interrupts`, SIGINT (Ctrl-C) does not raise at once:
it sets a request that the loop reads between two steps
(`Interrupts.stop_if_pending`), where its state is consistent, and
there writes a checkpoint and raises `KeyboardInterrupt` (``tfnas`` exits
with status 130). A second Ctrl-C raises at once, without a checkpoint. Loops
nest (a black-box search trains its children with `tfnas.lm.Trainer`):
the innermost loop that reaches a boundary writes its checkpoint and
stops; the outer ones let the `KeyboardInterrupt` through (they are
mid-step) and resume from their own last checkpoint.

The handler is installed only in the main thread and only over Python's
default handler (a process that ignores SIGINT, as under ``nohup``, keeps
ignoring it). A `KeyboardInterrupt` raised some other way (a test's
callback) is not deferred and writes no checkpoint.

Pure Python: no TensorFlow.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Callable, Iterator


class Interrupts:
    """The shared state of the nested `deferred_interrupts` blocks of this process."""

    def __init__(self) -> None:
        self.depth = 0
        self.requested = False
        self.installed = False

    def pending(self) -> bool:
        """Whether Ctrl-C was pressed since the outermost block began."""
        return self.requested

    def stop_if_pending(self, where: str, message: Callable[[str], None],
                        checkpoint: Callable[[], Any] | None = None) -> None:
        """At a loop's boundary: if Ctrl-C was pressed, ``checkpoint()`` (it returns the path written), one
        ``message`` line ``interrupted <where>``, then `KeyboardInterrupt`; nothing otherwise."""
        if not self.requested:
            return
        path = None if checkpoint is None else checkpoint()
        message(f"interrupted {where}" + ("" if path is None else f": checkpoint {path} written"))
        raise KeyboardInterrupt(f"interrupted {where}")

    def _handle(self, signum: int, frame: Any) -> None:
        del signum, frame
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)   # a second Ctrl-C stops at once


_INTERRUPTS = Interrupts()


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[Interrupts]:
    """Defers Ctrl-C to the loop's next `Interrupts.stop_if_pending` check while the block runs (see the module)."""
    state = _INTERRUPTS
    if state.depth == 0 and threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, state._handle)
        state.installed = True
    state.depth += 1
    try:
        yield state
    finally:
        state.depth -= 1
        if state.depth == 0:
            if state.installed:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            state.installed = state.requested = False
