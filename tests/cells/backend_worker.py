"""The frozen cells, heads and `FusedRNN` under one Keras backend, for tests/cells/test_backends.py.

``KERAS_BACKEND=jax|torch python backend_worker.py DIR`` reads ``DIR/inputs.npz`` (the inputs and every
layer's weights, written under TensorFlow) and ``DIR/tensorflow.keras`` (a model saved under TensorFlow),
with ``tensorflow`` made unimportable first (a machine with PyTorch or JAX may have no TensorFlow), and
writes ``DIR/<backend>.npz``: each layer's outputs, the gradients of the sum of the DARTS_V2 RNN's outputs
with respect to its weights (PyTorch autograd, or ``jax.grad`` of the layer's ``stateless_call``), and the
outputs of the loaded model; and ``DIR/<backend>.keras``, the same model built and saved under this backend.

The test imports `layers` and `model` from here, so both processes build the same layers.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":
    sys.modules["tensorflow"] = None  # `import tensorflow` raises ImportError from here on

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfnas  # noqa: E402,F401  (registers tfnas' layers with Keras, for load_model)
from tfnas.cells import FusedRNN, GenotypeCell, TreeCell, make_attention  # noqa: E402
from tfnas.genotypes.base import ATTENTION_HEADS  # noqa: E402

BATCH, STEPS, INPUT_DIM, UNITS = 2, 5, 6, 8
#: The layer whose gradients are compared.
GRADIENT_LAYER = "darts_v2"
HEADS = ATTENTION_HEADS


def layers() -> dict[str, keras.layers.Layer]:
    """Every layer under test, unbuilt: recurrent layers read ``[BATCH, STEPS, INPUT_DIM]``, heads
    ``[BATCH, STEPS, UNITS]``."""
    out = {name: keras.layers.RNN(GenotypeCell(name, UNITS), return_sequences=True) for name in ("darts_v2", "enas")}
    out["nascell"] = keras.layers.RNN(TreeCell("nascell", UNITS, use_bias=True), return_sequences=True)
    # FusedRNN: the fused loop under TensorFlow, Keras' loop under the others
    out["fused_darts_v2"] = FusedRNN("darts_v2", UNITS, return_sequences=True)
    out["fused_general_backwards"] = FusedRNN("darts_v2", UNITS, attention="general", return_sequences=True,
                                              go_backwards=True)
    for head in HEADS:
        out[head] = make_attention(head, UNITS, num_heads=2, attention_units=5)
    return out


def is_head(name: str) -> bool:
    return name in HEADS


def model() -> keras.Model:
    """A DARTS_V2 layer, a `FusedRNN` over it, a tree cell over that and the additive head, for ``.keras``
    files."""
    inputs = keras.Input((None, INPUT_DIM))
    h = keras.layers.RNN(GenotypeCell("darts_v2", UNITS), return_sequences=True)(inputs)
    h = FusedRNN("enas", UNITS, return_sequences=True)(h)
    h = keras.layers.RNN(TreeCell("nascell", UNITS), return_sequences=True)(h)
    return keras.Model(inputs, make_attention("additive", UNITS, attention_units=5)(h))


def weights_of(arrays: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """The weights ``prefix:0``, ``prefix:1``, ... of ``arrays``, in order."""
    count = sum(1 for key in arrays if key.startswith(prefix + ":"))
    return [arrays[f"{prefix}:{i}"] for i in range(count)]


def gradients(layer: keras.layers.Layer, x: np.ndarray) -> list[np.ndarray]:
    """d sum(layer(x)) / d w for every trainable weight, by the backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "torch":
        loss = keras.ops.sum(layer(x))
        loss.backward()
        return [w.value.grad.cpu().numpy() for w in layer.trainable_weights]
    if backend == "jax":
        import jax

        others = [v.value for v in layer.non_trainable_variables]

        def loss(trainable):
            out, _ = layer.stateless_call(trainable, others, x)
            return keras.ops.sum(out)

        return [np.asarray(g) for g in jax.grad(loss)([v.value for v in layer.trainable_variables])]
    raise ValueError(f"no gradient path for backend {backend!r}")


def main(folder: Path) -> None:
    backend = keras.backend.backend()
    arrays = dict(np.load(folder / "inputs.npz"))
    results = {}
    for name, layer in layers().items():
        x = arrays["h"] if is_head(name) else arrays["x"]
        layer(x)  # builds it
        layer.set_weights(weights_of(arrays, name))
        results[f"out:{name}"] = keras.ops.convert_to_numpy(layer(x))
        if name == GRADIENT_LAYER:
            for i, g in enumerate(gradients(layer, x)):
                results[f"grad:{i}"] = g
    loaded = keras.saving.load_model(folder / "tensorflow.keras")
    results["loaded"] = keras.ops.convert_to_numpy(loaded(arrays["x"]))
    own = model()
    own.set_weights(weights_of(arrays, "model"))
    own.save(folder / f"{backend}.keras")
    results["tensorflow_loaded"] = np.array("tensorflow" in sys.modules and sys.modules["tensorflow"] is not None)
    np.savez(folder / f"{backend}.npz", **results)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
