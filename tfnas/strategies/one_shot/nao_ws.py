"""NAO-WS (Luo et al., NeurIPS 2018, section 3.4): ENAS with its controller replaced by NAO.

"We replace the RL controller in ENAS by NAO ... with the other training
pipeline of ENAS unchanged." The paper says no more; the loop below is the
authors' ``NAO-WS/rnn/train_search.py``, over ENAS' shared weights
(a `SharedCell` supernet, one matrix per (node, predecessor) pair) and ENAS' training
(`SharedWeightsSearch`: clipped SGD on the shared weights, its learning-rate
decay, ``max_loss``):

* a pool of ``pool_size`` distinct random cells;
* every training batch runs one cell drawn uniformly from the pool (seed
  ``(seed + 1, step)``, and the recovery count after a recovery) and takes
  one SGD step on the shared weights;
* every ``pool_interval`` steps (`architecture_phase`): every pool cell is scored
  by its loss with the shared weights on the next validation window (from
  zero states); the EPD (`tfnas.policies.nao`) is trained on the pool
  (``epd_epochs``, warm-started; scores min-max normalised
  log-perplexities); the ``seed_archs`` best cells are moved by Eq. 2 with
  ``eta = 1, 2, ..., max_step_size`` and decoded until ``new_archs`` new
  cells (not in the pool) are found (unseen random cells make up a
  shortfall with ``fill_random``); ``random_archs`` unseen random cells are
  added; the new pool is the best ``pool_size - new - random`` old cells,
  the new ones and the random ones.

The cell of the search (`derive`) is the best of the ``derive_samples``
best cells of the last scored pool (the first ones of the initial pool
before any phase) re-scored on ``derive_batches`` validation windows.
Checkpoints hold the shared weights, the EPD and Adam's slots, the pool and
its scores, so a killed search resumes exactly.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from tfnas.genotypes.dag import Genotype
from tfnas.metrics import perplexity
from tfnas.policies.nao import EpdConfig, NaoTokens, make_epd_trainer, normalise_scores, train_epd
from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, SettingsError, setting, settings
from tfnas.strategies.one_shot.shared_weights import SharedWeightsConfig, SharedWeightsSearch


@settings
class NaoWsConfig(SharedWeightsConfig, EpdConfig):
    """NAO-WS settings: ENAS' training of the shared weights (`SharedWeightsConfig`; section 3.4: "unchanged")
    with NAO in place of the controller.

    The EPD is `EpdConfig`'s (the paper's PTB settings, section 4.3). From
    the authors' ``NAO-WS/rnn/train_search.sh`` and ``train_search.py``: the
    space (11 nodes after a DARTS node 0, the output the mean of nodes
    1..11; why: ``docs/strategies/nao.md``, "The space"), a pool of 1000 cells, 100 seeds, 300 new cells per phase from
    step sizes 1..30, 50 random cells, and 5 pool phases in a search (one
    every 30 of ENAS' 150 epochs of 415 steps here; the code: every 200 of
    its 1000 epochs).
    """

    steps: int = setting(11, help="nodes of the cell after node 0 (the authors' NAO-WS code: 11)")
    first_node: str = setting("darts", help="node 0: darts (the authors' NAO-WS code) or enas (the paper's space)")
    output: str = setting("mean", help="output rule: mean of nodes 1..N (the authors' NAO-WS code) or loose_ends")
    pool_size: int = setting(1000, help="cells in the pool (the authors' code: 1000)", check=AT_LEAST_ONE)
    pool_interval: int = setting(12450, help="training steps between pool phases (the authors' code: 5 phases a "
                                             "search; here every 30 of ENAS' 150 epochs of 415 steps)",
                                 check=AT_LEAST_ONE)
    seed_archs: int = setting(100, help="best pool cells moved by Eq. 2 in a pool phase (the authors' code: 100)",
                              check=AT_LEAST_ONE)
    new_archs: int = setting(300, help="new cells decoded in a pool phase (the authors' code: 300)",
                             check=NON_NEGATIVE)
    random_archs: int = setting(50, help="unseen random cells added in a pool phase (the authors' code: 50)",
                                check=NON_NEGATIVE)
    max_step_size: int = setting(30, help="step sizes eta = 1, 2, ..., max_step_size are tried in turn (the "
                                          "authors' code: 30)", check=AT_LEAST_ONE)
    fill_random: bool = setting(True, help="unseen random cells make up for fewer than new_archs decoded cells")
    derive_samples: int = setting(100, help="best cells of the last scored pool re-scored for the final cell",
                                  check=AT_LEAST_ONE)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_epd()
        if self.new_archs + self.random_archs > self.pool_size or self.seed_archs > self.pool_size:
            raise SettingsError(f"new_archs + random_archs and seed_archs must not exceed pool_size; received "
                                f"{self.new_archs} + {self.random_archs} and {self.seed_archs} for {self.pool_size}")


class NaoWsSearch(SharedWeightsSearch):
    """NAO-WS; see the module docstring."""

    name = "nao_ws"
    interval_setting = "pool_interval"

    def build(self, vocab_size: int) -> None:
        self.build_shared_weights(vocab_size)
        c = self.config
        if c.pool_size > self.space.size():
            raise SettingsError(f"pool_size {c.pool_size} exceeds the {self.space.size()} cells of {self.space!r}")
        self.tokens = NaoTokens(self.space)
        self.trainer = make_epd_trainer(c, self.tokens, c.seed)
        self.pool = [tuple(self.tokens.encode(g))
                     for g in self.space.sample_unique(c.pool_size, np.random.default_rng([c.seed, 5]))]
        self.scored: list[tuple[tuple[int, ...], float]] = []
        self.phases = 0

    def state_variables(self) -> list[tf.Variable]:
        return list(self.model.variables) + self.trainer.variables

    def extra_state(self) -> dict[str, Any]:
        return {"pool": [list(x) for x in self.pool], "scored": [[list(x), loss] for x, loss in self.scored],
                "phases": self.phases, "reward_position": self.reward_position, "pool_logs": self.phase_logs}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool = [tuple(x) for x in state["pool"]]
        self.scored = [(tuple(x), loss) for x, loss in state["scored"]]
        self.phases, self.reward_position = state["phases"], state["reward_position"]
        self.phase_logs = dict(state["pool_logs"])
        self._derived = None

    # ------------------------------------------------------------- pool
    def _loss_of(self, tokens: tuple[int, ...], windows) -> float:
        return self.architecture_loss(self.tokens.decode(tokens), windows)

    def architecture_phase(self) -> dict[str, float]:
        """The pool phase: score the pool, train the EPD, decode new cells from the best, replace the pool;
        returns logs."""
        c = self.config
        windows = self.reward_windows(1)
        losses = [self._loss_of(x, windows) for x in self.pool]
        self.scored = sorted(zip(self.pool, losses), key=lambda pair: pair[1])      # stable: ties keep pool order
        ids = np.asarray(self.pool, np.int32)
        scores = normalise_scores([perplexity(x) for x in losses])
        finite = np.isfinite(scores)
        logs = train_epd(self.trainer, c, ids[finite], scores[finite], c.seed, self.phases) if finite.any() else {}
        old = {x for x in self.pool}
        seeds = np.asarray([x for x, _ in self.scored[:c.seed_archs]], np.int32)
        accepted, etas = self.trainer.generate(seeds, range(1, c.max_step_size + 1), is_new=lambda x: x not in old,
                                               per_seed=None, limit=c.new_archs)
        new = [x for _, x in accepted]
        rng = np.random.default_rng([c.seed + 4, self.phases])
        exclude = [self.tokens.decode(x) for x in list(old) + new]
        shortfall = c.new_archs - len(new) if c.fill_random else 0
        extra = self.space.sample_unique(shortfall + c.random_archs, rng, exclude=exclude)
        new += [tuple(self.tokens.encode(g)) for g in extra[:shortfall]]
        random = [tuple(self.tokens.encode(g)) for g in extra[shortfall:]]
        keep = [x for x, _ in self.scored[:c.pool_size - len(new) - len(random)]]
        self.pool = keep + new + random
        self.phases += 1
        self._derived = None
        return {**logs, "pool_best_loss": float(self.scored[0][1]), "pool_mean_loss": float(np.mean(losses)),
                "decoded": len(accepted), "random_fill": shortfall, "largest_step": max(etas) if etas else 0.0}

    # --------------------------------------------------------- one-shot API
    def training_arch(self) -> tf.Tensor:
        """A pool cell drawn uniformly with the seed `training_seed` (``(seed + 1, step)`` before any recovery)."""
        rng = np.random.default_rng(self.training_seed())
        arch = self.pool[int(rng.integers(len(self.pool)))]
        return self.encoded(self.tokens.decode(arch))

    def derive_candidates(self) -> list[Genotype]:
        """The ``derive_samples`` best cells of the last scored pool (the first ones of the pool before any
        phase)."""
        candidates = [x for x, _ in self.scored] or self.pool
        return [self.tokens.decode(x) for x in candidates[:self.config.derive_samples]]

    def architecture_snapshot(self) -> dict[str, Any]:
        return {"pool_phases": self.phases, "derived_loss": None if self._derived is None else self._derived[2],
                "pool_best_loss": self.scored[0][1] if self.scored else None}
