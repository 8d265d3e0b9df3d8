"""Running a comparison: every search, then every retraining, each unit of work in a run folder of its own.

The units and their folders are laid out by `tfnas.compare.units`. A search
or training unit that finished (``search_result.json`` / ``result.json``)
is never run again; one that was interrupted resumes exactly from its own
checkpoints (`tfnas.runs`), so a killed comparison goes on where it stopped.
One process at a time runs a comparison: it holds the comparison folder's
`tfnas.runs.lock.RunLock` from start to report. The comparison is resumed
only with its settings (`RESUMABLE` aside) and with the settings its units
got from the presets and the corpus they read (`Resolved`, `UNMEASURED`
aside): a finished unit is never opened again, so its own run folder could
not refuse a preset edited or a corpus replaced since.
Retrainings go through an executor (`tfnas.evaluation.executors`): in this
process, or as Ray tasks over a cluster. When every unit has run, the cheap
signals of the random cells are measured (`tfnas.compare.signals`) and the
report is rebuilt (`tfnas.compare.report`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

from tfnas.callbacks import Callback
from tfnas.compare.config import CompareConfig, CompareConfigError, StrategyRun
from tfnas.compare.report import write_report
from tfnas.compare.signals import compute_signals
from tfnas.compare.units import ERRORS_FILE, RESOLVED_FILE, SETTINGS_FILE, TrainUnit, search_folder, train_units
from tfnas.config import TrainConfig
from tfnas.data import Corpus, load_corpus
from tfnas.evaluation.evaluators import ShortTrainingEvaluator
from tfnas.evaluation.executors import Executor, LocalExecutor
from tfnas.genotypes.files import as_any_genotype
from tfnas.presets import train_config
from tfnas.runs.atomic import read_json, write_json
from tfnas.runs.folder import (SEARCH_RESULT_FILE, TRAINING_RESULT_FILE, corpus_fingerprint, data_differences,
                               setting_differences)
from tfnas.runs.lock import RunLock
from tfnas.settings import from_dict, to_dict

#: Settings a comparison may change when it is resumed: the corpora's location (every unit's run folder checks
#: its corpus' fingerprint), the seeds and baselines (each retraining is a folder of its own: new ones are
#: trained, finished ones kept, and the report shows those of the current settings), and the searches and their
#: seeds (a search added is run and its cell retrained beside the random cells already retrained; one left out
#: keeps its folders; a search that was recorded is checked against its record, `Resolved`, however it is listed),
#: and the signals (measured after the units, kept with their settings: `tfnas.compare.signals`).
RESUMABLE = ("data_dir", "seeds", "baselines", "searches", "search_seeds", "signal_proxy", "signal_child_steps",
             "signal_child")
#: Settings of the retraining recipe and of each search (`Resolved`) that may change when a comparison is resumed:
#: where a unit finds its data and how it logs and checkpoints, which change no number of the report. Run folders
#: let more change (``max_steps``, ``eval_interval``, ``budget_s`` ...: the run goes on with the new value), but a
#: comparison never runs a finished unit again, so such a change would rank the units of two recipes together.
UNMEASURED = ("data_dir", "download", "checkpoint_interval", "keep_checkpoints", "log_interval")


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What the units of a comparison run with once the presets are read, and on which data (``OUT/resolved.json``).

    Attributes:
        retraining: the one recipe of every retraining (`retraining_config`; each unit sets its own ``seed``).
        searches: each search's settings by label (`search_settings`).
        data: the corpus' `tfnas.runs.folder.corpus_fingerprint`.
    """

    retraining: TrainConfig
    searches: dict[str, Any]
    data: dict[str, Any]

    def settings(self) -> dict[str, Any]:
        """The settings as JSON data: ``{"retraining": {...}, "searches": {label: {...}}}``."""
        return {"retraining": to_dict(self.retraining),
                "searches": {name: to_dict(settings) for name, settings in self.searches.items()}}

    def read(self, recorded: dict[str, Any], where: str) -> dict[str, Any]:
        """A record's settings (`settings`' layout) read through this comparison's settings classes, so that a
        setting added to tfnas since takes its default, as JSON data: the recipe, and the searches of this
        comparison that the record holds (a search added since has no record to check).

        Raises:
            KeyError, TypeError, ValueError: the record lacks a section or holds settings that cannot be read.
        """
        return {"retraining": to_dict(from_dict(TrainConfig, recorded["retraining"], where)),
                "searches": {name: to_dict(from_dict(type(settings), recorded["searches"][name], where))
                             for name, settings in self.searches.items() if name in recorded["searches"]}}

    def checked(self, recorded: dict[str, Any]) -> dict[str, Any]:
        """`settings` of the searches that ``recorded`` (a record read by `read`) holds: what a resume compares."""
        current = self.settings()
        return {**current, "searches": {name: current["searches"][name] for name in recorded["searches"]}}

    def unmeasured(self) -> set[str]:
        """The dotted names that may differ on resume: `UNMEASURED` of every section, and the recipe's ``seed``."""
        sections = ["retraining", *(f"searches.{name}" for name in self.searches)]
        return {"retraining.seed", *(f"{section}.{name}" for section in sections for name in UNMEASURED)}


