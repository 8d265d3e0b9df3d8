"""TensorFlow's start-up log lines, hidden from the ``tfnas`` command's standard error.

TensorFlow 2.21 writes its start-up lines from C++ (oneDNN, the CUDA
stubs, the CPU features, ``failed call to cuInit``), most of them before
absl's logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` no longer hides them.
`hidden_startup_lines` installs an import hook: when something first
imports ``tensorflow``, that import and the listing of the devices (where
CUDA starts) run with file descriptor 2 sent through a filter process,
which drops absl's log records of levels I, W and E (``Lmmdd hh:mm:ss.uuuuuu
thread file:line] message`` and the lines that continue one) and absl's
notice, and forwards every other line at once: a fatal record (``F``) and
what a crash prints reach the terminal even if the command dies with
them, which a filter inside the process would lose. Python's own writes
(``sys.stderr``) bypass the filter. ``TF_CPP_MIN_LOG_LEVEL`` (3 unless set)
hides what TensorFlow logs after its start. This module imports nothing of
tfnas: run as a script, it is the filter process.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import os
import re
import signal
import subprocess
import sys
from typing import IO, Iterable, Iterator

#: The first line of an absl (glog-format) log record: severity, month and day, time, thread, source file and line.
#: (Before absl's logging is set up, the seconds field holds the whole Unix time: ``I0000 00:00:1796680711.180953``.)
RECORD = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]\s]+:\d+\] ")
#: The notice each library built with absl prints once before its logging is set up.
ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
#: Severities of the records hidden (info, warning, error; a fatal record is shown).
HIDDEN_SEVERITIES = "IWE"
#: The module whose first import is filtered.
FILTERED_MODULE = "tensorflow"


def shown_lines(lines: Iterable[str]) -> Iterator[str]:
    """The lines of ``lines`` that are not TensorFlow's start-up log: absl's records of `HIDDEN_SEVERITIES` and
    the lines that continue them (up to the next record) are left out, as is `ABSL_NOTICE`."""
    hiding = False
    for line in lines:
        if line.rstrip("\r\n") == ABSL_NOTICE:
            hiding = False
            continue
        if RECORD.match(line):
            hiding = line[0] in HIDDEN_SEVERITIES
        if not hiding:
            yield line


def forward(source: IO[bytes], target: IO[bytes]) -> None:
    """Copies `shown_lines` of ``source`` to ``target`` line by line, until ``source`` ends."""
    lines = (raw.decode("utf-8", "replace") for raw in iter(source.readline, b""))
    for line in shown_lines(lines):
        target.write(line.encode("utf-8"))
        target.flush()


def _is_descriptor_2(stream: object) -> bool:
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


def _start_filter() -> subprocess.Popen | None:
    """This file run as a script, reading from a pipe; None where no process can start."""
    try:
        return subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__)], stdin=subprocess.PIPE)
    except OSError:
        return None


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """File descriptor 2 sent through the filter process while the block runs; Python's ``sys.stderr`` writes to
    the terminal directly. Where the process cannot start, nothing is filtered."""
    sys.stderr.flush()
    process = _start_filter()
    if process is None:
        yield
        return
    saved = os.dup(2)
    python_stderr = sys.stderr
    if _is_descriptor_2(python_stderr):
        # Never closed: a logging handler made in the block (TensorFlow's) keeps writing to it, to the terminal.
        sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=python_stderr.encoding,
                          errors=python_stderr.errors)
    os.dup2(process.stdin.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = python_stderr
        process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)  # a child process started in the block may still hold the pipe: it ends later


class _FilteredLoader(importlib.abc.Loader):
    """Runs a module's loader inside `filtered_stderr`, then lists the devices there (CUDA's start)."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec):  # noqa: ANN201 - importlib's protocol
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: ANN001 - importlib's protocol
        module.__loader__ = module.__spec__.loader = self.loader
        _remove_hooks()
        with filtered_stderr():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # loads CUDA where there is one; no runtime starts (multi-worker)


class _FilteredImport(importlib.abc.MetaPathFinder):
    """Finds `FILTERED_MODULE` with the other finders and gives it a `_FilteredLoader`, which removes this hook
    when it loads the module (a spec found, as by ``importlib.util.find_spec``, is not yet an import)."""

    def __init__(self) -> None:
        self.finding = False

    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201 - importlib's protocol
        if name != FILTERED_MODULE or self.finding:
            return None
        self.finding = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.finding = False
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader)
        return spec


def _remove_hooks() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _FilteredImport)]


@contextlib.contextmanager
def hidden_startup_lines() -> Iterator[None]:
    """TensorFlow's start-up lines hidden while the block runs, if it imports TensorFlow first: the import is
    filtered (see the module's docstring) and ``TF_CPP_MIN_LOG_LEVEL`` is 3 unless the environment sets it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if FILTERED_MODULE not in sys.modules:
        sys.meta_path.insert(0, _FilteredImport())
    try:
        yield
    finally:
        _remove_hooks()


if __name__ == "__main__":  # the filter process of `filtered_stderr`
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the command; this ends when its pipe closes
    forward(sys.stdin.buffer, sys.stderr.buffer)
