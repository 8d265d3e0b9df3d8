"""`tfnas.evaluation.proxies`: the hidden-state covariance score against NumPy and hand-computed spectra, and the
hidden states against the cell run by Keras' own RNN layer."""
import math

import numpy as np
import pytest

from tfnas.config import ModelConfig
from tfnas.evaluation.proxies import K, ProxyError, covariance_score, hidden_states, text_windows
from tfnas.genotypes.files import resolve_genotype


def transcribed_score(samples: np.ndarray, k: float = K) -> float:
    """The authors' ``jacobian_score`` on a [units, samples] matrix, transcribed: corrcoef, eig, the sum."""
    eigenvalues = np.linalg.eig(np.corrcoef(samples))[0].real
    return float(-np.sum(np.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))


def term(eigenvalue: float, k: float = K) -> float:
    return -(math.log(eigenvalue + k) + 1 / (eigenvalue + k))


@pytest.mark.parametrize("samples, units", [(40, 6), (5, 9)])  # full rank, and fewer samples than units
def test_score_is_the_numpy_transcription_on_fixed_states(samples, units):
    states = np.random.default_rng(3).normal(size=(samples, units)) @ np.random.default_rng(4).normal(
        size=(units, units))
    assert covariance_score(states) == pytest.approx(transcribed_score(states.T), rel=1e-9)


def test_leading_axes_are_samples():
    states = np.random.default_rng(5).normal(size=(4, 7, 3))  # [rows, steps, units]
    assert covariance_score(states) == pytest.approx(transcribed_score(states.reshape(28, 3).T), rel=1e-9)


def test_score_of_a_hand_computed_spectrum_with_a_constant_unit():
    # a = (1, -1, 0, 0), b = (1, -1, 1, -1): both mean 0, a.b = 2, |a|^2 = 2, |b|^2 = 4, so r = 2 / sqrt(8);
    # the third unit never varies. R = [[1, r, 0], [r, 1, 0], [0, 0, 0]]: eigenvalues 1 + r, 1 - r, 0.
    states = np.array([[1.0, 1.0, 3.0], [-1.0, -1.0, 3.0], [0.0, 1.0, 3.0], [0.0, -1.0, 3.0]])
    r = 1 / math.sqrt(2)
    assert covariance_score(states) == pytest.approx(term(1 + r) + term(1 - r) + term(0.0), rel=1e-12)


def test_uncorrelated_units_give_the_highest_score():
    states = np.array([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])  # R = I: each term at its maximum
    assert covariance_score(states) == pytest.approx(2 * term(1.0), rel=1e-12)
    assert covariance_score(states) > covariance_score(np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, 0.9], [0, 0.2]]))


@pytest.mark.parametrize("states", [np.ones((1, 4)), np.ones(4), np.ones((3, 0)),
                                    np.array([[1.0, np.nan], [2.0, 3.0]])])
def test_states_the_score_cannot_use_are_one_line_errors(states):
    with pytest.raises(ProxyError):
        covariance_score(states)


def test_windows_are_seeded_slices_of_the_text():
    ids = np.arange(500) * 3
    windows = text_windows(ids, rows=6, steps=11, seed=2)
    assert windows.shape == (6, 11)
    assert np.all(np.diff(windows, axis=1) == 3)          # consecutive tokens
    assert np.all((windows[:, 0] >= 0) & (windows[:, -1] <= ids[-1]))
    assert np.array_equal(windows, text_windows(ids, rows=6, steps=11, seed=2))
    assert not np.array_equal(windows, text_windows(ids, rows=6, steps=11, seed=3))
    with pytest.raises(ProxyError, match="at least 12 token ids"):
        text_windows(ids[:11], rows=2, steps=12)


@pytest.mark.parametrize("name", ["darts_v2", "nascell", None])  # a DAG cell, a tree cell, the LSTM
def test_hidden_states_are_those_of_the_first_layer_of_the_model_retraining_starts_from(name):
    import keras

    from tfnas.cells.genotype_cell import GenotypeCell
    from tfnas.cells.tree_cell import TreeCell
    from tfnas.lm.model import LanguageModel

    vocab, seed, units = 40, 5, 8
    genotype = None if name is None else resolve_genotype(name)
    model = ModelConfig(emsize=units, nhid=units, nlayers=2)  # DARTS' dropouts: off in inference mode only
    windows = np.random.default_rng(0).integers(0, vocab, (3, 7))
    keras.utils.set_random_seed(seed)  # as lm.Trainer builds the model
    full = LanguageModel.from_config_objects(vocab, genotype, model, seed=seed)
    if name is None:
        rnn = keras.layers.LSTM(units, return_sequences=True)
        rnn.build((None, None, units))
        rnn.set_weights(full.rnn.get_weights())
    else:
        cell = (GenotypeCell if name == "darts_v2" else TreeCell)(genotype, units)
        cell.build((None, units))
        cell.set_weights(full.rnn.cell.get_weights())
        rnn = keras.layers.RNN(cell, return_sequences=True)
    outputs = np.asarray(rnn(np.asarray(full.embedding.embeddings)[windows]))
    expected = np.concatenate([np.zeros((3, 1, units)), outputs[:, :-1]], axis=1)
    states = hidden_states(genotype, windows, vocab, model, seed=seed)
    assert states.shape == (3, 7, units)
    np.testing.assert_allclose(states, expected, atol=1e-6)
    assert np.ptp(states[:, 1:]) > 0
