"""A named corpus found nowhere is downloaded on first use, from a real HTTP server on 127.0.0.1.

The server serves small archives in the layout of the official ones
(``simple-examples.tgz``, ``wikitext-2-v1.zip``); ``$TFNAS_DOWNLOAD_BASE_URL``
points tfnas at it and the checksums of the small files replace the real ones.
The same server also crafts the replies that a download must survive (issue
26 items 13-15): bodies larger than the official files, compression bombs, a
server that drips, and the folder a killed download leaves.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from tfnas import cli
from tfnas.data import (
    CHECKSUMS,
    SOURCES,
    CorpusDownloadError,
    CorpusNotFoundError,
    clear_corpus_cache,
    download_corpus,
    load_corpus,
    locate_corpus,
)
from tfnas.data import download as download_module
from tfnas.data.checksums import ArchiveSource, CorpusSource, FileChecksum, count_tokens

TEXTS = {"train": "the cat sat\non the mat\n", "valid": "the mat\n", "test": "the cat\n"}
OFFICIAL = {"ptb": "ptb.{}.txt", "wikitext2": "wiki.{}.tokens"}
ARCHIVES = {"ptb": "simple-examples.tgz", "wikitext2": "wikitext-2-v1.zip"}
FOLDERS = {"ptb": "ptb", "wikitext2": "wikitext-2"}
#: The repository, whose ``tfnas`` another interpreter started there imports.
REPOSITORY = Path(__file__).resolve().parents[1]


class Server:
    """Serves ``files`` (name -> bytes) at ``url``; ``requests`` lists every path asked for.

    Crafted replies: names in ``truncated`` announce their length, send half and hang up; ``zeros`` (name ->
    count) serves that many zero bytes made on the fly (a large body held nowhere); names in ``unannounced`` send
    no ``Content-Length`` (the body ends when the connection closes); ``drip`` (name -> seconds) sends one byte
    per that many seconds. ``completed`` holds the names whose whole body was sent.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.zeros: dict[str, int] = {}
        self.truncated: set[str] = set()
        self.unannounced: set[str] = set()
        self.drip: dict[str, float] = {}
        self.requests: list[str] = []
        self.completed: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                server.requests.append(name)
                if name not in server.files and name not in server.zeros:
                    self.send_error(404)
                    return
                size = len(server.files[name]) if name in server.files else server.zeros[name]
                self.send_response(200)
                if name not in server.unannounced:
                    self.send_header("Content-Length", str(size))
                self.end_headers()
                self.close_connection = True
                step = 1 if name in server.drip else 1 << 16
                end = size // 2 if name in server.truncated else size
                try:
                    for start in range(0, end, step):
                        stop = min(start + step, end)
                        chunk = server.files[name][start:stop] if name in server.files else bytes(stop - start)
                        self.wfile.write(chunk)
                        if name in server.drip:
                            self.wfile.flush()
                            time.sleep(server.drip[name])
                except OSError:  # the client hung up
                    return
                server.completed.add(name)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user data dirs, downloads on; returns the tensorflow-datasets manual dir (where downloads go)."""
    monkeypatch.delenv("TFNAS_DATA", raising=False)
    monkeypatch.delenv("TFNAS_NO_DOWNLOAD", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    clear_corpus_cache()
    return tmp_path / "tfds" / "downloads" / "manual"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    served = Server()
    thread = threading.Thread(target=served.httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TFNAS_DOWNLOAD_BASE_URL", served.url)
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


def archive(name: str, texts: dict[str, str | bytes]) -> bytes:
    """The corpus in the layout of its official archive (compressed: gzip, deflate)."""
    out = io.BytesIO()
    contents = {split: text.encode() if isinstance(text, str) else text for split, text in texts.items()}
    if name == "ptb":
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            for split, content in contents.items():
                info = tarfile.TarInfo(f"./simple-examples/data/{OFFICIAL[name].format(split)}")
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    else:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for split, content in contents.items():
                zf.writestr(f"wikitext-2/{OFFICIAL[name].format(split)}", content)
    return out.getvalue()


def record_checksums(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    """The checksums of `TEXTS` replace the real ones of corpus ``name``."""
    table = {}
    for split, text in TEXTS.items():
        path = tmp_path / f"checksum-{split}.txt"
        path.write_text(text, encoding="utf-8")
        table[split] = FileChecksum(OFFICIAL[name].format(split), len(text.encode()), count_tokens(path),
                                    hashlib.sha256(text.encode()).hexdigest())
    monkeypatch.setitem(CHECKSUMS, name, table)


def one_line(err: BaseException) -> str:
    message = str(err)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", ["ptb", "wikitext2"])
def test_first_use_downloads_verifies_and_places_the_corpus(name, server, isolated, tmp_path, monkeypatch,
                                                            capsys) -> None:
    record_checksums(monkeypatch, tmp_path, name)
    server.files[ARCHIVES[name]] = archive(name, TEXTS)
    corpus = load_corpus(name)
    assert corpus.vocab.words[:3] == ("the", "cat", "sat") and corpus.test.size == 3
    assert ARCHIVES[name] in server.requests
    assert f"downloading {ARCHIVES[name]}: " in capsys.readouterr().err  # the progress lines
    files = locate_corpus(name)                                          # where the search finds it
    assert files.directory == isolated / FOLDERS[name]
    assert sorted(p.name for p in files.directory.iterdir()) == ["test.txt", "train.txt", "valid.txt"]
    asked = len(server.requests)
    clear_corpus_cache()
    assert load_corpus(name).vocab.words == corpus.vocab.words
    assert len(server.requests) == asked                                 # the second load asks nothing


def test_first_use_downloads_into_the_data_dir(server, tmp_path, monkeypatch) -> None:
    record_checksums(monkeypatch, tmp_path, "wikitext2")
    server.files[ARCHIVES["wikitext2"]] = archive("wikitext2", TEXTS)
    corpus = load_corpus("wikitext-2", data_dir=tmp_path / "data")
    assert corpus.files.directory == tmp_path / "data" / "wikitext-2"
    assert server.requests == ["wikitext-2-v1.zip"]  # the official archive and its mirror: one base URL, one file


def test_a_file_that_fails_its_checksum_is_not_kept(server, tmp_path, monkeypatch) -> None:
    record_checksums(monkeypatch, tmp_path, "ptb")
    server.files[ARCHIVES["ptb"]] = archive("ptb", {**TEXTS, "valid": "the cat\n"})
    with pytest.raises(CorpusNotFoundError) as info:
        load_corpus("ptb", data_dir=tmp_path / "data")
    message = one_line(info.value)
    assert f"{server.url}/simple-examples.tgz: " in message and "official ptb.valid.txt" in message
    assert not (tmp_path / "data" / "ptb").exists()


def test_server_down_names_the_urls_and_the_folders_searched(tmp_path, isolated, monkeypatch) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("TFNAS_DOWNLOAD_BASE_URL", f"http://127.0.0.1:{port}/")
    with pytest.raises(CorpusNotFoundError) as info:
        load_corpus("ptb", data_dir=tmp_path / "data")
    message = one_line(info.value)
    assert isinstance(info.value, OSError)
    for url in ("ptb.train.txt", "simple-examples.tgz"):
        assert f"http://127.0.0.1:{port}/{url}: " in message
    assert str(tmp_path / "data") in message and str(isolated) in message and "2. $TFNAS_DATA: not set" in message
    assert "put train.txt, valid.txt and test.txt (or the official ptb.train.txt" in message
    assert f"): retry when the mirror http://127.0.0.1:{port} (TFNAS_DOWNLOAD_BASE_URL) can be reached, or put" \
        in message
    assert not (tmp_path / "data" / "ptb").exists()


def test_an_interrupted_download_leaves_no_partial_file(server, tmp_path, monkeypatch) -> None:
    record_checksums(monkeypatch, tmp_path, "wikitext2")
    server.files[ARCHIVES["wikitext2"]] = archive("wikitext2", TEXTS)
    server.truncated.add(ARCHIVES["wikitext2"])
    with pytest.raises(CorpusNotFoundError) as info:
        load_corpus("wikitext2", data_dir=tmp_path / "data")
    assert f"{server.url}/wikitext-2-v1.zip: " in one_line(info.value)
    assert not [p for p in (tmp_path / "data").rglob("*")]  # no partial archive, no temporary folder
    with pytest.raises(CorpusNotFoundError):
        locate_corpus("wikitext2", data_dir=tmp_path / "data")


def test_download_off_makes_no_request_and_says_how_to_turn_it_on(server, tmp_path, monkeypatch) -> None:
    server.files[ARCHIVES["ptb"]] = archive("ptb", TEXTS)
    with pytest.raises(CorpusNotFoundError) as info:
        load_corpus("ptb", data_dir=tmp_path / "data", download=False)
    message = one_line(info.value)
    assert "downloading it is off (--no-download, download=False): --download to download it" in message
    assert str(tmp_path / "data" / "ptb") in message
    monkeypatch.setenv("TFNAS_NO_DOWNLOAD", "1")
    with pytest.raises(CorpusNotFoundError, match="off \\(TFNAS_NO_DOWNLOAD=1\\): unset TFNAS_NO_DOWNLOAD"):
        load_corpus("ptb", data_dir=tmp_path / "data")
    assert server.requests == []


def test_cli_no_download_exits_2_with_one_line(server, tmp_path, capsys) -> None:
    argv = ["train", "--genotype", "lstm", "--out", str(tmp_path / "run"), "--dataset", "ptb",
            "--data-dir", str(tmp_path / "data"), "--no-download"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tfnas: error: the ptb corpus is in none of the folders searched")
    assert "--no-download" in err[0]
    assert server.requests == []


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "no-content-length"])
def test_a_file_larger_than_the_official_one_is_refused_without_being_written(announced, server, tmp_path,
                                                                              monkeypatch) -> None:
    """Issue 26 item 13: a 50 MB ptb.train.txt where 23 bytes are expected is refused at its Content-Length,
    before any byte of its body is read; without a Content-Length, writing stops one byte past the 23."""
    record_checksums(monkeypatch, tmp_path, "ptb")
    server.zeros["ptb.train.txt"] = 50 << 20
    if not announced:
        server.unannounced.add("ptb.train.txt")
    size = len(TEXTS["train"].encode())
    with pytest.raises(CorpusDownloadError) as info:
        download_corpus("ptb", tmp_path / "data")
    first = info.value.tried[0]
    if announced:
        assert first == (f"{server.url}/ptb.train.txt: announces 52428800 bytes (Content-Length), more than the "
                         f"{size} bytes of the official ptb.train.txt; not downloaded")
    else:
        assert first == (f"{server.url}/ptb.train.txt: sent more than the {size} bytes of the official ptb.train.txt; "
                         f"stopped after {size + 1} bytes")
    assert "ptb.train.txt" not in server.completed  # the client hung up long before the 50 MB
    assert not (tmp_path / "data" / "ptb").exists()


def test_an_archive_larger_than_its_cap_is_refused_at_its_content_length(server, tmp_path, monkeypatch) -> None:
    """Issue 26 item 13: an archive has a cap on its size too (`ArchiveSource.max_size`)."""
    record_checksums(monkeypatch, tmp_path, "ptb")
    monkeypatch.setitem(SOURCES, "ptb", CorpusSource(archives=(ArchiveSource("https://x/simple-examples.tgz",
                                                                             max_size=4096),)))
    server.zeros["simple-examples.tgz"] = 50 << 20
    with pytest.raises(CorpusDownloadError) as info:
        download_corpus("ptb", tmp_path / "data")
    assert info.value.tried == [f"{server.url}/simple-examples.tgz: announces 52428800 bytes (Content-Length), more "
                                "than the 4096 bytes allowed for simple-examples.tgz; not downloaded"]
    assert "simple-examples.tgz" not in server.completed


@pytest.mark.parametrize("name", ["ptb", "wikitext2"])
def test_a_compression_bomb_is_not_extracted(name, server, tmp_path, monkeypatch) -> None:
    """Issue 26 item 13: a small archive whose training member expands to 20 MB (23 bytes expected) is refused
    from the member's size, before anything of it is written."""
    record_checksums(monkeypatch, tmp_path, name)
    bomb = archive(name, {**TEXTS, "train": bytes(20 << 20)})
    assert len(bomb) < 100_000
    server.files[ARCHIVES[name]] = bomb
    with pytest.raises(CorpusDownloadError) as info:
        download_corpus(name, tmp_path / "data")
    member = {"ptb": "./simple-examples/data/ptb.train.txt", "wikitext2": "wikitext-2/wiki.train.tokens"}[name]
    size = len(TEXTS["train"].encode())
    assert info.value.tried[-1] == (f"{server.url}/{ARCHIVES[name]}: {member} holds 20971520 bytes, more than the "
                                    f"{size} bytes of the official {OFFICIAL[name].format('train')}; not extracted")
    assert not (tmp_path / "data" / FOLDERS[name]).exists()


