"""RSWS: random search with weight sharing (Li & Talwalkar, "Random Search and Reproducibility for Neural
Architecture Search", UAI 2019, section 3 and appendix A.3; the authors' ``randomNAS_release``).

The method has three stages; a search runs the first, and the second as an option:

* Stage 1, the shared weights (`SharedWeightsSearch`, without an
  architecture phase: ``interval_setting`` is None). A supernet around
  DARTS' recurrent cell with shared weights, one matrix per node
  (`SharedCell` with ``sharing="node"``: the layout of DARTS' cell and of
  the frozen `GenotypeCell`; the authors set the genotype of DARTS'
  ``DARTSCell`` before each minibatch), in the full-size network (850
  units: their ablation, Table 3, found the 300-unit proxy worse). Every
  training minibatch runs one cell drawn uniformly from DARTS' space (each
  of the 8 nodes a predecessor and one of tanh, relu, sigmoid, identity;
  no zero op; node 0 DARTS' highway with tanh; the output the mean of
  nodes 1..8) and takes one clipped SGD step. The cell of step ``t`` comes
  from a generator seeded ``(seed + 1 + recoveries * 2**20, t)``
  (`training_seed`): the stream is a function of the checkpointed step
  and recovery count, so a killed search resumes to the same cells, and
  the steps retried after a recovery draw other ones.
* Stage 1, the selection (`select`), once the shared weights are trained
  (the last epoch, ``max_steps`` or ``budget_s`` reached; under a budget the
  training stops early enough for the selection to end within it,
  `stops_early`): ``select_rounds``
  rounds of ``round_size`` cells drawn uniformly (round ``r`` from the
  generator ``(seed + 2, r)``), each scored with the shared weights by
  its mean validation loss at batch ``score_batch_size`` with the states
  carried across BPTT windows from zero (`selection_loss`, the authors'
  ``DartsWrapper.evaluate``), on the whole validation split or its first
  ``score_batches`` windows. With ``rescore_top`` k > 0 the k best cells
  of each round are scored again on the whole split (the supplement's
  procedure, A.4); a round's cell is its best, and the cell of the
  search the best of the rounds'. Each round is written to
  ``selection.json`` (every cell and its losses) as it ends, so a killed
  selection resumes with the next round; the numbers of cells scored are
  in the result's metrics (``cells_scored``, ``cells_rescored``).
* Stage 2 (``stage2_top`` k > 0; the paper retrains the best cell of
  each of 4 searches for 300 epochs and keeps the best): the k best
  distinct cells of the selection are trained from scratch by
  `tfnas.lm.Trainer` with the ``stage2`` recipe, each in its run folder
  ``stage2/<cell key>`` (so it resumes, and a cell seen before keeps its
  run), and the cell of lowest best validation perplexity becomes the cell
  of the search; every retrained cell is recorded in the metrics
  (``stage2``).
* Stage 3 (the final training, 3600 epochs in the paper) is ``tfnas
  train``.

While the shared weights train, the cell of an epoch's history (`derive`)
is a preview, not the paper's: the best of the first ``preview_cells``
cells of selection round 0 by their loss from zero states on the first
``derive_batches`` validation windows (`SharedWeightsSearch.candidate_loss`).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf

from tfnas.callbacks import Callback
from tfnas.config import ModelConfig, TrainConfig
from tfnas.data import Corpus
from tfnas.data.batching import batchify_split
from tfnas.evaluation.evaluators import genotype_key
from tfnas.genotypes.dag import Genotype
from tfnas.lm.objective import mean_window_loss
from tfnas.lm.trainer import NonFiniteLossError, Trainer
from tfnas.metrics import perplexity
from tfnas.runs.atomic import read_json, write_json
from tfnas.runs.session import RunSession
from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, SettingsError, setting, settings
from tfnas.strategies.base import SearchResult
from tfnas.strategies.one_shot.shared_weights import SharedWeightsConfig, SharedWeightsSearch

#: The selection's record in the search folder: its step and settings, every round's cells and losses.
SELECTION_FILE = "selection.json"
#: The folder of stage 2's run folders, inside the search folder.
STAGE2_FOLDER = "stage2"


def rsws_model() -> ModelConfig:
    """The network RSWS trains the shared weights of: DARTS' evaluation (proxyless) network, `ModelConfig`'s
    defaults (850 units, dropouts 0.75 / 0.25 / 0.75 / 0.2 / 0.1, the authors' ``config='eval'``), recomputing
    each time step in the backward pass (a tfnas memory choice, the same gradients)."""
    return ModelConfig(recompute=True)


def stage2_recipe() -> TrainConfig:
    """Stage 2's training of a cell from scratch: 300 epochs (appendix A.3.2) of DARTS' evaluation recipe
    (`TrainConfig`'s defaults; A.3.3: "we used the same training hyperparameters that were tuned by Liu et
    al.")."""
    return TrainConfig(epochs=300)


@settings
class RswsConfig(SharedWeightsConfig):
    """RSWS settings (Li & Talwalkar, UAI 2019; the "Random (4)" setting of appendix A.3.2, Table 3, which found
    the published cell).

    Stage 1, from Table 3 and the authors' ``randomNAS_release``
    (``random_weight_share.py`` and ``benchmarks/ptb/darts/
    darts_wrapper_discrete.py``): the proxyless network (`rsws_model`, 850
    units; weight decay 8e-7), 50 epochs, batch 64, gradient clip 0.1, SGD
    lr 20 without decay, slowness 1e-3 and no AR; DARTS' space (8 nodes,
    DARTS' node 0, the mean of nodes 1..8) and its training segments (35
    steps, or 17 with probability 0.05); 2 rounds of 1000 random cells
    (``max(1, int(B / 10000))`` rounds for B = 50 * 929,589 / 64 / 35 =
    20,749 minibatches), each scored on the whole validation split at batch
    1024 (``search_batch_size = 256 * 4``). Stage 2: 300 epochs of DARTS'
    evaluation recipe (A.3.2, A.3.3). Not pinned (tfnas choices): the seed,
    ``max_loss`` (a safeguard), the preview cells, and ``stage2_top`` (the
    paper retrains one cell from each of 4 searches: off by default).
    """

    model: ModelConfig = field(default_factory=rsws_model)
    clip: float = 0.1
    wdecay: float = 8e-7
    beta: float = 1e-3
    full_bptt_prob: float = 0.95
    epochs: int = 50
    steps: int = 8
    first_node: str = "darts"
    output: str = "mean"
    lr_decay: float = 1.0
    select_rounds: int = setting(2, help="rounds of random cells scored after training (the authors' code: "
                                         "max(1, int(B / 10000)) for B training minibatches; 2 on PTB)",
                                 check=AT_LEAST_ONE)
    round_size: int = setting(1000, help="random cells scored per round (the authors' code: 1000)",
                              check=AT_LEAST_ONE)
    score_batch_size: int = setting(1024, help="validation batch of the scoring (the authors' PTB code: 1024)",
                                    check=AT_LEAST_ONE)
    score_batches: int | None = setting(None, help="validation windows a cell is scored on (null: the whole "
                                                   "split, the authors' PTB code)", check=AT_LEAST_ONE)
    rescore_top: int = setting(0, help="best cells of each round scored again on the whole split (the "
                                       "supplement's procedure: 10; 0: none)", check=NON_NEGATIVE)
    preview_cells: int = setting(10, help="cells whose best is the cell of an epoch's history while the shared "
                                          "weights train (a tfnas preview)", check=AT_LEAST_ONE)
    stage2_top: int = setting(0, help="best cells of the selection retrained from scratch (stage 2), the best "
                                      "of them kept (0: none)", resumable=True, check=NON_NEGATIVE)
    stage2: TrainConfig = setting(help="stage 2's training of each cell (the paper: 300 epochs of DARTS' "
                                       "evaluation recipe)", resumable=True, factory=stage2_recipe)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rescore_top > self.round_size:
            raise SettingsError(f"rescore_top must not exceed round_size; received {self.rescore_top} for "
                                f"{self.round_size}")
        ranked = self.select_rounds * (self.rescore_top or self.round_size)
        if self.stage2_top > ranked:
            raise SettingsError(f"stage2_top must not exceed the {ranked} cells the selection ranks "
                                f"(select_rounds x {'rescore_top' if self.rescore_top else 'round_size'}); "
                                f"received {self.stage2_top}")


class RswsSearch(SharedWeightsSearch):
    """RSWS; see the module docstring."""

    name = "rsws"

    def build(self, vocab_size: int) -> None:
        self.build_shared_weights(vocab_size, sharing="node")
        self.selection: dict[str, Any] | None = None
        self._window_s: float | None = None

    def search(self, corpus: Corpus, out_dir: str | Path, callbacks: Sequence[Callback] = ()) -> SearchResult:
        """Runs or resumes the search (see the module docstring); the validation data of the scoring are batched
        first, so that a split smaller than ``score_batch_size`` is refused before the folder is written."""
        self.score_data = batchify_split(corpus, "valid", self.config.score_batch_size)
        return super().search(corpus, out_dir, callbacks)

    # --------------------------------------------------------- stage 1: training
    def training_genotype(self) -> Genotype:
        """The cell of this training step: drawn uniformly from the space with the seed `training_seed`."""
        return self.space.sample(np.random.default_rng(self.training_seed()))

    def training_arch(self) -> tf.Tensor:
        return self.encoded(self.training_genotype())

    def stops_early(self) -> bool:
        """Under ``budget_s``: whether the selection, at its measured cost (`selection_cost_s`), would end past the
        budget; the shared weights stop training then, so that the search, selection included, ends within it
        (a tfnas rule: the paper has no wall-clock budget)."""
        budget = self.config.budget_s
        return budget is not None and self.session.spent_s() + self.selection_cost_s() >= budget

    def selection_windows(self) -> int:
        """Validation windows the selection scores: ``select_rounds`` x (``round_size`` x the windows of a
        score + ``rescore_top`` x the windows of the whole split)."""
        c = self.config
        split = math.ceil((self.score_data.shape[1] - 1) / c.bptt)
        per_cell = split if c.score_batches is None else min(c.score_batches, split)
        return c.select_rounds * (c.round_size * per_cell + c.rescore_top * split)

    def selection_cost_s(self) -> float:
        """Seconds the selection will take: `selection_windows` times the seconds of one scored window, measured
        once per session on the session's clock (the second of two one-window scores, the first compiling)."""
        if self._window_s is None:
            probe = self.round_cells(0, 1)[0]
            self.selection_loss(probe, 1)
            start = self.session.spent_s()
            self.selection_loss(probe, 1)
            self._window_s = self.session.spent_s() - start
        return self.selection_windows() * self._window_s

    def trained(self) -> bool:
        """Whether the shared weights are done training: in the last epoch, or the search's end is reached
        (``max_steps``, ``budget_s``)."""
        return self.epoch >= self.config.epochs or self._done()

    # -------------------------------------------------------- stage 1: selection
    def round_cells(self, round_index: int, count: int | None = None) -> list[Genotype]:
        """The first ``count`` (all ``round_size``) cells of selection round ``round_index``: uniform draws from
        the generator ``(seed + 2, round_index)``."""
        rng = np.random.default_rng([self.config.seed + 2, round_index])
        return [self.space.sample(rng) for _ in range(self.config.round_size if count is None else count)]

    def selection_loss(self, genotype: Genotype, batches: int | None) -> float:
        """Mean validation loss of ``genotype`` with the shared weights at batch ``score_batch_size``, the
        states carried across BPTT windows from zero states (the authors' ``DartsWrapper.evaluate``), on the
        first ``batches`` windows (None: all); a non-finite loss counts as infinite."""
        self.model.cell.set_genotype(genotype)
        loss = mean_window_loss(self._eval_step, self.score_data, self.config.bptt,
                                self.model.initial_state(self.score_data.shape[0]), batches)
        return loss if math.isfinite(loss) else math.inf

    def selection_settings(self) -> dict[str, Any]:
        """The settings a selection record was made with."""
        c = self.config
        return {"select_rounds": c.select_rounds, "round_size": c.round_size, "score_batch_size": c.score_batch_size,
                "score_batches": c.score_batches, "rescore_top": c.rescore_top, "bptt": c.bptt, "seed": c.seed}

    def select(self) -> dict[str, Any]:
        """The selection at this step: its record, run or resumed from ``selection.json`` (rounds done at this
        step with these settings are kept) and written after each round.

        The record holds ``rounds``, each ``{"cells": [choice indices as text], "losses": [...], "rescored":
        [[index, loss], ...]}``.
        """
        if self.selection is not None and self.selection["step"] == self.step:
            return self.selection
        c, path = self.config, self.out_dir / SELECTION_FILE
        record = {"step": self.step, "settings": self.selection_settings(), "rounds": []}
        if path.exists():
            saved = read_json(path)
            if saved.get("step") == self.step and saved.get("settings") == record["settings"]:
                record = saved
        if not record["rounds"]:
            self._warn_if_the_selection_takes_the_budget()
        for r in range(len(record["rounds"]), c.select_rounds):
            cells = self.round_cells(r)
            losses = [self.selection_loss(g, c.score_batches) for g in cells]
            order = sorted(range(len(cells)), key=lambda k: (losses[k], k))
            rescored = [[k, self.selection_loss(cells[k], None)] for k in order[:c.rescore_top]]
            record["rounds"].append({"cells": [" ".join(map(str, self.space.encode(g))) for g in cells],
                                     "losses": losses, "rescored": rescored})
            write_json(path, record)
            best, loss = self.round_best(record["rounds"][-1])
            self._message(f"selection round {r + 1} of {c.select_rounds} at step {self.step}: {len(cells)} cells "
                          f"scored, best valid ppl {perplexity(loss):.2f} with the shared weights")
            self.session.stop_if_pending(f"at step {self.step} after selection round {r + 1}", self._save)
        self.selection = record
        return record

    def _warn_if_the_selection_takes_the_budget(self) -> None:
        """One warning line when, under ``budget_s``, the selection's measured cost (`selection_cost_s`) is more
        than half the budget: the shared weights then had less than half of it (settings sized for a smaller
        corpus; on WikiText-2, budget_ptb's selection left them 0 and 66 steps of a 300-s budget)."""
        budget = self.config.budget_s
        cost = None if budget is None else self.selection_cost_s()
        if cost is not None and cost > budget / 2:
            self._message(f"warning: the selection takes about {cost:.0f} s "
                          f"({self.selection_windows()} validation windows), more than half of budget_s={budget:g}, "
                          f"so the shared weights trained {self.step} steps; lower round_size, score_batches or "
                          "rescore_top to leave them more")

    def _final_losses(self, round_record: dict[str, Any]) -> list[tuple[int, float]]:
        """``(index, loss)`` of a round's cells by their last score: the rescored ones, or all."""
        if self.config.rescore_top:
            return [(int(k), float(loss)) for k, loss in round_record["rescored"]]
        return list(enumerate(float(loss) for loss in round_record["losses"]))

    def _cell(self, round_record: dict[str, Any], index: int) -> Genotype:
        return self.space.decode([int(v) for v in round_record["cells"][index].split()])

    def round_best(self, round_record: dict[str, Any]) -> tuple[Genotype, float]:
        """A round's cell: the lowest last score (the first of equals)."""
        index, loss = min(self._final_losses(round_record), key=lambda pair: (pair[1], pair[0]))
        return self._cell(round_record, index), loss

    def ranked(self) -> list[tuple[Genotype, float]]:
        """The distinct cells of the selection by their last score, best first (equals in round and draw
        order)."""
        rounds = self.select()["rounds"]
        scored = sorted((loss, r, k) for r, rnd in enumerate(rounds) for k, loss in self._final_losses(rnd))
        out: dict[Genotype, float] = {}
        for loss, r, k in scored:
            out.setdefault(self._cell(rounds[r], k), loss)
        return list(out.items())

    # ------------------------------------------------------------ one-shot API
    def derive_key(self) -> Any:
        """The step, and whether the cell is the selection's or a preview's."""
        return self.step, self.trained()

    def derive_candidates(self) -> Iterable[Genotype]:
        """Trained: each round's cell (`select`); before: the first ``preview_cells`` cells of round 0."""
        if self.trained():
            return [self.round_best(rnd)[0] for rnd in self.select()["rounds"]]
        return self.round_cells(0, self.config.preview_cells)

    def candidate_loss(self) -> Callable[[Genotype], float]:
        """Trained: a round cell's last score (no new scoring); before: `SharedWeightsSearch.candidate_loss`."""
        if not self.trained():
            return super().candidate_loss()
        best: dict[Genotype, float] = {}
        for rnd in self.select()["rounds"]:
            genotype, loss = self.round_best(rnd)
            best.setdefault(genotype, loss)
        return best.__getitem__

    def selection_metrics(self) -> dict[str, Any]:
        """The selection's counts and its cell's perplexity with the shared weights, for the result."""
        c, rounds = self.config, self.select()["rounds"]
        return {"cells_scored": sum(len(r["losses"]) for r in rounds),
                "cells_rescored": sum(len(r["rescored"]) for r in rounds),
                "selection_ppl": perplexity(min(self.round_best(r)[1] for r in rounds)),
                "select_rounds": c.select_rounds}

    def architecture_snapshot(self) -> dict[str, Any]:
        return {"derived_loss": None if self._derived is None else self._derived[2],
                "selected": bool(self._derived is not None and self._derived[0][1])}

    # ------------------------------------------------------------------ stage 2
    def stage2(self) -> tuple[Genotype, dict[str, Any]]:
        """Stage 2: the ``stage2_top`` best cells of the selection trained from scratch (`Trainer` with the
        ``stage2`` recipe on the search's corpus, each in ``stage2/<cell key>``, resumed if begun); returns the
        cell of lowest best validation perplexity (the first of equals) and the record of every cell."""
        c = self.config
        recipe = dataclasses.replace(c.stage2, **c.corpus_settings())
        cells: list[dict[str, Any]] = []
        candidates = self.ranked()[:c.stage2_top]
        for k, (genotype, loss) in enumerate(candidates):
            folder = Path(STAGE2_FOLDER) / genotype_key(genotype)
            self._message(f"stage 2: training cell {k + 1} of {len(candidates)} from scratch in {folder.as_posix()}")
            try:
                result = Trainer(recipe, genotype, self.out_dir / folder, corpus=self.corpus).fit(evaluate_test=False)
                ppl, steps = float(result.best_valid_ppl), result.steps
            except NonFiniteLossError:
                ppl, steps = math.inf, None
            cells.append({"genotype": genotype.to_dict(), "shared_ppl": perplexity(loss), "best_valid_ppl": ppl,
                          "steps": steps, "folder": folder.as_posix()})
            self._message(f"stage 2: cell {k + 1} of {len(candidates)}: best valid ppl {ppl:.2f} after {steps} steps")
        best = min(range(len(cells)), key=lambda k: (cells[k]["best_valid_ppl"], k))
        return candidates[best][0], {"cells": cells, "best": best}

    def finish(self, session: RunSession, genotype: Genotype, history: list[dict[str, Any]],
               metrics: dict[str, Any], end_logs: dict[str, Any]) -> SearchResult:
        """`Strategy.finish` with the selection's metrics, after stage 2 when ``stage2_top`` > 0: its cell is the
        search's, its record the ``stage2`` metric (and ``stage2_valid_ppl``, the cell's)."""
        metrics = {**metrics, **self.selection_metrics()}
        if self.config.stage2_top:
            genotype, record = self.stage2()
            metrics.update(stage2=record, stage2_valid_ppl=record["cells"][record["best"]]["best_valid_ppl"])
            end_logs = {**end_logs, "genotype": json.dumps(genotype.to_dict()["nodes"])}
        return super().finish(session, genotype, history, metrics, end_logs)
