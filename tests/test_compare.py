"""The strategy comparison (`tfnas.compare`) end to end on a tiny corpus: report against the folders, resume."""
from __future__ import annotations

import copy
import json
import os
import shutil
import statistics
from pathlib import Path

import pytest

from support import TINY_SEARCH, write_ascending_corpus
from tfnas.compare import CompareConfigError, load_compare_config, run_comparison
from tfnas.compare import runner as runner_module
from tfnas.compare.report import markdown_table, plot
from tfnas.genotypes.files import load_genotype
from tfnas.runs.atomic import read_json
from tfnas.runs.lock import RunLock, RunLockedError

TINY_TRAIN = {"batch_size": 4, "eval_batch_size": 4, "test_batch_size": 4, "bptt": 8, "max_steps": 3,
              "eval_interval": 3, "log_interval": 1, "checkpoint_interval": 2, "max_eval_batches": 2,
              "model": {"emsize": 8, "nhid": 8}}


def tiny_settings(corpus: Path) -> dict:
    return {"dataset": str(corpus), "random_cells": 2, "random_steps": 2, "seeds": [1, 2],
            "baselines": ["darts_v2", "lstm"], "train": "quick_train", "train_overrides": TINY_TRAIN,
            "searches": [{"strategy": "darts", "overrides": TINY_SEARCH["darts"]},
                         {"strategy": "random", "overrides": TINY_SEARCH["random"]}]}


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    config = load_compare_config(None, tiny_settings(write_ascending_corpus(root / "corpus")))
    report = run_comparison(config, root / "out", plot_path=root / "out" / "plot.png")
    return config, root / "out", report


@pytest.fixture
def trained(monkeypatch) -> list[str]:
    """The run folders of the retrainings that run from now on, in order (each still trained)."""
    folders: list[str] = []
    original = runner_module.RetrainEvaluator.evaluate_one

    def counting(self, unit):
        folders.append(unit.folder)
        return original(self, unit)

    monkeypatch.setattr(runner_module.RetrainEvaluator, "evaluate_one", counting)
    return folders


def test_report_agrees_with_the_run_folders(comparison, exported_cells):
    config, out, report = comparison
    rows = {row["cell"]: row for row in report["rows"]}
    assert set(rows) == {"darts", "random", "random-00", "random-01", "darts_v2", "lstm"}
    assert json.loads((out / "comparison.json").read_text()) == json.loads(json.dumps(report))
    for row in rows.values():
        tests = []
        for run in row["runs"]:
            result = read_json(Path(run["folder"]) / "result.json")
            assert run["status"] == "done" and run["test_ppl"] == result["test_ppl"]
            assert read_json(Path(run["folder"]) / "config.json")["config"]["seed"] == run["seed"]
            tests.append(result["test_ppl"])
        assert [r["seed"] for r in row["runs"]] == [1, 2]
        assert row["test_ppl"]["mean"] == pytest.approx(statistics.fmean(tests))
        assert row["test_ppl"]["sd"] == pytest.approx(statistics.stdev(tests))
    # the searched cells are the searches' genotypes, the random cells come from the kept draw
    for name in ("darts", "random"):
        assert rows[name]["genotype"] == read_json(out / "searches" / name / "genotype.json")
        assert rows[name]["search"]["steps"] == read_json(out / "searches" / name / "search_result.json")[
            "metrics"]["steps"]
        assert rows[name]["search"]["seconds"] == read_json(out / "searches" / name / "search_result.json")[
            "seconds"] > 0                  # the checkpointed clock: a killed session's seconds are counted too
    assert rows["random-01"]["genotype"] == read_json(out / "random_cells.json")["random-01"]
    assert rows["darts_v2"]["genotype"] == load_genotype(exported_cells / "darts_v2.json").to_dict()
    assert rows["lstm"]["genotype"] is None
    # rank = 1 + the random cells with a lower mean test perplexity
    random_means = [rows[f"random-0{i}"]["test_ppl"]["mean"] for i in range(2)]
    for name in ("darts", "random", "darts_v2", "lstm"):
        assert rows[name]["rank"] == 1 + sum(m < rows[name]["test_ppl"]["mean"] for m in random_means)
    table = (out / "comparison.md").read_text()
    assert table == markdown_table(report)
    assert "| darts | search |" in table and f"{rows['lstm']['test_ppl']['mean']:.1f}" in table
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_killed_comparison_resumes_without_redoing_finished_units(comparison, tmp_path, monkeypatch, capsys):
    config, _, _ = comparison
    out = tmp_path / "cut"
    trained: list[str] = []
    kill_after = [5]
    original = runner_module.RetrainEvaluator.evaluate_one

    def counting(self, unit):
        if len(trained) == kill_after[0]:
            raise KeyboardInterrupt("killed")
        trained.append(unit.folder)
        return original(self, unit)

    monkeypatch.setattr(runner_module.RetrainEvaluator, "evaluate_one", counting)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(config, out)
    finished = {f: (Path(f) / "result.json").stat().st_mtime_ns for f in trained}
    searched = {p: p.stat().st_mtime_ns for p in (out / "searches").glob("*/search_result.json")}
    assert len(finished) == 5 and len(searched) == 2
    trained.clear()
    kill_after[0] = None
    capsys.readouterr()
    report = run_comparison(config, out, announce=True)
    assert len(trained) == 12 - 5 and not set(trained) & set(finished)   # 6 cells x 2 seeds, 5 done before
    announced = [line for line in capsys.readouterr().out.splitlines() if line.startswith("compare: retrained")]
    assert len(announced) == 7
    for line, folder in zip(announced, trained):
        assert f"test ppl {read_json(Path(folder) / 'result.json')['test_ppl']:.2f}" in line
    assert {f: (Path(f) / "result.json").stat().st_mtime_ns for f in finished} == finished
    assert {p: p.stat().st_mtime_ns for p in searched} == searched
    assert all(run["status"] == "done" for row in report["rows"] for run in row["runs"])


