"""Running a TFLite export: any batch and any length through its fixed ``[batch, window]`` signatures, exactly.

A TFLite export (`tfnas.export.tflite_format`) holds the model's forward pass
at fixed shapes: the signature ``window`` takes ``ids`` int32 ``[batch,
window]`` and the states ``hidden_i`` ``[batch, units]`` and gives ``logits``
and ``final_hidden_i``; the signature ``step`` is the same pass over one token
(``[batch, 1]``; absent when the window is 1, where ``window`` is it).
`TfliteRunner.run` takes ids ``[B, T]`` of any shape and gives what one call
of the model over them gives (`LanguageModel.forward`):

* rows: the rows are run in groups of ``batch``, the last group padded with
  rows of id 0 and zero states that are then dropped. Rows never mix in the
  model, so this is exact.
* time: whole windows of ``window`` tokens, the state carried from one to
  the next (what one call does: the recurrence is the same step after step);
  the ``r < window`` tokens left over go through ``step`` one at a time.
  Padding them to a whole window instead would give the same logits (the
  model is causal) but the states after the padding, not after token ``r``.
* an attention head reads the tokens of its own call only (one BPTT window,
  `tfnas.cells.attention`), so for such a model a call holds at most
  ``window`` tokens: whole, it is one ``window`` run; shorter, its logits
  come from a ``window`` run padded with id 0 after it (exact: every head is
  causal, so a position never reads a later one) and its final states from
  ``step`` run token by token (the states do not pass through the head).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from tfnas.export.metadata import IDS_INPUT, state_input_name, state_output_name

#: The signature keys of a TFLite export.
WINDOW_SIGNATURE = "window"
STEP_SIGNATURE = "step"


def interpreter(model_content: bytes | None = None, path: str | Path | None = None):
    """A `tf.lite.Interpreter` of a TFLite model (bytes or file), without TensorFlow's deprecation warning.

    TensorFlow 2.21 warns that ``tf.lite.Interpreter`` moves to the
    ``ai_edge_litert`` package; that package is not a dependency here and the
    interpreter still runs the models, so the warning is silenced (only it).
    """
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated",
                                category=UserWarning)
        return tf.lite.Interpreter(model_content=model_content, model_path=None if path is None else str(path))


class TfliteRunner:
    """Runs a TFLite export's signatures on ids of any shape (see the module docstring).

    Args:
        model_content: the TFLite flatbuffer (or pass ``path``).
        path: the ``model.tflite`` file.
        attention: whether the model has an attention head (then a call holds
            at most ``window`` tokens).
    """

    def __init__(self, model_content: bytes | None = None, path: str | Path | None = None, attention: bool = False):
        self.interpreter = interpreter(model_content, path)
        signatures = self.interpreter.get_signature_list()
        self.window_runner = self.interpreter.get_signature_runner(WINDOW_SIGNATURE)
        self.step_runner = (self.interpreter.get_signature_runner(STEP_SIGNATURE) if STEP_SIGNATURE in signatures
                            else self.window_runner)
        details = self.window_runner.get_input_details()
        self.batch, self.window = (int(d) for d in details[IDS_INPUT]["shape"])
        self.n_states = len(details) - 1
        self.attention = attention

    def run(self, ids: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits ``[B, T, vocab]`` and final states of ``ids`` (int ``[B, T]``) from ``states`` (``[B, ...]``).

        Raises:
            ValueError: a model with an attention head given more than
                ``window`` tokens in one call.
        """
        ids = np.asarray(ids, np.int32)
        if self.attention and ids.shape[1] > self.window:
            raise ValueError(f"this TFLite export reads at most {self.window} tokens per call through its attention "
                             f"head (its window); received {ids.shape[1]}: export it with a longer --tflite-window")
        logits, finals = [], []
        for start in range(0, ids.shape[0], self.batch):
            rows = ids[start:start + self.batch]
            pad = self.batch - rows.shape[0]
            group_logits, group_states = self._rows(np.pad(rows, ((0, pad), (0, 0))),
                                                    [np.pad(s[start:start + self.batch],
                                                            ((0, pad),) + ((0, 0),) * (s.ndim - 1))
                                                     for s in states])
            logits.append(group_logits[:rows.shape[0]])
            finals.append([s[:rows.shape[0]] for s in group_states])
        return np.concatenate(logits), [np.concatenate(column) for column in zip(*finals)]

    def _call(self, runner, ids: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        out = runner(**{IDS_INPUT: ids}, **{state_input_name(i): s for i, s in enumerate(states)})
        return out["logits"], [out[state_output_name(i)] for i in range(self.n_states)]

    def _rows(self, ids: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One group of exactly ``batch`` rows, any length."""
        whole = ids.shape[1] - ids.shape[1] % self.window
        logits = []
        for start in range(0, whole, self.window):
            chunk, states = self._call(self.window_runner, ids[:, start:start + self.window], states)
            logits.append(chunk)
        rest = ids[:, whole:]
        if rest.shape[1] and self.attention:
            padded = np.pad(rest, ((0, 0), (0, self.window - rest.shape[1])))
            chunk, _ = self._call(self.window_runner, padded, states)
            logits.append(chunk[:, :rest.shape[1]])
            for t in range(rest.shape[1]):
                _, states = self._call(self.step_runner, rest[:, t:t + 1], states)
        else:
            for t in range(rest.shape[1]):
                chunk, states = self._call(self.step_runner, rest[:, t:t + 1], states)
                logits.append(chunk)
        if not logits:
            vocab = int(self.window_runner.get_output_details()["logits"]["shape"][-1])
            return np.zeros((ids.shape[0], 0, vocab), np.float32), states
        return np.concatenate(logits, axis=1), states
