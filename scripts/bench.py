"""Speed and memory of tfnas' hot paths, as ratios to a same-run keras.layers.LSTM baseline.

Cases, each group in a subprocess of its own:

* ``search``, reported as ``lstm_search`` (keras.layers.LSTM language model,
  training step, at the search size), ``darts1`` (one first-order DARTS
  search step: architecture update on a validation batch, then the weight
  update on a training batch) and ``darts2`` (one second-order step);
* ``darts1_memory``: the peak resident memory of the first-order step, in a
  process that runs nothing else (it replaces the ``darts1`` figure of the
  group, whose process also holds the second-order model);
* ``train``, reported as ``lstm_train`` (the LSTM LM training step at the
  evaluation size) and ``genotype_train`` (the DARTS_V2 GenotypeCell LM
  training step, the Trainer's own);
* ``layer``: the training step of a user's ``keras.Sequential`` (Embedding,
  a recurrent layer with ``return_sequences``, Dense to the vocabulary;
  ``compile`` with its defaults, then ``train_on_batch``) at each of
  ``layer_units`` (batch ``layer_batch``), reported as ``lstm_layer_<units>``
  (``keras.layers.LSTM``, the baseline), ``fused_layer_<units>``
  (`tfnas.cells.FusedRNN` over DARTS_V2, its loop compiled by XLA, the
  default), ``fused_while_layer_<units>`` (the same with
  ``jit_compile=False``: its ``tf.while_loop``), ``rnn_layer_<units>``
  (``keras.layers.RNN(GenotypeCell)``, the slower supported path) and
  ``genotype_layer_<units>`` (the Trainer's own step, `Trainer.train_step`,
  of a DARTS_V2 language model of the same units and batch), and
  ``lstm_layer_<units>_xla`` / ``fused_layer_<units>_xla``, the LSTM and
  `FusedRNN` models compiled with ``jit_compile=True`` (what Keras' ``"auto"``
  chooses on a GPU; on a CPU it chooses no XLA), the fused one's ratio to
  the LSTM's XLA step; each size is timed in interleaved rounds of its own;
* ``score``, reported as ``score_keras`` / ``score_savedmodel`` / ``score_onnx``:
  scoring throughput of an exported DARTS_V2 model, ``ExportedModel.log_probs``
  of one window computed inside each runtime as ``tfnas score`` does;
* ``bayesnas``, reported as ``bayes_step`` (one BayesNAS search step,
  `BayesNasSearch.compiled_step`: the weights' clipped SGD step and the
  scalars' step on one training window) and ``bayes_hessian`` (the
  ``recursive`` diagonal Hessian of the scalars, `scalar_hessian` as
  `BayesNasSearch.on_epoch_end` calls it), both at `BayesNasConfig`'s search
  setting and over the same ``bayes_windows`` windows per round; a figure is
  per window, and the Hessian's includes its share of the call's tracing
  (one call per round over ``bayes_windows`` windows; the search makes one
  call over ``hessian_batches`` = 10 windows, so its share there is smaller);
* ``nao``, reported as ``nao_epd`` (one epoch of `NaoTrainer.fit`: Adam steps
  of batch 100 on Eq. 1 over ``nao_cells`` random 11-node cells, with the PTB
  EPD of `NaoConfig`) and ``lstm_nao``, its baseline: the same number of Adam
  steps (same learning rate and clip) of a ``keras.layers.LSTM`` of the
  encoder's width over the same embedding size, reconstructing the same token
  batches through a dense layer (the EPD without its decoder LSTM, attention
  and predictor). A step is an epoch; the issue's figure, ``nao_epochs`` = 100
  epochs, is measured with one `NaoTrainer.fit` call with ``nao_fit`` (the
  full run) and projected from the median epoch otherwise.

The cases of a group are timed in one process in interleaved rounds (one
step of each in turn, round after round), since the machines drift and the
targets are ratios; the median round is reported, and the peak memory is
that of the group's process unless a case has a process of its own.

Single cases (``--cases lstm_train,genotype_train_xla`` ...) can also be run
on their own; ``_xla`` compiles the step with XLA, and ``_mixed`` (after
``_xla``: ``genotype_train_xla_mixed``) trains in mixed precision (the
Trainer's ``mixed_precision``: bfloat16 on a CPU, float16 with loss scaling
on a GPU), for the Trainer's cases only (``lstm_search``, ``lstm_train``,
``genotype_train``); a variant's ratio is to its plain case's baseline.
``--settings '{"timed": 20}'`` overrides the settings below. Where
TensorFlow sees a GPU, ``peak_gpu_gb`` is its allocator's peak on GPU:0 in
the case's process.

Every figure is printed with its ratio to the baseline measured in the same
run (the LSTM of the same hidden size and batch), with achieved GFLOP/s from
an analytic count of the matmul FLOPs (forward ``2mnk``; a backward pass
counts twice its forward). Results go to ``benchmarks/results/`` as JSON with
machine information; ``--table`` prints the table of the benchmarks page
(``docs/guides/benchmarks.md``) from the latest full run.

    python scripts/bench.py --quick        # small sizes, a few minutes
    python scripts/bench.py                # the paper settings
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

#: Paper settings (DARTS search: 300 / batch 256; DARTS_V2 evaluation: 850 / batch 64). The first
#: steps of a process are slower (its memory is still being mapped in: up to 2x for a search step),
#: hence several warm-up steps before the timed ones.
#: BayesNAS (``bayes_*``) runs at ``search_nhid`` / ``search_batch`` with `BayesNasConfig`'s 12 nodes; NAO's
#: EPD trains on ``nao_cells`` cells, and with ``nao_fit`` its ``nao_epochs`` epochs are timed in one `NaoTrainer.fit`.
#: The ``layer`` group (issue 27) times a user's Sequential model at each of ``layer_units``, batch ``layer_batch``.
FULL = {"vocab": 10_000, "bptt": 35, "search_nhid": 300, "search_batch": 256, "train_nhid": 850,
        "train_batch": 64, "steps": 8, "timed": 3, "warmup": 3, "bayes_windows": 2, "nao_cells": 1000,
        "nao_epochs": 100, "nao_fit": True, "layer_units": [128, 850], "layer_batch": 32}
QUICK = {"vocab": 10_000, "bptt": 35, "search_nhid": 128, "search_batch": 64, "train_nhid": 256,
         "train_batch": 32, "steps": 8, "timed": 3, "warmup": 2, "bayes_windows": 2, "nao_cells": 1000,
         "nao_epochs": 100, "nao_fit": False, "layer_units": [128, 256], "layer_batch": 32}

#: Targets of the speed issues, as (case, baseline case, maximum ratio): issue 13 item 5 for the BayesNAS Hessian.
#: Issue 27 item 2: the fused layer within 1.1x of the Trainer's step and at most 1.7x the LSTM at 850 units
#: (without XLA, Keras' choice on a CPU, and with it, Keras' choice on a GPU).
TARGETS = [("darts1", "lstm_search", 8.0), ("darts2", "darts1", 2.0), ("genotype_train", "lstm_train", 2.2),
           ("bayes_hessian", "bayes_step", 2.0), ("fused_layer_850", "genotype_layer_850", 1.1),
           ("fused_layer_850", "lstm_layer_850", 1.7), ("fused_layer_850_xla", "lstm_layer_850_xla", 1.7)]
PEAK_TARGET_GB = 4.0
#: Issue 14 item 6: the EPD trains on 1,000 cells for 100 epochs in "seconds to a few minutes" (read: 3 minutes).
NAO_TARGET_S = 180.0
#: Warm-up rounds of the ``bayesnas`` group (a round is ``bayes_windows`` steps and a Hessian call: the first
#: compiles the step and maps in the Hessian's memory) and timed rounds of the ``nao`` group per ``timed``
#: (an epoch is about a second).
BAYES_WARMUP_ROUNDS = 1
NAO_REPEAT = 5
#: Scoring steps are short (under a second) and noisy: time this many times more of them.
SCORE_REPEAT = 4
#: Cases timed together in one process, in interleaved rounds (ratios need a common phase of the
#: machine), with the number of timed rounds as a multiple of a single case's timed steps.
GROUPS = {"search": (("lstm_search", "darts1", "darts2"), 1), "train": (("lstm_train", "genotype_train"), 2)}
#: What a run without ``--cases`` runs (the benchmarks page's main table); ``bayesnas``, ``nao`` and ``layer``
#: are run on their own.
DEFAULT_CASES = "search,darts1_memory,train,score"
#: Cases whose peak memory is measured in a process of their own (a group's process holds all its models).
MEMORY_CASES = ("darts1",)


# ------------------------------------------------------------------ FLOPs
def lstm_forward_flops(nhid: int, vocab: int, emsize: int | None = None) -> float:
    """Per token: the LSTM gates ``[x, h] W`` (``x`` of ``emsize``, default ``nhid``) and the decoder."""
    return 2 * ((emsize or nhid) + nhid) * (4 * nhid) + 2 * nhid * vocab


def darts_search_forward_flops(nhid: int, vocab: int, steps: int) -> float:
    """Per token: node 0 ``[x, h] W0`` plus node ``i`` reading ``i`` predecessors, plus the decoder."""
    node_inputs = steps * (steps + 1) // 2
    return 2 * (2 * nhid) * (2 * nhid) + node_inputs * 2 * nhid * (2 * nhid) + 2 * nhid * vocab


def genotype_forward_flops(nhid: int, vocab: int, steps: int) -> float:
    """Per token: node 0, one matmul per node, the decoder."""
    return 2 * (2 * nhid) * (2 * nhid) + steps * 2 * nhid * (2 * nhid) + 2 * nhid * vocab


def bayes_hessian_flops(nhid: int, vocab: int, steps: int) -> float:
    """Per token, the ``recursive`` Hessian (`bayes_hessian.recursive_hessian`).

    An inference forward pass (`darts_search_forward_flops`), the cell's
    matmuls once more (`BayesCell.trace`), R0's ``p @ (E*E)`` and ``p @ E``
    (two decoder-sized matmuls) and R4's three ``[U, U]`` matmuls for each of
    the ``steps (steps + 1) / 2`` edges and for node 0's recurrence.
    """
    forward = darts_search_forward_flops(nhid, vocab, steps)
    cell = forward - 2 * nhid * vocab
    edges = steps * (steps + 1) // 2 + 1
    return forward + cell + 2 * (2 * nhid * vocab) + edges * 3 * (2 * nhid * nhid)


def epd_forward_flops(embed: int, hidden: int, mlp: tuple[int, ...], vocab: int, length: int) -> float:
    """Per token of a cell's string of ``length`` tokens, the teacher-forced EPD (`EncoderPredictorDecoder.loss`).

    Encoder and decoder LSTM gates ``[x, h] W``, the attention's key and query
    projections, its energies ``v^T tanh(.)`` and context sums over the
    ``length`` encoder states, the output layer ``[s, ctx] W``, and the
    predictor's MLP once per string.
    """
    lstms = 2 * 2 * (embed + hidden) * (4 * hidden)
    attention = 2 * hidden * hidden * 2 + length * 2 * hidden * 2
    sizes = (hidden, *mlp, 1)
    predictor = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:])) / length
    return lstms + attention + 2 * (2 * hidden) * vocab + predictor


# ------------------------------------------------------------------ cases
def _synthetic_corpus(vocab: int, tokens: int):
    import numpy as np

    from tfnas.data import Corpus, Vocabulary

    rng = np.random.default_rng(0)
    words = Vocabulary([f"w{i}" for i in range(vocab)])
    make = lambda n: rng.integers(0, vocab, n).astype(np.int64)  # noqa: E731
    return Corpus("synthetic", words, make(tokens), make(tokens), make(tokens))


def _batch(batch: int, bptt: int, vocab: int, seed: int):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    return (tf.constant(rng.integers(0, vocab, (batch, bptt)), tf.int32),
            tf.constant(rng.integers(0, vocab, (batch, bptt)), tf.int32))


def _time(step, warmup: int, timed: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(timed):
        step()
    return (time.perf_counter() - start) / timed


def _synthetic_trainer(genotype, nhid: int, batch: int, s: dict, out_dir: Path, **settings):
    """A Trainer of an ``nhid``-unit LM on a synthetic corpus of two batches (``settings``: TrainConfig fields)."""
    from tfnas.config import ModelConfig, TrainConfig
    from tfnas.lm.trainer import Trainer

    config = TrainConfig(model=ModelConfig(emsize=nhid, nhid=nhid), batch_size=batch, eval_batch_size=batch,
                         test_batch_size=batch, bptt=s["bptt"], **settings)
    corpus = _synthetic_corpus(s["vocab"], batch * (s["bptt"] + 1) * 2)
    return Trainer(config, genotype, out_dir, corpus=corpus)


def train_step_call(genotype, nhid: int, batch: int, s: dict, **settings):
    """``(trainer, call)``: `_synthetic_trainer` (``settings``: TrainConfig fields) and ``call()``, one of its
    `Trainer.train_step` on a batch, returning the step's outputs."""
    import tempfile

    import tensorflow as tf

    trainer = _synthetic_trainer(genotype, nhid, batch, s, Path(tempfile.mkdtemp()), **settings)
    x, y = _batch(batch, s["bptt"], s["vocab"], 0)
    lr, avg = tf.constant(1.0), tf.constant(False)
    return trainer, lambda: trainer.train_step(x, y, trainer.hidden, lr, avg)


