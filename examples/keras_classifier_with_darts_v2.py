"""A discovered cell in your own model: a Keras sequence classifier around the DARTS V2 cell.

Needs nothing but ``pip install tfnas``. The cell is built from its genotype's
name (``darts_v2``, shipped with tfnas; the path of any genotype JSON written
by a search works the same way) and dropped into ``keras.layers.RNN`` like
any Keras cell. The model is trained for a few epochs on a toy task (does
token 7 occur in the sequence?), saved as ``.keras`` and loaded back with
``keras.saving.load_model``; ``import tfnas`` is all loading needs.

Run it::

    python examples/keras_classifier_with_darts_v2.py --out /tmp/darts_v2_classifier.keras
"""
from __future__ import annotations

import argparse
from pathlib import Path

import keras
import numpy as np

import tfnas  # noqa: F401  (Keras finds tfnas' layers by name once tfnas is imported)
from tfnas.cells import GenotypeCell

VOCAB, MARKER = 20, 7


def build_classifier(vocab_size: int = VOCAB, units: int = 32, num_classes: int = 2, seed: int = 0) -> keras.Model:
    """Embedding -> RNN(DARTS V2 cell) -> softmax, as a functional model."""
    cell = GenotypeCell("darts_v2", units, seed=seed)
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, units, name="embedding")(tokens)
    h = keras.layers.RNN(cell, name="darts_v2_rnn")(x)  # the last output
    probs = keras.layers.Dense(num_classes, activation="softmax", name="classes")(h)
    return keras.Model(tokens, probs, name="darts_v2_classifier")


def make_data(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random sequences; the label says whether token `MARKER` occurs (about half of them)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, VOCAB, (n, length))
    x[x == MARKER] = MARKER + 1
    positive = rng.random(n) < 0.5
    x[positive, rng.integers(0, length, int(positive.sum()))] = MARKER
    return x.astype("int32"), positive.astype("int32")


def run(out: str | Path, epochs: int = 6, n: int = 512, length: int = 12, seed: int = 0) -> dict[str, float]:
    """Trains, saves to ``out`` (.keras), reloads; returns accuracy and the reload difference."""
    keras.utils.set_random_seed(seed)
    x, y = make_data(n, length, seed)
    x_test, y_test = make_data(256, length, seed + 1)
    model = build_classifier(seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    reloaded = keras.saving.load_model(out)
    diff = float(np.max(np.abs(model.predict(x_test, verbose=0) - reloaded.predict(x_test, verbose=0))))
    return {"accuracy": float(accuracy), "reload_max_abs_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="darts_v2_classifier.keras", help="where to save the model")
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    report = run(args.out, epochs=args.epochs)
    print(f"test accuracy {report['accuracy']:.3f} | max |saved - reloaded| {report['reload_max_abs_diff']:.2g} "
          f"| saved to {args.out}")


if __name__ == "__main__":
    main()
