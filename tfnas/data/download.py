"""Downloading the named corpora with checksum verification (the standard library, and filelock for the lock).

Command line::

    python -m tfnas.data.download ptb [--data-dir DIR] [--force] [--timeout S] [--min-rate B/S]
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

What a download guarantees:

* size: a file announced (``Content-Length``) larger than its official size,
  or an archive larger than its `ArchiveSource.max_size`, is refused before
  its body is read; without a ``Content-Length``, writing stops one byte past
  that size. From an archive only the three split files are extracted, each
  refused when the archive records more bytes for it than the official file
  has and cut off one byte past that size: at most the corpus's own size.
* time: a request silent for ``timeout`` seconds (default `TIMEOUT`), or a
  transfer slower than ``min_rate`` bytes per second over a ``rate_window``
  (defaults `MIN_RATE`, `RATE_WINDOW`), is abandoned with one line naming the
  URL; the bytes are shown as they come meanwhile.
* leftovers: a download works in a ``.tfnas-download-*`` folder inside the
  corpus folder, holding an OS lock (`filelock`) on its ``.lock`` while it
  runs; a process killed outright leaves the folder, and the next download
  into that corpus folder removes it (a folder no process holds, unchanged
  for `STALE_AFTER` seconds), never the folder of a download still running.
* messages: every source tried with why it failed, then what to do about
  it: "retry with internet access" only when a source could not be reached;
  a file that differs from the official one names both SHA-256 (and the
  mirror); a full disk stops at once, naming the folder and the space left.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import math
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence

import filelock

from tfnas.data.checksums import (
    CHECKSUMS,
    SOURCES,
    ChecksumMismatchError,
    CorpusSource,
    FileChecksum,
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
from tfnas.errors import DISK_FULL, TfnasError, access_error
from tfnas.progress import Progress, ProgressTarget
from tfnas.settings import SettingsError

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
#: Most bytes asked of the network, or of an archive member, per read (a read from the network returns what
#: has arrived, so that progress and the rate check see a slow server's every byte).
CHUNK_SIZE = 1 << 16
#: Default seconds a request may stay silent: connecting, or between two pieces of a body (each read's timeout).
TIMEOUT = 60.0
#: Default least average rate of a transfer, in bytes per second, over each `RATE_WINDOW`; a slower one is
#: abandoned (0: no minimum).
MIN_RATE = 10_000.0
#: Default seconds over which the rate of a transfer is measured (windows end to end, from the first byte).
RATE_WINDOW = 30.0
#: Prefix of the temporary folder that a download works in, inside the corpus folder.
WORK_PREFIX = ".tfnas-download-"
#: The file in a work folder on which its download holds an OS lock (`filelock`) while it runs; the OS drops the
#: lock when the process dies, however it dies (SIGKILL included).
WORK_LOCK = ".lock"
#: Seconds for which a work folder whose lock no process holds is left alone after it last changed: the moment
#: between its creation and its lock.
STALE_AFTER = 10.0


class CorpusDownloadError(TfnasError, OSError):
    """No source of a corpus could be downloaded and verified.

    Attributes:
        tried: one ``"<url>: <error>"`` per source tried, in order.
        advice: what to do about what happened (``"retry with internet access"`` only when a source could not
            be reached), or ``""``.
    """

    def __init__(self, message: str, tried: list[str] | None = None, advice: str = "") -> None:
        super().__init__(message)
        self.tried = list(tried or [])
        self.advice = advice

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
        archives=tuple(dict.fromkeys(dataclasses.replace(a, url=rebase(a.url)) for a in source.archives)),
    )


def _copy_capped(read: Callable[[int], bytes], out: BinaryIO, limit: int,
                 advance: Callable[[int], None] | None = None) -> int:
    """Copies what ``read`` gives (until it gives nothing) to ``out``, writing at most ``limit + 1`` bytes.

    Args:
        read: returns up to the number of bytes asked for, ``b""`` at the end.
        out: where the bytes go.
        limit: most bytes expected; one byte more is written to tell "more" from "exactly ``limit``".
        advance: called with the size of each piece written.

    Returns:
        The bytes written: ``limit + 1`` means the source holds more than ``limit`` (the rest is not read).
    """
    done = 0
    while done <= limit and (chunk := read(CHUNK_SIZE)):
        chunk = chunk[: limit + 1 - done]
        out.write(chunk)
        done += len(chunk)
        if advance is not None:
            advance(len(chunk))
    return done


@dataclasses.dataclass(frozen=True)
class _Limits:
    """How slow a download may be (the arguments of `download_corpus` of the same names)."""

    timeout: float
    min_rate: float
    rate_window: float

    def __post_init__(self) -> None:
        for name, ok, bound in (("timeout", self.timeout > 0, "> 0"), ("min_rate", self.min_rate >= 0, ">= 0"),
                                ("rate_window", self.rate_window > 0, "> 0")):
            if not (ok and math.isfinite(getattr(self, name))):
                raise SettingsError(f"{name} must be a finite number {bound}; received: {getattr(self, name)!r}")


class _RateCheck:
    """Abandons a transfer that gets fewer than ``min_rate`` bytes per second over a window of ``rate_window``
    seconds (windows end to end, the first from when the body starts)."""

    def __init__(self, limits: _Limits) -> None:
        self.limits = limits
        self.since = time.monotonic()
        self.done_then = 0

    def __call__(self, done: int) -> None:
        """Checks the window that ends now, ``done`` bytes received in all.

        Raises:
            TimeoutError: the window is over and too few bytes came in it.
        """
        elapsed = time.monotonic() - self.since
        if elapsed < self.limits.rate_window:
            return
        received = done - self.done_then
        if received < self.limits.min_rate * elapsed:
            raise TimeoutError(f"received {received} bytes in {elapsed:.1f} s ({received / elapsed:.1f} B/s), "
                               f"slower than min_rate={self.limits.min_rate:g} B/s; abandoned")
        self.since += elapsed
        self.done_then = done


def _fetch(url: str, dest: Path, limit: int, allowed: str, limits: _Limits, progress: ProgressTarget) -> None:
    """Copies ``url`` to ``dest``, showing the bytes as they come, refusing more than ``limit`` bytes and a
    transfer slower than ``limits``.

    Args:
        allowed: what the limit is, for messages (``"of the official ptb.train.txt"``).

    Raises:
        ChecksumMismatchError: the server announces (``Content-Length``) or sends more than ``limit`` bytes; the
            body is not read, or not past ``limit + 1`` bytes.
        TimeoutError: the server was silent for ``limits.timeout`` seconds, or slower than ``limits.min_rate``.
        OSError: the connection failed or closed before ``Content-Length`` bytes.
    """
    label = f"downloading {Path(urllib.parse.urlparse(url).path).name}"
    with urllib.request.urlopen(url, timeout=limits.timeout) as response:
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        if total is not None and total > limit:
            raise ChecksumMismatchError(f"announces {total} bytes (Content-Length), more than the {limit} bytes "
                                        f"{allowed}; not downloaded")
        check_rate = _RateCheck(limits)
        with open(dest, "wb") as out, Progress.to(progress, label, total, "B") as bar:

            def read(size: int) -> bytes:
                """What has arrived, up to ``size`` bytes (waiting for the first at most ``limits.timeout``)."""
                try:
                    return response.read1(size)
                except TimeoutError as err:
                    raise TimeoutError(f"no byte for {limits.timeout:g} s (timeout) after {bar.done} bytes") from err

            def advance(count: int) -> None:
                bar.advance(count)
                check_rate(bar.done)

            done = _copy_capped(read, out, limit, advance)
        if done > limit:
            raise ChecksumMismatchError(f"sent more than the {limit} bytes {allowed}; stopped after {done} bytes")
        if total is not None and done != total:
            raise OSError(f"connection closed after {done} of {total} bytes")


#: One member of an archive: its name, its size as the archive records it, and how to open it.
_Member = tuple[str, int, Callable[[], "BinaryIO | None"]]


def _members(archive: zipfile.ZipFile | tarfile.TarFile) -> Iterator[_Member]:
    """The regular files of a .zip or tar archive, read one by one (a tar archive no further than asked)."""
    if isinstance(archive, zipfile.ZipFile):
        for info in archive.infolist():
            if not info.is_dir():
                yield info.filename, info.file_size, lambda info=info: archive.open(info)
        return
    for member in archive:
        if member.isfile():
            yield member.name, member.size, lambda member=member: archive.extractfile(member)


def _extract_members(archive: Path, expected: dict[str, FileChecksum], workdir: Path) -> dict[str, Path]:
    """Extracts the split files (found by official base name) from a .zip or .tgz (see `_copy_members`)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return _copy_members(archive, _members(zf), expected, workdir)
    try:
        tf = tarfile.open(archive, mode="r:*")
    except tarfile.ReadError:  # its message lists each compression tried, on lines of their own
        raise ChecksumMismatchError(f"{archive.name} is neither a zip nor a tar archive") from None
    with tf:
        return _copy_members(archive, _members(tf), expected, workdir)


