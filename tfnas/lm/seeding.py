"""`seeded`: a seed for building a model, without reseeding the caller's global generators.

Keras draws the seeds of its unseeded initialisers and dropout layers from
Python's global ``random`` (``keras.random.SeedGenerator(None)``), and some
NumPy code draws from NumPy's global generator; a loop seeds both so that a
run builds the same model every time. It restores the caller's states
afterwards, so that a notebook's own draws go on as if tfnas had not run.
TensorFlow's global seed and Keras' global seed generator are left alone:
tfnas' random ops are stateless ops seeded by its own `SeedGenerator`s.
"""
from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Inside the block ``random.seed(seed)`` and ``np.random.seed(seed)``; after it, the caller's states again."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
