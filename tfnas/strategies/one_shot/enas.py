"""ENAS (Pham et al., ICML 2018): REINFORCE with weight sharing over the DAG space.

A supernet (`tfnas.lm.supernet`) around a `SharedCell` holds one set of shared weights ``omega`` for every
cell of the space (`SharedCell`: one matrix per (node, predecessor) pair). Search
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
search folder's ``model.json`` (the supernet's config) and its checkpoints
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

from typing import Any, Iterable

import numpy as np
import tensorflow as tf

from tfnas.policies.controller import ControllerConfig
from tfnas.genotypes.dag import Genotype
from tfnas.metrics import perplexity
from tfnas.policies.controller import Controller
from tfnas.policies.reinforce import REWARDS, Reinforce, perplexity_reward
from tfnas.settings import AT_LEAST_ONE, POSITIVE, SettingsError, setting, settings
from tfnas.strategies.one_shot.shared_weights import SharedWeightsConfig, SharedWeightsSearch


@settings
class EnasConfig(SharedWeightsConfig, ControllerConfig):
    """ENAS search settings (Pham et al., ICML 2018, section 3.1, PTB): `SharedWeightsConfig`'s training of
    the shared weights and the controller.

    Controller: one LSTM layer of 100 units, weights in U(-0.1, 0.1), Adam
    lr 3.5e-4, logits 2.5 tanh(l / 5), entropy bonus 1e-4, reward 80 / valid
    ppl. Not pinned by the paper (tfnas choices): the baseline decay 0.99
    (the authors' code default) and the 100 final samples.
    """

    controller_units: int = 100
    controller_layers: int = 1
    controller_lr: float = 3.5e-4
    controller_init_range: float = 0.1
    temperature: float | None = 5.0
    tanh_constant: float | None = 2.5
    baseline_decay: float = 0.99
    reward: str = setting("inv", help="reward of a validation perplexity: inv (c / ppl) or inv_square")
    reward_c: float = setting(80.0, help="the constant c of the reward", check=POSITIVE)
    controller_interval: int = setting(400, help="training steps between controller phases", check=AT_LEAST_ONE)
    controller_steps: int = setting(2000, help="REINFORCE updates per controller phase", check=AT_LEAST_ONE)
    samples_per_update: int = setting(1, help="architectures sampled per REINFORCE update", check=AT_LEAST_ONE)
    derive_samples: int = setting(100, help="controller samples the final cell is chosen among", check=AT_LEAST_ONE)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reward not in REWARDS:
            raise SettingsError(f"reward must be one of {list(REWARDS)}; received: {self.reward!r}")


class EnasSearch(SharedWeightsSearch):
    """ENAS; see the module docstring."""

    name = "enas"
    interval_setting = "controller_interval"

    def build(self, vocab_size: int) -> None:
        c = self.config
        self.build_shared_weights(vocab_size)
        self.controller = Controller(self.space.token_choices(), units=c.controller_units,
                                     layers=c.controller_layers, init_range=c.controller_init_range,
                                     temperature=c.temperature, tanh_constant=c.tanh_constant, seed=c.seed)
        self.reinforce = Reinforce(self.controller, lr=c.controller_lr, baseline_decay=c.baseline_decay,
                                   entropy_weight=c.entropy_weight)
        self.sample_count = 0

    def state_variables(self) -> list[tf.Variable]:
        return list(self.model.variables) + self.reinforce.variables

    def extra_state(self) -> dict[str, Any]:
        return {"sample_count": self.sample_count, "reward_position": self.reward_position,
                "controller_logs": self.phase_logs}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.sample_count = state["sample_count"]
        self.reward_position = state["reward_position"]
        self.phase_logs = dict(state["controller_logs"])
        self._derived = None

    def architecture_phase(self) -> dict[str, float]:
        """ENAS' controller phase: ``controller_steps`` REINFORCE updates with rewards from validation
        minibatches."""
        c = self.config
        logs: list[dict[str, float]] = []
        for _ in range(c.controller_steps):
            choices, _, _ = self.reinforce.sample(c.samples_per_update, [c.seed, self.sample_count])
            self.sample_count += 1
            windows = self.reward_windows(1)
            losses = [self.architecture_loss(self.space.decode(row), windows) for row in choices]
            rewards = [perplexity_reward(perplexity(x), c.reward_c, c.reward) for x in losses]
            step_logs = self.reinforce.update(choices, rewards)
            step_logs["valid_loss"] = float(np.mean(losses))
            logs.append(step_logs)
        self._derived = None
        keys = ("reward", "baseline", "entropy", "loss", "valid_loss")
        return {f"controller_{k}": float(np.mean([g[k] for g in logs])) for k in keys}

    def training_arch(self) -> tf.Tensor:
        """The encoded cell the shared weights train on at this step: one controller sample."""
        choices, _, _ = self.reinforce.sample(1, self.training_seed())
        return self.encoded(self.space.decode(choices[0]))

    def derive_candidates(self) -> Iterable[Genotype]:
        """``derive_samples`` controller samples (seed ``(seed + 2, step)``), each distinct one once."""
        c = self.config
        choices, _, _ = self.reinforce.sample(c.derive_samples, [c.seed + 2, self.step])
        distinct = dict.fromkeys(tuple(int(v) for v in row) for row in choices)
        return [self.space.decode(row) for row in distinct]

    def architecture_snapshot(self) -> dict[str, Any]:
        tokens, _, _ = self.reinforce.sample(64, [self.config.seed + 3, self.step])
        return {"baseline": float(self.reinforce.baseline.numpy()),
                "derived_loss": None if self._derived is None else self._derived[2],
                "distinct_samples_of_64": len({tuple(int(v) for v in row) for row in tokens})}