def _trainer_step(genotype, nhid: int, batch: int, s: dict, **settings):
    """The Trainer's own compiled step (`Trainer.train_step`) on synthetic data, waiting for its loss."""
    call = train_step_call(genotype, nhid, batch, s, **settings)[1]
    return lambda: call()[0].numpy()


def darts_step_call(order: int, s: dict, jit: bool = False):
    """``(search, call)``: a built `DartsSearch` of ``order`` and ``call()``, its ``compiled_step`` on synthetic
    batches (an architecture update, then the weights')."""
    import tensorflow as tf

    from tfnas.strategies.one_shot.darts import DartsConfig, DartsSearch

    nhid, batch = s["search_nhid"], s["search_batch"]
    # The search preset's model (dropouts, per-step recomputation) at the benchmark's size.
    model = dataclasses.replace(DartsConfig().model, emsize=nhid, nhid=nhid)
    config = DartsConfig(model=model, batch_size=batch, bptt=s["bptt"], steps=s["steps"], order=order,
                         jit_compile=jit)
    search = DartsSearch(config)
    search.build(s["vocab"])
    states = search.model.initial_state(batch)
    train = (*_batch(batch, s["bptt"], s["vocab"], 0), states)
    valid = (*_batch(batch, s["bptt"], s["vocab"], 1), states)
    lr, arch = tf.constant(20.0), tf.constant(True)
    return search, lambda: search.compiled_step(train, valid, lr, arch)


