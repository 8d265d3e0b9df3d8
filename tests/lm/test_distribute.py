"""Data-parallel training (`tfnas.lm.distribute`) against one device with the same global batch.

Every run is a ``tfnas train`` process of its own (tests/lm/distributed_train.py): logical CPU devices
and a multi-worker cluster must be set up before TensorFlow starts. Dropout is off so that one device
and R replicas compute the same function (with dropout each replica draws its own masks).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support import latest_checkpoint_arrays

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("distributed_train.py")
FLAGS = ["--genotype", str(REPO / "exported_cells" / "darts_v2.json"), "--batch-size", "4", "--eval-batch-size", "4",
         "--bptt", "8", "--lr", "5", "--max-steps", "12", "--checkpoint-interval", "3", "--eval-interval", "2",
         "--log-interval", "1", "--emsize", "16", "--nhid", "16", "--seed", "7", "--no-test",
         *[arg for rate in ("dropout", "dropouth", "dropoutx", "dropouti", "dropoute") for arg in (f"--{rate}", "0")]]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "tests"), "CUDA_VISIBLE_DEVICES": "", **extra}


def train(corpus: Path, out: Path, distribute: str, cpus: int = 1, kill_at: int = 0, **env: str
          ) -> subprocess.Popen:
    """Starts a ``tfnas train`` process (``wait()`` for it)."""
    args = [sys.executable, str(DRIVER), str(cpus), str(kill_at), *FLAGS, "--dataset", str(corpus),
            "--out", str(out), "--distribute", distribute]
    return subprocess.Popen(args, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, status: int = 0) -> str:
    output = process.communicate(timeout=300)[0]
    assert process.returncode == status, output
    return output


def valid_losses(out: Path) -> list[float]:
    return [row["valid_loss"] for row in json.loads((out / "result.json").read_text())["history"]]


def assert_close_runs(a: Path, b: Path) -> None:
    """Same validation losses and final weights, up to float32 summation order."""
    np.testing.assert_allclose(valid_losses(a), valid_losses(b), rtol=1e-5)
    arrays_a, arrays_b = latest_checkpoint_arrays(a), latest_checkpoint_arrays(b)
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        np.testing.assert_allclose(arrays_a[key], arrays_b[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """The corpus and a one-device run on it."""
    from support import write_ascending_corpus

    root = tmp_path_factory.mktemp("distribute")
    corpus = write_ascending_corpus(root / "corpus")
    finish(train(corpus, root / "one", "none"))
    return corpus, root / "one"


def test_two_replicas_match_one_device(reference, tmp_path):
    corpus, one = reference
    output = finish(train(corpus, tmp_path / "two", "mirrored", cpus=2))
    assert_close_runs(tmp_path / "two", one)
    assert len(valid_losses(one)) == 6 and "data-parallel on 2 replicas (mirrored)" in output


def test_killed_mirrored_run_resumes_exactly_and_on_another_replica_count(reference, tmp_path):
    corpus, one = reference
    finish(train(corpus, tmp_path / "two", "mirrored", cpus=2))
    finish(train(corpus, tmp_path / "cut", "mirrored", cpus=2, kill_at=8), status=130)
    finish(train(corpus, tmp_path / "cut", "mirrored", cpus=2))
    for key, value in latest_checkpoint_arrays(tmp_path / "two").items():
        np.testing.assert_array_equal(latest_checkpoint_arrays(tmp_path / "cut")[key], value, err_msg=key)
    # Written with two replicas, resumed on one device.
    finish(train(corpus, tmp_path / "moved", "mirrored", cpus=2, kill_at=8), status=130)
    finish(train(corpus, tmp_path / "moved", "none"))
    assert_close_runs(tmp_path / "moved", one)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_loopback_workers_match_one_worker(reference, tmp_path):
    corpus, one = reference
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = [train(corpus, tmp_path / "cluster", "multi_worker",
                     TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
               for i in range(2)]
    for process in workers:
        finish(process)
    assert_close_runs(tmp_path / "cluster", one)
    assert_close_runs(tmp_path / "cluster" / "worker-1", tmp_path / "cluster")


def test_batch_that_replicas_cannot_share_is_refused(reference, tmp_path):
    corpus, _ = reference
    process = train(corpus, tmp_path / "odd", "mirrored", cpus=3)
    output = finish(process, status=2)
    assert "batch_size=4 is not a multiple of the 3 replicas" in output.strip().splitlines()[-1]