def _copy_members(archive: Path, members: Iterable[_Member], expected: dict[str, FileChecksum],
                  workdir: Path) -> dict[str, Path]:
    """Copies each split's member (the first of its official base name) to ``workdir/<split>.txt`` and verifies
    it against ``expected``.

    A member is refused when the archive records more bytes for it than its official file has, before any of it
    is read, and cut off one byte past that size when it expands to more: what an archive writes is bounded by
    the official sizes. Members after the last split's are not read.

    Raises:
        ChecksumMismatchError: a member is too large, not a regular file, missing, or not the official file.
    """
    wanted = {checksum.official_name: split for split, checksum in expected.items()}
    out: dict[str, Path] = {}
    for name, size, open_member in members:
        split = wanted.pop(Path(name).name, None)
        if split is None:
            continue
        limit, official = expected[split].size, expected[split].official_name
        if size > limit:
            raise ChecksumMismatchError(f"{name} holds {size} bytes, more than the {limit} bytes of the official "
                                        f"{official}; not extracted")
        stream = open_member()
        if stream is None:
            raise ChecksumMismatchError(f"{name} in {archive.name} is not a regular file")
        out[split] = workdir / f"{split}.txt"
        with stream, open(out[split], "wb") as handle:
            done = _copy_capped(stream.read, handle, limit)
        if done > limit:
            raise ChecksumMismatchError(f"{name} expands to more than the {limit} bytes of the official {official}; "
                                        f"stopped after {done} bytes")
        verify_file(out[split], expected[split], label=name)
        if not wanted:
            break
    if wanted:
        raise ChecksumMismatchError(f"archive {archive.name} has no member {', '.join(sorted(wanted))}")
    return out


