"""The results of a run folder, best first: what ``tfnas results RUN`` prints (as KerasTuner's ``results_summary()``).

`read_results` reads any folder tfnas writes, from its JSON files alone:

* a `tfnas train` run: one row, from ``result.json`` (its best validation
  perplexity, test perplexity, steps and seconds);
* a black-box search (random, REINFORCE, NAO, with or without ASHA): one row
  per trial of ``trials.jsonl``, scored by its child's best validation
  perplexity; the child's run folder is ``children/<genotype key>`` (the
  ``short_training`` evaluator keeps it, and its ``result.json`` gives the
  steps and seconds; with ASHA the steps are the trial's rung's, and a
  promoted child's folder holds its training to its highest rung), none
  with the ``weight_sharing`` evaluator, which trains no child;
* a one-shot search: the found cell (``search_result.json``: the
  supernet's validation perplexity, the search's steps and seconds), and the
  retrainings the search folder holds: RSWS' stage 2 (``stage2/<key>``,
  from the result's ``stage2`` metrics) and ``tfnas search --train``'s
  ``train/``;
* a comparison (``tfnas compare``): one row per retrained cell, from the
  report rebuilt from its folders (`tfnas.compare.report.build_report`):
  the means over the retraining seeds, a search's seconds and steps.

Rows are sorted by validation perplexity (lower is better); rows without
one (failed, not yet trained) come last. `trained_trial` is the trial of a
black-box search whose child's run folder ``tfnas export --trial`` exports.

Pure Python: no TensorFlow.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfnas.compare.config import compare_config
from tfnas.compare.report import build_report, short_genotype
from tfnas.compare.units import SETTINGS_FILE, TRAINING
from tfnas.errors import PathNotFoundError, TfnasError
from tfnas.genotypes.files import FOLDER_GENOTYPE
from tfnas.runs.atomic import JsonFileError, read_json, read_jsonl
from tfnas.runs.folder import (CHILDREN, MODEL_FILE, SEARCH_RESULT_FILE, TRAINING_RESULT_FILE, TRIALS_FILE, RunRecord,
                               read_record)

#: The training of ``tfnas search --train``, inside the search folder.
SEARCH_TRAINING = "train"
#: The ``--trial`` of the trial a black-box search chose.
BEST = "best"
#: What each kind of folder's validation perplexity is.
OBJECTIVES = {
    "train": "the training's best validation perplexity",
    "black-box": "each child's best validation perplexity after its short training",
    "weight_sharing": "each child's validation perplexity with the search's shared weights",
    "one-shot": "the supernet's validation perplexity (search); a retraining's best validation perplexity "
                "(stage 2, train)",
    "comparison": "the mean over the retraining seeds of the best validation perplexity",
}
#: The table's columns: header, `ResultRow` field, right-aligned.
COLUMNS = (("name", "name", False), ("status", "status", False), ("valid ppl", "valid_ppl", True),
           ("test ppl", "test_ppl", True), ("steps", "steps", True), ("seconds", "seconds", True),
           ("folder", "folder", False), ("genotype", "genotype", False))


class ResultsError(TfnasError, ValueError):
    """A folder that holds no results tfnas can read (not a run folder, a run not finished), or a ``--trial``
    that names no trained child; the message names the folder and says what to do."""


@dataclass(frozen=True)
class ResultRow:
    """One result: a trial, a found cell, a training or a comparison's cell.

    Attributes:
        name: the trial's number (black-box), ``search``, ``stage2/<key>`` or
            ``train`` (one-shot), ``train`` (a training), the cell's row
            name (comparison).
        source: what it is: ``trial``, ``search``, ``stage 2``, ``training``,
            or a comparison row's kind (``search``, ``random``, ``baseline``).
        status: ``ok``; a trial's ``cached`` or ``failed``; a comparison
            cell's ``k/n done`` while some retrainings are missing.
        genotype: the genotype's JSON object, or None for the LSTM.
        valid_ppl, test_ppl: the perplexities (None when not measured).
        steps, seconds: the cost: training steps and wall-clock seconds.
        folder: the run folder of the trained model, None when it is not kept.
        rung: ASHA's rung of a trial (None without ASHA).
        error: a failed trial's last error.
    """

    name: str
    source: str
    status: str
    genotype: dict[str, Any] | None
    valid_ppl: float | None
    test_ppl: float | None = None
    steps: int | None = None
    seconds: float | None = None
    folder: Path | None = None
    rung: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON data (the folder as a string)."""
        return {**dataclasses.asdict(self), "folder": None if self.folder is None else str(self.folder)}


