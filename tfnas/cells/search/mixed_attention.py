"""`MixedAttention`: NASABN's continuous relaxation of the attention choice (eq. 3-4).

``Y = sum_k softmax(alpha)_k head_k(H)`` over the causal heads of
`tfnas.cells.attention`, and `MixedAttention.derive` the discretisation of
eq. (4), ``argmax_k alpha_k``. A mixture of one head is that head, fixed
(NASABN's reported experiment searches the cell under global dot
attention, section IV-B).
"""
from __future__ import annotations

from typing import Any, Sequence

import keras
import tensorflow as tf

from tfnas.cells.attention import ATTENTION_HEADS, check_seed, make_attention, offset_seed
from tfnas.cells.search.base import ArchitectureSplit
from tfnas.cells.validation import check_units
from tfnas.genotypes.base import ATTENTIONS


@keras.saving.register_keras_serializable(package="tfnas")
class MixedAttention(ArchitectureSplit, keras.layers.Layer):
    """The NASABN search layer: a softmax mixture of attention heads.

    With candidates ``k = 1..K`` and architecture parameters ``alpha`` of
    shape ``[K]`` (NASABN eq. 3)::

        Y = sum_k softmax(alpha)_k head_k(H)

    and the derived head (eq. 4) is ``argmax_k alpha_k``. ``alpha`` is its
    own variable, named ``"alpha_attention"``: a bilevel optimiser updates
    `arch_variables` on validation data and `weight_variables` (all other
    trainable variables, the heads' weights) on training data. With one
    candidate there is nothing to choose: the layer is that head, with no
    ``alpha`` and no architecture parameters.

    Args:
        units: size of ``h_t``, a positive integer.
        candidates: names from `ATTENTION_HEADS`, distinct, at least one;
            by default the heads a genotype can carry (dot, general,
            additive, multihead). ``"none"`` (the identity, not a NASABN
            candidate) lets a search drop the head when listed.
        num_heads: heads of the ``"multihead"`` candidate (default as in
            `MultiHeadSelfAttention`).
        attention_units: hidden size of the ``"additive"`` score (default
            ``units``).
        alpha_init_std: ``alpha`` starts as ``alpha_init_std * N(0, 1)``
            (DARTS: 1e-3); 0 starts it at zeros (uniform mixture).
        seed: seed of ``alpha`` and of the heads' initialisation, or None.

    Call arguments:
        inputs: ``[batch, time, units]``.
        training: passed to the heads.
        alphas: optional ``[K]`` logits used instead of ``alpha`` (e.g. a
            controller's sample or a hard one-hot choice); ignored with one
            candidate.

    Example:

    >>> mixed = MixedAttention(units=8, alpha_init_std=0.0)
    >>> mixed(np.zeros((2, 5, 8), "float32")).shape
    TensorShape([2, 5, 8])
    >>> _ = mixed.alpha.assign([0.0, 3.0, 0.0, 0.0])
    >>> mixed.derive()
    'general'
    """

    def __init__(self, units: int, candidates: Sequence[str] = ATTENTIONS, num_heads: int | None = None,
                 attention_units: int | None = None, alpha_init_std: float = 1e-3, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = check_units("units", units)
        if isinstance(candidates, str):
            candidates = (candidates,)
        candidates = tuple(candidates)
        unknown = [c for c in candidates if c not in ATTENTION_HEADS]
        if not candidates or unknown or len(set(candidates)) != len(candidates):
            raise ValueError(f"Argument `candidates` must be distinct names from {list(ATTENTION_HEADS)}, "
                             f"at least one; received: candidates={list(candidates)!r}")
        self.candidates = candidates
        if not isinstance(alpha_init_std, (int, float)) or isinstance(alpha_init_std, bool) or alpha_init_std < 0:
            raise ValueError(f"Argument `alpha_init_std` must be a number >= 0; "
                             f"received: alpha_init_std={alpha_init_std!r}")
        self.alpha_init_std = float(alpha_init_std)
        self.seed = check_seed(seed)
        self.num_heads = num_heads
        self.attention_units = attention_units
        options = {"num_heads": num_heads, "attention_units": attention_units}
        self.heads = [
            make_attention(c, self.units, name=c, seed=offset_seed(self.seed, 10 * (k + 1)),
                           **{o: v for o, v in options.items() if v is not None})
            for k, c in enumerate(candidates)
        ]
        if "multihead" in candidates:
            self.num_heads = self.heads[candidates.index("multihead")].num_heads

    @property
    def searched(self) -> bool:
        """Whether there is a choice (more than one candidate), i.e. an ``alpha``."""
        return len(self.candidates) > 1

    def build(self, input_shape):
        if self.searched:
            if self.alpha_init_std > 0:
                init = keras.initializers.RandomNormal(stddev=self.alpha_init_std, seed=self.seed)
            else:
                init = keras.initializers.Zeros()
            self.alpha = self.add_weight(name="alpha_attention", shape=(len(self.candidates),), initializer=init)
        for head in self.heads:
            head.build(input_shape)
        self.built = True

    @property
    def arch_variables(self) -> list:
        """The architecture parameters: ``[alpha]`` (none with one candidate)."""
        return [self.alpha] if self.searched else []

    def head(self, name: str) -> keras.layers.Layer:
        """The candidate head called ``name``."""
        if name not in self.candidates:
            raise ValueError(f"Argument `name` must be one of {list(self.candidates)}; received: name={name!r}")
        return self.heads[self.candidates.index(name)]

    def call(self, inputs, training=False, alphas=None):
        if not self.searched:
            return self.heads[0](inputs, training=training)
        if alphas is None:
            logits = self.alpha
        else:
            logits = tf.convert_to_tensor(alphas, dtype="float32")
            if logits.shape.rank is not None and not logits.shape.is_compatible_with([len(self.candidates)]):
                raise ValueError(f"Argument `alphas` must have shape [{len(self.candidates)}]; "
                                 f"received: alphas.shape={tuple(logits.shape)}")
        weights = tf.cast(tf.nn.softmax(logits), inputs.dtype)
        return tf.add_n([weights[k] * head(inputs, training=training) for k, head in enumerate(self.heads)])

    def mixture_weights(self) -> dict[str, float]:
        """``softmax(alpha)`` by candidate name (for logs and heatmaps); 1 for a single candidate."""
        if not self.searched:
            return {self.candidates[0]: 1.0}
        return dict(zip(self.candidates, tf.nn.softmax(self.alpha).numpy().tolist()))

    def derive(self) -> str | None:
        """NASABN eq. (4): the candidate with the largest ``alpha`` (first on ties).

        Returns the head's name, a value for ``Genotype.attention``, or None
        when ``"none"`` wins; the candidate itself when it is the only one.
        """
        best = self.candidates[int(tf.argmax(self.alpha).numpy())] if self.searched else self.candidates[0]
        return None if best == "none" else best

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = {
            "units": self.units,
            "candidates": list(self.candidates),
            "num_heads": self.num_heads,
            "attention_units": self.attention_units,
            "alpha_init_std": self.alpha_init_std,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
