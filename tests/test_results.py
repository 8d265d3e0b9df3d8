"""`tfnas.results` and ``tfnas results``: every kind of folder's rows against the numbers of its files, best first.

The folders are written as tfnas documents them (the run record of `tfnas.runs.folder`, ``trials.jsonl``'s
`Trial` records, ``result.json`` of `tfnas.lm.trainer.TrainResult`, ``search_result.json`` of `SearchResult`, a
comparison's ``compare.json`` and unit folders of `tfnas.compare.units`); the slow test runs a real tiny search
and exports its best child.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import run_without_tensorflow

from tfnas import cli
from tfnas.errors import PathNotFoundError
from tfnas.genotypes import Genotype
from tfnas.results import ResultsError, read_results, trained_trial
from tfnas.runs.atomic import write_json, write_jsonl
from tfnas.spaces.dag import DagSpace

GENOTYPES = [g.to_dict() for g in DagSpace(steps=2).sample_unique(5, rng=0)]


def record(folder: Path, kind: str, strategy: str | None = None, **config: Any) -> Path:
    """A run folder with its ``config.json`` (`tfnas.runs.folder`'s record, version 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "config.json", {"format": "tfnas-run", "version": 2, "kind": kind, "strategy": strategy,
                                        "config": config, "data": None})
    return folder


def training(folder: Path, best_valid_ppl: float, test_ppl: float | None, steps: int, seconds: float,
             genotype: dict[str, Any] | None = None) -> Path:
    """A finished training: its record, ``result.json`` (`TrainResult`), ``model.json`` and ``genotype.json``."""
    record(folder, "train")
    write_json(folder / "result.json", {"steps": steps, "epochs_done": 1, "valid_ppl": best_valid_ppl + 1,
                                        "test_ppl": test_ppl, "best_valid_ppl": best_valid_ppl, "params": 10,
                                        "rollbacks": 0, "history": [], "seconds": seconds})
    write_json(folder / "model.json", {})
    if genotype is not None:
        write_json(folder / "genotype.json", genotype)
    return folder


def trial(number: int, genotype: int, ppl: float | None, status: str = "ok", **asha: Any) -> dict[str, Any]:
    """A line of ``trials.jsonl`` (`Trial.to_dict`; ``rung`` and ``steps`` only with ASHA)."""
    return {"trial": number, "round": number // 2, "key": f"key{genotype}", "genotype": GENOTYPES[genotype],
            "choices": [], "ppl": ppl, "reward": 0.0 if ppl is None else 80 / ppl ** 2, "status": status,
            "error": "diverged" if status == "failed" else None, **asha}


def black_box(folder: Path, trials: list[dict[str, Any]], children: dict[int, tuple[int, float]], best: int | None,
              evaluator: str = "short_training") -> Path:
    """A black-box search: ``trials.jsonl``, ``children/key<g>`` trained (steps, seconds) for each genotype ``g``
    of ``children``, and ``search_result.json`` choosing trial ``best`` (None: not finished)."""
    record(folder, "search", "random", evaluator=evaluator)
    write_jsonl(folder / "trials.jsonl", trials)
    for g, (steps, seconds) in children.items():
        ppl = min(t["ppl"] for t in trials if t["key"] == f"key{g}" and t["ppl"] is not None)
        training(folder / "children" / f"key{g}", ppl, None, steps, seconds)
    if best is not None:
        write_json(folder / "search_result.json", {"genotype": trials[best]["genotype"],
                                                   "history": [], "metrics": {"best_trial": best, "steps": 5},
                                                   "seconds": 99.0})
    return folder


@pytest.fixture
def random_search(tmp_path) -> Path:
    """Five trials: genotype 1 seen twice (cached), one failed; the best is trial 1 (ppl 20)."""
    trials = [trial(0, 0, 50.0), trial(1, 1, 20.0), trial(2, 2, 35.0), trial(3, 3, None, "failed"),
              trial(4, 1, 20.0, "cached")]
    return black_box(tmp_path / "random", trials, {0: (3, 4.0), 1: (3, 2.5), 2: (3, 7.0)}, best=1)