@dataclass(frozen=True)
class RunResults:
    """The results of one folder, best first.

    Attributes:
        folder: the folder read.
        kind: ``train``, ``search`` or ``comparison``.
        strategy: a search's strategy, else None.
        objective: what ``valid_ppl`` is (`OBJECTIVES`).
        rows: every result, sorted by validation perplexity (None last).
        best: the ``name`` of the row the run chose (a training's, a
            search's result), None when it chose none (a comparison, an
            unfinished search).
    """

    folder: Path
    kind: str
    strategy: str | None
    objective: str
    rows: list[ResultRow]
    best: str | None

    def describe(self) -> str:
        """``a `random` search``, ``a `tfnas train` run``, ``a `tfnas compare` comparison``."""
        if self.kind == "comparison":
            return "a `tfnas compare` comparison"
        return RunRecord(self.kind, self.strategy, {}).describe()

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON data: the folder's description and its ``top`` best rows (all when None)."""
        return {"folder": str(self.folder), "kind": self.kind, "strategy": self.strategy,
                "objective": self.objective, "best": self.best, "total": len(self.rows),
                "rows": [row.to_dict() for row in self.rows[:top]]}

    def table(self, top: int | None = None) -> str:
        """The ``top`` best rows as a text table under a line naming the folder; ``*`` marks the run's choice."""
        shown = self.rows[:top]
        lines = [f"{self.folder}: {self.describe()}; {len(shown)} of {len(self.rows)} results, best first"
                 + (" (* the run's result)" if self.best is not None else ""),
                 f"valid ppl: {self.objective} (lower is better)"]
        cells = [[header for header, _, _ in COLUMNS]] + [self._cells(row) for row in shown]
        widths = [max(len(line[k]) for line in cells) for k in range(len(COLUMNS))]
        for line in cells:
            lines.append("  ".join(text.rjust(width) if right else text.ljust(width)
                                   for text, width, (_, _, right) in zip(line, widths, COLUMNS)).rstrip())
        return "\n".join(lines) + "\n"

    def _cells(self, row: ResultRow) -> list[str]:
        values = {
            "name": ("*" if row.name == self.best else "") + row.name,
            "status": row.status if row.rung is None else f"{row.status} (rung {row.rung})",
            "valid_ppl": _number(row.valid_ppl, 2), "test_ppl": _number(row.test_ppl, 2),
            "steps": "-" if row.steps is None else str(row.steps), "seconds": _number(row.seconds, 1),
            "folder": "-" if row.folder is None else os.path.relpath(row.folder, self.folder),
            "genotype": short_genotype(row.genotype),
        }
        return [values[field] for _, field, _ in COLUMNS]


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _sorted(rows: list[ResultRow]) -> list[ResultRow]:
    """Best first: lower validation perplexity, rows without one last; of equal ones the higher ASHA rung first,
    then the earlier row."""
    return sorted(rows, key=lambda row: (row.valid_ppl is None, row.valid_ppl or 0.0, -(row.rung or 0)))


