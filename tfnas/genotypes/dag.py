"""DAG genotypes (DARTS, ENAS, WeNet, BayesNAS, NAO): the data that describes a discovered cell.

A DAG genotype follows DARTS (Liu et al., ICLR 2019, section 2.1 and
appendix A.1.2): node 0 mixes the input ``x_t`` with ``h_{t-1}``; every
later node ``i`` reads one predecessor ``s_j`` (``j < i``) and applies a
highway edge with activation ``act_i``::

    [c_i, h~_i] = s_j W_i,   c_i = sigmoid(.),  h~_i = act_i(.)
    s_i = s_j + c_i * (h~_i - s_j)

The output (and the next hidden state) is the mean of the nodes named by the
output rule: all nodes ``1..N`` (``"mean"``, DARTS and WeNet) or the nodes
that no other node reads (``"loose_ends"``, ENAS).

Pure Python (no TensorFlow), so that strategies, controllers and the
command line can reason about genotypes cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from tfnas.genotypes.base import (ATTENTIONS, FORMAT, VERSION, JsonGenotypeMixin, check_envelope, check_node_count,
                                  field_error)

#: Activations a frozen node may use (the DARTS primitives without ``none``).
ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "sigmoid", "identity")
#: How node 0 is computed (see ``tfnas.cells.GenotypeCell``).
FIRST_NODES: tuple[str, ...] = ("darts", "wenet", "enas")
#: Which nodes are averaged into the output.
OUTPUT_RULES: tuple[str, ...] = ("mean", "loose_ends")


@dataclass(frozen=True)
class Genotype(JsonGenotypeMixin):
    """An immutable, hashable DAG cell description.

    Args:
        nodes: one ``(activation, predecessor)`` pair per node ``1..N``;
            node ``i`` (1-based) must read a predecessor in ``0..i-1``.
        first_node: ``"darts"`` (``[c, h~] = [x, h_prev] W0``),
            ``"wenet"`` (``c = sigmoid(x Wx)``, ``h~ = tanh(h_prev Wh)``) or
            ``"enas"`` (as darts, with ``first_activation`` instead of tanh).
        first_activation: activation of node 0's candidate; must be
            ``"tanh"`` unless ``first_node == "enas"``.
        output: ``"mean"`` (nodes 1..N) or ``"loose_ends"``.
        attention: name of the attention head on top of the RNN, or None.
        provenance: free-form metadata (paper, reported perplexity, run);
            not part of equality or hashing.
    """

    nodes: tuple[tuple[str, int], ...]
    first_node: str = "darts"
    first_activation: str = "tanh"
    output: str = "mean"
    attention: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _validate_nodes(self.nodes))
        if self.first_node not in FIRST_NODES:
            raise field_error("first_node", self.first_node, f"must be one of {list(FIRST_NODES)}")
        if self.first_activation not in ACTIVATIONS:
            raise field_error("first_activation", self.first_activation, f"must be one of {list(ACTIVATIONS)}")
        if self.first_node != "enas" and self.first_activation != "tanh":
            raise field_error(
                "first_activation", self.first_activation,
                f"only first_node 'enas' chooses node 0's activation; '{self.first_node}' uses 'tanh'",
            )
        if self.output not in OUTPUT_RULES:
            raise field_error("output", self.output, f"must be one of {list(OUTPUT_RULES)}")
        if self.attention is not None and self.attention not in ATTENTIONS:
            raise field_error("attention", self.attention, f"must be null or one of {list(ATTENTIONS)}")
        if not isinstance(self.provenance, Mapping):
            raise field_error("provenance", self.provenance, "must be an object")

    # ----------------------------------------------------------------- shape
    @property
    def steps(self) -> int:
        """Number of nodes after node 0."""
        return len(self.nodes)

    @property
    def concat(self) -> tuple[int, ...]:
        """Indices of the nodes averaged into the output (0 is node 0)."""
        if self.output == "mean":
            return tuple(range(1, self.steps + 1))
        used = {pred for _, pred in self.nodes}
        return tuple(i for i in range(1, self.steps + 1) if i not in used)

    def degenerate(self) -> str | None:
        """Why this cell is degenerate, or None: every node 1..N ``identity``.

        Each node is then the gated linear map ``s_j + c * (s_j W_h - s_j)`` of
        its predecessor, so nothing past node 0's tanh and the gates is
        nonlinear: the cell a DARTS search collapses to when it favours the
        op that needs least learning (NASABN section IV-D; the published DARTS
        cells have one identity node each). No other DAG cell is degenerate in
        the ways one might look for: every node reaches the output (``"mean"``
        averages them all; under ``"loose_ends"`` a node that another reads
        leads through readers of ever higher index to a node nobody reads, which
        the output averages), and every node 0 reads both ``x_t`` and ``h_{t-1}``.
        """
        if all(act == "identity" for act, _ in self.nodes):
            return f"every node is identity: nodes 1..{self.steps} are gated linear maps of node 0"
        return None

    def with_attention(self, attention: str | None) -> "Genotype":
        """A copy with another attention choice."""
        return replace(self, attention=attention)

    def describe(self) -> list[str]:
        """The first node, one line per node (``node 3: relu(1)``: node 3 applies relu to an edge from node 1),
        then the output rule."""
        lines = [f"first node: {self.first_node} ({self.first_activation})"]
        lines += [f"node {i}: {act}({pred})" for i, (act, pred) in enumerate(self.nodes, start=1)]
        lines.append(f"output: {self.output} of nodes {list(self.concat)}")
        return lines

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON object of this genotype."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "space": "dag",
            "nodes": [[act, pred] for act, pred in self.nodes],
            "first_node": self.first_node,
            "first_activation": self.first_activation,
            "output": self.output,
            "attention": self.attention,
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Genotype":
        """Parses a genotype object, raising `GenotypeError` on any problem."""
        check_envelope(data, "dag", {"format", "version", "space", "nodes", "first_node", "first_activation",
                                     "output", "attention", "provenance"})
        if "nodes" not in data:
            raise field_error("nodes", None, "is required")
        return cls(
            nodes=data["nodes"],
            first_node=data.get("first_node", "darts"),
            first_activation=data.get("first_activation", "tanh"),
            output=data.get("output", "mean"),
            attention=data.get("attention"),
            provenance=data.get("provenance") or {},
        )

    # ---------------------------------------------------------------- tokens
    def to_tokens(self) -> list[int]:
        """Token encoding for controllers and NAO.

        Node ``i`` becomes two tokens: its predecessor ``j`` as
        ``len(ACTIVATIONS) + j`` and its activation as its index in
        `ACTIVATIONS`. With ``first_node == "enas"`` node 0's activation comes
        first. One shared vocabulary of size ``token_vocab_size(steps)``.
        """
        tokens = [ACTIVATIONS.index(self.first_activation)] if self.first_node == "enas" else []
        for act, pred in self.nodes:
            tokens += [len(ACTIVATIONS) + pred, ACTIVATIONS.index(act)]
        return tokens

    @classmethod
    def from_tokens(cls, tokens: Sequence[int], first_node: str = "darts",
                    output: str = "mean", attention: str | None = None) -> "Genotype":
        """Inverse of `to_tokens`; invalid tokens raise `GenotypeError`."""
        tokens = [int(t) for t in tokens]
        first_activation = "tanh"
        if first_node == "enas":
            if not tokens:
                raise field_error("tokens", tokens, "empty")
            first_activation = _token_activation(tokens[0], 0)
            tokens = tokens[1:]
        if len(tokens) % 2:
            raise field_error("tokens", tokens, "need an even number of (predecessor, activation) tokens")
        nodes = []
        for k in range(0, len(tokens), 2):
            pred = tokens[k] - len(ACTIVATIONS)
            if pred < 0:
                raise field_error("tokens", tokens[k], f"position {k} must be a predecessor token")
            nodes.append((_token_activation(tokens[k + 1], k + 1), pred))
        return cls(tuple(nodes), first_node=first_node, first_activation=first_activation,
                   output=output, attention=attention)


def token_vocab_size(steps: int) -> int:
    """Size of the token vocabulary of genotypes with ``steps`` nodes."""
    return len(ACTIVATIONS) + steps


def _token_activation(token: int, position: int) -> str:
    if not 0 <= token < len(ACTIVATIONS):
        raise field_error("tokens", token, f"position {position} must be an activation token 0..{len(ACTIVATIONS) - 1}")
    return ACTIVATIONS[token]


def _validate_nodes(nodes: Any) -> tuple[tuple[str, int], ...]:
    if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Iterable):
        raise field_error("nodes", nodes, "must be a list of [activation, predecessor] pairs")
    nodes = list(nodes)
    if not nodes:
        raise field_error("nodes", nodes, "needs at least one node")
    check_node_count(len(nodes), field_error)
    out = []
    for i, node in enumerate(nodes, start=1):
        if isinstance(node, (str, bytes)) or not isinstance(node, Sequence) or len(node) != 2:
            raise field_error(f"nodes[{i - 1}]", node, "must be an [activation, predecessor] pair")
        act, pred = node
        if act not in ACTIVATIONS:
            raise field_error(f"nodes[{i - 1}].activation", act, f"must be one of {list(ACTIVATIONS)}")
        if isinstance(pred, bool) or not isinstance(pred, int):
            raise field_error(f"nodes[{i - 1}].predecessor", pred, "must be an integer")
        if not 0 <= pred < i:
            raise field_error(f"nodes[{i - 1}].predecessor", pred, f"node {i} can only read nodes 0..{i - 1}")
        out.append((act, pred))
    return tuple(out)
