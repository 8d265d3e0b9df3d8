"""REINFORCE (Williams 1992) for the policies of `tfnas.policies.controller`, and the rewards.

`Reinforce` trains any policy with the REINFORCE estimator (Williams
1992) on ``m`` samples per update::

    g = (1/m) sum_k (R_k - b) grad log p(a_k)  +  w_H grad (1/m) sum_k H_k

with ``b`` an exponential moving average of past rewards (Zoph & Le,
section 3.3; ``b <- d*b + (1-d)*mean_k R_k`` after each update, where the
decay ``d`` and initialising ``b`` with the first batch's mean are tfnas
choices the paper leaves open) and ``w_H`` an optional entropy bonus (ENAS;
Zoph & Le have none, so `ReinforceConfig` sets ``w_H = 0``); Adam ascends
it. Rewards come from validation perplexities: ``c / ppl^2`` with c = 80
(Zoph & Le, section 4.2) or ``c / ppl`` (ENAS).

"""
from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas.policies.controller import Policy

#: Reward of a validation perplexity: ``inv_square`` is Zoph & Le's ``c / ppl^2``, ``inv`` is ENAS' ``c / ppl``.
REWARDS = ("inv_square", "inv")


def perplexity_reward(ppl: float, c: float = 80.0, kind: str = "inv_square") -> float:
    """``c / ppl^2`` or ``c / ppl``; a failed (non-finite) perplexity, or one whose reward overflows, earns 0."""
    if kind not in REWARDS:
        raise ValueError(f"reward must be one of {list(REWARDS)}; received: {kind!r}")
    if not math.isfinite(ppl) or ppl <= 0 or reward_overflows(ppl, kind):
        return 0.0
    return c / ppl ** 2 if kind == "inv_square" else c / ppl


def reward_overflows(ppl: float, kind: str = "inv_square") -> bool:
    """Whether ``ppl^2`` of the ``inv_square`` reward overflows a float (``ppl`` above about 1.34e154).

    Only a child whose loss diverged gets there: `tfnas.metrics.perplexity`
    caps a perplexity at ``exp(700)``, about 1e304, which is finite while its
    square is not.
    """
    return kind == "inv_square" and math.isfinite(ppl) and math.isinf(ppl * ppl)


class Reinforce:
    """REINFORCE with an exponential-moving-average baseline and an entropy bonus, by Adam.

    Args:
        policy: a `Controller` (or any policy with ``log_prob`` and ``trainable_variables``).
        lr: Adam learning rate (Zoph & Le: 5e-4 on PTB, section 4.2, and 6e-4
            on CIFAR-10, section 4.1; ENAS: 3.5e-4).
        baseline_decay: ``d`` of ``b <- d*b + (1-d)*mean(R)``.
        entropy_weight: weight of the entropy bonus.
        beta_1, beta_2: Adam moments.
    """

    def __init__(self, policy: Policy, lr: float = 5e-4, baseline_decay: float = 0.95,
                 entropy_weight: float = 0.0, beta_1: float = 0.9, beta_2: float = 0.999):
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1); received: {baseline_decay!r}")
        self.policy = policy
        if not policy.built:
            policy.build(None)
        self.entropy_weight = float(entropy_weight)
        self.baseline_decay = float(baseline_decay)
        self.optimizer = keras.optimizers.Adam(lr, beta_1=beta_1, beta_2=beta_2)
        self.optimizer.build(policy.trainable_variables)
        self.baseline = tf.Variable(0.0, trainable=False, name="reinforce_baseline")
        self.baseline_ready = tf.Variable(False, trainable=False, name="reinforce_baseline_ready")
        self._update = tf.function(self._update_fn, reduce_retracing=True, autograph=False)
        self._sample = tf.function(policy.sample, reduce_retracing=True, autograph=False)

    @property
    def variables(self) -> list[tf.Variable]:
        """Everything to checkpoint: the policy, Adam's slots and the baseline."""
        return list(self.policy.variables) + list(self.optimizer.variables) + [self.baseline, self.baseline_ready]

    def sample(self, n: int, seed: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(choices [n, T], log_probs [n], entropies [n])`` as NumPy arrays."""
        tokens, logp, ent = self._sample(tf.constant(n, tf.int32), tf.constant(seed, tf.int32))
        return tokens.numpy(), logp.numpy(), ent.numpy()

    def surrogate(self, actions, rewards, baseline):
        """The loss whose gradient is minus the REINFORCE estimate (and minus the entropy bonus)."""
        logp, ent = self.policy.log_prob(actions)
        advantage = tf.cast(rewards, logp.dtype) - tf.cast(baseline, logp.dtype)
        loss = -tf.reduce_mean(advantage * logp) - self.entropy_weight * tf.reduce_mean(ent)
        return loss, logp, ent

    def gradients(self, actions, rewards, baseline) -> list[tf.Tensor]:
        """Gradients of `surrogate` for the policy's trainable variables (for tests)."""
        with tf.GradientTape() as tape:
            loss, _, _ = self.surrogate(actions, rewards, baseline)
        return tape.gradient(loss, self.policy.trainable_variables)

    def _update_fn(self, actions, rewards):
        rewards = tf.cast(rewards, tf.float32)
        mean_reward = tf.reduce_mean(rewards)
        baseline = tf.where(self.baseline_ready, self.baseline, mean_reward)
        variables = self.policy.trainable_variables
        with tf.GradientTape() as tape:
            loss, logp, ent = self.surrogate(actions, rewards, baseline)
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        d = self.baseline_decay
        self.baseline.assign(d * baseline + (1.0 - d) * mean_reward)
        self.baseline_ready.assign(True)
        return {"loss": loss, "baseline": self.baseline, "advantage": tf.reduce_mean(rewards - baseline),
                "entropy": tf.reduce_mean(ent), "log_prob": tf.reduce_mean(logp), "reward": mean_reward,
                "grad_norm": tf.linalg.global_norm(grads)}

    def update(self, actions, rewards) -> dict[str, float]:
        """One Adam step on ``m`` sampled sequences ``[m, T]`` and their rewards ``[m]``; returns logs."""
        logs = self._update(tf.constant(np.asarray(actions), tf.int32),
                            tf.constant(np.asarray(rewards, np.float32)))
        return {k: float(v) for k, v in logs.items()}