def test_a_dripping_server_is_abandoned_with_progress_meanwhile(server, tmp_path, monkeypatch) -> None:
    """Issue 26 item 14: a server sending 1 byte per 0.2 s is abandoned once a rate window (1 s here) has seen
    fewer than min_rate bytes per second; progress shows each byte as it comes, then the error is one line."""
    record_checksums(monkeypatch, tmp_path, "ptb")
    server.files["ptb.train.txt"] = TEXTS["train"].encode()  # 23 bytes: 4.6 s of drip
    server.drip["ptb.train.txt"] = 0.2
    log = io.StringIO()
    started = time.monotonic()
    with pytest.raises(CorpusDownloadError) as info:
        download_corpus("ptb", tmp_path / "data", min_rate=100, rate_window=1.0, progress=log)
    assert time.monotonic() - started < 4.0
    first = info.value.tried[0]
    assert re.fullmatch(rf"{re.escape(server.url)}/ptb\.train\.txt: received [1-9] bytes in [12]\.[0-9] s "
                        r"\([1-9]\.[0-9] B/s\), slower than min_rate=100 B/s; abandoned", first), first
    lines = log.getvalue().splitlines()
    assert lines[0] == "downloading ptb.train.txt: 1/23 B (4%)"  # written when the first byte came
    assert re.fullmatch(r"downloading ptb\.train\.txt: [1-9]/23 B \(\d+%\) in [12]\.[0-9] s", lines[1]), lines
    assert "ptb.train.txt" not in server.completed


