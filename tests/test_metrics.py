"""tfnas.metrics: the one perplexity of training, search, callbacks and scoring."""
import math

import numpy as np

from tfnas.metrics import MAX_LOSS, perplexity


def test_perplexity_is_exp_of_the_mean_loss():
    assert perplexity(0.0) == 1.0
    assert abs(perplexity(math.log(31.0)) - 31.0) < 1e-12  # a uniform guess over 31 words


def test_a_diverged_loss_is_capped_at_exp_700_and_still_prints():
    assert MAX_LOSS == 700.0
    assert perplexity(1e9) == perplexity(700.0) == math.exp(700.0) > 1e300
    assert perplexity(float("inf")) == math.exp(700.0)
    assert f"{perplexity(1e9):.3e}" == "1.014e+304"


def test_perplexity_returns_a_python_float():
    for loss in (2, 2.0, np.float32(2.0), np.float64(2.0)):
        value = perplexity(loss)
        assert type(value) is float and abs(value - math.exp(2.0)) < 1e-6
