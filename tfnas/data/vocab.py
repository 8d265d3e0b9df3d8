"""Word vocabulary: a bijection between words and integer ids."""

from __future__ import annotations

import collections
import itertools
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from tfnas.data.errors import CorpusError
from tfnas.data.tokens import EOS, UNK, read_text, read_tokens, tokenize_text
from tfnas.errors import PathNotFoundError, TfnasError, access_error, writing

__all__ = ["EOS", "UNK", "OutOfVocabularyError", "Vocabulary"]


class OutOfVocabularyError(TfnasError, ValueError):
    """A word is not in the vocabulary and cannot be mapped to ``<unk>``.

    Attributes:
        word: the offending word.
        path: the file it was read from, when known.
        line: its 1-based line number in ``path``, when known.
    """

    def __init__(
        self,
        word: str,
        *,
        vocab_size: int | None = None,
        unk: str | None = UNK,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
    ) -> None:
        self.word = word
        self.vocab_size = vocab_size
        self.unk = unk
        self.path = None if path is None else str(path)
        self.line = line
        size = "" if vocab_size is None else f" ({vocab_size} words)"
        if unk is None:
            why = "and unknown-word mapping is disabled (unk=None)"
        else:
            why = f"and the vocabulary has no {unk!r} token to map it to"
        message = f"word {word!r} is not in the vocabulary{size} {why}"
        if self.path is not None:
            message += f" (file {self.path!r}"
            message += f", line {line})" if line is not None else ")"
        super().__init__(message)


