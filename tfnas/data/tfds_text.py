"""The text of a tensorflow-datasets dataset, for a corpus named ``tfds:NAME`` (``dataset: tfds:lm1b``).

``NAME`` is what ``tfds.builder`` takes (``name``, ``name/config``,
``name:version``); tfnas' own ``ptb`` and ``wikitext2`` builders
(`tfnas.data.tfds_builders`) are registered first. Each example's
``text_feature`` (a `tfds.features.Text`, or a string tensor) is one piece
of text; the pieces of a split are joined by line breaks in dataset order,
so each example is at least one line (``<eos>`` after it).

The splits are ``train``, ``validation`` (or ``valid``, ``dev``) and
``test``; a dataset with a ``train`` split only is split by lines with
`tfnas.data.CorpusOptions.split_ratios`. tensorflow-datasets and
TensorFlow are imported only here, when such a corpus is loaded.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tfnas.data.errors import CorpusError
from tfnas.errors import MissingDependencyError

__all__ = ["PREFIX", "is_tfds_name", "tfds_texts"]

#: What starts the name of a tensorflow-datasets corpus.
PREFIX = "tfds:"
#: The split names of tensorflow-datasets that stand for each tfnas split, in the order they are looked for.
TFDS_SPLITS = {"train": ("train",), "valid": ("validation", "valid", "dev"), "test": ("test",)}


def is_tfds_name(name_or_path: Any) -> bool:
    """Whether ``name_or_path`` names a tensorflow-datasets corpus (a string starting with ``tfds:``)."""
    return isinstance(name_or_path, str) and name_or_path.startswith(PREFIX)


def _builder(name: str, data_dir: str | os.PathLike[str] | None, download: bool) -> Any:
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise MissingDependencyError(f"dataset {PREFIX}{name} needs tensorflow-datasets: "
                                     "pip install tensorflow-datasets") from None
    from tfnas.data.tfds_builders import register_builders

    register_builders()
    where = None if data_dir is None else os.fspath(Path(data_dir).expanduser())
    try:
        builder = tfds.builder(name, data_dir=where)
    except Exception as err:  # noqa: BLE001 - tfds raises its own DatasetNotFoundError, or ValueError on syntax
        raise CorpusError(f"dataset {PREFIX}{name}: tensorflow-datasets has no such dataset "
                          f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if not builder.is_prepared():
        if not download:
            raise CorpusError(f"dataset {PREFIX}{name} is not prepared in {builder.data_dir} and download is off "
                              "(--download, or prepare it with tensorflow-datasets)")
        builder.download_and_prepare()
    return builder


def _split_text(builder: Any, name: str, split: str, feature: str) -> str:
    import tensorflow_datasets as tfds

    features = builder.info.features
    if feature not in features:
        raise CorpusError(f"dataset {PREFIX}{name} has no feature {feature!r} (text_feature); its features: "
                          f"{', '.join(sorted(features))}")
    pieces = []
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
        value = example[feature]
        if not isinstance(value, bytes):
            raise CorpusError(f"dataset {PREFIX}{name}: feature {feature!r} is not text (text_feature)")
        try:
            pieces.append(value.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise CorpusError(f"dataset {PREFIX}{name}, split {split}: feature {feature!r} is not valid UTF-8 "
                              f"(byte {err.start})") from None
    return "\n".join(pieces) + "\n" if pieces else ""


def tfds_texts(name_or_spec: str, data_dir: str | os.PathLike[str] | None, feature: str,
               download: bool = True) -> dict[str, str] | str:
    """The text of each split of dataset ``name_or_spec`` (``tfds:NAME`` or ``NAME``), ``{"train": ...,
    "valid": ..., "test": ...}``; the text of the train split alone when the dataset has no other split.

    Args:
        name_or_spec: the dataset.
        data_dir: the tensorflow-datasets data dir (None: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        feature: the text feature of an example.
        download: prepare the dataset (download it) when it is not prepared yet.

    Raises:
        CorpusError: no such dataset, not prepared with ``download`` off, no such feature, a feature that is not
            text, or splits that are not train, valid and test or train alone (one line naming the dataset).
        MissingDependencyError: tensorflow-datasets is not installed.
    """
    name = name_or_spec[len(PREFIX):] if is_tfds_name(name_or_spec) else name_or_spec
    builder = _builder(name, data_dir, download)
    available = set(builder.info.splits)
    chosen = {split: next((s for s in names if s in available), None) for split, names in TFDS_SPLITS.items()}
    if chosen["train"] is not None and chosen["valid"] is None and chosen["test"] is None:
        return _split_text(builder, name, chosen["train"], feature)
    missing = [split for split, found in chosen.items() if found is None]
    if missing:
        raise CorpusError(f"dataset {PREFIX}{name} has splits {', '.join(sorted(available))}: it needs train, "
                          "validation and test, or train alone (split by split_ratios)")
    return {split: _split_text(builder, name, found, feature) for split, found in chosen.items()}
