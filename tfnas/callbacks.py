"""Callbacks: progress lines, TensorBoard summaries and history.

Trainers and strategies never print; they call ``on_event(kind, logs)`` on
each callback. Kinds used: ``"train"`` (every ``log_interval`` steps),
``"eval"``, ``"checkpoint"``, ``"message"`` and ``"end"``; strategies add
their own (``"epoch"``, ``"round"``, ...). ``logs`` is a flat dict of
numbers, strings, NumPy arrays and `LabelledMatrix`es; ``logs["step"]`` is
the global step; ``logs[CELL_KEY]``, where there is one, is a derived
genotype's dict (``to_dict()``).

Strategies emit arrays, callbacks draw them. `TensorBoardLogger` writes an
array under ``key`` as the image ``<kind>/<key>``:

* rank 3 or 4: the image itself (``[height, width, channels]``, or a batch);
* a `LabelledMatrix` (e.g. DARTS' architecture weights, rows its edges
  ``node3<-1``, columns its operations) as the labelled heatmap of
  `tfnas.viz.labelled_heatmap`, and each entry as the scalar
  ``<kind>/<key>/<row>/<column>``;
* rank 2: a matrix of probabilities in [0, 1] as the heatmap of
  `tfnas.viz.alpha_heatmap`;
* rank 1: network weights, e.g. WeNet's, as the bars of
  `tfnas.viz.sorted_weights_image` in decreasing order; the companion key
  ``key + KEEP_SUFFIX`` (``"<key>_keep"``, an int, 0 if absent) says how
  many of the largest are kept (drawn in the kept colour). The companion is
  an ordinary number otherwise (printed, and written as a scalar).

`ProgressPrinter` and `History` skip arrays and matrices.

A Keras callback (``keras.callbacks.EarlyStopping``, ``TerminateOnNaN``,
any callback that reads epoch logs) is accepted wherever tfnas callbacks are:
`CallbackList` runs it through `KerasCallbacks`, which turns the events into
Keras' calls, and a loop stops at its next boundary once one of them sets
``model.stop_training`` (`Callback.stop_requested`).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Mapping, Sequence, TextIO

import numpy as np

from tfnas.errors import TfnasError, writing
from tfnas.metrics import perplexity

FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Suffix of the key that tells how many of a 1-D weights array's largest values are kept (module docstring).
KEEP_SUFFIX = "_keep"
#: The key of a derived genotype's dict in an event's logs, which `TensorBoardLogger` writes as text and draws.
CELL_KEY = "cell"


@dataclass(frozen=True)
class LabelledMatrix:
    """A 2-D array whose rows and columns are named, e.g. architecture weights ``[edges, ops]``.

    Args:
        values: the ``[len(rows), len(columns)]`` matrix.
        rows: the rows' names.
        columns: the columns' names.
    """

    values: np.ndarray
    rows: tuple[str, ...]
    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        if np.shape(self.values) != (len(self.rows), len(self.columns)):
            raise ValueError(f"Argument `values` must have shape [{len(self.rows)}, {len(self.columns)}] for its "
                             f"labels; received: {np.shape(self.values)}")


#: What `ProgressPrinter` and `History` leave out of an event's logs.
ARRAYS = (np.ndarray, LabelledMatrix)


def float32_scalar(value: float) -> float:
    """``value`` clipped to the float32 range of a TensorBoard scalar: a diverged figure is written as the
    largest float32, not an error."""
    return float(np.clip(value, -FLOAT32_MAX, FLOAT32_MAX))


class CallbackTypeError(TfnasError, TypeError):
    """An object given as a callback that is neither a tfnas nor a Keras callback."""


class Callback:
    """Base class: override `on_event`. A callback that sets `stop_requested` asks the loop to stop at its next
    step or epoch boundary, as ``model.stop_training`` does in ``keras.Model.fit``."""

    stop_requested: bool = False

    def on_event(self, kind: str, logs: Mapping[str, Any]) -> None:  # pragma: no cover - interface
        del kind, logs

    def close(self) -> None:
        """Flushes anything buffered."""


class CallbackList(Callback):
    """Fans events out to several callbacks; Keras callbacks among them run in one `KerasCallbacks`."""

    def __init__(self, callbacks: Iterable[Any] = ()):
        own, keras_like = [], []
        for cb in callbacks:
            if hasattr(cb, "on_event"):
                own.append(cb)
            elif hasattr(cb, "on_epoch_end") and hasattr(cb, "set_model"):
                keras_like.append(cb)
            else:
                raise CallbackTypeError(f"callback {cb!r} is neither a tfnas callback (on_event) nor a Keras "
                                        "callback (keras.callbacks.Callback)")
        self.callbacks = own + ([KerasCallbacks(keras_like)] if keras_like else [])

    @property
    def stop_requested(self) -> bool:  # type: ignore[override]
        """Whether any of the callbacks asks the loop to stop."""
        return any(cb.stop_requested for cb in self.callbacks)

    def on_event(self, kind: str, logs: Mapping[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_event(kind, logs)

    def close(self) -> None:
        for cb in self.callbacks:
            cb.close()


class StopFlag:
    """The ``model`` Keras callbacks are given: its ``stop_training`` is what they set to stop a run. The weights
    are the loop's (best ones in ``best/``), so a callback that reads or restores them (``EarlyStopping`` with
    ``restore_best_weights``) is refused."""

    def __init__(self):
        self.stop_training = False


def keras_logs(logs: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of an event's logs under their names and, for ``valid_*`` and ``train_*``, also Keras' names
    (``valid_loss`` -> ``val_loss``, ``valid_ppl`` -> ``val_ppl``)."""
    out: dict[str, float] = {}
    for key, value in logs.items():
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            out[key] = float(value)
            if key.startswith("valid_"):
                out["val_" + key[len("valid_"):]] = float(value)
    return out


