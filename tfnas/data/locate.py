"""Finding the files of the named corpora (``ptb``, ``wikitext2``) on disk.

Data directories are searched in this order:

1. the ``data_dir`` argument (the CLI's ``--data-dir``);
2. the environment variable ``TFNAS_DATA`` (several directories may be given,
   separated by ``os.pathsep``);
3. the tensorflow-datasets manual-download directory
   ``<tfds data dir>/downloads/manual/``, where ``<tfds data dir>`` is
   ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``. This is the directory the
   :mod:`tfnas.data.tfds_builders` read offline copies from, and where
   :func:`tfnas.data.download_corpus` puts files when given no directory.

:func:`tfnas.data.load_corpus` downloads a named corpus found nowhere into
the first of these (:func:`default_download_dir`), unless told not to
(``download=False``, ``--no-download``, ``$TFNAS_NO_DOWNLOAD``).

Inside a data directory ``D`` a corpus is looked for in these folders, the first
complete one winning:

* ``ptb``: ``D/ptb/``, ``D/penn/``, ``D/simple-examples/data/`` (Mikolov's
  archive unpacked), and ``D/`` itself;
* ``wikitext2``: ``D/wikitext-2/``, ``D/wikitext2/``.

A folder is complete when it holds the three splits, each named either
``train.txt`` / ``valid.txt`` / ``test.txt`` or by its official name
(``ptb.train.txt`` ..., ``wiki.train.tokens`` ...). A folder of one's own
text (`find_corpus_files` without a corpus name) may also name them with
the other usual names (`SPLIT_NAMES`: ``validation`` or ``dev`` for valid)
and the extension ``.txt`` or ``.tokens``; the first name found in the
order of `split_file_names` wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tfnas.data.checksums import CHECKSUMS
from tfnas.data.errors import CorpusError
from tfnas.data.tokens import SPLITS
from tfnas.errors import TfnasError

__all__ = [
    "ENV_VAR",
    "CORPUS_NAMES",
    "CORPUS_FOLDERS",
    "CorpusFiles",
    "CorpusNotFoundError",
    "canonical_corpus_name",
    "tfds_data_dir",
    "tfds_manual_dir",
    "data_dir_candidates",
    "default_download_dir",
    "corpus_folders",
    "find_corpus_files",
    "find_in_data_dir",
    "locate_corpus",
    "expected_files_hint",
    "SPLIT_NAMES",
    "SPLIT_EXTENSIONS",
    "split_file_names",
]

#: Environment variable naming the data directory (or ``os.pathsep``-separated list).
ENV_VAR = "TFNAS_DATA"

#: Accepted corpus names (lower-cased) -> canonical name.
CORPUS_NAMES: dict[str, str] = {"ptb": "ptb", "wikitext2": "wikitext2", "wikitext-2": "wikitext2"}

#: Canonical name -> folder names accepted inside a data dir (the first is the
#: one files are downloaded to).
CORPUS_FOLDERS: dict[str, tuple[str, ...]] = {
    "ptb": ("ptb", "penn", "simple-examples/data"),
    "wikitext2": ("wikitext-2", "wikitext2"),
}

#: The names a split's file may have in a folder of one's own text, in the order they are looked for.
SPLIT_NAMES: dict[str, tuple[str, ...]] = {"train": ("train",), "valid": ("valid", "validation", "dev"),
                                           "test": ("test",)}
#: The extensions of those files, in the order they are looked for.
SPLIT_EXTENSIONS = (".txt", ".tokens")

# Corpora whose files may sit directly in the data dir.
_ROOT_ALLOWED = frozenset({"ptb"})


@dataclass(frozen=True)
class CorpusFiles:
    """Paths of the three split files of one corpus."""

    name: str
    train: Path
    valid: Path
    test: Path

    @property
    def directory(self) -> Path:
        """Folder holding the training file."""
        return self.train.parent

    def as_dict(self) -> dict[str, Path]:
        """``{"train": ..., "valid": ..., "test": ...}``."""
        return {split: getattr(self, split) for split in SPLITS}


class CorpusNotFoundError(TfnasError, FileNotFoundError):
    """A named corpus was not found in any data directory.

    Attributes:
        corpus: canonical corpus name.
        searched: every folder that was looked into, in order.
        places: the data dirs in search order, one entry each, e.g.
            ``"2. $TFNAS_DATA: not set"``.
    """

    def __init__(self, message: str, *, corpus: str, searched: list[Path], places: list[str] | None = None) -> None:
        super().__init__(message)
        self.corpus = corpus
        self.searched = list(searched)
        self.places = list(places or [])

    def __str__(self) -> str:  # OSError would otherwise format its args
        return self.args[0]


def canonical_corpus_name(name: str) -> str:
    """Canonical name (``ptb`` or ``wikitext2``) of a corpus name or alias.

    Raises:
        CorpusError: ``name`` is not a known corpus name.
    """
    key = str(name).strip().lower()
    if key not in CORPUS_NAMES:
        raise CorpusError(
            f"unknown corpus name={name!r}; expected one of {sorted(CORPUS_NAMES)} "
            "or a path to a folder with train.txt, valid.txt and test.txt"
        )
    return CORPUS_NAMES[key]


def tfds_data_dir() -> Path:
    """The tensorflow-datasets data dir: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``.

    Computed like tensorflow-datasets does, without importing it.
    """
    value = os.environ.get("TFDS_DATA_DIR")
    if value:
        return Path(value).expanduser()
    return Path(os.path.expanduser("~")) / "tensorflow_datasets"


def tfds_manual_dir() -> Path:
    """The tensorflow-datasets manual-download dir, ``<tfds data dir>/downloads/manual``."""
    return tfds_data_dir() / "downloads" / "manual"


def _env_dirs() -> list[Path]:
    value = os.environ.get(ENV_VAR, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def data_dir_candidates(data_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, Path]]:
    """Data directories to search, in order, each with a label saying where it comes from."""
    candidates: list[tuple[str, Path]] = []
    if data_dir is not None:
        candidates.append(("data_dir argument (--data-dir)", Path(data_dir).expanduser()))
    for path in _env_dirs():
        candidates.append((f"${ENV_VAR}", path))
    candidates.append(
        ("tensorflow-datasets manual dir ($TFDS_DATA_DIR or ~/tensorflow_datasets)", tfds_manual_dir())
    )
    return candidates


def default_download_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Data dir that downloads go to: ``data_dir``, else the first ``$TFNAS_DATA`` entry,
    else the tensorflow-datasets manual dir."""
    return data_dir_candidates(data_dir)[0][1]


