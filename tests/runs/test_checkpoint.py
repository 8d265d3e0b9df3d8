"""Checkpoints: exact round trip, pruning, the record of the model's weights, atomic files, clear errors."""
import errno
import os
import re

import numpy as np
import pytest

from tfnas.errors import PathAccessError
from tfnas.runs import atomic
from tfnas.runs.checkpoint import (CheckpointError, CheckpointManager, CorruptCheckpointError, assign_arrays,
                                   read_arrays, save_variables)

from support import Var


def variables(seed=0):
    rng = np.random.default_rng(seed)
    return [Var("a", rng.normal(size=(2, 3)).astype(np.float32)), Var("b", np.int64(seed)),
            Var("c", rng.normal(size=(4,)).astype(np.float32))]


def test_save_then_restore_is_exact(tmp_path):
    manager = CheckpointManager(tmp_path / "checkpoints")
    saved = variables(seed=1)
    state = {"step": 5, "iterator": {"position": 17, "rng": [1, 2]}, "best": None}
    path = manager.save(5, saved, state, extra={"hidden0": np.full((2, 4), 0.25, np.float32)})
    assert path == tmp_path / "checkpoints" / "step-5" and manager.latest() == path
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step-5"
    fresh = variables(seed=2)
    restored_state, extra = manager.restore(path, fresh)
    assert restored_state == state
    np.testing.assert_array_equal(extra["hidden0"], np.full((2, 4), 0.25, np.float32))
    for a, b in zip(saved, fresh):
        np.testing.assert_array_equal(a.value, b.value)
        assert a.value.dtype == b.value.dtype


def test_keeps_the_newest_checkpoints(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    for step in (3, 10, 7):
        manager.save(step, variables(), {"step": step})
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-10", "step-7"]
    assert manager.latest().name == "step-7"
    assert not list(tmp_path.glob(".*tmp*"))


def test_the_model_weights_are_recorded_by_position(tmp_path):
    manager = CheckpointManager(tmp_path)
    saved = variables(seed=3)
    with_record = manager.save(1, saved, {}, weights=[saved[2], saved[0]])
    assert read_arrays(with_record / "variables.npz").weights == [2, 0]
    arrays = manager.read_weights(with_record)
    np.testing.assert_array_equal(arrays[0], saved[2].value)
    np.testing.assert_array_equal(arrays[1], saved[0].value)
    without = manager.save(2, saved, {})
    assert read_arrays(without / "variables.npz").weights is None and manager.read_weights(without) is None


def test_restore_refuses_another_model(tmp_path):
    save_variables(tmp_path / "w.npz", variables())
    with pytest.raises(CheckpointError, match=r"w\.npz holds 3 variables but the model has 2: was it written by "
                                              r"another model configuration\?"):
        assign_arrays(variables()[:2], read_arrays(tmp_path / "w.npz").variables, tmp_path / "w.npz")
    other = [Var("a", np.zeros((3, 2), np.float32)), Var("b", np.int64(0)), Var("c", np.zeros(4, np.float32))]
    with pytest.raises(CheckpointError, match=r"array 0 has shape \(2, 3\), the model's variable a expects \(3, 2\)"):
        assign_arrays(other, read_arrays(tmp_path / "w.npz").variables, tmp_path / "w.npz")
    (tmp_path / "junk.npz").write_text("not an npz")
    with pytest.raises(CorruptCheckpointError, match=r"junk\.npz is truncated or corrupted \(not an \.npz archive\)$"):
        read_arrays(tmp_path / "junk.npz")


def test_a_weights_file_is_replaced_atomically(tmp_path, monkeypatch):
    path = tmp_path / "weights.npz"
    old = variables(seed=4)
    save_variables(path, old)

    def replace(src, dst):
        raise OSError("killed (simulated) before the rename")

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match="killed"):
        save_variables(path, variables(seed=5))
    for var, array in zip(old, read_arrays(path).variables):
        np.testing.assert_array_equal(var.value, array)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.npz"]


