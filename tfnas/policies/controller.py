"""The controller policy of Zoph & Le (ICLR 2017) and ENAS (Pham et al., ICML 2018).

`Controller` is an autoregressive LSTM policy over the choice sequence of a
search space (``space.token_choices()``): at position ``p`` the top LSTM
output ``o_p`` gives the logits ``l_p = o_p W_p`` over the ``k_p`` choices
of that position, a choice ``a_p`` is drawn, and its embedding ``E_p[a_p]``
is the next LSTM input (the first input is a learned ``go`` vector). With
ENAS' sampling options the logits are ``C * tanh(l_p / T)`` (temperature
``T``, tanh constant ``C``). The log-probability of a sequence is
``sum_p log softmax(l_p)[a_p]`` and its entropy is the sum of the entropies
of the per-position distributions along the sampled prefix. Every weight
is drawn from ``U(-init_range, init_range)`` (0.08 in Zoph & Le, section 4.1).

Each LSTM layer has one kernel ``K`` over ``[x, h]`` and no bias (as in
ENAS' code): ``[i, f, g, o] = [x, h] K``, ``c' = sigmoid(f) c + sigmoid(i)
tanh(g)``, ``h' = sigmoid(o) tanh(c')``. The step is written out, not
`keras.layers.LSTMCell`, because the published runs (``benchmarks/results/``)
depend on its numbers: LSTMCell holds an input and a recurrent kernel
instead of ``K`` (other checkpointed variables), the seeded uniform draw of
``K`` cannot be split into its two draws (the recurrent half comes out
different), and ``x W + h U`` rounds otherwise than ``[x, h] K``
(log-probabilities can differ in the last bits, and with them REINFORCE's
updates).

Sampling is stateless: ``sample(n, seed)`` with the same ``seed`` (two
int32 numbers) gives the same architectures, so a search resumes exactly by
saving a counter.
"""
from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, RATE, setting, settings


@settings
class ControllerConfig:
    """The LSTM controller and its REINFORCE training, mixed into the configs of REINFORCE and ENAS.

    Defaults: Zoph & Le (ICLR 2017, section 4.1): 2 layers of 35 units,
    weights in U(-0.08, 0.08), Adam lr 6e-4 (their CIFAR-10 value;
    `ReinforceConfig` redeclares section 4.2's PTB lr 5e-4 and no entropy
    bonus); no logit temperature or tanh constant; an
    exponential-moving-average baseline (decay 0.95, a tfnas choice) and an
    entropy bonus of 1e-4 (ENAS' value, kept by `EnasConfig`).
    """

    controller_units: int = setting(35, help="LSTM units of the controller", check=AT_LEAST_ONE)
    controller_layers: int = setting(2, help="LSTM layers of the controller", check=AT_LEAST_ONE)
    controller_lr: float = setting(6e-4, help="Adam learning rate of the controller", check=POSITIVE)
    controller_init_range: float = setting(0.08, help="controller weights ~ U(-r, r)", check=POSITIVE)
    temperature: float | None = setting(None, help="logits / T before the tanh constant (ENAS), or null",
                                        check=POSITIVE)
    tanh_constant: float | None = setting(None, help="logits C * tanh(logits / T) (ENAS), or null", check=POSITIVE)
    entropy_weight: float = setting(1e-4, help="weight of the entropy bonus", check=NON_NEGATIVE)
    baseline_decay: float = setting(0.95, help="decay d of the moving-average baseline b <- d b + (1 - d) R",
                                    check=RATE)


def _check_choices(token_choices: Sequence[int]) -> tuple[int, ...]:
    choices = tuple(int(k) for k in token_choices)
    if not choices or any(k < 1 for k in choices):
        raise ValueError(f"Argument `token_choices` must be a non-empty list of positive counts; "
                         f"received: {list(token_choices)!r}")
    return choices


