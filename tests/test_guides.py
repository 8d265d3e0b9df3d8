"""Every Python code block of the documentation (every page under ``docs/``, and the README) runs as written: one
test per block, in a folder of its own; the blocks check their own results (``assert_allclose``), and what they
print is compared with the comment of each ``print(...)  # what it prints`` line. A block that chooses its Keras
backend (``KERAS_BACKEND``) runs in a fresh Python process, where that choice takes effect (and cannot change this
process' backend); the others run in this process."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PAGES = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
#: ``print(...)  # expected`` in a block: what the line prints.
PRINTED = re.compile(r"^\s*print\(.*\)\s+#\s*(.+)$")


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


BLOCKS = [pytest.param(code, id=f"{path.relative_to(REPOSITORY).as_posix()}:{i}")
          for path in PAGES for i, code in enumerate(python_blocks(path))]


def test_the_readme_and_the_guides_have_python_blocks():
    guides = [path for path in PAGES if path.parent.name == "guides"]
    assert python_blocks(REPOSITORY / "README.md") and sum(bool(python_blocks(path)) for path in guides) >= 4


@pytest.mark.parametrize("code", BLOCKS)
def test_a_guide_block_runs_and_prints_what_it_says(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "KERAS_BACKEND" in code:
        backend = re.search(r"KERAS_BACKEND\"\]\s*=\s*\"(\w+)\"", code)
        if backend and backend.group(1) != "tensorflow" and importlib.util.find_spec(backend.group(1)) is None:
            pytest.skip(f"the block runs on Keras' {backend.group(1)} backend, which is not installed here "
                        f"(pip install -e \".[backends]\")")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        printed = done.stdout
    else:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<guide block>", "exec"), {"__name__": "__guide__"})
        printed = out.getvalue()
    expected = [m.group(1).strip() for line in code.splitlines() if (m := PRINTED.match(line))]
    assert [line.strip() for line in printed.splitlines()] == expected
