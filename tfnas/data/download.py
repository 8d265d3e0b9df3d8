"""Downloading the named corpora with checksum verification (standard library only).

Command line::

    python -m tfnas.data.download ptb [--data-dir DIR] [--force]
    python -m tfnas.data.download wikitext2 [--data-dir DIR]

Files end up as ``DIR/ptb/{train,valid,test}.txt`` or
``DIR/wikitext-2/{train,valid,test}.txt``; without ``--data-dir`` ``DIR`` is
``$TFNAS_DATA`` or else the tensorflow-datasets manual dir
(``~/tensorflow_datasets/downloads/manual``), both searched by
:func:`tfnas.data.locate_corpus`.

:func:`locate_or_download` is what :func:`tfnas.data.load_corpus` does with
a named corpus: find it, else download it there (unless ``download=False``
or ``$TFNAS_NO_DOWNLOAD`` is set). ``$TFNAS_DOWNLOAD_BASE_URL`` replaces
every official location by a folder URL holding the same files under their
official names (a local mirror, or a test server).
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

from tfnas.data.checksums import (
    CHECKSUMS,
    SOURCES,
    ArchiveSource,
    ChecksumMismatchError,
    CorpusSource,
    sha256_file,
    verify_file,
)
from tfnas.data.locate import (
    CORPUS_FOLDERS,
    CorpusFiles,
    CorpusNotFoundError,
    canonical_corpus_name,
    default_download_dir,
    expected_files_hint,
    find_corpus_files,
    locate_corpus,
)
from tfnas.data.tokens import SPLITS
from tfnas.errors import TfnasError, access_error
from tfnas.progress import Progress, ProgressTarget

__all__ = [
    "BASE_URL_VAR",
    "NO_DOWNLOAD_VAR",
    "CorpusDownloadError",
    "corpus_source",
    "download_corpus",
    "download_disabled",
    "locate_or_download",
    "main",
]

#: Environment variable: a folder URL that replaces every official location;
#: it holds the files under their official names (``ptb.train.txt``,
#: ``simple-examples.tgz``, ``wikitext-2-v1.zip`` ...).
BASE_URL_VAR = "TFNAS_DOWNLOAD_BASE_URL"
#: Environment variable: set (to anything but ``0``/``false``/``no``), named corpora are never downloaded.
NO_DOWNLOAD_VAR = "TFNAS_NO_DOWNLOAD"


class CorpusDownloadError(TfnasError, OSError):
    """No source of a corpus could be downloaded and verified.

    Attributes:
        tried: one ``"<url>: <error>"`` per source tried, in order.
    """

    def __init__(self, message: str, tried: list[str] | None = None) -> None:
        super().__init__(message)
        self.tried = list(tried or [])

    def __str__(self) -> str:
        return self.args[0]


def download_disabled() -> bool:
    """Whether ``$TFNAS_NO_DOWNLOAD`` turns downloads on first use off."""
    return os.environ.get(NO_DOWNLOAD_VAR, "").strip().lower() not in ("", "0", "false", "no")


def corpus_source(name: str) -> CorpusSource:
    """Where corpus ``name`` is downloaded from: :data:`SOURCES`, every URL
    moved under ``$TFNAS_DOWNLOAD_BASE_URL`` when that is set."""
    source = SOURCES[canonical_corpus_name(name)]
    base = os.environ.get(BASE_URL_VAR, "").strip().rstrip("/")
    if not base:
        return source

    def rebase(url: str) -> str:
        return f"{base}/{url.rsplit('/', 1)[-1]}"

    return dataclasses.replace(
        source,
        file_urls={split: tuple(dict.fromkeys(map(rebase, urls))) for split, urls in source.file_urls.items()},
        archives=tuple(dict.fromkeys(ArchiveSource(rebase(a.url), a.sha256) for a in source.archives)),
    )


def _fetch(url: str, dest: Path, timeout: float, progress: ProgressTarget) -> None:
    """Copies ``url`` to ``dest``, showing the bytes received.

    Raises:
        OSError: the connection failed or closed before ``Content-Length`` bytes.
    """
    label = f"downloading {Path(urllib.parse.urlparse(url).path).name}"
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        with Progress.to(progress, label, total, "B") as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.advance(len(chunk))
        if total is not None and bar.done != total:
            raise OSError(f"connection closed after {bar.done} of {total} bytes")


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
    progress: ProgressTarget = False,
) -> CorpusFiles:
    """Download corpus ``name`` and place verified ``train/valid/test.txt`` under
    ``data_dir/<folder>/`` (``ptb/`` or ``wikitext-2/``).

    Every file is checked against :data:`tfnas.data.checksums.CHECKSUMS`
    before it is moved into place. Sources are tried in order
    (:func:`corpus_source`): the plain file mirrors, then the archives (PTB:
    Mikolov's ``simple-examples.tgz``; WikiText-2: the official
    ``wikitext-2-v1.zip`` and its mirror).

    Args:
        name: ``ptb`` or ``wikitext2`` (alias ``wikitext-2``).
        data_dir: target data dir; default ``$TFNAS_DATA``, else the
            tensorflow-datasets manual dir.
        force: download again even if a verified copy is already there.
        timeout: socket timeout in seconds for each request.
        progress: where to show the bytes received (`tfnas.progress.ProgressTarget`).

    Returns:
        The paths of the three files.

    Raises:
        CorpusError: unknown ``name``.
        PathAccessError: the corpus folder cannot be created.
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
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise access_error("create the corpus folder", target, err) from err
    try:
        _download_into(name, target, timeout, progress)
    except BaseException:
        if created and not any(target.iterdir()):
            target.rmdir()
        raise
    result = find_corpus_files(target, name)
    assert result is not None
    return result


