"""What every genotype shares: the versioned JSON envelope, errors and JSON round trip.

A genotype file is a JSON object with ``"format": "tfnas-genotype"``, a
``"version"`` and a ``"space"`` (``dag`` or ``tree``); `check_envelope`
validates those and rejects unknown fields by name, and
`JsonGenotypeMixin` gives any genotype class with ``to_dict``/``from_dict``
its JSON text and file round trip. Pure Python (no TensorFlow).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from tfnas.errors import TfnasError, shown, writing

FORMAT = "tfnas-genotype"
VERSION = 1

#: Attention heads on top of the recurrent layer (NASABN); ``None`` is no head.
ATTENTIONS: tuple[str, ...] = ("dot", "general", "additive", "multihead")
#: Every head `tfnas.cells.attention.make_attention` knows, and a model's ``attention`` setting takes: ``"none"`` (the
#: identity; a search candidate only when listed, as it is not one of NASABN's) and the genotype's heads.
ATTENTION_HEADS: tuple[str, ...] = ("none",) + ATTENTIONS
#: The most nodes a genotype (a DAG's nodes after node 0, a tree's nodes) may hold: ten times the papers'
#: largest cells (NAO, ENAS: 12 DAG nodes; Zoph & Le: 15 tree nodes). Building a cell takes time and memory
#: that grow with its nodes (a 2-step run on 2 CPU cores: 15 s for a 128-node chain, over 4 min for 10,000 nodes).
MAX_NODES = 128


class GenotypeError(TfnasError, ValueError):
    """A genotype is malformed; the message names the field and the value."""


def field_error(field_name: str, value: Any, why: str, kind: str = "genotype") -> GenotypeError:
    """The error for one bad field of a ``kind``: names the field (quoted as Python does, so a name with a
    newline stays on one line), says why, shows the value (cut short, `tfnas.errors.shown`)."""
    return GenotypeError(f"{kind} field {str(field_name)!r}: {why} (got {shown(value)})")


def check_node_count(count: int, fail: Callable[[str, Any, str], Exception]) -> None:
    """Refuses a genotype of more than `MAX_NODES` nodes (``fail(field, value, why)`` makes the error)."""
    if count > MAX_NODES:
        raise fail("nodes", count, f"holds {count} nodes; tfnas builds cells of at most {MAX_NODES} nodes "
                                   f"(MAX_NODES)")


def check_envelope(data: Any, space: str, known: set[str]) -> None:
    """Checks what every genotype object shares: a mapping, format, version, space, known fields."""
    if not isinstance(data, Mapping):
        raise field_error("<root>", type(data).__name__, "must be a JSON object")
    if data.get("format", FORMAT) != FORMAT:
        raise field_error("format", data.get("format"), f"must be '{FORMAT}'")
    version = data.get("version", VERSION)
    if type(version) is not int or version != VERSION:  # true and 1.0 equal 1 in Python
        raise field_error("version", version, f"this tfnas reads version {VERSION}")
    if data.get("space", "dag") != space:
        raise field_error("space", data.get("space"), f"a {space} genotype has space '{space}'")
    unknown = sorted(set(data) - known)
    if unknown:
        raise field_error(unknown[0], data[unknown[0]], f"unknown field; known fields are {sorted(known)}")


class _LongInteger(Exception):
    """An integer of the JSON text that Python refuses to convert (``digits``: its text)."""

    def __init__(self, digits: str):
        super().__init__(digits)
        self.digits = digits


def _read_int(digits: str) -> int:
    """A JSON integer; `_LongInteger` for one of more digits than Python converts (4,300 by default)."""
    try:
        return int(digits)
    except ValueError:
        raise _LongInteger(digits) from None


def parse_json(text: str) -> Any:
    """The JSON value in ``text``; a `GenotypeError` (one line) if it is not JSON, nests too deeply or holds an
    integer longer than Python converts (its line and column named)."""
    try:
        return json.loads(text, parse_int=_read_int)
    except json.JSONDecodeError as err:
        raise GenotypeError(f"genotype is not valid JSON: {err}") from None
    except RecursionError:
        raise GenotypeError("genotype is not valid JSON: nested too deeply") from None
    except _LongInteger as err:
        at = text.find(err.digits)
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        raise GenotypeError(f"genotype JSON holds an integer of {len(err.digits.lstrip('-'))} digits (line {line}, "
                            f"column {column}); Python reads at most {sys.get_int_max_str_digits()}") from None


class JsonGenotypeMixin:
    """JSON text and files for a genotype class with ``to_dict`` / ``from_dict``."""

    def to_json(self) -> str:
        """Readable JSON: one line per node, the other fields indented."""
        data = self.to_dict()
        nodes = ",\n    ".join(json.dumps(node) for node in data.pop("nodes"))
        rest = json.dumps(data, indent=2)
        return '{\n  "nodes": [\n    ' + nodes + "\n  ]," + rest[1:]

    @classmethod
    def from_json(cls, text: str):
        """Parses JSON text; errors are `GenotypeError`."""
        return cls.from_dict(parse_json(text))

    def save(self, path: str | Path) -> Path:
        """Writes the JSON to ``path`` (parents created); a write that fails raises
        `tfnas.errors.PathAccessError` naming ``path``."""
        path = Path(path)
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path
