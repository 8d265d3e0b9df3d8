"""Tree genotypes: the cells of Zoph & Le (ICLR 2017, section 3.2 and appendix A).

A cell is a full binary tree with ``base`` leaves (base 8 in the paper,
``2 * base - 1`` nodes). Nodes are numbered leaves first, then level by
level towards the root (base 8: leaves 0..7, then 8..11, 12..13, root 14);
internal node ``base + k`` reads the two nodes ``2k`` and ``2k + 1``.
Every node picks a combination (``add`` or ``elem_mult``) and an
activation (``identity``, ``tanh``, ``sigmoid``, ``relu``)::

    leaf k:      a_k = act_k(comb_k(x_t W_x^k, h_{t-1} W_h^k [+ b^k]))
    internal k:  a_k = act_k(comb_k(a_left, a_right))

Two more choices wire the memory cell: ``inject_node`` receives
``c_{t-1}`` after its activation, ``a_k <- act_inj(comb_inj(a_k, c_{t-1}))``
(the injected value is what its parent reads), and ``cell_node`` gives
``c_t``, the output of that node *before* its activation (for the inject
node: before activation and injection). The root's output is ``h_t``.

The token sequence follows the order of the paper's controller (Figure 5):
per node its combination then activation, then the inject combination and
activation, then the "cell indices" ``cell_node`` and ``inject_node``.
Tokens are local choice indices: position ``p`` takes values in
``range(tree_token_choices(base)[p])``.

This module is pure Python (no TensorFlow).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from tfnas.genotypes.base import (ATTENTIONS, FORMAT, VERSION, GenotypeError, JsonGenotypeMixin, check_envelope,
                                  check_node_count, field_error)

#: How a tree node combines its two inputs.
COMBINATIONS: tuple[str, ...] = ("add", "elem_mult")
#: Activations of a tree node (Zoph & Le, section 3.2).
TREE_ACTIVATIONS: tuple[str, ...] = ("identity", "tanh", "sigmoid", "relu")
#: Leaves of the tree in the paper's language-model search.
DEFAULT_BASE = 8


def _fail(field_name: str, value: Any, why: str) -> GenotypeError:
    return field_error(field_name, value, why, kind="tree genotype")


def check_base(base: Any) -> int:
    if isinstance(base, bool) or not isinstance(base, int) or base < 2 or base & (base - 1):
        raise _fail("base", base, "must be a power of two >= 2 (the leaves of a full binary tree)")
    check_node_count(2 * base - 1, _fail)
    return base


def tree_children(base: int) -> tuple[tuple[int, int] | None, ...]:
    """``children[k]``: the two nodes internal node ``k`` reads, or None for a leaf."""
    base = check_base(base)
    children: list[tuple[int, int] | None] = [None] * base
    level_start, width = 0, base
    while width > 1:
        nxt = level_start + width
        children += [(level_start + 2 * k, level_start + 2 * k + 1) for k in range(width // 2)]
        level_start, width = nxt, width // 2
    return tuple(children)


def _pair(value: Any, where: str) -> tuple[str, str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise _fail(where, value, "must be a [combination, activation] pair")
    comb, act = value
    if comb not in COMBINATIONS:
        raise _fail(f"{where}.combination", comb, f"must be one of {list(COMBINATIONS)}")
    if act not in TREE_ACTIVATIONS:
        raise _fail(f"{where}.activation", act, f"must be one of {list(TREE_ACTIVATIONS)}")
    return (comb, act)


def _index(value: Any, where: str, n_nodes: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _fail(where, value, "must be an integer node index")
    if not 0 <= int(value) < n_nodes:
        raise _fail(where, value, f"must be a node index in 0..{n_nodes - 1}")
    return int(value)


@dataclass(frozen=True)
class TreeGenotype(JsonGenotypeMixin):
    """An immutable, hashable tree cell (Zoph & Le); see the module docstring.

    Args:
        nodes: ``2 * base - 1`` ``(combination, activation)`` pairs, leaves first.
        inject: ``(combination, activation)`` that merges ``c_{t-1}`` into
            ``inject_node``.
        inject_node: the node that receives ``c_{t-1}``.
        cell_node: the node whose pre-activation output is ``c_t``.
        attention: name of an attention head on top of the RNN, or None.
        provenance: free-form metadata; not part of equality or hashing.

    ``base`` is derived from the number of nodes.
    """

    nodes: tuple[tuple[str, str], ...]
    inject: tuple[str, str] = ("add", "tanh")
    inject_node: int = 0
    cell_node: int = 0
    attention: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        nodes = self.nodes
        if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Iterable):
            raise _fail("nodes", nodes, "must be a list of [combination, activation] pairs")
        nodes = tuple(nodes)
        check_node_count(len(nodes), _fail)
        nodes = tuple(_pair(n, f"nodes[{i}]") for i, n in enumerate(nodes))
        n = len(nodes)
        if n < 3 or (n + 1) & n:
            raise _fail("nodes", n, "must hold 2 * base - 1 nodes for a base that is a power of two >= 2")
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "inject", _pair(self.inject, "inject"))
        object.__setattr__(self, "inject_node", _index(self.inject_node, "inject_node", n))
        object.__setattr__(self, "cell_node", _index(self.cell_node, "cell_node", n))
        if self.attention is not None and self.attention not in ATTENTIONS:
            raise _fail("attention", self.attention, f"must be null or one of {list(ATTENTIONS)}")
        if not isinstance(self.provenance, Mapping):
            raise _fail("provenance", self.provenance, "must be an object")

    # ----------------------------------------------------------------- shape
    @property
    def base(self) -> int:
        """Number of leaves."""
        return (len(self.nodes) + 1) // 2

    @property
    def root(self) -> int:
        return len(self.nodes) - 1

    @property
    def children(self) -> tuple[tuple[int, int] | None, ...]:
        return tree_children(self.base)

    def degenerate(self) -> str | None:
        """Why this cell is degenerate, or None: every combination ``add`` and every activation ``identity``
        (the nodes' and the injection's), so that ``h_t`` and ``c_t`` are linear maps of ``x_t``, ``h_{t-1}`` and
        ``c_{t-1}``: a linear recurrence. Every node of a full binary tree feeds the root, and every leaf reads both
        ``x_t`` and ``h_{t-1}``, so no node goes unused and no cell ignores its input or its state."""
        pairs = (*self.nodes, self.inject)
        if all(comb == "add" and act == "identity" for comb, act in pairs):
            return "every node adds its inputs and is identity: the cell is a linear recurrence"
        return None

    def with_attention(self, attention: str | None) -> "TreeGenotype":
        return replace(self, attention=attention)

    def describe(self) -> list[str]:
        """One line per node (``node 8 = tanh(elem_mult(node 0, node 1))``), then the memory wiring."""
        lines = [f"tree of base {self.base} ({len(self.nodes)} nodes, root {self.root})"]
        for k, ((comb, act), kids) in enumerate(zip(self.nodes, self.children)):
            args = "x W_x, h W_h" if kids is None else f"node {kids[0]}, node {kids[1]}"
            lines.append(f"node {k} = {act}({comb}({args}))")
        lines.append(f"inject c_(t-1) at node {self.inject_node}: {self.inject[1]}({self.inject[0]}(node, c))")
        lines.append(f"c_t = node {self.cell_node} before its activation; h_t = node {self.root}")
        return lines

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON object of this genotype (``"space": "tree"``)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "space": "tree",
            "base": self.base,
            "nodes": [list(n) for n in self.nodes],
            "inject": list(self.inject),
            "inject_node": self.inject_node,
            "cell_node": self.cell_node,
            "attention": self.attention,
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TreeGenotype":
        """Parses a tree genotype object, raising `GenotypeError` naming the field."""
        if isinstance(data, Mapping) and "space" not in data:
            raise _fail("space", None, "a tree genotype has space 'tree'")
        check_envelope(data, "tree", {"format", "version", "space", "base", "nodes", "inject", "inject_node",
                                      "cell_node", "attention", "provenance"})
        for required in ("nodes", "inject", "inject_node", "cell_node"):
            if required not in data:
                raise _fail(required, None, "is required")
        g = cls(nodes=data["nodes"], inject=data["inject"], inject_node=data["inject_node"],
                cell_node=data["cell_node"], attention=data.get("attention"),
                provenance=data.get("provenance") or {})
        if "base" in data and data["base"] != g.base:
            raise _fail("base", data["base"], f"does not match the {len(g.nodes)} nodes (base {g.base})")
        return g

    # ---------------------------------------------------------------- tokens
    def to_tokens(self) -> list[int]:
        """Local choice indices in the controller's order (see the module docstring)."""
        tokens: list[int] = []
        for comb, act in self.nodes:
            tokens += [COMBINATIONS.index(comb), TREE_ACTIVATIONS.index(act)]
        tokens += [COMBINATIONS.index(self.inject[0]), TREE_ACTIVATIONS.index(self.inject[1])]
        return tokens + [self.cell_node, self.inject_node]

    @classmethod
    def from_tokens(cls, tokens: Sequence[int], base: int = DEFAULT_BASE,
                    attention: str | None = None) -> "TreeGenotype":
        """Inverse of `to_tokens`; invalid tokens raise `GenotypeError`."""
        base = check_base(base)
        n = 2 * base - 1
        tokens = [int(t) for t in tokens]
        if len(tokens) != 2 * n + 4:
            raise _fail("tokens", tokens, f"base {base} needs {2 * n + 4} tokens")

        def pair(k: int) -> tuple[str, str]:
            comb, act = tokens[k], tokens[k + 1]
            if not 0 <= comb < len(COMBINATIONS):
                raise _fail("tokens", comb, f"position {k} must be a combination 0..{len(COMBINATIONS) - 1}")
            if not 0 <= act < len(TREE_ACTIVATIONS):
                raise _fail("tokens", act, f"position {k + 1} must be an activation 0..{len(TREE_ACTIVATIONS) - 1}")
            return COMBINATIONS[comb], TREE_ACTIVATIONS[act]

        nodes = tuple(pair(2 * i) for i in range(n))
        return cls(nodes, inject=pair(2 * n), cell_node=tokens[2 * n + 2], inject_node=tokens[2 * n + 3],
                   attention=attention)


def tree_token_choices(base: int = DEFAULT_BASE) -> list[int]:
    """Number of choices at each position of `TreeGenotype.to_tokens`."""
    n = 2 * check_base(base) - 1
    return [len(COMBINATIONS), len(TREE_ACTIVATIONS)] * (n + 1) + [n, n]
