"""NAO (Luo, Tian, Qin, Chen, Liu, NeurIPS 2018): Algorithm 1 as an ask/tell strategy.

An encoder-predictor-decoder (`tfnas.policies.nao`) learns to embed cells,
predict their scores and decode embeddings back to cells; new cells come
from moving good cells' embeddings up the predictor's gradient (Eq. 2).
Rounds of `BlackBoxSearch` are the iterations ``l = 1..L`` of Algorithm 1:

* round 0 proposes ``initial_archs`` cells drawn uniformly without repeats
  (the initial set ``X``);
* after each round but the last, the EPD is trained on every cell with a
  finite perplexity (``epd_epochs`` epochs of Eq. 1, warm-started across
  rounds, or re-initialised with ``epd_reinit``; symmetric copies with
  ``augment_symmetric``) against the score ``s = (l_max - l) / (l_max -
  l_min)``, ``l = ln ppl`` (`normalise_scores`);
* round ``l >= 1`` takes the ``seed_archs`` (K) best trials of *all* trials
  as seeds, moves each embedding with Eq. 2 at ``step_size`` and decodes it;
  a decoded cell already tried (or already decoded this round) makes the
  step grow by ``step_size / 2`` (footnote 4, up to ``max_step_tries`` sizes);
  seeds that give no new cell are replaced by unseen random cells
  (``fill_random``, as the authors' weight-sharing code).

So a search evaluates ``initial_archs + (iterations - 1) * seed_archs``
cells (``max_trials``' default), as the paper's CIFAR count ``600 + 200 +
200``. The result is the best trial. Every round logs the EPD's losses, its
pairwise accuracy and Hamming distance on the training cells, and, from
round 1 on, the pairwise accuracy of the predictor on the round's new
cells before it trains on them (held out). With ``scheduler: asha`` the
EPD learns from the rung-0 scores (every cell trained alike) and a round
starts once the round before is observed. Any evaluator and executor
works; ``--evaluator weight_sharing --shared-weights runs/enas`` is NAO
over frozen ENAS weights (the paper's NAO-WS is ``--strategy nao_ws``).
The EPD and Adam's slots are checkpointed with the trials, so a killed
search resumes to the same trials.
"""
from __future__ import annotations

import copy

import numpy as np

from tfnas.config import ModelConfig, TrainConfig
from tfnas.evaluation.evaluators import Evaluator
from tfnas.evaluation.executors import Executor
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import AnyGenotype, genotype_from_dict
from tfnas.policies.nao import (EpdConfig, NaoTokens, footnote4_steps, make_epd_trainer, normalise_scores,
                                pairwise_accuracy, random_relabel, train_epd)
from tfnas.settings import AT_LEAST_ONE, POSITIVE, SettingsError, check_settings, setting, settings
from tfnas.strategies.black_box.loop import BlackBoxConfig, BlackBoxSearch, Trial


def nao_child() -> TrainConfig:
    """The child recipe of NAO's PTB search: DARTS' evaluation recipe for 600 epochs, no embedding dropout.

    Section 4.3 trains each sampled cell 600 epochs; the rest is the
    authors' code (DARTS ``train.py`` defaults with ``dropoute 0``).
    """
    return TrainConfig(model=ModelConfig(dropoute=0.0), epochs=600)


@settings
class NaoConfig(BlackBoxConfig, EpdConfig):
    """NAO settings (Luo et al., NeurIPS 2018).

    PTB (section 4.3): the EPD of `EpdConfig`, L = 2 iterations, children
    trained 600 epochs (`nao_child`). Not given for PTB, taken from CIFAR-10
    (section 4.1): 600 initial cells, K = 200 seeds, step size 10. From the
    authors' code: the space (11 nodes after a DARTS node 0, the output the
    mean of nodes 1..11), for the reasons given once in
    ``docs/strategies/nao.md`` ("The space").
    tfnas choices: the score (min-max normalised log-perplexity),
    ``max_step_tries`` and ``fill_random``.
    """

    space: str = setting("dag", help="search space: dag (NAO searches DAG cells)")
    steps: int = setting(11, help="nodes of a dag cell after node 0 (the authors' PTB code: 11)")
    max_trials: int | None = setting(None, help="genotypes evaluated in all; null: initial_archs + (iterations - 1) "
                                                "* seed_archs (Algorithm 1)", resumable=True)
    trials_per_round: int | None = setting(None, help="largest round; null: initial_archs (a round of the loop is "
                                                      "an iteration of Algorithm 1)")
    child: TrainConfig = setting(help="the training of each child (evaluator short_training)", factory=nao_child)
    initial_archs: int = setting(600, help="random cells of the initial set X (section 4.1, CIFAR-10: 600)",
                                 check=AT_LEAST_ONE)
    seed_archs: int = setting(200, help="seeds K: best cells moved by Eq. 2 per iteration (section 4.1: 200)",
                              check=AT_LEAST_ONE)
    iterations: int = setting(2, help="iterations L of Algorithm 1 (section 4.3, PTB: 2)", check=AT_LEAST_ONE)
    step_size: float = setting(10.0, help="eta of Eq. 2 (section 4.1: 10)", check=POSITIVE)
    max_step_tries: int = setting(10, help="step sizes eta, 1.5 eta, 2 eta, ... tried per seed before giving up "
                                           "(footnote 4; the bound is tfnas')", check=AT_LEAST_ONE)
    fill_random: bool = setting(True, help="replace seeds that decode no new cell by unseen random cells")
    augment_symmetric: bool = setting(False, help="train the EPD also on a random topology-preserving relabelling "
                                                  "of each cell (section 3.2's symmetric pairs)")

    def __post_init__(self) -> None:
        check_settings(self)
        if self.space != "dag":
            raise SettingsError(f"NAO encodes DAG cells; space must be 'dag', received: {self.space!r}")
        self.check_epd()
        resolved = self.resolved()
        if resolved.trials_per_round < max(self.initial_archs, self.seed_archs):
            raise SettingsError(f"trials_per_round must be at least initial_archs and seed_archs (one round is one "
                                f"iteration); received: {self.trials_per_round!r}")
        BlackBoxConfig.__post_init__(resolved)

    def resolved(self) -> "NaoConfig":
        """This config with ``max_trials`` and ``trials_per_round`` filled in when null (no validation)."""
        out = copy.copy(self)
        if out.max_trials is None:
            out.max_trials = self.initial_archs + (self.iterations - 1) * self.seed_archs
        if out.trials_per_round is None:
            out.trials_per_round = self.initial_archs
        return out