def test_a_killed_download_s_folder_is_cleared_by_the_next_one_and_a_live_one_s_kept(server, tmp_path,
                                                                                     monkeypatch) -> None:
    """Issue 26 item 15: a download SIGKILLed in the middle leaves its ``.tfnas-download-*`` folder; the next
    download into that corpus folder removes it, and not the folder of a download still running there."""
    record_checksums(monkeypatch, tmp_path, "ptb")
    for split, text in TEXTS.items():
        server.files[OFFICIAL["ptb"].format(split)] = text.encode()
    server.files["slow/ptb.train.txt"] = TEXTS["train"].encode()  # 23 bytes in 11.5 s
    server.drip["slow/ptb.train.txt"] = 0.5
    target = tmp_path / "data" / "ptb"
    env = {**os.environ, "TFNAS_DOWNLOAD_BASE_URL": f"{server.url}/slow", "PYTHONPATH": str(REPOSITORY)}
    code = "import sys; from tfnas.data.download import download_corpus; download_corpus('ptb', sys.argv[1])"

    def start_download() -> tuple[subprocess.Popen, Path]:
        """Another process downloading from the slow mirror, and its folder once it writes the first file."""
        known = set(target.glob(".tfnas-download-*"))
        process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "data")], env=env, cwd=REPOSITORY)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            started = [d for d in target.glob(".tfnas-download-*") if d not in known and (d / "train.txt").exists()]
            if started:
                return process, started[0]
            time.sleep(0.05)
        process.kill()
        pytest.fail("the download in another process did not start")

    killed, killed_folder = start_download()
    killed.kill()  # SIGKILL: no cleanup runs
    killed.wait()
    live, live_folder = start_download()
    try:
        earlier = time.time() - 3600  # both began long ago: only the lock tells the live one from the dead one
        for folder in (killed_folder, live_folder):
            os.utime(folder, (earlier, earlier))
        files = download_corpus("ptb", tmp_path / "data")
        assert live.poll() is None  # still downloading
        assert not killed_folder.exists()
        assert sorted(p.name for p in target.iterdir()) == sorted([live_folder.name, "test.txt", "train.txt",
                                                                    "valid.txt"])
        assert files.train.read_text() == TEXTS["train"]
    finally:
        live.kill()
        live.wait()


