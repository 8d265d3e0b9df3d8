"""REINFORCE (Williams 1992) and the rewards: the estimator against analytic gradients, the baseline
(with the LSTM controller: test_controller.py)."""
import math

import numpy as np
import pytest

from support import CategoricalPolicy
from tfnas.policies.reinforce import Reinforce, perplexity_reward, reward_overflows

R = np.array([1.0, 3.0, -2.0, 0.5])


def tiny_policy():
    policy = CategoricalPolicy([4], seed=0)
    policy.build(None)
    policy.logits.assign([0.3, -0.2, 0.8, 0.0])
    return policy


def test_reinforce_gradient_matches_analytic_gradient_of_categorical_policy():
    policy = tiny_policy()
    reinforce = Reinforce(policy, lr=0.1)
    theta = policy.logits.numpy()
    p = np.exp(theta) / np.exp(theta).sum()
    expected_reward = float(p @ R)
    analytic = p * (R - expected_reward)  # d/dtheta sum_a p_a R_a

    # 1) On fixed samples: the loss gradient is -(1/m) sum_k (R_k - b) (e_{a_k} - p), exactly.
    actions = np.array([[0], [1], [1], [3], [2]])
    b = 0.7
    (grad,) = reinforce.gradients(actions, R[actions[:, 0]], b)
    onehots = np.eye(4)[actions[:, 0]]
    manual = -np.mean((R[actions[:, 0]] - b)[:, None] * (onehots - p), axis=0)
    np.testing.assert_allclose(grad.numpy(), manual, atol=1e-6)

    # 2) Its expectation over the policy is the analytic gradient, whatever the baseline.
    for baseline in (0.0, 5.0):
        expectation = sum(p[a] * -reinforce.gradients([[a]], [R[a]], baseline)[0].numpy() for a in range(4))
        np.testing.assert_allclose(expectation, analytic, atol=1e-6)

    # 3) The Monte-Carlo estimate from the sampler converges to it (within 5 standard errors).
    samples, _, _ = reinforce.sample(20000, [4, 2])
    a = samples[:, 0]
    per_sample = (R[a] - expected_reward)[:, None] * (np.eye(4)[a] - p)
    (mc,) = reinforce.gradients(samples, R[a], expected_reward)
    stderr = per_sample.std(axis=0) / np.sqrt(len(a))
    assert np.all(np.abs(-mc.numpy() - analytic) < 5 * stderr + 1e-6)
    np.testing.assert_allclose(np.bincount(a, minlength=4) / len(a), p, atol=0.015)


def test_baseline_is_an_exponential_moving_average():
    reinforce = Reinforce(tiny_policy(), lr=0.01, baseline_decay=0.9)
    first = reinforce.update([[0], [1]], [1.0, 3.0])
    assert first["advantage"] == pytest.approx(0.0, abs=1e-6)  # initialised by the first mean
    assert first["baseline"] == pytest.approx(2.0)
    second = reinforce.update([[2]], [10.0])
    assert second["advantage"] == pytest.approx(8.0)
    assert second["baseline"] == pytest.approx(0.9 * 2.0 + 0.1 * 10.0)


def test_rewards():
    assert perplexity_reward(80.0, 80.0, "inv") == pytest.approx(1.0)
    assert perplexity_reward(40.0, 80.0, "inv_square") == pytest.approx(0.05)
    assert perplexity_reward(float("inf")) == 0.0


def test_a_reward_whose_square_overflows_is_zero_not_an_error():
    """ppl = exp(700), the cap of a diverged loss, is finite, but ppl ** 2 raises OverflowError in Python."""
    capped = math.exp(700)
    with pytest.raises(OverflowError):
        capped ** 2
    assert reward_overflows(capped) and perplexity_reward(capped, 80.0, "inv_square") == 0.0
    assert not reward_overflows(capped, "inv") and perplexity_reward(capped, 80.0, "inv") == pytest.approx(80 / capped)
    assert not reward_overflows(1e154) and perplexity_reward(1e154) == pytest.approx(80e-308)
