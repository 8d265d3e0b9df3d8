"""`Trainer`: the AWD-LSTM / DARTS training recipe with exact resume.

Each step draws a BPTT length (``tfnas.data.BPTTIterator``), scales the
learning rate by ``seq_len / bptt``, computes

    loss = CE + alpha * mean(dropped_h^2) + beta * mean((h_t - h_{t-1})^2)

clips the global gradient norm to ``clip`` and applies SGD with L2 weight
decay, ``w <- w - lr * (clip(g) + wdecay * w)`` (PyTorch's SGD order). The
non-monotone trigger of AWD-LSTM switches to averaged SGD (NT-ASGD): once
the validation loss is worse than the best of all but the last ``nonmono``
evaluations, every later step also updates the running average
``a <- a + (w - a) / n`` and evaluation uses the averaged weights.
"""
from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas.callbacks import Callback, CallbackList, ThroughputMeter
from tfnas.config import TrainConfig, from_dict
from tfnas.data import BPTTIterator, Corpus, batchify, load_corpus
from tfnas.genotypes.dag import Genotype
from tfnas.runs.checkpoint import CheckpointError, CheckpointManager, load_variables, save_variables
from tfnas.lm.model import LanguageModel
from tfnas.lm.objective import clipped_sgd_update, cross_entropy, regularized_loss
from tfnas.genotypes.files import load_genotype

