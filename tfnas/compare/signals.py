"""Cheap signals of a comparison's random cells, checked against their retraining (issue 25, item 4).

A search steers by a cheap signal; it can only beat chance if that signal
ranks cells as retraining does. Over the comparison's K random cells,
`compute_signals` measures:

* ``child@<s>``: the validation perplexity of a short child training (the
  black-box searches' children, `signal_child_config`) after each step count of
  `CompareConfig.signal_child_steps` (an ASHA schedule's rungs), one child per
  cell continued from rung to rung in its own folder
  (`tfnas.evaluation.evaluators.ShortTrainingEvaluator.evaluate_at`);
* ``shared weights (<search>)``: the perplexity of each cell under the shared
  weights that a finished ENAS, RSWS or NAO-WS search of the comparison
  trained (`WeightSharingEvaluator`, on every validation window), when the
  cells are of its space;
* ``hidden covariance``: the hidden-state covariance score of the untrained
  cell (Serianni & Kalita 2023; `tfnas.evaluation.proxies`), with the
  retraining recipe's model and seeds, on windows of the validation split.

`correlations` gives, per signal, Spearman's rho with the cells' mean
retrained test perplexity and its bootstrap interval
(`tfnas.compare.statistics.rank_correlation`). Every signal is oriented as a
predicted perplexity (a score where higher is better, the covariance, is
negated), so rho > 0 means the signal ranks cells as retraining does.

The values are kept in ``OUT/signals.json`` (with the settings they were
measured with) as each signal is measured; a resumed comparison measures only
what is missing, and measures again a signal whose settings changed.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tfnas.compare.config import CompareConfig
from tfnas.compare.statistics import rank_correlation
from tfnas.compare.units import random_cells, search_folder
from tfnas.data import Corpus
from tfnas.genotypes.files import as_any_genotype
from tfnas.runs.atomic import read_json, write_json
from tfnas.runs.folder import SEARCH_RESULT_FILE
from tfnas.settings import merge, to_dict

SIGNALS_FILE = "signals.json"
#: Folder of the signal children (``OUT/signals/children/<genotype key>``).
CHILDREN = Path("signals") / "children"
#: The strategies whose searches leave shared weights that score any cell of their space.
SHARED_WEIGHTS_METHODS = ("enas", "rsws", "nao_ws")
#: The name of the hidden-state covariance signal.
COVARIANCE = "hidden covariance"


def child_signal(steps: int) -> str:
    return f"child@{steps}"


def shared_weights_signal(search: str) -> str:
    return f"shared weights ({search})"


def signal_child_config(config: CompareConfig) -> Any:
    """The child recipe of the ``child@<s>`` signals: the black-box children's (random search's default
    ``child``, `tfnas.strategies.black_box.loop.child_config`) with `CompareConfig.signal_child` over it, on the
    comparison's corpus."""
    from tfnas.strategies.registry import get_strategy

    children = get_strategy("random").make_config({}).child
    return merge(children, {**config.signal_child, "dataset": config.dataset, "data_dir": config.data_dir},
                 "signal_child")


def _measured(settings: Any) -> dict[str, Any]:
    """A config's settings as recorded with a signal: without where its data are (`runner.UNMEASURED`'s data keys)."""
    return {key: value for key, value in to_dict(settings).items() if key not in ("data_dir", "download")}


class _Store:
    """``OUT/signals.json``: ``{"cells": [...], "signals": {name: {"settings": ..., "values": {cell: v}}}}``."""

    def __init__(self, out: Path, cells: Sequence[str]):
        self.path = out / SIGNALS_FILE
        data = read_json(self.path) if self.path.exists() else {}
        self.cells = list(cells)
        self.signals: dict[str, Any] = data.get("signals", {}) if data.get("cells") == self.cells else {}

    def has(self, name: str, settings: Mapping[str, Any]) -> bool:
        entry = self.signals.get(name)
        return entry is not None and entry["settings"] == settings and set(entry["values"]) == set(self.cells)

    def put(self, name: str, settings: Mapping[str, Any], values: Mapping[str, float], orientation: int) -> None:
        """Records signal ``name``'s values; ``orientation`` turns them into a predicted perplexity (+1: lower is
        better, -1: higher is better)."""
        self.signals[name] = {"settings": dict(settings), "orientation": orientation, "values": dict(values)}
        write_json(self.path, {"cells": self.cells, "signals": self.signals})