def test_other_settings_on_resume_are_refused(comparison):
    config, out, _ = comparison
    changed = load_compare_config(None, {**config.to_dict(), "random_cells": 3, "train_overrides": {"max_steps": 4}})
    with pytest.raises(CompareConfigError, match=r"random_cells: 2 -> 3; train_overrides.max_steps: 3 -> 4"):
        run_comparison(changed, out)


def test_a_seed_added_on_resume_trains_only_its_units(comparison, tmp_path, trained):
    config, out, _ = comparison
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    more = load_compare_config(None, {**config.to_dict(), "seeds": [1, 2, 3], "baselines": ["lstm"]})
    report = run_comparison(more, copy)
    assert sorted(Path(f).relative_to(copy).as_posix() for f in trained) == sorted(
        f"train/{cell}/seed-3" for cell in ("darts", "random", "random-00", "random-01", "lstm"))
    rows = {row["cell"]: row for row in report["rows"]}
    assert "darts_v2" not in rows and [run["seed"] for run in rows["darts"]["runs"]] == [1, 2, 3]


def test_bad_settings_are_one_line_errors():
    with pytest.raises(CompareConfigError, match="unknown keys \\['seed'\\]"):
        load_compare_config(None, {"seed": 3})
    with pytest.raises(CompareConfigError, match="share the labels \\['darts'\\]"):
        load_compare_config(None, {"searches": [{"strategy": "darts"}, {"strategy": "darts"}]})
    with pytest.raises(CompareConfigError, match="seeds must be"):
        load_compare_config(None, {"seeds": []})


def test_presets_load(tmp_path):
    for name in ("cpu_ptb", "paper_ptb"):
        config = load_compare_config(name)
        assert {run.strategy for run in config.searches} >= {"darts", "random"}
    assert plot({"rows": [], "random_cells": 0}, tmp_path / "empty.png").exists()


def compare_argv(out: Path, dataset: str) -> list[str]:
    """``tfnas compare`` arguments that resume the comparison in ``out`` (its settings over the cpu_ptb preset)."""
    settings = json.loads((out / "compare.json").read_text())
    return ["compare", "--config", "cpu_ptb", "--out", str(out), "--dataset", dataset,
            "--data-dir", str(out),  # the corpora's location is not a setting: each run folder checks its data
            "--set", f"searches={json.dumps(settings['searches'])}",
            *[a for key in ("random_cells", "random_steps", "seeds", "train_overrides")
              for a in ("--set", f"{key}={json.dumps(settings[key])}")]]


