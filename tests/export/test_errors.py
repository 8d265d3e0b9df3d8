"""Clear errors: no checkpoint, unknown format, an op ONNX lacks, vocabulary mismatches, a full disk."""
import errno
import os
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import tensorflow as tf

from tfnas.cli import main
from tfnas.data import OutOfVocabularyError, Vocabulary
from tfnas.errors import PathAccessError
from tfnas.export import (ExportError, ExportMetadata, LoadedRun, MissingCheckpointError, OnnxConversionError,
                          UnknownFormatError, VocabularyMismatchError, convert_to_onnx, export_keras, export_onnx,
                          export_run, export_savedmodel, load_export, load_run, score_file)
from tfnas.genotypes.files import resolve_genotype
from tfnas.lm import LanguageModel


def copy_run(src, dst, with_checkpoints):
    dst.mkdir()
    for name in ("config.json", "model.json", "genotype.json", "vocab.txt"):
        shutil.copy(src / name, dst / name)
    if with_checkpoints:
        shutil.copytree(src / "checkpoints", dst / "checkpoints")


def test_run_without_weights(runs, tmp_path, capsys):
    src = runs.run("darts_v2")
    bare = tmp_path / "bare"
    copy_run(src, bare, with_checkpoints=False)
    with pytest.raises(MissingCheckpointError, match="has no checkpoint and no best/weights.npz: train it first"):
        load_run(bare)
    assert main(["export", str(bare), "--out", str(tmp_path / "x")]) == 2
    assert "has no checkpoint" in capsys.readouterr().err
    with pytest.raises(MissingCheckpointError, match="has no checkpoint"):
        load_run(bare, weights="latest")
    # With a checkpoint but no best/ folder, the error points at --weights latest, which works.
    partial = tmp_path / "partial"
    copy_run(src, partial, with_checkpoints=True)
    with pytest.raises(MissingCheckpointError, match="never evaluated.*weights latest"):
        load_run(partial)
    latest = load_run(partial, weights="latest")
    best = runs.loaded("darts_v2")  # the run evaluated once, at its last step: best == latest weights here
    for a, b in zip(latest.model.trainable_variables, best.model.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ExportError, match="not a tfnas run folder"):
        load_run(tmp_path / "junk")