class NaoSearch(BlackBoxSearch):
    """Algorithm 1 of NAO; see the module docstring."""

    name = "nao"

    def __init__(self, config: NaoConfig, evaluator: Evaluator | None = None, executor: Executor | None = None):
        super().__init__(config.resolved(), evaluator, executor)

    def build(self) -> None:
        c = self.config
        self.tokens = NaoTokens(self.space)
        self.trainer = make_epd_trainer(c, self.tokens, c.seed)
        self.proposal_logs: dict[str, float] = {}

    def state_variables(self) -> list:
        return self.trainer.variables

    # ------------------------------------------------------------- propose
    def seeds(self, k: int) -> list[Trial]:
        """The ``k`` best trials of all trials (with ASHA: rung 0's) by validation perplexity (ties: the earlier
        trial)."""
        ok = [t for t in self.scored_trials() if t.ppl is not None]
        return sorted(ok, key=lambda t: (t.ppl, t.trial))[:k]

    def propose(self, n: int) -> list[AnyGenotype]:
        c = self.config
        tried = self.tried_genotypes()
        left = self.space.size() - len(set(tried))
        if self.round == 0:
            return self.space.sample_unique(min(n, c.initial_archs, left), self.rng, exclude=tried)
        count = min(n, c.seed_archs, left)
        seen = {tuple(self.tokens.encode(g)) for g in tried}
        seeds = self.seeds(count)
        new: list[Genotype] = []
        etas: list[float] = []
        if seeds:
            seed_ids = self.tokens.encode_many([genotype_from_dict(t.genotype) for t in seeds])
            accepted, etas = self.trainer.generate(seed_ids, footnote4_steps(c.step_size, c.max_step_tries),
                                                   is_new=lambda key: key not in seen)
            new = [self.tokens.decode(key) for _, key in accepted]
        decoded = len(new)
        if c.fill_random and len(new) < count:
            new += self.space.sample_unique(count - len(new), self.rng, exclude=tried + new)
        self.proposal_logs = {"decoded": decoded, "random_fill": len(new) - decoded,
                              "largest_step": max(etas) if etas else 0.0}
        return new

    # ------------------------------------------------------------- observe
    def training_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Token strings and scores of every trial (with ASHA: rung 0's) with a finite perplexity (and symmetric
        copies)."""
        ok = [t for t in self.scored_trials() if t.ppl is not None]
        cells = [genotype_from_dict(t.genotype) for t in ok]
        scores = normalise_scores([t.ppl for t in ok])
        ids = self.tokens.encode_many(cells)
        if not self.config.augment_symmetric:
            return ids, scores
        rng = np.random.default_rng([self.config.seed, self.round, 1])
        relabelled = [(random_relabel(g, rng), s) for g, s in zip(cells, scores)]
        copies = [(other, s) for g, (other, s) in zip(cells, relabelled) if other != g]
        if not copies:
            return ids, scores
        return (np.concatenate([ids, self.tokens.encode_many([g for g, _ in copies])]),
                np.concatenate([scores, [s for _, s in copies]]))

    def observe(self, trials: list[Trial]) -> dict[str, float]:
        c = self.config
        logs: dict[str, float] = dict(self.proposal_logs)
        self.proposal_logs = {}
        new = [t for t in trials if t.ppl is not None]
        if self.round > 0 and len(new) >= 2:
            predicted = self.trainer.predict(self.tokens.encode_many([genotype_from_dict(t.genotype) for t in new]))
            logs["heldout_pairwise_acc"] = pairwise_accuracy([-np.log(t.ppl) for t in new], predicted)
            logs["predicted_score"] = float(np.mean(predicted))
        if len(self.scored_trials()) >= c.max_trials:
            return logs                                   # the last evaluation: Algorithm 1 stops here
        ids, scores = self.training_set()
        if len(ids) == 0:
            return logs
        logs.update(train_epd(self.trainer, c, ids, scores, c.seed, self.round))
        return logs
