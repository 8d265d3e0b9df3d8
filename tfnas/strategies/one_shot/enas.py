"""ENAS (Pham et al., ICML 2018): REINFORCE with weight sharing over the DAG space.

A `SharedLM` holds one set of shared weights ``omega`` for every cell of
the space (`SharedCell`: one matrix per (node, predecessor) pair). Search
alternates two phases inside the one-shot loop of `OneShotSearch`:

* shared weights: every training batch runs one architecture sampled from
  the controller (seed ``(seed + 1, step)``, and the recovery count after
  a recovery) and takes a clipped SGD step on ``omega`` (AWD regularisers
  optional);
* controller: every ``controller_interval`` training steps,
  ``controller_steps`` REINFORCE updates, each on ``samples_per_update``
  sampled architectures whose reward is ``c / valid_ppl`` (``c = 80``,
  ``+ entropy bonus``) measured with the shared weights on the next
  validation minibatch (from zero states).

The cell of the search is chosen among ``derive_samples`` architectures
sampled from the trained controller by their validation perplexity with the
shared weights on ``derive_batches`` validation minibatches (ENAS, section
2.2: "take only the model with the highest reward"). Checkpoints hold the
shared weights, the controller, Adam's slots, the baseline, the dropout
seeds and the sampling counters, so a killed search resumes exactly. The
search folder's ``model.json`` (the `SharedLM` config) and its checkpoints
are what `tfnas.evaluation.WeightSharingEvaluator.from_search` reads to
score other cells with the shared weights.

Some cells of the space (identity activations along long paths, in node 0
too) make the hidden state grow without bound, and one such sample can blow
up the shared weights. A training loss above ``max_loss`` (a safeguard, not
in the paper) is handled as a non-finite loss (`EnasSearch.divergence`):
the last checkpoint is restored and the learning rate halved once more
(`OneShotSearch`'s recovery), and the steps from there on draw other cells
(`EnasSearch.training_seed`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, field
from typing import Any

import numpy as np
import tensorflow as tf

from tfnas.config import (AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Bound, ControllerConfig, ModelConfig, setting,
                          settings)
from tfnas.genotypes.dag import Genotype
from tfnas.lm.objective import clipped_sgd_update, cross_entropy, regularized_loss
from tfnas.lm.search_models import SharedLM
from tfnas.metrics import perplexity
from tfnas.spaces.dag import DagSpace
from tfnas.policies.reinforce import REWARDS, Reinforce, perplexity_reward
from tfnas.policies.controller import Controller
from tfnas.strategies.base import STEPS
from tfnas.strategies.one_shot.loop import Batch, OneShotConfig, OneShotSearch


def enas_model() -> ModelConfig:
    """ENAS' PTB search model (section 3.1): 1000 units, shared weights in U(-0.05, 0.05); see `EnasConfig`."""
    return ModelConfig(emsize=1000, nhid=1000, dropout=0.4, dropouth=0.25, dropoutx=0.25, dropouti=0.2,
                       dropoute=0.1, cell_init_range=0.05, recompute=True)


@settings
class EnasConfig(OneShotConfig, ControllerConfig):
    """ENAS search settings (Pham et al., ICML 2018, section 3.1, PTB).

    12 nodes over tanh, relu, sigmoid, identity with the output the mean of
    the loose ends; shared weights by SGD (lr 20, clip 0.25), batch 64, BPTT
    35, 150 epochs; controller: one LSTM layer of 100 units, weights in
    U(-0.1, 0.1), Adam lr 3.5e-4, logits 2.5 tanh(l / 5), entropy bonus
    1e-4, reward 80 / valid ppl. Not pinned by the paper (tfnas choices):
    the hidden size during search (1000), weight decay 1e-7, the dropouts,
    the baseline decay 0.99 (the authors' code default), the 100 final
    samples, and ``max_loss``. As in the paper: a fixed BPTT length of 35
    (``full_bptt_prob`` 1, no jitter), no slowness term, and the learning
    rate of the shared weights multiplied by 0.96 every epoch after epoch 15
    (`EnasSearch.epoch_lr`).
    """

    model: ModelConfig = field(default_factory=enas_model)
    batch_size: int = 64
    full_bptt_prob: float = 1.0
    wdecay: float = 1e-7
    beta: float = 0.0
    epochs: int = 150
    seed: int = 0
    controller_units: int = 100
    controller_layers: int = 1
    controller_lr: float = 3.5e-4
    controller_init_range: float = 0.1
    temperature: float | None = 5.0
    tanh_constant: float | None = 2.5
    baseline_decay: float = 0.99
    space: str = setting("dag", help="the search space (ENAS shares weights over the DAG space only)")
    steps: int = setting(12, help="nodes of the cell after node 0", check=STEPS)
    first_node: str = setting("enas", help="node 0: enas (its activation is searched) or darts")
    output: str = setting("loose_ends", help="output rule: loose_ends (ENAS) or mean")
    reward: str = setting("inv", help="reward of a validation perplexity: inv (c / ppl) or inv_square")
    reward_c: float = setting(80.0, help="the constant c of the reward", check=POSITIVE)
    controller_interval: int = setting(400, help="training steps between controller phases", check=AT_LEAST_ONE)
    controller_steps: int = setting(2000, help="REINFORCE updates per controller phase", check=AT_LEAST_ONE)
    samples_per_update: int = setting(1, help="architectures sampled per REINFORCE update", check=AT_LEAST_ONE)
    derive_samples: int = setting(100, help="controller samples the final cell is chosen among", check=AT_LEAST_ONE)
    derive_batches: int = setting(1, help="validation minibatches that score each final sample", check=AT_LEAST_ONE)
    lr_decay: float = setting(0.96, help="factor of the shared weights' learning rate per epoch after "
                                         "lr_decay_start (ENAS section 3.1: 0.96; 1: none)",
                            check=Bound(0, 1, open_low=True))
    lr_decay_start: int = setting(15, help="the last epoch at the initial learning rate (ENAS section 3.1: 15)",
                                  check=NON_NEGATIVE)
    max_loss: float | None = setting(100.0, help="a training loss above this is handled as a non-finite one "
                                                 "(a tfnas safeguard), or null", check=POSITIVE)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.space != "dag":
            raise ValueError(f"ENAS shares weights over the DAG space; space must be 'dag', received: {self.space!r}")
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {list(REWARDS)}; received: {self.reward!r}")


