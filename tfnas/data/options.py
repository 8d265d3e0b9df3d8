"""`CorpusOptions`: how a text becomes a corpus besides where it is (tokens, vocabulary, splitting, tfds feature).

The defaults give the corpus tfnas has always built (words split on
whitespace, every training word in the vocabulary, an unknown word of
valid/test an error unless the training text holds ``<unk>``), so the ids
and the run fingerprints of PTB, WikiText-2 and any folder are unchanged.
The run settings of the same names (`tfnas.config.RunConfig`) are read
with `CorpusOptions.from_settings`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from tfnas.data.tokens import TOKEN_KINDS
from tfnas.settings import AT_LEAST_ONE, POSITIVE, Bound, OneOf, SettingsError, check_argument

__all__ = ["CorpusOptions", "DEFAULT_SPLIT_RATIOS", "MIN_VOCAB"]

#: Train, valid and test shares of the lines of one text file (or of a tfds dataset with a train split only):
#: the 90/5/5 split of the character-level text8 and enwik8 benchmarks (Mikolov et al. 2012; Chung et al. 2017).
DEFAULT_SPLIT_RATIOS = (0.9, 0.05, 0.05)
#: The smallest `CorpusOptions.max_vocab`: ``<eos>``, ``<unk>`` and one word.
MIN_VOCAB = 3


@dataclass(frozen=True)
class CorpusOptions:
    """How a corpus is built from its text.

    Attributes:
        tokens: ``words`` (split on whitespace) or ``chars`` (every character;
            `tfnas.data.tokens`), ``<eos>`` after every line in both.
        min_count: a training word seen fewer times becomes ``<unk>``.
        max_vocab: at most this many vocabulary entries (``<eos>`` and
            ``<unk>`` included), the most frequent training words kept, ties
            broken by first appearance (`tfnas.data.Vocabulary.from_tokens`);
            None: no limit.
        unk: the vocabulary holds ``<unk>`` and words of valid/test that are
            not in it map to it; False (the default): such a word is an error
            unless the training text holds ``<unk>``.
        split_ratios: the train, valid and test shares of the lines of a
            single text file (or of a tfds dataset with a train split only).
        text_feature: the text feature of a tensorflow-datasets dataset.
    """

    tokens: str = "words"
    min_count: int = 1
    max_vocab: int | None = None
    unk: bool = False
    split_ratios: tuple[float, ...] = DEFAULT_SPLIT_RATIOS
    text_feature: str = "text"

    def __post_init__(self) -> None:
        check_argument("tokens", self.tokens, str, OneOf(TOKEN_KINDS))
        check_argument("min_count", self.min_count, int, AT_LEAST_ONE)
        check_argument("max_vocab", self.max_vocab, int | None, Bound(MIN_VOCAB))
        check_argument("unk", self.unk, bool)
        check_argument("split_ratios", self.split_ratios, tuple[float, ...], POSITIVE)
        check_argument("text_feature", self.text_feature, str)
        ratios = tuple(float(r) for r in self.split_ratios)
        if len(ratios) != 3 or abs(sum(ratios) - 1.0) > 1e-6:
            raise SettingsError(f"split_ratios must be three positive numbers (train, valid, test) summing to 1; "
                                f"received: split_ratios={list(self.split_ratios)}")
        object.__setattr__(self, "split_ratios", ratios)

    @classmethod
    def from_settings(cls, values: Any) -> "CorpusOptions":
        """The options among ``values`` (a settings object or a mapping such as a run record's settings); one
        it lacks (a record of an earlier tfnas) takes its default."""
        get = values.get if isinstance(values, Mapping) else (lambda name, default: getattr(values, name, default))
        found = {f.name: get(f.name, f.default) for f in dataclasses.fields(cls)}
        if isinstance(found["split_ratios"], list):
            found["split_ratios"] = tuple(found["split_ratios"])
        return cls(**found)

    def vocabulary_arguments(self) -> dict[str, Any]:
        """The arguments of `tfnas.data.Vocabulary.from_tokens` these options give."""
        return {"min_count": self.min_count, "max_size": self.max_vocab, "unk": self.unk}