class FullDisk:
    """A file opened for writing on a full disk: each write fails with ENOSPC."""

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_checksum_mismatch_from_a_mirror_names_the_file_the_mirror_and_both_checksums(server, tmp_path,
                                                                                        monkeypatch) -> None:
    """Issue 26 item 15: a mirror serving another file is not a network failure: the line names the URL, the
    SHA-256 served and the official one, and the mirror, not "retry with internet access"."""
    record_checksums(monkeypatch, tmp_path, "ptb")
    for split, text in {**TEXTS, "valid": "the cat\n"}.items():  # the size of the official "the mat\n"
        server.files[OFFICIAL["ptb"].format(split)] = text.encode()
    with pytest.raises(CorpusNotFoundError) as info:
        load_corpus("ptb", data_dir=tmp_path / "data")
    message = one_line(info.value)
    served, official = hashlib.sha256(b"the cat\n").hexdigest(), CHECKSUMS["ptb"]["valid"].sha256
    assert (f"{server.url}/ptb.valid.txt: the file served has SHA-256 {served}, expected {official} (official "
            "ptb.valid.txt)") in message
    assert f"the mirror {server.url} (TFNAS_DOWNLOAD_BASE_URL) served files that differ from the official ones" \
        in message
    assert "internet" not in message and ".tfnas-download-" not in message
    assert not (tmp_path / "data" / "ptb").exists()