def test_compare_command_reports_and_resumes_a_finished_comparison(comparison, capsys):
    from tfnas.cli import main

    config, out, report = comparison
    assert main([*compare_argv(out, config.dataset), "--quiet"]) == 0
    assert capsys.readouterr().out == f"report: {out / 'comparison.json'}, {out / 'comparison.md'}\n"
    assert main(compare_argv(out, config.dataset)) == 0
    printed = capsys.readouterr().out
    assert printed.endswith(f"{markdown_table(report)}report: {out / 'comparison.json'}, {out / 'comparison.md'}\n")
    assert main(["compare", "--config", "cpu_ptb", "--out", str(out), "--set", "random_cells=9"]) == 2
    assert "holds a comparison with other settings" in capsys.readouterr().err


def test_shipped_cells_load_by_name_with_their_comparison(comparison, tmp_path, monkeypatch):
    from tfnas.compare import DISCOVERED, ship_cells
    from tfnas.genotypes import files

    _, out, report = comparison
    monkeypatch.setattr(files, "known_cells_dir", lambda: tmp_path)
    paths = ship_cells(report, tmp_path / DISCOVERED, "tiny")
    assert sorted(p.name for p in paths) == ["darts_tiny.json", "random_tiny.json"]
    assert {"discovered/darts_tiny", "discovered/random_tiny"} <= set(files.known_cells())
    rows = {row["cell"]: row for row in report["rows"]}
    for name in ("darts", "random"):
        shipped = files.resolve_genotype(f"discovered/{name}_tiny")
        searched = load_genotype(out / "searches" / name / "genotype.json")
        assert shipped == searched and shipped.provenance["strategy"] == name
        record = shipped.provenance["comparison"]
        assert record["retraining"]["test_ppl"] == rows[name]["test_ppl"] and record["retraining"]["seeds"] == [1, 2]
        assert record["search"]["steps"] == rows[name]["search"]["steps"]
        assert record["rank_among_random"] == f"{rows[name]['rank']}/3"


def test_shipped_cells_leave_out_the_corpora_folder_of_the_machine_that_searched(comparison, tmp_path):
    from tfnas.compare import ship_cells

    report = copy.deepcopy(comparison[2])
    for row in report["rows"]:
        if row["kind"] == "search":
            row["genotype"]["provenance"]["settings"]["data_dir"] = "/home/someone/corpora"
    for path in ship_cells(report, tmp_path, "tiny"):
        settings = load_genotype(path).provenance["settings"]
        assert settings["data_dir"] is None and settings["dataset"] == report["settings"]["dataset"]


def test_set_flags_nest_and_refuse_a_key_under_a_value(capsys):
    from tfnas.cli import _settings_from_sets, main

    assert _settings_from_sets(["train_overrides.model.nhid=50", "seeds=[1, 2]", "train_overrides.lr=1e-3"]) == {
        "train_overrides": {"model": {"nhid": 50}, "lr": 1e-3}, "seeds": [1, 2]}
    assert main(["compare", "--config", "cpu_ptb", "--out", "unused", "--set", "seeds=3", "--set", "seeds.x=1"]) == 2
    assert "seeds.x: seeds is set to a value" in capsys.readouterr().err


def small_comparison(root: Path, recipe: dict) -> tuple:
    """A comparison of one retraining (the LSTM, seed 1) whose recipe is the YAML file ``root/recipe.yaml``."""
    import yaml

    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    corpus = root / "corpus" if (root / "corpus").exists() else write_ascending_corpus(root / "corpus")
    config = load_compare_config(None, {"dataset": str(corpus), "random_cells": 0, "baselines": ["lstm"],
                                        "seeds": [1], "train": str(root / "recipe.yaml")})
    return config, root / "out"


