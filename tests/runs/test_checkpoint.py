"""Checkpoints: exact round trip, pruning, the record of the model's weights, atomic files, clear errors."""
import numpy as np
import pytest

from tfnas.runs import atomic
from tfnas.runs.checkpoint import CheckpointError, CheckpointManager, assign_arrays, read_arrays, save_variables

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
    with pytest.raises(CheckpointError, match=r"cannot read .*junk\.npz"):
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


def test_latest_refuses_a_pointer_to_an_incomplete_checkpoint(tmp_path):
    (tmp_path / "step-9").mkdir()
    (tmp_path / "latest").write_text("step-9")
    with pytest.raises(CheckpointError, match=r"names .*step-9, which is not a complete checkpoint"):
        CheckpointManager(tmp_path).latest()
    assert CheckpointManager(tmp_path / "nothing").latest() is None
