"""A search killed by SIGKILL in the middle of a checkpoint write resumes to the end of an uninterrupted one, bit
for bit: one strategy in the default suite, every strategy in the slow one (``pytest -m slow``).

The killed search is a ``tfnas search`` process whose checkpoint writes are slowed down (half of
``variables.npz`` written, a pause, the rest), so that the test sees the temporary checkpoint folder and kills the
process at a random moment inside the write; the resumed and the uninterrupted searches run in this process.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfnas.cli import main
from tfnas.genotypes.files import load_genotype

from support import TINY_SEARCH, assert_same_checkpoints, computed_record, tiny_search_config, write_ascending_corpus, \
    write_config_file

REPO = Path(__file__).resolve().parents[2]
#: Seconds a checkpoint write pauses halfway in the killed process.
PAUSE = 0.5
#: ``python -c`` program: ``tfnas`` (arguments after the pause) with checkpoint writes paused halfway.
SLOW_WRITES = """
import io, sys, time
import numpy as np
real = np.savez
def savez(file, *args, **kwargs):
    if ".tmp-step-" not in str(getattr(file, "name", "")):
        return real(file, *args, **kwargs)
    buffer = io.BytesIO()
    real(buffer, *args, **kwargs)
    data = buffer.getvalue()
    file.write(data[: len(data) // 2])
    file.flush()
    time.sleep(float(sys.argv[1]))
    file.write(data[len(data) // 2:])
np.savez = savez
from tfnas.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return write_ascending_corpus(tmp_path_factory.mktemp("sigkill") / "tiny")


def search_argv(strategy: str, config: Path, out: Path) -> list[str]:
    return ["search", "--strategy", strategy, "--config", str(config), "--out", str(out), "--quiet"]


def kill_during_a_checkpoint_write(argv: list[str], out: Path, timeout: float = 120.0) -> Path:
    """Runs ``tfnas argv`` with slowed checkpoint writes; SIGKILLs it inside a write after its second checkpoint.

    Returns the temporary folder it was writing.
    """
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITES, str(PAUSE), *argv], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.monotonic() + timeout
    try:
        while True:
            writing = sorted(out.rglob(".tmp-step-*"))
            if writing and len(list(out.rglob("step-*"))) >= 2:
                time.sleep(random.uniform(0.0, 0.8 * PAUSE))          # somewhere inside the paused write
                proc.send_signal(signal.SIGKILL)
                break
            assert proc.poll() is None, f"the search ended before it was killed: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no checkpoint write was seen"
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return writing[0]


def same_end(strategy: str, full: Path, cut: Path) -> None:
    """The two search folders end alike: genotype, and the checkpoints or records of the strategy."""
    assert load_genotype(full / "genotype.json") == load_genotype(cut / "genotype.json")
    results = [json.loads((d / "search_result.json").read_text()) for d in (full, cut)]
    assert results[0]["metrics"] == results[1]["metrics"]
    if strategy == "wenet":                                 # finished rounds drop their checkpoints
        for name in ("wenet_state.json", "rounds.jsonl"):
            assert computed_record(full / name) == computed_record(cut / name), name
        return
    assert_same_checkpoints(full, cut)
    if (full / "trials.jsonl").exists():                    # a black-box search: its trials and its children
        assert (full / "trials.jsonl").read_text() == (cut / "trials.jsonl").read_text()
        children = sorted(p.name for p in (full / "children").iterdir())
        assert children == sorted(p.name for p in (cut / "children").iterdir()) and children
        for child in children:
            assert_same_checkpoints(full / "children" / child, cut / "children" / child)
    else:
        assert (full / "history.jsonl").read_text() == (cut / "history.jsonl").read_text()


def killed_and_resumed_equals_uninterrupted(strategy: str, corpus_dir: Path, root: Path) -> None:
    config = write_config_file(root / "config.yaml", tiny_search_config(strategy, corpus_dir))
    assert main(search_argv(strategy, config, root / "full")) == 0
    writing = kill_during_a_checkpoint_write(search_argv(strategy, config, root / "cut"), root / "cut")
    assert writing.exists()                                   # the torn write is left as it was
    assert main(search_argv(strategy, config, root / "cut")) == 0
    assert not list((root / "cut").rglob(".tmp-step-*"))      # and removed by the next checkpoint of its folder
    same_end(strategy, root / "full", root / "cut")


def test_a_search_killed_while_writing_a_checkpoint_resumes_bit_for_bit(corpus_dir, tmp_path):
    killed_and_resumed_equals_uninterrupted("nasabn", corpus_dir, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", sorted(TINY_SEARCH))
def test_every_strategy_killed_while_writing_a_checkpoint_resumes_bit_for_bit(corpus_dir, tmp_path, strategy):
    killed_and_resumed_equals_uninterrupted(strategy, corpus_dir, tmp_path)
