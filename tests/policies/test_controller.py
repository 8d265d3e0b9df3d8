"""The LSTM controller (Zoph & Le, ENAS): its REINFORCE estimator is the gradient of the expected reward,
its sampler follows its log-probabilities, its weights start in U(-init_range, init_range)."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from tfnas.policies.controller import Controller
from tfnas.policies.reinforce import Reinforce


def test_lstm_controller_expected_estimator_is_the_gradient_of_expected_reward():
    controller = Controller([3, 2], units=5, seed=0)
    reinforce = Reinforce(controller, lr=0.1)
    sequences = np.array(list(itertools.product(range(3), range(2))))
    rewards = np.array([0.2, 1.5, -0.3, 0.9, 2.0, 0.1], np.float32)
    with tf.GradientTape() as tape:
        logp, _ = controller.log_prob(sequences)
        expected = tf.reduce_sum(tf.exp(logp) * rewards)
    analytic = tape.gradient(expected, controller.trainable_variables)
    probs = np.exp(logp.numpy())
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)
    estimate = [np.zeros(v.shape) for v in controller.trainable_variables]
    for seq, reward, prob in zip(sequences, rewards, probs):
        for acc, g in zip(estimate, reinforce.gradients([seq], [reward], 0.4)):
            acc -= prob * tf.convert_to_tensor(g).numpy()
    for est, ana in zip(estimate, analytic):
        np.testing.assert_allclose(est, tf.convert_to_tensor(ana).numpy(), atol=1e-6)
    # The sampler draws sequences with the probabilities log_prob reports.
    draws, draw_logp, _ = reinforce.sample(20000, [0, 9])
    freq = np.array([np.mean(np.all(draws == s, axis=1)) for s in sequences])
    np.testing.assert_allclose(freq, probs, atol=0.015)
    np.testing.assert_allclose(draw_logp[:5], controller.log_prob(draws[:5])[0].numpy(), atol=1e-5)


def test_controller_initialisation_is_uniform_in_range():
    controller = Controller([4] * 6, units=35, layers=2, init_range=0.08, seed=3)
    controller.build(None)
    values = np.concatenate([v.numpy().ravel() for v in controller.trainable_variables])
    assert values.min() >= -0.08 and values.max() <= 0.08 and values.std() > 0.04
    assert len(controller.lstm_kernels) == 2 and tuple(controller.lstm_kernels[0].shape) == (70, 140)
