"""Searches in TensorBoard's HParams dashboard (``tensorboard.plugins.hparams``).

A search writes under ``<out>/tensorboard/hparams/`` (`HPARAMS_DIR`) the
experiment (its hyperparameters with their domains, and its metrics) and
one session per subfolder:

* a black-box search (random, REINFORCE, NAO): ``trial-00012/`` per trial
  (`session_name`), the genotype's choices as hyperparameters and
  ``valid_ppl`` as the metric (none when the trial failed), written by the
  callback `TrialHParams` from the search's ``"round"`` events;
* a one-shot search: ``final/``, its settings (`config_hparams`), the
  derived genotype's choices and its final numeric metrics, written by the
  callback `FinalHParams` on the search's ``"end"`` event;
* a training (``tfnas train``, `tfnas.train`): ``final/``, its settings,
  its genotype's choices (none for the LSTM) and the numbers of its
  ``"end"`` event (``valid_ppl``, ``best_valid_ppl``, ``test_ppl``),
  written by the callback `TrainHParams`.

`start_experiment` empties the folder first: a black-box search's sessions
are rewritten from its trial records at its first round (or end) of each
start or resume, a one-shot search's each time it finishes, and none holds a
session twice.

A genotype's choices (`genotype_hparams`): a DAG cell has
``node<i>_activation`` and ``node<i>_input`` (its predecessor) per node
``i = 1..N``, and ``node0_activation`` when node 0's activation is searched
(``first_node: enas``); a tree cell has ``node<k>_combination`` and
``node<k>_activation`` per node ``k = 0..2 base - 2``, ``inject_combination``,
``inject_activation``, ``inject_node`` and ``cell_node``; either has
``attention`` when it has a head.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from tfnas.callbacks import Callback, float32_scalar, run_callbacks
from tfnas.genotypes.files import AnyGenotype, genotype_from_dict
from tfnas.genotypes.tree import TreeGenotype
from tfnas.runs.atomic import read_json, read_jsonl
from tfnas.runs.folder import SEARCH_RESULT_FILE, TRIALS_FILE
from tfnas.settings import flat_settings
from tfnas.spaces.base import SearchSpace

#: The HParams folder of a search, under its run folder.
HPARAMS_DIR = Path("tensorboard", "hparams")
#: The metric of a black-box trial.
VALID_PPL = "valid_ppl"
#: The session of a one-shot search.
FINAL_SESSION = "final"
#: The key of a black-box search's ``"round"`` event that holds the round's trial records (lines of `TRIALS_FILE`).
ROUND_TRIALS = "new_trials"

#: A hyperparameter value the dashboard shows.
Value = bool | int | float | str


def session_name(trial: int) -> str:
    """The subfolder (and session group) of black-box trial ``trial``: ``trial-00012``."""
    return f"trial-{trial:05d}"


def genotype_hparams(genotype: AnyGenotype) -> dict[str, str | int]:
    """A genotype's choices by hyperparameter name (module docstring)."""
    values: dict[str, str | int] = {}
    if isinstance(genotype, TreeGenotype):
        for k, (combination, activation) in enumerate(genotype.nodes):
            values.update({f"node{k}_combination": combination, f"node{k}_activation": activation})
        values.update(inject_combination=genotype.inject[0], inject_activation=genotype.inject[1],
                      inject_node=genotype.inject_node, cell_node=genotype.cell_node)
    else:
        if genotype.first_node == "enas":
            values["node0_activation"] = genotype.first_activation
        for i, (activation, predecessor) in enumerate(genotype.nodes, start=1):
            values.update({f"node{i}_activation": activation, f"node{i}_input": predecessor})
    if genotype.attention is not None:
        values["attention"] = genotype.attention
    return values


def space_hparams(space: SearchSpace) -> list[hp.HParam]:
    """The `genotype_hparams` of ``space``'s genotypes, each with the values it takes there as its domain.

    Every hyperparameter is one choice of the space: its domain is found by
    varying one choice at a time.
    """
    limits = space.token_choices()
    domains: dict[str, set[str | int]] = {}
    for position, count in enumerate(limits):
        for choice in range(count):
            choices = [0] * len(limits)
            choices[position] = choice
            for name, value in genotype_hparams(space.decode(choices)).items():
                domains.setdefault(name, set()).add(value)
    return [hp.HParam(name, hp.Discrete(values)) for name, values in domains.items()]


def config_hparams(config: Any) -> dict[str, Value]:
    """The scalar settings of a settings dataclass (`tfnas.settings.flat_settings`: a nested section's, or a
    mapping's, as dotted names such as ``model.nhid``)."""
    return {name: value for name, value in flat_settings(config).items() if isinstance(value, (bool, int, float, str))}


@contextmanager
def _events(folder: Path) -> Iterator[None]:
    """Summaries written inside go to a new events file in ``folder``."""
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default(step=0):
        yield
    writer.close()