def read_results(folder: str | Path) -> RunResults:
    """The results of a run folder (`tfnas train`, `tfnas search` of any strategy) or a comparison folder
    (`tfnas compare`), best first (module docstring).

    Raises:
        PathNotFoundError: the folder does not exist.
        ResultsError: it is not a run or comparison folder, or its run has no result yet (one line each).
        RunFolderError, JsonFileError: a damaged record or file (one line naming it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PathNotFoundError(f"run folder {str(folder)!r} does not exist" if not folder.exists() else
                                f"{folder} is a file; expected a run folder (tfnas train, search or compare --out)")
    if (folder / SETTINGS_FILE).exists():
        return _comparison(folder)
    record = read_record(folder)
    if record is None:
        raise ResultsError(f"{folder} is not a tfnas run folder: expected the --out folder of tfnas train, "
                           f"tfnas search or tfnas compare (with config.json or {SETTINGS_FILE})")
    if record.kind == "train":
        row = _training_row("train", "training", folder)
        if row is None:
            raise ResultsError(f"{folder} is a `tfnas train` run that has not finished (no {TRAINING_RESULT_FILE}): "
                               "run the same tfnas train again to resume it")
        return RunResults(folder, "train", None, OBJECTIVES["train"], [row], row.name)
    if (folder / TRIALS_FILE).exists():
        return _black_box(folder, record)
    return _one_shot(folder, record)


def _training_row(name: str, source: str, run_dir: Path, genotype: dict[str, Any] | None = None
                  ) -> ResultRow | None:
    """The row of a finished training in ``run_dir`` (its ``result.json``), None when it has none; ``genotype``
    None: the run's ``genotype.json`` (none: the LSTM)."""
    path = run_dir / TRAINING_RESULT_FILE
    if not path.exists():
        return None
    result = read_json(path)
    if genotype is None and (run_dir / FOLDER_GENOTYPE).exists():
        genotype = read_json(run_dir / FOLDER_GENOTYPE)
    return ResultRow(name, source, "ok", genotype, result["best_valid_ppl"], result.get("test_ppl"),
                     result.get("steps"), result.get("seconds"), run_dir)


def _finished_search(folder: Path) -> dict[str, Any] | None:
    path = folder / SEARCH_RESULT_FILE
    return read_json(path) if path.exists() else None


def _trials(folder: Path) -> list[dict[str, Any]]:
    """The trial records of ``trials.jsonl``; a line that is not JSON is a one-line `ResultsError` naming it."""
    path = folder / TRIALS_FILE
    try:
        return read_jsonl(path)
    except JsonFileError as err:
        raise ResultsError(f"{err}: run the same tfnas search again, which rewrites it from its newest "
                           "checkpoint") from None


def _black_box(folder: Path, record: RunRecord) -> RunResults:
    rows = [_trial_row(folder, trial) for trial in _trials(folder)]
    rows += _search_training(folder)
    finished = _finished_search(folder)
    chosen = None if finished is None else finished["metrics"].get("best_trial")
    best = None if chosen is None else str(chosen)
    objective = OBJECTIVES["weight_sharing" if _shares_weights(record) else "black-box"]
    return RunResults(folder, "search", record.strategy, objective, _sorted(rows), best)


def _shares_weights(record: RunRecord | None) -> bool:
    """Whether a black-box search scored its children with shared weights (and trained none)."""
    return record is not None and record.config.get("evaluator") == "weight_sharing"


def _trial_row(folder: Path, trial: dict[str, Any]) -> ResultRow:
    """A trial's row: its record, with the steps and seconds of its child's training where the folder has them
    (with ASHA the seconds only when the child stopped at the trial's rung: its training is one run)."""
    child = folder / CHILDREN / trial["key"]
    path = child / TRAINING_RESULT_FILE
    result = read_json(path) if path.exists() else {}
    steps, seconds = result.get("steps"), result.get("seconds")
    if trial.get("steps") is not None and steps != trial["steps"]:
        steps, seconds = trial["steps"], None
    return ResultRow(str(trial["trial"]), "trial", trial["status"], trial["genotype"], trial["ppl"], None, steps,
                     seconds, child if child.is_dir() else None, trial.get("rung") if "steps" in trial else None,
                     trial.get("error"))


def _search_training(folder: Path) -> list[ResultRow]:
    """The row of ``tfnas search --train``'s training (``SEARCH/train``), if it finished."""
    row = _training_row(SEARCH_TRAINING, "training", folder / SEARCH_TRAINING)
    return [] if row is None else [row]


