"""Run folders under probing: one kind of run per folder, the resume checks (settings, data), a folder left with
only its record, the lock, damaged checkpoints, history and TensorBoard after a kill, NaN recovery that compounds
and survives a restart, and Ctrl-C that checkpoints between steps."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfnas.callbacks import Callback, History, TensorBoardLogger
from tfnas.cli import main
from tfnas.config import ModelConfig, TrainConfig
from tfnas.data import load_corpus
from tfnas.genotypes.files import load_genotype, resolve_genotype
from tfnas.lm.trainer import Trainer
from tfnas.runs.checkpoint import CorruptCheckpointError
from tfnas.runs.folder import open_run, read_record, read_weights
from tfnas.runs.lock import RunLockedError
from tfnas.strategies.base import SearchDivergedError
from tfnas.spaces.dag import DagSpace
from tfnas.strategies.one_shot.darts import NasabnSearch
from tfnas.strategies.one_shot.enas import EnasSearch
from tfnas.strategies.one_shot.loop import OneShotConfig
from tfnas.strategies.registry import get_strategy

from support import (TINY_SEARCH, Kill, SyntheticEvaluator, assert_same_checkpoints, computed_record,
                     tiny_search_config, write_ascending_corpus)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """``(root, corpus folder, corpus)``: the ascending corpus, loaded once."""
    root = tmp_path_factory.mktemp("reliability")
    folder = write_ascending_corpus(root / "tiny")
    return root, folder, load_corpus(folder)


def train_config(**kw) -> TrainConfig:
    base = dict(batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=8, lr=5.0, epochs=50, max_steps=8,
                log_interval=1, checkpoint_interval=2, max_eval_batches=2, seed=7,
                model=ModelConfig(emsize=8, nhid=8, dropout=0.1, dropouth=0.1, dropoutx=0.1, dropouti=0.1,
                                  dropoute=0.0))
    return TrainConfig(**{**base, **kw})


def run_search(name, out, data, callbacks=(), **overrides):
    _, folder, corpus = data
    return get_strategy(name).strategy_class(tiny_search_config(name, folder, **overrides)).search(
        corpus, out, callbacks)


def train(out, data, callbacks=(), genotype="darts_v2", **overrides):
    return Trainer(train_config(**overrides), resolve_genotype(genotype), out, corpus=data[2],
                   callbacks=callbacks).fit(evaluate_test=False)


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (but the lock, which names its last holder) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "lock"}


def messages(history: History) -> list[str]:
    return [e["text"] for e in history.events.get("message", [])]


@pytest.fixture(scope="module")
def finished(data):
    """A finished `tfnas train` run, `nasabn` search and `wenet` search (rounds and state file), in ``root``."""
    root = data[0]
    train(root / "train", data)
    run_search("nasabn", root / "nasabn", data)
    run_search("wenet", root / "wenet", data)
    return root


# ------------------------------------------------------------- item 1: one kind of run per folder
@pytest.mark.parametrize("strategy, holder, holds", [
    ("wenet", "nasabn", "a `nasabn` search"),
    ("nasabn", "wenet", "a `wenet` search"),
    ("nasabn", "wenet/rounds/round-0000", "a `wenet` search"),
    ("wenet", "train", "a `tfnas train` run"),
    *[(name, "train", "a `tfnas train` run") for name in sorted(TINY_SEARCH) if name != "wenet"],
])
def test_a_search_into_a_folder_of_another_kind_is_refused_and_changes_nothing(finished, data, strategy, holder,
                                                                              holds):
    folder = finished / holder
    before = files_of(folder)
    message = f"{folder} holds {holds}, not a `{strategy}` search; use a new --out folder"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        run_search(strategy, folder, data)
    assert files_of(folder) == before


def test_a_train_run_into_a_search_folder_is_refused_and_changes_nothing(finished, data):
    before = files_of(finished / "wenet")
    with pytest.raises(ValueError, match=re.escape(f"{finished / 'wenet'} holds a `wenet` search, not a `tfnas "
                                                   "train` run; use a new --out folder")):
        train(finished / "wenet", data)
    assert files_of(finished / "wenet") == before


# ------------------------------------------------------------- item 2: every non-resumable change is listed
CHANGES = {"seed": 9, "lr": 3.0, "arch_lr": 0.1, "norm": "layer", "controller_lr": 0.5, "bptt": 6, "batch_size": 2,
           "steps": 3, "model": {"nhid": 6}, "child": {"bptt": 6}}


def listed_changes(config, changed) -> list[str]:
    """``key: old -> new`` of every `CHANGES` entry ``config`` has."""
    out = []
    for key, value in CHANGES.items():
        if not hasattr(config, key):
            continue
        if isinstance(value, dict):
            out += [f"{key}.{k}: {getattr(getattr(config, key), k)!r} -> {v!r}" for k, v in value.items()]
        else:
            out.append(f"{key}: {getattr(config, key)!r} -> {getattr(changed, key)!r}")
    return out


@pytest.mark.parametrize("strategy", sorted(TINY_SEARCH))
def test_every_strategy_refuses_every_non_resumable_change_with_the_list(data, tmp_path, strategy):
    config = tiny_search_config(strategy, data[1])
    open_run(tmp_path, "search", strategy, config)
    changes = {k: v for k, v in CHANGES.items() if hasattr(config, k)}
    changed = tiny_search_config(strategy, data[1], **changes)
    with pytest.raises(ValueError, match=f"holds a `{strategy}` search with another configuration") as err:
        get_strategy(strategy).strategy_class(changed).search(data[2], tmp_path)
    expected = listed_changes(config, changed)
    assert len(expected) >= 3 and all(item in str(err.value) for item in expected), (expected, str(err.value))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("strategy", sorted(TINY_SEARCH))
def test_a_one_shot_search_refuses_another_checkpoint_interval_on_resume(data, tmp_path, strategy):
    """A one-shot search recovers from a diverged loss by rewinding to its newest checkpoint, so the interval
    decides what it computes (ENAS at intervals 20 and 50 ended at valid ppl 766.8 and 845.0): it is refused on
    resume. A black-box search never rewinds, and keeps it resumable."""
    config = tiny_search_config(strategy, data[1])
    open_run(tmp_path, "search", strategy, config)
    changed = tiny_search_config(strategy, data[1], checkpoint_interval=config.checkpoint_interval + 1)
    if isinstance(config, OneShotConfig):
        listed = f"checkpoint_interval: {config.checkpoint_interval} -> {changed.checkpoint_interval}"
        with pytest.raises(ValueError, match=re.escape(f"with another configuration ({listed})")):
            open_run(tmp_path, "search", strategy, changed)
    else:
        open_run(tmp_path, "search", strategy, changed)


@pytest.mark.parametrize("flag, value, listed", [
    ("bptt", 6, "bptt: 8 -> 6"), ("batch_size", 2, "batch_size: 4 -> 2"), ("model", {"nhid": 6},
                                                                          "model.nhid: 8 -> 6"),
    ("steps", 3, "steps: 2 -> 3"), ("norm", "layer", "norm: 'batch' -> 'layer'"), ("seed", 9, "seed: 3 -> 9")])
def test_a_shape_change_of_a_checkpointed_search_is_a_listed_difference(finished, data, flag, value, listed):
    with pytest.raises(ValueError, match=re.escape(f"with another configuration ({listed}); use a new --out")):
        run_search("nasabn", finished / "nasabn", data, **{flag: value})


@pytest.mark.parametrize("change, listed", [
    (dict(bptt=6), "bptt: 8 -> 6"), (dict(seed=1), "seed: 7 -> 1"), (dict(lr=1.0), "lr: 5.0 -> 1.0"),
    (dict(batch_size=2), "batch_size: 4 -> 2")])
def test_a_changed_train_run_is_a_listed_difference(finished, data, change, listed):
    with pytest.raises(ValueError, match=re.escape(f"with another configuration ({listed}); use a new --out")):
        train(finished / "train", data, **change)


# ------------------------------------------------------------- item 13: killed right after config.json
def test_a_folder_holding_only_its_record_starts_afresh(data, tmp_path):
    open_run(tmp_path / "t", "train", None, train_config())           # killed right after writing config.json
    result = train(tmp_path / "t", data)
    assert result.steps == 8 and load_genotype(tmp_path / "t" / "genotype.json") == resolve_genotype("darts_v2")
    open_run(tmp_path / "s", "search", "nasabn", tiny_search_config("nasabn", data[1]))
    assert run_search("nasabn", tmp_path / "s", data).metrics["steps"] == 8


# ------------------------------------------------------------- item 6: the data are part of the run
def shuffled_corpus(folder: Path, out: Path, split: str) -> Path:
    """A copy of the corpus ``folder`` with the lines of ``split`` in reverse order (the same words)."""
    out.mkdir()
    for name in ("train", "valid", "test"):
        lines = (folder / f"{name}.txt").read_text().splitlines()
        (out / f"{name}.txt").write_text("\n".join(lines[::-1] if name == split else lines) + "\n")
    return out


def test_a_resume_on_other_data_is_refused_in_one_line(finished, data, tmp_path):
    other_vocab = load_corpus(shuffled_corpus(data[1], tmp_path / "reordered", "train"))
    assert sorted(other_vocab.vocab) == sorted(data[2].vocab) and list(other_vocab.vocab) != list(data[2].vocab)
    pattern = (r"holds a `tfnas train` run on other data \(its vocabulary differs: 31 words, sha256 [0-9a-f]{12} -> "
               r"31 words, sha256 [0-9a-f]{12}\); use the corpus it was started on \(--dataset, --data-dir\) or a "
               r"new --out folder$")
    with pytest.raises(ValueError, match=pattern):
        Trainer(train_config(), resolve_genotype("darts_v2"), finished / "train", corpus=other_vocab)
    other_ids = load_corpus(shuffled_corpus(data[1], tmp_path / "revalid", "valid"))
    assert list(other_ids.vocab) == list(data[2].vocab)
    search = get_strategy("nasabn").strategy_class(tiny_search_config("nasabn", data[1]))
    with pytest.raises(ValueError, match=r"holds a `nasabn` search on other data \(its token ids differ: \d+ tokens, "
                                         r"sha256 [0-9a-f]{12} -> \d+ tokens, sha256 [0-9a-f]{12}\)"):
        search.search(other_ids, finished / "nasabn")
    assert read_record(finished / "nasabn").data["words"] == 31


# ------------------------------------------------------------- item 9: one process per folder
@pytest.fixture
def held(tmp_path):
    """A folder whose lock another process holds: ``(folder, pid)``; the process is killed after the test."""
    folder = tmp_path / "held"
    code = ("import sys, time; from tfnas.runs.lock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
            "print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
    assert proc.stdout.readline().strip() == "held"
    yield folder, proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("kind", ["train", "nasabn", "wenet", "random"])
def test_a_folder_in_use_by_another_process_is_refused_then_taken_over_when_it_dies(held, data, kind):
    folder, proc = held

    def start():
        return train(folder, data) if kind == "train" else run_search(kind, folder, data)

    with pytest.raises(RunLockedError, match=rf"^{re.escape(str(folder))} is in use by process {proc.pid} on host "
                                             rf"\S+ since \S+ \(lock file .*lock\); wait for it to end or use "
                                             "another --out folder$"):
        start()
    assert not (folder / "config.json").exists()
    proc.kill()
    proc.wait()
    start()                                                     # the lock of a dead process is taken over
    assert json.loads((folder / "lock").read_text())["pid"] == os.getpid()


# ------------------------------------------------------------- item 10: a damaged checkpoint is skipped
def damage(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00garbage" * 40)
    else:
        path.write_text('{"step": 6, "epo')


@pytest.mark.parametrize("kind", ["train", "nasabn"])
@pytest.mark.parametrize("how, file", [("truncated", "variables.npz"), ("garbage", "variables.npz"),
                                       ("cut", "state.json")])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(data, tmp_path, kind, how, file):
    def run(out, callbacks=(), **kw):
        return train(out, data, callbacks, **kw) if kind == "train" else run_search(kind, out, data, callbacks, **kw)

    run(tmp_path / "full", max_steps=8)
    run(tmp_path / "cut", max_steps=6)
    checkpoints = tmp_path / "cut" / "checkpoints"
    assert (checkpoints / "latest").read_text() == "step-6"
    damage(checkpoints / "step-6" / file, how)
    history = History()
    run(tmp_path / "cut", [history], max_steps=8)
    texts = messages(history)
    assert any(re.match(rf"warning: skipped the unreadable checkpoint step-6: .*step-6/{file} is truncated or "
                        r"corrupted \(", t) for t in texts), texts
    assert not any("pickle" in t for t in texts)
    assert any(t.startswith(f"resumed from {checkpoints / 'step-4'}") for t in texts), texts
    assert (checkpoints / "corrupt-step-6").is_dir()                        # set aside, never pruned in its favour
    assert_same_checkpoints(tmp_path / "full", tmp_path / "cut")


def test_export_reads_past_a_damaged_checkpoint_and_refuses_a_damaged_best_file_in_one_line(finished, data,
                                                                                           tmp_path, capsys):
    run = tmp_path / "run"
    train(run, data, max_steps=6)
    good = read_weights(run, "latest")
    damage(run / "checkpoints" / "step-6" / "variables.npz", "truncated")
    with pytest.warns(UserWarning, match="skipped the unreadable checkpoint step-6"):
        saved = read_weights(run, "latest")
    assert saved.path == run / "checkpoints" / "step-4" / "variables.npz" and len(saved.skipped) == 1
    assert len(saved.arrays) == len(good.arrays)
    assert main(["export", str(run), "--out", str(tmp_path / "latest"), "--format", "keras", "--weights", "latest",
                 "--quiet"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and re.match(r"tfnas: warning: skipped the unreadable checkpoint step-6: .*step-6/"
                                         r"variables\.npz is truncated or corrupted \(", warned[0]), warned
    damage(run / "best" / "weights.npz", "garbage")
    with pytest.raises(CorruptCheckpointError, match=r"best/weights\.npz is truncated or corrupted \(not an \.npz "
                                                     r"archive\); run the same `tfnas train` again to rebuild it from "
                                                     r"the newest checkpoint \(.*step-6\), or export that checkpoint "
                                                     r"\(--weights latest\)$"):
        read_weights(run, "best")
    assert main(["export", str(run), "--out", str(tmp_path / "export"), "--format", "keras", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "best/weights.npz is truncated or corrupted" in err and "pickle" not in err


def test_a_finished_run_with_damaged_best_weights_says_so_and_is_completed_in_its_folder(data, tmp_path, capsys):
    """Issue 26 item 19: a damaged ``best/weights.npz`` of a finished run, and the same file once set aside as
    ``best/corrupt-weights.npz``, are named as such (not "never evaluated"); rerunning the training in the folder
    rebuilds ``best/`` from the newest checkpoint's evaluated weights, tests with them, and the run exports."""
    run = tmp_path / "run"
    train(run, data)
    best = run / "best" / "weights.npz"
    set_aside = run / "best" / "corrupt-weights.npz"

    def export_error() -> str:
        assert main(["export", str(run), "--out", str(tmp_path / "export"), "--format", "keras", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "never evaluated" not in err, err
        return err

    def rerun() -> list[str]:
        history = History()
        result = Trainer(train_config(), resolve_genotype("darts_v2"), run, corpus=data[2],
                         callbacks=[history]).fit()
        assert result.test_ppl is not None and np.isfinite(result.test_ppl)
        assert json.loads((run / "result.json").read_text())["test_ppl"] == result.test_ppl
        rebuilt, latest = read_weights(run, "best"), read_weights(run, "latest")
        assert rebuilt.path == best and len(rebuilt.arrays) == len(latest.arrays)
        for a, b in zip(rebuilt.arrays, latest.arrays):
            np.testing.assert_array_equal(a, b)
        return messages(history)

    damage(best, "garbage")
    assert re.search(r"best/weights\.npz is truncated or corrupted \(not an \.npz archive\); run the same `tfnas "
                     r"train` again to rebuild it from the newest checkpoint \(.*step-8\), or export that "
                     r"checkpoint \(--weights latest\)$", export_error())
    texts = rerun()
    assert any(re.fullmatch(r"warning: .*best/weights\.npz is truncated or corrupted \(not an \.npz archive\): set "
                            r"aside as best/corrupt-weights\.npz; best/weights\.npz rebuilt from checkpoint step-8 "
                            r"\(valid ppl \d+\.\d\d\)", t) for t in texts), texts
    assert set_aside.exists()

    best.replace(set_aside)        # what an earlier tfnas left: the damaged file set aside, no best weights
    with pytest.raises(CorruptCheckpointError, match=r"best/weights\.npz was damaged and set aside as "
                                                     r"best/corrupt-weights\.npz; run the same `tfnas train` again "
                                                     r"to rebuild it from the newest checkpoint \(.*step-8\), or "
                                                     r"export that checkpoint \(--weights latest\)$"):
        read_weights(run, "best")
    assert "was damaged and set aside as best/corrupt-weights.npz" in export_error()
    texts = rerun()
    assert any(re.fullmatch(r"warning: .*best/weights\.npz is missing \(set aside as best/corrupt-weights\.npz\); "
                            r"best/weights\.npz rebuilt from checkpoint step-8 \(valid ppl \d+\.\d\d\)", t)
               for t in texts), texts
    assert main(["export", str(run), "--out", str(tmp_path / "export"), "--format", "keras", "--quiet"]) == 0


# ------------------------------------------------------------- item 5: history and TensorBoard after a kill
@pytest.mark.parametrize("strategy", ["nasabn", "enas"])
def test_a_kill_after_an_epoch_end_leaves_one_history_line_per_epoch(data, tmp_path, strategy):
    settings = dict(max_steps=None, epochs=2, batch_size=16, checkpoint_interval=10)
    run_search(strategy, tmp_path / "full", data, **settings)
    with pytest.raises(KeyboardInterrupt):                  # after the epoch's evaluation, before its checkpoint
        run_search(strategy, tmp_path / "cut", data, [Kill("epoch", epoch=1)], **settings)
    run_search(strategy, tmp_path / "cut", data, **settings)
    lines = [json.loads(line) for line in (tmp_path / "cut" / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in lines] == [1, 2]
    assert lines == [json.loads(line) for line in (tmp_path / "full" / "history.jsonl").read_text().splitlines()]


def test_a_truncated_history_is_rewritten_from_the_checkpoint(finished, data, tmp_path):
    out = tmp_path / "s"
    run_search("nasabn", out, data)
    whole = (out / "history.jsonl").read_text()
    (out / "history.jsonl").write_text(whole[: len(whole) // 2])        # killed while appending (older tfnas)
    run_search("nasabn", out, data)                                       # finished: it only resumes and ends
    assert (out / "history.jsonl").read_text() == whole


def scalars(logdir: Path) -> list[tuple[str, int, float]]:
    """Every scalar ``(run:tag, step, value)`` of the event files under ``logdir`` (its runs ``train``,
    ``validation`` and ``.``), in the order they were written."""
    events = []
    for path in logdir.rglob("events.out.tfevents.*"):
        run = path.parent.relative_to(logdir).as_posix()
        events += [(run, e) for e in tf.compat.v1.train.summary_iterator(str(path))]
    events.sort(key=lambda pair: pair[1].wall_time)
    return [(f"{run}:{v.tag}", e.step, float(tf.make_ndarray(v.tensor))) for run, e in events
            for v in e.summary.value if v.metadata.plugin_data.plugin_name == "scalars"]


def test_replayed_tensorboard_steps_end_with_the_values_of_an_uninterrupted_run(data, tmp_path):
    """TensorBoard keeps the last value written at a step: after a resume, the replayed steps hold what an
    uninterrupted run writes (timings aside)."""
    logs = {}
    for name, kills in (("full", []), ("cut", [Kill("train", step=7)])):
        logger = TensorBoardLogger(tmp_path / name / "tb")
        try:
            run_search("nasabn", tmp_path / name, data, [logger, *kills], checkpoint_interval=3)
        except KeyboardInterrupt:
            logger.close()                                  # what it wrote reached the disk before the kill
            logger = TensorBoardLogger(tmp_path / name / "tb")
            run_search("nasabn", tmp_path / name, data, [logger], checkpoint_interval=3)
        logger.close()
        timing = ("s_per_step", "tok_per_s")
        logs[name] = [(tag, step, v) for tag, step, v in scalars(tmp_path / name / "tb") if not tag.endswith(timing)]
    written = [(tag, step) for tag, step, _ in logs["cut"]]
    assert len(written) > len(set(written))                                   # steps 7 was written twice
    last = {(tag, step): v for tag, step, v in logs["cut"]}
    assert last == {(tag, step): v for tag, step, v in logs["full"]}


# ------------------------------------------------------------- item 4: NaN recovery
class NanWhileFast(NasabnSearch):
    """A NaN loss at step 5 until the learning rates are below ``threshold`` times their value."""

    threshold = 0.1

    def search_step(self, train, lr, update_arch):
        logs, t = super().search_step(train, lr, update_arch)
        if self.step + 1 == 5 and self.lr_factor > self.threshold:
            logs["loss"] = float("nan")
        return logs, t


class StopAt(Callback):
    """Raises KeyboardInterrupt (a kill) on the message that contains ``text``."""

    def __init__(self, text):
        self.text = text

    def on_event(self, kind, logs):
        if kind == "message" and self.text in logs["text"]:
            raise KeyboardInterrupt(self.text)


def test_recoveries_halve_the_learning_rates_again_and_again(data, tmp_path):
    history = History()
    search = NanWhileFast(tiny_search_config("nasabn", data[1], nan_retries=4))
    result = search.search(data[2], tmp_path / "s", [history])
    assert result.metrics["recoveries"] == 4 and search.lr_factor == 0.0625 and result.metrics["steps"] == 8
    recovered = [t for t in messages(history) if "restored" in t]
    step4 = tmp_path / "s" / "checkpoints" / "step-4"
    assert recovered == [f"loss nan (not finite) at step 5: restored {step4} (step 4), learning rates now "
                         f"x{0.5 ** k} (recovery {k} of 4)" for k in (1, 2, 3, 4)]


def test_recoveries_survive_a_restart(data, tmp_path):
    config = tiny_search_config("nasabn", data[1], nan_retries=4)
    full = NanWhileFast(config)
    full.search(data[2], tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        NanWhileFast(config).search(data[2], tmp_path / "cut", [StopAt("recovery 3 of 4")])
    assert json.loads((tmp_path / "cut" / "recovery.json").read_text())["lr_factor"] == 0.125
    history = History()
    resumed = NanWhileFast(config)
    result = resumed.search(data[2], tmp_path / "cut", [history])
    assert [t for t in messages(history) if "recovery" in t] == [
        f"loss nan (not finite) at step 5: restored {tmp_path / 'cut' / 'checkpoints' / 'step-4'} (step 4), "
        "learning rates now x0.0625 (recovery 4 of 4)"]
    assert result.metrics["recoveries"] == 4 and resumed.lr_factor == full.lr_factor == 0.0625
    assert_same_checkpoints(tmp_path / "full", tmp_path / "cut")


class BlowUp(EnasSearch):
    """Every training loss is 1e9, above ENAS' ``max_loss``."""

    def search_step(self, train, lr, update_arch):
        logs, t = super().search_step(train, lr, update_arch)
        return {**logs, "loss": 1e9}, t


def test_the_last_recovery_names_the_step_and_the_loss_seen(data, tmp_path):
    history = History()
    with pytest.raises(SearchDivergedError, match=r"^the search loss was 1e\+09 \(above max_loss 100\) at step 1 "
                                                  r"after 1 recoveries \(learning rates x0\.5\); no genotype was "
                                                  r"written"):
        BlowUp(tiny_search_config("enas", data[1], nan_retries=1)).search(data[2], tmp_path / "s", [history])
    assert messages(history)[-1] == (f"loss 1e+09 (above max_loss 100) at step 1: restored "
                                     f"{tmp_path / 's' / 'checkpoints' / 'step-0'} (step 0), learning rates now x0.5 "
                                     "(recovery 1 of 1)")
    assert not (tmp_path / "s" / "genotype.json").exists()


# ------------------------------------------------------------- item 14: Ctrl-C checkpoints between steps
class CtrlC(Callback):
    """Sends this process SIGINT (as Ctrl-C does) on the ``kind`` event at ``step``."""

    def __init__(self, kind, step):
        self.kind, self.step = kind, step

    def on_event(self, kind, logs):
        if kind == self.kind and logs.get("step") == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def ctrl_c():
    """Python's own SIGINT handler for the test (a test run started in the background inherits an ignored
    SIGINT, and Python then installs none), the previous one put back after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def default_sigint() -> None:
    """In a child process before it starts Python: SIGINT as a terminal delivers it (not ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("kind", ["train", "nasabn", "wenet", "random"])
def test_ctrl_c_writes_a_checkpoint_at_the_next_step_boundary_and_resumes_exactly(data, tmp_path, ctrl_c, kind):
    event, step, latest, settings = {"train": ("train", 5, "step-5", dict(checkpoint_interval=4)),
                                     "nasabn": ("train", 5, "step-5", dict(checkpoint_interval=4)),
                                     "wenet": ("train", 3, "step-3", dict(checkpoint_interval=4)),
                                     "random": ("round", 1, "step-1", dict(checkpoint_interval=2))}[kind]
    space = DagSpace(2)
    evaluator = SyntheticEvaluator(space, space.encode(space.sample(np.random.default_rng(0))))

    def run(out, callbacks=()):
        if kind == "train":
            return train(out, data, callbacks, **settings)
        if kind == "random":
            config = tiny_search_config("random", data[1], **settings)
            return get_strategy("random").strategy_class(config, evaluator=evaluator).search(data[2], out, callbacks)
        return run_search(kind, out, data, callbacks, **settings)

    run(tmp_path / "full")
    before = signal.getsignal(signal.SIGINT)
    history = History()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", [CtrlC(event, step), history])
    assert signal.getsignal(signal.SIGINT) is before                        # the handler is put back
    assert any("interrupted" in t for t in messages(history)), messages(history)
    folder = tmp_path / "cut" / ("rounds/round-0000" if kind == "wenet" else "")
    assert (folder / "checkpoints" / "latest").read_text() == latest
    run(tmp_path / "cut")
    if kind == "train" or kind == "nasabn":
        assert_same_checkpoints(tmp_path / "full", tmp_path / "cut")
    else:                                           # what the search records of its rounds or trials
        name = {"wenet": "wenet_state.json", "random": "trials.jsonl"}[kind]
        assert computed_record(tmp_path / "cut" / name) == computed_record(tmp_path / "full" / name)


def test_ctrl_c_on_the_command_line_exits_130_with_a_checkpoint(data, tmp_path):
    argv = [sys.executable, "-m", "tfnas.cli", "train", "--genotype", "darts_v2", "--dataset", str(data[1]),
            "--out", str(tmp_path / "r"), "--emsize", "8", "--nhid", "8", "--batch-size", "4", "--bptt", "8",
            "--max-steps", "400", "--checkpoint-interval", "1000", "--log-interval", "1", "--no-test"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, preexec_fn=default_sigint)
    for line in proc.stdout:
        if line.startswith("[train] step 5 "):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    step = int((tmp_path / "r" / "checkpoints" / "latest").read_text().removeprefix("step-"))
    assert step >= 5 and f"interrupted at step {step}: checkpoint" in out
    assert "run the same command again to resume" in err
