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

A non-finite training loss rolls back, as DARTS' ``rnn/train.py`` does, to
the best evaluated weights and the NT-ASGD state saved with them, and goes
on with the next epoch; after ``max_rollbacks`` of them (a tfnas limit;
DARTS has none) it stops with `NonFiniteLossError`.

The run folder is a `tfnas.runs.session.RunSession`, locked from the
trainer's creation to the end of `fit` (`tfnas.runs.lock`); a resume starts from the newest readable checkpoint
(an unreadable one is skipped with a warning; an unreadable
``best/weights.npz`` is set aside as ``best/corrupt-weights.npz`` and, as a
missing one of a run that has evaluated, rebuilt from the restored
checkpoint's evaluated weights, so a finished run completes in its folder),
and Ctrl-C writes a checkpoint at the next step boundary
(`tfnas.runs.interrupt`). `fit` again with a larger ``max_steps`` continues
from the newest checkpoint (ASHA's promoted children); every `fit` ends with
an evaluation of its last step and a checkpoint there, except that a folder
already trained past ``max_steps`` is left as it is (nothing trained, nothing
evaluated).

With ``distribute`` set, the step is data-parallel on a `tf.distribute`
strategy (`tfnas.lm.distribute`): each replica takes its block of rows of
the global batch and carries their recurrent state; the gradients are
summed over replicas before the global-norm clip, so R replicas compute the
step of one device with the same global batch. Evaluation, NT-ASGD and
checkpoints read the mirrored variables; the checkpointed states are those
of the global batch, so a run resumes with any number of replicas that
divides the batch. Under ``multi_worker`` the chief (task 0) writes the run
folder; worker i writes the same files to its ``worker-i`` subfolder.

With ``mixed_precision`` the model computes in bfloat16 (CPU) or float16
with dynamic loss scaling (GPU), with float32 weights, loss and states
(`tfnas.lm.precision`); ``model.json`` records float32 for the exports.

A callback that asks to stop (`tfnas.callbacks.Callback.stop_requested`: a
Keras ``EarlyStopping`` through `tfnas.callbacks.KerasCallbacks`) ends the
run at the next step boundary as if ``max_steps`` were reached (last
evaluation, checkpoint, test); the stop is checkpointed, so a resumed run
stays stopped. The model is built with Python's and NumPy's global
generators seeded with ``seed`` (`tfnas.lm.seeding.seeded`); the caller's
generators are restored afterwards.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from tfnas.errors import TfnasError
from tfnas.callbacks import Callback, ThroughputMeter
from tfnas.config import TrainConfig
from tfnas.data import BPTTIterator, Corpus, check_corpus, epoch_iterator, load_corpus_of
from tfnas.data.batching import batchify_split
from tfnas.genotypes.dag import Genotype
from tfnas.runs.atomic import write_json
from tfnas.runs.checkpoint import CorruptCheckpointError, assign_arrays, read_arrays, save_variables
from tfnas.runs.folder import (BEST_SET_ASIDE, BEST_WEIGHTS, MODEL_FILE, TRAINING_RESULT_FILE, RunFolderError,
                               corpus_fingerprint, read_weights)
from tfnas.runs.session import RunSession
from tfnas.lm.distribute import check_batch, make_strategy, replica_rows, run_replicas, worker_index
from tfnas.lm.model import LanguageModel
from tfnas.lm.seeding import seeded
from tfnas.lm.precision import DynamicLossScale, dtype_policy, mixed_policy_name
from tfnas.lm.objective import clipped_sgd_update, make_eval_step, mean_window_loss, regularized_loss
from tfnas.genotypes.files import load_genotype
from tfnas.metrics import perplexity


class NonFiniteLossError(TfnasError, RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What a finished (or stopped) training run reports."""

    steps: int
    epochs_done: int
    valid_ppl: float
    test_ppl: float | None
    best_valid_ppl: float
    params: int = 0
    rollbacks: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class Trainer:
    """Trains a `LanguageModel` around a genotype (or the LSTM baseline).

    Args:
        config: the recipe (`TrainConfig`).
        genotype: the cell, or None for ``keras.layers.LSTM``.
        out_dir: run folder: ``config.json``, ``genotype.json``,
            ``vocab.txt``, ``checkpoints/``, ``best/``, ``tensorboard/``,
            ``result.json``. If it holds a checkpoint, training resumes;
            a folder of another cell, of other settings (except the
            resumable ones) or of other data is refused
            (`tfnas.runs.folder.open_run`), and so is a folder in use by
            another process (`tfnas.runs.lock.RunLockedError`).
        corpus: an already loaded `Corpus` (else ``config.dataset`` is loaded;
            anything else, a ``tf.data.Dataset`` included, is refused: `check_corpus`).
        callbacks: progress, TensorBoard, history; Keras callbacks too
            (`tfnas.callbacks.KerasCallbacks`).

    Attributes:
        train_step: the compiled training step (one `tf.function`, traced
            once for every BPTT length), ``train_step(inputs, targets,
            states, lr, average) -> (cross-entropy, new states, gradient
            norm)``: ``int32 [batch_size, seq_len]`` inputs and targets, the
            model's states, a float32 scalar learning rate and a bool scalar
            (also update the NT-ASGD averages). `fit` calls it every step;
            the benchmark times it.
    """

    def __init__(self, config: TrainConfig, genotype: Genotype | None, out_dir: str | Path,
                 corpus: Corpus | None = None, callbacks: Sequence[Callback] = ()):
        self.config = config
        self.genotype = genotype
        self.strategy = make_strategy(config.distribute)
        check_batch(self.strategy, config.batch_size)
        worker = worker_index() if config.distribute == "multi_worker" else 0
        self.out_dir = Path(out_dir) / f"worker-{worker}" if worker else Path(out_dir)
        self.corpus = check_corpus(corpus) if corpus is not None else load_corpus_of(config)
        # Before the folder is locked and its record written: a split smaller than its batch leaves nothing behind.
        self.train_data, self.valid_data, self.test_data = (
            batchify_split(self.corpus, split, size) for split, size in config.split_batch_sizes().items())
        self.session = RunSession(self.out_dir, "train", None, config, corpus_fingerprint(self.corpus), callbacks,
                                  config.keep_checkpoints).open()
        self.callbacks = self.session.callbacks
        try:
            self._build()
        except BaseException:
            self.session.close()
            raise

    def _build(self) -> None:
        """The cell's record, the model and its steps, and the run state (the folder is open and locked)."""
        config, genotype = self.config, self.genotype
        self._record_cell()
        policy = mixed_policy_name() if config.mixed_precision else "float32"
        with seeded(config.seed), self.strategy.scope(), dtype_policy(policy):
            self.model = LanguageModel.from_config_objects(len(self.corpus.vocab), genotype, config.model,
                                                           seed=config.seed)
            self.loss_scale = DynamicLossScale(policy == "mixed_float16")
            self.averages = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.model.trainable_variables]
            self.average_count = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.train_step = self._make_train_step()
        self._eval_step = make_eval_step(self.model)
        self.params = sum(int(np.prod(v.shape)) for v in self.model.trainable_variables)
        # Mutable run state; everything here goes into a checkpoint.
        self.step = 0
        self.epoch = 1
        self.asgd = False
        self.val_losses: list[float] = []
        self.best_val_loss = math.inf
        self.rollbacks = 0
        self.stopped = False  # by a callback (stop_requested)
        self.history: list[dict[str, Any]] = []
        self.iterator = self._epoch_iterator(self.epoch)
        self.hidden = self.model.initial_state(config.batch_size)

    # ------------------------------------------------------------ run folder
    def _record_cell(self) -> None:
        """Writes the cell's genotype in the run folder, or refuses a folder of another cell.

        A folder without a checkpoint (a run killed before its first one) holds nothing to resume: it starts
        afresh with this run's cell.
        """
        geno_path = self.out_dir / "genotype.json"
        if self.session.checkpoints.latest() is None:
            if self.genotype is not None:
                self.genotype.save(geno_path)
            else:
                geno_path.unlink(missing_ok=True)
        elif (load_genotype(geno_path) if geno_path.exists() else None) != self.genotype:
            raise RunFolderError(f"{self.out_dir} holds a run of another cell; use a new --out folder")

    def close(self) -> None:
        """Releases the run folder's lock (`fit` does when it ends)."""
        self.session.close()

    def _message(self, text: str) -> None:
        self.session.message(text)

    def _write_run_files(self) -> None:
        self.corpus.vocab.save(self.out_dir / "vocab.txt")
        write_json(self.out_dir / MODEL_FILE, {**self.model.get_config(), "dtype": "float32"})  # exports: float32

    def _epoch_iterator(self, epoch: int) -> BPTTIterator:
        c = self.config
        return epoch_iterator(self.train_data, c.bptt, c.seed, epoch, c.max_seq_len_delta)

    # ------------------------------------------------------------- tf steps
    def _state_spec(self, batch: int | None) -> list[tf.TensorSpec]:
        n = len(self.model.initial_state(1))
        return [tf.TensorSpec((batch, self.config.model.nhid), tf.float32)] * n

    def _make_train_step(self):
        c, model, strategy = self.config, self.model, self.strategy
        variables = model.trainable_variables
        spec = [tf.TensorSpec((c.batch_size, None), tf.int32), tf.TensorSpec((c.batch_size, None), tf.int32),
                self._state_spec(c.batch_size), tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.bool)]
        replicas = strategy.num_replicas_in_sync
        single = c.distribute == "none"

        def replica_step(inputs, targets, states):
            with tf.GradientTape() as tape:
                out = model.forward(replica_rows(inputs), [replica_rows(s) for s in states], training=True)
                loss, raw_loss = regularized_loss(out, replica_rows(targets), c.alpha, c.beta)
                share = self.loss_scale.scaled(loss / replicas)
            return raw_loss / replicas, tape.gradient(share, variables), [tf.stop_gradient(s) for s in out.states]

        if c.jit_compile and not single:  # XLA compiles each replica's part; the update runs across replicas
            replica_step = tf.function(replica_step, jit_compile=True, autograph=False)

        def step(inputs, targets, states, lr, average):
            raw_loss, grads, new_states = run_replicas(strategy, replica_step, inputs, targets, states)
            if self.loss_scale.enabled:  # float16: skip the update of a gradient that overflowed
                grads, finite = self.loss_scale.unscaled(grads)
                norm = tf.cond(finite, lambda: clipped_sgd_update(variables, grads, lr, c.clip, c.wdecay),
                               lambda: tf.constant(math.inf))
                self.loss_scale.update(finite)
            else:
                norm = clipped_sgd_update(variables, grads, lr, c.clip, c.wdecay)
            tf.cond(average, self._update_averages, tf.no_op)
            return raw_loss, new_states, norm

        return tf.function(step, input_signature=spec, jit_compile=(c.jit_compile and single) or None,
                           autograph=False)

    def _update_averages(self) -> tf.Operation:
        """``a <- a + (w - a) / n`` for every weight (the running mean of NT-ASGD)."""
        count = self.average_count.assign_add(1)
        weight = 1.0 / tf.cast(count, tf.float32)
        return tf.group([avg.assign_add((var - avg) * weight)
                         for avg, var in zip(self.averages, self.model.trainable_variables)])

    # ----------------------------------------------------------- evaluation
    def evaluate(self, data: np.ndarray, max_batches: int | None = None) -> float:
        """Mean per-token cross-entropy on batchified ``data`` (fixed-length BPTT).

        Under NT-ASGD the averaged weights are used, as in AWD-LSTM.
        """
        weights = self._evaluated_variables()
        if weights is self.averages:
            with self._swapped_weights([a.numpy() for a in weights]):
                return self._mean_loss(data, max_batches)
        return self._mean_loss(data, max_batches)

    def _evaluated_variables(self) -> list[tf.Variable]:
        """The weights evaluation uses: the NT-ASGD averages once a step was averaged, else the model's."""
        if self.asgd and int(self.average_count.numpy()) > 0:
            return self.averages
        return self.model.trainable_variables

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
        return mean_window_loss(self._eval_step, data, self.config.bptt, self.model.initial_state(data.shape[0]),
                                max_batches)

    # ----------------------------------------------------------- checkpoint
    def _all_variables(self) -> list[tf.Variable]:
        scale = self.loss_scale.variables if self.loss_scale.enabled else []
        return list(self.model.variables) + self.averages + [self.average_count] + scale

    def save_checkpoint(self) -> Path:
        state = {"step": self.step, "epoch": self.epoch, "asgd": self.asgd, "val_losses": self.val_losses,
                 "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
                 "iterator": self.iterator.state(), "history": self.history, "rollbacks": self.rollbacks,
                 "stopped": self.stopped}
        extra = {f"hidden{i}": s.numpy() for i, s in enumerate(self.hidden)}
        return self.session.save(self.step, self._all_variables(), state, extra, weights=self._evaluated_variables())

    def restore_latest(self) -> bool:
        """Restores the newest readable checkpoint of the run folder (warning about skipped ones); False if none."""
        restored = self.session.restore(self._all_variables())
        if restored is None:
            return False
        path, state, extra = restored.path, restored.state, restored.extra
        self.step, self.epoch, self.asgd = state["step"], state["epoch"], state["asgd"]
        self.val_losses = list(state["val_losses"])
        self.best_val_loss = math.inf if state["best_val_loss"] is None else state["best_val_loss"]
        self.history = list(state["history"])
        self.rollbacks = state.get("rollbacks", 0)
        self.stopped = state.get("stopped", False)
        self.iterator = self._epoch_iterator(self.epoch)
        self.iterator.set_state(state["iterator"])
        self.hidden = [tf.constant(extra[f"hidden{i}"]) for i in range(len(self.hidden))]
        self._check_best(path)
        self._message(f"resumed from {path} (step {self.step}, epoch {self.epoch})")
        return True

    def _check_best(self, checkpoint: Path) -> None:
        """After restoring ``checkpoint``: an unreadable ``best/weights.npz`` is set aside (`BEST_SET_ASIDE`), and
        then, as a missing one of a run that has evaluated, rebuilt from the restored evaluated weights (their
        validation loss becomes the best), so that a finished run tests and exports again."""
        path = self.out_dir / BEST_WEIGHTS
        set_aside = self.out_dir / BEST_SET_ASIDE
        if path.exists():
            try:
                read_arrays(path)
                return
            except CorruptCheckpointError as err:
                path.replace(set_aside)
                why = f"{err}: set aside as {BEST_SET_ASIDE}"
        elif math.isfinite(self.best_val_loss):
            why = f"{path} is missing" + (f" (set aside as {BEST_SET_ASIDE})" if set_aside.exists() else "")
        else:
            return  # never evaluated: the first evaluation writes it
        self.best_val_loss = self.evaluate(self.valid_data, self.config.max_eval_batches)
        self._save_best()
        self._message(f"warning: {why}; {BEST_WEIGHTS} rebuilt from checkpoint {checkpoint.name} "
                      f"(valid ppl {perplexity(self.best_val_loss):.2f})")

    def _save_best(self) -> None:
        """Saves the weights used for evaluation (averaged under ASGD) and the NT-ASGD state to ``best/``."""
        path = self.out_dir / BEST_WEIGHTS
        path.parent.mkdir(parents=True, exist_ok=True)
        names = [v.path for v in self.model.trainable_variables]
        save_variables(path, self._evaluated_variables(), {
            "names": np.array(names), "asgd": np.array(self.asgd), "average_count": self.average_count.numpy()})

    def _roll_back(self, loss: float) -> None:
        """After a non-finite loss: the best weights and their NT-ASGD state, then the next epoch (DARTS)."""
        where = f"training loss is {loss} at step {self.step + 1}"
        path = self.out_dir / BEST_WEIGHTS
        if self.rollbacks >= self.config.max_rollbacks or not path.exists():
            why = (f"{self.rollbacks} rollbacks already (--max-rollbacks)" if path.exists()
                   else "no evaluated weights to roll back to yet")
            latest = self.session.checkpoints.latest()
            raise NonFiniteLossError(f"{where}; {why}; the last good checkpoint is {latest} "
                                     "(lower --lr or --clip and resume from it)")
        best = read_arrays(path)
        assign_arrays(self.model.trainable_variables, best.variables, path)
        self.asgd = bool(best.extra.get("asgd", self.asgd))
        self.average_count.assign(int(best.extra.get("average_count", 0)))
        for avg, value in zip(self.averages, best.variables):
            avg.assign(value if self.asgd else np.zeros_like(value))
        self.rollbacks += 1
        self.callbacks.on_event("message", {"text": f"{where}: rolled back to the best weights ({path}), "
                                                    f"rollback {self.rollbacks} of {self.config.max_rollbacks}"})
        self._next_epoch()

    def _next_epoch(self) -> None:
        """A new epoch: its iterator, a zero recurrent state, and a checkpoint."""
        self.epoch += 1
        self.iterator = self._epoch_iterator(self.epoch)
        self.hidden = self.model.initial_state(self.config.batch_size)
        self.save_checkpoint()

    def best_weights(self) -> list[np.ndarray]:
        """The arrays of ``best/weights.npz`` (the best evaluated weights)."""
        return read_weights(self.out_dir, "best").arrays

    # ---------------------------------------------------------------- loop
    def _done(self) -> bool:
        c = self.config
        if not self.stopped and self.callbacks.stop_requested:
            self.stopped = True
            self._message(f"stopped by a callback at step {self.step}")
        return ((c.max_steps is not None and self.step >= c.max_steps) or self.epoch > c.epochs
                or self.session.over_budget(c.budget_s) or self.stopped)

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
        """Trains until ``epochs``, ``max_steps`` or ``budget_s``; resumes if the run folder has a checkpoint.

        The run folder stays locked until it returns; Ctrl-C checkpoints at the next step boundary and raises
        `KeyboardInterrupt`.
        """
        with self.session:
            return self._fit(evaluate_test)

    def _fit(self, evaluate_test: bool) -> TrainResult:
        c = self.config
        if not self.restore_latest():
            self._write_run_files()
        self._message(f"model: {self.params:,} parameters ({self.params / 1e6:.2f}M)")
        if c.distribute != "none":
            self._message(f"data-parallel on {self.strategy.num_replicas_in_sync} replicas ({c.distribute})")
        meter = ThroughputMeter()
        while not self._done():
            self.session.stop_if_pending(f"at step {self.step}", self.save_checkpoint)
            batch = next(self.iterator, None)
            if batch is None:
                self._validate()
                self._next_epoch()
                continue
            inputs, targets, seq_len, lr_scale = batch
            loss, hidden, _ = self.train_step(
                tf.constant(inputs, tf.int32), tf.constant(targets, tf.int32), self.hidden,
                tf.constant(c.lr * lr_scale, tf.float32), tf.constant(self.asgd))
            loss = float(loss)
            if not math.isfinite(loss):
                self._roll_back(loss)
                continue
            self.hidden = hidden
            self.step += 1
            meter.add(loss, targets.size)
            if self.step % c.log_interval == 0:
                self.callbacks.on_event("train", {"step": self.step, "epoch": self.epoch, "lr": c.lr * lr_scale,
                                                  **meter.summary()})
            if c.eval_interval and self.step % c.eval_interval == 0:
                self._validate()
            if self.step % c.checkpoint_interval == 0:
                self.save_checkpoint()
        # The last step is evaluated, unless the folder was trained past this fit's max_steps (an ASHA rung run
        # again after a resume): then this fit trained nothing and reports the folder's evaluations as they are.
        past = c.max_steps is not None and self.step > c.max_steps
        if not self.val_losses or (self.history[-1]["step"] != self.step and not past):
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
                             best_valid_ppl=perplexity(self.best_val_loss), params=self.params,
                             rollbacks=self.rollbacks, history=self.history, seconds=self.session.spent_s())
        write_json(self.out_dir / TRAINING_RESULT_FILE, asdict(result))
        self.session.end({"step": self.step, "valid_ppl": result.valid_ppl, "best_valid_ppl": result.best_valid_ppl,
                          **({"test_ppl": result.test_ppl} if test_loss is not None else {})})
        return result
