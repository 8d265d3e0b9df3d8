"""Helpers shared by the tests: NumPy references of the cell equations, a crash simulator, checkpoint reading,
checks of attention heads, a fresh interpreter, tiny search settings of every strategy.

Importable as ``support`` because pytest puts ``tests/`` (the folder of the
root conftest.py) on ``sys.path``.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
import tensorflow as tf

from tfnas.callbacks import Callback
from tfnas.evaluation.evaluators import Evaluator
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import AnyGenotype
from tfnas.policies.controller import Policy

#: The repository, whose ``tfnas`` an interpreter started there imports.
REPOSITORY = Path(__file__).resolve().parents[1]

#: The activations of the DAG space (and ``none``) in NumPy.
ACT = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
       "identity": lambda v: v, "none": np.zeros_like}


def fresh_python(code: str, *args: str) -> str:
    """The standard output of ``python -c code args`` run in the repository: a fresh interpreter, in which nothing
    this test process imported is loaded yet (``code`` may be indented)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPOSITORY, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_without_tensorflow(argv):
    """``tfnas argv`` in a fresh interpreter: its exit status and standard output; fails if it loaded TensorFlow or
    Keras."""
    printed = fresh_python("""
        import contextlib, io, json, sys
        from tfnas.cli import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                code = main(sys.argv[1:])
            except SystemExit as exit:
                code = exit.code
        print(json.dumps({"code": code, "out": out.getvalue(),
                          "loaded": [m for m in ("tensorflow", "keras") if m in sys.modules]}))
    """, *argv)
    result = json.loads(printed.splitlines()[-1])
    assert result["loaded"] == [], f"tfnas {' '.join(argv)} loaded {result['loaded']}"
    return result["code"], result["out"]


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def numpy_step(g: Genotype, W0, Ws, x, h, mx=1.0, mh=1.0) -> np.ndarray:
    """DARTS appendix A.1.2 written out node by node, with the masks of the reference code."""
    d, u = x.shape[1], h.shape[1]
    if g.first_node == "wenet":
        c0 = sigmoid((x * mx) @ W0[:d])
        h0 = np.tanh((h * mh) @ W0[d:])
    else:
        ch = np.concatenate([x * mx, h * mh], axis=1) @ W0
        c0, h0 = sigmoid(ch[:, :u]), ACT[g.first_activation](ch[:, u:])
    s = [h + c0 * (h0 - h)]
    for i, (act, j) in enumerate(g.nodes):
        ch = (s[j] * mh) @ Ws[i]
        s.append(s[j] + sigmoid(ch[:, :u]) * (ACT[act](ch[:, u:]) - s[j]))
    return np.mean([s[i] for i in g.concat], axis=0)