class EnasSearch(OneShotSearch):
    """ENAS; see the module docstring."""

    name = "enas"

    def build(self, vocab_size: int) -> None:
        c = self.config
        self.build_shared_weights(vocab_size)
        self.controller = Controller(self.space.token_choices(), units=c.controller_units,
                                     layers=c.controller_layers, init_range=c.controller_init_range,
                                     temperature=c.temperature, tanh_constant=c.tanh_constant, seed=c.seed)
        self.reinforce = Reinforce(self.controller, lr=c.controller_lr, baseline_decay=c.baseline_decay,
                                   entropy_weight=c.entropy_weight)
        self.sample_count = 0
        self.controller_logs: dict[str, float] = {}

    def build_shared_weights(self, vocab_size: int) -> None:
        """The space, the shared-weights `SharedLM` and its compiled training and validation steps."""
        c, m = self.config, self.config.model
        self.space = DagSpace(c.steps, first_node=c.first_node, output=c.output)
        self.model = SharedLM(vocab_size, steps=c.steps, first_node=c.first_node, output=c.output,
                              seed=c.seed, **asdict(m))
        self.model.build_weights()
        self.reward_position = 0
        self._derived: tuple[int, Genotype, float] | None = None
        model = self.model
        n_states = len(model.initial_state(1))
        weights = model.trainable_variables

        def train_step(arch, inputs, targets, states, lr):
            model.cell.set_genotype(arch)
            with tf.GradientTape() as tape:
                out = model.forward(inputs, states, training=True)
                loss, raw = regularized_loss(out, targets, c.alpha, c.beta)
            norm = clipped_sgd_update(weights, tape.gradient(loss, weights), lr, c.clip, c.wdecay)
            return raw, out.states, norm

        spec = [tf.TensorSpec((1 + 2 * c.steps,), tf.int32), tf.TensorSpec((c.batch_size, None), tf.int32),
                tf.TensorSpec((c.batch_size, None), tf.int32),
                [tf.TensorSpec((c.batch_size, m.nhid), tf.float32)] * n_states, tf.TensorSpec((), tf.float32)]
        self._train = tf.function(train_step, input_signature=spec, jit_compile=c.jit_compile or None,
                                  autograph=False)

        def valid_loss(arch, inputs, targets):
            model.cell.set_genotype(arch)
            out = model.forward(inputs, model.initial_state(tf.shape(inputs)[0]), training=False)
            return cross_entropy(out.logits, targets)

        self._valid_loss = tf.function(valid_loss, reduce_retracing=True, autograph=False)

    def state_variables(self) -> list[tf.Variable]:
        return list(self.model.variables) + self.reinforce.variables

    def extra_state(self) -> dict[str, Any]:
        return {"sample_count": self.sample_count, "reward_position": self.reward_position,
                "controller_logs": self.controller_logs}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.sample_count = state["sample_count"]
        self.reward_position = state["reward_position"]
        self.controller_logs = dict(state["controller_logs"])
        self._derived = None

    # -------------------------------------------------------------- helpers
    def _arch(self, choices) -> tf.Tensor:
        return tf.constant(self.model.cell.encode(self.space.decode(choices)))

    def _reward_windows(self, count: int, start: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """``count`` validation windows from the running cursor (or from ``start``)."""
        data, bptt = self.search_data, self.config.bptt
        span = data.shape[1] - 1
        position = self.reward_position if start is None else start
        windows = []
        for _ in range(count):
            if position >= span:
                position = 0
            length = min(bptt, span - position)
            windows.append((data[:, position:position + length], data[:, position + 1:position + 1 + length]))
            position += length
        if start is None:
            self.reward_position = position
        return windows

    def architecture_loss(self, genotype_or_choices, windows) -> float:
        """Mean validation cross-entropy of one architecture with the shared weights."""
        arch = tf.constant(self.model.cell.encode(genotype_or_choices)) \
            if isinstance(genotype_or_choices, Genotype) else self._arch(genotype_or_choices)
        losses = [float(self._valid_loss(arch, tf.constant(x, tf.int32), tf.constant(y, tf.int32)))
                  for x, y in windows]
        return float(np.mean(losses))

    def controller_phase(self) -> dict[str, float]:
        """``controller_steps`` REINFORCE updates with rewards from validation minibatches."""
        c = self.config
        logs: list[dict[str, float]] = []
        for _ in range(c.controller_steps):
            choices, _, _ = self.reinforce.sample(c.samples_per_update, [c.seed, self.sample_count])
            self.sample_count += 1
            windows = self._reward_windows(1)
            losses = [self.architecture_loss(row, windows) for row in choices]
            rewards = [perplexity_reward(perplexity(x), c.reward_c, c.reward) for x in losses]
            step_logs = self.reinforce.update(choices, rewards)
            step_logs["valid_loss"] = float(np.mean(losses))
            logs.append(step_logs)
        self._derived = None
        keys = ("reward", "baseline", "entropy", "loss", "valid_loss")
        return {f"controller_{k}": float(np.mean([g[k] for g in logs])) for k in keys}

    # --------------------------------------------------------- one-shot API
    def epoch_lr(self) -> float:
        """ENAS section 3.1: ``lr * lr_decay ** max(0, epoch - lr_decay_start)`` (epochs counted from 1)."""
        c = self.config
        return c.lr * c.lr_decay ** max(0, self.epoch - c.lr_decay_start)

    def training_seed(self) -> list[int]:
        """The seed (an int32 pair) of this step's training cell: ``(seed + 1 + recoveries * 2**20, step)``, so
        that a step retried after a blow-up draws another cell (the blow-up is the cell's: a smaller learning
        rate rarely helps it)."""
        return [self.config.seed + 1 + self.recoveries * 2**20, self.step]

    def training_arch(self) -> tf.Tensor:
        """The encoded cell the shared weights train on at this step: one controller sample."""
        choices, _, _ = self.reinforce.sample(1, self.training_seed())
        return self._arch(choices[0])

    def architecture_interval(self) -> int:
        """Training steps between two `architecture_phase` calls."""
        return self.config.controller_interval

    def architecture_phase(self) -> None:
        """What moves the architecture distribution: ENAS' controller phase."""
        self.controller_logs = self.controller_phase()

    def architecture_logs(self) -> dict[str, float]:
        """The logs of the last `architecture_phase`, reported with every step."""
        return self.controller_logs

    def search_step(self, train: Batch, valid: Batch, lr: float, update_arch: bool):
        inputs, targets, states = train
        loss, new_states, norm = self._train(self.training_arch(), inputs, targets, list(states),
                                             tf.constant(lr, tf.float32))
        logs = {"loss": float(loss), "grad_norm": float(norm)}
        if self.divergence(logs["loss"]) is not None:     # the loop restores the last checkpoint
            return logs, list(states), list(valid[2])
        if update_arch and (self.step + 1) % self.architecture_interval() == 0:
            self.architecture_phase()
        self._derived = None
        return {**logs, **self.architecture_logs()}, list(new_states), list(valid[2])

    def divergence(self, loss: float) -> str | None:
        """Non-finite, or above ``max_loss``: a sampled cell blew the shared weights up (e.g. identity
        activations along a long path)."""
        limit = self.config.max_loss
        if limit is not None and math.isfinite(loss) and loss > limit:
            return f"above max_loss {limit:g}"
        return super().divergence(loss)

    def derive(self) -> Genotype:
        """The best of ``derive_samples`` controller samples by validation perplexity (shared weights)."""
        if self._derived is not None and self._derived[0] == self.step:
            return self._derived[1]
        c = self.config
        choices, _, _ = self.reinforce.sample(c.derive_samples, [c.seed + 2, self.step])
        windows = self._reward_windows(c.derive_batches, start=0)
        best, best_loss = None, math.inf
        seen = set()
        for row in choices:
            key = tuple(int(v) for v in row)
            if key in seen:
                continue
            seen.add(key)
            loss = self.architecture_loss(row, windows)
            if best is None or loss < best_loss:
                best, best_loss = self.space.decode(row), loss
        self._derived = (self.step, best, best_loss)
        return best

    def evaluate(self, data: np.ndarray) -> float:
        """Validation loss of the derived cell with the shared weights."""
        self.model.set_genotype(self.derive())
        return super().evaluate(data)

    def epoch_logs(self) -> dict[str, Any]:
        logs = dict(self.controller_logs)
        if self._derived is not None:
            logs["derived_loss"] = self._derived[2]
        return logs

    def architecture_snapshot(self) -> dict[str, Any]:
        tokens, _, _ = self.reinforce.sample(64, [self.config.seed + 3, self.step])
        return {"baseline": float(self.reinforce.baseline.numpy()),
                "derived_loss": None if self._derived is None else self._derived[2],
                "distinct_samples_of_64": len({tuple(int(v) for v in row) for row in tokens})}