def _one_shot(folder: Path, record: RunRecord) -> RunResults:
    finished = _finished_search(folder)
    if finished is None:
        raise ResultsError(f"{folder} is {record.describe()} that has not finished (no {SEARCH_RESULT_FILE}): "
                           "run the same tfnas search again to resume it")
    metrics = finished["metrics"]
    rows = [ResultRow("search", "search", "ok", finished["genotype"], metrics.get("valid_ppl"), None,
                      metrics.get("steps"), finished.get("seconds"), folder)]
    for cell in (metrics.get("stage2") or {}).get("cells", []):
        trained = _training_row(cell["folder"], "stage 2", folder / cell["folder"], cell["genotype"])
        rows.append(trained or ResultRow(cell["folder"], "stage 2", "ok", cell["genotype"], cell["best_valid_ppl"],
                                         steps=cell.get("steps"), folder=folder / cell["folder"]))
    rows += _search_training(folder)
    return RunResults(folder, "search", record.strategy, OBJECTIVES["one-shot"], _sorted(rows), "search")


def _comparison(folder: Path) -> RunResults:
    report = build_report(folder, compare_config(read_json(folder / SETTINGS_FILE), str(folder / SETTINGS_FILE)))
    rows = []
    for row in report["rows"]:
        done, seeds = row["valid_ppl"]["n"], len(row["runs"])
        status = "ok" if done and done == seeds else f"{done}/{seeds} done"
        search = row.get("search") or {}
        rows.append(ResultRow(row["cell"], row["kind"], status, row["genotype"], row["valid_ppl"]["mean"],
                              row["test_ppl"]["mean"], search.get("steps"), search.get("seconds"),
                              folder / TRAINING / row["cell"]))
    return RunResults(folder, "comparison", None, OBJECTIVES["comparison"], _sorted(rows), None)


def trained_trial(folder: str | Path, trial: str) -> ResultRow:
    """A black-box search's trial whose child's run folder (its ``folder``) holds the trained model that
    ``tfnas export --trial`` exports.

    Args:
        folder: the search folder (``tfnas search --out``).
        trial: ``"best"`` (the trial the search chose: ``best_trial`` of
            ``search_result.json``) or a trial's number (``tfnas results``).

    Raises:
        ResultsError: the folder is not a black-box search, the trial is not
            one of its trials, or its child's weights are not kept (the
            ``weight_sharing`` evaluator trains no child; a failed trial has no
            model): one line, with the ``tfnas train`` command that trains its
            genotype.
    """
    results = read_results(folder)
    folder = results.folder
    if results.kind != "search" or not (folder / TRIALS_FILE).exists():
        advice = ("export it without --trial" if results.kind == "train" else
                  f"a one-shot search trains no child; train its cell: tfnas train --genotype "
                  f"{folder / FOLDER_GENOTYPE} --out RUN, then export RUN" if results.kind == "search" else
                  f"export a retraining's folder (tfnas results {folder} lists them)")
        raise ResultsError(f"--trial picks a child of a black-box search; {folder} is {results.describe()}: {advice}")
    if trial == BEST:
        if results.best is None:
            raise ResultsError(f"{folder} is {results.describe()} that has not finished, so it chose no best trial: "
                               f"give a trial's number (tfnas results {folder} lists them)")
        trial = results.best
    trial = str(int(trial)) if trial.isdigit() else trial
    row = next((r for r in results.rows if r.source == "trial" and r.name == trial), None)
    if row is None:
        numbers = sorted(int(r.name) for r in results.rows if r.source == "trial")
        span = f"{numbers[0]} to {numbers[-1]}" if numbers else "it has no trial yet"
        raise ResultsError(f"--trial must be best or a trial's number of {folder} ({span}); received: {trial!r}")
    genotype = (f"{folder / FOLDER_GENOTYPE}" if trial == results.best else
                f"FILE (trial {trial}'s genotype: tfnas results {folder} --json)")
    train = f"train its genotype: tfnas train --genotype {genotype} --out RUN"
    if row.status == "failed":
        raise ResultsError(f"trial {trial} of {folder} failed ({row.error}): it has no trained model")
    if row.folder is None or not (row.folder / MODEL_FILE).exists():
        why = ("the search scored its children with its shared weights (evaluator weight_sharing) and trained "
               "none" if _shares_weights(read_record(folder)) else f"{folder / CHILDREN} has no folder of this child")
        raise ResultsError(f"trial {trial} of {folder}: the child's weights are not kept ({why}); {train}")
    return row
