"""Callbacks: progress lines, TensorBoard runs, scalars (also for diverged values), images and text, history."""
import importlib
import io
import json
import re

import numpy as np
import pytest
import tensorflow as tf

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tfnas.callbacks import (CELL_KEY, FLOAT32_MAX, KEEP_SUFFIX, History, LabelledMatrix, ProgressPrinter,
                             TensorBoardLogger, ThroughputMeter)
from tfnas.config import TrainConfig
from tfnas.errors import PathAccessError
from tfnas.genotypes import resolve_genotype
from tfnas.hparams import config_hparams
from tfnas.metrics import perplexity
from tfnas.settings import to_dict
from tfnas.viz import alpha_heatmap, cell_image, labelled_heatmap, sorted_weights_image


def read_runs(logdir):
    """``{(run, tag, step): value}`` of every summary under ``logdir`` (``run`` the event file's folder relative to
    it, ``"."`` the folder itself): a scalar as a float, an image decoded, a text as its array of strings."""
    values = {}
    for path in logdir.rglob("events.out.tfevents.*"):
        run = path.parent.relative_to(logdir).as_posix()
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                plugin, array = v.metadata.plugin_data.plugin_name, tf.make_ndarray(v.tensor)
                if plugin == "images":
                    width, height, *pngs = array
                    assert len(pngs) == 1
                    image = tf.io.decode_png(pngs[0]).numpy()
                    assert image.shape[:2] == (int(height), int(width))
                    values[(run, v.tag, event.step)] = image
                elif plugin == "text":
                    values[(run, v.tag, event.step)] = array.astype(str)
                else:
                    assert plugin == "scalars"
                    values[(run, v.tag, event.step)] = float(array)
    return values


def test_tensorboard_logger_writes_scalars_and_clips_diverged_values(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    logger.on_event("train", {"step": 3, "loss": 2.5, "ppl": perplexity(1e4), "name": "x"})
    logger.on_event("epoch", {"step": 4, "alpha": np.zeros((4, 5, 3), np.uint8)})
    logger.on_event("round", {"step": 1, "trials": 4})
    logger.close()
    values = read_runs(tmp_path)
    assert values[("train", "epoch_loss", 3)] == 2.5
    assert values[("train", "epoch_ppl", 3)] == np.float32(FLOAT32_MAX)
    assert values[(".", "round/trials", 1)] == 4.0                            # other kinds: the folder itself
    assert ("validation", "epoch/alpha", 4) in values and not any(tag.endswith("name") for _, tag, _ in values)


def test_train_and_validation_are_sibling_runs_with_keras_tags(tmp_path):
    """As Keras' TensorBoard callback: ``train/`` and ``validation/`` hold the same tags, which TensorBoard's own
    reader finds in both runs (so it overlays them), each with the values logged at their steps."""
    logger = TensorBoardLogger(tmp_path)
    for step in (10, 20):
        logger.on_event("train", {"step": step, "epoch": 1, "loss": 5.0 - step / 10, "ppl": np.exp(5.0 - step / 10),
                                  "lr": 20.0})
        logger.on_event("eval", {"step": step, "epoch": 1, "valid_loss": 5.5 - step / 10,
                                 "valid_ppl": np.exp(5.5 - step / 10), "best_valid_ppl": np.exp(5.5 - step / 10)})
    logger.close()
    readers = {run: EventAccumulator(str(tmp_path / run)).Reload() for run in ("train", "validation")}
    loss = {run: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in reader.Tensors("epoch_loss")]
            for run, reader in readers.items()}
    assert loss == {"train": [(10, 4.0), (20, 3.0)], "validation": [(10, 4.5), (20, 3.5)]}
    ppl = [float(tf.make_ndarray(e.tensor_proto)) for e in readers["validation"].Tensors("epoch_ppl")]
    assert ppl == pytest.approx(np.exp([4.5, 3.5]), rel=1e-6)
    assert set(readers["train"].Tags()["tensors"]) == {"epoch_loss", "epoch_ppl", "train/epoch", "train/lr"}
    assert set(readers["validation"].Tags()["tensors"]) == {"epoch_loss", "epoch_ppl", "eval/epoch",
                                                           "eval/best_valid_ppl"}


