"""Random search: the baseline every NAS paper compares against (Li & Talwalkar, UAI 2019).

Each round proposes ``trials_per_round`` genotypes drawn uniformly from the
space (every choice uniform and independent), never repeating one already
tried; the same seed gives the same proposals. It runs through the same
evaluators and executors as REINFORCE, so the two compare at equal cost.
With ``scheduler: asha`` it is ASHA's own method (Li et al., MLSys 2020:
random configurations with asynchronous successive halving), the baseline
"random search with early stopping" of Li & Talwalkar (UAI 2019).
"""
from __future__ import annotations


from tfnas.genotypes.files import AnyGenotype
from tfnas.settings import settings
from tfnas.strategies.black_box.loop import BlackBoxConfig, BlackBoxSearch


@settings
class RandomConfig(BlackBoxConfig):
    """Random-search settings (those of `BlackBoxConfig`)."""


class RandomSearch(BlackBoxSearch):
    """Uniform proposals without repeats; see the module docstring."""

    name = "random"
    observes_before_proposing = False   # its draws need no results: with ASHA, a new round whenever a worker is free

    def propose(self, n: int) -> list[AnyGenotype]:
        tried = self.tried_genotypes()
        left = self.space.size() - len(set(tried))
        return self.space.sample_unique(min(n, left), self.rng, exclude=tried)
