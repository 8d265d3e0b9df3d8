"""Zoph & Le (ICLR 2017): an LSTM controller trained by REINFORCE proposes the cells.

Each round the controller (`tfnas.policies.controller.Controller`, 2 x 35
LSTM units, weights from U(-0.08, 0.08), section 4.1) samples ``m =
trials_per_round`` genotypes of the space (the base-8 tree of the paper,
section 3.5, or the DAG space), the evaluator trains or scores each child,
and one Adam step on the REINFORCE estimate with an exponential-moving-
average baseline (section 3.3) moves the policy towards the rewards
``c / ppl^2``, c = 80 (section 4.2). The loop, retries, checkpoints and
exact resume are `BlackBoxSearch`'s; sampling uses the seed ``(seed,
round)`` so a resumed search samples what the uninterrupted one would have.

`ReinforceConfig`'s defaults are the PTB search of section 4.2: Adam lr
5e-4 ("slightly smaller than" CIFAR-10's 6e-4), one update per 10 children,
no entropy bonus (the paper has none; ``entropy_weight`` adds ENAS' term).
``configs/search/reinforce_ptb.yaml`` adds the paper's budget of 15,000
architectures and its children: two layers of about 20M parameters (the
"medium" baseline) trained for 35 epochs. Not given by the paper (tfnas
choices): the baseline's decay 0.95, the first update's baseline (the mean
reward of its own batch) and the child's training recipe.
"""
from __future__ import annotations

from tfnas.genotypes.files import AnyGenotype
from tfnas.policies.controller import Controller, ControllerConfig
from tfnas.policies.reinforce import Reinforce
from tfnas.settings import settings
from tfnas.strategies.black_box.loop import BlackBoxConfig, BlackBoxSearch, Trial


@settings
class ReinforceConfig(BlackBoxConfig, ControllerConfig):
    """REINFORCE settings: the controller of Zoph & Le (`ControllerConfig`) with the PTB values of section 4.2.

    Redeclared from `ControllerConfig` (whose defaults ENAS shares): Adam lr
    5e-4 (section 4.2: "the learning rate for the controller RNN is 0.0005")
    and no entropy bonus (the paper has none). ``m = 10`` children per
    update (section 4.2: "parameter updates ... once 10 gradients from
    replicas have been accumulated"). The paper's PTB budget, 15,000
    architectures (``max_trials``), is in ``configs/search/reinforce_ptb.yaml``.
    """

    controller_lr: float = 5e-4
    entropy_weight: float = 0.0
    trials_per_round: int = 10


class ReinforceSearch(BlackBoxSearch):
    """Policy-gradient search with an LSTM controller; see the module docstring."""

    name = "reinforce"

    def build(self) -> None:
        c = self.config
        self.controller = Controller(self.space.token_choices(), units=c.controller_units,
                                     layers=c.controller_layers, init_range=c.controller_init_range,
                                     temperature=c.temperature, tanh_constant=c.tanh_constant, seed=c.seed)
        self.reinforce = Reinforce(self.controller, lr=c.controller_lr, baseline_decay=c.baseline_decay,
                                   entropy_weight=c.entropy_weight)
        self.last_logs: dict[str, float] = {}

    def state_variables(self) -> list:
        return self.reinforce.variables

    def propose(self, n: int) -> list[AnyGenotype]:
        choices, _, _ = self.reinforce.sample(n, [self.config.seed, self.round])
        return [self.space.decode(row) for row in choices]

    def observe(self, trials: list[Trial]) -> dict[str, float]:
        logs = self.reinforce.update([t.choices for t in trials], [t.reward for t in trials])
        return {"baseline": logs["baseline"], "entropy": logs["entropy"], "controller_loss": logs["loss"],
                "advantage": logs["advantage"], "grad_norm": logs["grad_norm"]}