def log_softmax(logits):
    """``log softmax`` over the last axis, in float64 (the reference of the scoring heads)."""
    x = np.asarray(logits, np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def picked_log_probs(logits, targets):
    """``log_softmax(logits)[b, t, targets[b, t]]`` in float64."""
    return np.take_along_axis(log_softmax(logits), np.asarray(targets)[..., None].astype(np.int64), -1)[..., 0]


def numpy_norm(s, norm, eps=1e-5):
    """BatchNorm1d(affine=False) with batch statistics, LayerNorm without affine, or nothing."""
    if norm == "none":
        return s
    axis = 0 if norm == "batch" else 1
    mean = s.mean(axis=axis, keepdims=True)
    var = ((s - mean) ** 2).mean(axis=axis, keepdims=True)  # biased, as used for normalising
    return (s - mean) / np.sqrt(var + eps)


class Kill(Callback):
    """Simulates a killed process: raises on the first ``kind`` event whose logs match ``match``."""

    def __init__(self, kind, **match):
        self.kind, self.match = kind, match

    def on_event(self, kind, logs):
        if kind == self.kind and all(logs.get(k) == v for k, v in self.match.items()):
            raise KeyboardInterrupt(f"killed at {kind} {self.match}")


def latest_checkpoint_arrays(out: Path) -> dict:
    """The arrays of the newest checkpoint of a run or search folder (variable names left out:
    Keras gives them per-process suffixes)."""
    latest = (Path(out) / "checkpoints" / "latest").read_text().strip()
    data = np.load(Path(out) / "checkpoints" / latest / "variables.npz")
    return {k: data[k] for k in data.files if k != "__names__"}


class Var:
    """A variable without TensorFlow: what `tfnas.runs.checkpoint` needs (``numpy``, ``assign``, ``shape``, a name)."""

    def __init__(self, name: str, value: Any):
        self.name = name
        self.value = np.array(value)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    def numpy(self) -> np.ndarray:
        return self.value.copy()

    def assign(self, value: Any) -> None:
        self.value = np.array(value, dtype=self.value.dtype)


class SyntheticEvaluator:
    """A cheap, deterministic stand-in objective for tests and benchmarks of search strategies.

    The "perplexity" of a genotype is ``floor * scale^(mismatches)``, where
    ``mismatches`` counts the choice positions of ``space.encode(genotype)``
    that differ from ``target``: one best architecture, a smooth landscape.

    Args:
        space: the search space (`DagSpace` or `TreeSpace`).
        target: the choice indices of the best architecture.
        floor: its perplexity.
        scale: factor per wrong choice.
    """

    def __init__(self, space: Any, target: Sequence[int], floor: float = 60.0, scale: float = 1.1):
        self.space = space
        self.target = [int(t) for t in target]
        self.floor = float(floor)
        self.scale = float(scale)

    def evaluate(self, genotypes: Sequence[AnyGenotype]) -> list[float]:
        out = []
        for g in genotypes:
            tokens = self.space.encode(g)
            wrong = sum(int(a != b) for a, b in zip(tokens, self.target))
            out.append(self.floor * self.scale ** wrong)
        return out


class FailingEvaluator:
    """Wraps an evaluator and raises on the first ``failures`` calls (tests of retries)."""

    def __init__(self, inner: Evaluator, failures: int = 1):
        self.inner = inner
        self.failures = failures

    def evaluate(self, genotypes: Sequence[AnyGenotype]) -> list[float]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("simulated evaluation failure")
        return self.inner.evaluate(genotypes)


class CategoricalPolicy(Policy):
    """Independent categorical choices: ``p(a) = prod_p softmax(theta_p)[a_p]`` (a tiny policy).

    The reference for tests of the REINFORCE estimator, and an ablation of
    the LSTM controller.
    """

    def build(self, input_shape=None):
        self.logits = self.add_weight(name="logits", shape=(self.total_choices,), initializer=self._init(0))
        self.built = True

    def _start(self, n):
        return n

    def _step(self, p, n):
        off, k = self.offsets[p], self.token_choices[p]
        return tf.tile(self.logits[None, off:off + k], tf.stack([n, 1])), n

    def _feed(self, p, a, n):
        return n


# ------------------------------------------------ attention heads and their mixture
def attention_inputs(seed: int = 0, batch: int = 2, time: int = 6, units: int = 8) -> np.ndarray:
    """RNN outputs ``[batch, time, units]`` drawn from N(0, 1), float32."""
    return np.random.default_rng(seed).normal(size=(batch, time, units)).astype("float32")


def randomise(layer, seed: int = 1, scale: float = 0.5):
    """Draws every weight of ``layer`` (a mixture's ``alpha`` too) from U(-scale, scale); returns the layer."""
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.uniform(-scale, scale, w.shape).astype("float32"))
    return layer


def built(layer, x):
    """``layer`` after one call on ``x`` (which builds it)."""
    layer(x)
    return layer


