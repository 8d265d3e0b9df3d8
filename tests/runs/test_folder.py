"""Run folders: the record, the one resume check (with folders of older tfnas versions), reading weights back."""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field

import numpy as np
import pytest

from tfnas import __version__
from tfnas.config import ModelConfig, TrainConfig
from tfnas.runs.checkpoint import CheckpointManager, save_variables
from tfnas.runs.folder import (MissingWeightsError, corpus_fingerprint, open_run, read_record, read_weights,
                               resumable_fields)

from support import Var

RESUME_HINT = "; use a new --out folder or the same settings to resume"


@dataclass
class Inner:
    """A nested config; its own resumable flag does not make ``inner.rate`` resumable in `Toy`."""

    units: int = 8
    rate: float = field(default=0.1, metadata={"resumable": True, "help": "a rate"})


@dataclass
class Toy:
    """Small settings with the metadata of tfnas configs."""

    inner: Inner = field(default_factory=Inner, metadata={"resumable": False, "help": "nested settings"})
    seed: int = field(default=0, metadata={"resumable": False, "help": "seed"})
    lr: float = field(default=1.0, metadata={"resumable": False, "help": "learning rate"})
    ops: tuple[str, ...] = field(default=("tanh", "relu"), metadata={"help": "ops"})
    log_interval: int = field(default=10, metadata={"resumable": True, "help": "steps between progress lines"})
    data_dir: str | None = field(default=None, metadata={"resumable": True, "help": "where the data are"})


def test_resumable_fields_come_from_the_metadata():
    assert resumable_fields(Toy) == {"log_interval", "data_dir"}
    assert resumable_fields(Inner) == {"rate"}
    assert {"max_steps", "log_interval", "checkpoint_interval", "data_dir"} <= resumable_fields(TrainConfig)
    assert not {"seed", "lr", "model"} & resumable_fields(TrainConfig)


def test_a_new_folder_gets_its_record(tmp_path):
    out = tmp_path / "runs" / "toy"
    assert open_run(out, "search", "toy", Toy()) is None
    assert json.loads((out / "config.json").read_text()) == {
        "format": "tfnas-run", "version": 2, "kind": "search", "strategy": "toy",
        "config": {"inner": {"units": 8, "rate": 0.1}, "seed": 0, "lr": 1.0, "ops": ["tanh", "relu"],
                   "log_interval": 10, "data_dir": None},
        "data": None, "tfnas_version": __version__}


def test_the_refusal_lists_every_non_resumable_difference(tmp_path):
    open_run(tmp_path, "search", "toy", Toy())
    before = (tmp_path / "config.json").read_text()
    changed = Toy(inner=Inner(units=16, rate=0.5), seed=1, lr=2.0, ops=("tanh",), log_interval=3)
    message = (f"{tmp_path} holds a `toy` search with another configuration (inner.rate: 0.1 -> 0.5, "
               f"inner.units: 8 -> 16, lr: 1.0 -> 2.0, ops: ['tanh', 'relu'] -> ['tanh'], seed: 0 -> 1)"
               f"{RESUME_HINT}")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        open_run(tmp_path, "search", "toy", changed)
    assert (tmp_path / "config.json").read_text() == before          # nothing recorded


def test_a_resumable_change_is_accepted_and_recorded(tmp_path):
    open_run(tmp_path, "search", "toy", Toy())
    previous = open_run(tmp_path, "search", "toy", Toy(log_interval=3, data_dir="/data"))
    assert previous.config["log_interval"] == 10 and previous.source == "config.json"
    record = read_record(tmp_path)
    assert (record.kind, record.strategy) == ("search", "toy")
    assert record.config["log_interval"] == 3 and record.config["data_dir"] == "/data"


def test_another_kind_or_strategy_is_refused(tmp_path):
    open_run(tmp_path / "train", "train", None, TrainConfig())
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'train'} holds a `tfnas train` run, not a `darts` "
                                                   "search; use a new --out folder")):
        open_run(tmp_path / "train", "search", "darts", Toy())
    open_run(tmp_path / "search", "search", "wenet", Toy())
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'search'} holds a `wenet` search, not a `darts` "
                                                   "search; use a new --out folder")):
        open_run(tmp_path / "search", "search", "darts", Toy())
    with pytest.raises(ValueError, match=r"`kind` must be one of \['train', 'search'\]; received: kind='eval'"):
        open_run(tmp_path / "x", "eval", None, Toy())


