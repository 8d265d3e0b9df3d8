"""The training loop shared by one-shot strategies (a supernet trained on the corpus).

`OneShotSearch` owns everything but the update rule: BPTT over the
training data with a validation batch at the same position, as DARTS'
``train_search.py`` (a training segment is ``bptt`` long, or ``bptt / 2``
with probability 0.05, without AWD-LSTM's normal jitter; the validation
segment is always ``bptt`` long), hidden states carried across segments,
per-epoch evaluation and genotype snapshots, checkpoints of the whole state
(every variable, optimizer slots, dropout seeds, data position, schedules)
for exact resume, and recovery from a diverged loss (non-finite, or what
`divergence` says): the last good checkpoint is restored and the learning
rates are halved once more (x0.5, x0.25, ... across recoveries); the count
and the factor are also kept in ``recovery.json``, so that a search killed
after a recovery resumes with them. After ``nan_retries`` recoveries the
search stops with `SearchDivergedError` and writes no genotype.

The search folder is a run folder (`tfnas.runs.folder`), locked while the
search runs (`tfnas.runs.lock`): a resume with other settings than the
resumable ones, or on other data, is refused; ``model.json`` holds the
supernet's config and every checkpoint records the supernet's variables as
the model's weights. A resume starts from the newest readable checkpoint
(an unreadable one is skipped with a warning). ``history.jsonl`` (one line
per evaluated epoch) is written whole with every checkpoint, from the
history that checkpoint holds, and again on resume, so it never runs ahead
of the checkpoints. Ctrl-C writes a checkpoint at the next step boundary
(`tfnas.runs.interrupt`). A finished search is logged to TensorBoard's
HParams dashboard (`tfnas.hparams.write_final`: its settings, genotype and
final metrics).

The folder, its lock, Ctrl-C, the checkpoints and the callbacks are a
`tfnas.runs.session.RunSession`, as for every loop of tfnas.

A subclass implements `build`, `search_step` (one update on a training
segment: it gets no validation batch; DARTS' bilevel step pairs the
segment with a validation one itself, `valid_segment` at `segment_start`),
`derive` and may add `epoch_logs` and `step_logs` (e.g. the architecture
weights, as arrays that callbacks draw, at epoch ends and every
``log_interval`` steps), `extra_state` and `extra_arrays` (JSON and arrays
saved in checkpoints), a learning-rate schedule (`epoch_lr`), a divergence
rule (`divergence`), work after every step (`on_step_end`) and a rule of
its own that ends the search early (`stops_early`).
"""
from __future__ import annotations

import abc
import json
import math
from dataclasses import field
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas.callbacks import CELL_KEY, Callback, ThroughputMeter
from tfnas.config import LMRunConfig, ModelConfig
from tfnas.data import BPTTIterator, Corpus, epoch_iterator
from tfnas.data.batching import batchify_split
from tfnas.genotypes.dag import Genotype
from tfnas.hparams import FinalHParams
from tfnas.lm.objective import make_eval_step, mean_window_loss
from tfnas.lm.seeding import seeded
from tfnas.runs.atomic import read_json, write_json, write_jsonl
from tfnas.runs.checkpoint import Restored
from tfnas.runs.folder import MODEL_FILE, corpus_fingerprint
from tfnas.runs.session import RunSession
from tfnas.metrics import perplexity
from tfnas.settings import NON_NEGATIVE, Bound, setting, settings
from tfnas.strategies.base import SearchDivergedError, SearchResult, Strategy

Batch = tuple[tf.Tensor, tf.Tensor, list]

#: Files of a one-shot search folder besides the run folder's (`tfnas.runs.folder`).
HISTORY_FILE = "history.jsonl"
RECOVERY_FILE = "recovery.json"


