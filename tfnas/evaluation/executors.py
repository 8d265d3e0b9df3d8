"""Executors: where an evaluator runs (in-process, or on a Ray cluster of one or many machines).

``executor.map(evaluator, genotypes)`` returns one entry per genotype, in
order: its score, or the exception its evaluation raised (the black-box
loop retries those). `LocalExecutor` evaluates in this process;
`RayExecutor` sends one task per genotype to Ray (``pip install tfnas[ray]``)
so children train in parallel on every CPU (or GPU) of the cluster.

ASHA's asynchronous loop uses the other pair: ``submit(evaluator,
genotype)`` starts one evaluation and returns its ticket, and
``next_done()`` waits for whichever submitted evaluation finishes first and
returns ``(ticket, outcome)``. The local executor evaluates at `submit` and
hands the outcomes back in submission order; Ray runs them as tasks and
returns the first that finishes (``ray.wait``). ``close()`` abandons what
is still running (Ray cancels its tasks).
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

from tfnas.errors import import_optional
from tfnas.evaluation.evaluators import Evaluator
from tfnas.genotypes.files import AnyGenotype

#: ``--executor`` names.
EXECUTORS = ("local", "ray")

Outcome = float | BaseException


class Executor(Protocol):
    """Runs ``evaluator.evaluate`` for each genotype somewhere; see the module docstring."""

    def map(self, evaluator: Evaluator, genotypes: Sequence[AnyGenotype]) -> list[Outcome]:
        ...

    def submit(self, evaluator: Evaluator, genotype: AnyGenotype) -> int:
        ...

    def next_done(self) -> tuple[int, Outcome]:
        ...

    def close(self) -> None:
        ...


def _outcome(evaluator: Evaluator, genotype: AnyGenotype) -> Outcome:
    """The score of one genotype, or the exception its evaluation raised."""
    try:
        return float(evaluator.evaluate([genotype])[0])
    except Exception as err:  # noqa: BLE001 - reported to the caller, which retries
        return err


class LocalExecutor:
    """Evaluates in this process: all genotypes in one call, one by one if that call fails; a submitted one at
    once (`next_done` returns the outcomes in submission order)."""

    name = "local"

    def __init__(self) -> None:
        self._tickets = 0
        self._done: dict[int, Outcome] = {}

    def map(self, evaluator: Evaluator, genotypes: Sequence[AnyGenotype]) -> list[Outcome]:
        genotypes = list(genotypes)
        try:
            return [float(s) for s in evaluator.evaluate(genotypes)]
        except Exception as err:  # noqa: BLE001 - isolate the genotype that failed
            if len(genotypes) == 1:
                return [err]
        return [_outcome(evaluator, g) for g in genotypes]

    def submit(self, evaluator: Evaluator, genotype: AnyGenotype) -> int:
        """Evaluates ``genotype`` now; returns the ticket `next_done` hands back with its outcome."""
        self._tickets += 1
        self._done[self._tickets] = _outcome(evaluator, genotype)
        return self._tickets

    def next_done(self) -> tuple[int, Outcome]:
        """The oldest submission not yet returned, with its outcome."""
        if not self._done:
            raise ValueError("next_done() needs a pending evaluation: none was submitted")
        ticket = next(iter(self._done))
        return ticket, self._done.pop(ticket)

    def close(self) -> None:
        self._done.clear()


def _evaluate_one(evaluator: Evaluator, genotype: AnyGenotype) -> float:
    return float(evaluator.evaluate([genotype])[0])


def import_ray():
    """``ray``, or a `MissingDependencyError` (an ImportError the CLI prints on one line) that says how to
    install it."""
    return import_optional("ray", "ray", "the Ray executor")


class RayExecutor:
    """Evaluates genotypes as parallel Ray tasks, on one machine or a cluster.

    Args:
        address: ``"local"`` starts a Ray instance in this process' machine;
            ``"auto"`` joins the cluster started with ``ray start``;
            ``"HOST:PORT"`` (or ``ray://HOST:PORT``) joins a remote cluster.
        num_cpus: CPUs of a ``"local"`` instance (None: all).
        cpus_per_trial: CPUs reserved by each evaluation task.
        gpus_per_trial: GPUs reserved by each evaluation task.
        init_kwargs: more arguments of ``ray.init``.

    The evaluator is put into Ray's object store once per `map` (once per
    `submit`); each task evaluates one genotype. Ray is imported when the
    executor is created.
    """

    name = "ray"

    def __init__(self, address: str = "local", num_cpus: int | None = None, cpus_per_trial: float = 1,
                 gpus_per_trial: float = 0, init_kwargs: dict[str, Any] | None = None):
        self.ray = import_ray()
        if not isinstance(address, str) or not address:
            raise ValueError(f"Argument `address` must be 'local', 'auto' or HOST:PORT; received: {address!r}")
        self.address = address
        self.num_cpus = num_cpus
        self.cpus_per_trial = cpus_per_trial
        self.gpus_per_trial = gpus_per_trial
        self.init_kwargs = dict(init_kwargs or {})
        self._started = False
        self._remote = None
        self._tickets = 0
        self._running: dict[Any, int] = {}

    def _ensure_started(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        kwargs = {"include_dashboard": False, "ignore_reinit_error": True, "log_to_driver": False,
                  **self.init_kwargs}
        if self.address == "local":
            ray.init(num_cpus=self.num_cpus, **kwargs)
        else:
            ray.init(address=self.address, **kwargs)
        self._started = True

    def _task(self):
        """The Ray task that evaluates one genotype (Ray started first)."""
        self._ensure_started()
        if self._remote is None:
            self._remote = self.ray.remote(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
                                           max_retries=0)(_evaluate_one)
        return self._remote

    def _result(self, ref: Any) -> Outcome:
        try:
            return float(self.ray.get(ref))
        except Exception as err:  # noqa: BLE001 - RayTaskError and friends; the caller retries
            return err

    def map(self, evaluator: Evaluator, genotypes: Sequence[AnyGenotype]) -> list[Outcome]:
        remote = self._task()
        shared = self.ray.put(evaluator)
        return [self._result(ref) for ref in [remote.remote(shared, g) for g in genotypes]]

    def submit(self, evaluator: Evaluator, genotype: AnyGenotype) -> int:
        """Starts a task that evaluates ``genotype``; returns the ticket `next_done` hands back with its outcome."""
        self._tickets += 1
        self._running[self._task().remote(evaluator, genotype)] = self._tickets
        return self._tickets

    def next_done(self) -> tuple[int, Outcome]:
        """The first submitted task to finish (``ray.wait``), with its outcome."""
        if not self._running:
            raise ValueError("next_done() needs a pending evaluation: none was submitted")
        (ref,), _ = self.ray.wait(list(self._running), num_returns=1)
        return self._running.pop(ref), self._result(ref)

    def close(self) -> None:
        """Cancels the submitted tasks still running and shuts down the Ray instance this executor started (a
        joined cluster keeps running)."""
        if self._running and self.ray.is_initialized():
            for ref in self._running:
                self.ray.cancel(ref, force=True)
        self._running.clear()
        self._remote = None
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False


def make_executor(name: str = "local", ray_address: str = "local", **ray_kwargs) -> LocalExecutor | RayExecutor:
    """The executor called ``name`` (``local`` or ``ray``)."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(ray_address, **ray_kwargs)
    raise ValueError(f"unknown executor {name!r}; known executors: {list(EXECUTORS)}")
