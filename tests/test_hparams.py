"""Searches in TensorBoard's HParams dashboard: one session per black-box trial, equal to the trial records,
none twice after a resume; a one-shot search's settings and final metrics."""
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import metadata

from support import FailingEvaluator, Kill, SyntheticEvaluator
from tfnas.config import ModelConfig
from tfnas.data import load_corpus
from tfnas.genotypes.dag import ACTIVATIONS
from tfnas.hparams import HPARAMS_DIR
from tfnas.spaces.dag import DagSpace
from tfnas.spaces.tree import TreeSpace
from tfnas.strategies.base import SearchDivergedError
from tfnas.strategies.black_box.random_search import RandomConfig, RandomSearch
from tfnas.strategies.one_shot.darts import DartsConfig, DartsSearch


def plain(value):
    """A ``google.protobuf.Value`` as Python."""
    return getattr(value, value.WhichOneof("kind"))


def read_hparams(out: Path):
    """The experiments and the sessions ``(run, SessionStartInfo, {metric tag: value})`` of every events file under
    the search folder ``out``'s HParams folder."""
    logdir = out / HPARAMS_DIR
    experiments, sessions = [], []
    for path in sorted(logdir.rglob("events.out.tfevents.*")):
        start, scalars = None, {}
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                content = value.metadata.plugin_data.content
                if value.tag == metadata.EXPERIMENT_TAG:
                    experiments.append(metadata.parse_experiment_plugin_data(content))
                elif value.tag == metadata.SESSION_START_INFO_TAG:
                    start = metadata.parse_session_start_info_plugin_data(content)
                else:
                    scalars[value.tag] = float(tf.make_ndarray(value.tensor))
        if start is not None:
            sessions.append((path.parent.relative_to(logdir).as_posix(), start, scalars))
    return experiments, sessions


def recorded_trials(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]


def dag_choices(genotype: dict) -> dict:
    """The hyperparameters of a DAG genotype record, as the module docstring of `tfnas.hparams` names them."""
    out = {"node0_activation": genotype["first_activation"]} if genotype["first_node"] == "enas" else {}
    for i, (activation, predecessor) in enumerate(genotype["nodes"], start=1):
        out.update({f"node{i}_activation": activation, f"node{i}_input": predecessor})
    return out


def tree_choices(genotype: dict) -> dict:
    out = {}
    for k, (combination, activation) in enumerate(genotype["nodes"]):
        out.update({f"node{k}_combination": combination, f"node{k}_activation": activation})
    return {**out, "inject_combination": genotype["inject"][0], "inject_activation": genotype["inject"][1],
            "inject_node": genotype["inject_node"], "cell_node": genotype["cell_node"]}


def assert_sessions_are_the_trials(out: Path, choices) -> None:
    """One session per recorded trial, named after it, with its genotype's choices and its valid ppl."""
    _, sessions = read_hparams(out)
    trials = recorded_trials(out)
    assert [run for run, _, _ in sessions] == [f"trial-{t['trial']:05d}" for t in trials]
    for (run, start, scalars), trial in zip(sessions, trials):
        assert start.group_name == run
        assert {k: plain(v) for k, v in start.hparams.items()} == choices(trial["genotype"])
        if trial["ppl"] is None:
            assert scalars == {}
        else:
            assert scalars == {"valid_ppl": pytest.approx(trial["ppl"], rel=1e-6)}


def test_random_dag_search_logs_the_space_and_one_session_per_trial(tmp_path, tiny_corpus):
    space = DagSpace(3, first_node="enas")
    config = RandomConfig(space="dag", steps=3, first_node="enas", max_trials=6, trials_per_round=2, seed=4)
    search = RandomSearch(config, evaluator=SyntheticEvaluator(space, space.encode(space.sample(0))))
    search.search(load_corpus(tiny_corpus), tmp_path / "s")
    (experiment,), _ = read_hparams(tmp_path / "s")
    domains = {h.name: [plain(v) for v in h.domain_discrete.values] for h in experiment.hparam_infos}
    activations = sorted(ACTIVATIONS)
    assert domains == {"node0_activation": activations, "node1_activation": activations, "node1_input": [0],
                       "node2_activation": activations, "node2_input": [0, 1],
                       "node3_activation": activations, "node3_input": [0, 1, 2]}
    assert [m.name.tag for m in experiment.metric_infos] == ["valid_ppl"]
    assert_sessions_are_the_trials(tmp_path / "s", dag_choices)


def test_failed_trials_have_sessions_without_a_metric(tmp_path, tiny_corpus):
    space = DagSpace(2)
    config = RandomConfig(space="dag", steps=2, max_trials=2, trials_per_round=2, trial_retries=0)
    search = RandomSearch(config, evaluator=FailingEvaluator(SyntheticEvaluator(space, [0] * 4), failures=100))
    with pytest.raises(SearchDivergedError):
        search.search(load_corpus(tiny_corpus), tmp_path / "s")
    assert [t["ppl"] for t in recorded_trials(tmp_path / "s")] == [None, None]
    assert_sessions_are_the_trials(tmp_path / "s", dag_choices)