def test_a_legacy_train_folder_resumes_and_gets_a_record(tmp_path):
    """A folder of an older ``tfnas train``: ``config.json`` is the flat `TrainConfig`."""
    old = TrainConfig(max_steps=10, model=ModelConfig(emsize=16, nhid=16))
    (tmp_path / "config.json").write_text(json.dumps(dataclasses.asdict(old)))
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ValueError, match=re.escape("holds a `tfnas train` run with another configuration "
                                                   "(model.nhid: 16 -> 32, seed: 1267 -> 3)")):
        open_run(tmp_path, "train", None, dataclasses.replace(old, seed=3, model=ModelConfig(emsize=16, nhid=32)))
    previous = open_run(tmp_path, "train", None, dataclasses.replace(old, max_steps=20))
    assert previous.kind == "train" and previous.config["max_steps"] == 10
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["format"] == "tfnas-run" and record["kind"] == "train" and record["config"]["max_steps"] == 20


def test_a_legacy_trainer_run_resumes_with_the_trainer(tmp_path, tiny_corpus):
    from tfnas.data import load_corpus
    from tfnas.genotypes.files import resolve_genotype
    from tfnas.lm.trainer import Trainer

    config = TrainConfig(batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=8, max_steps=2, log_interval=1,
                         checkpoint_interval=1, model=ModelConfig(emsize=8, nhid=8))
    corpus, genotype = load_corpus(tiny_corpus), resolve_genotype("darts_v2")
    Trainer(config, genotype, tmp_path / "r", corpus=corpus).fit(evaluate_test=False)
    (tmp_path / "r" / "config.json").write_text(json.dumps(dataclasses.asdict(config)))   # as tfnas 0.1 wrote it
    result = Trainer(dataclasses.replace(config, max_steps=4), genotype, tmp_path / "r", corpus=corpus).fit(
        evaluate_test=False)
    assert result.steps == 4 and [h["step"] for h in result.history] == [2, 4]
    assert read_record(tmp_path / "r").config["max_steps"] == 4
    with pytest.raises(ValueError, match="holds a run of another cell; use a new --out folder"):
        Trainer(config, resolve_genotype("darts_v1"), tmp_path / "r", corpus=corpus)


def test_legacy_search_folders_resume_when_their_settings_can_be_read(tmp_path):
    # A black-box search of an older tfnas kept its settings in search_config.json.
    bb = tmp_path / "random"
    bb.mkdir()
    (bb / "search_config.json").write_text(json.dumps({"strategy": "toy", **dataclasses.asdict(Toy())}))
    (bb / "checkpoints").mkdir()
    with pytest.raises(ValueError, match=re.escape("with another configuration (seed: 0 -> 4)")):
        open_run(bb, "search", "toy", Toy(seed=4))
    assert open_run(bb, "search", "toy", Toy(log_interval=1)).source == "search_config.json"
    assert read_record(bb).config["log_interval"] == 1
    # WeNet kept them inside its pool state.
    wenet = tmp_path / "wenet"
    wenet.mkdir()
    (wenet / "wenet_state.json").write_text(json.dumps({"format": "tfnas-wenet-state", "config":
                                                        dataclasses.asdict(Toy(lr=0.5))}))
    with pytest.raises(ValueError, match=re.escape("holds a `wenet` search with another configuration "
                                                   "(lr: 0.5 -> 1.0)")):
        open_run(wenet, "search", "wenet", Toy())
    # Settings that no longer fit the config class are refused with the reason.
    with pytest.raises(ValueError, match=r"holds settings this tfnas cannot read \(.*unknown key 'round_epochs'"):
        (wenet / "wenet_state.json").write_text(json.dumps({"config": {"round_epochs": 1}}))
        open_run(wenet, "search", "wenet", Toy())


def test_a_legacy_search_folder_without_settings_is_refused(tmp_path):
    """DARTS searches of an older tfnas left checkpoints but no settings."""
    (tmp_path / "checkpoints" / "step-4").mkdir(parents=True)
    message = (f"{tmp_path} was written by an older tfnas without its settings; they cannot be checked: "
               "use a new --out folder")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        open_run(tmp_path, "search", "darts", Toy())
    assert not (tmp_path / "config.json").exists()


RECORD = {"format": "tfnas-run", "version": 2, "kind": "search", "strategy": "toy", "config": {}, "data": None}


@pytest.mark.parametrize("file, content, message", [
    ("config.json", [1], "is not a run record: it holds [1], not a JSON object"),
    ("config.json", "toy", "is not a run record: it holds 'toy', not a JSON object"),
    ("config.json", {k: v for k, v in RECORD.items() if k != "kind"}, "is a damaged run record: kind missing"),
    ("config.json", {**RECORD, "strategy": None, "config": [], "data": 3},
     "is a damaged run record: strategy, config, data missing or malformed"),
    ("config.json", {**RECORD, "kind": ["train"], "strategy": 1}, "is a damaged run record: kind, strategy missing"),
    ("search_config.json", None, "is not a run record: it holds None, not a JSON object"),
])
def test_a_record_that_is_not_an_object_or_lacks_a_field_is_refused_on_one_line_naming_it(tmp_path, file, content,
                                                                                       message):
    (tmp_path / file).write_text(json.dumps(content), encoding="utf-8")
    for read in (lambda: read_record(tmp_path), lambda: open_run(tmp_path, "search", "toy", Toy())):
        with pytest.raises(ValueError) as info:
            read()
        assert str(info.value).startswith(f"{tmp_path / file} {message}") and "\n" not in str(info.value)


