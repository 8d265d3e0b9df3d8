"""The configs of runs and models: `ModelConfig`, `RunConfig`, `LMRunConfig`, `TrainConfig`.

Each is a typed settings dataclass (`tfnas.settings`): every field has its
help text, whether it may change on resume, and the interval of a number,
and a config checks its values on creation (`check_settings`). The
defaults are the papers' (each class's docstring cites them).

The hierarchy::

    RunConfig                 dataset, data location, corpus options, seed, checkpoints
    ├── LMRunConfig           + a language model trained with BPTT and clipped SGD
    │   ├── TrainConfig       + NT-ASGD and evaluation  (tfnas train)
    │   └── OneShotConfig     + warm-up, NaN retries     (strategies/one_shot)
    └── BlackBoxConfig        + space, trials, evaluator (strategies/black_box)

Presets (``configs/train/*.yaml``, ``configs/search/*.yaml``, `tfnas.presets`)
hold only what differs from these defaults.
"""
from __future__ import annotations

from tfnas.data.options import DEFAULT_SPLIT_RATIOS, MIN_VOCAB, CorpusOptions
from tfnas.data.tokens import TOKEN_KINDS
from tfnas.genotypes.base import ATTENTION_HEADS
from tfnas.settings import (AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, RATE, SEED, Bound, OneOf, check_settings, setting,
                            settings)


@settings
class ModelConfig:
    """Language model around a cell.

    Defaults: the DARTS evaluation model (Liu et al., ICLR 2019, appendix
    A.2.2 and ``rnn/train.py``): emsize = nhid = 850; one recurrent layer;
    dropouts 0.75 (output), 0.25 (h), 0.75 (x), 0.2 (input), 0.1
    (embedding); cell weights and the embedding in U(-0.04, 0.04) (DARTS
    ``RNNModel.init_weights`` and the cell's initialisation); a tied decoder
    (AWD-LSTM, Merity et al. 2018).

    ``nlayers > 1`` stacks cells as AWD-LSTM does (Zoph & Le, ICLR 2017,
    section 4.2, train two-layer children): each layer has its own weights
    and states, and ``dropouth`` is also the locked dropout on the output of
    every layer but the last (``dropout`` stays on the last one).
    """

    emsize: int = setting(850, help="embedding size", check=AT_LEAST_ONE)
    nhid: int = setting(850, help="hidden units of the cell", check=AT_LEAST_ONE)
    nlayers: int = setting(1, help="stacked recurrent layers, each with its own weights (DARTS: 1; Zoph & Le "
                                   "section 4.2 children: 2)", check=AT_LEAST_ONE)
    dropout: float = setting(0.75, help="locked dropout on the RNN output", check=RATE)
    dropouth: float = setting(0.25, help="variational dropout on h inside the cell (and locked dropout between "
                                         "layers when nlayers > 1)", check=RATE)
    dropoutx: float = setting(0.75, help="variational dropout on x inside the cell", check=RATE)
    dropouti: float = setting(0.2, help="locked dropout on the embedded input", check=RATE)
    dropoute: float = setting(0.1, help="embedding (word) dropout", check=RATE)
    tie_weights: bool = setting(True, help="tie the decoder to the embedding (AWD-LSTM)")
    cell_init_range: float = setting(0.04, help="cell weights ~ U(-r, r)", check=POSITIVE)
    emb_init_range: float = setting(0.04, help="embedding ~ U(-r, r) (DARTS RNNModel.init_weights: 0.04)",
                                    check=POSITIVE)
    attention: str | None = setting(None, help="attention head on the RNN output (NASABN): dot, general, additive, "
                                               "multihead, none (no head, even over a genotype's), or null (the "
                                               "genotype's head)", check=OneOf(ATTENTION_HEADS))
    recompute: bool = setting(False, help="recompute each time step in the backward pass (less memory, same "
                                          "gradients)")

    def __post_init__(self) -> None:
        check_settings(self)


