"""The tree search space of Zoph & Le (ICLR 2017, section 3.2 and appendix A).

The cells, their node numbering, equations and token order are described
in `tfnas.genotypes.tree`; this module samples, counts and encodes them.
Tokens are local choice indices: position ``p`` takes values in
``range(space.token_choices()[p])``.

This module is pure Python (no TensorFlow).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from tfnas.genotypes.base import GenotypeError
from tfnas.genotypes.tree import DEFAULT_BASE, TreeGenotype, check_base, tree_token_choices
from tfnas.spaces.base import SearchSpace


class TreeSpace(SearchSpace):
    """The base-N tree space of Zoph & Le: sampling, size, choices, membership.

    Every token sequence of `token_choices` is a valid, distinct genotype,
    so sampling every choice uniformly is uniform over the space (random
    search's proposal).

    Args:
        base: number of leaves, a power of two (8 in the paper).

    Example:

    >>> import numpy as np
    >>> space = TreeSpace(base=2)
    >>> space.token_choices()
    [2, 4, 2, 4, 2, 4, 2, 4, 3, 3]
    >>> g = space.sample(np.random.default_rng(0))
    >>> space.contains(g), space.size()
    (True, 36864)
    """

    name = "tree"
    #: Redraw repeats for any request (no rank draws): the draw sequence its seeded pools always had.
    draws_ranks_when_dense = False

    def __init__(self, base: int = DEFAULT_BASE):
        try:
            self.base = check_base(base)
        except GenotypeError:
            raise ValueError(f"TreeSpace: `base` must be a power of two >= 2, received base={base!r}") from None
        self.n_nodes = 2 * base - 1

    def __repr__(self) -> str:
        return f"TreeSpace(base={self.base})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TreeSpace) and other.base == self.base

    def __hash__(self) -> int:
        return hash(("tree", self.base))

    def to_config(self) -> dict[str, Any]:
        return {"base": self.base}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "TreeSpace":
        return cls(**config)

    def token_choices(self) -> list[int]:
        """Number of choices at each position of `TreeGenotype.to_tokens`."""
        return tree_token_choices(self.base)

    # -------------------------------------------------------------- validity
    def why_not(self, genotype: Any) -> str | None:
        """Why ``genotype`` is outside the space, or None."""
        if not isinstance(genotype, TreeGenotype):
            return f"not a TreeGenotype (got {type(genotype).__name__})"
        if genotype.base != self.base:
            return f"has base {genotype.base}, the space has base {self.base}"
        return None

    def __contains__(self, genotype: object) -> bool:
        return self.contains(genotype)

    # -------------------------------------------------------- choices/tokens
    def encode(self, genotype: TreeGenotype) -> list[int]:
        """Choice indices of ``genotype`` (one per `token_choices` position)."""
        return self.validate(genotype).to_tokens()

    def decode(self, choices: Sequence[int]) -> TreeGenotype:
        """The genotype of choice indices ``choices``; raises ``ValueError`` if out of range."""
        return TreeGenotype.from_tokens(choices, base=self.base)

    # `size`, `index`, `at`, `sample` and `sample_unique` come from `SearchSpace`.