class KerasCallbacks(Callback):
    """Runs Keras callbacks on tfnas' events, as ``keras.Model.fit`` would call them.

    The first event calls ``on_train_begin``; a ``"train"`` event (every
    ``log_interval`` steps, its mean ``loss``) calls
    ``on_train_batch_end(step - 1, logs)``; an ``"eval"`` event (the
    trainer's evaluations: every epoch, and every ``eval_interval`` steps),
    a one-shot search's ``"epoch"`` event and a black-box search's
    ``"round"`` event call ``on_epoch_end(i, logs)``, ``i``
    counting these events from 0 (so ``EarlyStopping``'s patience counts
    evaluations), with ``val_loss``, ``val_ppl`` beside tfnas' own keys
    (`keras_logs`);
    ``"end"`` calls ``on_train_end``. Once a callback sets
    ``self.model.stop_training``, `stop_requested` is true and the loop
    stops at its next boundary; the trainer records the stop in its
    checkpoints, so a resumed run stays stopped. A Keras callback's own
    state (``EarlyStopping``'s patience count) starts afresh on a resume.
    """

    EPOCH_EVENTS = ("eval", "epoch", "round")

    def __init__(self, callbacks: Sequence[Any]):
        for cb in callbacks:
            if getattr(cb, "restore_best_weights", False):
                raise CallbackTypeError(f"{type(cb).__name__}(restore_best_weights=True): tfnas keeps the best "
                                        "weights itself (best/weights.npz, what export and test use); leave it False")
        self.callbacks = list(callbacks)
        self.flag = StopFlag()
        for cb in self.callbacks:
            cb.set_model(self.flag)
        self._begun = False
        self._evaluations = 0

    @property
    def stop_requested(self) -> bool:  # type: ignore[override]
        return bool(self.flag.stop_training)

    def _call(self, method: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, method)(*args)

    def on_event(self, kind: str, logs: Mapping[str, Any]) -> None:
        if not self._begun:
            self._begun = True
            self._call("on_train_begin", {})
        numbers = keras_logs(logs)
        if kind == "train":
            self._call("on_train_batch_end", int(logs.get("step", 1)) - 1, numbers)
        elif kind in self.EPOCH_EVENTS:
            self._call("on_epoch_end", self._evaluations, numbers)
            self._evaluations += 1
        elif kind == "end":
            self._call("on_train_end", numbers)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}" if abs(value) < 100 else f"{value:.2f}"
    return str(value)


