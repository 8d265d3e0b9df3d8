"""Evaluators: how a black-box strategy gets a score (a validation perplexity) for genotypes.

An evaluator has one method, ``evaluate(genotypes) -> list[float]``: the
validation perplexity of each genotype (lower is better; ``inf`` for a child
that diverged). Strategies turn perplexities into rewards. An evaluator that
trains children may also continue them (`ContinuingEvaluator`,
``evaluate_at(genotypes, steps)``: each child trained to ``steps`` steps in
all, in its own folder), what ASHA's rungs need; `RungEvaluator` ships one
rung's ``steps`` with it to an executor. Evaluators are
picklable so that an `Executor` can ship them to other processes or
machines; TensorFlow is imported only when an evaluator first runs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from tfnas.errors import PathNotFoundError
from tfnas.genotypes.files import AnyGenotype
from tfnas.metrics import perplexity
from tfnas.runs.atomic import read_json
from tfnas.runs.checkpoint import assign_arrays
from tfnas.runs.folder import MODEL_FILE, RunFolderError, read_record, read_weights


@runtime_checkable
class Evaluator(Protocol):
    """Anything with ``evaluate(genotypes) -> list[float]`` (validation perplexities)."""

    def evaluate(self, genotypes: Sequence[AnyGenotype]) -> list[float]:
        ...


@runtime_checkable
class ContinuingEvaluator(Evaluator, Protocol):
    """An evaluator whose children continue: ``evaluate_at(genotypes, steps)`` trains each child to ``steps``
    steps in all, from where its own training stopped, and returns its validation perplexity at that step."""

    def evaluate_at(self, genotypes: Sequence[AnyGenotype], steps: int) -> list[float]:
        ...


class RungEvaluator:
    """``evaluator.evaluate_at(genotypes, steps)`` as an `Evaluator`: one ASHA rung's job, which an executor runs.

    Args:
        evaluator: a `ContinuingEvaluator`.
        steps: the rung's steps.
    """

    def __init__(self, evaluator: ContinuingEvaluator, steps: int):
        self.evaluator = evaluator
        self.steps = int(steps)

    def evaluate(self, genotypes: Sequence[AnyGenotype]) -> list[float]:
        return self.evaluator.evaluate_at(genotypes, self.steps)


def genotype_key(genotype: AnyGenotype) -> str:
    """A short stable name of a genotype (its JSON without provenance, hashed)."""
    data = genotype.to_dict()
    data.pop("provenance", None)
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


class ShortTrainingEvaluator:
    """Trains a child language model for a short budget; returns its best validation perplexity.

    Each child is a `tfnas.lm.trainer.Trainer` run with ``config`` (a small
    `TrainConfig`: few steps, ``max_eval_batches``). With a ``workdir`` the
    run folder is ``workdir/<genotype key>`` and is kept, so an interrupted
    search resumes a half-trained child where it stopped and a repeated
    genotype is not retrained; without one a temporary folder is used. With
    a ``logdir`` each child's curves (`tfnas.callbacks.TensorBoardLogger`:
    its ``train`` and ``validation`` runs) are written to
    ``logdir/<genotype key>``, so TensorBoard shows every child of a search.

    `evaluate_at` (ASHA's rungs) trains with ``max_steps = steps``: a child
    continues from the newest checkpoint of its folder, and its score is the
    best validation perplexity of the evaluations up to step ``steps`` (the
    trainer evaluates at the last step of every `fit`), also when its folder
    has trained further since (a job repeated after a resume), so a rung's
    score never depends on what came after it.

    Args:
        config: the child's `TrainConfig`.
        corpus: a loaded corpus; if None, ``config.dataset`` / ``config.data_dir``
            is loaded in the process that evaluates (what Ray workers do).
        workdir: folder of the child runs, or None for temporary folders.
        logdir: TensorBoard folder of the children's curves, or None for none.

    Raises:
        ValueError: a split of ``corpus`` is smaller than its batch (every
            child would fail; refused here, before a search writes anything).
    """

    def __init__(self, config: Any, corpus: Any = None, workdir: str | Path | None = None,
                 logdir: str | Path | None = None):
        from tfnas.data.batching import batchify_split

        if corpus is not None:
            for split, size in config.split_batch_sizes().items():
                batchify_split(corpus, split, size)
        self.config = config
        self.corpus = corpus
        self.workdir = None if workdir is None else Path(workdir).resolve()
        self.logdir = None if logdir is None else Path(logdir).resolve()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        corpus = state.get("corpus")
        if corpus is not None and getattr(corpus, "source", None) is not None:
            # Ship where the corpus is and how it was built, not its arrays; a worker reloads it (and caches it).
            state["_corpus_source"] = (corpus.source, corpus.options)
            state["corpus"] = None
        return state

    def _corpus(self):
        from tfnas.data import load_corpus, load_corpus_of
        from tfnas.data.tfds_text import is_tfds_name

        if self.corpus is None:
            source, options = getattr(self, "_corpus_source", (None, None))
            if source and (Path(source).exists() or is_tfds_name(source)):
                self.corpus = load_corpus(source, self.config.data_dir, download=self.config.download,
                                          options=options)
            else:
                self.corpus = load_corpus_of(self.config)
        return self.corpus

    def evaluate_one(self, genotype: AnyGenotype, max_steps: int | None = None) -> float:
        """The child's best validation perplexity, trained by ``config`` (to ``max_steps`` steps in all if given:
        see the class docstring); ``inf`` when its loss diverged."""
        from tfnas.callbacks import TensorBoardLogger
        from tfnas.lm.trainer import NonFiniteLossError, Trainer

        config = self.config if max_steps is None else dataclasses.replace(self.config, max_steps=max_steps)
        corpus = self._corpus()
        if self.workdir is not None:
            folder, temporary = self.workdir / genotype_key(genotype), False
        else:
            folder, temporary = Path(tempfile.mkdtemp(prefix="tfnas-child-")), True
        genotype = dataclasses.replace(genotype, provenance={})
        callbacks = [] if self.logdir is None else [TensorBoardLogger(self.logdir / genotype_key(genotype))]
        try:
            result = Trainer(config, genotype, folder, corpus=corpus, callbacks=callbacks).fit(evaluate_test=False)
            if max_steps is None:
                return float(result.best_valid_ppl)
            return float([e for e in result.history if e["step"] <= max_steps][-1]["best_valid_ppl"])
        except NonFiniteLossError:
            return math.inf
        finally:
            if temporary:
                shutil.rmtree(folder, ignore_errors=True)

    def evaluate(self, genotypes: Sequence[AnyGenotype]) -> list[float]:
        return [self.evaluate_one(g) for g in genotypes]

    def evaluate_at(self, genotypes: Sequence[AnyGenotype], steps: int) -> list[float]:
        return [self.evaluate_one(g, steps) for g in genotypes]


#: The keys of a shared-weights model.json written before the search models were composed (a flat ``SharedLM``
#: config, tfnas 0.x up to issue 24), which still load.
LEGACY_SHARED_KEYS = ("steps", "first_node", "output")


def shared_weights_model(config: dict[str, Any]) -> Any:
    """The shared-weights language model (a `LanguageModel` around a `SharedCell`) of a search's ``model.json``.

    A config written before the search models were composed (a flat
    ``SharedLM`` config: the cell's ``steps``, ``first_node`` and ``output``
    beside the model's settings) is rebuilt as the same cell, with the same
    seed and variables.

    Raises:
        TypeError: the config describes another model (no `SharedCell`).
    """
    from tfnas.cells.search.shared_cell import SharedCell
    from tfnas.config import ModelConfig
    from tfnas.lm.model import LanguageModel, cell_arguments

    config = dict(config)
    if "cell" not in config and all(key in config for key in LEGACY_SHARED_KEYS):
        steps, first_node, output = (config.pop(key) for key in LEGACY_SHARED_KEYS)
        settings = {f.name: config[f.name] for f in dataclasses.fields(ModelConfig) if f.name in config}
        config["cell"] = SharedCell(steps, first_node=first_node, output=output, name="shared_cell",
                                    **cell_arguments(ModelConfig(**settings), config.get("seed")))
        config.pop("name", None)
    model = LanguageModel.from_config(config)
    if not isinstance(model.cell, SharedCell):
        raise TypeError(f"its cell is a {type(model.cell).__name__}, not a SharedCell")
    return model


class WeightSharingEvaluator:
    """Scores genotypes with the shared weights of a trained ENAS supernet (no training).

    The perplexity of each genotype is measured on ``max_batches`` windows of
    ``data`` (batchified validation ids) from zero states, with one traced
    evaluation step for every genotype.

    Args:
        model: a built `LanguageModel` around a `tfnas.cells.search.SharedCell`.
        data: batchified validation data ``[batch, tokens]``.
        bptt: window length.
        max_batches: windows per evaluation (None: all).
    """

    def __init__(self, model: Any, data: np.ndarray, bptt: int = 35, max_batches: int | None = None):
        self.model = model
        self.data = np.asarray(data)
        self.bptt = int(bptt)
        self.max_batches = max_batches
        self._step = None

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("model", "_step")}
        state["model_config"] = self.model.get_config()
        state["model_weights"] = [v.numpy() for v in self.model.variables]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        config, weights = state.pop("model_config"), state.pop("model_weights")
        self.__dict__.update(state)
        self.model = shared_weights_model(config)
        self.model.build_weights()
        for var, value in zip(self.model.variables, weights):
            var.assign(value)
        self._step = None

    @property
    def space(self):
        """The DAG space the shared weights run (`tfnas.spaces.DagSpace`)."""
        from tfnas.spaces.dag import DagSpace

        cell = self.model.cell
        return DagSpace(cell.steps, first_node=cell.first_node, output=cell.output_rule)

    @classmethod
    def from_search(cls, search_dir: str | Path, corpus: Any = None, max_batches: int | None = None
                    ) -> "WeightSharingEvaluator":
        """The evaluator of the newest checkpoint of an ENAS search folder.

        The shared-weights model is rebuilt from the folder's ``model.json`` (`shared_weights_model`) and given
        the model's variables of the newest checkpoint
        (`tfnas.runs.folder.read_weights`); the validation data are those of
        the search's record (``dataset``, ``data_dir``, ``eval_batch_size``,
        ``bptt``) unless ``corpus`` is given.
        """
        from tfnas.data import load_corpus_of
        from tfnas.data.batching import batchify_split
        search_dir = Path(search_dir)
        record = read_record(search_dir)
        if record is None or record.kind != "search" or not (search_dir / MODEL_FILE).exists():
            raise PathNotFoundError(f"{search_dir} holds no search with its model ({MODEL_FILE}): pass the --out "
                                    "folder of an ENAS search (tfnas search --strategy enas)")
        try:
            model = shared_weights_model(read_json(search_dir / MODEL_FILE))
        except TypeError as err:
            raise RunFolderError(f"{search_dir / MODEL_FILE} does not describe shared weights (a SharedCell: {err}); "
                                 "pass the --out folder of an ENAS search") from None
        model.build_weights()
        saved = read_weights(search_dir, "latest")
        assign_arrays(model.variables, saved.arrays, saved.path)
        settings = record.config
        corpus = corpus if corpus is not None else load_corpus_of(settings)
        return cls(model, batchify_split(corpus, "valid", settings["eval_batch_size"]), settings["bptt"], max_batches)

    def _eval_step(self):
        if self._step is None:
            import tensorflow as tf

            from tfnas.lm.objective import cross_entropy

            model = self.model

            def step(arch, inputs, targets, states):
                model.cell.set_genotype(arch)
                out = model.forward(inputs, states, training=False)
                return cross_entropy(out.logits, targets), out.states

            self._step = tf.function(step, reduce_retracing=True, autograph=False)
        return self._step

    def loss(self, genotype: AnyGenotype) -> float:
        """Mean per-token cross-entropy of ``genotype`` under the shared weights."""
        import tensorflow as tf

        from tfnas.lm.objective import mean_window_loss

        step = self._eval_step()
        arch = tf.constant(self.model.cell.encode(genotype))
        return mean_window_loss(lambda inputs, targets, states: step(arch, inputs, targets, states), self.data,
                                self.bptt, self.model.initial_state(self.data.shape[0]), self.max_batches)

    def evaluate(self, genotypes: Sequence[AnyGenotype]) -> list[float]:
        return [perplexity(self.loss(g)) for g in genotypes]
