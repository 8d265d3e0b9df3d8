"""Search a cell, train a language model around it and export it, from Python: the whole tfnas API in one page.

``tfnas.search`` and ``tfnas.train`` take what ``tfnas search`` and ``tfnas
train`` take (a strategy, a corpus, a run folder, a preset, and any setting
as a keyword) and give the same numbers; progress prints as
``keras.Model.fit`` does unless ``verbose=0``; Keras callbacks stop a run.
``tfnas.export`` writes a ``.keras`` file that ``keras.saving.load_model``
loads after ``import tfnas``.

Run it (a quick NASABN search and training on PTB, a few minutes on a CPU)::

    python examples/search_train_export.py --data ptb --out runs/example
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import keras

import tfnas


def run(data: str | Path, out: str | Path, search_preset: str | None = "quick_nasabn",
        train_preset: str | None = "quick_train", verbose: int = 1, **settings: Any) -> dict[str, Any]:
    """Searches with NASABN, trains the cell found (stopping early when validation stops improving), exports it
    and reloads the export; returns the genotype, the perplexities and the export's path. ``settings`` go to both
    the search and the training (the examples test makes them tiny)."""
    out = Path(out)
    found = tfnas.search("nasabn", data, out / "search", preset=search_preset, verbose=verbose, **settings)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)
    trained = tfnas.train(found.genotype, data, out / "train", preset=train_preset, verbose=verbose,
                          callbacks=[stop], **settings)
    paths = tfnas.export(trained, out / "export", formats="keras", verbose=verbose)
    model = keras.saving.load_model(paths["keras"])
    return {"genotype": found.genotype, "search_valid_ppl": found.valid_ppl, "valid_ppl": trained.best_valid_ppl,
            "test_ppl": trained.test_ppl, "keras": paths["keras"], "model": model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ptb", help="ptb, wikitext2, a folder or a text file")
    parser.add_argument("--out", default="runs/example", help="folder of the runs and the export")
    args = parser.parse_args()
    report = run(args.data, args.out)
    print(f"genotype: {report['genotype'].to_json()}")
    print(f"best valid ppl {report['valid_ppl']:.2f} | test ppl {report['test_ppl']:.2f} | {report['keras']}")


if __name__ == "__main__":
    main()
