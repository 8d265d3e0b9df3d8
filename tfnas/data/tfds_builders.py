"""tensorflow-datasets builders ``ptb`` and ``wikitext2`` (one ``text`` per line).

tensorflow-datasets is imported, and the builders are defined and registered
with it, only on first use: call :func:`register_builders` or access
``tfnas.data.tfds_builders.Ptb`` / ``.Wikitext2``. ``import tfnas.data`` never
does either.

Usage::

    from tfnas.data.tfds_builders import register_builders
    import tensorflow_datasets as tfds

    register_builders()
    ds = tfds.load("ptb", split="train")          # downloads if needed
    # offline: put the files in <tfds data dir>/downloads/manual/ptb/ (or
    # .../manual/wikitext-2/), or pass
    # download_and_prepare_kwargs={"download_config":
    #     tfds.download.DownloadConfig(manual_dir=...)}

Each example is ``{"text": line}`` where ``line`` is one line of the split file
without its trailing newline, in file order (shuffling is disabled: the lines
are running text); splits are ``train``, ``validation``, ``test``.
Before examples are generated every file, whether found in the manual dir or
downloaded, is verified against :data:`tfnas.data.checksums.CHECKSUMS`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tfnas.data import checksums as _checksums
from tfnas.data.download import CorpusDownloadError, download_corpus
from tfnas.data.locate import CORPUS_FOLDERS, expected_files_hint, find_corpus_files, find_in_data_dir
from tfnas.data.tokens import SPLITS
from tfnas.data.verify import verify_corpus

__all__ = ["register_builders", "verify_corpus", "download_corpus", "BUILDER_NAMES"]

#: Class name -> tfds builder name.
BUILDER_NAMES = {"Ptb": "ptb", "Wikitext2": "wikitext2"}

_CITATIONS = {
    "ptb": """@article{marcus1993building,
  title={Building a large annotated corpus of English: The Penn Treebank},
  author={Marcus, Mitchell P. and Marcinkiewicz, Mary Ann and Santorini, Beatrice},
  journal={Computational Linguistics}, volume={19}, number={2}, pages={313--330}, year={1993}}""",
    "wikitext2": """@article{merity2016pointer,
  title={Pointer Sentinel Mixture Models},
  author={Merity, Stephen and Xiong, Caiming and Bradbury, James and Socher, Richard},
  journal={arXiv preprint arXiv:1609.07843}, year={2016}}""",
}

_DESCRIPTIONS = {
    "ptb": "Penn Treebank, Mikolov's preprocessed word-level version (10k vocabulary).",
    "wikitext2": "WikiText-2 (v1, tokenized), Merity et al. 2016 (33,278-word vocabulary).",
}

_BUILDERS: dict[str, type] | None = None


def _manual_instructions(corpus: str) -> str:
    folders = " or ".join(f"`{f}/`" for f in CORPUS_FOLDERS[corpus])
    return (
        f"Offline: put {expected_files_hint(corpus)} in {folders} under the manual "
        "dir (default `<data_dir>/downloads/manual/`). Online, nothing is needed."
    )


def _find_extracted(root: Path, name: str) -> dict[str, Path] | None:
    """Locate the official split files anywhere under an extracted archive."""
    found: dict[str, Path] = {}
    for split in SPLITS:
        base = _checksums.CHECKSUMS[name][split].official_name
        match = next(iter(sorted(root.rglob(base))), None)
        if match is None:
            return None
        found[split] = match
    return found


def _define_builders() -> dict[str, type]:
    import tensorflow_datasets as tfds  # slow import, deliberately lazy

    class _LineTextBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """One example per line of the train/valid/test files of a corpus."""

        VERSION = tfds.core.Version("1.0.0")
        RELEASE_NOTES = {"1.0.0": "Initial release."}
        corpus: str = ""

        # tfds derives this from the package's resources, which (in 4.9.x) needs
        # the optional `importlib_resources` package; the answer is simply this file.
        @tfds.core.utils.classproperty
        @classmethod
        def code_path(cls) -> Any:
            from etils import epath

            return epath.Path(__file__)

        def _info(self) -> Any:
            return tfds.core.DatasetInfo(
                builder=self,
                description=_DESCRIPTIONS[self.corpus],
                features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
                supervised_keys=None,
                disable_shuffling=True,  # keep the lines in file order (running text)
                homepage=_checksums.SOURCES[self.corpus].homepage,
                citation=_CITATIONS[self.corpus],
            )

        def _manual_files(self, dl_manager: Any) -> dict[str, Path] | None:
            try:
                manual = Path(os.fspath(dl_manager.manual_dir))
            except (AssertionError, ValueError):  # no manual dir, or empty
                return None
            files = find_corpus_files(manual, self.corpus) or find_in_data_dir(manual, self.corpus)
            return None if files is None else files.as_dict()

        def _download_files(self, dl_manager: Any) -> dict[str, Path]:
            source = _checksums.SOURCES[self.corpus]
            errors: list[str] = []
            if source.file_urls:
                for index in range(max(len(u) for u in source.file_urls.values())):
                    urls = {s: source.file_urls[s][min(index, len(source.file_urls[s]) - 1)]
                            for s in SPLITS}
                    try:
                        paths = dl_manager.download(urls)
                        return {s: Path(os.fspath(paths[s])) for s in SPLITS}
                    except Exception as err:  # noqa: BLE001 - network errors vary by backend
                        errors.append(f"{sorted(set(urls.values()))}: {err}")
            for archive in source.archives:
                try:
                    extracted = Path(os.fspath(dl_manager.download_and_extract(archive.url)))
                except Exception as err:  # noqa: BLE001
                    errors.append(f"{archive.url}: {err}")
                    continue
                files = _find_extracted(extracted, self.corpus)
                if files is not None:
                    return files
                errors.append(f"{archive.url}: archive lacks the official split files")
            raise CorpusDownloadError(
                f"could not download the {self.corpus} corpus; tried:\n  "
                + "\n  ".join(errors)
                + "\n"
                + _manual_instructions(self.corpus)
            )

        def _split_generators(self, dl_manager: Any) -> dict[str, Any]:
            files = self._manual_files(dl_manager) or self._download_files(dl_manager)
            for split in SPLITS:
                _checksums.verify_file(files[split], _checksums.CHECKSUMS[self.corpus][split])
            return {
                "train": self._generate_examples(files["train"]),
                "validation": self._generate_examples(files["valid"]),
                "test": self._generate_examples(files["test"]),
            }

        def _generate_examples(self, path: Path) -> Any:
            with open(path, encoding="utf-8") as handle:
                for index, line in enumerate(handle):
                    yield index, {"text": line.rstrip("\n")}

    class Ptb(_LineTextBuilder):
        """Penn Treebank (Mikolov's preprocessed version), one example per line."""

        name = "ptb"
        corpus = "ptb"
        MANUAL_DOWNLOAD_INSTRUCTIONS = _manual_instructions("ptb")

    class Wikitext2(_LineTextBuilder):
        """WikiText-2 v1 (tokenized), one example per line."""

        name = "wikitext2"
        corpus = "wikitext2"
        MANUAL_DOWNLOAD_INSTRUCTIONS = _manual_instructions("wikitext2")

    builders: dict[str, type] = {}
    for cls in (Ptb, Wikitext2):
        cls.__qualname__ = cls.__name__
        builders[cls.name] = cls
    return builders


def register_builders() -> dict[str, type]:
    """Define the builders and register them with tensorflow-datasets (once).

    Returns:
        ``{"ptb": Ptb, "wikitext2": Wikitext2}``.

    Raises:
        ValueError: another builder already uses one of the names.
    """
    global _BUILDERS
    if _BUILDERS is None:
        try:
            _BUILDERS = _define_builders()
        except ValueError as err:
            raise ValueError(
                f"cannot register the tfnas builders {sorted(BUILDER_NAMES.values())} "
                f"with tensorflow-datasets: {err}"
            ) from err
    return dict(_BUILDERS)


def __getattr__(attr: str) -> Any:
    if attr in BUILDER_NAMES:
        return register_builders()[BUILDER_NAMES[attr]]
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
