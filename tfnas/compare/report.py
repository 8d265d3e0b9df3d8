"""The report of a comparison, rebuilt from its run folders: JSON, a Markdown table and a plot.

Every number comes from a unit's own files (``result.json`` of a
retraining, ``search_result.json`` and the cost file of a search), so the
report always agrees with the folders, and rebuilding it changes nothing.
A cell's rank is its place among the random cells by mean test perplexity:
``r/K+1`` means r - 1 of the K random cells have a lower mean.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Sequence

from tfnas.compare.config import CompareConfig, StrategyRun, is_random_cell
from tfnas.compare.signals import SIGNALS_FILE, correlations
from tfnas.compare.statistics import against_random
from tfnas.compare.units import (ERRORS_FILE, LSTM, RESOLVED_FILE, TrainUnit, cost_file, search_folder,
                                 train_units)
from tfnas.errors import import_optional
from tfnas.genotypes.files import as_any_genotype
from tfnas.runs.atomic import read_json, write_json, write_text
from tfnas.runs.folder import SEARCH_RESULT_FILE, TRAINING_RESULT_FILE

REPORT_JSON = "comparison.json"
REPORT_TABLE = "comparison.md"
#: The level the report's notes speak of (a strategy "beats" the random cells below it).
SIGNIFICANCE = 0.05


def _spread(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean and sample standard deviation (0 for one value; None without values)."""
    if not values:
        return {"mean": None, "sd": None, "n": 0}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "n": len(values)}