def compute_signals(out: Path, config: CompareConfig, corpus: Corpus, retraining: Any,
                    message: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    """Measures every configured signal of the random cells that ``OUT/signals.json`` lacks; returns its signals.

    Args:
        out: the comparison folder.
        config: the comparison.
        corpus: its corpus.
        retraining: the retraining recipe (`tfnas.config.TrainConfig`): its model and the comparison's seeds
            build the untrained networks of the covariance signal.
        message: receives one line per signal measured.
    """
    cells = random_cells(out, config)
    names = sorted(cells)
    genotypes = [as_any_genotype(cells[name]) for name in names]
    store = _Store(out, names)
    if not genotypes:
        return store.signals
    if config.signal_proxy:
        _covariance(store, names, genotypes, corpus, retraining, config, message)
    if config.signal_child_steps:
        _children(store, names, genotypes, corpus, out, config, message)
    for run in config.search_runs():
        folder = search_folder(out, run)
        if run.strategy in SHARED_WEIGHTS_METHODS and (folder / SEARCH_RESULT_FILE).exists():
            _shared_weights(store, names, genotypes, corpus, folder, run.name, message)
    return store.signals


def _covariance(store: _Store, names: list[str], genotypes: list[Any], corpus: Corpus, retraining: Any,
                config: CompareConfig, message: Callable[[str], None]) -> None:
    from tfnas.evaluation.proxies import hidden_covariance, text_windows

    settings = {"model": to_dict(retraining.model), "seeds": list(config.seeds), "split": "valid"}
    if store.has(COVARIANCE, settings):
        return
    message(f"signal {COVARIANCE}: {len(names)} untrained cells")
    windows = text_windows(corpus.valid)
    values = {name: hidden_covariance(g, windows, len(corpus.vocab), retraining.model, config.seeds)
              for name, g in zip(names, genotypes)}
    store.put(COVARIANCE, settings, values, orientation=-1)


def _children(store: _Store, names: list[str], genotypes: list[Any], corpus: Corpus, out: Path,
              config: CompareConfig, message: Callable[[str], None]) -> None:
    from tfnas.evaluation.evaluators import ShortTrainingEvaluator

    child = signal_child_config(config)
    evaluator = ShortTrainingEvaluator(child, corpus=corpus, workdir=out / CHILDREN)
    for steps in sorted(config.signal_child_steps):
        settings = {"child": _measured(dataclasses.replace(child, max_steps=steps))}
        if store.has(child_signal(steps), settings):
            continue
        message(f"signal {child_signal(steps)}: {len(names)} children trained to {steps} steps")
        scores = evaluator.evaluate_at(genotypes, steps)
        store.put(child_signal(steps), settings, dict(zip(names, scores)), orientation=1)


def _shared_weights(store: _Store, names: list[str], genotypes: list[Any], corpus: Corpus, folder: Path,
                    search: str, message: Callable[[str], None]) -> None:
    from tfnas.evaluation.evaluators import WeightSharingEvaluator

    name = shared_weights_signal(search)
    settings = {"search": str(folder), "seconds": read_json(folder / SEARCH_RESULT_FILE).get("seconds")}
    if store.has(name, settings):
        return
    evaluator = WeightSharingEvaluator.from_search(folder, corpus=corpus)
    outside = [n for n, g in zip(names, genotypes) if not evaluator.space.contains(g)]
    if outside:
        message(f"signal {name} left out: the random cells are not of its space ({outside[0]} ...)")
        return
    message(f"signal {name}: {len(names)} cells scored with its shared weights")
    store.put(name, settings, dict(zip(names, evaluator.evaluate(genotypes))), orientation=1)


def correlations(signals: Mapping[str, Any], target: Mapping[str, float]) -> list[dict[str, Any]]:
    """Per signal, `rank_correlation` of its values (oriented as a predicted perplexity) with ``target`` (each
    random cell's mean retrained test perplexity), over the cells that have both (a diverged child, ``inf``,
    ranks last: it is given the largest finite value of its signal plus one)."""
    rows = []
    for name, entry in signals.items():
        cells = [cell for cell in entry["values"] if cell in target]
        values = [entry["orientation"] * entry["values"][cell] for cell in cells]
        worst = max((v for v in values if math.isfinite(v)), default=0.0) + 1.0
        values = [v if math.isfinite(v) else worst for v in values]
        rows.append({"signal": name, **rank_correlation(values, [target[cell] for cell in cells])})
    return rows
