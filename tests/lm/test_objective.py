"""tfnas.lm.objective: the evaluation loss over BPTT windows shared by the trainer, the searches and evaluators."""
import numpy as np
import tensorflow as tf

from tfnas.genotypes.files import resolve_genotype
from tfnas.lm.model import LanguageModel
from tfnas.lm.objective import cross_entropy, make_eval_step, mean_window_loss


def test_mean_window_loss_weights_each_window_by_its_targets_and_carries_the_states():
    data = np.arange(2 * 21).reshape(2, 21)  # windows of 8, 8 and 4 steps: 16, 16 and 8 targets
    seen = []

    def step(inputs, targets, states):
        seen.append((int(inputs.shape[1]), int(targets[0, 0]), int(states[0])))
        return tf.constant(float(len(seen))), [states[0] + 1]

    assert mean_window_loss(step, data, 8, [tf.constant(0)]) == (1 * 16 + 2 * 16 + 3 * 8) / 40
    assert seen == [(8, 1, 0), (8, 9, 1), (4, 17, 2)]
    seen.clear()
    assert mean_window_loss(step, data, 8, [tf.constant(0)], max_batches=2) == (1 * 16 + 2 * 16) / 32


def test_windows_with_carried_states_equal_one_pass_over_the_data():
    model = LanguageModel(20, resolve_genotype("darts_v2"), emsize=8, nhid=8, seed=0)
    model.build_weights()
    data = np.random.default_rng(0).integers(0, 20, (3, 30))
    whole = model.forward(tf.constant(data[:, :-1], tf.int32), model.initial_state(3), training=False)
    expected = float(cross_entropy(whole.logits, tf.constant(data[:, 1:], tf.int32)))
    got = mean_window_loss(make_eval_step(model), data, 7, model.initial_state(3))
    assert abs(got - expected) < 1e-5