def test_a_changed_retraining_recipe_or_corpus_is_refused(tmp_path):
    """Issue 26 item 8: the resolved recipe and the corpus fingerprint are recorded; a change is refused."""
    config, out = small_comparison(tmp_path, {**TINY_TRAIN, "lr": 20.0})
    run_comparison(config, out)
    result = out / "train" / "lstm" / "seed-1" / "result.json"
    finished = result.stat().st_mtime_ns
    # the preset file edited: the finished lr-20 retraining would be ranked with lr-5 ones
    small_comparison(tmp_path, {**TINY_TRAIN, "lr": 5.0, "max_steps": 4})
    with pytest.raises(CompareConfigError, match=r"retraining\.lr: 20\.0 -> 5\.0; retraining\.max_steps: 3 -> 4"):
        run_comparison(config, out)
    recorded = (out / "resolved.json").read_bytes()
    assert json.loads(recorded)["retraining"]["lr"] == 20.0
    assert read_json(out / "comparison.json")["resolved"] == json.loads(recorded)
    # where a retraining logs, checkpoints and finds its data changes no number: it may change
    small_comparison(tmp_path, {**TINY_TRAIN, "lr": 20.0, "log_interval": 2, "checkpoint_interval": 1})
    run_comparison(config, out)
    assert read_json(out / "resolved.json")["retraining"]["log_interval"] == 2
    # the corpus folder's contents replaced in place: the same settings, another corpus
    train = tmp_path / "corpus" / "train.txt"
    train.write_text(" ".join(reversed(train.read_text(encoding="utf-8").split())) + "\n", encoding="utf-8")
    with pytest.raises(CompareConfigError, match=r"corpus: its (vocabulary differs|token ids differ)"):
        run_comparison(config, out)
    assert result.stat().st_mtime_ns == finished
    assert read_json(out / "resolved.json")["data"] == json.loads(recorded)["data"]


def test_a_changed_search_preset_is_refused(tmp_path, monkeypatch):
    """Issue 26 item 8: each search's resolved settings are recorded too (a finished search is not reopened)."""
    import yaml

    preset = tmp_path / "darts.yaml"
    preset.write_text(yaml.safe_dump({"strategy": "darts", **TINY_SEARCH["darts"], "lr": 0.5}), encoding="utf-8")
    corpus = write_ascending_corpus(tmp_path / "corpus")
    config = load_compare_config(None, {"dataset": str(corpus), "random_cells": 0, "baselines": [],
                                        "searches": [{"strategy": "darts", "preset": str(preset)}]})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(runner_module, "run_search", killed)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(config, tmp_path / "out")
    preset.write_text(yaml.safe_dump({"strategy": "darts", **TINY_SEARCH["darts"], "lr": 0.25}), encoding="utf-8")
    with pytest.raises(CompareConfigError, match=r"searches\.darts\.lr: 0\.5 -> 0\.25"):
        run_comparison(config, tmp_path / "out")


def test_a_failed_retraining_is_warned_exits_1_and_is_retried(comparison, tmp_path, monkeypatch, capsys):
    """Issue 26 item 9: a warning line per failed unit, exit status 1 with the report written, retried on resume."""
    from tfnas.cli import main

    config, out, _ = comparison
    copy_out = tmp_path / "out"
    shutil.copytree(out, copy_out)
    failing, other = copy_out / "train" / "lstm" / "seed-2", copy_out / "train" / "random-00" / "seed-1"
    for folder in (failing, other):
        (folder / "result.json").unlink()
    original = runner_module.RetrainEvaluator.evaluate_one

    def diverging(self, unit):
        if Path(unit.folder) == failing:
            raise FloatingPointError("diverged")
        return original(self, unit)

    monkeypatch.setattr(runner_module.RetrainEvaluator, "evaluate_one", diverging)
    capsys.readouterr()
    assert main(compare_argv(copy_out, config.dataset)) == 1
    printed = capsys.readouterr()
    assert printed.out.count("compare: warning: retraining lstm (seed 2) failed: FloatingPointError: diverged") == 1
    assert printed.out.count("compare: retrained random-00 (seed 1)") == 1   # not trained again after the failure
    assert "tfnas: warning: 1 of 12 retrainings failed (lstm seed 2" in printed.err
    assert read_json(copy_out / "errors.json") == {str(failing): "FloatingPointError: diverged"}
    rows = {row["cell"]: row for row in read_json(copy_out / "comparison.json")["rows"]}
    assert [run["status"] for run in rows["lstm"]["runs"]] == ["done", "failed"]
    assert (other / "result.json").exists()
    monkeypatch.setattr(runner_module.RetrainEvaluator, "evaluate_one", original)
    assert main([*compare_argv(copy_out, config.dataset), "--quiet"]) == 0    # resumed: the failed unit again
    assert read_json(copy_out / "errors.json") == {} and (failing / "result.json").exists()


