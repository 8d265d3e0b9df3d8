"""Callbacks: progress lines, TensorBoard scalars (also for diverged values), history."""
import io

import numpy as np
import pytest
import tensorflow as tf

from tfnas.callbacks import FLOAT32_MAX, History, ProgressPrinter, TensorBoardLogger, ThroughputMeter
from tfnas.metrics import perplexity


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