def _darts_step(order: int, s: dict, jit: bool = False):
    """The DARTS search's compiled step (`DartsSearch.compiled_step`) of ``order``, waiting for its loss."""
    call = darts_step_call(order, s, jit)[1]
    return lambda: call()[0]["loss"].numpy()


def export_scoring_model(folder: Path, s: dict) -> None:
    """Trains a DARTS_V2 LM one step on synthetic data and exports it to every format under ``folder``."""
    from tfnas.export import FORMATS, export_run
    from tfnas.genotypes.files import resolve_genotype

    trainer = _synthetic_trainer(resolve_genotype("darts_v2"), s["train_nhid"], s["train_batch"], s, folder / "run",
                                 max_steps=1, max_eval_batches=1)
    trainer.fit(evaluate_test=False)
    export_run(folder / "run", folder / "export", formats=",".join(FORMATS), check=False)


def run_scoring(s: dict) -> dict[str, dict]:
    """Scoring throughput of the three formats (``log_probs`` of one window), timed in interleaved rounds.

    The exports are made in a separate process (the conversion's memory is
    not counted); the three models are loaded side by side and timed in turn,
    round after round, so that a slow phase of a noisy machine hits all three
    alike. The median round is reported; the peak memory is that of this
    process, holding all three.
    """
    import tempfile

    from tfnas.export import FORMATS, load_export
    from tfnas.genotypes.files import resolve_genotype

    folder = Path(tempfile.mkdtemp())
    cmd = [sys.executable, __file__, "--export-to", str(folder), "--settings", json.dumps(s)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"export for scoring failed:\n{proc.stderr[-3000:]}")
    batch = s["train_batch"]
    ids, targets = (t.numpy() for t in _batch(batch, s["bptt"], s["vocab"], 0))
    models = {fmt: load_export(folder / "export" / fmt) for fmt in FORMATS}
    steps = {f"score_{fmt}": (lambda m=model: m.log_probs(ids, targets, m.initial_state(batch)))
             for fmt, model in models.items()}
    seconds = _interleaved(steps, s["warmup"], s["timed"] * SCORE_REPEAT)
    flops = genotype_forward_flops(s["train_nhid"], s["vocab"], resolve_genotype("darts_v2").steps)
    return {name: _figures(name, seconds[name], batch * s["bptt"], flops) for name in steps}