def test_tensorboard_logger_draws_probability_matrices_and_weight_vectors_with_viz(tmp_path):
    probs = np.array([[0.1, 0.9, 0.0], [0.5, 0.25, 0.25]], np.float32)       # DARTS: [edges, ops]
    weights = np.array([0.2, 0.5, 0.3])                                      # WeNet: a weight per network
    logger = TensorBoardLogger(tmp_path)
    logger.on_event("round", {"step": 2, "alpha_cell": probs, "sorted_weights": weights,
                              f"sorted_weights{KEEP_SUFFIX}": 1, "weights_unkept": weights})
    logger.close()
    images = {(tag, step): v for (_, tag, step), v in read_runs(tmp_path).items() if isinstance(v, np.ndarray)}
    assert sorted(images) == [("round/alpha_cell", 2), ("round/sorted_weights", 2), ("round/weights_unkept", 2)]
    np.testing.assert_array_equal(images[("round/alpha_cell", 2)], alpha_heatmap(probs))
    np.testing.assert_array_equal(images[("round/sorted_weights", 2)], sorted_weights_image(weights, keep=1))
    # Without its companion key no bar is drawn as kept.
    np.testing.assert_array_equal(images[("round/weights_unkept", 2)], sorted_weights_image(weights, keep=0))
    assert not np.array_equal(sorted_weights_image(weights, keep=1), sorted_weights_image(weights, keep=0))


EDGES, OPS = ("node1<-0", "node2<-0", "node2<-1"), ("none", "tanh")
PROBS = np.array([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]], np.float32)