def assert_causal(layer, H: np.ndarray, own_step_only: bool = False, noise_seed: int = 9) -> None:
    """Changing ``h_p`` leaves ``y_t`` (t < p) unchanged and changes ``y_t`` for every t >= p (only ``y_p``
    if ``own_step_only``: a head that returns its input)."""
    Y = layer(H).numpy()
    batch, time, units = H.shape
    noise = np.random.default_rng(noise_seed).normal(size=(batch, units)).astype("float32")
    for p in range(time):
        H2 = H.copy()
        H2[:, p] += noise
        Y2 = layer(H2).numpy()
        np.testing.assert_allclose(Y2[:, :p], Y[:, :p], atol=1e-6, rtol=0)
        change = np.abs(Y2 - Y).max(axis=(0, 2))
        later = change[p:p + 1] if own_step_only else change[p:]
        assert later.min() > 1e-3, (p, change)
        if own_step_only:
            assert change[p + 1:].max(initial=0.0) == 0.0


def assert_onnx_parity(layer, units: int, name: str) -> None:
    """tf2onnx's conversion of a built ``[batch, time, units]`` layer, run by onnxruntime on two input shapes
    (``attention_inputs(23 + time)``), equals the layer to 1e-5."""
    tf2onnx = pytest.importorskip("tf2onnx")
    ort = pytest.importorskip("onnxruntime")

    @tf.function(input_signature=[tf.TensorSpec([None, None, units], tf.float32, name="h")])
    def fn(h):
        return layer(h)

    proto, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=17)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch, time in ((3, 5), (1, 11)):
        x = attention_inputs(23 + time, batch=batch, time=time, units=units)
        got = session.run(None, {"h": x})[0]
        np.testing.assert_allclose(got, layer(x).numpy(), atol=1e-5, err_msg=name)


def run_with_masks(cell, x, rates):
    """Runs ``CellRNN(cell)`` on ``x`` in training and returns ``(outputs, x mask, h mask)``.

    The masks are those the layer drew, recovered by drawing them again from
    a copy of its seed state; each is checked to be inverted dropout of its
    rate in ``rates`` (kept units scaled by 1 / (1 - rate), some dropped).
    """
    import tensorflow as tf

    from tfnas.cells import CellRNN

    state = cell.seed_generator.state.numpy().copy()
    out, _ = CellRNN(cell)(x, training=True)
    cell.seed_generator.state.assign(state)
    mx = cell.get_dropout_mask(tf.constant(x[:, 0])).numpy()
    mh = cell.get_recurrent_dropout_mask(tf.zeros((x.shape[0], cell.units))).numpy()
    cell.reset_dropout_mask()
    cell.reset_recurrent_dropout_mask()
    for mask, rate in zip((mx, mh), rates):
        kept = mask[mask != 0]
        np.testing.assert_allclose(kept, 1 / (1 - rate), rtol=1e-6)
        assert 0 < kept.size < mask.size
    return out, mx, mh


def assert_same_checkpoints(a: Path, b: Path) -> None:
    """The newest checkpoints of two run folders hold the same arrays, bit for bit."""
    arrays_a, arrays_b = latest_checkpoint_arrays(a), latest_checkpoint_arrays(b)
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)


def computed_record(path: Path) -> Any:
    """A search's record file (``wenet_state.json``, ``rounds.jsonl``, ``trials.jsonl``) without its clock: its JSON
    (a list of the lines' for JSON lines), ``spent_s`` (the seconds spent, which depend on the machine) left out at
    every level."""
    def drop(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if k != "spent_s"}
        return [drop(v) for v in value] if isinstance(value, list) else value

    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [drop(json.loads(line)) for line in text.splitlines() if line.strip()]
    return drop(json.loads(text))