def test_killed_and_resumed_tree_search_logs_every_trial_once(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    space = TreeSpace(2)
    target = space.encode(space.sample(np.random.default_rng(7)))

    def run(name, max_trials, callbacks=()):
        config = RandomConfig(space="tree", base=2, max_trials=max_trials, trials_per_round=2, seed=3,
                              checkpoint_interval=2)
        return RandomSearch(config, evaluator=SyntheticEvaluator(space, target)).search(corpus, tmp_path / name,
                                                                                        callbacks)

    run("full", 8)
    with pytest.raises(KeyboardInterrupt):
        run("cut", 8, [Kill("round", step=3)])
    # Killed after round 3 logged its trials; the checkpoint (round 2) holds 4 of the 6 logged.
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text() == "step-2"
    assert len(read_hparams(tmp_path / "cut")[1]) == 6
    run("cut", 4)                                  # resumed with fewer trials: those beyond are dropped
    assert len(read_hparams(tmp_path / "cut")[1]) == 4
    assert_sessions_are_the_trials(tmp_path / "cut", tree_choices)
    run("cut", 8)
    assert_sessions_are_the_trials(tmp_path / "cut", tree_choices)
    assert recorded_trials(tmp_path / "cut") == recorded_trials(tmp_path / "full")
    (full_experiment,), full = read_hparams(tmp_path / "full")
    (cut_experiment,), cut = read_hparams(tmp_path / "cut")
    assert [(run, s.hparams, m) for run, s, m in cut] == [(run, s.hparams, m) for run, s, m in full]
    assert cut_experiment.hparam_infos == full_experiment.hparam_infos


def test_one_shot_search_logs_its_settings_and_final_metrics_once(tmp_path, tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    config = DartsConfig(model=ModelConfig(emsize=8, nhid=8), steps=2, batch_size=4, eval_batch_size=4, bptt=8,
                         max_steps=2, max_eval_batches=2, checkpoint_interval=100, seed=1)
    result = DartsSearch(config).search(corpus, tmp_path / "s")
    DartsSearch(config).search(corpus, tmp_path / "s")      # run again on the finished search: rewritten, not added
    (experiment,), sessions = read_hparams(tmp_path / "s")
    ((run, start, scalars),) = sessions
    hparams = {k: plain(v) for k, v in start.hparams.items()}
    assert run == "final"
    assert hparams["strategy"] == "darts" and hparams["model.nhid"] == 8 and hparams["steps"] == 2
    assert hparams["arch_lr"] == pytest.approx(config.arch_lr) and hparams["lr"] == config.lr
    assert hparams["model.recompute"] is config.model.recompute and "ops" not in hparams   # scalars only
    g = result.genotype
    assert {k: hparams[k] for k in dag_choices(g.to_dict())} == dag_choices(g.to_dict())
    assert scalars == {"valid_ppl": pytest.approx(result.metrics["valid_ppl"], rel=1e-6), "steps": 2.0,
                       "recoveries": 0.0}
    assert sorted(h.name for h in experiment.hparam_infos) == sorted(hparams)
    assert sorted(m.name.tag for m in experiment.metric_infos) == ["recoveries", "steps", "valid_ppl"]


def test_tfnas_train_logs_its_settings_genotype_and_final_metrics(tmp_path, tiny_corpus):
    """Issue 28 item 4: ``tfnas train`` (and `tfnas.train`) writes the HParams session ``final`` too: its settings,
    its genotype's choices, and the perplexities it returns."""
    import tfnas
    from tfnas.config import TrainConfig
    from tfnas.hparams import config_hparams
    from tfnas.settings import from_dict

    run = tfnas.train("darts_v2", str(tiny_corpus), tmp_path / "t", verbose=0, batch_size=4, eval_batch_size=4,
                      test_batch_size=4, bptt=6, max_steps=3, log_interval=1, model={"emsize": 8, "nhid": 8})
    (experiment,), ((name, start, scalars),) = read_hparams(tmp_path / "t")
    hparams = {k: plain(v) for k, v in start.hparams.items()}
    assert name == "final" and "strategy" not in hparams
    config = from_dict(TrainConfig, json.loads((tmp_path / "t" / "config.json").read_text())["config"])
    assert {k: hparams[k] for k in config_hparams(config)} == pytest.approx(config_hparams(config))
    assert hparams["model.nhid"] == 8 and hparams["max_steps"] == 3
    assert {k: hparams[k] for k in dag_choices(run.genotype.to_dict())} == dag_choices(run.genotype.to_dict())
    assert len(hparams) == len(config_hparams(config)) + len(dag_choices(run.genotype.to_dict()))
    assert scalars == {"valid_ppl": pytest.approx(run.valid_ppl, rel=1e-6),
                       "best_valid_ppl": pytest.approx(run.best_valid_ppl, rel=1e-6),
                       "test_ppl": pytest.approx(run.test_ppl, rel=1e-6)}
    assert sorted(m.name.tag for m in experiment.metric_infos) == ["best_valid_ppl", "test_ppl", "valid_ppl"]
