"""The committed comparisons (``benchmarks/results/comparison-*.json``), the cells they shipped
(``exported_cells/discovered/``) and the README's tables agree with one another."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tfnas import cli
from tfnas.compare import load_compare_config, markdown_table
from tfnas.genotypes.files import known_cells, resolve_genotype

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: The committed comparisons (README, "Comparing strategies").
COMPARISONS = ("comparison-ptb-cpu.json",)
PTB = json.loads((RESULTS / "comparison-ptb-cpu.json").read_text(encoding="utf-8"))
SEARCHED = {row["cell"]: row for row in PTB["rows"] if row["kind"] == "search"}


def without_provenance(genotype: dict) -> dict:
    return {k: v for k, v in genotype.items() if k != "provenance"}


def test_the_cpu_comparison_ran_every_strategy_of_its_preset_and_ships_each_cell():
    preset = load_compare_config("cpu_ptb")
    assert set(SEARCHED) == {run.name for run in preset.searches}
    settings = json.loads(json.dumps(preset.to_dict()))
    assert {**PTB["settings"], "data_dir": None} == {**settings, "data_dir": None}  # the committed run is the preset's
    assert {f"discovered/{cell}_ptb_cpu" for cell in SEARCHED} <= set(known_cells())


@pytest.mark.parametrize("cell", sorted(SEARCHED))
def test_a_shipped_cell_is_the_cell_its_comparison_found_and_retrained(cell):
    shipped = resolve_genotype(f"discovered/{cell}_ptb_cpu")
    row = SEARCHED[cell]
    assert without_provenance(shipped.to_dict()) == without_provenance(row["genotype"])
    comparison = shipped.provenance["comparison"]
    assert comparison["retraining"]["test_ppl"] == row["test_ppl"]
    assert comparison["retraining"]["seeds"] == [run["seed"] for run in row["runs"]] == PTB["settings"]["seeds"]
    assert comparison["search"]["strategy"] == row["search"]["strategy"]
    assert comparison["rank_among_random"] == f"{row['rank']}/{PTB['random_cells'] + 1}"


def test_a_shipped_cell_loads_by_name_on_the_command_line(capsys):
    assert cli.main(["show", "discovered/darts_ptb_cpu"]) == 0
    shown = capsys.readouterr().out
    for i, (activation, predecessor) in enumerate(SEARCHED["darts"]["genotype"]["nodes"], start=1):
        assert f"node {i}: {activation}({predecessor})" in shown


@pytest.mark.parametrize("name", COMPARISONS)
def test_the_readme_shows_each_committed_comparison_as_its_table(name):
    report = json.loads((RESULTS / name).read_text(encoding="utf-8"))
    assert all(run["status"] == "done" for row in report["rows"] for run in row["runs"]), "an unfinished run"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert markdown_table(report) in readme
    assert re.search(rf"benchmarks/results/{re.escape(name)}", readme)


def average_ranks(values: list[float]) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank (Spearman's convention)."""
    values = np.asarray(values)
    return np.array([np.sum(values < v) + (np.sum(values == v) - 1) / 2 for v in values])


def test_the_readme_correlation_of_random_search_children_with_their_retraining():
    trials = [json.loads(line) for line in
              (RESULTS / "comparison-ptb-cpu-random-search-trials.jsonl").read_text(encoding="utf-8").splitlines()]
    child_ppl = {json.dumps(t["genotype"]["nodes"]): t["ppl"] for t in trials}
    random_rows = [row for row in PTB["rows"] if row["kind"] == "random"]
    keys = [json.dumps(row["genotype"]["nodes"]) for row in random_rows]
    assert sorted(keys) == sorted(child_ppl)  # random search (seed 0) trained exactly the comparison's random cells
    proxy = average_ranks([child_ppl[k] for k in keys])
    retrained = average_ranks([row["test_ppl"]["mean"] for row in random_rows])
    spearman = np.corrcoef(proxy, retrained)[0, 1]
    assert f"correlation of {spearman:.2f} against" in (REPO / "README.md").read_text(encoding="utf-8")
