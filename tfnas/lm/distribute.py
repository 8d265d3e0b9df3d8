"""Synchronous data parallelism for `tfnas.lm.trainer.Trainer` on `tf.distribute`.

``distribute`` names the strategy: ``none`` (TensorFlow's default
strategy, one device), ``mirrored`` (`tf.distribute.MirroredStrategy` over
the GPUs of this machine, or over its logical CPU devices when it has no
GPU) or ``multi_worker`` (`tf.distribute.MultiWorkerMirroredStrategy`,
several machines described by the ``TF_CONFIG`` environment variable as
TensorFlow documents it).

The global batch of B rows is split into R contiguous blocks of B / R rows,
block r on replica r (its global replica id), so every replica carries the
recurrent state of its own rows from one BPTT segment to the next. Each
replica's loss is its mean over its rows divided by R and the per-replica
gradients are summed, which gives the gradient of the mean over the global
batch (the blocks are equal). The trainer clips the global norm of that sum
and applies the update once, in cross-replica context, to the mirrored
variables.
"""
from __future__ import annotations

import json
import os
from typing import Callable, Sequence

import tensorflow as tf

from tfnas.errors import TfnasError

#: The values of the ``distribute`` setting.
DISTRIBUTE_CHOICES = ("none", "mirrored", "multi_worker")


class DistributeError(TfnasError, ValueError):
    """Settings this machine or cluster cannot distribute: ``multi_worker`` without ``TF_CONFIG``, or a batch
    that the replicas cannot share equally."""

_STRATEGIES: dict[str, tf.distribute.Strategy] = {}


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy called ``name`` (one per process: TensorFlow allows one multi-worker strategy)."""
    if name not in DISTRIBUTE_CHOICES:
        raise ValueError(f"distribute={name!r} is not one of {', '.join(DISTRIBUTE_CHOICES)}")
    if name == "none":
        return tf.distribute.get_strategy()
    if name not in _STRATEGIES:
        _STRATEGIES[name] = _mirrored() if name == "mirrored" else _multi_worker()
    return _STRATEGIES[name]


def _mirrored() -> tf.distribute.Strategy:
    devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def _multi_worker() -> tf.distribute.Strategy:
    if not os.environ.get("TF_CONFIG"):
        raise DistributeError("distribute=multi_worker needs the TF_CONFIG environment variable (the cluster and this "
                              "worker's task, https://www.tensorflow.org/guide/distributed_training#TF_CONFIG)")
    try:
        json.loads(os.environ["TF_CONFIG"])
    except (ValueError, RecursionError) as err:
        raise DistributeError(f"the TF_CONFIG environment variable is not valid JSON: {err}") from None
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as err:  # "Collective ops must be configured at program startup"
        raise ValueError("distribute=multi_worker: the strategy must be made before TensorFlow runs an op "
                         f"(call tfnas.lm.distribute.make_strategy first): {err}") from err


def worker_index() -> int:
    """This process's task index in ``TF_CONFIG`` (0, the chief, without one)."""
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    return int(task.get("index", 0)) if task.get("type", "worker") in ("worker", "chief") else 0


def check_batch(strategy: tf.distribute.Strategy, batch_size: int) -> None:
    """Refuses a global batch that the replicas cannot share equally."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise DistributeError(f"batch_size={batch_size} is not a multiple of the {replicas} replicas of the "
                              "distribution strategy")


def replica_rows(tensor: tf.Tensor) -> tf.Tensor:
    """The block of rows of the global batch ``tensor`` that belongs to the current replica."""
    context = tf.distribute.get_replica_context()
    rows = tf.shape(tensor)[0] // context.num_replicas_in_sync
    start = tf.cast(context.replica_id_in_sync_group, tf.int32) * rows
    return tensor[start:start + rows]


#: A replica's step: ``(inputs, targets, states) -> (its share of the loss, its gradients, its new states)``.
ReplicaStep = Callable[[tf.Tensor, tf.Tensor, Sequence[tf.Tensor]],
                       tuple[tf.Tensor, list[tf.Tensor], list[tf.Tensor]]]


def run_replicas(strategy: tf.distribute.Strategy, replica_step: ReplicaStep, inputs: tf.Tensor,
                 targets: tf.Tensor, states: Sequence[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor], list[tf.Tensor]]:
    """Runs ``replica_step`` on every replica; returns the summed loss and gradients and the gathered states.

    The states come back as global ``[batch, units]`` tensors in replica
    order, so they (and the checkpoints holding them) do not depend on the
    number of replicas.
    """
    loss, grads, new_states = strategy.run(replica_step, (inputs, targets, list(states)))
    total = tf.distribute.ReduceOp.SUM
    loss = strategy.reduce(total, loss, axis=None)
    grads = [strategy.reduce(total, g, axis=None) for g in grads]
    return loss, grads, [strategy.gather(s, axis=0) for s in new_states]
