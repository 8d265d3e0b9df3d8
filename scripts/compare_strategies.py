"""Compares tfnas' search strategies against random cells and known baselines (`tfnas.compare`).

    python scripts/compare_strategies.py --config cpu_ptb --data-dir ../shared/data \
        --out runs/compare_ptb --plot runs/compare_ptb/comparison.png
    python scripts/compare_strategies.py --config paper_ptb --executor ray --ray-address auto --out runs/paper

Run it again with the same arguments to resume: finished searches and
retrainings are kept, interrupted ones resume from their checkpoints.
``--set KEY=VALUE`` overrides one setting of the preset (VALUE is YAML:
``--set seeds=[1,2] --set random_cells=4``); nested keys are dotted
(``--set train_overrides.max_steps=100``).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[1, 2]"]`` -> ``{"a": {"b": 1}, "c": [1, 2]}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        *parents, leaf = key.split(".")
        target = out
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = yaml.safe_load(text)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="a preset of configs/compare/ or a YAML file")
    parser.add_argument("--out", required=True, type=Path, help="the comparison folder (resumed if it exists)")
    parser.add_argument("--dataset", help="ptb, wikitext2 or a corpus folder (overrides the preset)")
    parser.add_argument("--data-dir", help="where the named corpora are")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    parser.add_argument("--executor", default="local", choices=("local", "ray"), help="where retrainings run")
    parser.add_argument("--ray-address", default="local", help="local, auto or HOST:PORT")
    parser.add_argument("--plot", type=Path, help="draw the test perplexities to this PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    from tfnas.callbacks import ProgressPrinter, TensorBoardLogger
    from tfnas.cli import USER_ERRORS
    from tfnas.compare import load_compare_config, markdown_table, run_comparison
    from tfnas.evaluation.executors import make_executor

    try:
        overrides = parse_sets(args.set)
        overrides.update({k: v for k, v in (("dataset", args.dataset), ("data_dir", args.data_dir)) if v})
        config = load_compare_config(args.config, overrides)
        executor = make_executor(args.executor, args.ray_address)
        try:
            report = run_comparison(
                config, args.out, executor,
                search_callbacks=lambda folder: ([] if args.quiet else [ProgressPrinter()])
                + [TensorBoardLogger(folder / "tensorboard")],
                message=(lambda text: None) if args.quiet else (lambda text: print(f"compare: {text}", flush=True)),
                plot_path=args.plot)
        finally:
            executor.close()
    except KeyboardInterrupt:
        print("compare: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        print(f"compare: error: {err}", file=sys.stderr)
        return 2
    print(markdown_table(report), end="")
    print(f"report: {args.out / 'comparison.json'}, {args.out / 'comparison.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
