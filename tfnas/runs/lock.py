"""One process per run folder: an OS lock held while a run writes the folder, and a record of its holder.

`RunLock` takes `filelock.FileLock` on the hidden file ``RUN/.lock``
(``flock`` on Unix, ``LockFileEx`` on Windows; where a Unix file system has
no ``flock``, filelock's marker file, which it breaks when its holder's
process is gone), then writes the holder (PID, host, start time) into
``RUN/lock`` through `tfnas.runs.atomic`. A second process that opens the
same folder (two ``tfnas train`` or ``tfnas search`` with the same
``--out``) is refused with `RunLockedError`, whose one line names the holder
read from ``RUN/lock`` (or "another process" when that record is missing or
unreadable, whatever its bytes). The OS drops the lock when its holder
exits, however it exits (SIGKILL included), so the lock of a dead process
is simply taken over; ``RUN/lock`` stays and names the last holder.

The record is a file of its own because Windows' lock bars other processes
from reading the locked file, and the refusal must name the holder there
too. Neither file is followed through a symbolic link: a link at either
path is refused with `LockLinkError` (writing the lock would otherwise
replace what the link points to, outside the run folder); filelock opens
its file without following links as well, so a link put there in between
fails too.

Pure Python: no TensorFlow.
"""
from __future__ import annotations

import datetime
import json
import os
import socket
from pathlib import Path
from typing import Any

import filelock

from tfnas.errors import TfnasError
from tfnas.runs.atomic import write_text

#: The record of the folder's holder (PID, host, start time), named in refusals.
LOCK_FILE = "lock"
#: The file that `filelock.FileLock` locks.
OS_LOCK_FILE = ".lock"


class RunLockedError(TfnasError, RuntimeError):
    """The run folder is in use by another process (or another run of this one)."""


class LockLinkError(TfnasError, OSError):
    """A run folder's lock path is a symbolic link, which tfnas does not follow."""


def _holder(record: Path) -> str:
    """``process 1234 on host h since 2024-01-01T00:00:00+00:00`` from a holder record, else ``another process``."""
    try:
        data = json.loads(record.read_bytes())
        return f"process {data['pid']} on host {data['host']} since {data['since']}"
    except (OSError, ValueError, KeyError, TypeError):  # ValueError includes UnicodeDecodeError
        return "another process"


class RunLock:
    """The lock of one run folder; a context manager (`acquire` on enter, `release` on exit).

    Args:
        run_dir: the run folder (created if needed).

    Example::

        with RunLock("runs/x"):
            ...   # no other process runs in runs/x meanwhile
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._os_path = Path(run_dir) / OS_LOCK_FILE
        self._lock: filelock.BaseFileLock | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock is not None

    def acquire(self) -> RunLock:
        """Takes the lock (nothing if this object holds it already); returns ``self``.

        Raises:
            RunLockedError: another process (or another `RunLock` of this
                process) holds it.
            LockLinkError: ``RUN/lock`` or ``RUN/.lock`` is a symbolic link.
        """
        if self._lock is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for path in (self.path, self._os_path):
            if path.is_symlink():
                raise LockLinkError(f"{path} is a symbolic link; a run folder's lock is not written through links: "
                                    "remove it")
        lock = filelock.FileLock(self._os_path, thread_local=False, blocking=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise RunLockedError(f"{self.path.parent} is in use by {_holder(self.path)} (lock file {self.path}); "
                                 "wait for it to end or use another --out folder") from None
        try:
            since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            write_text(self.path, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since})
                       + "\n")
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        return self

    def release(self) -> None:
        """Releases the lock if this object holds it."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
