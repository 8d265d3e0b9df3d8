"""`export_run` and the export folder: one export at a time, one model per folder, ``--replace`` (issue 26 item 17)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas.cli import main
from tfnas.export import ExportError, ExportMetadata, export_run, load_export
from tfnas.export.layout import metadata_path
from tfnas.runs.lock import RunLockedError

REPO = Path(__file__).resolve().parents[2]


def exported_files(folder: Path) -> dict[str, bytes]:
    """Every file under an export folder but its lock, and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ("lock", ".lock")}


def recorded(folder: Path) -> dict[str, ExportMetadata]:
    """The metadata of each format exported in ``folder``."""
    return {fmt: ExportMetadata.load(metadata_path(fmt, folder / fmt)) for fmt in ("keras", "savedmodel", "onnx")
            if (folder / fmt).is_dir()}


def test_an_export_records_the_run_its_weights_and_its_model(runs, tmp_path):
    loaded = runs.loaded("lstm")
    out = tmp_path / "e"
    export_run(loaded, out, formats="keras,savedmodel", check=False)
    metadata = recorded(out)
    assert sorted(metadata) == ["keras", "savedmodel"]
    for meta in metadata.values():
        assert (meta.run_dir, meta.weights, meta.model_sha256) == (str(loaded.run_dir), str(loaded.weights),
                                                                   loaded.model_sha256)
    assert re.fullmatch(r"[0-9a-f]{64}", loaded.model_sha256)
    assert loaded.model_sha256 != runs.loaded("darts_v2").model_sha256
    # The same run loaded again (another LanguageModel, other layer names) is the same model; its latest weights
    # are its best ones here (the tiny run evaluated once, at its last step).
    from tfnas.export import load_run

    assert load_run(loaded.run_dir).model_sha256 == load_run(loaded.run_dir, "latest").model_sha256 == \
        loaded.model_sha256


@pytest.fixture
def held(tmp_path):
    """An export folder whose lock another process holds."""
    folder = tmp_path / "busy"
    code = ("import sys, time; from tfnas.runs.lock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
            "print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "held"
    yield folder, proc
    proc.kill()
    proc.wait()


def test_a_second_export_into_a_folder_in_use_is_refused_naming_the_holder(runs, held, capsys):
    """Two exports into one ``--out`` at once: the second is refused on one line naming the first's process, and
    writes nothing; once that process is gone the export runs."""
    folder, proc = held
    with pytest.raises(RunLockedError, match=rf"^{re.escape(str(folder))} is in use by process {proc.pid} on host "
                                             r"\S+ since \S+ \(lock file .*lock\); wait for it to end or use "
                                             "another --out folder$"):
        export_run(runs.loaded("lstm"), folder, formats="keras")
    assert exported_files(folder) == {}
    assert main(["export", str(runs.run("lstm")), "--out", str(folder), "--format", "keras", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"is in use by process {proc.pid}" in err
    proc.kill()
    proc.wait()
    export_run(runs.loaded("lstm"), folder, formats="keras")
    assert sorted(recorded(folder)) == ["keras"]


def test_an_export_of_another_model_into_an_export_folder_is_refused_until_replace(runs, tmp_path, capsys):
    """An export into a folder that holds another run's export is refused on one line naming both runs (nothing is
    written); ``--replace`` replaces the folder's exports whole, so formats of two runs never sit side by side; more
    formats of the same model join those there."""
    first, second = runs.loaded("lstm"), runs.loaded("darts_v2")
    out = tmp_path / "e"
    export_run(first, out, formats="keras,savedmodel", check=False)
    before = exported_files(out)
    message = (rf"^{re.escape(str(out))} holds an export of {re.escape(str(first.run_dir))} "
               rf"\({re.escape(str(first.weights))}, model sha256 {first.model_sha256[:12]}\) in keras, savedmodel; "
               rf"this export is of {re.escape(str(second.run_dir))} \({re.escape(str(second.weights))}, model sha256 "
               rf"{second.model_sha256[:12]}\): formats of two models would sit side by side\. Pass --replace "
               r"\(replace=True\) to replace the folder's exports whole, or choose another --out folder$")
    with pytest.raises(ExportError, match=message):
        export_run(second, out, formats="savedmodel,onnx", check=False)
    assert exported_files(out) == before
    argv = ["export", str(runs.run("darts_v2")), "--out", str(out), "--format", "onnx", "--no-check", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "formats of two models would sit side by side" in err
    assert exported_files(out) == before

    assert main(argv + ["--replace"]) == 0                          # the folder now holds the second model only
    capsys.readouterr()
    assert {fmt: meta.model_sha256 for fmt, meta in recorded(out).items()} == {"onnx": second.model_sha256}
    export_run(second, out, formats="keras", check=False)           # another format of the same model joins it
    assert {fmt: meta.model_sha256 for fmt, meta in recorded(out).items()} == \
        {"keras": second.model_sha256, "onnx": second.model_sha256}
    with pytest.raises(ExportError, match="formats of two models would sit side by side"):
        export_run(first, out, formats="keras")
    assert load_export(out / "keras").metadata.model_sha256 == second.model_sha256


def test_an_export_folder_of_an_earlier_tfnas_is_replaced_only_when_asked(runs, tmp_path):
    """An export without ``model_sha256`` (tfnas before issue 26) cannot be told apart from another model's."""
    loaded = runs.loaded("lstm")
    out = tmp_path / "e"
    export_run(loaded, out, formats="keras", check=False)
    path = metadata_path("keras", out / "keras")
    path.write_text(path.read_text().replace(f'"model_sha256": "{loaded.model_sha256}"', '"model_sha256": null'))
    with pytest.raises(ExportError, match=r"holds an export of .* made by tfnas \S+, which did not record its model "
                                          r"in keras; this export is of "):
        export_run(loaded, out, formats="savedmodel", check=False)
    export_run(loaded, out, formats="savedmodel", check=False, replace=True)
    assert sorted(recorded(out)) == ["savedmodel"]