def test_repeated_seeds_are_refused():
    """Issue 26 item 10: a repeated seed would count one retraining twice (spread 0.0)."""
    with pytest.raises(CompareConfigError, match=r"seeds repeat \[1\]"):
        load_compare_config(None, {"seeds": [1, 1, 2]})


def test_a_search_budget_is_every_search_s_budget_over_its_preset_and_overrides(tmp_path):
    """Issue 25 item 1: strategies compared at equal cost get one wall-clock budget each."""
    settings = {**tiny_settings(tmp_path), "search_budget_s": 90}
    settings["searches"][0]["overrides"] = {**settings["searches"][0]["overrides"], "budget_s": 5}
    config = load_compare_config(None, settings)
    assert [runner_module.search_settings(run, config).budget_s for run in config.searches] == [90, 90]
    plain = load_compare_config(None, tiny_settings(tmp_path))
    assert runner_module.search_settings(plain.searches[0], plain).budget_s is None
    for bad in (0, -1, "fast", True):
        with pytest.raises(CompareConfigError, match="search_budget_s must be null or a number of seconds > 0"):
            load_compare_config(None, {"search_budget_s": bad})


def test_settings_of_the_wrong_shape_are_one_line_errors(capsys):
    """``--set seeds=3`` (and the other lists and mappings given a scalar) is one line, not a TypeError."""
    from tfnas.cli import main

    assert main(["compare", "--config", "cpu_ptb", "--out", "unused", "--set", "seeds=3"]) == 2
    assert capsys.readouterr().err == "tfnas: error: cpu_ptb: seeds must be a list; got 3\n"
    for key, value in (("baselines", "darts_v2"), ("searches", 3), ("train_overrides", [1]),
                       ("searches", [{"strategy": "darts", "overrides": 3}])):
        with pytest.raises(CompareConfigError, match="must be a (list|mapping)"):
            load_compare_config(None, {key: value})
    with pytest.raises(CompareConfigError, match="random_seed must be an integer >= 0; got -1"):
        load_compare_config(None, {"random_seed": -1})


def test_a_second_comparison_on_the_same_folder_is_refused(comparison, capsys):
    """Issue 26 item 11: the comparison folder is locked for the whole run; a second one names the holder."""
    from tfnas.cli import main

    config, out, _ = comparison
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.json")}
    with RunLock(out):
        with pytest.raises(RunLockedError, match=f"is in use by process {os.getpid()} on host"):
            run_comparison(config, out)
        assert main(compare_argv(out, config.dataset)) == 2
    assert f"tfnas: error: {out} is in use by process {os.getpid()}" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.json")} == before


def test_search_seeds_run_every_search_once_per_seed(tmp_path):
    """Issue 25 item 6: a strategy's result is a distribution over its searches, each with its own seed."""
    settings = {**tiny_settings(tmp_path), "search_seeds": [3, 4]}
    settings["searches"][1] = {**settings["searches"][1], "label": "rs"}
    config = load_compare_config(None, settings)
    runs = config.search_runs()
    assert [(run.name, run.strategy_name, run.strategy) for run in runs] == [
        ("darts-s3", "darts", "darts"), ("darts-s4", "darts", "darts"), ("rs-s3", "rs", "random"),
        ("rs-s4", "rs", "random")]
    assert [runner_module.search_settings(run, config).seed for run in runs] == [3, 4, 3, 4]
    plain = load_compare_config(None, tiny_settings(tmp_path))
    assert plain.search_runs() == plain.searches and [run.strategy_name for run in plain.searches] == ["darts", "random"]
    with pytest.raises(CompareConfigError, match=r"search_seeds repeat \[3\]"):
        load_compare_config(None, {**settings, "search_seeds": [3, 3]})
    with pytest.raises(CompareConfigError, match=r"search_seeds must be a list of integers >= 0; got \[-1\]"):
        load_compare_config(None, {**settings, "search_seeds": [-1]})