def test_black_box_rows_are_its_trials_by_validation_perplexity(random_search):
    results = read_results(random_search)
    assert (results.kind, results.strategy, results.best) == ("search", "random", "1")
    # Sorted by ppl (20, 20, 35, 50), ties in trial order, the failed trial last.
    assert [r.name for r in results.rows] == ["1", "4", "2", "0", "3"]
    assert [r.valid_ppl for r in results.rows] == [20.0, 20.0, 35.0, 50.0, None]
    assert [r.status for r in results.rows] == ["ok", "cached", "ok", "ok", "failed"]
    assert [(r.steps, r.seconds) for r in results.rows] == [(3, 2.5), (3, 2.5), (3, 7.0), (3, 4.0), (None, None)]
    assert results.rows[0].folder == random_search / "children" / "key1" and results.rows[-1].folder is None
    assert results.rows[0].genotype == GENOTYPES[1] and results.rows[-1].error == "diverged"


def test_asha_trials_keep_their_rung_steps(tmp_path):
    """With ASHA a trial's steps are its rung's; the child's seconds belong to its last rung only."""
    trials = [trial(0, 0, 40.0, rung=0, steps=1), trial(1, 1, 30.0, rung=0, steps=1),
              trial(2, 1, 25.0, rung=1, steps=4)]
    results = read_results(black_box(tmp_path / "asha", trials, {0: (1, 1.5), 1: (4, 6.0)}, best=2))
    assert [(r.name, r.rung, r.steps, r.seconds) for r in results.rows] == [
        ("2", 1, 4, 6.0), ("1", 0, 1, None), ("0", 0, 1, 1.5)]


def test_a_training_is_one_row_of_its_result(tmp_path):
    folder = training(tmp_path / "run", 61.5, 59.25, 800, 120.0, GENOTYPES[2])
    results = read_results(folder)
    assert (results.kind, results.best, len(results.rows)) == ("train", "train", 1)
    row = results.rows[0]
    assert (row.valid_ppl, row.test_ppl, row.steps, row.seconds, row.folder) == (61.5, 59.25, 800, 120.0, folder)
    assert row.genotype == GENOTYPES[2]


def test_a_one_shot_search_lists_its_cell_and_the_retrainings_it_holds(tmp_path):
    """The found cell (the supernet's perplexity), RSWS' stage 2 (``stage2/<key>``) and ``--train``'s ``train/``."""
    folder = record(tmp_path / "rsws", "search", "rsws")
    stage2 = [{"genotype": GENOTYPES[k], "shared_ppl": 30.0, "best_valid_ppl": ppl, "steps": 3,
               "folder": f"stage2/k{k}"} for k, ppl in ((0, 45.0), (1, 41.0))]
    for cell in stage2:
        training(folder / cell["folder"], cell["best_valid_ppl"], 44.0, 3, 5.0, cell["genotype"])
    training(folder / "train", 38.0, 37.0, 100, 50.0, GENOTYPES[1])
    write_json(folder / "search_result.json", {"genotype": GENOTYPES[1], "history": [], "seconds": 18.5,
                                               "metrics": {"valid_ppl": 31.5, "steps": 8, "stage2": {"cells": stage2}}})
    results = read_results(folder)
    assert [(r.name, r.source, r.valid_ppl, r.steps) for r in results.rows] == [
        ("search", "search", 31.5, 8), ("train", "training", 38.0, 100), ("stage2/k1", "stage 2", 41.0, 3),
        ("stage2/k0", "stage 2", 45.0, 3)]
    assert results.rows[0].seconds == 18.5 and results.rows[2].folder == folder / "stage2" / "k1"
    assert results.best == "search"


