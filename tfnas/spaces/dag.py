"""The recurrent DAG search space (ENAS, DARTS, WeNet, BayesNAS, NAO).

A cell has node 0 (computed from ``x_t`` and ``h_{t-1}`` as its
``first_node`` rule says) and ``steps`` further nodes; node ``i`` (1-based)
reads one predecessor ``j`` in ``0..i-1`` and applies one activation from
``activations``. With ``first_node == "enas"`` node 0's activation is a
choice too. The space therefore holds::

    size = A^[enas] * prod_{i=1..N} (i * A)  =  A^[enas] * N! * A^N

cells (``A = len(activations)``, ``N = steps``). Sampling draws every choice
uniformly and independently, which is uniform over the space: this is
WeNet's random network generation (Huang & Xiang, Algorithm 1) and the
proposal of random search. `DagSpace.sample_unique` draws distinct cells, a
tfnas choice that WeNet's pool uses: Algorithm 1 has no rule against
duplicates.

Choices and tokens. `token_choices` lists, for every position of
`Genotype.to_tokens`, how many values that position can take in this space:
``[A]`` for node 0's activation when ``first_node == "enas"``, then
``i`` (predecessor of node ``i``) and ``A`` (its activation) per node. A
controller samples *choice indices* ``c_p in [0, token_choices()[p])``;
`decode` turns them into a `Genotype` and `encode` back. Choice index and
`Genotype.to_tokens` value coincide for predecessors up to the offset
``len(ACTIVATIONS)``, and for activations when ``activations`` is the full
`ACTIVATIONS` tuple in its order.

Pure Python and NumPy: no TensorFlow.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tfnas.genotypes.base import MAX_NODES
from tfnas.genotypes.dag import ACTIVATIONS, FIRST_NODES, OUTPUT_RULES, Genotype
from tfnas.spaces.base import SearchSpace

__all__ = ["DagSpace"]


class DagSpace(SearchSpace):
    """All DAG genotypes with ``steps`` nodes over ``activations``.

    Args:
        steps: number of nodes after node 0 (``L`` in WeNet, ``N`` in DARTS); 1 to
            `tfnas.genotypes.base.MAX_NODES`.
        activations: the activations a node may use; a non-empty subset of
            `tfnas.genotypes.ACTIVATIONS` without repeats. Their order fixes
            the choice indices of `encode` / `decode`.
        first_node: node 0 rule of every genotype in the space (``"darts"``,
            ``"wenet"`` or ``"enas"``); with ``"enas"`` node 0's activation
            is searched too.
        output: output rule of every genotype (``"mean"`` or ``"loose_ends"``).

    Example:

    >>> import numpy as np
    >>> space = DagSpace(steps=2, first_node="wenet")
    >>> space.size()                      # (1*4) * (2*4)
    32
    >>> space.token_choices()
    [1, 4, 2, 4]
    >>> g = space.sample(np.random.default_rng(0))
    >>> space.contains(g), g.first_node
    (True, 'wenet')
    >>> len(set(space.sample_unique(32, np.random.default_rng(0))))
    32
    """

    def __init__(self, steps: int, activations: Sequence[str] = ACTIVATIONS,
                 first_node: str = "darts", output: str = "mean") -> None:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_NODES:
            raise ValueError(f"DagSpace: `steps` must be an integer in [1, {MAX_NODES}] (MAX_NODES), "
                             f"received steps={steps!r}")
        if isinstance(activations, str):
            raise ValueError(f"DagSpace: `activations` must be a sequence of names, received {activations!r}")
        activations = tuple(activations)
        if not activations:
            raise ValueError("DagSpace: `activations` must not be empty, received activations=()")
        unknown = [a for a in activations if a not in ACTIVATIONS]
        if unknown:
            raise ValueError(f"DagSpace: `activations` must be drawn from {list(ACTIVATIONS)}, "
                             f"received unknown {unknown}")
        if len(set(activations)) != len(activations):
            raise ValueError(f"DagSpace: `activations` has repeats, received {list(activations)}")
        if first_node not in FIRST_NODES:
            raise ValueError(f"DagSpace: `first_node` must be one of {list(FIRST_NODES)}, "
                             f"received first_node={first_node!r}")
        if output not in OUTPUT_RULES:
            raise ValueError(f"DagSpace: `output` must be one of {list(OUTPUT_RULES)}, "
                             f"received output={output!r}")
        self.steps = int(steps)
        self.activations = activations
        self.first_node = first_node
        self.output = output

    # ------------------------------------------------------------------ shape
    def __repr__(self) -> str:
        return (f"DagSpace(steps={self.steps}, activations={self.activations!r}, "
                f"first_node={self.first_node!r}, output={self.output!r})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DagSpace) and self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash((self.steps, self.activations, self.first_node, self.output))

    def to_config(self) -> dict[str, Any]:
        """Constructor arguments as plain JSON values."""
        return {"steps": self.steps, "activations": list(self.activations),
                "first_node": self.first_node, "output": self.output}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "DagSpace":
        return cls(**config)

    def token_choices(self) -> list[int]:
        """Number of choices at each position of `Genotype.to_tokens`.

        ``[A]`` first if node 0's activation is searched (``"enas"``), then
        ``[i, A]`` for node ``i = 1..steps`` (predecessor, activation).
        """
        a = len(self.activations)
        choices = [a] if self.first_node == "enas" else []
        for i in range(1, self.steps + 1):
            choices += [i, a]
        return choices

    # -------------------------------------------------------------- validity
    def why_not(self, genotype: Genotype) -> str | None:
        """Why ``genotype`` is outside the space, or None if it is inside.

        The attention head and the provenance are not part of the DAG space
        and are not checked.
        """
        if not isinstance(genotype, Genotype):
            return f"not a Genotype (got {type(genotype).__name__})"
        if genotype.steps != self.steps:
            return f"has {genotype.steps} steps, the space has {self.steps}"
        if genotype.first_node != self.first_node:
            return f"first_node is {genotype.first_node!r}, the space uses {self.first_node!r}"
        if genotype.output != self.output:
            return f"output is {genotype.output!r}, the space uses {self.output!r}"
        if self.first_node == "enas" and genotype.first_activation not in self.activations:
            return f"first_activation {genotype.first_activation!r} is not in {list(self.activations)}"
        for i, (act, _pred) in enumerate(genotype.nodes, start=1):
            if act not in self.activations:
                return f"node {i} uses {act!r}, not in {list(self.activations)}"
        return None

    def __contains__(self, genotype: object) -> bool:
        return isinstance(genotype, Genotype) and self.contains(genotype)

    # -------------------------------------------------------- choices/tokens
    def encode(self, genotype: Genotype) -> list[int]:
        """Choice indices of ``genotype`` (one per `token_choices` position)."""
        self.validate(genotype)
        out = [self.activations.index(genotype.first_activation)] if self.first_node == "enas" else []
        for act, pred in genotype.nodes:
            out += [pred, self.activations.index(act)]
        return out

    def decode(self, choices: Sequence[int]) -> Genotype:
        """The genotype of choice indices ``choices``; raises ``ValueError`` if out of range."""
        choices = [int(c) for c in choices]
        limits = self.token_choices()
        if len(choices) != len(limits):
            raise ValueError(f"DagSpace.decode: expected {len(limits)} choices, received {len(choices)}")
        for p, (c, n) in enumerate(zip(choices, limits)):
            if not 0 <= c < n:
                raise ValueError(f"DagSpace.decode: choice {p} must be in 0..{n - 1}, received {c}")
        first_activation = "tanh"
        if self.first_node == "enas":
            first_activation = self.activations[choices[0]]
            choices = choices[1:]
        nodes = tuple((self.activations[choices[k + 1]], choices[k]) for k in range(0, len(choices), 2))
        return Genotype(nodes, first_node=self.first_node, first_activation=first_activation,
                        output=self.output)

    # `size`, `index`, `at`, `sample` and `sample_unique` come from `SearchSpace`.
