"""The units of work of a comparison and the folder each one lives in.

The comparison folder holds::

    compare.json                 the settings (a rerun with other settings is refused, but see `runner.RESUMABLE`)
    resolved.json                the settings the units run with once the presets are read (the retraining
                                 recipe, each search's settings) and the corpus fingerprint (`runner.Resolved`)
    lock, .lock                  the process that runs the comparison and its OS lock (`tfnas.runs.lock.RunLock`)
    random_cells.json            the K random cells, drawn once
    searches/<label>/            one search run folder per `StrategyRun` (`CompareConfig.search_runs`: one per search
                                 seed with `search_seeds`, ``<label>-s<seed>``); its result's ``seconds``
                                 is its wall-clock time over the sessions that ran it, up to its
                                 newest checkpoint (`tfnas.runs.session`)
    searches/<label>.cost.json   that time, as comparisons written before it was checkpointed kept it
    train/<cell>/seed-<s>/       one `tfnas train` run folder per cell and seed
    errors.json                  retrainings that raised (diverged, ...), by folder
    comparison.json, comparison.md (and the plot): the report, rebuilt from the folders

`tfnas.compare.runner` runs the units, `tfnas.compare.report` reads them.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tfnas.compare.config import RANDOM_PREFIX, CompareConfig, StrategyRun
from tfnas.genotypes.files import resolve_genotype
from tfnas.runs.atomic import read_json, write_json
from tfnas.runs.folder import TRAINING_RESULT_FILE
from tfnas.spaces.dag import DagSpace

SETTINGS_FILE = "compare.json"
RESOLVED_FILE = "resolved.json"
RANDOM_CELLS_FILE = "random_cells.json"
ERRORS_FILE = "errors.json"
SEARCHES = "searches"
TRAINING = "train"
#: The row name of the LSTM baseline (``keras.layers.LSTM``).
LSTM = "lstm"


@dataclasses.dataclass(frozen=True)
class TrainUnit:
    """One retraining: cell ``cell`` (a row of the report) with seed ``seed`` in ``folder``."""

    cell: str
    seed: int
    genotype: dict[str, Any] | None  # the genotype's JSON; None for the LSTM
    folder: str

    @property
    def done(self) -> bool:
        return (Path(self.folder) / TRAINING_RESULT_FILE).exists()


def search_folder(out: Path, run: StrategyRun) -> Path:
    """The run folder of search ``run`` in comparison folder ``out``."""
    return out / SEARCHES / run.name


def cost_file(out: Path, run: StrategyRun) -> Path:
    """The file in which comparisons of before kept search ``run``'s seconds (read for their folders only)."""
    return search_folder(out, run).with_name(f"{run.name}.cost.json")


def random_cells(out: Path, config: CompareConfig) -> dict[str, dict[str, Any]]:
    """The K random cells of the comparison (``random-00`` ...), drawn once and kept in the folder."""
    path = out / RANDOM_CELLS_FILE
    if path.exists():
        return read_json(path)
    space = DagSpace(steps=config.random_steps)
    drawn = space.sample_unique(config.random_cells, rng=config.random_seed)
    cells = {f"{RANDOM_PREFIX}{i:02d}": g.to_dict() for i, g in enumerate(drawn)}
    write_json(path, cells)
    return cells


def cell_genotypes(out: Path, config: CompareConfig) -> dict[str, dict[str, Any] | None]:
    """Every retrained cell by row name: the searches' (finished ones), the random cells, the baselines."""
    cells: dict[str, dict[str, Any] | None] = {}
    for run in config.search_runs():
        path = search_folder(out, run) / "genotype.json"
        if path.exists():
            cells[run.name] = read_json(path)
    cells.update(random_cells(out, config))
    for name in config.baselines:
        cells[name] = None if name == LSTM else resolve_genotype(name).to_dict()
    return cells


def train_units(out: Path, config: CompareConfig) -> list[TrainUnit]:
    """Every retraining: each cell with each seed, cell by cell."""
    return [TrainUnit(cell, seed, genotype, str(out / TRAINING / cell / f"seed-{seed}"))
            for cell, genotype in cell_genotypes(out, config).items() for seed in config.seeds]