def valid_segment(data: np.ndarray, position: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The validation segment used with the training segment at ``position`` (DARTS search).

    DARTS' ``train_search.py`` takes ``get_batch(search_data, i % (len - 1))``:
    ``seq_len`` (there ``bptt``) steps from ``position`` modulo the data,
    shortened at its end.
    """
    start = position % (data.shape[1] - 1)
    length = min(seq_len, data.shape[1] - 1 - start)
    return data[:, start:start + length], data[:, start + 1:start + 1 + length]


def darts_search_model() -> ModelConfig:
    """The model of DARTS' search (appendix A.1.2): emsize = nhid = 300, dropouts 0.75/0.25/0.75/0.2, none on words."""
    return ModelConfig(emsize=300, nhid=300, dropout=0.75, dropouth=0.25, dropoutx=0.75, dropouti=0.2,
                       dropoute=0.0, recompute=True)


@settings
class OneShotConfig(LMRunConfig):
    """What every one-shot search shares: the BPTT loop of `OneShotSearch` and its recovery.

    Defaults: DARTS' search (Liu et al., ICLR 2019, appendix A.1.2 and
    ``rnn/train_search.py``): the `darts_search_model`, batch 256, weight
    decay 5e-7, 50 epochs, seed 3, training segments of ``bptt`` steps (or
    ``bptt / 2`` with probability 0.05) without normal jitter; the rest as
    `LMRunConfig` (BPTT 35, SGD lr 20, clip 0.25, slowness 1e-3). The model
    recomputes each time step in the backward pass (a tfnas choice: half the
    memory, same gradients).
    """

    model: ModelConfig = field(default_factory=darts_search_model)
    batch_size: int = 256
    wdecay: float = 5e-7
    epochs: int = 50
    seed: int = 3
    checkpoint_interval: int = setting(100, help="steps between checkpoints; a recovery from a diverged loss rewinds "
                                                 "to the newest one, so the interval is part of what a search "
                                                 "computes and may not change on resume")
    seq_len_std: float = setting(0.0, help="normal jitter (standard deviation) of a training segment's length; "
                                           "0: none, as DARTS' train_search.py (AWD-LSTM's train.py: 5, drawn "
                                           "within [5, bptt + max_seq_len_delta])", check=NON_NEGATIVE)
    full_bptt_prob: float = setting(0.95, help="probability that a training segment is bptt rather than bptt/2 "
                                               "long (DARTS' train_search.py: 0.95; 1: a fixed length)",
                                    check=Bound(0, 1))
    warmup_epochs: int = setting(0, help="epochs that train only the weights before the architecture moves "
                                         "(NASABN's phased training)", check=NON_NEGATIVE)
    warmup_steps: int = setting(0, help="steps that train only the weights before the architecture moves (NASABN's "
                                        "phased training in steps, for searches shorter than an epoch); with "
                                        "warmup_epochs the architecture waits for both", check=NON_NEGATIVE)
    nan_retries: int = setting(3, help="recoveries from a non-finite loss (restore the last checkpoint, halve "
                                       "the learning rates again) before the search stops", resumable=True,
                               check=NON_NEGATIVE)

    def __post_init__(self) -> None:
        super().__post_init__()


def one_shot_batches(corpus: Corpus, config: OneShotConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training, search (validation at ``batch_size``) and validation data of a one-shot search; a split
    smaller than its batch is refused naming its file."""
    return (batchify_split(corpus, "train", config.batch_size), batchify_split(corpus, "valid", config.batch_size),
            batchify_split(corpus, "valid", config.eval_batch_size))


class OneShotSearch(Strategy, abc.ABC):
    """Base class of supernet strategies; see the module docstring.

    Its config is a `OneShotConfig` (a subclass adds the method's settings).
    """

    #: Whether `search` logs the finished search to the HParams dashboard (`tfnas.hparams.FinalHParams`; a
    #: WeNet round does not: its search does).
    logs_hparams: bool = True

    def __init__(self, config: OneShotConfig):
        self.config = config
        self.model: keras.Model | None = None

    # ------------------------------------------------------------- subclass
    @abc.abstractmethod
    def build(self, vocab_size: int) -> None:
        """Creates ``self.model`` (with ``initial_state`` and ``forward``) and the optimizers."""

    @abc.abstractmethod
    def search_step(self, train: Batch, lr: float, update_arch: bool) -> tuple[dict, list]:
        """One update on the training segment ``train`` (inputs, targets, states); returns ``(logs with "loss",
        new states)``."""

    @abc.abstractmethod
    def derive(self) -> Genotype:
        """The genotype the search currently points at."""

    def state_variables(self) -> list[tf.Variable]:
        """Everything numeric to checkpoint (model variables; subclasses add optimizers)."""
        return list(self.model.variables)

    def extra_arrays(self) -> dict[str, np.ndarray]:
        """Arrays of a subclass that are not variables (DARTS' carried validation states), saved in checkpoints."""
        return {}

    def load_extra_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restores what `extra_arrays` returned (``arrays`` holds every array of the checkpoint)."""

    def epoch_logs(self) -> dict[str, Any]:
        """Extra per-epoch logs for callbacks: numbers, or arrays that they draw (see `tfnas.callbacks`)."""
        return {}

    def step_logs(self) -> dict[str, Any]:
        """Extra logs of the ``"train"`` event of every ``log_interval`` steps (numbers, or arrays that callbacks
        draw), e.g. the architecture weights over the search."""
        return {}

    def architecture_snapshot(self) -> dict[str, Any]:
        """JSON snapshot of the architecture parameters, stored in the per-epoch history."""
        return {}

    def divergence(self, loss: float) -> str | None:
        """Why ``loss`` (a training step's) diverged, or None if it did not: here, ``"not finite"``."""
        return None if math.isfinite(loss) else "not finite"

    def on_step_end(self) -> None:
        """Called after every step (``self.step`` counts it), before its logs and checkpoint (DARTS measures the
        architecture Hessian's eigenvalue here)."""

    def stops_early(self) -> bool:
        """Whether the method's own rule has ended the search (DARTS-ES); checked before every step."""
        return False

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch before it is evaluated and logged, and before the final partial
        epoch if steps were taken since the last epoch end (BayesNAS updates its priors here)."""

    def evaluate(self, data: np.ndarray) -> float:
        """Mean per-token cross-entropy of the supernet on batchified ``data``."""
        return mean_window_loss(self._eval_step, data, self.config.bptt, self.model.initial_state(data.shape[0]),
                                self.config.max_eval_batches)

    # ----------------------------------------------------------------- loop
    def _batchify(self, corpus: Corpus) -> None:
        self.train_data, self.search_data, self.valid_data = one_shot_batches(corpus, self.config)

    def _setup(self, corpus: Corpus, session: RunSession) -> None:
        c = self.config
        self.session = session
        self.out_dir = session.run_dir
        self.callbacks = session.callbacks
        self.corpus = corpus
        with seeded(c.seed):
            self.build(len(corpus.vocab))
        model = self.model
        self._eval_step = make_eval_step(model)
        write_json(self.out_dir / MODEL_FILE, model.get_config())
        self.step, self.epoch, self.lr_factor, self.recoveries = 0, 1, 1.0, 0
        self.history: list[dict[str, Any]] = []
        self.iterator = self._epoch_iterator(1)
        self.segment_start = 0
        self.hidden_train = model.initial_state(c.batch_size)

    def _epoch_iterator(self, epoch: int) -> BPTTIterator:
        c = self.config
        return epoch_iterator(self.train_data, c.bptt, c.seed, epoch, c.max_seq_len_delta,
                              seq_len_std=c.seq_len_std, full_bptt_prob=c.full_bptt_prob)

    def epoch_lr(self) -> float:
        """The weights' learning rate in the current epoch, before the BPTT scale and recoveries (``lr``)."""
        return self.config.lr

    def extra_state(self) -> dict[str, Any]:
        """JSON state of a subclass, saved in checkpoints."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restores what `extra_state` returned."""

    def _message(self, text: str) -> None:
        self.session.message(text)

    def _save(self) -> Path:
        """A checkpoint of the whole state, then ``history.jsonl`` from the history it holds."""
        state = {"step": self.step, "epoch": self.epoch, "lr_factor": self.lr_factor,
                 "recoveries": self.recoveries, "history": self.history, "iterator": self.iterator.state(),
                 "extra": self.extra_state()}
        extra = {f"train{i}": s.numpy() for i, s in enumerate(self.hidden_train)}
        extra.update(self.extra_arrays())
        path = self.session.save(self.step, self.state_variables(), state, extra, weights=self.model.variables)
        write_jsonl(self.out_dir / HISTORY_FILE, self.history)
        return path

    def _restore(self) -> Restored | None:
        """Restores the newest readable checkpoint (warning about skipped ones); None if there is none."""
        restored = self.session.restore(self.state_variables())
        if restored is None:
            return None
        state, extra = restored.state, restored.extra
        self.step, self.epoch = state["step"], state["epoch"]
        self.lr_factor, self.recoveries = state["lr_factor"], state["recoveries"]
        self.history = state["history"]
        self.iterator = self._epoch_iterator(self.epoch)
        self.iterator.set_state(state["iterator"])
        self.hidden_train = [tf.constant(extra[f"train{i}"]) for i in range(len(self.hidden_train))]
        self.load_extra_arrays(extra)
        self.load_extra_state(state["extra"])
        return restored

    def _resume(self) -> bool:
        """Resumes from the newest checkpoint and the recoveries made since (``recovery.json``); False if none."""
        restored = self._restore()
        if restored is None:
            (self.out_dir / RECOVERY_FILE).unlink(missing_ok=True)
            return False
        recovery = self.out_dir / RECOVERY_FILE
        if recovery.exists():
            record = read_json(recovery)
            if record["recoveries"] > self.recoveries:      # a recovery after that checkpoint: go on from it
                self.recoveries, self.lr_factor = record["recoveries"], record["lr_factor"]
        write_jsonl(self.out_dir / HISTORY_FILE, self.history)
        self._message(f"resumed from {restored.path} (step {self.step})")
        return True

    def _done(self) -> bool:
        """The end of the search: ``max_steps``, ``epochs``, the method's own rule (`stops_early`), ``budget_s``, or
        a callback's stop (`tfnas.callbacks.Callback.stop_requested`, not recorded: a resume goes on)."""
        c = self.config
        return ((c.max_steps is not None and self.step >= c.max_steps) or self.epoch > c.epochs
                or self.stops_early() or self.session.over_budget(c.budget_s) or self.callbacks.stop_requested)

    def update_arch_now(self) -> bool:
        """Whether the next step updates the architecture (after the warm-up epochs and steps)."""
        return self.epoch > self.config.warmup_epochs and self.step >= self.config.warmup_steps

    def _end_epoch(self) -> None:
        val_loss = self.evaluate(self.valid_data)
        genotype = self.derive()
        logs = {"step": self.step, "epoch": self.epoch, "valid_loss": val_loss, "valid_ppl": perplexity(val_loss),
                "genotype": genotype.to_dict(), "architecture": self.architecture_snapshot()}
        self.history.append(logs)
        self.callbacks.on_event("epoch", {**{k: v for k, v in logs.items() if k not in ("genotype", "architecture")},
                                          "genotype": json.dumps(genotype.to_dict()["nodes"]),
                                          CELL_KEY: genotype.to_dict(), **self.epoch_logs()})

    def _recover(self, loss: float, why: str) -> None:
        """After a diverged loss: the newest checkpoint, and the learning rates halved once more."""
        c, step = self.config, self.step + 1
        seen = f"{loss:.6g} ({why}) at step {step}"
        if self.recoveries >= c.nan_retries:
            raise SearchDivergedError(
                f"the search loss was {seen} after {c.nan_retries} recoveries (learning rates "
                f"x{self.lr_factor:g}); no genotype was written (lower --lr or raise --clip)")
        recoveries, factor = self.recoveries + 1, self.lr_factor * 0.5
        restored = self._restore()
        self.recoveries, self.lr_factor = recoveries, factor
        write_json(self.out_dir / RECOVERY_FILE, {"recoveries": recoveries, "lr_factor": factor, "step": step,
                                                  "loss": str(loss), "why": why})
        self._message(f"loss {seen}: restored {restored.path} (step {self.step}), learning rates now x{factor:g} "
                      f"(recovery {recoveries} of {c.nan_retries})")

    def search(self, corpus: Corpus, out_dir: str | Path, callbacks: Sequence[Callback] = ()) -> SearchResult:
        """Runs or resumes the search in ``out_dir``; see the module docstring."""
        out_dir = Path(out_dir)
        self._batchify(corpus)  # before the folder is locked and its record written
        if self.logs_hparams:
            callbacks = [*callbacks, FinalHParams(out_dir, self.name, self.config)]
        with RunSession(out_dir, "search", self.name, self.config, corpus_fingerprint(corpus), callbacks,
                        self.config.keep_checkpoints) as session:
            self._setup(corpus, session)
            if not self._resume():
                self._save()
            self._loop()
            return self._finish()

    def _loop(self) -> None:
        c = self.config
        meter = ThroughputMeter()
        while not self._done():
            self.session.stop_if_pending(f"at step {self.step}", self._save)
            segment = next(self.iterator, None)
            if segment is None:
                self.on_epoch_end()
                self._end_epoch()
                self.epoch += 1
                self.iterator = self._epoch_iterator(self.epoch)
                self._save()
                continue
            inputs, targets, seq_len, lr_scale = segment
            self.segment_start = self.iterator.position - seq_len
            train = (tf.constant(inputs, tf.int32), tf.constant(targets, tf.int32), self.hidden_train)
            lr = self.epoch_lr() * lr_scale * self.lr_factor
            logs, new_train = self.search_step(train, lr, self.update_arch_now())
            loss = float(logs["loss"])
            why = self.divergence(loss)
            if why is not None:
                self._recover(loss, why)
                continue
            self.hidden_train = new_train
            self.step += 1
            meter.add(loss, targets.size)
            self.on_step_end()
            if self.step % c.log_interval == 0:
                self.callbacks.on_event("train", {
                    "step": self.step, "epoch": self.epoch, "lr": lr,
                    **meter.summary(), **{k: float(v) for k, v in logs.items() if k != "loss"},
                    **self.step_logs()})
            if self.step % c.checkpoint_interval == 0:
                self._save()

    def _finish(self) -> SearchResult:
        """The last partial epoch's evaluation and checkpoint, then the result and its files."""
        if not self.history or self.history[-1]["step"] != self.step:
            self.on_epoch_end()
            self._end_epoch()
            self._save()
        metrics = {"steps": self.step, "valid_ppl": self.history[-1]["valid_ppl"], "strategy": self.name,
                   "recoveries": self.recoveries}
        genotype = self.derive()
        return self.finish(self.session, genotype, self.history, metrics,
                           {"step": self.step, "valid_ppl": metrics["valid_ppl"],
                            "genotype": json.dumps(genotype.to_dict()["nodes"])})