def _download_into(name: str, target: Path, timeout: float, progress: ProgressTarget) -> None:
    """Fetch, verify and move the three split files into ``target``."""
    source = corpus_source(name)
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
                        _fetch(url, dest, timeout, progress)
                        verify_file(dest, CHECKSUMS[name][split])
                        files[split] = dest
                        break
                    except (OSError, http.client.HTTPException, ChecksumMismatchError) as err:
                        errors.append(f"{url}: {err}")
                if split not in files:
                    files = None
                    break
        if files is None:
            for archive in source.archives:
                path = workdir / Path(archive.url).name
                try:
                    _fetch(archive.url, path, timeout, progress)
                    if archive.sha256 is not None and sha256_file(path) != archive.sha256:
                        raise ChecksumMismatchError(
                            f"archive SHA-256 {sha256_file(path)} != expected {archive.sha256}"
                        )
                    files = _extract_members(path, official, workdir)
                    _verified(name, files)
                    break
                except (OSError, http.client.HTTPException, ChecksumMismatchError, zipfile.BadZipFile,
                        tarfile.TarError) as err:
                    errors.append(f"{archive.url}: {err}")
                    files = None
        if files is None:
            raise CorpusDownloadError(
                f"could not download the {name} corpus; tried:\n  "
                + "\n  ".join(errors)
                + f"\nWithout internet access, copy {expected_files_hint(name)} into {target}/ "
                "by hand (see tfnas.data.locate_corpus for the directories searched).",
                errors,
            )
        for split in SPLITS:
            os.replace(files[split], target / f"{split}.txt")


def locate_or_download(
    name: str, data_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> CorpusFiles:
    """The files of corpus ``name``: found by :func:`tfnas.data.locate_corpus`, else
    downloaded (with a progress bar on stderr) to where that search finds them.

    Args:
        name: ``ptb`` or ``wikitext2`` (alias ``wikitext-2``).
        data_dir: data dir searched first, and the one downloaded to.
        download: download when the corpus is found nowhere (also off when
            ``$TFNAS_NO_DOWNLOAD`` is set).

    Raises:
        CorpusError: unknown ``name``.
        CorpusNotFoundError: not found, and downloading is off or failed; one
            line naming the folders searched and the URLs tried (or how to
            turn downloading on).
    """
    try:
        return locate_corpus(name, data_dir)
    except CorpusNotFoundError as err:
        missing = err
    name = missing.corpus
    off: list[str] = []  # what turned downloading off
    on: list[str] = []  # what turns it on
    if not download:
        off.append("--no-download, download=False")
        on.append("--download")
    if download_disabled():
        off.append(f"{NO_DOWNLOAD_VAR}={os.environ[NO_DOWNLOAD_VAR]}")
        on.append(f"unset {NO_DOWNLOAD_VAR}")
    if off:
        why = f"downloading it is off ({'; '.join(off)}): {' and '.join(on)} to download it"
    else:
        try:
            return download_corpus(name, data_dir, progress=True)
        except CorpusDownloadError as failed:
            why = f"downloading it failed ({'; '.join(failed.tried)}): retry with internet access"
    target = default_download_dir(data_dir) / CORPUS_FOLDERS[name][0]
    message = (f"the {name} corpus is in none of the folders searched ({'; '.join(missing.places)}) and {why}, "
               f"or put {expected_files_hint(name)} in {target}/")
    raise CorpusNotFoundError(" ".join(message.splitlines()), corpus=name, searched=missing.searched,
                              places=missing.places) from None


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
        files = download_corpus(args.name, args.data_dir, force=args.force, progress=True)
    except TfnasError as err:
        parser.exit(1, f"error: {err}\n")
    print(f"{canonical_corpus_name(args.name)}: {files.directory}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