def test_read_weights_best_and_latest(tmp_path):
    model = [Var("w", np.arange(6, dtype=np.float32).reshape(2, 3)), Var("seed", np.int64(7))]
    averages = [Var("avg", np.full((2, 3), 0.5, np.float32))]
    with pytest.raises(MissingWeightsError, match="has no checkpoint and no best/weights.npz") as info:
        read_weights(tmp_path, "best")
    assert info.value.latest is None
    with pytest.raises(MissingWeightsError, match=r"has no checkpoint \(checkpoints/latest is missing\)"):
        read_weights(tmp_path, "latest")

    # The writer records which saved variables are the weights it evaluates (here: the averages).
    latest = CheckpointManager(tmp_path / "checkpoints").save(3, model + averages, {}, weights=averages)
    saved = read_weights(tmp_path, "latest")
    assert saved.path == latest / "variables.npz"
    np.testing.assert_array_equal(saved.arrays[0], np.full((2, 3), 0.5, np.float32))
    assert len(saved.arrays) == 1
    with pytest.raises(MissingWeightsError, match=r"has no best/weights\.npz: the run was never evaluated\. Its "
                                                  r"newest checkpoint is .*step-3") as info:
        read_weights(tmp_path, "best")
    assert info.value.latest == latest

    (tmp_path / "best").mkdir()
    save_variables(tmp_path / "best" / "weights.npz", model[:1])
    best = read_weights(tmp_path, "best")
    assert best.path == tmp_path / "best" / "weights.npz"
    np.testing.assert_array_equal(best.arrays[0], model[0].value)

    # A checkpoint of an older tfnas does not say which variables are the weights.
    CheckpointManager(tmp_path / "checkpoints").save(4, model + averages, {})
    with pytest.raises(MissingWeightsError, match="step-4 was written by an older tfnas that did not record which "
                                                  "of its variables are the model's weights"):
        read_weights(tmp_path, "latest")
    with pytest.raises(ValueError, match="`which` must be one of"):
        read_weights(tmp_path, "newest")


class Words:
    """A corpus as `corpus_fingerprint` reads it."""

    def __init__(self, vocab, train, valid=(0,), test=(1,)):
        self.vocab, self.train, self.valid, self.test = vocab, np.array(train), np.array(valid), np.array(test)


def test_the_fingerprint_is_sha256_of_the_words_and_of_the_ids():
    import hashlib

    corpus = Words(["<eos>", "a", "b"], [1, 2, 0])
    ids = hashlib.sha256()
    for split in ([1, 2, 0], [0], [1]):
        ids.update(np.int64(len(split)).tobytes() + np.array(split, "<i8").tobytes())
    assert corpus_fingerprint(corpus) == {"words": 3, "vocabulary": hashlib.sha256(b"<eos>\na\nb").hexdigest(),
                                          "tokens": 5, "token_ids": ids.hexdigest()}
    # The same ids in other splits, the same words in another order: other fingerprints.
    assert corpus_fingerprint(Words(["<eos>", "a", "b"], [1, 2], [0, 0]))["token_ids"] != ids.hexdigest()
    assert corpus_fingerprint(Words(["a", "<eos>", "b"], [1, 2, 0]))["token_ids"] == ids.hexdigest()
    assert corpus_fingerprint(Words(["a", "<eos>", "b"], [1, 2, 0]))["vocabulary"] != \
        corpus_fingerprint(corpus)["vocabulary"]


def test_a_run_is_resumed_on_its_data_only(tmp_path):
    data = corpus_fingerprint(Words(["<eos>", "a", "b"], [1, 2, 0]))
    open_run(tmp_path, "search", "toy", Toy(), data)
    assert read_record(tmp_path).data == data
    open_run(tmp_path, "search", "toy", Toy(), data)
    other = corpus_fingerprint(Words(["<eos>", "b", "a"], [1, 2, 0]))
    with pytest.raises(ValueError, match=r"^.* holds a `toy` search on other data \(its vocabulary differs: 3 words, "
                                         r"sha256 \w{12} -> 3 words, sha256 \w{12}\); use the corpus it was started "
                                         r"on \(--dataset, --data-dir\) or a new --out folder$"):
        open_run(tmp_path, "search", "toy", Toy(), other)
    # A record without a fingerprint (an older tfnas) takes the one of the run that resumes it.
    legacy = tmp_path / "legacy"
    open_run(legacy, "search", "toy", Toy())
    open_run(legacy, "search", "toy", Toy(), other)
    assert read_record(legacy).data == other
    open_run(legacy, "search", "toy", Toy())                         # a caller without data keeps it
    assert read_record(legacy).data == other
