"""Running a comparison: every search, then every retraining, each unit of work in a run folder of its own.

The units and their folders are laid out by `tfnas.compare.units`. A search
or training unit that finished (``search_result.json`` / ``result.json``)
is never run again; one that was interrupted resumes exactly from its own
checkpoints (`tfnas.runs`), so a killed comparison goes on where it stopped.
One process at a time runs a comparison: it holds the comparison folder's
`tfnas.runs.lock.RunLock` from start to report.
Retrainings go through an executor (`tfnas.evaluation.executors`): in this
process, or as Ray tasks over a cluster. When every unit has run, the report
is rebuilt (`tfnas.compare.report`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

from tfnas.callbacks import Callback
from tfnas.compare.config import CompareConfig, CompareConfigError, StrategyRun
from tfnas.compare.report import write_report
from tfnas.compare.units import ERRORS_FILE, SETTINGS_FILE, TrainUnit, search_folder, train_units
from tfnas.config import TrainConfig
from tfnas.data import Corpus, load_corpus
from tfnas.evaluation.evaluators import ShortTrainingEvaluator
from tfnas.evaluation.executors import Executor, LocalExecutor
from tfnas.genotypes.files import as_any_genotype
from tfnas.presets import train_config
from tfnas.runs.atomic import read_json, write_json
from tfnas.runs.folder import SEARCH_RESULT_FILE, setting_differences
from tfnas.runs.lock import RunLock
from tfnas.settings import to_dict

#: Settings a comparison may change when it is resumed: the corpora's location (every unit's run folder checks
#: its corpus' fingerprint), and the seeds and baselines (each retraining is a folder of its own: new ones are
#: trained, finished ones kept, and the report shows those of the current settings).
RESUMABLE = ("data_dir", "seeds", "baselines")


class RetrainEvaluator(ShortTrainingEvaluator):
    """Retrains `TrainUnit`s (an executor maps it over units as over genotypes); returns best valid ppl.

    Every unit is a full `Trainer` run with the comparison's recipe and the
    unit's seed, test perplexity included; the corpus travels to Ray workers
    as `ShortTrainingEvaluator`'s does. With ``announce`` each finished unit
    prints one line (on the worker that trained it).
    """

    def __init__(self, config: TrainConfig, corpus: Corpus | None = None, announce: bool = False):
        super().__init__(config, corpus)
        self.announce = announce

    def evaluate_one(self, unit: TrainUnit) -> float:  # type: ignore[override]
        from tfnas.lm.trainer import Trainer

        genotype = None if unit.genotype is None else as_any_genotype(unit.genotype)
        config = dataclasses.replace(self.config, seed=unit.seed)
        result = Trainer(config, genotype, unit.folder, corpus=self._corpus()).fit()
        if self.announce:
            print(f"compare: retrained {unit.cell} (seed {unit.seed}): valid ppl {result.best_valid_ppl:.2f}, "
                  f"test ppl {result.test_ppl:.2f}", flush=True)
        return float(result.best_valid_ppl)


def _check_settings(out: Path, config: CompareConfig) -> None:
    """Records the settings; refuses a folder of a comparison with other settings (except `RESUMABLE`),
    listing the differences."""
    path, new = out / SETTINGS_FILE, to_dict(config)
    if path.exists():
        old = read_json(path)
        changed = setting_differences(old, new, skip=RESUMABLE)
        if changed:
            raise CompareConfigError(f"{out} holds a comparison with other settings ({'; '.join(changed)}); "
                                     "use a new --out folder or the same settings to resume")
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, new)


def run_search(run: StrategyRun, config: CompareConfig, corpus: Corpus, out: Path,
               callbacks: Sequence[Callback] = ()) -> None:
    """Runs (or resumes) one search unless it finished (its seconds, killed sessions included, are in its result)."""
    from tfnas.strategies.registry import get_strategy

    folder = search_folder(out, run)
    if (folder / SEARCH_RESULT_FILE).exists():
        return
    spec = get_strategy(run.strategy)
    search_config = spec.make_config({**run.overrides, "dataset": config.dataset, "data_dir": config.data_dir},
                                     preset=run.preset)
    spec.strategy_class(search_config).search(corpus, folder, list(callbacks))


def retraining_config(config: CompareConfig) -> TrainConfig:
    """The one recipe every cell is retrained with (the seed is the unit's)."""
    return train_config(config.train, {**config.train_overrides, "dataset": config.dataset,
                                       "data_dir": config.data_dir})


def run_comparison(config: CompareConfig, out: str | Path, executor: Executor | None = None,
                   search_callbacks: Callable[[Path], Sequence[Callback]] = lambda folder: (),
                   message: Callable[[str], None] = lambda text: None,
                   plot_path: str | Path | None = None, announce: bool = False) -> dict[str, Any]:
    """Runs every unit that has not finished, then writes and returns the report (`tfnas.compare.report`).

    The comparison folder is locked for the whole run (`tfnas.runs.lock.RunLock`: ``OUT/.lock``, the holder in
    ``OUT/lock``), besides the lock each search and retraining holds on its own run folder.

    Args:
        config: the comparison.
        out: its folder (resumed if it holds this comparison).
        executor: where retrainings run (default: this process).
        search_callbacks: the callbacks of the search in a folder (progress, TensorBoard).
        message: receives one line per unit started.
        plot_path: where to draw the plot (`tfnas.compare.report.plot`), if anywhere.
        announce: print one line per finished retraining (`RetrainEvaluator`).

    Raises:
        RunLockedError: another process (another ``tfnas compare`` on the same ``out``) runs this comparison;
            nothing is written.
        CompareConfigError: ``out`` holds a comparison with other settings (every difference listed).
    """
    out = Path(out)
    with RunLock(out):
        _check_settings(out, config)
        corpus = load_corpus(config.dataset, config.data_dir)
        for run in config.searches:
            message(f"search {run.name} ({run.strategy}, preset {run.preset})")
            run_search(run, config, corpus, out, search_callbacks(search_folder(out, run)))
        pending = [unit for unit in train_units(out, config) if not unit.done]
        message(f"retraining {len(pending)} runs")
        evaluator = RetrainEvaluator(retraining_config(config), corpus, announce=announce)
        outcomes = (executor or LocalExecutor()).map(evaluator, pending)
        errors = read_json(out / ERRORS_FILE) if (out / ERRORS_FILE).exists() else {}
        for unit, outcome in zip(pending, outcomes):
            if isinstance(outcome, BaseException):
                errors[unit.folder] = f"{type(outcome).__name__}: {outcome}"
            else:
                errors.pop(unit.folder, None)
        write_json(out / ERRORS_FILE, errors)
        return write_report(out, config, plot_path)