class Vocabulary:
    """An ordered, immutable list of distinct words; a word's id is its index.

    Build one from a training split with :meth:`from_tokens` or
    :meth:`from_file` (words in order of first appearance, which is
    deterministic; optionally only the frequent ones, the others left to
    ``<unk>``), or restore one with :meth:`load`.
    """

    __slots__ = ("_words", "_index")

    def __init__(self, words: Iterable[str]) -> None:
        """Create a vocabulary whose id ``i`` is ``words[i]``.

        Raises:
            ValueError: if a word is empty, contains whitespace, is not a
                string, or appears twice.
        """
        words = tuple(words)
        index: dict[str, int] = {}
        for i, word in enumerate(words):
            if not isinstance(word, str) or not word or word.split() != [word]:
                raise ValueError(
                    f"invalid vocabulary word #{i}: {word!r} "
                    "(words must be non-empty strings without whitespace)"
                )
            if word in index:
                raise ValueError(
                    f"duplicate vocabulary word {word!r} at positions {index[word]} and {i}"
                )
            index[word] = i
        self._words: tuple[str, ...] = words
        self._index: dict[str, int] = index

    # ------------------------------------------------------------------ build
    @classmethod
    def from_tokens(cls, tokens: Iterable[str], *, min_count: int = 1, max_size: int | None = None,
                    unk: bool = False) -> "Vocabulary":
        """Vocabulary of the distinct ``tokens``, in order of first appearance.

        With the defaults every distinct token is a word. Otherwise, with
        ``n(w)`` the count of ``w`` in ``tokens``:

        * a word with ``n(w) < min_count`` is left out (rare words);
        * if more than ``max_size`` words would remain (``<unk>`` counted), the
          most frequent are kept: ordered by ``-n(w)``, ties broken by first
          appearance (the earlier word wins), as many as fit beside ``<eos>``
          and ``<unk>``;
        * ``<eos>`` and ``<unk>`` are never left out;
        * when a word is left out, or ``unk`` is True, the vocabulary holds
          ``<unk>``: where it first appears in ``tokens``, else appended last.

        The kept words keep their order of first appearance, so the ids of a
        vocabulary with defaults are unchanged.

        Raises:
            ValueError: ``min_count`` below 1, or ``max_size`` below 3 (``<eos>``, ``<unk>`` and one word).
        """
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"Argument `min_count` must be a positive integer; received: min_count={min_count!r}")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 3):
            raise ValueError(f"Argument `max_size` must be None or an integer >= 3; received: max_size={max_size!r}")
        counts = collections.Counter(tokens)  # a dict: keys in order of first appearance
        reserved = {EOS, UNK}
        kept = [w for w, n in counts.items() if n >= min_count or w in reserved]
        needs_unk = unk or len(kept) < len(counts)
        if max_size is not None and len(kept) + (needs_unk and UNK not in counts) > max_size:
            needs_unk = True
            fixed = [w for w in kept if w in reserved]
            room = max_size - len(fixed) - (UNK not in counts)
            order = {w: i for i, w in enumerate(counts)}
            frequent = sorted((w for w in kept if w not in reserved), key=lambda w: (-counts[w], order[w]))[:room]
            chosen = set(frequent) | set(fixed)
            kept = [w for w in kept if w in chosen]
        if needs_unk and UNK not in counts:
            kept.append(UNK)
        return cls(kept)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "Vocabulary":
        """Vocabulary of a training text file, with ``<eos>`` after every line."""
        return cls.from_tokens(read_tokens(path))

    # ------------------------------------------------------------- container
    def __len__(self) -> int:
        return len(self._words)

    def __iter__(self) -> Iterator[str]:
        return iter(self._words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._words == other._words

    def __hash__(self) -> int:
        return hash(self._words)

    def __repr__(self) -> str:
        head = ", ".join(repr(w) for w in self._words[:5])
        more = ", ..." if len(self._words) > 5 else ""
        return f"Vocabulary({len(self)} words: [{head}{more}])"

    @property
    def words(self) -> tuple[str, ...]:
        """All words, ordered by id."""
        return self._words

    @property
    def unk_id(self) -> int | None:
        """Id of ``<unk>``, or ``None`` when the vocabulary has no ``<unk>``."""
        return self._index.get(UNK)

    @property
    def eos_id(self) -> int | None:
        """Id of ``<eos>``, or ``None`` when the vocabulary has no ``<eos>``."""
        return self._index.get(EOS)

    # -------------------------------------------------------------- mapping
    def _unk_target(self, unk: str | None) -> int | None:
        return None if unk is None else self._index.get(unk)

    def word_to_id(self, word: str, unk: str | None = UNK) -> int:
        """Id of ``word``; an unknown word maps to the id of ``unk``.

        Args:
            word: the word to look up.
            unk: token that unknown words map to (default ``<unk>``); ``None``
                makes every unknown word an error.

        Raises:
            OutOfVocabularyError: ``word`` is unknown and ``unk`` is ``None`` or
                not in the vocabulary.
        """
        found = self._index.get(word)
        if found is not None:
            return found
        target = self._unk_target(unk)
        if target is None:
            raise OutOfVocabularyError(word, vocab_size=len(self), unk=unk)
        return target

    def id_to_word(self, i: int) -> str:
        """Word with id ``i``.

        Raises:
            ValueError: when ``i`` is not an integer in ``[0, len(self))``.
        """
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise ValueError(f"id must be an integer, got i={i!r}")
        if not 0 <= i < len(self._words):
            raise ValueError(f"id i={int(i)} is out of range [0, {len(self._words)})")
        return self._words[int(i)]

    def encode(self, words: Iterable[str], unk: str | None = UNK) -> np.ndarray:
        """Map a sequence of words to a 1-D ``int64`` array of ids.

        Args:
            words: the words (a list of tokens, not a whole string).
            unk: token that unknown words map to (default ``<unk>``); ``None``
                makes every unknown word an error.

        Raises:
            TypeError: ``words`` is a single string.
            OutOfVocabularyError: an unknown word cannot be mapped (the
                vocabulary has no ``unk`` token, or ``unk`` is ``None``).
        """
        if isinstance(words, str):
            raise TypeError(
                "encode() expects a sequence of words, got a string; "
                "use encode(text.split()) or tfnas.data.tokenize_text(text)"
            )
        if not isinstance(words, (list, tuple)):
            words = list(words)
        target = self._unk_target(unk)
        if target is None:
            try:
                return np.fromiter(
                    map(self._index.__getitem__, words), dtype=np.int64, count=len(words)
                )
            except KeyError as err:
                raise OutOfVocabularyError(err.args[0], vocab_size=len(self), unk=unk) from None
        return np.fromiter(
            map(self._index.get, words, itertools.repeat(target)),
            dtype=np.int64,
            count=len(words),
        )

    def encode_file(self, path: str | os.PathLike[str], unk: str | None = UNK, tokens: str = "words") -> np.ndarray:
        """Encode a text file (``<eos>`` after every line) into an id array.

        Like :meth:`encode`, but an :class:`OutOfVocabularyError` names the
        file and the line number of the first unknown word.
        """
        return self.encode_text(read_text(path), unk=unk, tokens=tokens, where=path)

    def encode_text(self, text: str, unk: str | None = UNK, tokens: str = "words",
                    where: str | os.PathLike[str] | None = None, first_line: int = 1) -> np.ndarray:
        """Encode ``text`` split into ``tokens`` (`tfnas.data.tokenize_text`) into an id array.

        Like :meth:`encode`, but an :class:`OutOfVocabularyError` names
        ``where`` (the file the text is from) and the line of the first
        unknown word, counted from ``first_line``.
        """
        try:
            return self.encode(tokenize_text(text, tokens), unk=unk)
        except OutOfVocabularyError as err:
            line = next((first_line + i for i, text_line in enumerate(text.split("\n"))
                         if err.word in tokenize_text(text_line, tokens)), None)
            raise OutOfVocabularyError(
                err.word, vocab_size=len(self), unk=unk, path=where, line=line
            ) from None

    def decode(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Map a 1-D sequence of ids back to words.

        Raises:
            ValueError: ``ids`` is not 1-D, not integer, or holds an id outside
                ``[0, len(self))``.
        """
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"ids must be 1-D, got an array of shape {arr.shape}")
        if arr.size == 0:
            return []
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
        bad = (arr < 0) | (arr >= len(self._words))
        if bad.any():
            pos = int(np.argmax(bad))
            raise ValueError(
                f"ids[{pos}]={int(arr[pos])} is out of range [0, {len(self._words)})"
            )
        words = self._words
        return [words[i] for i in arr.tolist()]

    # ------------------------------------------------------------ save/load
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary to ``path``: one word per line, UTF-8, id order.

        Raises:
            PathAccessError: ``path`` cannot be written (named; a full disk with its free space).
        """
        with writing(path), open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("".join(word + "\n" for word in self._words))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Vocabulary":
        """Read a vocabulary written by :meth:`save` (line ``i`` is id ``i - 1``).

        Raises:
            PathNotFoundError: ``path`` does not exist.
            PathAccessError: ``path`` cannot be read.
            CorpusError: not UTF-8, a line is empty or holds whitespace, or a word repeats.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PathNotFoundError(f"vocabulary file {str(path)!r} does not exist") from None
        except OSError as err:
            raise access_error("read vocabulary file", path, err) from err
        except UnicodeDecodeError as err:
            raise CorpusError(f"vocabulary file {str(path)!r} is not valid UTF-8: {err}") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        seen: dict[str, int] = {}
        for number, word in enumerate(lines, start=1):
            if not word or word.split() != [word]:
                raise CorpusError(
                    f"vocabulary file {str(path)!r}, line {number}: expected exactly one "
                    f"word without whitespace, got {word!r}"
                )
            if word in seen:
                raise CorpusError(
                    f"vocabulary file {str(path)!r}: word {word!r} appears on lines "
                    f"{seen[word]} and {number}"
                )
            seen[word] = number
        return cls(lines)