def _verified(name: str, files: dict[str, Path]) -> None:
    for split in SPLITS:
        verify_file(files[split], CHECKSUMS[name][split])


def download_corpus(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    timeout: float = TIMEOUT,
    min_rate: float = MIN_RATE,
    rate_window: float = RATE_WINDOW,
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
        timeout: seconds a request may stay silent (connecting, or between two
            pieces of a body).
        min_rate: least bytes per second over each ``rate_window`` seconds of a
            transfer; a slower source is abandoned (a server that drips) and
            the next one tried. 0: no minimum.
        rate_window: seconds over which the rate is measured.
        progress: where to show the bytes received (`tfnas.progress.ProgressTarget`).

    Returns:
        The paths of the three files.

    Raises:
        CorpusError: unknown ``name``.
        SettingsError: a limit out of its range.
        PathAccessError: the corpus folder cannot be created.
        CorpusDownloadError: every source failed (e.g. no internet); the
            message lists each URL with its error and how to install the files
            by hand.
    """
    name = canonical_corpus_name(name)
    limits = _Limits(timeout, min_rate, rate_window)
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
        _download_into(name, target, limits, progress)
    except BaseException:
        if created and not any(target.iterdir()):
            target.rmdir()
        raise
    result = find_corpus_files(target, name)
    assert result is not None
    return result


def _clear_stale(target: Path) -> None:
    """Removes the work folders that dead downloads left in ``target``: those whose lock (`WORK_LOCK`) no
    process holds, unchanged for `STALE_AFTER` seconds. A running download's folder is left alone, in this
    process or any other; so is anything that is not a folder (a symbolic link included)."""
    for folder in target.glob(f"{WORK_PREFIX}*"):
        try:
            if folder.is_symlink() or not folder.is_dir() or time.time() - folder.stat().st_mtime < STALE_AFTER:
                continue
            with filelock.FileLock(folder / WORK_LOCK, thread_local=False, blocking=False):
                pass  # taken: no process holds it
        except (filelock.Timeout, OSError):  # held; or gone meanwhile, or unreadable: not ours to remove
            continue
        shutil.rmtree(folder, ignore_errors=True)  # another download may be removing it too


@contextmanager
def _work_folder(target: Path) -> Iterator[Path]:
    """A new folder in ``target`` to download into, locked while the block runs and removed after it; the
    folders of dead downloads there are removed before and after (`_clear_stale`)."""
    _clear_stale(target)
    folder = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=target))
    try:
        with filelock.FileLock(folder / WORK_LOCK, thread_local=False):
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        _clear_stale(target)


class _Failures:
    """The sources of corpus ``name`` that failed, on their way into ``target``, and what to do about them."""

    def __init__(self, name: str, target: Path) -> None:
        self.name, self.target = name, target
        self.tried: list[str] = []
        self.errors: list[BaseException] = []

    def add(self, url: str, err: BaseException) -> None:
        """Records that ``url`` failed with ``err``.

        Raises:
            CorpusDownloadError: ``err`` is a full disk (`tfnas.errors.DISK_FULL`): trying another source would
                not help, since it would meet the same disk.
        """
        if isinstance(err, OSError) and err.errno in DISK_FULL:
            needed = sum(checksum.size for checksum in CHECKSUMS[self.name].values())
            self.tried.append(f"{url}: {err.strerror} writing into {self.target}")
            raise self.error(f"free space on the disk holding {self.target} "
                             f"({shutil.disk_usage(self.target).free / 1e6:.1f} MB free; the {self.name} files take "
                             f"{needed / 1e6:.1f} MB), or download into another folder (--data-dir)") from err
        self.tried.append(f"{url}: {err}")
        self.errors.append(err)

    def advice(self) -> str:
        """What to do, from what went wrong: a file other than the official one, a slow or silent server, a
        source that could not be reached (an HTTP error, which says itself what it is, adds nothing)."""
        base = os.environ.get(BASE_URL_VAR, "").strip().rstrip("/")
        where = f"the mirror {base} ({BASE_URL_VAR})" if base else "the official locations"
        advice = []
        if any(isinstance(err, (ChecksumMismatchError, zipfile.BadZipFile, tarfile.TarError)) for err in self.errors):
            advice.append(f"{where} served files that differ from the official ones")
        if any(isinstance(err, TimeoutError) for err in self.errors):
            advice.append("on a slow connection, download it ahead of time with a longer --timeout or a lower "
                          f"--min-rate (python -m tfnas.data.download {self.name} --min-rate 1000)")
        if any(isinstance(err, (OSError, http.client.HTTPException))
               and not isinstance(err, (TimeoutError, urllib.error.HTTPError)) for err in self.errors):
            advice.append(f"retry when {where} can be reached" if base else "retry with internet access")
        return "; ".join(advice)

    def error(self, advice: str | None = None) -> CorpusDownloadError:
        """The error of a corpus that could not be downloaded (``advice``: default `advice`)."""
        advice = self.advice() if advice is None else advice
        return CorpusDownloadError(
            f"could not download the {self.name} corpus; tried:\n  " + "\n  ".join(self.tried)
            + (f"\n{advice[0].upper()}{advice[1:]}." if advice else "")
            + f"\nTo install it by hand, copy {expected_files_hint(self.name)} into {self.target}/ "
            "(see tfnas.data.locate_corpus for the directories searched).",
            self.tried, advice,
        )


def _download_into(name: str, target: Path, limits: _Limits, progress: ProgressTarget) -> None:
    """Fetch, verify and move the three split files into ``target``."""
    source = corpus_source(name)
    failures = _Failures(name, target)
    with _work_folder(target) as workdir:
        files: dict[str, Path] | None = None
        if source.file_urls:
            files = {}
            for split in SPLITS:
                for url in source.file_urls[split]:
                    dest = workdir / f"{split}.txt"
                    expected = CHECKSUMS[name][split]
                    try:
                        _fetch(url, dest, expected.size, f"of the official {expected.official_name}", limits,
                               progress)
                        verify_file(dest, expected, label="the file served")
                        files[split] = dest
                        break
                    except (OSError, http.client.HTTPException, ChecksumMismatchError) as err:
                        failures.add(url, err)
                if split not in files:
                    files = None
                    break
        if files is None:
            for archive in source.archives:
                path = workdir / Path(archive.url).name
                try:
                    _fetch(archive.url, path, archive.max_size, f"allowed for {path.name}", limits, progress)
                    served = sha256_file(path) if archive.sha256 is not None else None
                    if served != archive.sha256:
                        raise ChecksumMismatchError(f"the archive served has SHA-256 {served}, expected "
                                                    f"{archive.sha256}")
                    files = _extract_members(path, CHECKSUMS[name], workdir)
                    break
                except (OSError, http.client.HTTPException, ChecksumMismatchError, zipfile.BadZipFile,
                        tarfile.TarError) as err:
                    failures.add(archive.url, err)
                    files = None
        if files is None:
            raise failures.error()
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
            why = f"downloading it failed ({'; '.join(failed.tried)})"
            why += f": {failed.advice}" if failed.advice else ""
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
    parser.add_argument("--timeout", type=float, default=TIMEOUT,
                        help=f"seconds a request may stay silent (default {TIMEOUT:g})")
    parser.add_argument("--min-rate", type=float, default=MIN_RATE,
                        help=f"least bytes per second over each {RATE_WINDOW:g} s of a transfer; a slower source "
                        f"is abandoned (default {MIN_RATE:g}; 0: no minimum)")
    args = parser.parse_args(argv)
    try:
        files = download_corpus(args.name, args.data_dir, force=args.force, timeout=args.timeout,
                                min_rate=args.min_rate, progress=True)
    except TfnasError as err:
        parser.exit(1, f"error: {err}\n")
    print(f"{canonical_corpus_name(args.name)}: {files.directory}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
