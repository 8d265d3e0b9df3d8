"""DARTS-ES: stop a DARTS search when the architecture Hessian's dominant eigenvalue grows (Zela et al., ICLR 2020).

R-DARTS (section 4) finds that DARTS' found cells degrade when the dominant
eigenvalue ``lambda`` of the validation loss' Hessian with respect to the
architecture parameters grows during the search, and proposes DARTS-ES:
with ``lambda(i)`` the eigenvalue at measurement ``i``, stop when

    lambda(i - k) / lambda(i) < ratio            (R-DARTS: ratio 0.75, k 5 epochs)

that is, when ``lambda`` grew by more than ``1 / ratio`` over ``k``
measurements, and return the architecture of measurement ``i - k``. With
``lambda(i) > 0`` the test is ``lambda(i - k) < ratio * lambda(i)``, which
tfnas uses (a measurement with ``lambda(i) <= 0`` never stops the search:
no sharp minimum there). R-DARTS counts ``k`` in epochs; a CPU-scale search
is a single epoch, so tfnas counts it in measurements (one every
``eigenvalue_interval`` steps; docs/DEVIATIONS.md).

`EigenvalueEarlyStop` is the rule alone, on plain numbers (no TensorFlow):
it keeps the last ``k + 1`` measurements with the architectures taken at
them, and every eigenvalue measured, in a JSON state that a checkpoint
holds, so that a resumed search stops where the uninterrupted one would.
"""
from __future__ import annotations

from typing import Any, Mapping

from tfnas.settings import Bound, check_argument

#: R-DARTS' threshold on lambda(i - k) / lambda(i) (section 4).
DARTS_ES_RATIO = 0.75
#: R-DARTS' window k (5 epochs there; measurements here).
DARTS_ES_WINDOW = 5


class EigenvalueEarlyStop:
    """The DARTS-ES rule over a sequence of eigenvalue measurements; see the module docstring.

    Args:
        window: ``k``, the measurements between the two eigenvalues compared (at least 1).
        ratio: the threshold on ``lambda(i - k) / lambda(i)``, in (0, 1].
        state: a `state` of before (a checkpoint's), to go on from.

    Example:

    >>> rule = EigenvalueEarlyStop(window=2, ratio=0.75)
    >>> [rule.observe(step, lam, f"arch@{step}") for step, lam in [(10, 1.0), (20, 1.2), (30, 1.4)]]
    [False, False, True]
    >>> rule.returned["step"], rule.returned["architecture"]
    (10, 'arch@10')
    """

    def __init__(self, window: int = DARTS_ES_WINDOW, ratio: float = DARTS_ES_RATIO,
                 state: Mapping[str, Any] | None = None):
        self.window = check_argument("window", window, int, Bound(1))
        self.ratio = check_argument("ratio", ratio, float, Bound(0, 1, open_low=True))
        state = state or {}
        #: Every measurement as ``[step, eigenvalue]``.
        self.eigenvalues: list[list[float]] = [list(m) for m in state.get("eigenvalues", [])]
        #: The last ``window + 1`` measurements: ``{"step", "eigenvalue", "architecture"}``.
        self.recent: list[dict[str, Any]] = [dict(m) for m in state.get("recent", [])]
        #: After a stop: ``{"step", "eigenvalue", "stopped_step", "stopped_eigenvalue"}`` and the returned
        #: ``"architecture"`` (that of ``window`` measurements before the stop); None before.
        self.returned: dict[str, Any] | None = dict(state["returned"]) if state.get("returned") else None

    @property
    def stopped(self) -> bool:
        """Whether the rule has stopped the search."""
        return self.returned is not None

    def observe(self, step: int, eigenvalue: float, architecture: Any) -> bool:
        """Records the measurement ``eigenvalue`` at ``step`` with the ``architecture`` of that moment (any
        JSON value); True when the search should stop now, `returned` then holding the architecture to return."""
        if self.stopped:
            raise ValueError("EigenvalueEarlyStop has already stopped the search: it takes no more measurements")
        eigenvalue = float(eigenvalue)
        self.eigenvalues.append([int(step), eigenvalue])
        self.recent = [*self.recent, {"step": int(step), "eigenvalue": eigenvalue, "architecture": architecture}]
        self.recent = self.recent[-(self.window + 1):]
        if len(self.recent) <= self.window:
            return False
        earlier = self.recent[0]
        if not (eigenvalue > 0 and earlier["eigenvalue"] < self.ratio * eigenvalue):
            return False
        self.returned = {**earlier, "stopped_step": int(step), "stopped_eigenvalue": eigenvalue}
        return True

    def state(self) -> dict[str, Any]:
        """The JSON state that the constructor's ``state`` takes back."""
        return {"eigenvalues": [list(m) for m in self.eigenvalues], "recent": [dict(m) for m in self.recent],
                "returned": None if self.returned is None else dict(self.returned)}
