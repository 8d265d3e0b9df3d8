"""Batching id streams and iterating over them with (variable-length) BPTT.

Layout is ``[batch, time]``: row ``b`` of :func:`batchify` is the ``b``-th
contiguous chunk of the token stream (AWD-LSTM uses the transpose,
``[time, batch]``).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tfnas.data.errors import CorpusError

if TYPE_CHECKING:
    from tfnas.data.corpus import Corpus

__all__ = ["batchify", "batchify_split", "Segment", "BPTTIterator", "epoch_iterator"]

_STATE_FORMAT = "tfnas.data.BPTTIterator/1"
#: Multiplier of the run seed in the seed of an epoch's length stream (a prime, so runs and epochs do not collide).
_EPOCH_SEED_STRIDE = 100_003


def batchify(ids: np.ndarray, batch_size: int, source: str | None = None) -> np.ndarray:
    """Cut a 1-D id stream into ``batch_size`` contiguous rows.

    The tail that does not fill a whole column is dropped, so the result has
    shape ``[batch_size, len(ids) // batch_size]`` and
    ``result.reshape(-1) == ids[: result.size]``.

    Args:
        ids: 1-D integer array (or sequence) of token ids.
        batch_size: number of rows, at least 1.
        source: what ``ids`` are, for the error of too few tokens (e.g.
            ``"the valid split (data/valid.txt)"``).

    Returns:
        A new C-contiguous array with the dtype of ``ids``.

    Raises:
        ValueError: ``ids`` is not 1-D, or ``batch_size`` is not a positive
            integer.
        CorpusError: there are fewer tokens than ``batch_size``.
    """
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be a positive integer, got batch_size={batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got batch_size={batch_size}")
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D array, got shape {ids.shape}")
    steps = ids.shape[0] // batch_size
    if steps == 0:
        raise CorpusError(f"{source or 'the data'} holds {ids.shape[0]} tokens, fewer than batch_size={batch_size}: "
                          "add text or lower the batch size")
    return np.array(ids[: steps * batch_size].reshape(batch_size, steps), copy=True, order="C")


def batchify_split(corpus: Corpus, split: str, batch_size: int) -> np.ndarray:
    """:func:`batchify` of the ``split`` (``train``, ``valid`` or ``test``) of ``corpus``; too few tokens is
    refused on one line naming the split and, for a corpus read from files, its file."""
    files = corpus.files
    source = f"the {split} split" + (f" ({getattr(files, split)})" if files is not None else "")
    return batchify(corpus.split(split), batch_size, source=source)


class Segment(NamedTuple):
    """One BPTT segment.

    Attributes:
        inputs: ``data[:, i : i + seq_len]`` (a view of the batched data).
        targets: ``data[:, i + 1 : i + 1 + seq_len]``.
        seq_len: number of time steps of this segment.
        lr_scale: ``seq_len / bptt``, the factor AWD-LSTM/DARTS scale the
            learning rate by for this segment.
    """

    inputs: np.ndarray
    targets: np.ndarray
    seq_len: int
    lr_scale: float


class BPTTIterator:
    """Iterates over ``[batch, time]`` data in (variable-length) BPTT segments.

    With ``variable=True`` (training, as in AWD-LSTM and DARTS ``train.py``)
    the length of each segment is drawn as::

        bptt_eff = bptt if rng.random() < 0.95 else bptt / 2
        seq_len = max(5, int(rng.normal(bptt_eff, 5)))
        seq_len = min(seq_len, bptt + max_seq_len_delta)

    and with ``seq_len_std=0`` (DARTS ``train_search.py``, whose normal
    jitter is commented out) as ``seq_len = max(1, int(bptt_eff))``: exactly
    ``bptt`` or ``int(bptt / 2)``, no normal draw and no clamping;
    ``full_bptt_prob=1`` too gives a fixed length (ENAS).

    With ``variable=False`` (evaluation) every segment has ``bptt`` steps and no
    random numbers are drawn. In both modes the last segment is shortened so
    that the targets stop at the end of the data, and iteration goes on while
    at least one target is left: the concatenated targets of an epoch are
    exactly ``data[:, 1:]``. (AWD-LSTM's training loop stops one token
    earlier, when a single target would be left.)

    One pass over the data is one epoch; :meth:`start_epoch` rewinds to the
    beginning while the random stream goes on, like the global NumPy state
    does in the reference code. :meth:`state` / :meth:`set_state` /
    :meth:`from_state` save and restore the position and the random state
    exactly, so a resumed run yields the very same segments.

    Args:
        data: ``[batch, time]`` array, e.g. from :func:`batchify`.
        bptt: nominal segment length (>= 1).
        seed: seed of the ``numpy.random.Generator`` (PCG64) drawing lengths.
        variable: draw variable lengths (training) or use ``bptt`` (evaluation).
        max_seq_len_delta: a drawn length is capped at ``bptt + max_seq_len_delta``.
        min_seq_len: a drawn length is at least this (5 in the reference code).
        seq_len_std: standard deviation of the drawn length (5); 0 for no
            jitter (see above).
        full_bptt_prob: probability of drawing around ``bptt`` rather than
            ``bptt / 2`` (0.95).
    """

    def __init__(
        self,
        data: np.ndarray,
        bptt: int,
        *,
        seed: int | None = 0,
        variable: bool = True,
        max_seq_len_delta: int = 20,
        min_seq_len: int = 5,
        seq_len_std: float = 5.0,
        full_bptt_prob: float = 0.95,
    ) -> None:
        data = np.asarray(data)
        if data.ndim != 2:
            raise ValueError(f"data must be a [batch, time] array, got shape {data.shape}")
        if data.shape[1] < 2:  # a split of fewer than 2 x batch_size tokens: the user's data, not a bug
            raise CorpusError(
                f"data must have at least 2 time steps (inputs and targets), got shape {data.shape}"
            )
        for arg, value in (("bptt", bptt), ("min_seq_len", min_seq_len)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {arg}={value!r}")
        if (
            isinstance(max_seq_len_delta, bool)
            or not isinstance(max_seq_len_delta, (int, np.integer))
            or max_seq_len_delta < 0
        ):
            raise ValueError(
                f"max_seq_len_delta must be a non-negative integer, got "
                f"max_seq_len_delta={max_seq_len_delta!r}"
            )
        if not seq_len_std >= 0:
            raise ValueError(f"seq_len_std must be >= 0, got seq_len_std={seq_len_std!r}")
        if not 0.0 <= full_bptt_prob <= 1.0:
            raise ValueError(
                f"full_bptt_prob must be in [0, 1], got full_bptt_prob={full_bptt_prob!r}"
            )
        self.data = data
        self.bptt = int(bptt)
        self.variable = bool(variable)
        self.max_seq_len_delta = int(max_seq_len_delta)
        self.min_seq_len = int(min_seq_len)
        self.seq_len_std = float(seq_len_std)
        self.full_bptt_prob = float(full_bptt_prob)
        self.seed = seed
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.position = 0
        self.epoch = 0
        self.steps = 0  # segments yielded since construction (all epochs)

    # ------------------------------------------------------------ iteration
    @property
    def num_steps_total(self) -> int:
        """Number of time steps of the data (``data.shape[1]``)."""
        return int(self.data.shape[1])

    @property
    def remaining_targets(self) -> int:
        """Time steps of targets left in this epoch."""
        return max(0, self.num_steps_total - 1 - self.position)

    def draw_seq_len(self) -> int:
        """Draw the next nominal segment length (before truncation at the end of the data).

        Consumes random numbers only when ``variable`` is true.
        """
        if not self.variable:
            return self.bptt
        bptt_eff = self.bptt if self.rng.random() < self.full_bptt_prob else self.bptt / 2.0
        if self.seq_len_std == 0:
            return max(1, int(bptt_eff))
        seq_len = max(self.min_seq_len, int(self.rng.normal(bptt_eff, self.seq_len_std)))
        return min(seq_len, self.bptt + self.max_seq_len_delta)

    def __iter__(self) -> "BPTTIterator":
        return self

    def __next__(self) -> Segment:
        if self.remaining_targets <= 0:
            raise StopIteration
        i = self.position
        seq_len = min(self.draw_seq_len(), self.remaining_targets)
        inputs = self.data[:, i : i + seq_len]
        targets = self.data[:, i + 1 : i + 1 + seq_len]
        self.position = i + seq_len
        self.steps += 1
        return Segment(inputs, targets, seq_len, seq_len / self.bptt)

    def start_epoch(self) -> None:
        """Rewind to the start of the data for a new epoch (the random stream continues)."""
        self.position = 0
        self.epoch += 1

    # ---------------------------------------------------------------- state
    def _config(self) -> dict[str, Any]:
        return {
            "bptt": self.bptt,
            "variable": self.variable,
            "max_seq_len_delta": self.max_seq_len_delta,
            "min_seq_len": self.min_seq_len,
            "seq_len_std": self.seq_len_std,
            "full_bptt_prob": self.full_bptt_prob,
        }

    def state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot: position, epoch, settings and RNG state."""
        return {
            "format": _STATE_FORMAT,
            "position": int(self.position),
            "epoch": int(self.epoch),
            "steps": int(self.steps),
            "data_shape": [int(n) for n in self.data.shape],
            "seed": None if self.seed is None else int(self.seed),
            **self._config(),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot from :meth:`state` (e.g. after a JSON round trip).

        Raises:
            ValueError: the snapshot is malformed, was taken on data of another
                shape, or with other settings (the message names the key).
        """
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise ValueError(
                f"state is not a BPTTIterator state (expected format {_STATE_FORMAT!r}, "
                f"got {state.get('format') if isinstance(state, dict) else type(state).__name__!r})"
            )
        if list(state.get("data_shape", [])) != list(self.data.shape):
            raise ValueError(
                f"state was saved for data of shape {state.get('data_shape')}, "
                f"but this iterator has data of shape {list(self.data.shape)}"
            )
        for key, value in self._config().items():
            if state.get(key) != value:
                raise ValueError(
                    f"state has {key}={state.get(key)!r} but this iterator has {key}={value!r}"
                )
        position = state.get("position")
        if not isinstance(position, int) or not 0 <= position <= self.num_steps_total:
            raise ValueError(f"state has an invalid position={position!r}")
        rng_state = copy.deepcopy(state["rng"])
        if rng_state.get("bit_generator") != "PCG64":
            raise ValueError(
                f"state has bit_generator={rng_state.get('bit_generator')!r}, expected 'PCG64'"
            )
        self.rng.bit_generator.state = rng_state
        self.position = position
        self.epoch = int(state.get("epoch", 0))
        self.steps = int(state.get("steps", 0))
        self.seed = state.get("seed")

    @classmethod
    def from_state(cls, data: np.ndarray, state: dict[str, Any]) -> "BPTTIterator":
        """A new iterator over ``data`` that continues exactly where ``state`` was taken."""
        if not isinstance(state, dict):
            raise ValueError(f"state must be a dict from BPTTIterator.state(), got {type(state).__name__}")
        missing = [key for key in ("bptt", "variable", "max_seq_len_delta", "min_seq_len",
                                   "seq_len_std", "full_bptt_prob") if key not in state]
        if missing:
            raise ValueError(f"state lacks the keys {missing}")
        iterator = cls(
            data,
            state["bptt"],
            seed=state.get("seed"),
            variable=state["variable"],
            max_seq_len_delta=state["max_seq_len_delta"],
            min_seq_len=state["min_seq_len"],
            seq_len_std=state["seq_len_std"],
            full_bptt_prob=state["full_bptt_prob"],
        )
        iterator.set_state(state)
        return iterator


def epoch_iterator(data: np.ndarray, bptt: int, seed: int, epoch: int, max_seq_len_delta: int = 20, *,
                   seq_len_std: float = 5.0, full_bptt_prob: float = 0.95) -> BPTTIterator:
    """The variable-length BPTT iterator of training epoch ``epoch`` of a run seeded ``seed``.

    Every epoch draws its lengths from a stream of its own, seeded
    ``seed * 100_003 + epoch``, so that a run resumed in epoch ``e`` needs
    only ``e`` and the iterator's `BPTTIterator.state` to continue exactly.
    The trainer and the one-shot search loop both iterate this way.

    Args:
        data: ``[batch, time]`` training data (from :func:`batchify`).
        bptt: nominal segment length.
        seed: the run's seed.
        epoch: the epoch number (1 for the first).
        max_seq_len_delta: a drawn length is capped at ``bptt + max_seq_len_delta``.
        seq_len_std: the normal jitter of the length (AWD-LSTM and DARTS
            ``train.py``: 5; the one-shot searches: 0, as DARTS ``train_search.py``).
        full_bptt_prob: probability of ``bptt`` rather than ``bptt / 2``
            (0.95; ENAS: 1, a fixed length).
    """
    return BPTTIterator(data, bptt, seed=seed * _EPOCH_SEED_STRIDE + epoch, variable=True,
                        max_seq_len_delta=max_seq_len_delta, seq_len_std=seq_len_std,
                        full_bptt_prob=full_bptt_prob)
