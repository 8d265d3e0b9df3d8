"""The Python API, found at the top level: `tfnas.search`, `tfnas.train`, `tfnas.load_run` (and `tfnas.export`,
the package `tfnas.export` called: `tfnas.export.exporter.export`).

Each function does what the command of its name does, with the same
settings and the same numbers: ``tfnas.search("darts", "ptb", "runs/s",
preset="quick_darts", epochs=2)`` is ``tfnas search --strategy darts
--dataset ptb --out runs/s --config quick_darts --epochs 2``. ``settings``
are the fields of the config class (a nested section as a dict:
``model={"nhid": 200}``) and override ``preset``, which overrides the
defaults (`tfnas.presets`). Progress is printed as ``keras.Model.fit(verbose=1)``
does (``verbose=0``: nothing); TensorBoard summaries go to
``OUT/tensorboard`` as with the command. ``callbacks`` takes tfnas
callbacks and Keras callbacks (`tfnas.callbacks.KerasCallbacks`: an
``EarlyStopping`` stops the run). A run folder that holds a checkpoint is
resumed, as with the command.

``data`` is what ``--dataset`` takes (``"ptb"``, ``"wikitext2"``, a folder, a
text file, ``"tfds:NAME"``) or a `tfnas.data.Corpus` (``Corpus.from_texts``);
anything else, a ``tf.data.Dataset`` included, is refused on one line
(`tfnas.data.check_corpus`).

Everything is imported when a function runs: ``import tfnas`` stays light.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

#: What ``genotype`` may be in `train`: a genotype, its dict, a JSON path, a known cell's name, or None / ``"lstm"``
#: for the LSTM baseline.
GenotypeLike = Any


@dataclass(frozen=True)
class SearchRun:
    """What `search` found.

    Attributes:
        genotype: the genotype found (with its provenance).
        valid_ppl: the validation perplexity the search reports for it (None if the strategy reports none).
        metrics: the search's final metrics (``search_result.json``).
        history: its per-epoch (one-shot) or per-round (black-box) records.
        seconds: seconds spent, over the sessions that ran it.
        out: the run folder; genotype_path: its ``genotype.json``.
    """

    genotype: Any
    valid_ppl: float | None
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    seconds: float | None
    out: Path
    genotype_path: Path


@dataclass(frozen=True)
class TrainRun:
    """What `train` trained.

    Attributes:
        genotype: the cell's genotype, None for the LSTM baseline.
        valid_ppl: validation perplexity at the last step; best_valid_ppl: the best one (the weights of
            ``best/``, which test and export use); test_ppl: test perplexity of those (None with
            ``evaluate_test=False``).
        steps, epochs_done, params: steps trained, epochs completed, trainable parameters.
        stopped: whether a callback stopped the run before its end (``EarlyStopping``).
        history: the evaluations; seconds: seconds spent, over the sessions that ran it.
        out: the run folder, for `load_run` and `export`.
    """

    genotype: Any
    valid_ppl: float
    best_valid_ppl: float
    test_ppl: float | None
    steps: int
    epochs_done: int
    params: int
    stopped: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    out: Path = Path()

    def __fspath__(self) -> str:
        """The run folder: a `TrainRun` is passed wherever a run folder is (`load_run`, `tfnas.export`)."""
        return os.fspath(self.out)


def _overrides(data: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings, with ``dataset`` from ``data`` when it names a corpus (a `Corpus` is passed as it is)."""
    if isinstance(data, (str, os.PathLike)):
        return {**settings, "dataset": str(data)}
    return dict(settings)


def _corpus(data: Any, config: Any) -> Any:
    """The corpus ``data`` names (read with the config's corpus settings), or ``data`` itself if a `Corpus`."""
    from tfnas.data import check_corpus, load_corpus_of

    if isinstance(data, (str, os.PathLike)):
        return load_corpus_of(config)
    return check_corpus(data)


def search(strategy: str, data: Any, out: str | os.PathLike[str], preset: str | None = None, *, verbose: int = 1,
           callbacks: Sequence[Any] = (), **settings: Any) -> SearchRun:
    """Runs (or resumes) the search ``strategy`` (`tfnas.strategies.registry.strategy_names`) on ``data`` in the
    run folder ``out``; writes ``out/genotype.json``. See the module docstring for the arguments.

    Example::

        found = tfnas.search("darts", "ptb", "runs/darts", preset="quick_darts", verbose=0)
        found.genotype, found.valid_ppl
    """
    from tfnas.callbacks import run_callbacks
    from tfnas.strategies.registry import get_strategy

    spec = get_strategy(strategy)
    config = spec.make_config(_overrides(data, settings), preset)
    corpus = _corpus(data, config)
    out = Path(out)
    result = spec.strategy_class(config).search(corpus, out, [*run_callbacks(out, verbose, config), *callbacks])
    return SearchRun(genotype=result.genotype, valid_ppl=result.metrics.get("valid_ppl"), metrics=result.metrics,
                     history=result.history, seconds=result.seconds, out=out, genotype_path=out / "genotype.json")


def _genotype(genotype: GenotypeLike) -> Any:
    from tfnas.genotypes import as_any_genotype, resolve_genotype

    if genotype is None or genotype == "lstm":
        return None
    if isinstance(genotype, (str, os.PathLike)):
        return resolve_genotype(genotype)
    return as_any_genotype(genotype)


def train(genotype: GenotypeLike, data: Any, out: str | os.PathLike[str], preset: str | None = None, *,
          verbose: int = 1, callbacks: Sequence[Any] = (), evaluate_test: bool = True, **settings: Any) -> TrainRun:
    """Trains (or resumes training) a language model around ``genotype`` on ``data`` in the run folder ``out``
    (`tfnas.lm.trainer.Trainer`); ``genotype`` is a genotype (``found.genotype``), its dict, a JSON path, a known
    cell's name (``"darts_v2"``) or None / ``"lstm"`` for the LSTM baseline. See the module docstring.

    Example::

        run = tfnas.train("darts_v2", "ptb", "runs/train", preset="quick_train",
                          callbacks=[keras.callbacks.EarlyStopping(patience=2)])
        run.test_ppl
    """
    from tfnas.hparams import train_callbacks
    from tfnas.lm.distribute import make_strategy
    from tfnas.lm.trainer import Trainer
    from tfnas.presets import train_config

    config = train_config(preset, _overrides(data, settings))
    make_strategy(config.distribute)  # first: a multi-worker strategy must exist before TensorFlow runs an op
    cell = _genotype(genotype)
    corpus = _corpus(data, config)
    out = Path(out)
    trainer = Trainer(config, cell, out, corpus=corpus,
                      callbacks=[*train_callbacks(out, verbose, config, cell), *callbacks])
    r = trainer.fit(evaluate_test=evaluate_test)
    return TrainRun(genotype=cell, valid_ppl=r.valid_ppl, best_valid_ppl=r.best_valid_ppl, test_ppl=r.test_ppl,
                    steps=r.steps, epochs_done=r.epochs_done, params=r.params, stopped=trainer.stopped,
                    history=r.history, seconds=r.seconds, out=out)


def load_run(run: str | os.PathLike[str], weights: str = "best") -> Any:
    """The trained run folder (or a `TrainRun`) as a `tfnas.export.LoadedRun`: ``.model`` (the `LanguageModel`
    with the ``"best"`` or ``"latest"`` weights), ``.vocab``, ``.genotype``, ``.config``, ``.result``."""
    from tfnas.export import load_run as load

    return load(run, weights)
