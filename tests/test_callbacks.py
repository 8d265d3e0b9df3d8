"""Callbacks: progress lines, TensorBoard scalars (also for diverged values), history."""
import io
import re

import numpy as np
import pytest
import tensorflow as tf

from tfnas.callbacks import FLOAT32_MAX, KEEP_SUFFIX, History, ProgressPrinter, TensorBoardLogger, ThroughputMeter
from tfnas.errors import PathAccessError
from tfnas.metrics import perplexity
from tfnas.viz import alpha_heatmap, sorted_weights_image


def test_tensorboard_logger_writes_scalars_and_clips_diverged_values(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    logger.on_event("train", {"step": 3, "loss": 2.5, "ppl": perplexity(1e4), "name": "x"})
    logger.on_event("epoch", {"step": 4, "alpha": np.zeros((4, 5, 3), np.uint8)})
    logger.close()
    values = {}
    for path in tmp_path.iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                values[(v.tag, event.step)] = tf.make_ndarray(v.tensor) if v.HasField("tensor") else v.simple_value
    assert float(values[("train/loss", 3)]) == 2.5
    assert float(values[("train/ppl", 3)]) == np.float32(FLOAT32_MAX)
    assert ("epoch/alpha", 4) in values and ("train/name", 3) not in values


def read_images(logdir):
    """``{(tag, step): decoded image}`` of the image summaries in ``logdir``."""
    images = {}
    for path in logdir.iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                if v.metadata.plugin_data.plugin_name == "images":
                    width, height, *pngs = tf.make_ndarray(v.tensor)
                    assert len(pngs) == 1
                    image = tf.io.decode_png(pngs[0]).numpy()
                    assert image.shape[:2] == (int(height), int(width))
                    images[(v.tag, event.step)] = image
    return images


def test_tensorboard_logger_draws_probability_matrices_and_weight_vectors_with_viz(tmp_path):
    probs = np.array([[0.1, 0.9, 0.0], [0.5, 0.25, 0.25]], np.float32)       # DARTS: [edges, ops]
    weights = np.array([0.2, 0.5, 0.3])                                      # WeNet: a weight per network
    logger = TensorBoardLogger(tmp_path)
    logger.on_event("epoch", {"step": 2, "alpha_cell": probs, "sorted_weights": weights,
                              f"sorted_weights{KEEP_SUFFIX}": 1, "weights_unkept": weights})
    logger.close()
    images = read_images(tmp_path)
    assert sorted(images) == [("epoch/alpha_cell", 2), ("epoch/sorted_weights", 2), ("epoch/weights_unkept", 2)]
    np.testing.assert_array_equal(images[("epoch/alpha_cell", 2)], alpha_heatmap(probs))
    np.testing.assert_array_equal(images[("epoch/sorted_weights", 2)], sorted_weights_image(weights, keep=1))
    # Without its companion key no bar is drawn as kept.
    np.testing.assert_array_equal(images[("epoch/weights_unkept", 2)], sorted_weights_image(weights, keep=0))
    assert not np.array_equal(sorted_weights_image(weights, keep=1), sorted_weights_image(weights, keep=0))


def test_progress_printer_and_history():
    stream = io.StringIO()
    printer, history = ProgressPrinter(stream), History()
    for cb in (printer, history):
        cb.on_event("eval", {"step": 7, "valid_ppl": 123.456, "img": np.zeros((2, 2, 3))})
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
