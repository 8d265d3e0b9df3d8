"""The tree space of Zoph & Le: token choices, size and sampling (its genotype: tests/genotypes/test_tree.py)."""
import numpy as np
import pytest

from tfnas.genotypes.tree import TREE_ACTIVATIONS
from tfnas.spaces.tree import TreeSpace


def test_token_choices_and_size():
    space = TreeSpace(base=8)
    choices = space.token_choices()
    # 15 nodes + the inject: (combination, activation) each, then cell index and inject index.
    assert choices == [2, 4] * 16 + [15, 15]
    assert space.size() == 8 ** 16 * 15 ** 2
    assert TreeSpace(base=2).size() == 8 ** 4 * 9


def test_sample_unique_and_uniformity():
    space = TreeSpace(base=2)
    rng = np.random.default_rng(1)
    gs = space.sample_unique(500, rng)
    assert len(set(gs)) == 500 and all(space.contains(g) for g in gs)
    more = space.sample_unique(100, rng, exclude=gs)
    assert not set(more) & set(gs)
    # Every choice is uniform: the root's activation frequencies are close to 1/4.
    counts = np.bincount([TREE_ACTIVATIONS.index(g.nodes[2][1]) for g in gs], minlength=4) / 500
    np.testing.assert_allclose(counts, 0.25, atol=0.07)
    with pytest.raises(ValueError, match="only"):
        space.sample_unique(space.size() + 1, rng)


def test_same_seed_same_samples():
    a = [TreeSpace(8).sample(np.random.default_rng(5)) for _ in range(2)]
    assert a[0] == a[1]
