"""One process per run folder: an exclusive lock on ``RUN/lock``.

`RunLock` takes ``fcntl.flock`` on the file ``lock`` of a run folder and
writes the holder (PID, host, start time) into it. A second process that
opens the same folder (two ``tfnas train`` or ``tfnas search`` with the same
``--out``) is refused with `RunLockedError`, whose one line names the
holder. The kernel drops the lock when its holder exits, however it exits
(SIGKILL included), so the lock of a dead process is simply taken over; the
file stays and names the last holder. On a system without ``fcntl``
(Windows) the folder is not locked.

Pure Python: no TensorFlow.
"""
from __future__ import annotations

import datetime
import json
import os
import socket
from pathlib import Path
from typing import IO, Any

from tfnas.errors import TfnasError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: The lock file of a run folder.
LOCK_FILE = "lock"


class RunLockedError(TfnasError, RuntimeError):
    """The run folder is in use by another process (or another run of this one)."""


def _holder(text: str) -> str:
    """``process 1234 on host h since 2024-01-01T00:00:00+00:00`` from a lock file's content."""
    try:
        data = json.loads(text)
        return f"process {data['pid']} on host {data['host']} since {data['since']}"
    except (ValueError, KeyError, TypeError):
        return "another process"


class RunLock:
    """The lock of one run folder; a context manager (`acquire` on enter, `release` on exit).

    Args:
        run_dir: the run folder (created if needed).

    Example::

        with RunLock("runs/x"):
            ...   # no other process runs in runs/x meanwhile
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._file is not None

    def acquire(self) -> "RunLock":
        """Takes the lock (nothing if this object holds it already); returns ``self``.

        Raises:
            RunLockedError: another process (or another `RunLock` of this
                process) holds it.
        """
        if self._file is not None or fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = _holder(handle.read())
            handle.close()
            raise RunLockedError(f"{self.path.parent} is in use by {holder} (lock file {self.path}); wait for it "
                                 "to end or use another --out folder") from None
        handle.seek(0)
        handle.truncate()
        since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}) + "\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        """Releases the lock if this object holds it."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