class RetrainEvaluator(ShortTrainingEvaluator):
    """Retrains `TrainUnit`s (an executor maps it over units as over genotypes); returns best valid ppl.

    Every unit is a full `Trainer` run with the comparison's recipe and the
    unit's seed, test perplexity included (a finished unit is not trained or
    tested again); the corpus travels to Ray workers as
    `ShortTrainingEvaluator`'s does. With ``announce`` each finished unit
    prints one line (on the worker that trained it).
    """

    def __init__(self, config: TrainConfig, corpus: Corpus | None = None, announce: bool = False):
        super().__init__(config, corpus)
        self.announce = announce

    def evaluate_one(self, unit: TrainUnit) -> float:  # type: ignore[override]
        from tfnas.lm.trainer import Trainer

        if unit.done:  # an executor that goes unit by unit after a failure hands back the units it finished
            return float(read_json(Path(unit.folder) / TRAINING_RESULT_FILE)["best_valid_ppl"])
        genotype = None if unit.genotype is None else as_any_genotype(unit.genotype)
        config = dataclasses.replace(self.config, seed=unit.seed)
        result = Trainer(config, genotype, unit.folder, corpus=self._corpus()).fit()
        if self.announce:
            print(f"compare: retrained {unit.cell} (seed {unit.seed}): valid ppl {result.best_valid_ppl:.2f}, "
                  f"test ppl {result.test_ppl:.2f}", flush=True)
        return float(result.best_valid_ppl)


def _check_settings(out: Path, config: CompareConfig) -> None:
    """Refuses a folder of a comparison with other settings (except `RESUMABLE`), listing the differences."""
    path = out / SETTINGS_FILE
    if path.exists():
        changed = setting_differences(read_json(path), to_dict(config), skip=RESUMABLE)
        if changed:
            raise CompareConfigError(f"{out} holds a comparison with other settings ({'; '.join(changed)}); "
                                     "use a new --out folder or the same settings to resume")


def _check_resolved(out: Path, resolved: Resolved) -> dict[str, Any]:
    """Refuses a folder whose comparison ran with other resolved settings (except `Resolved.unmeasured`) or on
    another corpus, listing the differences (a folder written before this record takes the current one); returns
    the record (empty without one)."""
    path = out / RESOLVED_FILE
    if not path.exists():
        return {}
    recorded = read_json(path)
    try:
        saved, data = resolved.read(recorded, str(path)), dict(recorded["data"])
    except (KeyError, TypeError, ValueError) as err:
        raise CompareConfigError(f"{path} cannot be read ({type(err).__name__}: {err}); use a new --out "
                                 "folder") from None
    changed = setting_differences(saved, resolved.checked(saved), skip=resolved.unmeasured())
    other_data = data_differences(data, resolved.data)
    if other_data:
        changed.append(f"corpus: {other_data}")
    if changed:
        raise CompareConfigError(f"{out} holds a comparison whose units ran with other settings from the presets or "
                                 f"on other data ({'; '.join(changed)}); restore the presets and the corpus it was "
                                 "started with, or use a new --out folder")
    return recorded