def test_latest_weights_of_a_checkpoint_that_does_not_record_them(runs, tmp_path, capsys):
    """A checkpoint of an older tfnas does not say which of its variables are the evaluated weights."""
    old = tmp_path / "old"
    copy_run(runs.run("darts_v2"), old, with_checkpoints=True)
    npz = old / "checkpoints" / (old / "checkpoints" / "latest").read_text() / "variables.npz"
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files if k != "__weights__"}
    np.savez(npz, **arrays)
    with pytest.raises(MissingCheckpointError, match=r"did not record which of its variables are the model's "
                                                     r"weights; export its best weights instead .*--weights best"):
        load_run(old, weights="latest")
    assert main(["export", str(old), "--weights", "latest", "--out", str(tmp_path / "x")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1                  # one line


def test_unknown_format(runs, tmp_path, capsys):
    with pytest.raises(UnknownFormatError,
                       match="unknown export format 'coreml'.*keras, savedmodel, onnx, tflite or all"):
        export_run(tmp_path / "not-even-a-run", tmp_path / "out", formats="coreml")
    assert main(["export", str(runs.run("lstm")), "--format", "torchscript", "--out", str(tmp_path / "o")]) == 2
    assert "unknown export format 'torchscript'" in capsys.readouterr().err
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")
    with pytest.raises(UnknownFormatError, match="is not a tfnas export"):
        load_export(tmp_path / "stuff")
    with pytest.raises(ExportError, match="not empty and holds no tfnas export"):
        export_keras(runs.loaded("lstm"), tmp_path / "stuff")
    assert (tmp_path / "stuff" / "notes.txt").read_text() == "hello"  # nothing deleted


class LgammaLM(LanguageModel):
    """A model with an op tf2onnx cannot convert (Lgamma) in its decoder."""

    def decode(self, outputs):
        return super().decode(outputs) + tf.math.lgamma(tf.nn.softplus(outputs[..., :1]) + 1.0)


def test_onnx_conversion_failure_names_the_op(tmp_path):
    model = LgammaLM(12, resolve_genotype("darts_v2"), emsize=8, nhid=8, seed=0)
    model.build_weights()
    with pytest.raises(OnnxConversionError, match=r"TensorFlow op Lgamma at opset 17 \(node .*Lgamma") as info:
        convert_to_onnx(model)
    assert info.value.ops == ("Lgamma",)
    run = LoadedRun(tmp_path, model, Vocabulary([f"w{i}" for i in range(12)]), None, None, None, tmp_path / "w")
    with pytest.raises(OnnxConversionError, match="Lgamma"):
        export_onnx(run, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()  # nothing half-written


def test_vocabulary_mismatches_at_scoring(runs, tiny_corpus, tmp_path):
    export = runs.exports("darts_v2")
    model = load_export(export / "onnx")
    # A vocabulary file that is not the model's.
    other = tmp_path / "other_vocab.txt"
    Vocabulary(["<eos>", "<unk>"] + [f"w{i}" for i in range(29)]).save(other)
    with pytest.raises(VocabularyMismatchError, match="other_vocab.txt differs from the model's vocabulary"):
        score_file(model, tiny_corpus / "test.txt", vocab=other)
    same = tmp_path / "same.txt"
    model.vocab.save(same)
    assert score_file(model, tiny_corpus / "test.txt", vocab=same).perplexity > 1
    # A vocab.txt swapped inside an export is caught when the export is loaded.
    tampered = tmp_path / "tampered"
    shutil.copytree(export / "onnx", tampered)
    shutil.copy(other, tampered / "vocab.txt")
    with pytest.raises(VocabularyMismatchError, match="not the vocabulary the model was trained with"):
        load_export(tampered)


@pytest.mark.parametrize("fmt", ["savedmodel", "onnx"])
def test_unknown_word_without_unk_names_word_and_line(tmp_path, fmt):
    vocab = Vocabulary(["<eos>", "a", "b", "c"])  # no <unk>
    model = LanguageModel(len(vocab), None, emsize=8, nhid=8, seed=0)
    model.build_weights()
    run = LoadedRun(tmp_path, model, vocab, None, None, None, tmp_path / "w")
    (export_savedmodel if fmt == "savedmodel" else export_onnx)(run, tmp_path / fmt)
    text = tmp_path / "text.txt"
    text.write_text("a b c\nb c a\nc a zebra b\n", encoding="utf-8")
    lm = load_export(tmp_path / fmt)
    with pytest.raises(OutOfVocabularyError, match=r"word 'zebra' is not in the vocabulary.*line 3"):
        score_file(lm, text, batch_size=1, bptt=4)
    text.write_text("a b c\nb c a\n", encoding="utf-8")
    assert score_file(lm, text, batch_size=1, bptt=4).tokens == 7


def exported_files(folder: Path) -> dict[str, bytes]:
    """Every file under an export folder but its lock, and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ("lock", ".lock")}


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def cut_keras(model, path, *args, **kwargs):
    Path(path).write_bytes(b"PK\x03\x04 cut short")
    no_space()


def cut_onnx(proto, path, *args, **kwargs):
    Path(path).write_bytes(b"\x08\x07 cut short")
    no_space()


def cut_savedmodel(module, export_dir, *args, **kwargs):
    (Path(export_dir) / "variables").mkdir()
    (Path(export_dir) / "variables" / "variables.index").write_bytes(b"")
    raise tf.errors.ResourceExhaustedError(None, None, f"{export_dir}/variables/variables.index; No space left on "
                                                       "device [Op:MergeV2Checkpoints]")


def test_a_full_disk_names_the_export_file_and_leaves_no_cut_file_and_the_earlier_export_whole(runs, tmp_path,
                                                                                             monkeypatch, capsys):
    """Issue 26 item 18: ENOSPC while an export writes (a ``.keras`` file, a SavedModel, ``model.onnx``) is one
    line naming the file and the disk; nothing cut short is left under an export's name, and an earlier export in
    the folder stays as it was."""
    loaded = runs.loaded("lstm")
    out = tmp_path / "export"
    export_run(loaded, out, check=False)
    before = exported_files(out)
    cases = [("keras", LanguageModel, "save", cut_keras, out / "keras" / "model.keras"),
             ("savedmodel", tf.saved_model, "save", cut_savedmodel, out / "savedmodel"),
             ("onnx", onnx, "save_model", cut_onnx, out / "onnx" / "model.onnx")]
    for fmt, owner, name, fake, named in cases:
        with monkeypatch.context() as patched:
            patched.setattr(owner, name, fake)
            with pytest.raises(PathAccessError, match=rf"^cannot write {re.escape(repr(str(named)))}: No space left "
                                                      r"on device \(\d+\.\d MB free on the disk holding "):
                export_run(loaded, out, formats=fmt, check=False)
            assert exported_files(out) == before, fmt
            fresh = tmp_path / f"fresh-{fmt}"
            with pytest.raises(PathAccessError, match="No space left on device"):
                export_run(loaded, fresh, formats=fmt, check=False)
            assert exported_files(fresh) == {} and not (fresh / fmt).exists()
            assert sorted(p.name for p in fresh.iterdir() if p.name not in ("lock", ".lock")) == []
    with monkeypatch.context() as patched:
        patched.setattr(onnx, "save_model", cut_onnx)
        assert main(["export", str(runs.run("lstm")), "--out", str(tmp_path / "cli"), "--format", "onnx",
                     "--no-check", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"tfnas: error: cannot write '{tmp_path / 'cli' / 'onnx'}")


@pytest.mark.parametrize("version", ["true", "1.0"])
def test_export_metadata_of_version_true_is_not_version_1(runs, version):
    """As issue 26 item 22 for genotypes: ``true`` and ``1.0`` equal 1 in Python, but are not metadata version 1."""
    text = (runs.exports("lstm") / "keras" / "tfnas.json").read_text()
    assert ExportMetadata.from_json(text).version == 1
    with pytest.raises(ExportError, match=rf"^m.json has metadata version {'True' if version == 'true' else '1.0'}; "
                                          r"this tfnas reads version 1: export the run again$"):
        ExportMetadata.from_json(text.replace('"version": 1', f'"version": {version}'), where="m.json")
    with pytest.raises(ExportError, match=r"^m.json is not valid JSON: Exceeds the limit \(4300 digits\)"):
        ExportMetadata.from_json(text.replace('"version": 1', '"version": 1' + "0" * 4300), where="m.json")
