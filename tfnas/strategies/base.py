"""The interface every search strategy implements, and what a search returns."""
from __future__ import annotations

import abc
import dataclasses
import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tfnas.errors import TfnasError
from tfnas.callbacks import CELL_KEY, Callback
from tfnas.data import Corpus
from tfnas.genotypes.base import MAX_NODES
from tfnas.genotypes.dag import Genotype
from tfnas.runs.atomic import write_json
from tfnas.runs.folder import SEARCH_RESULT_FILE
from tfnas.runs.session import RunSession
from tfnas.settings import Bound

#: The interval of every strategy's ``steps`` (the nodes of a DAG cell after node 0): at most what a genotype
#: may hold, so that a search is refused before it counts or builds a space of more.
STEPS = Bound(1, MAX_NODES)


class SearchDivergedError(TfnasError, RuntimeError):
    """The search loss stayed non-finite after recovering from checkpoints."""


@dataclass
class SearchResult:
    """A finished search: the genotype, the per-epoch history, final metrics and the wall-clock seconds it took.

    ``seconds`` counts the sessions that ran it, up to the checkpoint each
    resumed from (`tfnas.runs.session.RunSession.spent_s`); unlike the
    metrics it depends on the machine, so it is kept apart from them.
    """

    genotype: Genotype
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None

    def save(self, out_dir: str | Path) -> Path:
        """Writes ``genotype.json`` and ``search_result.json``; returns the genotype path."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = self.genotype.save(out_dir / "genotype.json")
        write_json(out_dir / SEARCH_RESULT_FILE,
                   {"genotype": self.genotype.to_dict(), "history": self.history, "metrics": self.metrics,
                    "seconds": self.seconds})
        return path


def with_provenance(genotype: Genotype, strategy: str, config: Any, metrics: dict[str, Any]) -> Genotype:
    """The genotype with a provenance record: strategy, dataset, settings, metrics, date."""
    settings = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    from tfnas import __version__

    return dataclasses.replace(genotype, provenance={
        "name": f"{strategy} search on {settings.get('dataset', '?')}",
        "strategy": strategy,
        "dataset": settings.get("dataset"),
        "settings": settings,
        "metrics": metrics,
        "tfnas_version": __version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })


class Strategy(abc.ABC):
    """A search method: ``search(corpus, out_dir, callbacks) -> SearchResult``.

    A strategy is built from its config dataclass. It checkpoints its whole
    state under ``out_dir`` so that calling `search` again on the same folder
    resumes where a killed run stopped, and it reports progress only through
    callbacks. While it runs it holds the folder's lock
    (`tfnas.runs.lock.RunLock`); it opens the folder with
    `tfnas.runs.folder.open_run` (another kind of run, other settings or
    other data are refused) and checkpoints at the next step boundary on
    Ctrl-C (`tfnas.runs.interrupt`).
    """

    #: The name used by ``tfnas search --strategy``.
    name: str = ""
    config: Any
    #: What the warning of a degenerate cell (`finish`) suggests.
    degenerate_advice: str = "search longer or with another seed"

    @abc.abstractmethod
    def search(self, corpus: Corpus, out_dir: str | Path, callbacks: Sequence[Callback] = ()) -> SearchResult:
        """Runs (or resumes) the search and returns its result."""

    def provenance(self) -> dict[str, Any]:
        """What a method adds to the found genotype's provenance (BayesNAS: its prior variances)."""
        return {}

    def finish(self, session: RunSession, genotype: Genotype, history: list[dict[str, Any]],
               metrics: dict[str, Any], end_logs: dict[str, Any]) -> SearchResult:
        """The end of every search: a one-line warning if the cell is degenerate (``genotype.degenerate()``), the
        genotype with its provenance (`with_provenance`, then `provenance`), ``genotype.json`` and
        ``search_result.json`` written (with the seconds spent), then the ``"end"`` event (``end_logs`` and the genotype's
        dict under `tfnas.callbacks.CELL_KEY`) and the callbacks closed."""
        why = genotype.degenerate()
        if why is not None:
            session.message(f"warning: the derived cell is degenerate ({why}); {self.degenerate_advice}")
        found = with_provenance(genotype, self.name, self.config, metrics)
        found = dataclasses.replace(found, provenance={**found.provenance, **self.provenance()})
        result = SearchResult(found, history, metrics, seconds=session.spent_s())
        result.save(session.run_dir)
        session.end({**end_logs, CELL_KEY: genotype.to_dict()})
        return result