def run_bayesnas(s: dict) -> dict[str, dict]:
    """BayesNAS' search step and its Hessian pass over the same windows, timed in interleaved rounds.

    `BayesNasConfig`'s defaults (the search setting: 12 nodes, batch norm,
    the preset's dropouts) at ``search_nhid`` / ``search_batch``. A round is
    ``bayes_windows`` compiled steps, the states carried from zeros through
    the windows as the search carries them, then one `scalar_hessian` call
    over the same windows, as `BayesNasSearch.on_epoch_end` makes it (its
    tracing included). Figures are per window.
    """
    import tensorflow as tf

    from tfnas.strategies.one_shot.bayes_hessian import scalar_hessian
    from tfnas.strategies.one_shot.bayesnas import BayesNasConfig, BayesNasSearch

    nhid, batch, count = s["search_nhid"], s["search_batch"], s["bayes_windows"]
    defaults = BayesNasConfig()
    config = BayesNasConfig(model=dataclasses.replace(defaults.model, emsize=nhid, nhid=nhid), batch_size=batch,
                            bptt=s["bptt"])
    search = BayesNasSearch(config)
    search.build(s["vocab"])
    windows = [_batch(batch, s["bptt"], s["vocab"], seed) for seed in range(count)]
    lr = tf.constant(config.lr, tf.float32)

    def search_steps() -> None:
        states = search.model.initial_state(batch)
        for inputs, targets in windows:
            logs, states = search.compiled_step((inputs, targets, states), lr)
        logs["loss"].numpy()

    inputs = [w[0] for w in windows]
    rounds = {"bayes_step": search_steps, "bayes_hessian": lambda: scalar_hessian(search.model, inputs)}
    seconds = _interleaved(rounds, BAYES_WARMUP_ROUNDS, s["timed"])
    flops = {"bayes_step": 3 * darts_search_forward_flops(nhid, s["vocab"], config.steps),
             "bayes_hessian": bayes_hessian_flops(nhid, s["vocab"], config.steps)}
    return {name: _figures(name, seconds[name] / count, batch * s["bptt"], flops[name]) for name in rounds}


