"""Activation functions of the DAG search space, by name, in `keras.ops` (any Keras backend)."""
from __future__ import annotations

from typing import Any, Callable

from keras import ops


def identity(x: Any) -> Any:
    """``x`` itself (the ``identity`` op of DARTS' space)."""
    return x


_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "tanh": ops.tanh,
    "relu": ops.relu,
    "sigmoid": ops.sigmoid,
    "identity": identity,
    "none": ops.zeros_like,
}


def activation_fn(name: str) -> Callable[[Any], Any]:
    """The `keras.ops` function of activation ``name`` (a tensor of the backend in, one out)."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}") from None
