"""Executors: where an evaluator runs (in-process, or on a Ray cluster of one or many machines).

``executor.map(evaluator, genotypes)`` returns one entry per genotype, in
order: its score, or the exception its evaluation raised (the black-box
loop retries those). `LocalExecutor` evaluates in this process;
`RayExecutor` sends one task per genotype to Ray (``pip install tfnas[ray]``)
so children train in parallel on every CPU (or GPU) of the cluster.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

from tfnas.errors import MissingDependencyError
from tfnas.evaluation.evaluators import Evaluator
from tfnas.genotypes.files import AnyGenotype

#: ``--executor`` names.
EXECUTORS = ("local", "ray")

Outcome = float | BaseException


class Executor(Protocol):
    """Runs ``evaluator.evaluate`` for each genotype somewhere; see the module docstring."""

    def map(self, evaluator: Evaluator, genotypes: Sequence[AnyGenotype]) -> list[Outcome]:
        ...

    def close(self) -> None:
        ...


class LocalExecutor:
    """Evaluates in this process: all genotypes in one call, one by one if that call fails."""

    name = "local"

    def map(self, evaluator: Evaluator, genotypes: Sequence[AnyGenotype]) -> list[Outcome]:
        genotypes = list(genotypes)
        try:
            return [float(s) for s in evaluator.evaluate(genotypes)]
        except Exception as err:  # noqa: BLE001 - isolate the genotype that failed
            if len(genotypes) == 1:
                return [err]
        out: list[Outcome] = []
        for g in genotypes:
            try:
                out.append(float(evaluator.evaluate([g])[0]))
            except Exception as err:  # noqa: BLE001 - reported to the caller, which retries
                out.append(err)
        return out

    def close(self) -> None:
        pass


def _evaluate_one(evaluator: Evaluator, genotype: AnyGenotype) -> float:
    return float(evaluator.evaluate([genotype])[0])


def import_ray():
    """``ray``, or a `MissingDependencyError` (an ImportError the CLI prints on one line) that says how to
    install it."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("the Ray executor needs the 'ray' package: pip install tfnas[ray]") from None
    return ray


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

    The evaluator is put into Ray's object store once per `map`; each task
    evaluates one genotype. Ray is imported when the executor is created.
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

    def map(self, evaluator: Evaluator, genotypes: Sequence[AnyGenotype]) -> list[Outcome]:
        ray = self.ray
        self._ensure_started()
        remote = ray.remote(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, max_retries=0)(_evaluate_one)
        shared = ray.put(evaluator)
        refs = [remote.remote(shared, g) for g in genotypes]
        out: list[Outcome] = []
        for ref in refs:
            try:
                out.append(float(ray.get(ref)))
            except Exception as err:  # noqa: BLE001 - RayTaskError and friends; the caller retries
                out.append(err)
        return out

    def close(self) -> None:
        """Shuts down the Ray instance this executor started (a joined cluster keeps running)."""
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
