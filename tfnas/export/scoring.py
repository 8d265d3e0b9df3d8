"""Perplexity of a text under an exported model, computed exactly as the trainer does.

The text is read as the corpora are (``<eos>`` after every line), cut into
``batch_size`` contiguous rows (`tfnas.data.batchify`, the tail that does not
fill a column is dropped) and run in fixed windows of ``bptt`` steps
(`tfnas.data.BPTTIterator` with ``variable=False``) with the state carried
from window to window; the loss is the mean per-token cross-entropy. With the
run's ``test_batch_size`` and ``bptt`` (the defaults, read from the export's
metadata) the perplexity of the test split equals the trainer's
``test_ppl``: the batch size changes which tokens are dropped and where each
row starts from a zero state, so another batch size gives a (slightly)
different figure.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfnas.data import EOS, UNK, BPTTIterator, OutOfVocabularyError, Vocabulary, batchify, read_tokens
from tfnas.export.errors import InputTextError
from tfnas.export.exported import ExportedModel
from tfnas.export.metadata import check_same_vocabulary
from tfnas.metrics import perplexity
from tfnas.progress import Progress, ProgressTarget
from tfnas.settings import AT_LEAST_ONE, check_argument


@dataclass
class ScoreResult:
    """Mean per-token cross-entropy (nats) and its perplexity, with the settings used."""

    loss: float
    perplexity: float
    tokens: int
    batch_size: int
    bptt: int
    windows: int


def encode_tokens(model: ExportedModel, tokens: list[str], path: str | Path | None = None) -> np.ndarray:
    """Ids of ``tokens`` through the export's own vocabulary.

    Raises:
        OutOfVocabularyError: a word is unknown and the vocabulary has no
            ``<unk>``; the message names the word and, for a file, its line.
    """
    ids = model.encode(tokens)
    missing = np.flatnonzero(ids < 0)
    if missing.size:
        first = int(missing[0])
        line = tokens[:first].count(EOS) + 1
        raise OutOfVocabularyError(tokens[first], vocab_size=len(model.vocab), unk=UNK, path=path,
                                   line=line if path is not None else None)
    return ids


def score_ids(model: ExportedModel, ids: np.ndarray, batch_size: int | None = None, bptt: int | None = None,
              max_batches: int | None = None, progress: ProgressTarget = False) -> ScoreResult:
    """Perplexity of a 1-D id stream (see the module docstring for the windows).

    Args:
        model: the loaded export.
        ids: 1-D token ids.
        batch_size: rows (default: the run's ``test_batch_size``).
        bptt: window length (default: the run's ``bptt``).
        max_batches: stop after this many windows (None: all).
        progress: where to show the windows scored (`tfnas.progress.ProgressTarget`).

    Raises:
        ValueError: ``batch_size``, ``bptt`` or ``max_batches`` is not None or an integer >= 1.
    """
    for name, value in (("batch_size", batch_size), ("bptt", bptt), ("max_batches", max_batches)):
        check_argument(name, int(value) if isinstance(value, np.integer) else value, int | None, AT_LEAST_ONE)
    batch_size = model.metadata.test_batch_size if batch_size is None else batch_size
    bptt = model.metadata.bptt if bptt is None else bptt
    data = batchify(np.asarray(ids, np.int64), batch_size)
    states = model.initial_state(batch_size)
    total, count, windows = 0.0, 0, 0
    expected = -(-(data.shape[1] - 1) // bptt)  # windows of the whole stream
    expected = expected if max_batches is None else min(expected, max_batches)
    with Progress.to(progress, "scoring", expected, "windows") as bar:
        for k, (inputs, targets, _, _) in enumerate(BPTTIterator(data, bptt, seed=0, variable=False)):
            if max_batches is not None and k >= max_batches:
                break
            log_probs, states = model.log_probs(inputs, targets, states)
            total -= float(np.sum(log_probs))
            count += targets.size
            windows += 1
            bar.advance()
    loss = total / max(count, 1)
    return ScoreResult(loss, perplexity(loss), count, batch_size, bptt, windows)


def score_file(model: ExportedModel, path: str | Path, batch_size: int | None = None, bptt: int | None = None,
               vocab: str | Path | None = None, max_batches: int | None = None,
               progress: ProgressTarget = False) -> ScoreResult:
    """Perplexity of a text file under ``model``.

    Args:
        model: the loaded export (`tfnas.export.load_export`).
        path: a text file, one sentence per line, tokens separated by spaces (a character-level model's:
            every character a token, `ExportMetadata.tokens`).
        batch_size: see `score_ids`.
        bptt: see `score_ids`.
        max_batches: see `score_ids`.
        progress: see `score_ids`.
        vocab: optionally the vocabulary file the text was prepared with; it
            must equal the model's.

    Raises:
        VocabularyMismatchError: ``vocab`` differs from the model's.
        OutOfVocabularyError: the text has a word the model does not know
            and its vocabulary has no ``<unk>`` (names the word and the line).
    """
    if vocab is not None:
        check_same_vocabulary(model.vocab, Vocabulary.load(vocab), f"vocabulary file {vocab}")
    tokens = read_tokens(path, model.metadata.tokens)
    if len(tokens) < 2:
        raise InputTextError(f"{path} holds {len(tokens)} token(s); scoring needs at least 2")
    return score_ids(model, encode_tokens(model, tokens, path), batch_size, bptt, max_batches, progress)