class ProgressPrinter(Callback):
    """One line per event: ``[train] step 50 | loss 6.1 | ppl 450.2 | tok/s 2300``."""

    def __init__(self, stream: TextIO | None = None, keys: Sequence[str] | None = None):
        self.stream = stream or sys.stdout
        self.keys = keys

    def on_event(self, kind: str, logs: Mapping[str, Any]) -> None:
        if kind == "message":
            print(logs.get("text", ""), file=self.stream, flush=True)
            return
        items = [(k, v) for k, v in logs.items() if self.keys is None or k in self.keys]
        body = " | ".join(f"{k} {_fmt(v)}" for k, v in items if not isinstance(v, (list, dict, *ARRAYS)))
        print(f"[{kind}] {body}", file=self.stream, flush=True)


def _array_image(key: str, value: np.ndarray | LabelledMatrix, logs: Mapping[str, Any]) -> np.ndarray | None:
    """The ``[1 or k, height, width, channels]`` image of the array ``logs[key]`` (module docstring), or None."""
    from tfnas.viz import alpha_heatmap, heatmap_image, sorted_weights_image

    if isinstance(value, LabelledMatrix):
        return heatmap_image(value.values, value.rows, value.columns)[None]
    if value.ndim in (3, 4):
        return value if value.ndim == 4 else value[None]
    if value.ndim == 2:
        return alpha_heatmap(value)[None]
    if value.ndim == 1:
        return sorted_weights_image(value, keep=int(logs.get(key + KEEP_SUFFIX, 0)))[None]
    return None


#: The run (a subfolder of the logger's folder) of each event kind's summaries, as Keras' TensorBoard callback
#: writes ``train`` and ``validation``; the other kinds' go to the folder itself.
KIND_RUNS = {"train": "train", "eval": "validation", "epoch": "validation"}
#: Per run, the keys written under Keras' tags, the same in both runs, so that TensorBoard overlays the curves.
CURVE_TAGS = {"train": {"loss": "epoch_loss", "ppl": "epoch_ppl"},
              "validation": {"valid_loss": "epoch_loss", "valid_ppl": "epoch_ppl"}}


class TensorBoardLogger(Callback):
    """Writes every numeric log value as a scalar ``<kind>/<key>`` at ``logs['step']``.

    The events ``"train"``, and ``"eval"`` and ``"epoch"`` (evaluations),
    go to the runs ``train/`` and ``validation/`` (`KIND_RUNS`), as Keras'
    TensorBoard callback writes them: the training loss and perplexity
    (``loss``, ``ppl``) and the validation ones (``valid_loss``,
    ``valid_ppl``) both as ``epoch_loss`` and ``epoch_ppl`` (`CURVE_TAGS`),
    so TensorBoard draws them on one chart, at the global step. Other kinds
    go to the folder itself.

    Arrays are drawn and written with ``tf.summary.image``: an image as it
    is, a `LabelledMatrix` as a labelled heatmap (and a scalar per entry), a
    probability matrix as a heatmap, a weights vector as sorted bars (see the
    module docstring). A derived genotype (`CELL_KEY`) is written as the
    text ``<kind>/genotype`` and, a DAG cell, drawn as the image
    ``<kind>/cell`` (`tfnas.viz.cell_image`). The drawings that need
    matplotlib (the optional extra ``compare``) warn once without it: a
    heatmap is drawn without its labels, a cell not at all.

    A resumed run writes again the steps after its restored checkpoint, into
    a new event file. TensorBoard keeps the last value written at a step of
    a series (its data server drops the older records of a step that comes
    again), so each step shows once, with the resumed run's value: the
    uninterrupted run's, since a resume is exact (timings and progress means
    aside). ``tensorboard --load_fast=false`` (the older Python reader)
    would show both.

    A full disk (or a folder not writable) is a `tfnas.errors.PathAccessError`
    naming ``logdir`` and the space left, not TensorFlow's traceback.

    Args:
        logdir: the folder (``<run folder>/tensorboard``).
        settings: the run's settings (a settings dataclass), written at step 0 as the text ``settings``, a
            table of ``[name, value]``.
        genotype: the run's cell (a genotype or its dict), written at step 0 as the genotype of `CELL_KEY`.
    """

    def __init__(self, logdir: str | Path, settings: Any = None, genotype: Any = None):
        import tensorflow as tf

        self._tf = tf
        self.logdir = Path(logdir)
        self.writers: dict[str, Any] = {}
        with self._writing():
            self._writer("")
        start: dict[str, Any] = {"step": 0}
        if genotype is not None:
            start[CELL_KEY] = genotype if isinstance(genotype, dict) else genotype.to_dict()
        if settings is not None:
            from tfnas.settings import flat_settings

            rows = [[name, json.dumps(value)] for name, value in flat_settings(settings).items()]
            with self._writing(), self._writer("").as_default(step=0):
                tf.summary.text("settings", tf.constant(rows))
        self.on_event("run", start)

    def _writing(self) -> ContextManager[None]:
        return writing(self.logdir, "write TensorBoard events in")

    def _writer(self, run: str) -> Any:
        """The writer of ``run`` (a subfolder; ``""`` the folder itself), created on first use."""
        if run not in self.writers:
            self.writers[run] = self._tf.summary.create_file_writer(str(self.logdir / run))
        return self.writers[run]

    def on_event(self, kind: str, logs: Mapping[str, Any]) -> None:
        step = int(logs.get("step", 0))
        run = KIND_RUNS.get(kind, "")
        curves = CURVE_TAGS.get(run, {})
        with self._writing(), self._writer(run).as_default(step=step):
            for key, value in logs.items():
                if key == "step":
                    continue
                tag = curves.get(key, f"{kind}/{key}")
                if key == CELL_KEY:
                    self._cell(kind, value)
                elif isinstance(value, ARRAYS):
                    self._array(tag, key, value, logs)
                elif isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
                    self._tf.summary.scalar(tag, float32_scalar(value))

    def _array(self, tag: str, key: str, value: np.ndarray | LabelledMatrix, logs: Mapping[str, Any]) -> None:
        image = _array_image(key, value, logs)
        if image is not None:
            self._tf.summary.image(tag, image)
        if isinstance(value, LabelledMatrix):
            for (i, j), entry in np.ndenumerate(np.asarray(value.values)):
                self._tf.summary.scalar(f"{tag}/{value.rows[i]}/{value.columns[j]}", float32_scalar(entry))

    def _cell(self, kind: str, genotype_dict: Mapping[str, Any]) -> None:
        """The genotype as a Markdown code block of its `describe` lines, and its drawing where there is one."""
        from tfnas.genotypes.files import genotype_from_dict
        from tfnas.viz import drawn_cell

        genotype = genotype_from_dict(dict(genotype_dict))
        self._tf.summary.text(f"{kind}/genotype", "\n".join(f"    {line}" for line in genotype.describe()))
        image = drawn_cell(genotype)
        if image is not None:
            self._tf.summary.image(f"{kind}/cell", image[None])

    def close(self) -> None:
        with self._writing():
            for writer in self.writers.values():
                writer.flush()


