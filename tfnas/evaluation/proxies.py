"""Training-free proxies: a score of an untrained cell that predicts how well it trains.

The hidden-state covariance of Serianni & Kalita ("Training-free Neural
Architecture Search for RNNs and Transformers", ACL 2023, section 3), built
like the Jacobian covariance of Mellor et al. ("Neural Architecture Search
without Training", ICML 2021): the correlation matrix ``R`` of the hidden
states of an untrained network over a minibatch of real text, scored over its
eigenvalues ``lambda_i`` as

    ``S = -sum_i [log(lambda_i + k) + 1 / (lambda_i + k)]``,  ``k = 1e-5``.

Each term is at most -1, reached at ``lambda_i = 1``: S is highest when the
hidden units are uncorrelated, and every direction the states do not use
(``lambda_i = 0``) costs about ``1 / k``. Higher S predicts a lower trained
perplexity. The paper's text was not available here; what follows was read
from the authors' code and data (github.com/aaronserianni/training-free-nas,
``RNN_metrics.ipynb``, ``data/RNN_results.csv``):

* the hidden states are those that enter each step of the *first* recurrent
  layer, ``h_0`` (the zero initial state) to ``h_{T-1}``, in evaluation mode
  (no dropout), over T = 70 steps of 50 rows (NAS-Bench-NLP's ``bptt`` and
  ``eval_batch_size``);
* ``R = corrcoef`` over the hidden units: one row of R per unit, each unit's
  values over the rows x steps samples (``jacobian_score`` applied to the
  ``[rows, units, steps]`` stack); eigenvalues by ``numpy.linalg.eig``;
* one initialisation (seed 0) and one minibatch, the first window of the
  batchified test split;
* the sign: over the 8,794 NAS-Bench-NLP cells of ``RNN_results.csv``, the
  first layer's score has Kendall tau -0.3715 against the test loss (the
  paper's 0.37; layers 2 and 3 give -0.31 and -0.25), so higher is better.

How tfnas differs (docs/DEVIATIONS.md, "Proxies"): the network is the one a
retraining with the same seed starts from (`LanguageModel` with the
comparison's `ModelConfig`), the windows are drawn at random from the split
the caller gives, a unit that does not vary gets a zero row and column in R
instead of making the score NaN, and several initialisations may be averaged.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from tfnas.config import ModelConfig
from tfnas.errors import TfnasError
from tfnas.genotypes.files import AnyGenotype
from tfnas.settings import AT_LEAST_ONE, POSITIVE, SEED, check_argument

#: ``k`` of the score (Mellor et al. 2021; the authors' code).
K = 1e-5
#: Rows and steps of the minibatch: NAS-Bench-NLP's ``eval_batch_size`` and ``bptt``, the authors' window.
ROWS = 50
STEPS = 70


class ProxyError(TfnasError, ValueError):
    """A proxy the inputs do not define: too little text for a window, too few samples, states that overflow."""


def text_windows(ids: np.ndarray, rows: int = ROWS, steps: int = STEPS, seed: int = 0) -> np.ndarray:
    """A minibatch of real text: ``rows`` windows of ``steps`` consecutive token ids of ``ids`` (a split of a
    corpus), each starting at a position drawn uniformly from ``0 .. len(ids) - steps`` with
    ``numpy.random.default_rng(seed)``. Returns ``[rows, steps]`` int ids.

    Raises:
        ProxyError: ``ids`` holds fewer than ``steps`` tokens.
    """
    check_argument("rows", rows, int, AT_LEAST_ONE)
    check_argument("steps", steps, int, AT_LEAST_ONE)
    check_argument("seed", seed, int, SEED)
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size < steps:
        raise ProxyError(f"a window of {steps} steps needs a 1-D split of at least {steps} token ids; received "
                         f"shape {ids.shape}")
    starts = np.random.default_rng(seed).integers(0, ids.size - steps + 1, size=rows)
    return ids[starts[:, None] + np.arange(steps)]


def hidden_states(genotype: AnyGenotype | Mapping[str, Any] | None, windows: np.ndarray, vocab_size: int,
                  model: ModelConfig | None = None, seed: int = 0) -> np.ndarray:
    """The hidden states ``h_0 .. h_{T-1}`` that enter the T steps of the first recurrent layer, for each window.

    The network is ``LanguageModel.from_config_objects(vocab_size, genotype, model, seed)`` built with
    Python's and NumPy's global generators seeded with ``seed`` (`tfnas.lm.seeding.seeded`, the caller's
    restored after), as `tfnas.lm.trainer.Trainer` builds it: the untrained model that
    ``tfnas train`` with ``seed`` starts from (its first layer: the embedding and the first cell do not depend
    on ``model.nlayers`` or the attention head; the global seed only matters to the LSTM's
    initialisers, the tfnas cells are seeded by ``seed`` alone), run in inference mode (no dropout) from zero
    states on ``windows`` (``[rows, T]`` token ids, `text_windows`). ``h_0`` is the zero initial state, ``h_t`` the
    cell's output at step t (a `GenotypeCell`, the ``h`` of a `TreeCell`, or of ``keras.layers.LSTM`` for
    ``genotype=None``).

    Returns ``[rows, T, nhid]`` float64.
    """
    from tfnas.lm.model import LanguageModel
    from tfnas.lm.seeding import seeded

    check_argument("vocab_size", vocab_size, int, AT_LEAST_ONE)
    check_argument("seed", seed, int, SEED)
    windows = np.asarray(windows)
    if windows.ndim != 2 or not np.issubdtype(windows.dtype, np.integer):
        raise ProxyError(f"windows must be [rows, steps] token ids; received {windows.dtype} of shape {windows.shape}")
    first_layer = dataclasses.replace(model or ModelConfig(), nlayers=1, attention="none")
    with seeded(seed):  # as lm.Trainer: the LSTM's initialisers draw from the global seed
        lm = LanguageModel.from_config_objects(vocab_size, genotype, first_layer, seed=seed)
    initial = lm.initial_state(windows.shape[0])
    # the embedding and the recurrent layer alone: the decoder's [rows, T, vocab] logits are not needed
    outputs = lm.rnn(lm.embedding(windows, training=False), initial_state=initial, training=False)[0]
    states = np.concatenate([np.asarray(initial[0])[:, None], np.asarray(outputs)[:, :-1]], axis=1)
    return states.astype(np.float64)


def unit_correlation(states: np.ndarray) -> np.ndarray:
    """The correlation matrix of the hidden units over the samples of ``states`` (``[..., units]``: every leading
    index is a sample): ``R_ij = C_ij / sqrt(C_ii C_jj)`` with ``C`` the units' covariance (``numpy.corrcoef``).
    A unit that does not vary has no correlation; its row and column are 0 (a direction of zero variance, as
    in ``D^+ C D^+`` with ``D`` the standard deviations and ``+`` the pseudo-inverse)."""
    samples = np.asarray(states, dtype=np.float64).reshape(-1, np.shape(states)[-1])
    centred = samples - samples.mean(axis=0)
    covariance = centred.T @ centred / (samples.shape[0] - 1)
    sd = np.sqrt(np.diag(covariance))
    inverse = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)
    return covariance * np.outer(inverse, inverse)


def covariance_score(states: np.ndarray, k: float = K) -> float:
    """``S = -sum_i [log(lambda_i + k) + 1 / (lambda_i + k)]`` over the eigenvalues of `unit_correlation`
    (``states``: ``[..., units]`` hidden states, every leading index a sample). Eigenvalues below 0 (rounding:
    R is positive semi-definite) count as 0. Higher predicts a better cell.

    Raises:
        ProxyError: fewer than two samples, or states that are not finite.
    """
    check_argument("k", k, float, POSITIVE)
    states = np.asarray(states, dtype=np.float64)
    if states.ndim < 2 or states.shape[-1] < 1 or states.size // states.shape[-1] < 2:
        raise ProxyError(f"the covariance of hidden states needs [samples, units] with two samples or more; "
                         f"received shape {states.shape}")
    if not np.all(np.isfinite(states)):
        raise ProxyError("the hidden states are not finite (the untrained cell overflows): the covariance score "
                         "is undefined")
    eigenvalues = np.clip(np.linalg.eigvalsh(unit_correlation(states)), 0.0, None)
    return float(-np.sum(np.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))


def hidden_covariance(genotype: AnyGenotype | Mapping[str, Any] | None, windows: np.ndarray, vocab_size: int,
                      model: ModelConfig | None = None, seeds: Sequence[int] = (0,)) -> float:
    """The hidden-state covariance proxy of an untrained cell (Serianni & Kalita 2023, module docstring): the
    mean over ``seeds`` (initialisations; the authors use one, seed 0) of `covariance_score` of the
    `hidden_states` of the model of settings ``model`` on ``windows`` (`text_windows` of a split; the authors
    use the test split, a comparison should use the validation one). Higher predicts a lower perplexity.

    Raises:
        ProxyError: see `covariance_score` and `hidden_states`.
    """
    check_argument("seeds", tuple(seeds), tuple[int, ...], SEED)
    if not seeds:
        raise ProxyError("hidden_covariance needs one initialisation seed or more")
    return float(np.mean([covariance_score(hidden_states(genotype, windows, vocab_size, model, seed))
                          for seed in seeds]))
