"""The lock of a run folder: one holder at a time, named in the refusal; a dead holder's lock is taken over."""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas.errors import TfnasError
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


def test_a_held_lock_whose_record_is_not_utf8_is_still_in_use(tmp_path):
    first = RunLock(tmp_path).acquire()
    (tmp_path / "lock").write_bytes(b"\xff\xfe{\x80 not UTF-8")
    message = (f"{tmp_path} is in use by another process (lock file {tmp_path / 'lock'}); wait for it to end or use "
               "another --out folder")
    with pytest.raises(RunLockedError, match=f"^{re.escape(message)}$"):
        RunLock(tmp_path).acquire()
    first.release()


@pytest.mark.parametrize("name", ["lock", ".lock"])
def test_a_symlink_at_the_lock_path_is_refused_and_what_it_points_to_is_left_alone(tmp_path, name):
    outside = tmp_path / "precious.txt"
    outside.write_text("not a lock\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / name).symlink_to(outside)
    with pytest.raises(TfnasError, match=f"^{re.escape(str(run / name))} is a symbolic link; a run folder's lock is "
                                         "not written through links: remove it$"):
        RunLock(run).acquire()
    assert outside.read_text() == "not a lock\n" and (run / name).is_symlink()


def test_the_record_is_not_written_through_a_link_left_at_its_temporary_path(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("not a lock\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock.tmp").symlink_to(outside)
    with RunLock(run):
        assert json.loads((run / "lock").read_text())["pid"] == os.getpid()
    assert outside.read_text() == "not a lock\n"


def test_a_system_without_fcntl_still_locks_names_the_holder_and_takes_a_dead_ones_lock_over(tmp_path):
    """Without ``fcntl`` filelock falls back to its marker file, which it breaks when the holder's process is gone."""
    no_fcntl = "import sys, warnings; sys.modules['fcntl'] = None; warnings.simplefilter('ignore'); "
    hold = no_fcntl + ("import time; from tfnas.runs.lock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
                       "print('held', flush=True); time.sleep(60)")
    take = no_fcntl + ("from tfnas.runs.lock import RunLock, RunLockedError\n"
                       "try:\n    RunLock(sys.argv[1]).acquire()\n    print('taken')\n"
                       "except RunLockedError as error:\n    print(error)")
    proc = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "held"
        refused = subprocess.run([sys.executable, "-c", take, str(tmp_path)], capture_output=True, text=True,
                                 cwd=REPO, check=True).stdout
        assert refused.startswith(f"{tmp_path} is in use by process {proc.pid} on host {socket.gethostname()} since ")
    finally:
        proc.kill()
        proc.wait()
    taken = subprocess.run([sys.executable, "-c", take, str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                           check=True).stdout
    assert taken == "taken\n"
