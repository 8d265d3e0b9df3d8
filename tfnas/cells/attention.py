"""Causal attention heads on top of a recurrent layer (their NASABN mixture is `tfnas.cells.search.mixed_attention`).

NASABN (Neural Architecture Search for Attention-Based Networks) places a
searchable attention layer on the output sequence ``H = [h_1 .. h_T]`` of a
DARTS recurrent cell. Every head here maps ``H`` of shape
``[batch, time, units]`` to ``Y`` of the same shape and is strictly causal:
``y_t`` reads ``h_1 .. h_t`` only, within one BPTT segment (nothing is carried
across segments). The causal mask is built from the run-time shape
(``keras.ops.shape``) so the batch and time axes stay dynamic, and only
plain `keras.ops` are used (matmul, softmax, comparisons of an
``arange``), so every head runs on any Keras backend and, on TensorFlow,
lowers to plain TensorFlow ops that tf2onnx exports; there is no Python
loop over time.

With ``a_t = softmax_{s <= t}(score(h_t, h_s))`` and ``c_t = sum_{s<=t}
a_ts h_s`` the heads are:

====================  ========================================  ==========================
name                  score(h_t, h_s) and output                parameters
====================  ========================================  ==========================
``none``              ``y_t = h_t``                             0
``dot``               ``h_t . h_s / sqrt(u)``;                  0
                      ``y_t = (h_t + c_t) / 2``
``general``           ``h_t^T W_a h_s``;                        ``3 u^2``
                      ``y_t = tanh([c_t; h_t] W_c)``
``additive``          ``v^T tanh(W_1 h_t + W_2 h_s)``;          ``2 u a + a + 2 u^2``
                      ``y_t = tanh([c_t; h_t] W_c)``
``multihead``         ``Y = H + MHA(H, H, H)`` (causal)         ``4 u^2 + 4 u``
====================  ========================================  ==========================

"""
from __future__ import annotations

import math
from typing import Any, Sequence

import keras
from keras import ops

from tfnas.cells.validation import check_units
from tfnas.genotypes.base import ATTENTION_HEADS

#: Score given to the future positions before the softmax; ``exp`` of it underflows to exactly 0.
MASK_VALUE = -1e9


def causal_softmax(scores: Any) -> Any:
    """Softmax over the last axis of ``scores[..., t, s]`` restricted to ``s <= t``.

    Future positions get the score `MASK_VALUE` (``-1e9``), so their weight is
    exactly zero in float32 and ``y_t`` cannot change when ``h_s`` (``s > t``)
    does. The mask comes from ``arange(shape(scores)[-1])`` (on TensorFlow
    ``tf.range(tf.shape(scores)[-1])`` where the time axis is unknown until
    run time).
    """
    if scores.shape[-1] == 1:  # one position, weight exactly 1 (Keras' softmax warns on an axis of size 1)
        return ops.ones_like(scores)
    positions = ops.arange(ops.shape(scores)[-1])
    allowed = ops.expand_dims(positions, 1) >= ops.expand_dims(positions, 0)
    return ops.softmax(ops.where(allowed, scores, MASK_VALUE), axis=-1)


def transposed(x: Any) -> Any:
    """``x`` with its last two axes swapped (``H^T`` of a batch of matrices)."""
    return ops.swapaxes(x, -1, -2)


def offset_seed(seed: int | None, offset: int) -> int | None:
    """A distinct, reproducible seed for the ``offset``-th weight of a layer."""
    return None if seed is None else seed + offset


def check_seed(seed: Any) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"Argument `seed` must be an integer or None; received: seed={seed!r}")
    return seed


class _CausalHead(keras.layers.Layer):
    """Shared plumbing: ``units`` and the input-shape check. Not registered; not public."""

    #: Keyword options of this head that `make_attention` forwards (others are dropped).
    options: tuple[str, ...] = ()

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = check_units("units", units)

    def _check_input_shape(self, input_shape: Sequence[int | None]) -> None:
        if len(input_shape) != 3 or (input_shape[-1] is not None and int(input_shape[-1]) != self.units):
            raise ValueError(
                f"{type(self).__name__} expects inputs of shape [batch, time, units={self.units}]; "
                f"received: inputs.shape={tuple(input_shape)}")

    def build(self, input_shape: Sequence[int | None]) -> None:
        self._check_input_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="tfnas")
