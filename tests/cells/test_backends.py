"""The frozen cells, heads and `FusedRNN` on the JAX and PyTorch backends give the TensorFlow backend's numbers.

The reference is the TensorFlow backend (this process), itself checked against NumPy for DARTS_V2
(`support.numpy_step`, the cell's equations). Each other installed backend runs `backend_worker.py` once
in a subprocess, without TensorFlow, on the same inputs and weights: every layer's outputs, the gradients
of one cell and the ``.keras`` files saved under either side are compared here to 1e-5. A backend that is
not installed is skipped (CI installs both: ``pip install -e ".[backends]"``).
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnas.genotypes import resolve_genotype

from support import REPOSITORY, numpy_step

WORKER_PATH = Path(__file__).with_name("backend_worker.py")
_spec = importlib.util.spec_from_file_location("backend_worker", WORKER_PATH)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

BACKENDS = ("jax", "torch")
TOLERANCE = 1e-5
#: XLA compiles each op of JAX's eager calls: without its optimisation passes the worker takes 11 s instead of 45 s
#: on one CPU core (these layers run a few steps once, the numbers are the same to float rounding).
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the reference is the TensorFlow backend; this process runs "
                                       f"{keras.backend.backend()}")


def assign_random(layer: keras.layers.Layer, rng: np.random.Generator, name: str, arrays: dict) -> None:
    """Gives ``layer`` weights from ``rng`` and records them in ``arrays`` as ``name:i``."""
    values = [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(values)
    arrays.update({f"{name}:{i}": v for i, v in enumerate(values)})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The inputs, weights and TensorFlow outputs, in a folder the workers read."""
    folder = tmp_path_factory.mktemp("backends")
    rng = np.random.default_rng(27)
    x = rng.normal(size=(worker.BATCH, worker.STEPS, worker.INPUT_DIM)).astype("float32")
    h = rng.normal(size=(worker.BATCH, worker.STEPS, worker.UNITS)).astype("float32")
    arrays, outputs, layers = {"x": x, "h": h}, {}, worker.layers()
    for name, layer in layers.items():
        inputs = h if worker.is_head(name) else x
        layer(inputs)
        assign_random(layer, rng, name, arrays)
        outputs[name] = layer(inputs).numpy()
    cell_rnn = layers[worker.GRADIENT_LAYER]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(cell_rnn(x))
    grads = [g.numpy() for g in tape.gradient(loss, cell_rnn.trainable_weights)]
    model = worker.model()
    assign_random(model, rng, "model", arrays)
    model.save(folder / "tensorflow.keras")
    np.savez(folder / "inputs.npz", **arrays)
    return {"folder": folder, "x": x, "outputs": outputs, "grads": grads, "model": model(x).numpy(),
            "darts_v2": [arrays[f"darts_v2:{i}"] for i in range(2)]}


_results: dict[str, dict[str, np.ndarray]] = {}


@pytest.fixture(params=BACKENDS)
def backend(request, reference):
    """The worker's results under one backend (run once per backend), or a skip if it is not installed."""
    name = request.param
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"the {name} backend is not installed (pip install -e '.[backends]')")
    if name not in _results:
        folder = reference["folder"]
        env = {**os.environ, "KERAS_BACKEND": name, "PYTHONPATH": os.pathsep.join(
            [str(REPOSITORY), os.environ.get("PYTHONPATH", "")]),
               "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {FAST_XLA}".strip()}
        done = subprocess.run([sys.executable, str(WORKER_PATH), str(folder)], env=env, cwd=REPOSITORY,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-4000:]
        _results[name] = dict(np.load(folder / f"{name}.npz"))
    return name, _results[name]


def test_tensorflow_darts_v2_is_the_numpy_transcription(reference):
    """The reference itself: the TensorFlow DARTS_V2 layer, step by step from zero, against the equations."""
    W0, Ws = reference["darts_v2"]
    x = reference["x"]
    h = np.zeros((worker.BATCH, worker.UNITS), "float32")
    expected = []
    for t in range(worker.STEPS):
        h = numpy_step(resolve_genotype("darts_v2"), W0, Ws, x[:, t], h)
        expected.append(h)
    np.testing.assert_allclose(reference["outputs"]["darts_v2"], np.stack(expected, axis=1), atol=TOLERANCE)


def test_the_worker_runs_without_tensorflow(backend):
    name, results = backend
    assert not results["tensorflow_loaded"], f"the {name} worker imported TensorFlow"


@pytest.mark.parametrize("layer", list(worker.layers()))
def test_outputs_equal_tensorflow(backend, reference, layer):
    _, results = backend
    np.testing.assert_allclose(results[f"out:{layer}"], reference["outputs"][layer], atol=TOLERANCE)


def test_gradients_equal_tensorflow(backend, reference):
    """d sum(outputs) / d (W0, Ws) of the DARTS_V2 layer, by torch autograd or jax.grad against tf.GradientTape."""
    _, results = backend
    assert len(reference["grads"]) == 2
    for i, want in enumerate(reference["grads"]):
        assert np.abs(want).max() > 1e-3  # not a vanishing gradient that any code would match
        np.testing.assert_allclose(results[f"grad:{i}"], want, atol=TOLERANCE)


def test_keras_file_saved_under_tensorflow_loads(backend, reference):
    _, results = backend
    np.testing.assert_allclose(results["loaded"], reference["model"], atol=TOLERANCE)


def test_keras_file_saved_under_the_backend_loads_under_tensorflow(backend, reference):
    name, _ = backend
    loaded = keras.saving.load_model(reference["folder"] / f"{name}.keras")
    np.testing.assert_allclose(loaded(reference["x"]), reference["model"], atol=TOLERANCE)
