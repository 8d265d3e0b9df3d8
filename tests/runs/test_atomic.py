"""Atomic writes: a failed write leaves the old file whole, and JSON / JSONL round trips."""
import errno
import json
import os
import re

import pytest

from tfnas.errors import PathAccessError
from tfnas.runs import atomic
from tfnas.runs.atomic import append_jsonl, read_json, read_jsonl, write_json, write_jsonl, write_text


def _fail_on_replace(monkeypatch):
    def replace(src, dst):
        raise OSError("disk full (simulated) before the rename")

    monkeypatch.setattr(atomic.os, "replace", replace)


@pytest.mark.parametrize("write", [
    lambda path: write_json(path, {"step": 2}),
    lambda path: write_jsonl(path, [{"step": 2}]),
    lambda path: write_text(path, "new"),
])
def test_a_write_that_fails_before_the_rename_leaves_the_old_file_intact(tmp_path, monkeypatch, write):
    path = tmp_path / "state.json"
    path.write_text('{"step": 1}\n', encoding="utf-8")
    _fail_on_replace(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write(path)
    assert path.read_text(encoding="utf-8") == '{"step": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]       # no temporary file left


def test_a_write_replaces_the_file_through_one_rename(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    write_json(path, {"step": 1})
    renames = []
    real = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda src, dst: (renames.append((src.name, dst.name)), real(src, dst)))
    write_json(path, {"step": 2, "loss": 1.5})
    assert renames == [(".state.json.tmp", "state.json")]
    assert read_json(path) == {"step": 2, "loss": 1.5}


def test_jsonl_rewrite_and_append(tmp_path):
    path = tmp_path / "trials.jsonl"
    write_jsonl(path, [{"trial": 0}, {"trial": 1}])
    append_jsonl(path, {"trial": 2, "ppl": float("inf")})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["trial"] for line in lines] == [0, 1, 2]
    assert json.loads(lines[2])["ppl"] == float("inf")
    write_jsonl(path, [{"trial": 0}])
    assert path.read_text(encoding="utf-8") == '{"trial": 0}\n'


def test_read_jsonl_skips_blank_lines_and_names_the_line_that_is_not_json(tmp_path):
    path = tmp_path / "trials.jsonl"
    path.write_text('{"trial": 0}\n\n{"trial": 1, "ppl": Infinity}\n{"trial": 2, "pp\n', encoding="utf-8")
    with pytest.raises(ValueError) as info:
        read_jsonl(path)
    assert str(info.value).startswith(f"{path} is not valid JSON lines (line 4: Unterminated string")
    path.write_text('{"trial": 0}\n\n{"trial": 1, "ppl": Infinity}\n', encoding="utf-8")
    assert read_jsonl(path) == [{"trial": 0}, {"trial": 1, "ppl": float("inf")}]  # what Python's json reads


def test_read_json_names_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON: Expecting property name"):
        read_json(path)


@pytest.mark.parametrize("content, message", [
    ("[" * 100_000, "is not valid JSON: nested too deeply"),
    (b"\xff\xfe{}", "is not valid JSON: 'utf-8' codec can't decode"),
])
def test_read_json_names_a_file_too_deeply_nested_or_not_utf8(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(ValueError) as info:
        read_json(path)
    assert str(info.value).startswith(f"{path} {message}") and "\n" not in str(info.value)


def test_a_link_left_at_the_temporary_path_is_replaced_not_written_through(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep\n", encoding="utf-8")
    (tmp_path / ".state.json.tmp").symlink_to(outside)
    write_json(tmp_path / "state.json", {"step": 2})
    assert outside.read_text(encoding="utf-8") == "keep\n"
    assert read_json(tmp_path / "state.json") == {"step": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt", "state.json"]


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("write", [
    lambda path: write_json(path, {"step": 2}),
    lambda path: write_text(path, "new"),
    lambda path: append_jsonl(path, {"step": 2}),
])
def test_a_full_disk_names_the_file_and_the_space_left(tmp_path, monkeypatch, write):
    """Issue 26 item 18: ENOSPC is a one-line `TfnasError` naming the file being written and the disk's folder
    (with its free space), keeps its errno, and leaves the old file whole and no temporary file."""
    path = tmp_path / "history.json"
    path.write_text('{"step": 1}\n', encoding="utf-8")
    monkeypatch.setattr("builtins.open", disk_full)
    monkeypatch.setattr(atomic.Path, "write_text", disk_full)
    with pytest.raises(PathAccessError) as caught:
        write(path)
    assert re.fullmatch(rf"cannot write {re.escape(repr(str(path)))}: No space left on device \(\d+\.\d MB free on the "
                        rf"disk holding {re.escape(repr(str(tmp_path)))}\); free space on that disk and run again",
                        str(caught.value))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == '{"step": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]