def open_comparison(out: Path, config: CompareConfig) -> tuple[Corpus, Resolved]:
    """Checks comparison folder ``out`` against ``config`` and records it; returns the corpus and `Resolved`.

    The settings are checked first (`RESUMABLE` may change), then, with the corpus loaded and the presets read,
    the resolved settings and the corpus fingerprint (`UNMEASURED` may change); only then are ``compare.json``
    and ``resolved.json`` written, with the new values of what may change. The caller holds ``out``'s lock.

    Raises:
        CompareConfigError: another comparison's settings, resolved settings or corpus, with the differences.
    """
    _check_settings(out, config)
    corpus = load_corpus(config.dataset, config.data_dir)
    resolved = Resolved(retraining_config(config), {run.name: search_settings(run, config) for run in config.search_runs()},
                        corpus_fingerprint(corpus))
    recorded = _check_resolved(out, resolved)
    write_json(out / SETTINGS_FILE, to_dict(config))
    settings = resolved.settings()
    # A search left out keeps its record: listed again later, it is checked against it.
    settings["searches"] = {**recorded.get("searches", {}), **settings["searches"]}
    write_json(out / RESOLVED_FILE, {**settings, "data": resolved.data})
    return corpus, resolved


def search_settings(run: StrategyRun, config: CompareConfig) -> Any:
    """Search ``run``'s settings: its strategy's defaults, then its preset, then its overrides, on the comparison's
    corpus, with the comparison's `search_budget_s` (if any) as its ``budget_s``."""
    from tfnas.strategies.registry import get_strategy

    budget = {} if config.search_budget_s is None else {"budget_s": config.search_budget_s}
    return get_strategy(run.strategy).make_config(
        {**run.overrides, "dataset": config.dataset, "data_dir": config.data_dir, **budget}, preset=run.preset)


def run_search(run: StrategyRun, settings: Any, corpus: Corpus, out: Path, callbacks: Sequence[Callback] = ()) -> None:
    """Runs (or resumes) search ``run`` with ``settings`` (`search_settings`) unless it finished (its seconds,
    killed sessions included, are in its result)."""
    from tfnas.strategies.registry import get_strategy

    folder = search_folder(out, run)
    if (folder / SEARCH_RESULT_FILE).exists():
        return
    get_strategy(run.strategy).strategy_class(settings).search(corpus, folder, list(callbacks))


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
        message: receives one line per unit started, and a ``warning:`` line per retraining that failed (its
            error is kept in ``errors.json``, its row leaves it out; `failed_runs` lists them in the report).
        plot_path: where to draw the plot (`tfnas.compare.report.plot`), if anywhere.
        announce: print one line per finished retraining (`RetrainEvaluator`).

    A retraining that fails (it diverges, a Ray worker dies) does not stop the others; a resumed comparison
    runs it again, from its checkpoints.

    Raises:
        RunLockedError: another process (another ``tfnas compare`` on the same ``out``) runs this comparison;
            nothing is written.
        CompareConfigError: ``out`` holds a comparison with other settings, other settings from the presets or
            another corpus (every difference listed; `open_comparison`).
    """
    out = Path(out)
    with RunLock(out):
        corpus, resolved = open_comparison(out, config)
        for run in config.search_runs():
            message(f"search {run.name} ({run.strategy}, preset {run.preset})")
            run_search(run, resolved.searches[run.name], corpus, out, search_callbacks(search_folder(out, run)))
        pending = [unit for unit in train_units(out, config) if not unit.done]
        message(f"retraining {len(pending)} runs")
        evaluator = RetrainEvaluator(resolved.retraining, corpus, announce=announce)
        outcomes = (executor or LocalExecutor()).map(evaluator, pending)
        errors = read_json(out / ERRORS_FILE) if (out / ERRORS_FILE).exists() else {}
        for unit, outcome in zip(pending, outcomes):
            if isinstance(outcome, BaseException):
                errors[unit.folder] = f"{type(outcome).__name__}: {outcome}"
                message(f"warning: retraining {unit.cell} (seed {unit.seed}) failed: {errors[unit.folder]} "
                        f"({unit.folder}; kept in {ERRORS_FILE}, retried when the comparison runs again)")
            else:
                errors.pop(unit.folder, None)
        write_json(out / ERRORS_FILE, errors)
        compute_signals(out, config, corpus, resolved.retraining, message)
        return write_report(out, config, plot_path)