def nao_baseline_model(vocab: int, embed: int, hidden: int):
    """``lstm_nao``: token embedding, a ``keras.layers.LSTM`` of ``hidden`` units, a dense layer to the tokens."""
    import keras

    return keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(vocab, embed),
                             keras.layers.LSTM(hidden, return_sequences=True), keras.layers.Dense(vocab)])


def run_nao(s: dict) -> dict[str, dict]:
    """An epoch of NAO's EPD training against ``lstm_nao`` (module docstring), in interleaved rounds.

    ``nao_cells`` distinct random cells of `NaoConfig`'s space (11 nodes)
    with uniform random scores, the EPD and its trainer as `make_epd_trainer`
    makes them (PTB sizes, batch 100). After the rounds, with ``nao_fit``,
    ``nao_epochs`` epochs are timed in one `NaoTrainer.fit` call, as a search
    iteration trains the EPD; otherwise they are projected from the median
    epoch.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from tfnas.policies.nao import NaoTokens, make_epd_trainer
    from tfnas.strategies.black_box.loop import make_space
    from tfnas.strategies.black_box.nao import NaoConfig

    config = NaoConfig()
    space = make_space(config)
    tokens = NaoTokens(space)
    rng = np.random.default_rng(0)
    ids = tokens.encode_many(space.sample_unique(s["nao_cells"], rng))
    scores = rng.random(len(ids)).astype(np.float32)
    trainer = make_epd_trainer(config, tokens, seed=0)
    batch = config.epd_batch_size

    baseline = nao_baseline_model(tokens.vocab_size, config.epd_embed, config.epd_hidden)
    optimizer = keras.optimizers.Adam(config.epd_lr, global_clipnorm=config.epd_clip)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def baseline_step(x):
        with tf.GradientTape() as tape:
            loss = loss_fn(x, baseline(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, baseline.trainable_variables),
                                      baseline.trainable_variables))
        return loss

    batches = [tf.constant(ids[start:start + batch]) for start in range(0, len(ids), batch)]
    epoch = itertools.count()

    def baseline_epoch() -> None:
        for x in batches:
            loss = baseline_step(x)
        loss.numpy()

    rounds = {"nao_epd": lambda: trainer.fit(ids, scores, 1, batch, [0, next(epoch)]), "lstm_nao": baseline_epoch}
    seconds = _interleaved(rounds, s["warmup"], s["timed"] * NAO_REPEAT)
    flops = {"nao_epd": 3 * epd_forward_flops(config.epd_embed, config.epd_hidden, config.epd_mlp, tokens.vocab_size,
                                              tokens.length),
             "lstm_nao": 3 * lstm_forward_flops(config.epd_hidden, tokens.vocab_size, config.epd_embed)}
    results = {name: _figures(name, seconds[name], ids.size, flops[name]) for name in rounds}
    results["nao_epd"].update(cells=len(ids), epochs=s["nao_epochs"],
                              epochs_projected_s=s["nao_epochs"] * seconds["nao_epd"])
    if s["nao_fit"]:
        start = time.perf_counter()
        trainer.fit(ids, scores, s["nao_epochs"], batch, [1, 0])
        results["nao_epd"]["epochs_measured_s"] = time.perf_counter() - start
    return results


#: The recurrent layers of the ``layer`` group's Sequential model, by case prefix, and those also timed with XLA.
LAYER_KINDS = ("lstm", "fused", "fused_while", "rnn")
LAYER_XLA_KINDS = ("lstm", "fused")


def layer_model(kind: str, units: int, vocab: int, jit_compile: bool | str = "auto"):
    """A user's Sequential language model: Embedding(vocab, units), a recurrent layer of ``units`` returning
    sequences (``kind``: ``lstm`` keras.layers.LSTM, ``fused`` `FusedRNN` over DARTS_V2, ``fused_while`` the
    same with ``jit_compile=False``, ``rnn``
    keras.layers.RNN(GenotypeCell) over DARTS_V2), Dense(vocab); compiled with Keras' defaults (SGD, sparse
    cross-entropy from logits) and ``jit_compile``."""
    import keras

    from tfnas.cells import FusedRNN, GenotypeCell

    recurrent = {"lstm": lambda: keras.layers.LSTM(units, return_sequences=True),
                 "fused": lambda: FusedRNN("darts_v2", units, return_sequences=True),
                 "fused_while": lambda: FusedRNN("darts_v2", units, return_sequences=True, jit_compile=False),
                 "rnn": lambda: keras.layers.RNN(GenotypeCell("darts_v2", units), return_sequences=True)}[kind]()
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(vocab, units), recurrent,
                              keras.layers.Dense(vocab)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    return model


def run_layers(s: dict) -> dict[str, dict]:
    """The ``layer`` group (module docstring): at each of ``layer_units``, the Sequential models of `layer_model`
    and the Trainer's step, timed in interleaved rounds; a figure records whether Keras compiled the model's
    step with XLA (``jit_compile``: True for the ``_xla`` models; Keras' ``"auto"`` of the others chooses XLA on
    a GPU only)."""
    from tfnas.genotypes.files import resolve_genotype

    v2 = resolve_genotype("darts_v2")
    batch, results = s["layer_batch"], {}
    for units in s["layer_units"]:
        x, y = (t.numpy() for t in _batch(batch, s["bptt"], s["vocab"], 0))
        models = {f"{kind}_layer_{units}": layer_model(kind, units, s["vocab"]) for kind in LAYER_KINDS}
        models.update({f"{kind}_layer_{units}_xla": layer_model(kind, units, s["vocab"], jit_compile=True)
                       for kind in LAYER_XLA_KINDS})
        steps = {name: (lambda m=model: m.train_on_batch(x, y)) for name, model in models.items()}
        steps[f"genotype_layer_{units}"] = _trainer_step(v2, units, batch, s)
        seconds = _interleaved(steps, s["warmup"], s["timed"])
        flops = {name: 3 * (lstm_forward_flops(units, s["vocab"]) if name.startswith("lstm")
                            else genotype_forward_flops(units, s["vocab"], v2.steps)) for name in steps}
        for name in steps:
            results[name] = _figures(name, seconds[name], batch * s["bptt"], flops[name])
            if name in models:
                results[name]["jit_compile"] = bool(models[name].jit_compile)
    return results


def _interleaved(steps: dict, warmup: int, rounds: int) -> dict[str, float]:
    """Median seconds of each step, timed in turn round after round (a slow phase hits all alike)."""
    import numpy as np

    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(warmup + rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def _peak_memory() -> dict[str, float]:
    """This process' peak resident memory and, where TensorFlow sees a GPU, its allocator's peak on GPU:0 (GB)."""
    import tensorflow as tf

    peaks = {"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}
    if tf.config.list_logical_devices("GPU"):
        peaks["peak_gpu_gb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 1024 ** 3
    return peaks


def _figures(case: str, seconds: float, tokens: int, flops_per_token: float) -> dict:
    return {"case": case, "s_per_step": seconds, "tokens_per_s": tokens / seconds,
            "gflops": flops_per_token * tokens / seconds / 1e9, **_peak_memory()}


def run_case(case: str, s: dict) -> dict[str, dict]:
    """Times one case (or group) in this process; returns the figures by case name."""
    if case == "score":
        return run_scoring(s)
    if case == "bayesnas":
        return run_bayesnas(s)
    if case == "nao":
        return run_nao(s)
    if case == "layer":
        return run_layers(s)
    if case in GROUPS:
        names, repeat = GROUPS[case]
        made = {name: _make_case(name, s) for name in names}
        seconds = _interleaved({name: m[0] for name, m in made.items()}, s["warmup"], s["timed"] * repeat)
        return {name: _figures(name, seconds[name], batch * s["bptt"], flops)
                for name, (_, batch, flops) in made.items()}
    if case.removesuffix("_memory") in MEMORY_CASES:
        name = case.removesuffix("_memory")
        step = _make_case(name, s)[0]
        for _ in range(s["warmup"]):
            step()
        return {name: {**_peak_memory(), "peak_rss_own_process": True}}
    step, batch, flops = _make_case(case, s)
    return {case: _figures(case, _time(step, s["warmup"], s["timed"]), batch * s["bptt"], flops)}


def split_case(case: str) -> tuple[str, bool, bool]:
    """``(plain case, xla, mixed)`` of a case name with its optional ``_xla`` and ``_mixed`` suffixes."""
    mixed = case.endswith("_mixed")
    case = case.removesuffix("_mixed")
    return case.removesuffix("_xla"), case.endswith("_xla"), mixed


def _make_case(case: str, s: dict):
    """``(step, batch size, FLOPs per token)`` of one case."""
    from tfnas.genotypes.files import resolve_genotype

    v2 = resolve_genotype("darts_v2")
    name, jit, mixed = split_case(case)
    trained = {"jit_compile": jit, "mixed_precision": mixed}
    if name == "lstm_search":
        return _trainer_step(None, s["search_nhid"], s["search_batch"], s, **trained), s["search_batch"], \
            3 * lstm_forward_flops(s["search_nhid"], s["vocab"])
    if name == "lstm_train":
        return _trainer_step(None, s["train_nhid"], s["train_batch"], s, **trained), s["train_batch"], \
            3 * lstm_forward_flops(s["train_nhid"], s["vocab"])
    if name == "genotype_train":
        return _trainer_step(v2, s["train_nhid"], s["train_batch"], s, **trained), s["train_batch"], \
            3 * genotype_forward_flops(s["train_nhid"], s["vocab"], v2.steps)
    if name in ("darts1", "darts2") and not mixed:
        order = int(name[-1])
        fwd = darts_search_forward_flops(s["search_nhid"], s["vocab"], s["steps"])
        # order 1: arch fwd+bwd on valid + weight fwd+bwd; order 2 adds the unrolled pass and two HVP passes.
        return _darts_step(order, s, jit), s["search_batch"], (6 if order == 1 else 15) * fwd
    raise ValueError(f"unknown case {case!r} (_mixed applies to lstm_search, lstm_train and genotype_train)")


def run_in_subprocess(case: str, quick: bool, overrides: dict | None = None,
                      timeout: float | None = None) -> dict[str, dict]:
    """Runs ``--case case`` in a process of its own; raises RuntimeError if it fails, `subprocess.TimeoutExpired`
    (the process killed) after ``timeout`` seconds."""
    cmd = [sys.executable, __file__, "--case", case] + (["--quick"] if quick else [])
    cmd += ["--settings", json.dumps(overrides)] if overrides else []
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine_info() -> dict:
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "machine": platform.machine(),
            "processor": platform.processor(), "cpus": os.cpu_count(), "node": platform.node(),
            "cpus_allowed": len(os.sched_getaffinity(0))}  # what the run could use (taskset)


def report(results: dict[str, dict]) -> list[str]:
    baseline = {"lstm_search": "lstm_search", "darts1": "lstm_search", "darts2": "lstm_search",
                "lstm_train": "lstm_train", "genotype_train": "lstm_train", "score_keras": "score_keras",
                "score_savedmodel": "score_keras", "score_onnx": "score_keras", "bayes_step": "bayes_step",
                "bayes_hessian": "bayes_step", "lstm_nao": "lstm_nao", "nao_epd": "lstm_nao",
                **{case: "lstm_layer_" + case.split("_layer_", 1)[1] for case in results if "_layer_" in case}}
    timed = {case: r for case, r in results.items() if "s_per_step" in r}
    width = max([16, *map(len, timed)])
    lines = [f"{'case':{width}s} {'s/step':>9s} {'tokens/s':>10s} {'GFLOP/s':>8s} {'peak GB':>8s} "
             f"{'x baseline':>11s}"]
    for case, r in timed.items():
        base = timed.get(baseline.get(case, baseline.get(split_case(case)[0], "")), None)
        ratio = f"{r['s_per_step'] / base['s_per_step']:.2f}x" if base else "-"
        peak = f"{r['peak_rss_gb']:.2f}" + ("*" if r.get("peak_rss_own_process") else "")
        lines.append(f"{case:{width}s} {r['s_per_step']:9.3f} {r['tokens_per_s']:10.0f} {r['gflops']:8.2f} "
                     f"{peak:>8s} {ratio:>11s}")
    for case, base, limit in TARGETS:
        if case in timed and base in timed:
            ratio = results[case]["s_per_step"] / results[base]["s_per_step"]
            lines.append(f"target {case} <= {limit}x {base}: {ratio:.2f}x -> {'met' if ratio <= limit else 'NOT met'}")
    for case in timed:
        units = case.removeprefix("fused_layer_")
        if units != case and f"genotype_layer_{units}" in timed:
            lines.append(f"ratio {case} / genotype_layer_{units} (the Trainer's step): "
                         f"{timed[case]['s_per_step'] / timed[f'genotype_layer_{units}']['s_per_step']:.2f}x")
    if "score_onnx" in timed and "score_keras" in timed:
        faster = results["score_onnx"]["s_per_step"] < results["score_keras"]["s_per_step"]
        lines.append(f"target ONNX Runtime scoring faster than Keras: {'met' if faster else 'NOT met'}")
    if "darts1" in results:
        peak = results["darts1"]["peak_rss_gb"]
        lines.append(f"target darts1 peak memory <= {PEAK_TARGET_GB} GB: {peak:.2f} GB -> "
                     f"{'met' if peak <= PEAK_TARGET_GB else 'NOT met'}")
    if "nao_epd" in timed:
        r = timed["nao_epd"]
        measured = "epochs_measured_s" in r
        total = r["epochs_measured_s"] if measured else r["epochs_projected_s"]
        how = (f"measured in one fit; {r['epochs_projected_s']:.0f} s projected" if measured
               else "projected: the median epoch x epochs")
        lines.append(f"target nao_epd {r['epochs']} epochs on {r['cells']} cells <= {NAO_TARGET_S:.0f} s: "
                     f"{total:.0f} s ({how}) -> {'met' if total <= NAO_TARGET_S else 'NOT met'}")
    return lines


def latest_run(folder: Path, cases: str) -> Path | None:
    """The latest full run of ``cases`` in ``folder`` (else the latest quick one); runs written before the
    ``cases`` field ran `DEFAULT_CASES`."""
    for mode in ("full", "quick"):
        runs = [p for p in sorted(folder.glob(f"bench-{mode}-*.json"))
                if json.loads(p.read_text(encoding="utf-8")).get("cases", DEFAULT_CASES) == cases]
        if runs:
            return runs[-1]
    return None


def markdown_table(path: Path) -> str:
    """The benchmarks page's table of one results file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    lines = report(data["results"])
    notes = ("target", "ratio")
    header, rows, targets = lines[0], lines[1:], [line for line in lines if line.startswith(notes)]
    rows = [r.split() for r in rows if not r.startswith(notes)]
    m = data["machine"]
    allowed = m.get("cpus_allowed", m["cpus"])  # runs before 2026-12-08 did not record it
    cpus = f"{m['cpus']} CPUs" if allowed == m["cpus"] else f"{allowed} of {m['cpus']} CPUs"
    out = [f"Run `{path.name}` (TensorFlow {m['tensorflow']}, {cpus}, {m['machine']}; "
           f"settings {json.dumps(data['settings'])}):", "",
           "| case | s/step | tokens/s | GFLOP/s | peak RSS GB | x same-run baseline |", "|---|---|---|---|---|---|"]
    out += [f"| {' | '.join(r)} |" for r in rows]
    out += ["", "Peak RSS is that of the process that ran the case's group; * marks a process that ran only "
            "that case."]
    if "bayes_step" in data["results"]:
        out.append("A `bayes_*` step is one window (`search_batch` x `bptt` tokens).")
    if any("_layer_" in case for case in data["results"]):
        out.append("A `*_layer_<units>` step is one `train_on_batch` of a Sequential model (`genotype_layer`: the "
                   "Trainer's step), `layer_batch` x `bptt` tokens.")
    if "nao_epd" in data["results"]:
        out.append("A `nao_epd` / `lstm_nao` step is one epoch over `nao_cells` cells (tokens: cells x string length).")
    out += [""] + [f"- {t}" for t in targets]
    del header
    return "\n".join(out)