def start_experiment(out_dir: str | Path, hparams: Sequence[hp.HParam], metrics: Sequence[str]) -> Path:
    """Empties the HParams folder of the search in ``out_dir`` and writes its experiment; returns the folder."""
    logdir = Path(out_dir) / HPARAMS_DIR
    shutil.rmtree(logdir, ignore_errors=True)
    with _events(logdir):
        hp.hparams_config(hparams=list(hparams), metrics=[hp.Metric(tag) for tag in metrics])
    return logdir


def write_session(logdir: Path, name: str, hparams: Mapping[str, Value], metrics: Mapping[str, float | None],
                  step: int) -> None:
    """Session ``name`` in ``logdir``: its hyperparameters, and each metric not None as a scalar at ``step``."""
    with _events(logdir / name):
        hp.hparams(dict(hparams), trial_id=name)
        for tag, value in metrics.items():
            if value is not None:
                tf.summary.scalar(tag, float32_scalar(value), step=step)


def write_final(out_dir: str | Path, strategy: str | None, config: Any, genotype: AnyGenotype | None,
                metrics: Mapping[str, Any], step: int) -> None:
    """A finished one-shot search or training as the experiment of one session, `FINAL_SESSION`.

    Its hyperparameters are ``strategy`` (a search's), the `config_hparams`
    of ``config`` and the `genotype_hparams` of ``genotype`` (None: the
    LSTM); its metrics the numbers of ``metrics`` (booleans and strings left
    out).
    """
    values: dict[str, Value] = {**({"strategy": strategy} if strategy is not None else {}),
                                **config_hparams(config), **(genotype_hparams(genotype) if genotype is not None else {})}
    numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    logdir = start_experiment(out_dir, [hp.HParam(k, hp.Discrete([v])) for k, v in values.items()], list(numbers))
    write_session(logdir, FINAL_SESSION, values, numbers, step)


class FinalHParams(Callback):
    """On a search's ``"end"`` event, `write_final` from the result it saved (``search_result.json``).

    Args:
        out_dir: the search folder.
        strategy: the strategy's name.
        config: the search's settings.
    """

    def __init__(self, out_dir: str | Path, strategy: str, config: Any):
        self.out_dir, self.strategy, self.config = Path(out_dir), strategy, config

    def on_event(self, kind: str, logs: Mapping[str, Any]) -> None:
        if kind != "end":
            return
        result = read_json(self.out_dir / SEARCH_RESULT_FILE)
        metrics = result["metrics"]
        write_final(self.out_dir, self.strategy, self.config, genotype_from_dict(result["genotype"]), metrics,
                    int(metrics["steps"]))


class TrainHParams(Callback):
    """On a training's ``"end"`` event, `write_final` of its settings, its genotype and the event's numbers.

    Args:
        out_dir: the run folder.
        config: the training's settings (`tfnas.config.TrainConfig`).
        genotype: its cell, or None for the LSTM.
    """

    def __init__(self, out_dir: str | Path, config: Any, genotype: AnyGenotype | None):
        self.out_dir, self.config, self.genotype = Path(out_dir), config, genotype

    def on_event(self, kind: str, logs: Mapping[str, Any]) -> None:
        if kind == "end":
            write_final(self.out_dir, None, self.config, self.genotype,
                        {k: v for k, v in logs.items() if k != "step"}, int(logs["step"]))


def train_callbacks(out: str | Path, verbose: int, config: Any, genotype: AnyGenotype | None) -> list[Callback]:
    """The callbacks of a training, as ``tfnas train`` and `tfnas.train` give them: a search's
    (`tfnas.callbacks.run_callbacks`: progress lines unless ``verbose`` is 0, TensorBoard) and `TrainHParams`."""
    return [*run_callbacks(Path(out), verbose, config, genotype), TrainHParams(out, config, genotype)]


class TrialHParams(Callback):
    """A black-box search's experiment: a session per trial, its genotype's choices and its `VALID_PPL`.

    At the first ``"round"`` (or ``"end"``) event of a start or resume it
    rewrites the experiment from the search's `TRIALS_FILE` (the records of
    the checkpoint it resumed from, and the round's); at each later round it
    adds the sessions of the event's `ROUND_TRIALS`.

    Args:
        out_dir: the search folder.
        space: the space searched (the hyperparameters' domains, `space_hparams`).
    """

    def __init__(self, out_dir: str | Path, space: SearchSpace):
        self.out_dir, self.space = Path(out_dir), space
        self.logdir: Path | None = None

    def on_event(self, kind: str, logs: Mapping[str, Any]) -> None:
        if kind not in ("round", "end"):
            return
        if self.logdir is None:
            self.logdir = start_experiment(self.out_dir, space_hparams(self.space), [VALID_PPL])
            trials = read_jsonl(self.out_dir / TRIALS_FILE)
        else:
            trials = logs.get(ROUND_TRIALS, [])
        for trial in trials:
            write_session(self.logdir, session_name(trial["trial"]), genotype_hparams(genotype_from_dict(
                trial["genotype"])), {VALID_PPL: trial["ppl"]}, step=trial["trial"])