def corpus_folders(data_dir: str | os.PathLike[str], name: str) -> list[Path]:
    """Folders of ``data_dir`` that may hold corpus ``name``, in search order."""
    name = canonical_corpus_name(name)
    data_dir = Path(data_dir)
    folders = [data_dir / folder for folder in CORPUS_FOLDERS[name]]
    if name in _ROOT_ALLOWED:
        folders.append(data_dir)
    return folders


def _official_names(name: str) -> dict[str, str]:
    return {split: info.official_name for split, info in CHECKSUMS[name].items()}


def split_file_names(split: str, name: str | None = None) -> list[str]:
    """The file names ``split`` may have in a corpus folder, in the order they are looked for:
    ``<split>.txt``, the official names (of corpus ``name``, or of every known corpus when ``name`` is None),
    then, without ``name``, every `SPLIT_NAMES` entry with every `SPLIT_EXTENSIONS` extension."""
    names = [canonical_corpus_name(name)] if name is not None else list(CHECKSUMS)
    options = [f"{split}.txt"] + [_official_names(n)[split] for n in names]
    if name is None:
        options += [f"{base}{ext}" for base in SPLIT_NAMES[split] for ext in SPLIT_EXTENSIONS
                    if f"{base}{ext}" not in options]
    return options


def find_corpus_files(directory: str | os.PathLike[str], name: str | None = None) -> CorpusFiles | None:
    """The three split files in ``directory`` itself, or ``None`` if one is missing.

    Each split may have the names of `split_file_names` (the first found wins).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    label = canonical_corpus_name(name) if name is not None else directory.name
    chosen: dict[str, Path] = {}
    for split in SPLITS:
        found = next((directory / f for f in split_file_names(split, name) if (directory / f).is_file()), None)
        if found is None:
            return None
        chosen[split] = found
    return CorpusFiles(label, chosen["train"], chosen["valid"], chosen["test"])


def find_in_data_dir(data_dir: str | os.PathLike[str], name: str) -> CorpusFiles | None:
    """Corpus ``name`` in one data dir (see the module docstring), or ``None``."""
    for folder in corpus_folders(data_dir, name):
        files = find_corpus_files(folder, name)
        if files is not None:
            return files
    return None


def expected_files_hint(name: str) -> str:
    """Human-readable list of the file names a corpus folder must hold."""
    name = canonical_corpus_name(name)
    official = ", ".join(_official_names(name)[s] for s in SPLITS)
    return f"train.txt, valid.txt and test.txt (or the official {official})"


def locate_corpus(name: str, data_dir: str | os.PathLike[str] | None = None) -> CorpusFiles:
    """Find the split files of corpus ``name`` (``ptb``, ``wikitext2``/``wikitext-2``).

    Searches ``data_dir``, then ``$TFNAS_DATA``, then the tensorflow-datasets
    manual dir; the first data dir holding a complete copy wins.

    Raises:
        CorpusError: ``name`` is not a known corpus name.
        CorpusNotFoundError: no complete copy was found; the message lists
            every folder searched and where to put which files.
    """
    name = canonical_corpus_name(name)
    searched: list[Path] = []
    places: list[str] = []
    candidates: list[tuple[str, Path | None]] = list(data_dir_candidates(data_dir))
    if not _env_dirs():  # say so explicitly, at its place in the order
        candidates.insert(len(candidates) - 1, (f"${ENV_VAR}", None))
    for number, (label, root) in enumerate(candidates, start=1):
        if root is None:
            places.append(f"{number}. {label}: not set")
            continue
        if not root.is_dir():
            places.append(f"{number}. {label}: {root} (directory does not exist)")
            searched.append(root)
            continue
        folders = corpus_folders(root, name)
        files = find_in_data_dir(root, name)
        if files is not None:
            return files
        searched.extend(folders)
        places.append(f"{number}. {label}: " + ", ".join(str(f) for f in folders))
    target = default_download_dir(data_dir) / CORPUS_FOLDERS[name][0]
    message = (
        f"Could not find the {name} corpus. Searched, in order:\n  "
        + "\n  ".join(places)
        + f"\nTo fix this, put {expected_files_hint(name)} in {target}/"
        + f" (or in <dir>/{CORPUS_FOLDERS[name][0]}/ and pass --data-dir <dir>"
        + f" or set {ENV_VAR}=<dir>).\n"
        + "With internet access tfnas can download and verify them:\n"
        + f"  python -m tfnas.data.download {name}"
        + (f" --data-dir {data_dir}" if data_dir is not None else "")
        + "\n"
        + f"  or in Python: tfnas.data.download_corpus({name!r}, data_dir=...)\n"
        + "  or through tensorflow-datasets: tfnas.data.tfds_builders.register_builders(); "
        + f"tfds.load({name!r})"
    )
    raise CorpusNotFoundError(message, corpus=name, searched=searched, places=places)