class History(Callback):
    """Keeps every event's logs in memory, by kind."""

    def __init__(self):
        self.events: dict[str, list[dict[str, Any]]] = {}

    def on_event(self, kind: str, logs: Mapping[str, Any]) -> None:
        self.events.setdefault(kind, []).append(
            {k: v for k, v in logs.items() if not isinstance(v, ARRAYS)})


def run_callbacks(out: Path, verbose: int = 1, settings: Any = None, genotype: Any = None) -> list[Callback]:
    """The callbacks of a run, as ``tfnas train`` and ``tfnas search`` give them: a line per event on stdout
    (`ProgressPrinter`) unless ``verbose`` is 0, and TensorBoard summaries in ``out/tensorboard`` (with the run's
    ``settings`` and ``genotype`` as text: `TensorBoardLogger`)."""
    return ([ProgressPrinter()] if verbose else []) + [TensorBoardLogger(Path(out) / "tensorboard", settings,
                                                                         genotype)]


class ThroughputMeter:
    """Mean loss, seconds per step and tokens per second since the last `summary`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self._reset(clock())

    def _reset(self, start: float) -> None:
        self.start, self.tokens, self.losses = start, 0, []

    def add(self, loss: float, tokens: int) -> None:
        """Records one step."""
        self.losses.append(loss)
        self.tokens += tokens

    def summary(self) -> dict[str, float]:
        """``{"loss", "ppl", "s_per_step", "tok_per_s"}`` of the steps since the last call, then resets."""
        now = self.clock()
        elapsed = max(now - self.start, 1e-9)
        loss = float(np.mean(self.losses))
        out = {"loss": loss, "ppl": perplexity(loss), "s_per_step": elapsed / len(self.losses),
               "tok_per_s": self.tokens / elapsed}
        self._reset(now)
        return out
