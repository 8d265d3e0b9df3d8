"""Where the data shipped with tfnas lives: the presets and the known genotypes.

In an installed wheel, ``configs/`` and ``exported_cells/`` are package
data inside ``tfnas/`` (`setup.py` maps them there); in a source checkout
(including ``pip install -e``) they are the folders of the repository
beside the package.
"""
from __future__ import annotations

from pathlib import Path

#: The data folders shipped with the package.
RESOURCES = ("configs", "exported_cells")

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The folder ``name`` (one of `RESOURCES`), installed or in the source checkout."""
    if name not in RESOURCES:
        raise ValueError(f"Argument `name` must be one of {list(RESOURCES)}; received: name={name!r}")
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tfnas data folder {name!r} is missing from {_PACKAGE} and {_PACKAGE.parent}: "
                            "reinstall tfnas")
