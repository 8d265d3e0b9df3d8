"""The top-level Python API (`tfnas.api`): the command's numbers, progress, Keras callbacks, no reseeding, refusals."""
from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import tfnas
from tfnas.cli import main
from tfnas.data.errors import CorpusError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

TINY = dict(emsize=8, nhid=8, batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=8, epochs=1,
            max_eval_batches=3, log_interval=5, checkpoint_interval=5, seed=3)
FLAGS = ["--emsize", "8", "--nhid", "8", "--batch-size", "4", "--eval-batch-size", "4", "--test-batch-size", "4",
         "--bptt", "8", "--epochs", "1", "--max-eval-batches", "3", "--log-interval", "5",
         "--checkpoint-interval", "5", "--seed", "3"]


def _model_settings(**kw):
    model = {k: kw.pop(k) for k in ("emsize", "nhid") if k in kw}
    return {**kw, "model": model}


def test_import_tfnas_and_its_api_names_load_no_tensorflow():
    code = ("import sys, tfnas; tfnas.search, tfnas.train, tfnas.load_run, tfnas.TrainRun; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.stdout.strip() == "[]"


def test_train_gives_the_command_numbers_and_exports_a_loadable_model(tiny_corpus, tmp_path, capsys):
    assert main(["train", "--genotype", "darts_v2", "--dataset", str(tiny_corpus), "--out", str(tmp_path / "cli"),
                 "--max-steps", "10", "--quiet", *FLAGS]) == 0
    capsys.readouterr()
    run = tfnas.train("darts_v2", tiny_corpus, tmp_path / "api", verbose=0, max_steps=10,
                      **_model_settings(**TINY))
    assert capsys.readouterr().out == ""  # verbose=0 prints nothing
    cli = json.loads((tmp_path / "cli" / "result.json").read_text())
    assert (run.steps, run.valid_ppl, run.best_valid_ppl, run.test_ppl) == (
        cli["steps"], cli["valid_ppl"], cli["best_valid_ppl"], cli["test_ppl"])
    assert run.genotype == tfnas.resolve_genotype("darts_v2") and not run.stopped

    loaded = tfnas.load_run(run)
    paths = tfnas.export(run, tmp_path / "exports", verbose=0)
    ids = np.arange(8, dtype="int32").reshape(2, 4) % len(loaded.vocab)
    reloaded = keras.saving.load_model(paths["keras"])
    np.testing.assert_array_equal(np.asarray(reloaded(ids)[0]), np.asarray(loaded.model(ids)[0]))  # the logits


def test_progress_is_printed_by_default(tiny_corpus, tmp_path, capsys):
    tfnas.train("darts_v2", tiny_corpus, tmp_path / "run", max_steps=5, **_model_settings(**TINY))
    out = capsys.readouterr().out
    assert "[train] step 5" in out and "[eval] step 5" in out


class EpochLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append((epoch, logs["val_loss"]))


def test_early_stopping_stops_the_run_and_a_resume_stays_stopped(tiny_corpus, tmp_path):
    settings = _model_settings(**{**TINY, "epochs": 10}, eval_interval=5)
    logs = EpochLogs()
    # min_delta 100: the second evaluation is no improvement, and patience 1 stops there, at step 10.
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=100.0, patience=1)
    run = tfnas.train("darts_v2", tiny_corpus, tmp_path / "run", verbose=0, callbacks=[stop, logs], **settings)
    assert run.stopped and run.steps == 10
    assert logs.seen == [(0, run.history[0]["valid_loss"]), (1, run.history[1]["valid_loss"])]
    again = tfnas.train("darts_v2", tiny_corpus, tmp_path / "run", verbose=0, **settings)
    assert again.stopped and again.steps == 10


def test_restore_best_weights_is_refused_on_one_line(tiny_corpus, tmp_path):
    with pytest.raises(TypeError, match=r"EarlyStopping\(restore_best_weights=True\): tfnas keeps the best weights"):
        tfnas.train("darts_v2", tiny_corpus, tmp_path / "run", verbose=0,
                    callbacks=[keras.callbacks.EarlyStopping(restore_best_weights=True)], **_model_settings(**TINY))


def test_the_caller_global_generators_are_not_reseeded(tiny_corpus, tmp_path):
    random.seed(123)
    np.random.seed(123)
    expected = (random.Random(123).random(), np.random.RandomState(123).random_sample())
    tfnas.train("darts_v2", tiny_corpus, tmp_path / "run", verbose=0, max_steps=2, **_model_settings(**TINY))
    assert (random.random(), np.random.random_sample()) == expected


def test_a_tf_data_dataset_is_refused_before_anything_is_written(tmp_path):
    import tensorflow as tf

    with pytest.raises(CorpusError, match=r"not _?\w*Dataset: pass its name .*Corpus\.from_texts"):
        tfnas.train("darts_v2", tf.data.Dataset.range(6).batch(2), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_search_returns_the_genotype_it_wrote(tiny_corpus, tmp_path):
    settings = {k: v for k, v in TINY.items() if k != "test_batch_size"}
    found = tfnas.search("darts", tiny_corpus, tmp_path / "s", verbose=0, max_steps=2, order=1, steps=3,
                         **_model_settings(**settings))
    assert found.genotype == tfnas.load_genotype(found.genotype_path)
    assert found.genotype_path == tmp_path / "s" / "genotype.json"
    assert found.valid_ppl == found.metrics["valid_ppl"] > 1


def test_the_api_example_searches_trains_exports_and_reloads(tiny_corpus, tmp_path):
    spec = importlib.util.spec_from_file_location("search_train_export", EXAMPLES / "search_train_export.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    settings = {k: v for k, v in TINY.items() if k != "test_batch_size"}
    report = example.run(tiny_corpus, tmp_path, verbose=0, max_steps=4, **_model_settings(**settings))
    assert report["genotype"] == tfnas.load_genotype(tmp_path / "search" / "genotype.json")
    trained = json.loads((tmp_path / "train" / "result.json").read_text())
    assert (report["valid_ppl"], report["test_ppl"]) == (trained["best_valid_ppl"], trained["test_ppl"])
    assert report["model"].genotype == report["genotype"]