class NoAttention(_CausalHead):
    """The ``"none"`` candidate of a head search: ``y_t = h_t``.

    Parameter-free; listed among the candidates, it lets the search decide
    that no attention is best. NASABN does not name it (section III-A,
    l.87), and DARTS favours parameter-free ops early in a search (l.242),
    so tfnas offers it only on request.

    Args:
        units: size of ``h_t``, a positive integer.

    Call arguments:
        inputs: ``[batch, time, units]``.
        training: unused.

    Example:

    >>> float(keras.ops.sum(NoAttention(units=8)(np.ones((2, 5, 8), "float32"))))
    80.0
    """

    def call(self, inputs, training=False):
        return ops.copy(inputs)


@keras.saving.register_keras_serializable(package="tfnas")
class DotAttention(_CausalHead):
    """Luong et al. (2015) global attention with the ``dot`` score, causal and parameter-free.

    For every ``t`` (``u = units``)::

        a_ts = softmax_{s <= t}(h_t . h_s / sqrt(u))
        c_t  = sum_{s <= t} a_ts h_s
        y_t  = (h_t + c_t) / 2

    Luong's dot score has no ``1/sqrt(u)``; tfnas divides by ``sqrt(u)``
    (as Vaswani et al. 2017 do) so the softmax does not saturate for large
    hidden sizes, and outputs the average of ``h_t`` and ``c_t`` instead of
    Luong's ``tanh(W_c [c_t; h_t])`` so the head stays parameter-free and
    keeps the scale of ``h_t``. Both are tfnas choices.

    Args:
        units: size of ``h_t``, a positive integer.

    Call arguments:
        inputs: ``[batch, time, units]``.
        training: unused.

    Example:

    >>> tuple(DotAttention(units=8)(np.zeros((2, 5, 8), "float32")).shape)
    (2, 5, 8)
    """

    def call(self, inputs, training=False):
        scores = ops.matmul(inputs, transposed(inputs)) * (1.0 / math.sqrt(self.units))
        context = ops.matmul(causal_softmax(scores), inputs)
        return (inputs + context) * 0.5