def test_a_labelled_matrix_is_a_labelled_heatmap_and_a_scalar_per_entry(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    logger.on_event("train", {"step": 7, "alpha_cell": LabelledMatrix(PROBS, EDGES, OPS)})
    logger.close()
    values = read_runs(tmp_path)
    np.testing.assert_array_equal(values[("train", "train/alpha_cell", 7)], labelled_heatmap(PROBS, EDGES, OPS))
    entries = {tag: v for (run, tag, step), v in values.items() if tag.startswith("train/alpha_cell/")}
    assert entries == {f"train/alpha_cell/{edge}/{op}": float(PROBS[i, j])
                       for i, edge in enumerate(EDGES) for j, op in enumerate(OPS)}


def test_the_labelled_heatmap_shows_its_labels_and_the_colours_of_the_plain_one():
    image = labelled_heatmap(PROBS, EDGES, OPS)
    plain = labelled_heatmap(PROBS, ("",) * 3, ("",) * 2)
    assert image.shape == plain.shape and image.dtype == np.uint8
    assert (image != plain).any(axis=-1).sum() > 100                     # the labels are drawn
    pixels = image.reshape(-1, 3)
    for colour in alpha_heatmap(PROBS, cell_px=1).reshape(-1, 3):      # every entry's colour is there
        assert (pixels == colour).all(axis=1).sum() > 100
    with pytest.raises(ValueError, match=r"\[3, 3\] matrix"):
        labelled_heatmap(PROBS, EDGES, (*OPS, "relu"))
    with pytest.raises(ValueError, match="must have shape"):
        LabelledMatrix(PROBS, EDGES[:2], OPS)


def test_without_matplotlib_the_heatmap_loses_its_labels_and_the_cell_is_not_drawn_with_a_warning(tmp_path,
                                                                                                   monkeypatch):
    for module in ("tfnas.viz.heatmap", "tfnas.viz.cell_graph"):   # the names they imported
        monkeypatch.setattr(importlib.import_module(module), "has_matplotlib", lambda: False)
    logger = TensorBoardLogger(tmp_path)
    with pytest.warns(UserWarning, match=r"matplotlib is not installed: .*labels.*pip install tfnas\[compare\]"):
        logger.on_event("train", {"step": 1, "alpha_cell": LabelledMatrix(PROBS, EDGES, OPS)})
    with pytest.warns(UserWarning, match="no cell drawings"):
        logger.on_event("epoch", {"step": 1, CELL_KEY: resolve_genotype("darts_v2").to_dict()})
    logger.close()
    values = read_runs(tmp_path)
    np.testing.assert_array_equal(values[("train", "train/alpha_cell", 1)], alpha_heatmap(PROBS))
    assert ("validation", "epoch/genotype", 1) in values and ("validation", "epoch/cell", 1) not in values


def test_the_settings_and_each_derived_genotype_are_text_and_a_dag_cell_is_drawn(tmp_path):
    config = TrainConfig(batch_size=4)
    genotype, tree = resolve_genotype("darts_v2"), resolve_genotype("nascell")
    logger = TensorBoardLogger(tmp_path, settings=config, genotype=tree)
    logger.on_event("epoch", {"step": 30, "valid_ppl": 300.0, CELL_KEY: genotype.to_dict()})
    logger.close()
    values = read_runs(tmp_path)
    table = {name: json.loads(value) for name, value in values[(".", "settings", 0)]}
    assert table["batch_size"] == 4 and table["model.nhid"] == config.model.nhid and table["seed"] == config.seed
    assert table == flat(to_dict(config))                             # every setting, a section's with dotted names
    assert set(config_hparams(config)) < set(table)                   # more than the HParams (lists, None too)
    assert str(values[(".", "run/genotype", 0)]).splitlines() == [f"    {line}" for line in tree.describe()]
    assert (".", "run/cell", 0) not in values                                     # a tree cell is not drawn
    text = str(values[("validation", "epoch/genotype", 30)])
    assert text.splitlines() == [f"    {line}" for line in genotype.describe()]    # a Markdown code block
    np.testing.assert_array_equal(values[("validation", "epoch/cell", 30)], cell_image(genotype))


def flat(settings, prefix=""):
    """A nested dict of settings with dotted names."""
    out = {}
    for k, v in settings.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def test_progress_printer_and_history():
    stream = io.StringIO()
    printer, history = ProgressPrinter(stream), History()
    for cb in (printer, history):
        cb.on_event("eval", {"step": 7, "valid_ppl": 123.456, "img": np.zeros((2, 2, 3)),
                             "alpha": LabelledMatrix(PROBS, EDGES, OPS)})
    assert stream.getvalue() == "[eval] step 7 | valid_ppl 123.46\n"
    assert history.events == {"eval": [{"step": 7, "valid_ppl": 123.456}]}


def test_throughput_meter_reports_and_resets():
    times = iter([10.0, 14.0, 20.0])
    meter = ThroughputMeter(clock=lambda: next(times))
    meter.add(2.0, 100)
    meter.add(4.0, 300)
    first = meter.summary()
    assert first == {"loss": 3.0, "ppl": pytest.approx(np.exp(3.0)), "s_per_step": 2.0, "tok_per_s": 100.0}
    meter.add(1.0, 60)
    assert meter.summary()["tok_per_s"] == 10.0  # 60 tokens in the 6 s since the last summary


def test_a_full_disk_for_tensorboard_names_the_folder_on_one_line(tmp_path, monkeypatch):
    """Issue 26 item 18: TensorFlow's ``ResourceExhaustedError`` of a full disk, raised creating or writing the
    event file, is one line naming the TensorBoard folder and the disk; a memory exhaustion stays what it is."""
    folder = tmp_path / "tensorboard"

    def disk_full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, f"{folder}/events.out.tfevents.1; No space left on device")

    monkeypatch.setattr(tf.summary, "create_file_writer", disk_full)
    message = (rf"^cannot write TensorBoard events in {re.escape(repr(str(folder)))}: No space left on device "
               r"\(\d+\.\d MB free on the disk holding ")
    with pytest.raises(PathAccessError, match=message):
        TensorBoardLogger(folder)
    monkeypatch.undo()
    logger = TensorBoardLogger(folder)
    monkeypatch.setattr(tf.summary, "scalar", disk_full)
    with pytest.raises(PathAccessError, match=message):
        logger.on_event("train", {"step": 1, "loss": 2.0})

    def out_of_memory(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape [1000000000]")

    monkeypatch.setattr(tf.summary, "scalar", out_of_memory)
    with pytest.raises(tf.errors.ResourceExhaustedError, match="OOM"):
        logger.on_event("train", {"step": 2, "loss": 2.0})
