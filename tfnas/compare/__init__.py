"""``tfnas compare``: does the search find better cells? Every strategy against random cells and known baselines.

`run_comparison` runs each search of a `CompareConfig`, then retrains every
found cell, K random cells of the same space and the baselines (DARTS_V2,
the LSTM) with one recipe and the same seeds, each unit in a run folder of
its own so a killed comparison resumes; `tfnas.compare.report` rebuilds the
JSON, the Markdown table and the plot from those folders; `ship_cells` writes
the found cells, with their comparison in their provenance, where known
cells are (``exported_cells/discovered/``).
"""
from tfnas.compare.cells import DISCOVERED, ship_cells
from tfnas.compare.config import CompareConfig, CompareConfigError, StrategyRun, load_compare_config
from tfnas.compare.report import failed_runs, failure_summary, markdown_table, plot, write_report
from tfnas.compare.runner import run_comparison

__all__ = ["DISCOVERED", "CompareConfig", "CompareConfigError", "StrategyRun", "failed_runs", "failure_summary",
           "load_compare_config", "markdown_table", "plot", "run_comparison", "ship_cells", "write_report"]