def _unit_record(unit: TrainUnit, errors: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {"seed": unit.seed, "folder": unit.folder}
    if unit.done:
        result = read_json(Path(unit.folder) / TRAINING_RESULT_FILE)
        record.update(status="done", valid_ppl=result["best_valid_ppl"], test_ppl=result["test_ppl"],
                      steps=result["steps"], params=result["params"])
    elif unit.folder in errors:
        record.update(status="failed", error=errors[unit.folder])
    else:
        record.update(status="pending")
    return record


def short_genotype(genotype: dict[str, Any] | None) -> str:
    """``tanh(0) relu(1) ...`` (a DAG cell's nodes, ``+ dot`` for a head), ``tree (k nodes)``, or ``LSTM``."""
    if genotype is None:
        return "LSTM"
    g = as_any_genotype(genotype)
    if not hasattr(g, "nodes") or not hasattr(g, "concat"):
        return f"tree ({len(genotype.get('nodes', []))} nodes)"
    head = f" + {g.attention}" if getattr(g, "attention", None) else ""
    return " ".join(f"{act}({pred})" for act, pred in g.nodes) + head


def build_report(out: Path, config: CompareConfig) -> dict[str, Any]:
    """The comparison as JSON data: the settings, the ``resolved`` ones (the retraining recipe and each search's
    settings once the presets were read, the corpus fingerprint: ``resolved.json``, None in a folder of before it),
    one row per cell with its retrainings, searches with their cost."""
    errors = read_json(out / ERRORS_FILE) if (out / ERRORS_FILE).exists() else {}
    units: dict[str, list[TrainUnit]] = {}
    genotypes: dict[str, Any] = {}
    for unit in train_units(out, config):
        units.setdefault(unit.cell, []).append(unit)
        genotypes[unit.cell] = unit.genotype
    search_names = {run.name: run for run in config.search_runs()}
    rows = []
    for cell, cell_units in units.items():
        runs = [_unit_record(u, errors) for u in cell_units]
        done = [r for r in runs if r["status"] == "done"]
        kind = "search" if cell in search_names else "random" if is_random_cell(cell) else "baseline"
        row: dict[str, Any] = {"cell": cell, "kind": kind, "genotype": genotypes[cell],
                               "valid_ppl": _spread([r["valid_ppl"] for r in done]),
                               "test_ppl": _spread([r["test_ppl"] for r in done]), "runs": runs}
        if kind == "search":
            row["search"] = _search_record(out, search_names[cell])
        rows.append(row)
    for run in config.search_runs():  # searches that did not finish have no cell yet
        if run.name not in units:
            rows.append({"cell": run.name, "kind": "search", "genotype": None, "runs": [],
                         "valid_ppl": _spread([]), "test_ppl": _spread([]), "search": _search_record(out, run)})
    random_means = [r["test_ppl"]["mean"] for r in rows if r["kind"] == "random" and r["test_ppl"]["n"]]
    for row in rows:
        mean = row["test_ppl"]["mean"]
        row["rank"] = None if mean is None or row["kind"] == "random" else \
            1 + sum(m < mean for m in random_means)
    resolved = read_json(out / RESOLVED_FILE) if (out / RESOLVED_FILE).exists() else None
    target = {r["cell"]: r["test_ppl"]["mean"] for r in rows if r["kind"] == "random" and r["test_ppl"]["n"]}
    signals = read_json(out / SIGNALS_FILE)["signals"] if (out / SIGNALS_FILE).exists() else {}
    return {"settings": config.to_dict(), "resolved": resolved, "random_cells": len(random_means), "rows": rows,
            "strategies": strategy_summaries(config, rows, random_means),
            "signals": correlations(signals, target)}


def strategy_summaries(config: CompareConfig, rows: Sequence[dict[str, Any]],
                       random_means: Sequence[float]) -> list[dict[str, Any]]:
    """One record per strategy row of the settings (a `StrategyRun` with all its search seeds): its searches, the
    mean test perplexity of each search's cell over the retraining seeds (one value per search: the searches
    are the strategy's replicates; `tfnas.compare.statistics`), and `statistics.against_random` of those values
    against the random cells' means (the difference of their mean to the random median with its bootstrap
    interval, the one-sided permutation test), with the searches' mean seconds and steps."""
    by_cell = {row["cell"]: row for row in rows}
    out = []
    for run in config.searches:
        searches = [by_cell[r.name] for r in config.search_runs() if r.strategy_name == run.name]
        values = [row["test_ppl"]["mean"] for row in searches if row["test_ppl"]["n"]]
        seconds = [row["search"]["seconds"] for row in searches if row["search"]["seconds"] is not None]
        steps = [row["search"]["steps"] for row in searches if row["search"]["steps"] is not None]
        out.append({"strategy": run.name, "method": run.strategy, "searches": [row["cell"] for row in searches],
                    "values": values, "seconds": statistics.fmean(seconds) if seconds else None,
                    "steps": statistics.fmean(steps) if steps else None,
                    **against_random(values, random_means)})
    return out


def failed_runs(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The retrainings of ``report`` that failed, each as its run record (seed, folder, error) with its ``cell``."""
    return [{"cell": row["cell"], **run} for row in report["rows"] for run in row["runs"] if run["status"] == "failed"]


def failure_summary(report: dict[str, Any], out: Path) -> str | None:
    """One line on the retrainings of ``report`` (of comparison folder ``out``) that failed (``2 of 12
    retrainings failed (lstm seed 2, ...``), or None when none did."""
    failed = failed_runs(report)
    if not failed:
        return None
    total = sum(len(row["runs"]) for row in report["rows"])
    names = ", ".join(f"{run['cell']} seed {run['seed']}" for run in failed)
    return (f"{len(failed)} of {total} retrainings failed ({names}; the errors are in {out / ERRORS_FILE}): the report "
            "leaves them out; run the same command again to retry them")


def _search_record(out: Path, run: StrategyRun) -> dict[str, Any]:
    folder = search_folder(out, run)
    cost = cost_file(out, run)
    result = read_json(folder / SEARCH_RESULT_FILE) if (folder / SEARCH_RESULT_FILE).exists() else None
    seconds = (result or {}).get("seconds", read_json(cost)["seconds"] if cost.exists() else None)
    return {"strategy": run.strategy, "preset": run.preset, "overrides": dict(run.overrides),
            "folder": str(folder), "finished": result is not None,
            "seconds": seconds,
            "steps": None if result is None else result.get("metrics", {}).get("steps"),
            "metrics": None if result is None else result.get("metrics")}


def _fmt(spread: dict[str, Any]) -> str:
    if not spread["n"]:
        return "-"
    return f"{spread['mean']:.1f}" if spread["n"] == 1 else f"{spread['mean']:.1f} ± {spread['sd']:.1f}"


def markdown_table(report: dict[str, Any]) -> str:
    """The report's table: searches first, then the baselines, then the random cells' summary and each random cell."""
    k = report["random_cells"]
    lines = ["| cell | kind | search s | search steps | genotype | valid ppl | test ppl | rank vs random |",
             "|---|---|---|---|---|---|---|---|"]
    order = {"search": 0, "baseline": 1, "random": 2}
    for row in sorted(report["rows"], key=lambda r: order[r["kind"]]):
        search = row.get("search") or {}
        seconds = f"{search['seconds']:.0f}" if search.get("seconds") is not None else ""
        steps = "" if search.get("steps") is None else str(search["steps"])
        rank = "" if row["rank"] is None else f"{row['rank']}/{k + 1}"
        lines.append(f"| {row['cell']} | {row['kind']} | {seconds} | {steps} | {short_genotype(row['genotype'])} | "
                     f"{_fmt(row['valid_ppl'])} | {_fmt(row['test_ppl'])} | {rank} |")
    lines += ["", strategy_table(report)] if report.get("strategies") else []
    lines += ["", signal_table(report)] if report.get("signals") else []
    return "\n".join(lines) + "\n"


def signal_table(report: dict[str, Any]) -> str:
    """Per cheap signal (`tfnas.compare.signals`): Spearman's rho with the random cells' mean retrained test
    perplexity, its bootstrap interval and p-value (rho > 0: the signal ranks cells as retraining does)."""
    lines = ["| signal (over the random cells) | cells | Spearman rho [95% CI] | p (two-sided) |", "|---|---|---|---|"]
    for entry in report["signals"]:
        rho = "-" if entry["rho"] is None else f"{entry['rho']:+.2f}"
        interval = "" if entry["low"] is None else f" [{entry['low']:+.2f}, {entry['high']:+.2f}]"
        p = "-" if entry["p_value"] is None else f"{entry['p_value']:.3f}"
        lines.append(f"| {entry['signal']} | {entry['n']} | {rho}{interval} | {p} |")
    return "\n".join(lines)


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def strategy_table(report: dict[str, Any]) -> str:
    """Per strategy: its searches, their mean seconds, the mean test perplexity of their cells, the difference
    to the random cells' median with its bootstrap interval, and the one-sided permutation test's p-value."""
    k = report["random_cells"]
    lines = [f"| strategy | searches | search s (mean) | test ppl (mean of searches) | minus random median "
             f"[95% CI] | p (one-sided permutation, vs {k} random) |", "|---|---|---|---|---|---|"]
    for entry in report["strategies"]:
        diff, test = entry["difference_to_median"], entry["permutation_test"]
        interval = "" if diff["low"] is None else f" [{diff['low']:.1f}, {diff['high']:.1f}]"
        p = "-" if test["p_value"] is None else f"{test['p_value']:.3f}" + ("" if test["p_exact"] else " (sampled)")
        lines.append(f"| {entry['strategy']} | {entry['n']}/{len(entry['searches'])} | {_number(entry['seconds'], 0)} | "
                     f"{_number(entry['mean'])} | {_number(diff['difference'])}{interval} | {p} |")
    tested = [entry["permutation_test"] for entry in report["strategies"] if entry["permutation_test"]["p_value"]
              is not None]
    if tested:
        floor = min(tested, key=lambda test: test["min_p_value"])
        lines += ["", f"Each p is one strategy's, not corrected for the {len(tested)} tested (a Bonferroni level: "
                      f"{SIGNIFICANCE / len(tested):.4g}); the smallest p this design allows is "
                      f"{floor['min_p_value']:.3g} (1 of {floor['splits']} splits: {floor['n']} "
                      f"search{'es' if floor['n'] > 1 else ''} against {floor['n_reference']} random cells)."]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: str | Path) -> Path:
    """Test perplexity per strategy over the random cells' distribution (box and dots at the left, their range as
    a band, their median as a dotted line), with the baselines as dashed lines. A strategy's column shows each
    retraining (small dots), each search's cell mean (large dots) and, where it has one, the 95% bootstrap
    interval of its mean (the random median plus the interval of `statistics.difference_to_median`)."""
    matplotlib = import_optional("matplotlib", "compare", "the plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r["cell"]: r for r in report["rows"]}
    random = [r["test_ppl"]["mean"] for r in rows.values() if r["kind"] == "random" and r["test_ppl"]["n"]]
    strategies = [s for s in report.get("strategies", []) if s["n"]]
    fig, ax = plt.subplots(figsize=(1.0 * (len(strategies) + 2) + 2, 4.5))
    if random:
        ax.axhspan(min(random), max(random), color="0.9", zorder=0, label="random cells (range)")
        ax.axhline(statistics.median(random), color="0.5", linestyle=":", label="random cells (median)")
        ax.boxplot([random], positions=[0], widths=0.5)
        ax.scatter([0] * len(random), random, color="0.5", s=12, zorder=3)
    for x, entry in enumerate(strategies, start=1):
        for i, cell in enumerate(entry["searches"]):
            tests = [u["test_ppl"] for u in rows[cell]["runs"] if u["status"] == "done"]
            offset = x + 0.12 * (i - (len(entry["searches"]) - 1) / 2)
            ax.scatter([offset] * len(tests), tests, color="C0", s=8, alpha=0.5, zorder=3)
            if tests:
                ax.scatter([offset], [statistics.fmean(tests)], color="C0", s=30, zorder=4)
        ax.hlines(entry["mean"], x - 0.25, x + 0.25, color="C0", zorder=3)
        diff = entry["difference_to_median"]
        if diff["low"] is not None:
            ax.vlines(x + 0.3, diff["median"] + diff["low"], diff["median"] + diff["high"], color="C3", zorder=3)
    baselines = [r for r in rows.values() if r["kind"] == "baseline" and r["test_ppl"]["n"]]
    for i, row in enumerate(baselines):
        name = "LSTM" if row["cell"] == LSTM else row["cell"]
        ax.axhline(row["test_ppl"]["mean"], color=f"C{i + 1}", linestyle="--", label=name)
    ax.set_xticks(range(len(strategies) + 1), [f"random ({len(random)})"] + [s["strategy"] for s in strategies],
                  rotation=30, ha="right")
    ax.set_ylabel("test perplexity (retrained)")
    ax.set_title("dots: retrainings and search means; bar: strategy mean; red: its 95% interval", fontsize="small")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(out: Path, config: CompareConfig, plot_path: str | Path | None = None) -> dict[str, Any]:
    """Rebuilds ``comparison.json`` and ``comparison.md`` (and the plot) from the folders; returns the report."""
    report = build_report(out, config)
    write_json(out / REPORT_JSON, report)
    write_text(out / REPORT_TABLE, markdown_table(report))
    if plot_path is not None:
        plot(report, plot_path)
    return report