def _step_stats(logits: tf.Tensor, actions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    log_sm = tf.nn.log_softmax(logits)
    logp = tf.gather(log_sm, actions, batch_dims=1)
    entropy = -tf.reduce_sum(tf.exp(log_sm) * log_sm, axis=-1)
    return logp, entropy



class Policy(keras.layers.Layer):
    """Shared sampling / scoring loop; subclasses define `_start` and `_step`."""

    def __init__(self, token_choices: Sequence[int], init_range: float = 0.08, temperature: float | None = None,
                 tanh_constant: float | None = None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.token_choices = _check_choices(token_choices)
        if not init_range > 0:
            raise ValueError(f"Argument `init_range` must be positive; received: init_range={init_range!r}")
        if temperature is not None and not temperature > 0:
            raise ValueError(f"Argument `temperature` must be positive or None; received: {temperature!r}")
        if tanh_constant is not None and not tanh_constant > 0:
            raise ValueError(f"Argument `tanh_constant` must be positive or None; received: {tanh_constant!r}")
        self.init_range = float(init_range)
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.seed = seed
        self.offsets = tuple(int(o) for o in np.cumsum((0,) + self.token_choices[:-1]))
        self.total_choices = int(sum(self.token_choices))

    def _init(self, offset: int = 0):
        return keras.initializers.RandomUniform(-self.init_range, self.init_range,
                                                seed=None if self.seed is None else self.seed + offset)

    def _shape_logits(self, logits: tf.Tensor) -> tf.Tensor:
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * tf.tanh(logits)
        return logits

    def _run(self, n, actions: tf.Tensor | None, seed: tf.Tensor | None):
        if not self.built:
            self.build(None)
        carry = self._start(n)
        chosen, logps, entropies = [], [], []
        for p, k in enumerate(self.token_choices):
            logits, carry = self._step(p, carry)
            logits = self._shape_logits(logits)
            if actions is None:
                step_seed = tf.random.experimental.stateless_fold_in(seed, p)
                a = tf.cast(tf.random.stateless_categorical(logits, 1, step_seed)[:, 0], tf.int32)
            else:
                a = actions[:, p]
            logp, ent = _step_stats(logits, a)
            chosen.append(a)
            logps.append(logp)
            entropies.append(ent)
            carry = self._feed(p, a, carry)
        return tf.stack(chosen, axis=1), tf.add_n(logps), tf.add_n(entropies)

    def sample(self, n: int, seed) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``n`` choice sequences ``[n, T]`` with their log-probabilities and entropies ``[n]``.

        ``seed`` is a pair of int32 numbers; the same seed gives the same samples.
        """
        return self._run(n, None, tf.cast(tf.convert_to_tensor(seed), tf.int32))

    def log_prob(self, actions) -> tuple[tf.Tensor, tf.Tensor]:
        """Log-probabilities and entropies ``[n]`` of given sequences ``[n, T]`` (differentiable)."""
        actions = tf.cast(tf.convert_to_tensor(actions), tf.int32)
        _, logp, ent = self._run(tf.shape(actions)[0], actions, None)
        return logp, ent

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "token_choices": list(self.token_choices), "init_range": self.init_range,
                "temperature": self.temperature, "tanh_constant": self.tanh_constant, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfnas")
class Controller(Policy):
    """The LSTM controller (Zoph & Le; ENAS); see the module docstring.

    Args:
        token_choices: number of choices at each position (``space.token_choices()``).
        units: LSTM size (35 in Zoph & Le, section 4.1, kept for PTB in section 4.2).
        layers: stacked LSTM layers (2 in Zoph & Le, sections 4.1-4.2).
        init_range: every weight is drawn from ``U(-init_range, init_range)``.
        temperature: divide the logits by it (ENAS: 5), or None.
        tanh_constant: logits become ``C * tanh(logits)`` (ENAS: 2.5), or None.
        seed: seed of the initialisation.

    Example:

    >>> c = Controller([2, 4, 3], units=8, seed=0)
    >>> tokens, logp, entropy = c.sample(5, seed=[1, 2])
    >>> tokens.shape, logp.shape
    (TensorShape([5, 3]), TensorShape([5]))
    """

    def __init__(self, token_choices: Sequence[int], units: int = 35, layers: int = 2, init_range: float = 0.08,
                 temperature: float | None = None, tanh_constant: float | None = None, seed: int | None = None,
                 **kwargs):
        super().__init__(token_choices, init_range, temperature, tanh_constant, seed, **kwargs)
        for name, value in (("units", units), ("layers", layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Argument `{name}` must be a positive integer; received: {name}={value!r}")
        self.units = units
        self.num_layers = layers

    def build(self, input_shape=None):
        u = self.units
        self.go = self.add_weight(name="go", shape=(1, u), initializer=self._init(0))
        self.lstm_kernels = [self.add_weight(name=f"lstm_{i}_kernel", shape=(2 * u, 4 * u),
                                             initializer=self._init(1 + i)) for i in range(self.num_layers)]
        self.softmax = self.add_weight(name="softmax", shape=(u, self.total_choices),
                                       initializer=self._init(100))
        self.embedding = self.add_weight(name="embedding", shape=(self.total_choices, u),
                                         initializer=self._init(101))
        self.built = True

    def _lstm(self, x, states):
        new_states = []
        for kernel, (h, c) in zip(self.lstm_kernels, states):
            gates = tf.linalg.matmul(tf.concat([x, h], axis=1), kernel)
            i, f, g, o = tf.split(gates, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            new_states.append((h, c))
            x = h
        return x, new_states

    def _start(self, n):
        zeros = tf.zeros(tf.stack([n, self.units]), self.go.dtype)
        return tf.tile(self.go, tf.stack([n, 1])), [(zeros, zeros)] * self.num_layers

    def _step(self, p, carry):
        x, states = carry
        out, states = self._lstm(x, states)
        off, k = self.offsets[p], self.token_choices[p]
        return tf.linalg.matmul(out, self.softmax[:, off:off + k]), (x, states)

    def _feed(self, p, a, carry):
        _, states = carry
        return tf.gather(self.embedding, a + self.offsets[p]), states

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "layers": self.num_layers}
