"""Numbers shared by training, search, callbacks and scoring (pure Python, no TensorFlow)."""
from __future__ import annotations

import math

#: Largest loss passed to ``exp``: ``exp(700)`` is finite in float64, so a diverged loss still prints.
MAX_LOSS = 700.0


def perplexity(loss: float) -> float:
    """``exp(loss)`` of a mean per-token cross-entropy, capped at ``exp(700)`` so that a diverged loss prints."""
    return float(math.exp(min(float(loss), MAX_LOSS)))
