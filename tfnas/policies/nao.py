"""Neural Architecture Optimization (Luo, Tian, Qin, Chen, Liu, NeurIPS 2018): encoder, predictor, decoder.

NAO maps a cell's token string ``x = (x_1..x_T)`` (section 3.1; here
`Genotype.to_tokens` of a `DagSpace` cell, `NaoTokens`) to a continuous
embedding, predicts the cell's score from it, and decodes embeddings back
to cells (section 3.2):

* encoder ``E``: token embedding, a one-layer LSTM, every hidden state
  normalised to unit length, ``e_x = {h_1..h_T}`` (section 4.1: ``h_t /
  ||h_t||``; the printed square is a typo, the authors' code uses the L2
  norm);
* predictor ``f``: mean pooling ``e = (1/T) sum_t h_t`` and an MLP with a
  sigmoid output, ``f = sigmoid(W_2 ReLU(W_1 e + b_1) + b_2)`` (PTB: layers
  of 200 and 1, section 4.3);
* decoder ``D``: an LSTM started from ``s_0 = h_T`` (section 3.2; or the
  normalised mean, as the authors' code), additive attention (Bahdanau et
  al.) ``a_rt = softmax_t(v^T tanh(W_s s_r + W_h h_t))``, ``ctx_r = sum_t
  a_rt h_t``, and ``P(x_r | e_x, x_<r) = softmax over V_r of W [s_r,
  ctx_r]`` where ``V_r`` are the valid tokens of position ``r`` (masked in
  training and in greedy decoding).

Training minimises Eq. 1, ``L = lambda L_pp + (1 - lambda) L_rec``, in the
authors' code's form: the batch mean of ``(s_x - f(E(x)))^2`` plus the mean
per-token cross-entropy of the teacher-forced decoder (`nao_loss`), with an
L2 penalty ``w * sum ||theta||^2 / 2`` and Adam with a global-norm clip
(`NaoTrainer`). Inference moves every hidden state up the predictor's
gradient, ``h'_t = h_t + eta df/dh_t`` (Eq. 2), re-normalises it and decodes
(`EncoderPredictorDecoder.step`); footnote 4 grows ``eta`` by ``eta / 2``
until a new cell comes out (`grow_steps`).

The encoder's and the decoder's LSTM step is written out (one Glorot-uniform
kernel over ``[x, h]``, the forget gate's bias starting at 1), not
`keras.layers.LSTMCell`, because the NAO results depend on its numbers:
LSTMCell holds an input kernel (its Glorot limit counts the input size,
not the input and the state) and an orthogonal recurrent kernel, so the
seeded initial weights, the checkpointed variables and the rounding would
all change.

The pure helpers `pairwise_accuracy`, `hamming_distance` (section 4.1's
``acc_f`` and ``dist_D``) and `normalise_scores` (min-max of log-perplexity,
higher is better) are logged by the strategies every round.

`EpdConfig` holds the settings of the EPD and its training, mixed into the
configs of NAO (`tfnas.strategies.black_box.nao`) and NAO-WS
(`tfnas.strategies.one_shot.nao_ws`); `make_epd_trainer` builds the EPD and
its `NaoTrainer` from them, and `train_epd` runs one iteration's training.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas.genotypes.dag import Genotype, token_vocab_size
from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, RATE, Bound, SettingsError, setting, settings
from tfnas.spaces.dag import DagSpace

#: Decoder initial states: ``last`` (``s_0 = h_T``, section 3.2) or ``mean`` (the normalised mean, the authors' code).
DECODER_INITS = ("last", "mean")
_MASKED = -1e9


# ----------------------------------------------------------------- helpers
def pairwise_accuracy(true: Sequence[float], pred: Sequence[float]) -> float:
    """Section 4.1's ``acc_f`` as the authors' code computes it.

    The fraction of pairs ``i < j`` ordered alike: ``(p_i >= p_j and t_i >=
    t_j) or (p_i < p_j and t_i < t_j)``, over ``N (N - 1) / 2`` pairs (the
    printed formula over all ordered pairs, divided by ``N^2``, caps at about
    0.5: a typo).

    >>> pairwise_accuracy([1, 2, 3], [1, 3, 2])
    0.6666666666666666
    """
    t, p = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    if t.shape != p.shape or t.ndim != 1 or t.size < 2:
        raise ValueError(f"pairwise_accuracy needs two 1-D sequences of the same length >= 2; received shapes "
                         f"{t.shape} and {p.shape}")
    i, j = np.triu_indices(t.size, k=1)
    agree = ((p[i] >= p[j]) & (t[i] >= t[j])) | ((p[i] < p[j]) & (t[i] < t[j]))
    return float(agree.mean())


def hamming_distance(a: Sequence, b: Sequence) -> float:
    """Section 4.1's ``dist_D``: positions where two token strings differ, averaged over rows.

    ``a`` and ``b`` are one string ``[T]`` or a batch ``[n, T]`` each.

    >>> hamming_distance([0, 1, 2], [0, 2, 2])
    1.0
    """
    x, y = np.atleast_2d(np.asarray(a)), np.atleast_2d(np.asarray(b))
    if x.shape != y.shape:
        raise ValueError(f"hamming_distance needs strings of the same shape; received {x.shape} and {y.shape}")
    return float((x != y).sum(axis=1).mean())


def normalise_scores(ppls: Sequence[float]) -> np.ndarray:
    """Scores in [0, 1], higher is better: ``s = (l_max - l) / (l_max - l_min)`` with ``l = ln ppl``.

    The minimum and maximum run over the finite perplexities; a non-finite
    perplexity (a failed child) gets NaN, and the caller leaves it out of the
    EPD's training data. When every finite perplexity is the same, each
    score is 0.5 (a tfnas choice). The paper's ``f`` predicts an accuracy
    (higher is better); the authors' language-model code min-max normalises
    the perplexity and descends, the same step with the opposite sign.
    """
    ppl = np.asarray(ppls, np.float64)
    finite = np.isfinite(ppl) & (ppl > 0)
    out = np.full(ppl.shape, np.nan)
    if not finite.any():
        return out
    logs = np.log(ppl[finite])
    low, high = logs.min(), logs.max()
    out[finite] = 0.5 if high == low else (high - logs) / (high - low)
    return out


def masked_logits(logits: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
    """Logits with the tokens outside each position's ``V_r`` set to -1e9 (so their probability is 0)."""
    return tf.where(masks, logits, tf.cast(_MASKED, logits.dtype))


