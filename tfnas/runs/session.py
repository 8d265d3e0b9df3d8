"""`RunSession`: the scaffold every loop runs in (the trainer, the one-shot and black-box searches, WeNet).

A loop that writes a run folder needs the same six things, in this order:

1. the folder's lock (`tfnas.runs.lock.RunLock`: one process per folder);
2. the run record (`tfnas.runs.folder.open_run`: another kind of run,
   other settings than the resumable ones, or other data are refused);
3. Ctrl-C deferred to the loop's step boundaries (`tfnas.runs.interrupt`),
   where `stop_if_pending` checkpoints and stops;
4. the checkpoints (`tfnas.runs.checkpoint.CheckpointManager`): `restore`
   the newest readable one, with a warning for each unreadable one skipped,
   and `save` one, followed by a ``"checkpoint"`` event;
5. the callbacks, for ``"message"`` lines and the loop's events;
6. the end: an ``"end"`` event, then every callback closed (`end`);
7. the wall clock: `spent_s` counts the seconds of this session and of the
   sessions before it, as far as the folder holds their steps. Every
   checkpoint records it (``spent_s`` in its state) and the first `restore`
   (the resume) reads it back, so a killed and resumed run counts the time
   up to its newest checkpoint, and `over_budget` tells a loop when a
   wall-clock budget (``budget_s``) is spent. Work after that checkpoint is
   redone on resume and counted once.

`RunSession` holds them; a loop keeps only what is its own (its state,
its steps, its result). Used as a context manager it opens the folder
(1-2), defers Ctrl-C for the block (3) and releases the lock on exit. The
trainer opens its folder when it is created (`open`) and runs its loop in
the ``with`` block later, so that a refused folder fails the constructor.

Pure Python: no TensorFlow.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from time import monotonic
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tfnas.callbacks import Callback, CallbackList
from tfnas.runs.checkpoint import CheckpointManager, Restored, Variable
from tfnas.runs.folder import CHECKPOINTS, open_run
from tfnas.runs.interrupt import Interrupts, deferred_interrupts
from tfnas.runs.lock import RunLock

#: The key of a checkpoint's state that holds the seconds spent up to it.
SPENT_KEY = "spent_s"


class RunSession:
    """A run folder while a loop runs in it; see the module docstring.

    Args:
        run_dir: the run folder.
        kind: ``"train"`` or ``"search"`` (the run record's kind).
        strategy: the strategy's name, None for training.
        config: the run's settings (a config dataclass), recorded and compared on resume.
        fingerprint: the corpus fingerprint (`tfnas.runs.folder.corpus_fingerprint`).
        callbacks: the loop's callbacks.
        keep_checkpoints: how many checkpoints to keep.
        clock: seconds of a monotonic clock (default `time.monotonic`).
    """

    def __init__(self, run_dir: str | Path, kind: str, strategy: str | None, config: Any,
                 fingerprint: Mapping[str, Any], callbacks: Sequence[Callback] = (), keep_checkpoints: int = 2,
                 clock: Callable[[], float] | None = None):
        self.run_dir = Path(run_dir)
        self.kind, self.strategy, self.config, self.fingerprint = kind, strategy, config, fingerprint
        self.callbacks = CallbackList(callbacks)
        self.checkpoints = CheckpointManager(self.run_dir / CHECKPOINTS, keep_checkpoints)
        self.lock = RunLock(self.run_dir)
        self.interrupts: Interrupts | None = None
        self._opened = False
        self._deferred: contextlib.ExitStack | None = None
        self._clock = clock if clock is not None else monotonic
        self._started = self._clock()
        self._spent_before = 0.0
        self._resumed = False

    # ------------------------------------------------------------ the folder
    def open(self) -> "RunSession":
        """Locks the folder and checks or writes its run record (released again if the record is refused)."""
        if self._opened:
            return self
        self.lock.acquire()
        try:
            open_run(self.run_dir, self.kind, self.strategy, self.config, self.fingerprint)
        except BaseException:
            self.lock.release()
            raise
        self._opened = True
        self._started = self._clock()
        return self

    def close(self) -> None:
        """Releases the folder's lock."""
        self._opened = False
        self.lock.release()

    def __enter__(self) -> "RunSession":
        self.open()
        self._deferred = contextlib.ExitStack()
        try:
            self.interrupts = self._deferred.enter_context(deferred_interrupts())
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._deferred.close()
        finally:
            self._deferred = self.interrupts = None
            self.close()

    # -------------------------------------------------------------- events
    def message(self, text: str) -> None:
        """One ``"message"`` line for the callbacks."""
        self.callbacks.on_event("message", {"text": text})

    def stop_if_pending(self, where: str, checkpoint: Callable[[], Any] | None = None) -> None:
        """At a step boundary: after Ctrl-C, ``checkpoint()``, one message and `KeyboardInterrupt`."""
        self.interrupts.stop_if_pending(where, self.message, checkpoint)

    def end(self, logs: Mapping[str, Any]) -> None:
        """The ``"end"`` event, then every callback closed."""
        self.callbacks.on_event("end", logs)
        self.callbacks.close()

    # ------------------------------------------------------------ the clock
    def spent_s(self) -> float:
        """Seconds spent on the run: by this session since it opened the folder, and by the sessions before it up
        to the checkpoint it resumed from."""
        return self._spent_before + self._clock() - self._started

    def resume_clock(self, spent_before: float) -> None:
        """Counts ``spent_before`` seconds (a resumed state's ``spent_s``) as spent by the sessions before; for a
        loop that keeps its state outside the checkpoints (`restore` does it for the others)."""
        self._spent_before = float(spent_before)
        self._resumed = True

    def reset_clock(self, spent: float) -> None:
        """From now on the run has spent ``spent`` seconds so far (a loop that counts the time of the runs it nests,
        as WeNet its rounds, each resumed with the time of its own checkpoints)."""
        self._spent_before, self._started, self._resumed = float(spent), self._clock(), True

    def over_budget(self, budget_s: float | None) -> bool:
        """Whether a wall-clock budget of ``budget_s`` seconds (None: no budget) is spent."""
        return budget_s is not None and self.spent_s() >= budget_s

    # --------------------------------------------------------- checkpoints
    def save(self, step: int, variables: Sequence[Variable], state: dict[str, Any],
             extra: dict[str, np.ndarray] | None = None, weights: Sequence[Variable] | None = None) -> Path:
        """A checkpoint of ``variables`` and the JSON ``state`` (with the seconds spent, ``spent_s``) at ``step``, then
        a ``"checkpoint"`` event."""
        path = self.checkpoints.save(step, variables, {**state, SPENT_KEY: self.spent_s()}, extra, weights=weights)
        self.callbacks.on_event("checkpoint", {"step": step, "path": str(path)})
        return path

    def restore(self, variables: Sequence[Variable]) -> Restored | None:
        """The newest readable checkpoint restored into ``variables`` (a warning line per unreadable one skipped);
        None when there is none.

        The session's first restore (the resume) also takes the seconds spent up to that checkpoint; a later one (a
        recovery from a diverged loss) keeps the clock running, since the time since was spent all the same.
        """
        restored = self.checkpoints.restore_newest(variables)
        if restored is not None:
            for line in restored.skipped:
                self.message(f"warning: {line}")
            if not self._resumed:
                self.resume_clock(restored.state.get(SPENT_KEY, 0.0))
        self._resumed = True
        return restored