def test_a_comparison_lists_each_cell_by_its_mean_over_seeds(tmp_path):
    """Rows from the report rebuilt from the unit folders: mean best validation and test perplexity over the
    seeds, a search's seconds and steps."""
    out = tmp_path / "compare"
    out.mkdir()
    write_json(out / "compare.json", {"dataset": "ptb", "searches": [{"strategy": "random"}], "random_cells": 1,
                                      "baselines": ["lstm"], "seeds": [1, 2], "signal_proxy": False})
    write_json(out / "random_cells.json", {"random-00": GENOTYPES[3]})
    search = out / "searches" / "random"
    search.mkdir(parents=True)
    write_json(search / "genotype.json", GENOTYPES[0])
    write_json(search / "search_result.json", {"genotype": GENOTYPES[0], "history": [], "seconds": 300.0,
                                               "metrics": {"steps": 12}})
    for cell, ppls in (("random", (60.0, 62.0)), ("random-00", (70.0, 80.0)), ("lstm", (65.0, 66.0))):
        for seed, ppl in zip((1, 2), ppls):
            training(out / "train" / cell / f"seed-{seed}", ppl, ppl - 1, 10, 1.0)
    results = read_results(out)
    assert (results.kind, results.best) == ("comparison", None)
    assert [(r.name, r.source, r.valid_ppl, r.test_ppl) for r in results.rows] == [
        ("random", "search", 61.0, 60.0), ("lstm", "baseline", 65.5, 64.5), ("random-00", "random", 75.0, 74.0)]
    assert (results.rows[0].seconds, results.rows[0].steps, results.rows[0].genotype) == (300.0, 12, GENOTYPES[0])
    assert results.rows[1].genotype is None and results.rows[1].folder == out / "train" / "lstm"


def test_the_command_prints_the_top_rows_and_their_json_without_tensorflow(random_search):
    code, out = run_without_tensorflow(["results", str(random_search), "--top", "2"])
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(f"{random_search}: a `random` search; 2 of 5 results, best first")
    assert lines[2].split() == ["name", "status", "valid", "ppl", "test", "ppl", "steps", "seconds", "folder",
                                "genotype"]
    assert lines[3].split()[:7] == ["*1", "ok", "20.00", "-", "3", "2.5", "children/key1"]
    assert lines[4].split()[:3] == ["4", "cached", "20.00"] and len(lines) == 5
    code, out = run_without_tensorflow(["results", str(random_search), "--json", "--top", "3"])
    data = json.loads(out)
    assert (data["best"], data["total"], [r["name"] for r in data["rows"]]) == ("1", 5, ["1", "4", "2"])
    assert data["rows"][2] == {"name": "2", "source": "trial", "status": "ok", "genotype": GENOTYPES[2],
                               "valid_ppl": 35.0, "test_ppl": None, "steps": 3, "seconds": 7.0,
                               "folder": str(random_search / "children" / "key2"), "rung": None, "error": None}


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir() or p, "is not a tfnas run folder: expected the --out folder of tfnas train, tfnas search"),
    (lambda p: record(p, "train"), "is a `tfnas train` run that has not finished (no result.json)"),
    (lambda p: record(p, "search", "darts"), "is a `darts` search that has not finished (no search_result.json)"),
])
def test_a_folder_without_results_is_refused_on_one_line(tmp_path, capsys, make, message):
    folder = make(tmp_path / "folder")
    with pytest.raises(ResultsError, match="has not finished|is not a tfnas run folder") as err:
        read_results(folder)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert cli.main(["results", str(folder)]) == 2
    assert capsys.readouterr().err == f"tfnas: error: {err.value}\n"
    with pytest.raises(PathNotFoundError, match="does not exist"):
        read_results(tmp_path / "missing")


def test_a_damaged_trial_record_is_named_on_one_line(random_search):
    path = random_search / "trials.jsonl"
    line = len(path.read_text(encoding="utf-8").splitlines()) + 1
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"trial": 5, "ro\n')
    with pytest.raises(ResultsError, match=rf"trials.jsonl is not valid JSON lines \(line {line}: Unterminated string "
                                          r".*\): run the same tfnas search again") as err:
        read_results(random_search)
    assert "\n" not in str(err.value)


def test_a_trained_trial_is_its_childs_run_folder(random_search):
    assert trained_trial(random_search, "best").folder == random_search / "children" / "key1"
    assert trained_trial(random_search, "2").folder == random_search / "children" / "key2"
    # A cached trial: the child of the trial that first scored its genotype.
    assert trained_trial(random_search, "4").folder == random_search / "children" / "key1"


@pytest.mark.parametrize("trial_id, message", [
    ("7", "--trial must be best or a trial's number of {f} (0 to 4); received: '7'"),
    ("3", "trial 3 of {f} failed (diverged): it has no trained model"),
])
def test_trained_trial_refuses_what_is_no_trained_child(random_search, trial_id, message):
    with pytest.raises(ResultsError) as err:
        trained_trial(random_search, trial_id)
    assert str(err.value) == message.format(f=random_search)


