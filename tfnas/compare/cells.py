"""Shipping the cells a comparison found as known genotypes (``exported_cells/discovered/``)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tfnas.genotypes.files import as_any_genotype

#: Where shipped cells go inside ``exported_cells/``; a cell there loads as ``discovered/<name>``.
DISCOVERED = "discovered"


def ship_cells(report: dict[str, Any], folder: str | Path, suffix: str) -> list[Path]:
    """Writes every searched cell of ``report`` that was retrained as ``folder/<label>_<suffix>.json``.

    Each genotype keeps its search provenance (strategy, settings without
    the local ``data_dir``, search metrics, date) and gains ``comparison``: the search's preset, budget
    (its overrides), cost, and the retraining recipe, seeds, validation and
    test perplexities and rank among the random cells.
    """
    folder = Path(folder)
    settings = report["settings"]
    written = []
    for row in report["rows"]:
        if row["kind"] != "search" or row["genotype"] is None or not row["test_ppl"]["n"]:
            continue
        genotype = as_any_genotype(row["genotype"])
        search = row["search"]
        name = f"{row['cell']}_{suffix}"
        comparison = {
            "name": name, "dataset": settings["dataset"],
            "search": {k: search[k] for k in ("strategy", "preset", "overrides", "seconds", "steps")},
            "retraining": {"preset": settings["train"], "overrides": settings["train_overrides"],
                           "seeds": [r["seed"] for r in row["runs"] if r["status"] == "done"],
                           "valid_ppl": row["valid_ppl"], "test_ppl": row["test_ppl"]},
            "rank_among_random": None if row["rank"] is None else f"{row['rank']}/{report['random_cells'] + 1}",
        }
        provenance = {**genotype.provenance, "comparison": comparison}
        if "settings" in provenance:  # the corpora's folder on the machine that searched means nothing elsewhere
            provenance["settings"] = {**provenance["settings"], "data_dir": None}
        shipped = dataclasses.replace(genotype, provenance=provenance)
        written.append(shipped.save(folder / f"{name}.json"))
    return written
