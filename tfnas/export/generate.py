"""Sampling text from an exported model: temperature, top-k, a seeded NumPy generator.

The prompt is preceded by ``<eos>`` (when the vocabulary has it), the
context every sentence of the training text starts from. Each new token is
drawn from ``softmax(logits / temperature)`` restricted to the ``top_k``
most likely words; ``temperature=0`` or ``top_k=1`` is greedy decoding.

A prompt is split as the model's training text was (`ExportMetadata.tokens`:
on whitespace, or into characters for a character-level model), and the
text is joined back by `tfnas.data.join_tokens`: words with spaces,
characters with nothing, ``<eos>`` as a line break.

A model with an attention head reads only the tokens of the current call
(one BPTT window, as in training and scoring), so for such a model the
current window (at most ``bptt`` tokens, windows aligned as in scoring) is
run again from the state at its start at every step. A purely recurrent
model just carries its state and is fed one token per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tfnas.data import UNK, OutOfVocabularyError, join_tokens, tokenize_text
from tfnas.export.errors import InputTextError
from tfnas.export.exported import ExportedModel
from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, check_argument


def _check(max_tokens: int, temperature: float, top_k: int | None, seed: int | None) -> None:
    """Refuses a bad argument with ``temperature must be a number >= 0; received: temperature=-1`` (the
    message the serving API passes on)."""
    for name, value, kind, bound in (("max_tokens", max_tokens, int, NON_NEGATIVE),
                                     ("temperature", temperature, float, NON_NEGATIVE),
                                     ("top_k", top_k, int | None, AT_LEAST_ONE),
                                     ("seed", seed, int | None, NON_NEGATIVE)):
        check_argument(name, int(value) if isinstance(value, np.integer) else value, kind, bound, label=name)


def sample_token(logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0,
                 top_k: int | None = None) -> int:
    """One token id from 1-D ``logits``.

    ``temperature == 0`` or ``top_k == 1`` returns the argmax (lowest id on
    ties) without drawing a random number.
    """
    logits = np.asarray(logits, np.float64)
    if temperature == 0 or top_k == 1:
        return int(np.argmax(logits))
    scaled = logits / temperature
    if top_k is not None and top_k < scaled.size:
        keep = np.argpartition(-scaled, top_k - 1)[:top_k]
        masked = np.full_like(scaled, -np.inf)
        masked[keep] = scaled[keep]
        scaled = masked
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    return int(rng.choice(probs.size, p=probs))


class _Context:
    """Feeds tokens to the model and yields the logits of the next token.

    ``window=None``: carry the state after every call (recurrent models).
    ``window=n``: keep the current window of up to ``n`` tokens and its
    starting state; run the whole window each step.
    """

    def __init__(self, model: ExportedModel, window: int | None):
        self.model = model
        self.window = window
        self.states = model.initial_state(1)
        self.pending: list[int] = []

    def feed(self, ids: Sequence[int]) -> np.ndarray:
        """Appends ``ids`` (at least one) and returns the logits after the last of them."""
        if self.window is None:
            logits, self.states = self.model.step(np.asarray([ids], np.int32), self.states)
            return logits[0, -1]
        logits = None
        for i in ids:  # windows of the token stream are aligned at multiples of `window`
            self.pending.append(int(i))
            if len(self.pending) == self.window:
                out, self.states = self.model.step(np.asarray([self.pending], np.int32), self.states)
                logits, self.pending = out[0, -1], []
        if self.pending:
            out, _ = self.model.step(np.asarray([self.pending], np.int32), self.states)
            logits = out[0, -1]
        return logits


def generate_ids(model: ExportedModel, prompt_ids: Sequence[int], max_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, seed: int | None = None, stop_id: int | None = None) -> list[int]:
    """``max_tokens`` new ids after ``prompt_ids`` (not included in the result).

    Args:
        model: the loaded export.
        prompt_ids: at least one id to start from.
        max_tokens: how many ids to draw.
        temperature: divides the logits (0: greedy).
        top_k: draw among the ``top_k`` most likely ids only (None: all).
        seed: seed of ``numpy.random.default_rng`` (an integer >= 0, or None);
            the same seed gives the same ids.
        stop_id: stop after drawing this id (e.g. ``<eos>``), if given.
    """
    _check(max_tokens, temperature, top_k, seed)
    if len(prompt_ids) == 0:
        raise ValueError("prompt_ids must hold at least one id")
    rng = np.random.default_rng(seed)
    window = model.metadata.bptt if model.metadata.attention else None
    context = _Context(model, window)
    logits = context.feed(list(prompt_ids))
    out: list[int] = []
    while len(out) < max_tokens:
        token = sample_token(logits, rng, temperature, top_k)
        out.append(token)
        if token == stop_id or len(out) == max_tokens:
            break
        logits = context.feed([token])
    return out


@dataclass
class Generation:
    """A prompt and what the model wrote after it (``kind``: the tokens are ``words`` or ``chars``)."""

    prompt: list[str]
    tokens: list[str]
    ids: list[int]
    kind: str = "words"

    @property
    def text(self) -> str:
        """Prompt and continuation, with ``<eos>`` written as a line break (`tfnas.data.join_tokens`)."""
        return join_tokens(self.prompt + self.tokens, self.kind)


def prompt_tokens(prompt: str, kind: str = "words") -> list[str]:
    """The tokens of a prompt: its words (split on whitespace), or for ``kind="chars"`` its characters
    (`tfnas.data.tokens`: a space is ``<space>``, a line break inside it ``<eos>``)."""
    if kind == "chars":
        return tokenize_text(prompt + "\n", kind)[:-1]  # no <eos> after its last line: it is continued
    return prompt.split()


def prompt_ids(model: ExportedModel, prompt: str, start_of_text: bool = True) -> list[int]:
    """Ids of a prompt (`prompt_tokens` of the model's kind), after ``<eos>`` when ``start_of_text``.

    Unknown words map to ``<unk>``; without ``<unk>`` they raise
    `OutOfVocabularyError`.
    """
    words = prompt_tokens(prompt, model.metadata.tokens)
    if not words and not start_of_text:
        raise InputTextError("the prompt is empty: give words to continue, or start from <eos> (without --no-start)")
    ids = model.encode(words).tolist()
    for word, i in zip(words, ids):
        if i < 0:
            raise OutOfVocabularyError(word, vocab_size=len(model.vocab), unk=UNK)
    eos = model.vocab.eos_id
    if start_of_text and eos is not None:
        ids = [eos] + ids
    if not ids:
        raise InputTextError("the prompt is empty and the vocabulary has no <eos> to start from")
    return ids


def generate_text(model: ExportedModel, prompt: str, max_tokens: int, temperature: float = 1.0,
                  top_k: int | None = None, seed: int | None = None, start_of_text: bool = True) -> Generation:
    """Continues ``prompt`` by ``max_tokens`` words (see `generate_ids`)."""
    ids = prompt_ids(model, prompt, start_of_text)
    new = generate_ids(model, ids, max_tokens, temperature, top_k, seed)
    kind = model.metadata.tokens
    return Generation(prompt_tokens(prompt, kind), model.decode(new), new, kind)
