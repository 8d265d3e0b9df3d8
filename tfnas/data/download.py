"""Downloading the named corpora with checksum verification (standard library only).

Command line::

    python -m tfnas.data.download ptb [--data-dir DIR] [--force]
    python -m tfnas.data.download wikitext2 [--data-dir DIR]

Files end up as ``DIR/ptb/{train,valid,test}.txt`` or
``DIR/wikitext-2/{train,valid,test}.txt``; without ``--data-dir`` ``DIR`` is
``$TFNAS_DATA`` or else the tensorflow-datasets manual dir
(``~/tensorflow_datasets/downloads/manual``), both searched by
:func:`tfnas.data.locate_corpus`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

from tfnas.data.checksums import (
    CHECKSUMS,
    SOURCES,
    ChecksumMismatchError,
    sha256_file,
    verify_file,
)
from tfnas.data.locate import (
    CORPUS_FOLDERS,
    CorpusFiles,
    canonical_corpus_name,
    default_download_dir,
    expected_files_hint,
    find_corpus_files,
)
from tfnas.data.tokens import SPLITS

__all__ = ["CorpusDownloadError", "download_corpus", "main"]


class CorpusDownloadError(OSError):
    """No source of a corpus could be downloaded and verified."""

    def __str__(self) -> str:
        return self.args[0]


def _fetch(url: str, dest: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def _copy_stream(stream: BinaryIO | None, dest: Path) -> None:
    if stream is None:
        raise ChecksumMismatchError(f"archive member for {dest.name} is not a regular file")
    with stream, open(dest, "wb") as out:
        shutil.copyfileobj(stream, out, length=1 << 20)


def _extract_members(archive: Path, official: dict[str, str], workdir: Path) -> dict[str, Path]:
    """Extract the split files (found by official base name) from a .zip or .tgz."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            openers = {Path(n).name: (lambda n=n: zf.open(n)) for n in zf.namelist() if not n.endswith("/")}
            return _copy_members(archive, openers, official, workdir)
    with tarfile.open(archive, mode="r:*") as tf:
        openers = {Path(m.name).name: (lambda m=m: tf.extractfile(m)) for m in tf.getmembers() if m.isfile()}
        return _copy_members(archive, openers, official, workdir)


def _copy_members(archive: Path, openers: dict[str, Callable[[], BinaryIO | None]], official: dict[str, str],
                  workdir: Path) -> dict[str, Path]:
    """Copies each split's member (``openers`` by base name) to ``workdir/<split>.txt``."""
    out: dict[str, Path] = {}
    for split, base in official.items():
        if base not in openers:
            raise ChecksumMismatchError(f"archive {archive.name} has no member {base}")
        out[split] = workdir / f"{split}.txt"
        _copy_stream(openers[base](), out[split])
    return out


def _verified(name: str, files: dict[str, Path]) -> None:
    for split in SPLITS:
        verify_file(files[split], CHECKSUMS[name][split])


def download_corpus(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    timeout: float = 60.0,
) -> CorpusFiles:
    """Download corpus ``name`` and place verified ``train/valid/test.txt`` under
    ``data_dir/<folder>/`` (``ptb/`` or ``wikitext-2/``).

    Every file is checked against :data:`tfnas.data.checksums.CHECKSUMS`
    before it is moved into place. Sources are tried in order: the plain file
    mirrors, then the archives (PTB: Mikolov's ``simple-examples.tgz``;
    WikiText-2: the official ``wikitext-2-v1.zip`` and its mirror).

    Args:
        name: ``ptb`` or ``wikitext2`` (alias ``wikitext-2``).
        data_dir: target data dir; default ``$TFNAS_DATA``, else the
            tensorflow-datasets manual dir.
        force: download again even if a verified copy is already there.
        timeout: socket timeout in seconds for each request.

    Returns:
        The paths of the three files.

    Raises:
        ValueError: unknown ``name``.
        CorpusDownloadError: every source failed (e.g. no internet); the
            message lists each URL with its error and how to install the files
            by hand.
    """
    name = canonical_corpus_name(name)
    root = default_download_dir(data_dir)
    target = root / CORPUS_FOLDERS[name][0]
    existing = find_corpus_files(target, name)
    if existing is not None and not force:
        try:
            _verified(name, existing.as_dict())
            return existing
        except (ChecksumMismatchError, FileNotFoundError):
            pass  # replace the bad copy below
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        _download_into(name, target, timeout)
    except BaseException:
        if created and not any(target.iterdir()):
            target.rmdir()
        raise
    result = find_corpus_files(target, name)
    assert result is not None
    return result


def _download_into(name: str, target: Path, timeout: float) -> None:
    """Fetch, verify and move the three split files into ``target``."""
    source = SOURCES[name]
    errors: list[str] = []
    official = {split: CHECKSUMS[name][split].official_name for split in SPLITS}
    with tempfile.TemporaryDirectory(prefix=".tfnas-download-", dir=target) as tmp:
        workdir = Path(tmp)
        files: dict[str, Path] | None = None
        if source.file_urls:
            files = {}
            for split in SPLITS:
                for url in source.file_urls[split]:
                    dest = workdir / f"{split}.txt"
                    try:
                        _fetch(url, dest, timeout)
                        verify_file(dest, CHECKSUMS[name][split])
                        files[split] = dest
                        break
                    except (OSError, ChecksumMismatchError) as err:
                        errors.append(f"{url}: {err}")
                if split not in files:
                    files = None
                    break
        if files is None:
            for archive in source.archives:
                path = workdir / Path(archive.url).name
                try:
                    _fetch(archive.url, path, timeout)
                    if archive.sha256 is not None and sha256_file(path) != archive.sha256:
                        raise ChecksumMismatchError(
                            f"archive SHA-256 {sha256_file(path)} != expected {archive.sha256}"
                        )
                    files = _extract_members(path, official, workdir)
                    _verified(name, files)
                    break
                except (OSError, ChecksumMismatchError, zipfile.BadZipFile, tarfile.TarError) as err:
                    errors.append(f"{archive.url}: {err}")
                    files = None
        if files is None:
            raise CorpusDownloadError(
                f"could not download the {name} corpus; tried:\n  "
                + "\n  ".join(errors)
                + f"\nWithout internet access, copy {expected_files_hint(name)} into {target}/ "
                "by hand (see tfnas.data.locate_corpus for the directories searched)."
            )
        for split in SPLITS:
            os.replace(files[split], target / f"{split}.txt")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m tfnas.data.download NAME [--data-dir DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m tfnas.data.download",
        description="Download and verify a language-modelling corpus for tfnas.",
    )
    parser.add_argument("name", help="ptb or wikitext2 (alias wikitext-2)")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data dir to put <name>/train.txt etc. in (default: $TFNAS_DATA, "
        "else ~/tensorflow_datasets/downloads/manual)",
    )
    parser.add_argument("--force", action="store_true", help="download even if present")
    args = parser.parse_args(argv)
    try:
        files = download_corpus(args.name, args.data_dir, force=args.force)
    except (ValueError, CorpusDownloadError) as err:
        parser.exit(1, f"error: {err}\n")
    print(f"{canonical_corpus_name(args.name)}: {files.directory}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