#: Fields of `TrainConfig` that may differ when a run is resumed.
RESUMABLE_CHANGES = {"epochs", "max_steps", "log_interval", "eval_interval", "checkpoint_interval",
                     "keep_checkpoints", "data_dir", "max_eval_batches", "test_batch_size", "jit_compile"}


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What a finished (or stopped) training run reports."""

    steps: int
    epochs_done: int
    valid_ppl: float
    test_ppl: float | None
    best_valid_ppl: float
    history: list[dict[str, Any]] = field(default_factory=list)


def perplexity(loss: float) -> float:
    """``exp(loss)``, capped so that a diverged loss still prints."""
    return float(math.exp(min(loss, 700.0)))


class Trainer:
    """Trains a `LanguageModel` around a genotype (or the LSTM baseline).

    Args:
        config: the recipe (`TrainConfig`).
        genotype: the cell, or None for ``keras.layers.LSTM``.
        out_dir: run folder: ``config.json``, ``genotype.json``,
            ``vocab.txt``, ``checkpoints/``, ``best/``, ``tensorboard/``,
            ``result.json``. If it holds a checkpoint, training resumes.
        corpus: an already loaded corpus (else ``config.dataset`` is loaded).
        callbacks: progress, TensorBoard, history.
    """

    def __init__(self, config: TrainConfig, genotype: Genotype | None, out_dir: str | Path,
                 corpus: Corpus | None = None, callbacks: Sequence[Callback] = ()):
        self.config = config
        self.genotype = genotype
        self.out_dir = Path(out_dir)
        self.callbacks = CallbackList(callbacks)
        self._check_run_folder()
        self.corpus = corpus if corpus is not None else load_corpus(config.dataset, config.data_dir)
        keras.utils.set_random_seed(config.seed)
        self.model = LanguageModel.from_config_objects(len(self.corpus.vocab), genotype, config.model,
                                                       seed=config.seed)
        self.train_data = batchify(self.corpus.train, config.batch_size)
        self.valid_data = batchify(self.corpus.valid, config.eval_batch_size)
        self.test_data = batchify(self.corpus.test, config.test_batch_size)
        self.averages = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.model.trainable_variables]
        self.average_count = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoints = CheckpointManager(self.out_dir / "checkpoints", config.keep_checkpoints)
        self._train_step = self._make_train_step()
        self._eval_step = self._make_eval_step()
        # Mutable run state; everything here goes into a checkpoint.
        self.step = 0
        self.epoch = 1
        self.asgd = False
        self.val_losses: list[float] = []
        self.best_val_loss = math.inf
        self.history: list[dict[str, Any]] = []
        self.iterator = self._epoch_iterator(self.epoch)
        self.hidden = self.model.initial_state(config.batch_size)

    # ------------------------------------------------------------ run folder
    def _check_run_folder(self) -> None:
        cfg_path = self.out_dir / "config.json"
        if cfg_path.exists():
            saved = from_dict(TrainConfig, json.loads(cfg_path.read_text(encoding="utf-8")))
            mine, theirs = asdict(self.config), asdict(saved)
            changed = sorted(k for k in mine if k not in RESUMABLE_CHANGES and mine[k] != theirs[k])
            if changed:
                diff = ", ".join(f"{k}: {theirs[k]!r} -> {mine[k]!r}" for k in changed)
                raise ValueError(f"{self.out_dir} holds a run with another configuration ({diff}); "
                                 "use a new --out folder or the same settings to resume")
            geno_path = self.out_dir / "genotype.json"
            saved_geno = load_genotype(geno_path) if geno_path.exists() else None
            if saved_geno != self.genotype:
                raise ValueError(f"{self.out_dir} holds a run of another cell; use a new --out folder")

    def _write_run_files(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.json").write_text(json.dumps(asdict(self.config), indent=2), encoding="utf-8")
        if self.genotype is not None:
            self.genotype.save(self.out_dir / "genotype.json")
        self.corpus.vocab.save(self.out_dir / "vocab.txt")
        (self.out_dir / "model.json").write_text(json.dumps(self.model.get_config(), indent=2), encoding="utf-8")

    def _epoch_iterator(self, epoch: int) -> BPTTIterator:
        c = self.config
        return BPTTIterator(self.train_data, c.bptt, seed=c.seed * 100_003 + epoch, variable=True,
                            max_seq_len_delta=c.max_seq_len_delta)

    # ------------------------------------------------------------- tf steps
    def _state_spec(self, batch: int | None) -> list[tf.TensorSpec]:
        n = len(self.model.initial_state(1))
        return [tf.TensorSpec((batch, self.config.model.nhid), tf.float32)] * n

    def _make_train_step(self):
        c, model = self.config, self.model
        variables = model.trainable_variables
        spec = [tf.TensorSpec((c.batch_size, None), tf.int32), tf.TensorSpec((c.batch_size, None), tf.int32),
                self._state_spec(c.batch_size), tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.bool)]

        def step(inputs, targets, states, lr, average):
            with tf.GradientTape() as tape:
                out = model.forward(inputs, states, training=True)
                loss, raw_loss = regularized_loss(out, targets, c.alpha, c.beta)
            norm = clipped_sgd_update(variables, tape.gradient(loss, variables), lr, c.clip, c.wdecay)
            tf.cond(average, self._update_averages, tf.no_op)
            return raw_loss, [tf.stop_gradient(s) for s in out.states], norm

        return tf.function(step, input_signature=spec, jit_compile=c.jit_compile or None, autograph=False)

    def _update_averages(self) -> tf.Operation:
        """``a <- a + (w - a) / n`` for every weight (the running mean of NT-ASGD)."""
        count = self.average_count.assign_add(1)
        weight = 1.0 / tf.cast(count, tf.float32)
        return tf.group([avg.assign_add((var - avg) * weight)
                         for avg, var in zip(self.averages, self.model.trainable_variables)])

    def _make_eval_step(self):
        model = self.model

        def step(inputs, targets, states):
            out = model.forward(inputs, states, training=False)
            return cross_entropy(out.logits, targets) * tf.cast(tf.size(targets), out.logits.dtype), out.states

        return tf.function(step, reduce_retracing=True)

    # ----------------------------------------------------------- evaluation
    def evaluate(self, data: np.ndarray, max_batches: int | None = None) -> float:
        """Mean per-token cross-entropy on batchified ``data`` (fixed-length BPTT).

        Under NT-ASGD the averaged weights are used, as in AWD-LSTM.
        """
        if self.asgd and int(self.average_count.numpy()) > 0:
            with self._swapped_weights([a.numpy() for a in self.averages]):
                return self._mean_loss(data, max_batches)
        return self._mean_loss(data, max_batches)

    @contextlib.contextmanager
    def _swapped_weights(self, values: Sequence[np.ndarray]):
        variables = self.model.trainable_variables
        backup = [v.numpy() for v in variables]
        for var, value in zip(variables, values):
            var.assign(value)
        try:
            yield
        finally:
            for var, value in zip(variables, backup):
                var.assign(value)

    def _mean_loss(self, data: np.ndarray, max_batches: int | None) -> float:
        states = self.model.initial_state(data.shape[0])
        total, count = 0.0, 0
        for k, (inputs, targets, _, _) in enumerate(BPTTIterator(data, self.config.bptt, seed=0, variable=False)):
            if max_batches is not None and k >= max_batches:
                break
            loss_sum, states = self._eval_step(tf.constant(inputs, tf.int32), tf.constant(targets, tf.int32),
                                               states)
            total += float(loss_sum)
            count += targets.size
        return total / max(count, 1)

    # ----------------------------------------------------------- checkpoint
    def _all_variables(self) -> list[tf.Variable]:
        return list(self.model.variables) + self.averages + [self.average_count]

    def save_checkpoint(self) -> Path:
        state = {"step": self.step, "epoch": self.epoch, "asgd": self.asgd, "val_losses": self.val_losses,
                 "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
                 "iterator": self.iterator.state(), "history": self.history}
        extra = {f"hidden{i}": s.numpy() for i, s in enumerate(self.hidden)}
        path = self.checkpoints.save(self.step, self._all_variables(), state, extra)
        self.callbacks.on_event("checkpoint", {"step": self.step, "path": str(path)})
        return path

    def restore_latest(self) -> bool:
        """Restores the newest checkpoint of the run folder; False if none."""
        path = self.checkpoints.latest()
        if path is None:
            return False
        state, extra = self.checkpoints.restore(path, self._all_variables())
        self.step, self.epoch, self.asgd = state["step"], state["epoch"], state["asgd"]
        self.val_losses = list(state["val_losses"])
        self.best_val_loss = math.inf if state["best_val_loss"] is None else state["best_val_loss"]
        self.history = list(state["history"])
        self.iterator = self._epoch_iterator(self.epoch)
        self.iterator.set_state(state["iterator"])
        self.hidden = [tf.constant(extra[f"hidden{i}"]) for i in range(len(self.hidden))]
        self.callbacks.on_event("message", {"text": f"resumed from {path} (step {self.step}, epoch {self.epoch})"})
        return True

    def _save_best(self) -> None:
        """Saves the weights used for evaluation (averaged under ASGD) to ``best/``."""
        best = self.out_dir / "best"
        best.mkdir(parents=True, exist_ok=True)
        variables = self.averages if self.asgd and int(self.average_count.numpy()) > 0 \
            else self.model.trainable_variables
        names = [v.path for v in self.model.trainable_variables]
        tmp = best / "weights.npz.tmp"
        save_variables(tmp, variables, {"names": np.array(names)})
        tmp.replace(best / "weights.npz")

    def best_weights(self) -> list[np.ndarray]:
        """The arrays of ``best/weights.npz`` (the best evaluated weights)."""
        path = self.out_dir / "best" / "weights.npz"
        if not path.exists():
            raise CheckpointError(f"{path} does not exist: the run has not been evaluated yet")
        holders = [tf.Variable(tf.zeros_like(v)) for v in self.model.trainable_variables]
        load_variables(path, holders)
        return [h.numpy() for h in holders]

    # ---------------------------------------------------------------- loop
    def _done(self) -> bool:
        c = self.config
        return (c.max_steps is not None and self.step >= c.max_steps) or self.epoch > c.epochs

    def _validate(self) -> float:
        c = self.config
        val_loss = self.evaluate(self.valid_data, c.max_eval_batches)
        older = self.val_losses[: len(self.val_losses) - c.nonmono]  # all but the last `nonmono`
        if not self.asgd and len(self.val_losses) > c.nonmono and val_loss > min(older):
            self.asgd = True
            self.callbacks.on_event("message", {"text": f"switching to averaged SGD (NT-ASGD) at step {self.step}"})
        self.val_losses.append(val_loss)
        if val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
            self._save_best()
        logs = {"step": self.step, "epoch": self.epoch, "valid_loss": val_loss, "valid_ppl": perplexity(val_loss),
                "best_valid_ppl": perplexity(self.best_val_loss), "asgd": int(self.asgd)}
        self.history.append(logs)
        self.callbacks.on_event("eval", logs)
        return val_loss

    def fit(self, evaluate_test: bool = True) -> TrainResult:
        """Trains until ``epochs`` or ``max_steps``; resumes if the run folder has a checkpoint."""
        c = self.config
        if not self.restore_latest():
            self._write_run_files()
        meter = ThroughputMeter()
        while not self._done():
            batch = next(self.iterator, None)
            if batch is None:
                self._validate()
                self.epoch += 1
                self.iterator = self._epoch_iterator(self.epoch)
                self.hidden = self.model.initial_state(c.batch_size)
                self.save_checkpoint()
                continue
            inputs, targets, seq_len, lr_scale = batch
            loss, self.hidden, _ = self._train_step(
                tf.constant(inputs, tf.int32), tf.constant(targets, tf.int32), self.hidden,
                tf.constant(c.lr * lr_scale, tf.float32), tf.constant(self.asgd))
            loss = float(loss)
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    f"training loss is {loss} at step {self.step + 1}; the last good checkpoint is "
                    f"{self.checkpoints.latest()} (lower --lr or --clip and resume from it)")
            self.step += 1
            meter.add(loss, targets.size)
            if self.step % c.log_interval == 0:
                self.callbacks.on_event("train", {"step": self.step, "epoch": self.epoch, "lr": c.lr * lr_scale,
                                                  **meter.summary()})
            if c.eval_interval and self.step % c.eval_interval == 0:
                self._validate()
            if self.step % c.checkpoint_interval == 0:
                self.save_checkpoint()
        if not self.val_losses or self.history[-1]["step"] != self.step:
            self._validate()
        self.save_checkpoint()
        return self._finish(evaluate_test)

    def _finish(self, evaluate_test: bool) -> TrainResult:
        test_loss = None
        if evaluate_test:
            with self._swapped_weights(self.best_weights()):
                test_loss = self._mean_loss(self.test_data, self.config.max_eval_batches)
        result = TrainResult(steps=self.step, epochs_done=self.epoch - 1, valid_ppl=perplexity(self.val_losses[-1]),
                             test_ppl=None if test_loss is None else perplexity(test_loss),
                             best_valid_ppl=perplexity(self.best_val_loss), history=self.history)
        (self.out_dir / "result.json").write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")
        self.callbacks.on_event("end", {"step": self.step, "valid_ppl": result.valid_ppl,
                                        "best_valid_ppl": result.best_valid_ppl,
                                        **({"test_ppl": result.test_ppl} if test_loss is not None else {})})
        self.callbacks.close()
        return result