def nao_loss(scores, predictions, logits, targets, masks, trade_off: float
             ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Eq. 1 in the authors' code's form: ``lambda mean (s - f)^2 + (1 - lambda) mean_tokens CE``.

    Args:
        scores: target scores ``s_x`` ``[n]``.
        predictions: ``f(E(x))`` ``[n]``.
        logits: decoder logits ``[n, T, V]`` (masked here to ``V_r``).
        targets: the token strings ``[n, T]``.
        masks: valid tokens per position ``[T, V]`` (bool).
        trade_off: ``lambda`` in [0, 1].

    Returns:
        ``(loss, mse, ce)``.
    """
    scores = tf.cast(scores, tf.float32)
    mse = tf.reduce_mean(tf.square(scores - tf.cast(predictions, tf.float32)))
    logits = masked_logits(tf.cast(logits, tf.float32), tf.broadcast_to(masks, tf.shape(logits)))
    ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(targets, tf.int32),
                                                                       logits=logits))
    return trade_off * mse + (1.0 - trade_off) * ce, mse, ce


def grow_steps(decode_at: Callable[[float, list[int]], Sequence[Sequence[int]]], seeds: int,
               etas: Sequence[float], is_new: Callable[[tuple[int, ...]], bool], per_seed: int | None = 1,
               limit: int | None = None) -> tuple[list[tuple[int, tuple[int, ...]]], list[float]]:
    """Decodes moved embeddings of ``seeds`` seed cells at growing step sizes, keeping new cells.

    For each step size of ``etas`` in turn, the seeds still short of
    ``per_seed`` new cells are decoded at that size (``decode_at(eta,
    seed_indices)``); a decoded string is kept when ``is_new`` says so and no
    seed produced it before. NAO's footnote 4 is ``etas = eta (1 + k/2)``,
    ``k = 0..max_step_tries-1`` with ``per_seed = 1`` (if ``x' = x``, grow the
    step by ``eta / 2``); NAO-WS (the authors' code) is ``etas = 1, 2, ...``
    with ``per_seed = None`` until ``limit`` new cells.

    Returns:
        ``(accepted, tried)``: ``(seed index, tokens)`` pairs in the order found,
        and the step sizes that were decoded.
    """
    accepted: list[tuple[int, tuple[int, ...]]] = []
    counts = [0] * seeds
    taken: set[tuple[int, ...]] = set()
    tried: list[float] = []
    for eta in etas:
        pending = [i for i in range(seeds) if per_seed is None or counts[i] < per_seed]
        if not pending or (limit is not None and len(accepted) >= limit):
            break
        tried.append(float(eta))
        for i, tokens in zip(pending, decode_at(float(eta), pending)):
            key = tuple(int(t) for t in tokens)
            if key in taken or not is_new(key):
                continue
            taken.add(key)
            accepted.append((i, key))
            counts[i] += 1
            if limit is not None and len(accepted) >= limit:
                break
    return accepted, tried


def footnote4_steps(eta: float, tries: int) -> list[float]:
    """Footnote 4's step sizes ``eta, 1.5 eta, 2 eta, ...`` (``tries`` of them)."""
    return [eta * (1.0 + 0.5 * k) for k in range(tries)]


def relabel(genotype: Genotype, order: Sequence[int]) -> Genotype:
    """The cell with its nodes renumbered: new node ``k`` is old node ``order[k - 1]``.

    ``order`` must list nodes ``1..N`` so that every node comes after the node
    it reads (a topological order); node 0 keeps its number. The relabelled
    cell computes the same function once its node weights are permuted alike
    (each node reads the same node; the output rule is a set of nodes).
    """
    order = [int(o) for o in order]
    if sorted(order) != list(range(1, genotype.steps + 1)):
        raise ValueError(f"order must be a permutation of 1..{genotype.steps}; received {order}")
    new_index = {0: 0}
    nodes = []
    for k, old in enumerate(order, start=1):
        act, pred = genotype.nodes[old - 1]
        if pred not in new_index:
            raise ValueError(f"order {order} puts node {old} before node {pred}, which it reads")
        new_index[old] = k
        nodes.append((act, new_index[pred]))
    return dataclasses.replace(genotype, nodes=tuple(nodes), provenance={})


def random_relabel(genotype: Genotype, rng: np.random.Generator) -> Genotype:
    """`relabel` by a topological order drawn uniformly at each step among the nodes whose input is placed.

    The symmetric copy of section 3.2's data augmentation for the DAG space
    (a tfnas choice: the paper's swap of a node's two branches has no
    counterpart in a one-input recurrent node).
    """
    placed, order = {0}, []
    remaining = list(range(1, genotype.steps + 1))
    while remaining:
        ready = [i for i in remaining if genotype.nodes[i - 1][1] in placed]
        pick = ready[int(rng.integers(len(ready)))]
        order.append(pick)
        placed.add(pick)
        remaining.remove(pick)
    return relabel(genotype, order)


# ------------------------------------------------------------------ tokens
class NaoTokens:
    """The token strings of a `DagSpace`'s cells: ids, the decoder's ``SOS`` and the valid tokens ``V_r``.

    Tokens are `Genotype.to_tokens`: activations ``0..3`` (their index in
    `tfnas.genotypes.ACTIVATIONS`), predecessor ``j`` as ``4 + j``; with
    ``first_node == "enas"`` node 0's activation comes first. ``SOS`` is the
    vocabulary size. ``masks[r]`` marks the tokens position ``r`` may hold in
    the space (one per choice of ``space.token_choices()[r]``).

    Args:
        space: the `DagSpace` searched.
    """

    def __init__(self, space: DagSpace):
        if not isinstance(space, DagSpace):
            raise ValueError(f"NAO encodes DAG cells; received space={space!r}")
        self.space = space
        self.vocab_size = token_vocab_size(space.steps)
        self.sos = self.vocab_size
        choices = space.token_choices()
        self.length = len(choices)
        self.masks = np.zeros((self.length, self.vocab_size), bool)
        base = [0] * self.length
        for r, count in enumerate(choices):
            for c in range(count):
                row = list(base)
                row[r] = c
                self.masks[r, space.decode(row).to_tokens()[r]] = True

    def encode(self, genotype: Genotype) -> list[int]:
        """The token string of a cell of the space."""
        return self.space.validate(genotype).to_tokens()

    def encode_many(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        """Token strings ``[n, T]`` (int32)."""
        return np.asarray([self.encode(g) for g in genotypes], np.int32).reshape(len(genotypes), self.length)

    def decode(self, ids: Sequence[int]) -> Genotype:
        """The cell of a token string; raises `GenotypeError` / ``ValueError`` if it is not in the space."""
        g = Genotype.from_tokens([int(t) for t in ids], first_node=self.space.first_node, output=self.space.output)
        return self.space.validate(g)


# ------------------------------------------------------------------- model
def _unit(x: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(x, axis=-1, epsilon=1e-12)


def _dropout(x: tf.Tensor, rate: float, seed: tf.Tensor | None) -> tf.Tensor:
    if seed is None or rate == 0.0:
        return x
    keep = tf.random.stateless_uniform(tf.shape(x), seed) >= rate
    return tf.where(keep, x / (1.0 - rate), tf.zeros_like(x))


@keras.saving.register_keras_serializable(package="tfnas")
class EncoderPredictorDecoder(keras.layers.Layer):
    """NAO's encoder ``E``, predictor ``f`` and decoder ``D``; see the module docstring.

    Args:
        masks: valid tokens per position ``[T, V]`` (`NaoTokens.masks`).
        embed: token embedding size (PTB: 64, section 4.3).
        hidden: encoder LSTM size ``d`` (PTB: 128).
        mlp: hidden layer sizes of the predictor before its output unit (PTB: ``[200]``).
        decoder_hidden: decoder LSTM size (PTB: 128); equal to ``hidden`` since ``s_0`` is an encoder state.
        dropout: dropout on the encoder's token embeddings and the predictor's hidden layers in training.
        decoder_init: ``last`` (``s_0 = h_T``) or ``mean`` (the normalised mean of ``e_x``).
        seed: seed of the initialisation.

    Example:

    >>> tokens = NaoTokens(DagSpace(3))
    >>> epd = EncoderPredictorDecoder(tokens.masks, embed=8, hidden=16, mlp=[16], decoder_hidden=16, seed=0)
    >>> H = epd.encode(tokens.encode_many([DagSpace(3).sample(0)]))
    >>> H.shape, epd.predict(H).shape, epd.decode(H).shape
    (TensorShape([1, 6, 16]), TensorShape([1]), TensorShape([1, 6]))
    """

    def __init__(self, masks: Any, embed: int = 64, hidden: int = 128, mlp: Sequence[int] = (200,),
                 decoder_hidden: int = 128, dropout: float = 0.0, decoder_init: str = "last",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        masks = np.asarray(masks, bool)
        if masks.ndim != 2 or not masks.any(axis=1).all():
            raise ValueError(f"Argument `masks` must be [T, V] with a valid token at every position; received "
                             f"shape {masks.shape}")
        for name, value in (("embed", embed), ("hidden", hidden), ("decoder_hidden", decoder_hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Argument `{name}` must be a positive integer; received: {name}={value!r}")
        mlp = [int(m) for m in mlp]
        if any(m < 1 for m in mlp):
            raise ValueError(f"Argument `mlp` must list positive sizes; received: mlp={mlp!r}")
        if decoder_hidden != hidden:
            raise ValueError(f"the decoder starts from an encoder state (s_0 = h_T, NAO section 3.2), so "
                             f"decoder_hidden must equal hidden; received {decoder_hidden} and {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Argument `dropout` must be in [0, 1); received: dropout={dropout!r}")
        if decoder_init not in DECODER_INITS:
            raise ValueError(f"Argument `decoder_init` must be one of {list(DECODER_INITS)}; received: "
                             f"{decoder_init!r}")
        self.masks = masks
        self.length, self.vocab_size = masks.shape
        self.embed, self.hidden, self.mlp = embed, hidden, mlp
        self.decoder_hidden, self.dropout, self.decoder_init, self.seed = decoder_hidden, float(dropout), \
            decoder_init, seed
        self._masks = tf.constant(masks)

    def _init(self, offset: int, kind: str = "glorot"):
        seed = None if self.seed is None else self.seed + offset
        if kind == "embedding":
            return keras.initializers.RandomUniform(-0.1, 0.1, seed=seed)
        return keras.initializers.GlorotUniform(seed=seed)

    def _lstm_bias(self, units: int):
        return keras.initializers.Constant(np.concatenate([np.zeros(units), np.ones(units), np.zeros(2 * units)]))

    def build(self, input_shape=None):
        e, h, d, v = self.embed, self.hidden, self.decoder_hidden, self.vocab_size
        self.enc_embedding = self.add_weight(name="enc_embedding", shape=(v, e), initializer=self._init(0, "embedding"))
        self.enc_kernel = self.add_weight(name="enc_kernel", shape=(e + h, 4 * h), initializer=self._init(1))
        self.enc_bias = self.add_weight(name="enc_bias", shape=(4 * h,), initializer=self._lstm_bias(h))
        sizes = [h] + self.mlp + [1]
        self.mlp_kernels = [self.add_weight(name=f"mlp_{i}_kernel", shape=(a, b), initializer=self._init(10 + i))
                            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
        self.mlp_biases = [self.add_weight(name=f"mlp_{i}_bias", shape=(b,), initializer="zeros")
                           for i, b in enumerate(sizes[1:])]
        self.dec_embedding = self.add_weight(name="dec_embedding", shape=(v + 1, e),
                                             initializer=self._init(2, "embedding"))
        self.dec_kernel = self.add_weight(name="dec_kernel", shape=(e + d, 4 * d), initializer=self._init(3))
        self.dec_bias = self.add_weight(name="dec_bias", shape=(4 * d,), initializer=self._lstm_bias(d))
        self.att_s = self.add_weight(name="attention_s", shape=(d, d), initializer=self._init(4))
        self.att_h = self.add_weight(name="attention_h", shape=(h, d), initializer=self._init(5))
        self.att_v = self.add_weight(name="attention_v", shape=(d, 1), initializer=self._init(6))
        self.out_kernel = self.add_weight(name="out_kernel", shape=(d + h, v), initializer=self._init(7))
        self.out_bias = self.add_weight(name="out_bias", shape=(v,), initializer="zeros")
        self.built = True

    def _ensure_built(self) -> None:
        if not self.built:
            self.build(None)

    @staticmethod
    def _lstm(x, h, c, kernel, bias):
        gates = tf.linalg.matmul(tf.concat([x, h], axis=1), kernel) + bias
        i, f, g, o = tf.split(gates, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    def encode(self, ids, seed: tf.Tensor | None = None) -> tf.Tensor:
        """``e_x = {h_1..h_T}`` ``[n, T, d]``, each ``h_t`` of unit length; ``seed`` (training) turns dropout on."""
        self._ensure_built()
        ids = tf.cast(ids, tf.int32)
        x = _dropout(tf.gather(self.enc_embedding, ids), self.dropout, seed)
        n = tf.shape(ids)[0]
        h = c = tf.zeros(tf.stack([n, self.hidden]), self.enc_kernel.dtype)
        states = []
        for t in range(self.length):
            h, c = self._lstm(x[:, t], h, c, self.enc_kernel, self.enc_bias)
            states.append(h)
        return _unit(tf.stack(states, axis=1))

    def predict(self, H, seed: tf.Tensor | None = None) -> tf.Tensor:
        """``f(e_x) = sigmoid(MLP(mean_t h_t))`` ``[n]``; ``seed`` (training) turns dropout on."""
        self._ensure_built()
        z = tf.reduce_mean(H, axis=1)
        last = len(self.mlp_kernels) - 1
        for k, (w, b) in enumerate(zip(self.mlp_kernels, self.mlp_biases)):
            z = tf.linalg.matmul(z, w) + b
            if k < last:
                z = tf.nn.relu(z)
                z = _dropout(z, self.dropout, None if seed is None else tf.random.experimental.stateless_fold_in(
                    seed, k + 1))
        return tf.sigmoid(z[:, 0])

    def _initial_state(self, H) -> tf.Tensor:
        return H[:, -1] if self.decoder_init == "last" else _unit(tf.reduce_mean(H, axis=1))

    def _attend(self, S, H) -> tf.Tensor:
        """Additive attention: ``ctx_r = sum_t softmax_t(v^T tanh(W_s s_r + W_h h_t)) h_t`` for ``S`` ``[n, R, d]``."""
        keys = tf.einsum("ntd,da->nta", H, self.att_h)
        queries = tf.einsum("nrd,da->nra", S, self.att_s)
        energy = tf.einsum("nrta,ao->nrt", tf.tanh(queries[:, :, None, :] + keys[:, None, :, :]), self.att_v)
        return tf.einsum("nrt,ntd->nrd", tf.nn.softmax(energy, axis=-1), H)

    def _output(self, S, H) -> tf.Tensor:
        return tf.einsum("nrk,kv->nrv", tf.concat([S, self._attend(S, H)], axis=-1), self.out_kernel) + self.out_bias

    def reconstruction_logits(self, H, ids) -> tf.Tensor:
        """Teacher-forced decoder logits ``[n, T, V]`` (inputs ``SOS, x_1..x_{T-1}``), masked to ``V_r``."""
        self._ensure_built()
        ids = tf.cast(ids, tf.int32)
        n = tf.shape(ids)[0]
        inputs = tf.concat([tf.fill(tf.stack([n, 1]), self.vocab_size), ids[:, :-1]], axis=1)
        x = tf.gather(self.dec_embedding, inputs)
        h = c = self._initial_state(H)
        states = []
        for r in range(self.length):
            h, c = self._lstm(x[:, r], h, c, self.dec_kernel, self.dec_bias)
            states.append(h)
        return masked_logits(self._output(tf.stack(states, axis=1), H), self._masks[None])

    def decode(self, H) -> tf.Tensor:
        """Greedy decoding ``D(e_x)``: the most probable valid token at each position, ``[n, T]`` int32."""
        self._ensure_built()
        n = tf.shape(H)[0]
        token = tf.fill(tf.stack([n]), self.vocab_size)
        h = c = self._initial_state(H)
        out = []
        for r in range(self.length):
            h, c = self._lstm(tf.gather(self.dec_embedding, token), h, c, self.dec_kernel, self.dec_bias)
            logits = masked_logits(self._output(h[:, None, :], H)[:, 0], self._masks[r][None])
            token = tf.argmax(logits, axis=-1, output_type=tf.int32)
            out.append(token)
        return tf.stack(out, axis=1)

    def loss(self, ids, scores, trade_off: float, seed: tf.Tensor | None = None
             ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Eq. 1 (`nao_loss`) of token strings ``ids`` and their scores; ``seed`` (training) turns dropout on."""
        H = self.encode(ids, seed)
        predictions = self.predict(H, None if seed is None else tf.random.experimental.stateless_fold_in(seed, 7))
        return nao_loss(scores, predictions, self.reconstruction_logits(H, ids), ids, self._masks, trade_off)

    def step(self, H, eta) -> tf.Tensor:
        """Eq. 2 with re-normalisation: ``h'_t = unit(h_t + eta df/dh_t)`` ``[n, T, d]``."""
        H = tf.convert_to_tensor(H)
        with tf.GradientTape() as tape:
            tape.watch(H)
            total = tf.reduce_sum(self.predict(H))
        return _unit(H + tf.cast(eta, H.dtype) * tape.gradient(total, H))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "masks": self.masks.tolist(), "embed": self.embed, "hidden": self.hidden,
                "mlp": list(self.mlp), "decoder_hidden": self.decoder_hidden, "dropout": self.dropout,
                "decoder_init": self.decoder_init, "seed": self.seed}


class NaoTrainer:
    """Trains an `EncoderPredictorDecoder` on Eq. 1 with Adam and generates cells with Eq. 2.

    Each epoch visits the training cells in an order drawn from the seed
    ``seed`` (a list of integers, e.g. ``[seed, round]``); dropout masks are
    stateless in ``(seed, step)``. The variables (the model's and Adam's) are
    what a strategy checkpoints for exact resume.

    Args:
        model: the EPD.
        lr: Adam learning rate (section 4.3: 1e-3).
        trade_off: ``lambda`` of Eq. 1 (PTB: 0.8).
        weight_decay: ``w`` of the penalty ``w sum ||theta||^2 / 2`` (authors' code: 1e-4).
        clip: global-norm clip of the gradients (authors' code: 5).
    """

    def __init__(self, model: EncoderPredictorDecoder, lr: float = 1e-3, trade_off: float = 0.8,
                 weight_decay: float = 1e-4, clip: float | None = 5.0):
        if not 0.0 <= trade_off <= 1.0:
            raise ValueError(f"trade_off (lambda of Eq. 1) must be in [0, 1]; received: {trade_off!r}")
        self.model = model
        model._ensure_built()
        self.trade_off = float(trade_off)
        self.weight_decay = float(weight_decay)
        self.optimizer = keras.optimizers.Adam(lr, global_clipnorm=clip)
        self.optimizer.build(model.trainable_variables)
        self._optimizer_start = [v.numpy() for v in self.optimizer.variables]
        t = model.length
        ids_spec, h_spec = tf.TensorSpec((None, t), tf.int32), tf.TensorSpec((None, t, model.hidden), tf.float32)
        self._train = tf.function(self._train_step, input_signature=[
            ids_spec, tf.TensorSpec((None,), tf.float32), tf.TensorSpec((2,), tf.int32)], autograph=False)
        self._encode = tf.function(model.encode, input_signature=[ids_spec], autograph=False)
        self._predict = tf.function(model.predict, input_signature=[h_spec], autograph=False)
        self._decode = tf.function(model.decode, input_signature=[h_spec], autograph=False)
        self._step_decode = tf.function(lambda H, eta: model.decode(model.step(H, eta)),
                                        input_signature=[h_spec, tf.TensorSpec((), tf.float32)], autograph=False)

    @property
    def variables(self) -> list:
        """The model's and Adam's variables (to checkpoint)."""
        return list(self.model.variables) + list(self.optimizer.variables)

    def reset(self, seed: int) -> None:
        """Re-initialises the model (initialisers seeded by ``seed``) and Adam's state (step count, moments)."""
        fresh = EncoderPredictorDecoder.from_config({**self.model.get_config(), "seed": seed})
        fresh.build(None)
        for target, value in zip(self.model.variables, fresh.variables):
            target.assign(value)
        for v, value in zip(self.optimizer.variables, self._optimizer_start):
            v.assign(value)

    def _train_step(self, ids, scores, seed):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss, mse, ce = self.model.loss(ids, scores, self.trade_off, seed)
            penalty = self.weight_decay * tf.add_n([tf.nn.l2_loss(v) for v in variables])
            total = loss + penalty
        self.optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        return loss, mse, ce

    def fit(self, ids: np.ndarray, scores: np.ndarray, epochs: int, batch_size: int, seed: Sequence[int]
            ) -> dict[str, float]:
        """``epochs`` passes of minibatch Adam on Eq. 1; returns the last epoch's mean ``loss``, ``mse``, ``ce``."""
        ids = np.asarray(ids, np.int32)
        scores = np.asarray(scores, np.float32)
        n = len(ids)
        if n == 0 or len(scores) != n:
            raise ValueError(f"fit needs as many scores as token strings (> 0); received {n} and {len(scores)}")
        rng = np.random.default_rng([int(s) for s in seed])
        base = int(rng.integers(2 ** 31 - 1))
        step = 0
        logs: dict[str, float] = {}
        for _ in range(int(epochs)):
            order = rng.permutation(n)
            sums, count = np.zeros(3), 0
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                out = self._train(tf.constant(ids[rows]), tf.constant(scores[rows]), tf.constant([base, step],
                                                                                                  tf.int32))
                sums += np.array([float(v) for v in out]) * len(rows)
                count += len(rows)
                step += 1
            logs = dict(zip(("loss", "mse", "ce"), (sums / count).tolist()))
        return logs

    def encode(self, ids: np.ndarray) -> tf.Tensor:
        return self._encode(tf.constant(np.asarray(ids, np.int32)))

    def predict(self, ids: np.ndarray) -> np.ndarray:
        """``f(E(x))`` of token strings ``[n, T]``."""
        return self._predict(self.encode(ids)).numpy()

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """``D(E(x))`` ``[n, T]``."""
        return self._decode(self.encode(ids)).numpy()

    def generate(self, seed_ids: np.ndarray, etas: Sequence[float], is_new: Callable[[tuple[int, ...]], bool],
                 per_seed: int | None = 1, limit: int | None = None
                 ) -> tuple[list[tuple[int, tuple[int, ...]]], list[float]]:
        """`grow_steps` over the embeddings of seed strings ``[K, T]``: Eq. 2 at each step size, then ``D``."""
        H = self.encode(seed_ids)

        def decode_at(eta: float, rows: list[int]) -> np.ndarray:
            return self._step_decode(tf.gather(H, rows), tf.constant(eta, tf.float32)).numpy()

        return grow_steps(decode_at, len(seed_ids), etas, is_new, per_seed=per_seed, limit=limit)


def fit_logs(trainer: NaoTrainer, ids: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Pairwise accuracy of ``f`` against ``scores`` and the mean Hamming distance of ``D(E(x))`` to ``x``."""
    logs = {"hamming": hamming_distance(trainer.reconstruct(ids), ids)}
    if len(ids) >= 2:
        logs["pairwise_acc"] = pairwise_accuracy(scores, trainer.predict(ids))
    return logs


# --------------------------------------------------- settings and training
@settings
class EpdConfig:
    """The encoder-predictor-decoder and its training, mixed into the configs of NAO and NAO-WS.

    Defaults: the PTB settings of section 4.3 (embedding 64, encoder and
    decoder LSTMs of 128, predictor MLP 200-1, lambda 0.8, Adam lr 1e-3);
    1000 epochs per iteration (section 4.1, CIFAR-10); from the authors'
    code: batch 100, weight decay 1e-4, global-norm clip 5, dropout 0.1, warm
    start across iterations. The decoder starts from ``h_T`` (section 3.2).
    """

    epd_embed: int = setting(64, help="token embedding size of the encoder (section 4.3: 64)", check=AT_LEAST_ONE)
    epd_hidden: int = setting(128, help="encoder LSTM size (section 4.3: 128)", check=AT_LEAST_ONE)
    epd_mlp: tuple[int, ...] = setting((200,), help="hidden layer sizes of the predictor before its output unit "
                                                    "(section 4.3: 200, 1)", check=AT_LEAST_ONE)
    epd_decoder_hidden: int = setting(128, help="decoder LSTM size (section 4.3: 128; must equal epd_hidden)",
                                      check=AT_LEAST_ONE)
    decoder_init: str = setting("last", help="decoder initial state: last (s_0 = h_T, section 3.2) or mean "
                                             "(the normalised mean, the authors' code)")
    trade_off: float = setting(0.8, help="lambda of Eq. 1 (section 4.3: 0.8)", check=Bound(0, 1))
    epd_lr: float = setting(1e-3, help="Adam learning rate of the EPD (section 4.3: 1e-3)", check=POSITIVE)
    epd_epochs: int = setting(1000, help="EPD training epochs per iteration (section 4.1: 1000)", check=AT_LEAST_ONE)
    epd_batch_size: int = setting(100, help="EPD minibatch (the authors' code: 100)", check=AT_LEAST_ONE)
    epd_weight_decay: float = setting(1e-4, help="L2 penalty w sum ||theta||^2 / 2 of the EPD (the authors' code)",
                                      check=NON_NEGATIVE)
    epd_clip: float = setting(5.0, help="global-norm clip of the EPD's gradients (the authors' code: 5)",
                              check=POSITIVE)
    epd_dropout: float = setting(0.1, help="dropout on the encoder's embeddings and the predictor's hidden layers "
                                           "(the authors' code: 0.1)", check=RATE)
    epd_reinit: bool = setting(False, help="re-initialise the EPD before each iteration's training instead of "
                                           "warm-starting it (the authors' weight-sharing code warm-starts)")

    def check_epd(self) -> None:
        """Raises `SettingsError` naming EPD settings that do not fit together (and turns ``epd_mlp`` into a tuple);
        each value is checked against its interval first (`tfnas.settings.check_settings`)."""
        self.epd_mlp = tuple(self.epd_mlp)
        if self.epd_decoder_hidden != self.epd_hidden:
            raise SettingsError(f"the decoder starts from an encoder state (s_0 = h_T), so epd_decoder_hidden must "
                                f"equal epd_hidden; received {self.epd_decoder_hidden} and {self.epd_hidden}")
        if self.decoder_init not in DECODER_INITS:
            raise SettingsError(f"decoder_init must be one of {list(DECODER_INITS)}; received: {self.decoder_init!r}")


def make_epd_trainer(config: EpdConfig, tokens: NaoTokens, seed: int) -> NaoTrainer:
    """The EPD of ``config`` over ``tokens`` (initialisation seeded by ``seed``) with its Adam trainer."""
    epd = EncoderPredictorDecoder(tokens.masks, embed=config.epd_embed, hidden=config.epd_hidden,
                                  mlp=config.epd_mlp, decoder_hidden=config.epd_decoder_hidden,
                                  dropout=config.epd_dropout, decoder_init=config.decoder_init, seed=seed)
    return NaoTrainer(epd, lr=config.epd_lr, trade_off=config.trade_off, weight_decay=config.epd_weight_decay,
                      clip=config.epd_clip)


def train_epd(trainer: NaoTrainer, config: EpdConfig, ids: np.ndarray, scores: np.ndarray, seed: int,
              iteration: int) -> dict[str, float]:
    """One iteration's EPD training (re-initialised first with ``epd_reinit``); its losses and metrics."""
    if config.epd_reinit and iteration > 0:
        trainer.reset(seed + iteration)
    fit = trainer.fit(ids, scores, config.epd_epochs, config.epd_batch_size, [seed, iteration])
    return {**{f"epd_{k}": v for k, v in fit.items()}, **fit_logs(trainer, ids, scores)}

__all__ = ["DECODER_INITS", "EncoderPredictorDecoder", "EpdConfig", "NaoTokens", "NaoTrainer", "fit_logs",
           "footnote4_steps", "grow_steps", "hamming_distance", "make_epd_trainer", "masked_logits", "nao_loss",
           "normalise_scores", "pairwise_accuracy", "random_relabel", "relabel", "train_epd"]
