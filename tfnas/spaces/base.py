"""`SearchSpace`: what every space offers, written once over a subclass's choices.

A subclass defines its choices (`token_choices`), the bijection between
genotypes and choice indices (`encode`, `decode`) and membership
(`why_not`); the base derives the rest: `size`, ranks (`index`, `at`),
membership tests (`contains`, `validate`) and sampling (`sample`,
`sample_unique`). Pure Python and NumPy: no TensorFlow.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np


def _as_rng(rng: Any) -> np.random.Generator:
    """A NumPy generator from a generator (used as is), a seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


class SearchSpace:
    """Base of the spaces; see the module docstring.

    Attributes:
        draws_ranks_when_dense: whether `sample_unique`, asked for more than
            half of the genotypes left, draws ranks without replacement
            (instead of redrawing repeats, which slows down as the space
            runs out). A space sets it False to keep redrawing for any
            request, and so the draw sequence its seeded pools always had.
    """

    draws_ranks_when_dense: bool = True

    def token_choices(self) -> list[int]:
        """Number of choices at each position of a genotype's choice indices."""
        raise TypeError(f"{type(self).__name__} must define token_choices()")

    def encode(self, genotype: Any) -> list[int]:
        """Choice indices of ``genotype`` (one per `token_choices` position)."""
        raise TypeError(f"{type(self).__name__} must define encode()")

    def decode(self, choices: Sequence[int]) -> Any:
        """The genotype of choice indices ``choices``; raises ``ValueError`` if out of range."""
        raise TypeError(f"{type(self).__name__} must define decode()")

    def why_not(self, genotype: Any) -> str | None:
        """Why ``genotype`` is outside the space, or None if it is inside."""
        raise TypeError(f"{type(self).__name__} must define why_not()")

    def size(self) -> int:
        """Number of distinct genotypes in the space (an exact Python int)."""
        return math.prod(self.token_choices())

    def contains(self, genotype: Any) -> bool:
        """Whether ``genotype`` is a cell of this space (see `why_not`)."""
        return self.why_not(genotype) is None

    def validate(self, genotype: Any) -> Any:
        """Returns ``genotype`` or raises ``ValueError`` saying why it is outside."""
        why = self.why_not(genotype)
        if why is not None:
            raise ValueError(f"genotype is not in {self!r}: {why}")
        return genotype

    # ------------------------------------------------------------------ ranks
    def index(self, genotype: Any) -> int:
        """Rank of ``genotype`` in ``0..size()-1`` (mixed radix over `token_choices`)."""
        return self._rank(self.encode(genotype))

    def _rank(self, choices: Sequence[int]) -> int:
        rank = 0
        for c, n in zip(choices, self.token_choices()):
            rank = rank * n + c
        return rank

    def at(self, rank: int) -> Any:
        """Inverse of `index`."""
        rank = int(rank)
        if not 0 <= rank < self.size():
            raise ValueError(f"{type(self).__name__}.at: rank must be in 0..{self.size() - 1}, received {rank}")
        choices = []
        for n in reversed(self.token_choices()):
            rank, c = divmod(rank, n)
            choices.append(c)
        return self.decode(choices[::-1])

    # --------------------------------------------------------------- sampling
    def sample(self, rng: Any = None) -> Any:
        """One genotype drawn uniformly: every choice independent and uniform.

        Args:
            rng: a ``numpy.random.Generator`` (advanced in place), a seed, or None.
        """
        rng = _as_rng(rng)
        return self.decode([int(rng.integers(n)) for n in self.token_choices()])

    def sample_unique(self, n: int, rng: Any = None, exclude: Iterable[Any] = ()) -> list[Any]:
        """``n`` distinct genotypes, none of them in ``exclude``.

        Distinctness is a tfnas choice (WeNet's pool uses it; its Algorithm 1
        has no rule against duplicates).

        Genotypes are drawn with `sample` and redrawn on a repeat; two are
        the same when their choices are (e.g. a DAG cell's attention and
        provenance are ignored). When the request is more than half of what
        is left (and `draws_ranks_when_dense`), ranks are drawn without
        replacement instead.

        Args:
            n: how many (>= 0).
            rng: a ``numpy.random.Generator`` (advanced in place), a seed, or None.
            exclude: genotypes not to return (those outside the space are ignored).

        Raises:
            ValueError: if ``n`` is not an integer >= 0 or exceeds the number
                of genotypes not excluded.
        """
        name = type(self).__name__
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{name}.sample_unique: `n` must be an integer >= 0, received n={n!r}")
        rng = _as_rng(rng)
        seen = {tuple(self.encode(g)) for g in exclude if self.contains(g)}
        left = self.size() - len(seen)
        if n > left:
            raise ValueError(f"{name}.sample_unique: asked for {n} distinct cells but only {left} "
                             f"of the {self.size()} in {self!r} are not excluded")
        if self.draws_ranks_when_dense and 2 * n > left:
            excluded = {self._rank(k) for k in seen}
            free = [r for r in range(self.size()) if r not in excluded]
            picks = rng.choice(len(free), size=int(n), replace=False)
            return [self.at(free[int(p)]) for p in picks]
        out = []
        while len(out) < n:
            g = self.sample(rng)
            key = tuple(self.encode(g))
            if key not in seen:
                seen.add(key)
                out.append(g)
        return out
