"""ASHA's rung bookkeeping: which child trains next, and to how many steps (no TensorFlow).

Li, Jamieson, Rostamizadeh, Gonina, Ben-Tzur, Hardt, Recht, Talwalkar, "A
System for Massively Parallel Hyperparameter Tuning" (MLSys 2020),
Algorithm 2 with minimum early-stopping rate s = 0. A child's resource is
its training steps; rung ``k`` (``k = 0..K``) trains a child to

    r_k = r_min * eta^k steps in all,   K = floor(log_eta(r_max / r_min)),

so the top rung is the largest ``r_min * eta^K <= r_max``. Rung ``k``
holds the children that finished it, with their scores (validation
perplexities, lower is better). Whenever a worker is free, `get_job` of
Algorithm 2 is:

    for k = K - 1 down to 0:
        candidates = the floor(|rung k| / eta) best children of rung k
        promotable = those of them not yet promoted from rung k
        if promotable: promote its best to rung k + 1 and train it there
    otherwise: a new child at rung 0.

`AshaScheduler.promotion` is the loop over the rungs (a promoted child is
marked at once, before it has trained, so no second worker takes it); a new
child is the caller's (the strategy proposes it). Ties of score go to the
child that reached the rung first. tfnas' additions, for children whose
training failed or diverged: such a child counts in its rung's size (it
was trained there, and is the worst) but is never promoted.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

#: A child's rung result: its name and its score (None: its training failed or diverged).
Entry = tuple[str, float | None]


def rung_steps(min_steps: int, max_steps: int, eta: int) -> list[int]:
    """``[r_min * eta^k for k = 0..K]``, ``K = floor(log_eta(r_max / r_min))``, in exact integer arithmetic.

    Raises:
        ValueError: ``min_steps < 1``, ``max_steps < min_steps`` or ``eta < 2``.
    """
    if min_steps < 1 or max_steps < min_steps or eta < 2:
        raise ValueError(f"rungs need 1 <= min_steps <= max_steps and eta >= 2; received: min_steps={min_steps}, "
                         f"max_steps={max_steps}, eta={eta}")
    steps = [min_steps]
    while steps[-1] * eta <= max_steps:
        steps.append(steps[-1] * eta)
    return steps


def _order(entry: tuple[int, Entry]) -> tuple[float, int]:
    """Best first: lower score, then earlier arrival; failed children (no score) last."""
    position, (_, score) = entry
    return (math.inf if score is None else score, position)


class AshaScheduler:
    """The rungs of one ASHA search (Algorithm 2; see the module docstring).

    Args:
        steps: the steps of each rung, ``r_0 < r_1 < ... < r_K`` (`rung_steps`).
        eta: the reduction factor: the top ``1 / eta`` of a rung are promotable.
    """

    def __init__(self, steps: Sequence[int], eta: int):
        self.steps = [int(s) for s in steps]
        self.eta = int(eta)
        #: Per rung, its finished children in the order they finished.
        self.rungs: list[list[Entry]] = [[] for _ in self.steps]
        #: Per rung, the children promoted from it (to the next rung).
        self.promoted: list[set[str]] = [set() for _ in self.steps]

    @property
    def top(self) -> int:
        """K, the index of the top rung."""
        return len(self.steps) - 1

    def report(self, child: str, rung: int, score: float | None) -> None:
        """Records that ``child`` finished rung ``rung`` with ``score`` (None: failed or diverged)."""
        if any(name == child for name, _ in self.rungs[rung]):
            raise ValueError(f"child {child!r} already finished rung {rung}")
        self.rungs[rung].append((child, None if score is None or not math.isfinite(score) else float(score)))

    def promotable(self, rung: int) -> list[str]:
        """The children of ``rung`` that may be promoted now, best first: among its ``floor(|rung| / eta)`` best,
        those with a score and not yet promoted."""
        if rung >= self.top:
            return []
        ranked = sorted(enumerate(self.rungs[rung]), key=_order)[: len(self.rungs[rung]) // self.eta]
        return [name for _, (name, score) in ranked if score is not None and name not in self.promoted[rung]]

    def promotion(self) -> tuple[str, int] | None:
        """Algorithm 2's promotion: ``(child, k + 1)`` for the best promotable child of the highest rung ``k < K``
        that has one (marked promoted), or None: the next job is a new child at rung 0."""
        for rung in range(self.top - 1, -1, -1):
            candidates = self.promotable(rung)
            if candidates:
                self.promoted[rung].add(candidates[0])
                return candidates[0], rung + 1
        return None

    def table(self) -> list[int]:
        """The number of children that finished each rung."""
        return [len(rung) for rung in self.rungs]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (the rungs in finishing order, the promoted children sorted)."""
        return {"steps": self.steps, "eta": self.eta, "rungs": [[list(e) for e in rung] for rung in self.rungs],
                "promoted": [sorted(p) for p in self.promoted]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AshaScheduler":
        """Inverse of `to_dict`."""
        scheduler = cls(data["steps"], data["eta"])
        scheduler.rungs = [[(name, score) for name, score in rung] for rung in data["rungs"]]
        scheduler.promoted = [set(p) for p in data["promoted"]]
        return scheduler
