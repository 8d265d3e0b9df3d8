"""The lock of a run folder: one holder at a time, named in the refusal; a dead holder's lock is taken over."""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas.runs.lock import RunLock, RunLockedError

REPO = Path(__file__).resolve().parents[2]


def test_one_holder_at_a_time_and_the_refusal_names_it(tmp_path):
    first = RunLock(tmp_path / "run").acquire()
    holder = json.loads((tmp_path / "run" / "lock").read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    message = (f"{tmp_path / 'run'} is in use by process {os.getpid()} on host {socket.gethostname()} since "
               f"{holder['since']} (lock file {tmp_path / 'run' / 'lock'}); wait for it to end or use another --out "
               "folder")
    with pytest.raises(RunLockedError, match=f"^{re.escape(message)}$"):
        RunLock(tmp_path / "run").acquire()             # another holder, even in this process
    assert first.acquire() is first and first.held      # the holder itself may ask again
    first.release()
    assert not first.held
    with RunLock(tmp_path / "run") as second:
        assert second.held
    assert not second.held


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    code = ("import sys, time; from tfnas.runs.lock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"in use by process {proc.pid} on host"):
            RunLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    assert json.loads((tmp_path / "lock").read_text())["pid"] == proc.pid      # the file outlives its holder
    with RunLock(tmp_path):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()


def test_an_unreadable_lock_file_names_another_process(tmp_path):
    (tmp_path / "lock").write_text("garbage")
    with RunLock(tmp_path):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