@settings
class RunConfig:
    """What every run has: the corpus, the seed and the checkpoint cadence."""

    dataset: str = setting("ptb", help="ptb, wikitext2, a folder with train/valid/test.txt, one text file (split "
                                       "by split_ratios) or tfds:NAME (a tensorflow-datasets dataset)")
    data_dir: str | None = setting(None, help="where the corpora are (else $TFNAS_DATA, then the tfds manual "
                                              "folder)", resumable=True)
    download: bool = setting(True, help="download a named corpus (ptb, wikitext2) from its official location "
                                        "when it is found nowhere (also off with TFNAS_NO_DOWNLOAD=1)",
                             resumable=True)
    tokens: str = setting("words", help="split the text into words (on whitespace) or chars (every character, "
                                        "a space as <space>); <eos> ends every line", check=OneOf(TOKEN_KINDS))
    min_count: int = setting(1, help="training words seen fewer times become <unk>", check=AT_LEAST_ONE)
    max_vocab: int | None = setting(None, help="keep the most frequent training words (ties: the first seen), at "
                                               "most this many entries with <eos> and <unk>; the rest become <unk>",
                                    check=Bound(MIN_VOCAB))
    unk: bool = setting(False, help="map words of valid/test missing from the vocabulary to <unk> (added if the "
                                    "training text lacks it) instead of refusing them")
    split_ratios: tuple[float, ...] = setting(DEFAULT_SPLIT_RATIOS, help="train, valid and test shares of the lines "
                                                                         "of a dataset that is one text file (or a "
                                                                         "tfds dataset with a train split only)",
                                              check=POSITIVE)
    text_feature: str = setting("text", help="the text feature of a tfds:NAME dataset")
    seed: int = setting(1267, help="seed of every random choice", check=SEED)
    checkpoint_interval: int = setting(200, help="steps between checkpoints", resumable=True, check=AT_LEAST_ONE)
    keep_checkpoints: int = setting(2, help="checkpoints kept on disk", resumable=True, check=AT_LEAST_ONE)
    budget_s: float | None = setting(None, help="wall-clock budget in seconds: stop at the first step boundary past "
                                                "it, counting the time of the sessions resumed (the result records "
                                                "the steps reached; max_steps set to them reproduces it)",
                                     resumable=True, check=POSITIVE)

    def __post_init__(self) -> None:
        check_settings(self)
        self.corpus_options()  # split_ratios: three that sum to 1

    def corpus_options(self) -> CorpusOptions:
        """How the corpus is built from its text (`tfnas.data.load_corpus`'s ``options``)."""
        return CorpusOptions.from_settings(self)

    def corpus_settings(self) -> dict[str, object]:
        """The settings that say which corpus a run reads (`CORPUS_SETTINGS`), which its children share."""
        return {name: getattr(self, name) for name in CORPUS_SETTINGS}


#: The settings of `RunConfig` that decide a run's corpus: where it is, and `tfnas.data.CorpusOptions`.
CORPUS_SETTINGS = ("dataset", "data_dir", "download", "tokens", "min_count", "max_vocab", "unk", "split_ratios",
                   "text_feature")


@settings
class LMRunConfig(RunConfig):
    """A language model trained with variable-length BPTT and clipped SGD (AWD-LSTM as used by DARTS).

    The defaults are `TrainConfig`'s (DARTS evaluation); `OneShotConfig`
    redeclares those that differ in search.
    """

    model: ModelConfig = setting(help="the language model", factory=ModelConfig)
    batch_size: int = setting(64, help="training batch", check=AT_LEAST_ONE)
    eval_batch_size: int = setting(10, help="validation batch", check=AT_LEAST_ONE)
    bptt: int = setting(35, help="BPTT length", check=AT_LEAST_ONE)
    max_seq_len_delta: int = setting(20, help="longest extra BPTT length drawn", check=NON_NEGATIVE)
    lr: float = setting(20.0, help="SGD learning rate", check=POSITIVE)
    clip: float = setting(0.25, help="gradient-norm clip", check=POSITIVE)
    wdecay: float = setting(8e-7, help="L2 weight decay", check=NON_NEGATIVE)
    alpha: float = setting(0.0, help="activation regularisation (AR) weight", check=NON_NEGATIVE)
    beta: float = setting(1e-3, help="temporal activation regularisation (slowness) weight", check=NON_NEGATIVE)
    epochs: int = setting(8000, help="epochs", resumable=True, check=AT_LEAST_ONE)
    max_steps: int | None = setting(None, help="stop after this many steps", resumable=True, check=NON_NEGATIVE)
    log_interval: int = setting(50, help="steps between progress lines", resumable=True, check=AT_LEAST_ONE)
    max_eval_batches: int | None = setting(None, help="evaluate on the first N windows only", resumable=True,
                                           check=AT_LEAST_ONE)
    jit_compile: bool = setting(False, help="compile the step with XLA", resumable=True)


@settings
class TrainConfig(LMRunConfig):
    """Training recipe of AWD-LSTM as used by DARTS for evaluation (PTB).

    Defaults (Liu et al., ICLR 2019, appendix A.2.2 and ``rnn/train.py``):
    batch 64 (eval 10, test 1), BPTT 35 (+ up to 20, AWD-LSTM), SGD lr 20,
    clip 0.25, weight decay 8e-7, slowness (TAR) 1e-3, 8000 epochs, seed
    1267; NT-ASGD with a non-monotone interval of 5 (AWD-LSTM).
    """

    test_batch_size: int = setting(1, help="test batch", resumable=True, check=AT_LEAST_ONE)
    nonmono: int = setting(5, help="NT-ASGD non-monotone interval", check=NON_NEGATIVE)
    eval_interval: int | None = setting(None, help="steps between evaluations (default: every epoch)",
                                        resumable=True, check=AT_LEAST_ONE)
    max_rollbacks: int = setting(3, help="non-finite training losses survived by rolling back to the best "
                                         "weights (DARTS rnn/train.py; the limit is tfnas')", resumable=True,
                                 check=NON_NEGATIVE)
    distribute: str = setting("none", help="data parallelism: none, mirrored (the GPUs of this machine) or "
                                           "multi_worker (the machines of TF_CONFIG)", resumable=True)
    mixed_precision: bool = setting(False, help="compute in bfloat16 (CPU) or float16 with loss scaling (GPU); "
                                                "float32 weights, softmax and loss (tfnas.lm.precision)")

    def split_batch_sizes(self) -> dict[str, int]:
        """The batch of each split a training reads: ``{"train": batch_size, "valid": ..., "test": ...}``."""
        return {"train": self.batch_size, "valid": self.eval_batch_size, "test": self.test_batch_size}