def test_a_search_added_on_resume_runs_and_only_its_cell_is_retrained(comparison, tmp_path, trained):
    """A strategy added to a finished comparison is searched and retrained; the random cells are not retrained."""
    config, out, _ = comparison
    copy_out = tmp_path / "out"
    shutil.copytree(out, copy_out)
    settings = config.to_dict()
    added = {"strategy": "random", "label": "random_again", "overrides": {**TINY_SEARCH["random"], "seed": 5}}
    report = run_comparison(load_compare_config(None, {**settings, "searches": [*settings["searches"], added]}),
                            copy_out)
    assert sorted(Path(f).relative_to(copy_out).as_posix() for f in trained) == [
        "train/random_again/seed-1", "train/random_again/seed-2"]
    assert "random_again" in {row["cell"] for row in report["rows"]}
    assert set(read_json(copy_out / "resolved.json")["searches"]) == {"darts", "random", "random_again"}
    # left out, its record stays; listed again with other settings, it is refused
    run_comparison(config, copy_out)
    assert "random_again" in read_json(copy_out / "resolved.json")["searches"]
    changed = {**added, "overrides": {**added["overrides"], "max_trials": 5}}
    with pytest.raises(CompareConfigError, match=r"searches\.random_again\.max_trials: 4 -> 5"):
        run_comparison(load_compare_config(None, {**settings, "searches": [*settings["searches"], changed]}), copy_out)


def _exact_one_sided_p(values: list[float], reference: list[float]) -> float:
    """P(T* <= T) over every split of the pooled values into groups of len(values) and len(reference), with
    T = mean(values) - median(reference): an enumeration independent of SciPy."""
    import itertools

    pool, n = values + reference, len(values)
    observed = statistics.fmean(values) - statistics.median(reference)
    splits = list(itertools.combinations(range(len(pool)), n))
    null = [statistics.fmean([pool[i] for i in chosen]) - statistics.median(
        [pool[i] for i in range(len(pool)) if i not in chosen]) for chosen in splits]
    return sum(t <= observed + 1e-9 for t in null) / len(splits)


def test_every_strategy_is_tested_against_the_random_cells(comparison):
    """Issue 25 item 6: per strategy, the mean of its searches' cells, the difference to the random median and a
    one-sided permutation test, from the retrainings' own result files."""
    config, out, report = comparison
    means = {cell: statistics.fmean(read_json(folder / "result.json")["test_ppl"]
                                    for folder in sorted((out / "train" / cell).glob("seed-*")))
             for cell in ("darts", "random", "random-00", "random-01")}
    reference = [means["random-00"], means["random-01"]]
    assert [s["strategy"] for s in report["strategies"]] == ["darts", "random"]
    for entry in report["strategies"]:
        assert entry["searches"] == [entry["strategy"]] and entry["values"] == pytest.approx([means[entry["strategy"]]])
        diff = entry["difference_to_median"]
        assert diff["difference"] == pytest.approx(means[entry["strategy"]] - statistics.median(reference))
        assert diff["low"] is None          # one search: no spread to resample
        assert entry["permutation_test"]["p_value"] == pytest.approx(
            _exact_one_sided_p([means[entry["strategy"]]], reference))
    assert "| darts | 1/1 |" in markdown_table(report)
    # One search against 2 random cells: 3 splits, so no p below 1/3; 2 strategies: Bonferroni's 0.05 / 2.
    assert ("Each p is one strategy's, not corrected for the 2 tested (a Bonferroni level: 0.025); the smallest p "
            "this design allows is 0.333 (1 of 3 splits: 1 search against 2 random cells).") in markdown_table(report)