def bench_settings(quick: bool, overrides: dict | None = None) -> dict:
    """`QUICK` or `FULL` with ``overrides`` (keys of theirs only)."""
    base = QUICK if quick else FULL
    unknown = sorted(set(overrides or {}) - set(base))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; known: {sorted(base)}")
    return {**base, **(overrides or {})}


def result_path(prefix: str) -> Path:
    """``benchmarks/results/<prefix>-<UTC timestamp>.json``."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return RESULTS / f"{prefix}-{stamp}.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--case", help="run one case in this process and print its JSON")
    parser.add_argument("--cases", default=DEFAULT_CASES, help="groups or cases to run (with --table: whose "
                                                                "latest run to print)")
    parser.add_argument("--settings", type=json.loads, default={},
                        help="JSON object overriding settings of FULL (QUICK with --quick), e.g. '{\"timed\": 20}'")
    parser.add_argument("--export-to", type=Path, help=argparse.SUPPRESS)  # the exports of the score case
    parser.add_argument("--table", action="store_true",
                        help="print the benchmarks page's table of the latest full run of --cases")
    args = parser.parse_args(argv)
    try:
        settings = bench_settings(args.quick, args.settings)
    except ValueError as err:
        parser.error(str(err))
    if args.table:
        runs = latest_run(RESULTS, args.cases)
        if runs is None:
            raise SystemExit(f"no results of --cases {args.cases} in {RESULTS}: run the benchmark first")
        print(markdown_table(runs))
        return 0
    if args.export_to:
        export_scoring_model(args.export_to, settings)
        return 0
    if args.case:
        print(json.dumps(run_case(args.case, settings)))
        return 0
    results = {}
    for case in args.cases.split(","):
        for name, figures in run_in_subprocess(case, args.quick, args.settings).items():
            results.setdefault(name, {}).update(figures)
            if "s_per_step" in figures:
                print(f"measured {name}: {figures['s_per_step']:.3f} s/step", flush=True)
            else:
                print(f"measured {name}: peak {figures['peak_rss_gb']:.2f} GB in a process of its own", flush=True)
    lines = report(results)
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = result_path(f"bench-{'quick' if args.quick else 'full'}")
    path.write_text(json.dumps({"cases": args.cases, "settings": settings, "machine": machine_info(),
                                "results": results, "report": lines}, indent=2), encoding="utf-8")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