def write_ascending_corpus(folder: Path) -> Path:
    """A small learnable corpus folder (30 words in ascending runs), for module-scoped fixtures."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(29)] + ["<unk>"]
    folder.mkdir()
    for split, lines in (("train", 400), ("valid", 60), ("test", 60)):
        rows = []
        for _ in range(lines):
            start, length = rng.integers(0, 30), rng.integers(3, 12)
            rows.append(" ".join(words[(start + k) % 30] for k in range(length)))
        (folder / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


# ------------------------------------------------ tiny searches of every strategy
_TINY_MODEL = {"emsize": 8, "nhid": 8, "dropout": 0.1, "dropouth": 0.1, "dropoutx": 0.1, "dropouti": 0.1,
               "dropoute": 0.0}
_TINY_LOOP = {"batch_size": 4, "eval_batch_size": 4, "bptt": 8, "max_steps": 8, "epochs": 5, "log_interval": 1,
              "checkpoint_interval": 2, "max_eval_batches": 2, "model": _TINY_MODEL}
_TINY_EPD = {"epd_embed": 8, "epd_hidden": 16, "epd_decoder_hidden": 16, "epd_mlp": [16], "epd_epochs": 3,
             "epd_batch_size": 4, "epd_lr": 5e-3}
_TINY_CHILD = {"child": {"model": _TINY_MODEL, "batch_size": 4, "eval_batch_size": 4, "bptt": 8, "max_steps": 3,
                         "max_eval_batches": 2, "log_interval": 1, "checkpoint_interval": 2}}
#: Settings of every strategy of `tfnas.strategies.registry` that search a few steps on the ascending corpus in
#: seconds (over each config class's defaults; ``dataset`` is set by `tiny_search_config`). The resume, kill and
#: refusal suites run every strategy named here; tests/strategies/test_registry.py demands a row for each.
TINY_SEARCH: dict[str, dict[str, Any]] = {
    "darts": {**_TINY_LOOP, "steps": 2},
    "nasabn": {**_TINY_LOOP, "steps": 2},
    "bayesnas": {**_TINY_LOOP, "steps": 2, "batch_size": 8, "hessian_batches": 1, "arch_lr": 0.01},
    "enas": {**_TINY_LOOP, "steps": 2, "controller_interval": 3, "controller_steps": 1, "samples_per_update": 2,
             "derive_samples": 3, "derive_batches": 1, "controller_units": 8, "controller_lr": 0.01},
    "nao_ws": {**_TINY_LOOP, **_TINY_EPD, "steps": 2, "pool_interval": 3, "pool_size": 8, "seed_archs": 3,
               "new_archs": 3, "random_archs": 1, "max_step_size": 3, "derive_samples": 3, "derive_batches": 1},
    "rsws": {**_TINY_LOOP, "steps": 2, "select_rounds": 2, "round_size": 4, "score_batch_size": 4, "score_batches": 2,
             "rescore_top": 2, "preview_cells": 2, "derive_batches": 1},
    "wenet": {**_TINY_LOOP, "steps": 2, "pool_size": 4, "network_batch": 2, "seed_size": 1, "max_steps": 4,
              "norm": "none", "lr": 0.01},
    "random": {"space": "dag", "steps": 2, "max_trials": 4, "trials_per_round": 2, **_TINY_CHILD},
    "reinforce": {"space": "dag", "steps": 2, "max_trials": 4, "trials_per_round": 2, "controller_units": 8,
                  **_TINY_CHILD},
    "nao": {"steps": 2, "initial_archs": 2, "seed_archs": 2, "iterations": 2, **_TINY_EPD, **_TINY_CHILD},
}


def tiny_search_config(strategy: str, dataset: Path, **overrides: Any) -> Any:
    """The `TINY_SEARCH` config of ``strategy`` on the corpus folder ``dataset``, with ``overrides`` merged in
    (nested ones key by key)."""
    from tfnas.settings import merge
    from tfnas.strategies.registry import get_strategy

    return merge(get_strategy(strategy).make_config({**TINY_SEARCH[strategy], "dataset": str(dataset)}), overrides)


def write_config_file(path: Path, config: Any) -> Path:
    """``config`` (a settings dataclass) as a file for ``--config`` (JSON, which YAML reads)."""
    import dataclasses
    import json

    path.write_text(json.dumps(dataclasses.asdict(config)), encoding="utf-8")
    return path