def test_a_full_disk_stops_the_download_and_names_the_disk(server, tmp_path, monkeypatch) -> None:
    """Issue 26 item 15: ENOSPC while writing is not a network failure either: no other source is tried, and
    the line names the folder whose disk is full, not "retry with internet access"."""
    record_checksums(monkeypatch, tmp_path, "ptb")
    for split, text in TEXTS.items():
        server.files[OFFICIAL["ptb"].format(split)] = text.encode()
    server.files[ARCHIVES["ptb"]] = archive("ptb", TEXTS)
    real_open = open

    def open_on_a_full_disk(file: str, mode: str = "r", *args: object, **kwargs: object) -> object:
        return FullDisk(file) if "w" in mode else real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(download_module, "open", open_on_a_full_disk, raising=False)
    target = tmp_path / "data" / "ptb"
    with pytest.raises(CorpusNotFoundError) as info:
        load_corpus("ptb", data_dir=tmp_path / "data")
    message = one_line(info.value)
    assert f"{server.url}/ptb.train.txt: No space left on device writing into {target}" in message
    assert re.search(rf"free space on the disk holding {re.escape(str(target))} \([0-9.]+ MB free; the ptb files "
                     r"take 0\.0 MB\), or download into another folder \(--data-dir\)", message), message
    assert "internet" not in message
    assert server.requests == ["ptb.train.txt"]  # no other source: the disk would be as full for it
    assert not target.exists()
