"""Reading genotypes: files of any space, and the known cells shipped in ``exported_cells/``.

`resolve_genotype` is the one way a genotype is read: a JSON path, a run or
search folder (its ``genotype.json``), or the name of a known cell
(``darts_v2``, ``nascell``). The object's ``"space"``
field picks the class (`Genotype` for ``dag``, `TreeGenotype` for
``tree``). Pure Python (no TensorFlow).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from tfnas.errors import PathNotFoundError
from tfnas.genotypes.base import GenotypeError, parse_json
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.tree import TreeGenotype
from tfnas.resources import resource_dir

#: The genotype of a run or search folder: the cell a training trained, or a search found.
FOLDER_GENOTYPE = "genotype.json"
#: A genotype of either space.
AnyGenotype = Genotype | TreeGenotype
G = TypeVar("G", Genotype, TreeGenotype)


def known_cells_dir() -> Path:
    """Folder of the known and discovered genotypes (``exported_cells/``, shipped as package data)."""
    return resource_dir("exported_cells")


def genotype_from_dict(data: Mapping[str, Any]) -> AnyGenotype:
    """A `Genotype` or a `TreeGenotype`, by the object's ``"space"`` field (default ``dag``)."""
    if isinstance(data, Mapping) and data.get("space") == "tree":
        return TreeGenotype.from_dict(data)
    return Genotype.from_dict(data)


def as_any_genotype(genotype: AnyGenotype | Mapping[str, Any]) -> AnyGenotype:
    """Accepts either genotype class or its JSON dict (as stored in a layer config)."""
    if isinstance(genotype, (Genotype, TreeGenotype)):
        return genotype
    if isinstance(genotype, Mapping):
        return genotype_from_dict(genotype)
    raise ValueError(f"Argument `genotype` must be a genotype or its dict; received: {genotype!r}")


def read_genotype_file(path: str | Path, parse: Callable[[Any], Any]) -> Any:
    """Reads a genotype JSON file and parses its object; errors name the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PathNotFoundError(f"genotype file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise GenotypeError(f"{path}: cannot read genotype file: {err}") from None
    try:
        return parse(parse_json(text))
    except GenotypeError as err:
        raise GenotypeError(f"{path}: {err}") from None


def load_genotype(path: str | Path) -> AnyGenotype:
    """Reads a genotype JSON file of any space; errors name the file and the problem."""
    return read_genotype_file(path, genotype_from_dict)


def known_cells() -> list[str]:
    """Names of the genotypes shipped in ``exported_cells/``: ``darts_v2``, and ``discovered/<name>`` for the
    cells of a sub-folder (those `tfnas.compare` ships)."""
    root = known_cells_dir()
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.json"))


def find_genotype_file(name_or_path: str | Path) -> Path:
    """A JSON path as given, the ``genotype.json`` of a folder (a run or search folder: the cell it trained or
    found), or the file of a known cell name (``darts_v2``)."""
    path = Path(name_or_path)
    if path.is_dir():
        if (path / FOLDER_GENOTYPE).is_file():
            return path / FOLDER_GENOTYPE
        raise GenotypeError(f"{path} is a folder without {FOLDER_GENOTYPE}: give a genotype JSON file or a known "
                            f"cell's name (a run, search or comparison folder's results: tfnas results {path})")
    if path.exists() or path.suffix == ".json":
        return path
    known = known_cells_dir() / f"{name_or_path}.json"
    if known.exists():
        return known
    raise PathNotFoundError(f"genotype {str(name_or_path)!r} is neither a file nor a known cell; "
                            f"known cells: {known_cells()}")


def resolve_genotype(name_or_path: str | Path) -> AnyGenotype:
    """A genotype of any space from a JSON path, a run or search folder (its ``genotype.json``) or a known cell name
    (``darts_v2``, ``nascell``)."""
    return load_genotype(find_genotype_file(name_or_path))


def as_genotype_of(kind: type[G], genotype: G | Mapping[str, Any] | str | Path) -> G:
    """A genotype of class ``kind`` from itself, its JSON dict (as stored in a layer config), a JSON path or a
    known cell's name (`resolve_genotype`); anything else, a genotype of the other space included, is a
    `GenotypeError` (a `ValueError`) naming the argument."""
    if isinstance(genotype, (str, Path)):
        value = resolve_genotype(genotype)
    elif isinstance(genotype, Mapping):
        value = kind.from_dict(genotype)
    else:
        value = genotype
    if not isinstance(value, kind):
        raise GenotypeError(f"Argument `genotype` must be a {kind.__name__}, its dict, a JSON path or a known "
                            f"cell's name; received: {genotype!r}" +
                            (f" (a {type(value).__name__})" if value is not genotype else ""))
    return value
