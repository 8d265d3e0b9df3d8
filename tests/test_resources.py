"""The shipped data: `resource_dir` in a source checkout, and a wheel that holds every preset and known cell, the
license and the package's metadata."""
import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tfnas.genotypes.files import known_cells
from tfnas.resources import RESOURCES, resource_dir

REPO = Path(__file__).resolve().parents[1]
#: Shipped folder -> the pattern of its files (sub-folders included).
SHIPPED = {"configs": "*.yaml", "exported_cells": "*.json"}
#: What a build leaves in its source folder (the wheel test builds a copy, so none may appear in the repository).
BUILD_LEFTOVERS = re.compile(r"build|dist|.*\.egg-info")
#: Top-level folders of a working copy that are not source.
NOT_SOURCE = {".git", ".venv", ".ci-venv", ".pytest_cache", ".hypothesis", "runs"}


def shipped_files(root: Path) -> dict[str, bytes]:
    """``{"tfnas/configs/search/x.yaml": contents}`` for every file of `SHIPPED` under ``root``."""
    return {f"tfnas/{path.relative_to(root).as_posix()}": path.read_bytes()
            for folder, pattern in SHIPPED.items() for path in sorted((root / folder).rglob(pattern))}


def test_resource_dir_in_the_source_checkout():
    assert RESOURCES == tuple(SHIPPED)
    assert resource_dir("configs") == REPO / "configs"
    assert resource_dir("exported_cells") == REPO / "exported_cells"
    assert {"darts_v1", "darts_v2", "enas", "nascell"} <= set(known_cells())


@pytest.mark.parametrize("name", ["cells", "tfnas/configs", "", "CONFIGS"])
def test_resource_dir_rejects_unknown_names(name):
    message = re.escape(f"Argument `name` must be one of ['configs', 'exported_cells']; received: name={name!r}")
    with pytest.raises(ValueError, match=message):
        resource_dir(name)


def not_source(folder: str, names: list[str]) -> list[str]:
    """What the copy of the repository leaves out: Python caches, and the top-level folders that are not
    source (git, environments, run outputs, build outputs)."""
    top = Path(folder) == REPO
    return [n for n in names if n == "__pycache__" or top and (n in NOT_SOURCE or BUILD_LEFTOVERS.fullmatch(n))]


def build_wheel(tmp_path: Path) -> tuple[Path, str]:
    """Builds the wheel of a copy of the repository (a build writes ``build/`` and ``*.egg-info`` into its
    source folder); returns the wheel and pip's verbose output."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=not_source)
    out = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-v",
         "-w", str(out), str(source)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("tfnas-*.whl")
    return wheel, result.stdout + result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str, set[str]]:
    """The wheel of the repository, pip's output, and the top-level names of the repository before the build."""
    before = {p.name for p in REPO.iterdir()}
    return (*build_wheel(tmp_path_factory.mktemp("wheel")), before)


def test_wheel_ships_every_preset_and_known_cell(tmp_path, built):
    wheel, log, before = built
    expected = shipped_files(REPO)
    assert any(name.startswith("tfnas/configs/") for name in expected)
    assert "tfnas/exported_cells/darts_v2.json" in expected
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        data = {n: z.read(n) for n in names if n.startswith(("tfnas/configs/", "tfnas/exported_cells/"))}
    assert data == expected  # every file, at its place under tfnas/, with its contents; nothing else
    assert {f"tfnas/{p.relative_to(REPO / 'tfnas').as_posix()}" for p in (REPO / "tfnas").rglob("*.py")} <= set(names)
    tops = {n.split("/")[0] for n in names}
    assert "tfnas" in tops and all(re.fullmatch(r"tfnas|tfnas-[^/]+\.dist-info", t) for t in tops), tops
    complaints = [line for line in log.splitlines()
                  if re.search(r"configs|exported_cells", line) and re.search(r"(?i)warn|deprecat|absent", line)]
    assert not complaints
    assert not {n for n in {p.name for p in REPO.iterdir()} - before if BUILD_LEFTOVERS.fullmatch(n)}

    # Installed (here: unpacked), the data is found inside the package, even with a folder of the
    # same name beside it, from any working directory.
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    (site / "exported_cells").mkdir()
    probe = ("import tfnas, tfnas.resources as r; print(tfnas.__file__); print(r.resource_dir('exported_cells')); "
             "print(r.resource_dir('configs')); print(tfnas.resolve_genotype('darts_v2').nodes[5])")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site)}, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [str(site / "tfnas" / "__init__.py"), str(site / "tfnas" / "exported_cells"),
                                       str(site / "tfnas" / "configs"), "('sigmoid', 5)"]


#: The MD5 of the Apache License 2.0 as the Apache Software Foundation publishes it
#: (https://www.apache.org/licenses/LICENSE-2.0.txt).
APACHE_2_MD5 = "3b83ef96387f14655fc854ddc3c6bd57"


def test_the_license_is_apache_2_with_the_authors_copyright():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    notice, body = text.split("\n", 1)
    assert notice == "Copyright 2026 The tfnas Authors"
    assert hashlib.md5(body.encode()).hexdigest() == APACHE_2_MD5


def test_wheel_metadata_has_one_version_the_authors_and_the_license(built):
    """The version is `tfnas._version`'s (setup.py reads it), the licence Apache-2.0 as an SPDX expression
    (core metadata 2.4) with the LICENSE file shipped; the metadata passes `packaging`'s validation."""
    from packaging.metadata import Metadata

    import tfnas
    from tfnas import _version

    wheel, _, _ = built
    with zipfile.ZipFile(wheel) as z:
        info = next(n.rsplit("/", 1)[0] for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Metadata.from_email(z.read(f"{info}/METADATA").decode(), validate=True)
        license_file = z.read(f"{info}/licenses/LICENSE")
    assert str(metadata.version) == _version.__version__ == tfnas.__version__
    assert wheel.name == f"tfnas-{_version.__version__}-py3-none-any.whl"
    assert (metadata.author, str(metadata.license_expression)) == ("The tfnas Authors", "Apache-2.0")
    assert metadata.license_files == ["LICENSE"] and license_file == (REPO / "LICENSE").read_bytes()
    # A Project-URL is an absolute URL (none until tfnas has a public home; a relative path was shipped once).
    assert all(url.startswith("https://") for url in (metadata.project_urls or {}).values())
    written = (REPO / "setup.py").read_text() + (REPO / "tfnas" / "__init__.py").read_text()
    assert _version.__version__ not in written  # one place: tfnas/_version.py