@keras.saving.register_keras_serializable(package="tfnas")
class GeneralAttention(_CausalHead):
    """Luong et al. (2015) global attention with the ``general`` score, causal.

    For every ``t``::

        a_ts = softmax_{s <= t}(h_t^T W_a h_s)          W_a: [units, units]
        c_t  = sum_{s <= t} a_ts h_s
        y_t  = tanh([c_t; h_t] W_c)                      W_c: [2*units, units]

    ``y_t`` is Luong's attentional hidden state (rows ``0..units-1`` of
    ``W_c`` read ``c_t``, the others ``h_t``). There are no biases: the head
    has ``3 * units**2`` parameters.

    Args:
        units: size of ``h_t``, a positive integer.
        seed: seed of the Glorot-uniform initialisation (each weight gets
            ``seed + i``), or None.

    Call arguments:
        inputs: ``[batch, time, units]``.
        training: unused.

    Example:

    >>> head = GeneralAttention(units=8)
    >>> tuple(head(np.zeros((2, 5, 8), "float32")).shape), head.count_params()
    ((2, 5, 8), 192)
    """

    options = ("seed",)

    def __init__(self, units: int, seed: int | None = None, **kwargs):
        super().__init__(units, **kwargs)
        self.seed = check_seed(seed)

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        u = self.units
        self.W_a = self.add_weight(name="W_a", shape=(u, u),
                                   initializer=keras.initializers.GlorotUniform(offset_seed(self.seed, 0)))
        self.W_c = self.add_weight(name="W_c", shape=(2 * u, u),
                                   initializer=keras.initializers.GlorotUniform(offset_seed(self.seed, 1)))
        self.built = True

    def call(self, inputs, training=False):
        queries = ops.matmul(inputs, self.W_a)
        scores = ops.matmul(queries, transposed(inputs))
        context = ops.matmul(causal_softmax(scores), inputs)
        return ops.tanh(ops.matmul(ops.concatenate([context, inputs], axis=-1), self.W_c))

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfnas")
class AdditiveAttention(_CausalHead):
    """Bahdanau et al. (2015) additive (concat) attention, causal.

    For every ``t``, with ``a = attention_units``::

        e_ts = v^T tanh(W_1 h_t + W_2 h_s)     W_1, W_2: [units, a], v: [a]
        a_ts = softmax_{s <= t}(e_ts)
        c_t  = sum_{s <= t} a_ts h_s
        y_t  = tanh([c_t; h_t] W_c)             W_c: [2*units, units]

    No biases: ``2*units*a + a + 2*units**2`` parameters (``4u^2 + u`` with
    the default ``a = units``). The scores need the ``[batch, time, time, a]``
    tensor ``tanh(W_1 h_t + W_2 h_s)``, so memory grows as ``B T^2 a``: fine
    for BPTT segments of 35-70 steps, costly for long ones.

    Args:
        units: size of ``h_t``, a positive integer.
        attention_units: size ``a`` of the hidden layer of the score
            (default ``units``).
        seed: seed of the Glorot-uniform initialisation (each weight gets
            ``seed + i``), or None.

    Call arguments:
        inputs: ``[batch, time, units]``.
        training: unused.

    Example:

    >>> head = AdditiveAttention(units=8, attention_units=4)
    >>> tuple(head(np.zeros((2, 5, 8), "float32")).shape), head.count_params()
    ((2, 5, 8), 196)
    """

    options = ("attention_units", "seed")

    def __init__(self, units: int, attention_units: int | None = None, seed: int | None = None, **kwargs):
        super().__init__(units, **kwargs)
        self.attention_units = self.units if attention_units is None else \
            check_units("attention_units", attention_units)
        self.seed = check_seed(seed)

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        u, a = self.units, self.attention_units
        glorot = lambda i: keras.initializers.GlorotUniform(offset_seed(self.seed, i))  # noqa: E731
        self.W_1 = self.add_weight(name="W_1", shape=(u, a), initializer=glorot(0))
        self.W_2 = self.add_weight(name="W_2", shape=(u, a), initializer=glorot(1))
        self.v = self.add_weight(name="v", shape=(a,), initializer=keras.initializers.RandomUniform(
            -1.0 / math.sqrt(a), 1.0 / math.sqrt(a), seed=offset_seed(self.seed, 2)))
        self.W_c = self.add_weight(name="W_c", shape=(2 * u, u), initializer=glorot(3))
        self.built = True

    def call(self, inputs, training=False):
        queries = ops.matmul(inputs, self.W_1)           # [B, T, a]  W_1 h_t
        keys = ops.matmul(inputs, self.W_2)              # [B, S, a]  W_2 h_s
        hidden = ops.tanh(queries[:, :, None, :] + keys[:, None, :, :])  # [B, T, S, a]
        scores = ops.sum(ops.multiply(hidden, self.v), axis=-1)          # [B, T, S]
        context = ops.matmul(causal_softmax(scores), inputs)
        return ops.tanh(ops.matmul(ops.concatenate([context, inputs], axis=-1), self.W_c))

    def get_config(self):
        return {**super().get_config(), "attention_units": self.attention_units, "seed": self.seed}


def default_num_heads(units: int) -> int:
    """4 when ``units`` is divisible by 4, else 1."""
    return 4 if units % 4 == 0 else 1