def test_a_pointer_to_an_incomplete_checkpoint_is_not_restored(tmp_path):
    (tmp_path / "step-9").mkdir()
    (tmp_path / "latest").write_text("step-9")
    manager = CheckpointManager(tmp_path)
    assert manager.latest() is None and manager.candidates() == [tmp_path / "step-9"]
    with pytest.raises(CorruptCheckpointError, match=r"^no checkpoint of .* can be read \(.*step-9/state\.json is "
                                                     r"truncated or corrupted \(FileNotFoundError: .*\)\); use a new "
                                                     r"--out folder$"):
        manager.restore_newest(variables())
    assert CheckpointManager(tmp_path / "nothing").latest() is None
    assert CheckpointManager(tmp_path / "nothing").restore_newest(variables()) is None


def damage(path, how):
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x93NUMPY garbage" * 9, "empty": b""}[how])


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
def test_restore_newest_skips_damaged_checkpoints_and_sets_them_aside(tmp_path, how):
    manager = CheckpointManager(tmp_path, keep=3)
    for step in (2, 4, 6):
        manager.save(step, variables(seed=step), {"step": step})
    damage(tmp_path / "step-6" / "variables.npz", how)
    (tmp_path / "step-4" / "state.json").write_text('{"step": 4, "ep')
    fresh = variables(seed=9)
    restored = manager.restore_newest(fresh)
    assert restored.path == tmp_path / "step-2" and restored.state == {"step": 2}
    for var, saved in zip(fresh, variables(seed=2)):
        np.testing.assert_array_equal(var.value, saved.value)
    assert [line.split(":")[0] for line in restored.skipped] == ["skipped the unreadable checkpoint step-6",
                                                                 "skipped the unreadable checkpoint step-4"]
    assert "step-6/variables.npz is truncated or corrupted (" in restored.skipped[0]
    assert "step-4/state.json is truncated or corrupted (JsonFileError: " in restored.skipped[1]
    assert not any("pickle" in line for line in restored.skipped)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt-step-4", "corrupt-step-6", "latest", "step-2"]
    # The next checkpoints are pruned among themselves, never in favour of the damaged ones.
    for step in (3, 4, 5, 6):
        manager.save(step, variables(seed=step), {"step": step})
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-4", "step-5", "step-6"]


def test_a_checkpoint_that_does_not_fit_the_model_is_not_skipped(tmp_path):
    manager = CheckpointManager(tmp_path)
    manager.save(1, variables(), {"step": 1})
    with pytest.raises(CheckpointError, match="holds 3 variables but the model has 2") as err:
        manager.restore_newest(variables()[:2])
    assert not isinstance(err.value, CorruptCheckpointError)


def test_a_killed_write_leaves_the_previous_checkpoint_and_its_temporary_folder_is_removed(tmp_path):
    manager = CheckpointManager(tmp_path)
    manager.save(1, variables(seed=1), {"step": 1})
    (tmp_path / ".tmp-step-2").mkdir()                           # killed while writing step 2
    (tmp_path / ".tmp-step-2" / ".variables.npz.tmp").write_bytes(b"PK\x03\x04 half")
    assert manager.restore_newest(variables()).path == tmp_path / "step-1"
    manager.save(3, variables(seed=3), {"step": 3})
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_full_disk_names_the_checkpoint_and_leaves_the_previous_one(tmp_path, monkeypatch):
    """Issue 26 item 18: ENOSPC while a checkpoint is written is one line naming the checkpoint and the disk; the
    half-written folder is removed and ``latest`` still names the previous checkpoint."""
    manager = CheckpointManager(tmp_path / "ckpt")
    manager.save(1, [Var("w", np.zeros(3))], {"step": 1})

    def savez(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", savez)
    step = re.escape(repr(str(tmp_path / "ckpt" / "step-2")))
    with pytest.raises(PathAccessError, match=rf"^cannot write checkpoint {step}: No space left on device "
                                              r"\(\d+\.\d MB free on the disk holding "):
        manager.save(2, [Var("w", np.ones(3))], {"step": 2})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["latest", "step-1"]
    assert (tmp_path / "ckpt" / "latest").read_text() == "step-1"