def test_children_scored_with_shared_weights_are_not_kept(tmp_path):
    """The ``weight_sharing`` evaluator trains no child: ``--trial`` says so and how to train the genotype."""
    folder = black_box(tmp_path / "ws", [trial(0, 0, 50.0), trial(1, 1, 20.0)], {}, best=1,
                       evaluator="weight_sharing")
    with pytest.raises(ResultsError) as err:
        trained_trial(folder, "best")
    assert str(err.value) == (
        f"trial 1 of {folder}: the child's weights are not kept (the search scored its children with its shared "
        f"weights (evaluator weight_sharing) and trained none); train its genotype: tfnas train --genotype "
        f"{folder / 'genotype.json'} --out RUN")
    assert read_results(folder).objective == "each child's validation perplexity with the search's shared weights"


def test_trial_is_refused_for_a_training_a_one_shot_search_and_an_unfinished_search(tmp_path, random_search):
    run = training(tmp_path / "run", 60.0, 59.0, 8, 1.0)
    with pytest.raises(ResultsError, match=r"is a `tfnas train` run: export it without --trial$"):
        trained_trial(run, "best")
    darts = record(tmp_path / "darts", "search", "darts")
    write_json(darts / "search_result.json", {"genotype": GENOTYPES[0], "metrics": {"valid_ppl": 9.0}})
    with pytest.raises(ResultsError, match="a one-shot search trains no child; train its cell: tfnas train"):
        trained_trial(darts, "best")
    (random_search / "search_result.json").unlink()
    with pytest.raises(ResultsError, match="has not finished, so it chose no best trial: give a trial's number"):
        trained_trial(random_search, "best")


def test_show_of_a_run_folder_shows_its_genotype_or_points_to_results(random_search, tmp_path, capsys):
    write_json(random_search / "genotype.json", GENOTYPES[1])
    assert cli.main(["show", str(random_search)]) == 0
    described = "\n".join(f"  {line}" for line in Genotype.from_dict(GENOTYPES[1]).describe())
    assert capsys.readouterr().out.startswith(f"genotype: {random_search}\n{described}\n")
    assert cli.main(["show", str(tmp_path)]) == 2
    assert capsys.readouterr().err.endswith(f"folder's results: tfnas results {tmp_path})\n")


def test_export_of_a_search_without_trial_points_to_trial(random_search, tmp_path, capsys):
    assert cli.main(["export", str(random_search), "--format", "keras", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == (
        f"tfnas: error: {random_search} holds a `random` search, not a `tfnas train` run; pass the --out folder of "
        f"tfnas train (or one of its children: tfnas export {random_search} --trial best, or a trial's number)\n")


@pytest.mark.slow
def test_a_real_search_and_the_export_of_its_best_child(tmp_path, capsys):
    """A tiny random search: the rows are ``trials.jsonl``'s, the best is its result, and ``tfnas export --trial
    best`` exports the weights of that child's run folder."""
    from support import tiny_search_config, write_ascending_corpus

    from tfnas.data import load_corpus
    from tfnas.export import ExportMetadata, load_run
    from tfnas.export.layout import metadata_path
    from tfnas.strategies.registry import get_strategy

    corpus = write_ascending_corpus(tmp_path / "corpus")
    out = tmp_path / "search"
    found = get_strategy("random").strategy_class(tiny_search_config("random", corpus)).search(load_corpus(corpus), out)
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    results = read_results(out)
    assert sorted((r.valid_ppl, int(r.name)) for r in results.rows) == sorted((t["ppl"], t["trial"]) for t in trials)
    assert [r.valid_ppl for r in results.rows] == sorted(t["ppl"] for t in trials)
    best = next(r for r in results.rows if r.name == results.best)
    assert best.valid_ppl == found.metrics["valid_ppl"] and best.genotype == {
        k: v for k, v in found.genotype.to_dict().items() if k != "provenance"}
    for row in results.rows:
        result = json.loads((row.folder / "result.json").read_text())
        assert (row.steps, row.seconds) == (result["steps"], result["seconds"])
    assert cli.main(["export", str(out), "--trial", "best", "--format", "keras", "--out", str(tmp_path / "x")]) == 0
    assert capsys.readouterr().out.startswith(f"trial {results.best}: {best.folder}\n")
    exported = ExportMetadata.load(metadata_path("keras", tmp_path / "x" / "keras"))
    assert exported.model_sha256 == load_run(best.folder).model_sha256