@keras.saving.register_keras_serializable(package="tfnas")
class MultiHeadSelfAttention(_CausalHead):
    """Masked multi-head self-attention (Vaswani et al. 2017) with a residual connection.

    With ``n = num_heads`` heads of size ``d = units / n``::

        q^i_t = h_t W^i_Q + b^i_Q,  k^i_s = h_s W^i_K + b^i_K,  v^i_s = h_s W^i_V + b^i_V
        a^i_ts = softmax_{s <= t}(q^i_t . k^i_s / sqrt(d))
        o_t = sum_i (sum_{s <= t} a^i_ts v^i_s) W^i_O + b_O
        y_t = h_t + o_t

    The projections are those of `keras.layers.MultiHeadAttention` (called
    with ``use_causal_mask=True``), which tf2onnx converts at opset 17 with
    dynamic batch and time. ``4*units**2 + 4*units`` parameters.

    Args:
        units: size of ``h_t``, a positive integer.
        num_heads: number of heads; must divide ``units``. Default: 4 when
            ``units`` is divisible by 4, else 1.
        seed: seed of the Glorot-uniform initialisation of the four
            projection kernels (kernel ``i`` gets ``seed + i``), or None.

    Call arguments:
        inputs: ``[batch, time, units]``.
        training: passed to the Keras layer (it has no dropout here).

    Example:

    >>> head = MultiHeadSelfAttention(units=8)
    >>> tuple(head(np.zeros((2, 5, 8), "float32")).shape), head.num_heads, head.count_params()
    ((2, 5, 8), 4, 288)
    """

    options = ("num_heads", "seed")

    def __init__(self, units: int, num_heads: int | None = None, seed: int | None = None, **kwargs):
        super().__init__(units, **kwargs)
        if num_heads is None:
            num_heads = default_num_heads(self.units)
        check_units("num_heads", num_heads)
        if self.units % num_heads:
            raise ValueError(f"Argument `num_heads` must divide units={self.units}; received: num_heads={num_heads}")
        self.num_heads = num_heads
        self.seed = check_seed(seed)
        self.mha = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=self.units // num_heads,
                                                   name="mha", dtype=self.dtype_policy)

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        self.mha.build(input_shape, input_shape)
        if self.seed is not None:
            # Keras clones one initializer for the four projections: with an integer seed they would
            # all start equal, so each kernel is drawn again with its own seed.
            kernels = [d.kernel for d in (self.mha.query_dense, self.mha.key_dense,
                                          self.mha.value_dense, self.mha.output_dense)]
            for i, kernel in enumerate(kernels):
                kernel.assign(keras.initializers.GlorotUniform(self.seed + i)(kernel.shape, kernel.dtype))
        self.built = True

    def call(self, inputs, training=False):
        return inputs + self.mha(inputs, inputs, use_causal_mask=True, training=training)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "seed": self.seed}


_HEAD_CLASSES: dict[str, type[_CausalHead]] = {
    "none": NoAttention,
    "dot": DotAttention,
    "general": GeneralAttention,
    "additive": AdditiveAttention,
    "multihead": MultiHeadSelfAttention,
}
_ALL_OPTIONS = frozenset(opt for cls in _HEAD_CLASSES.values() for opt in cls.options)


def make_attention(name: str | None, units: int, /, **kwargs) -> keras.layers.Layer:
    """The attention head called ``name`` for hidden size ``units``.

    ``name`` is one of `ATTENTION_HEADS` (a genotype's ``attention`` or
    ``"none"``); ``None`` (a genotype without attention) gives `NoAttention`.
    Head options (``num_heads``, ``attention_units``, ``seed``) reach only
    the heads that take them, so one set of options serves every name; any
    other keyword (the layer's ``name``, ``dtype``) goes to the layer.

    Example:

    >>> make_attention("multihead", 8, num_heads=2, attention_units=3).num_heads
    2
    """
    key = "none" if name is None else name
    if key not in _HEAD_CLASSES:
        raise ValueError(f"Argument `name` must be one of {list(ATTENTION_HEADS)} or None; received: name={name!r}")
    cls = _HEAD_CLASSES[key]
    kwargs = {k: v for k, v in kwargs.items() if k not in _ALL_OPTIONS or k in cls.options}
    return cls(units, **kwargs)
