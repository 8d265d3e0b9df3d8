"""The ``tfnas`` command: it parses arguments and calls the library."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Errors that are the user's to fix: printed on one line, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, RuntimeError, OSError)

#: TrainConfig fields settable from the command line (flag name -> (field path, type)).
TRAIN_FLAGS: dict[str, tuple[str, type]] = {
    "epochs": ("epochs", int), "max_steps": ("max_steps", int), "batch_size": ("batch_size", int),
    "eval_batch_size": ("eval_batch_size", int), "test_batch_size": ("test_batch_size", int),
    "bptt": ("bptt", int), "lr": ("lr", float), "clip": ("clip", float), "wdecay": ("wdecay", float),
    "seed": ("seed", int), "log_interval": ("log_interval", int), "eval_interval": ("eval_interval", int),
    "checkpoint_interval": ("checkpoint_interval", int), "max_eval_batches": ("max_eval_batches", int),
    "nonmono": ("nonmono", int), "alpha": ("alpha", float), "beta": ("beta", float),
    "emsize": ("model.emsize", int), "nhid": ("model.nhid", int), "dropout": ("model.dropout", float),
    "dropouth": ("model.dropouth", float), "dropoutx": ("model.dropoutx", float),
    "dropouti": ("model.dropouti", float), "dropoute": ("model.dropoute", float),
}


#: Search settings settable from the command line; each applies to the strategies whose config has it.
SEARCH_FLAGS: dict[str, tuple[str, type]] = {
    "epochs": ("epochs", int), "max_steps": ("max_steps", int), "batch_size": ("batch_size", int),
    "eval_batch_size": ("eval_batch_size", int), "bptt": ("bptt", int), "lr": ("lr", float),
    "seed": ("seed", int), "log_interval": ("log_interval", int),
    "checkpoint_interval": ("checkpoint_interval", int), "max_eval_batches": ("max_eval_batches", int),
    "emsize": ("model.emsize", int), "nhid": ("model.nhid", int), "steps": ("steps", int),
    "order": ("order", int), "warmup_epochs": ("warmup_epochs", int), "arch_lr": ("arch_lr", float),
    "norm": ("norm", str),
    "pool_size": ("pool_size", int), "network_batch": ("network_batch", int),
    "seed_size": ("seed_size", int), "round_epochs": ("round_epochs", int),
    "space": ("space", str), "base": ("base", int), "executor": ("executor", str),
    "ray_address": ("ray_address", str), "max_trials": ("max_trials", int),
    "trials_per_round": ("trials_per_round", int), "evaluator": ("evaluator", str),
    "shared_weights": ("shared_weights", str), "child_steps": ("child.max_steps", int),
    "controller_lr": ("controller_lr", float), "controller_interval": ("controller_interval", int),
    "controller_steps": ("controller_steps", int), "derive_samples": ("derive_samples", int),
}


def _add_train_flags(parser: argparse.ArgumentParser, flags: dict[str, tuple[str, type]],
                     title: str = "training settings (override the preset)") -> None:
    group = parser.add_argument_group(title)
    for name, (_, kind) in flags.items():
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None)


def overrides_from_args(args: argparse.Namespace, flags: dict[str, tuple[str, type]]) -> dict[str, Any]:
    """Nested overrides (``{"model": {"nhid": 200}}``) from the flags that were given."""
    overrides: dict[str, Any] = {}
    for name, (path, _) in flags.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        *parents, leaf = path.split(".")
        target = overrides
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return overrides


def _train_config(args: argparse.Namespace):
    from tfnas.config import TrainConfig, load_preset, merge

    config = TrainConfig()
    if args.config:
        config = merge(config, load_preset(args.config))
    overrides = overrides_from_args(args, TRAIN_FLAGS)
    if args.dataset:
        overrides["dataset"] = args.dataset
    if args.data_dir:
        overrides["data_dir"] = str(args.data_dir)
    return merge(config, overrides)


def _callbacks(out: Path, quiet: bool = False):
    from tfnas.callbacks import ProgressPrinter, TensorBoardLogger

    callbacks = [] if quiet else [ProgressPrinter()]
    return callbacks + [TensorBoardLogger(out / "tensorboard")]


def cmd_train(args: argparse.Namespace) -> int:
    from tfnas.lm.trainer import Trainer
    from tfnas.genotypes.files import resolve_genotype

    genotype = None if args.genotype == "lstm" else resolve_genotype(args.genotype)
    config = _train_config(args)
    out = Path(args.out)
    trainer = Trainer(config, genotype, out, callbacks=_callbacks(out, args.quiet))
    result = trainer.fit(evaluate_test=not args.no_test)
    test = f" | test ppl {result.test_ppl:.2f}" if result.test_ppl is not None else ""
    print(f"done: {result.steps} steps | valid ppl {result.valid_ppl:.2f} | "
          f"best valid ppl {result.best_valid_ppl:.2f}{test} | run folder {out}")
    return 0


def _search_config(args: argparse.Namespace, spec):
    from tfnas.config import load_preset

    overrides = load_preset(args.config) if args.config else {}
    preset_strategy = overrides.pop("strategy", None)
    if preset_strategy and preset_strategy != spec.name:
        raise ValueError(f"preset {args.config!r} is for strategy {preset_strategy!r}, not {spec.name!r}")
    flags = overrides_from_args(args, SEARCH_FLAGS)
    unknown = sorted(k for k in flags if k not in spec.fields())
    if unknown:
        raise ValueError(f"--{unknown[0].replace('_', '-')} does not apply to strategy {spec.name!r}")
    if args.dataset:
        flags["dataset"] = args.dataset
    if args.data_dir:
        flags["data_dir"] = str(args.data_dir)
    return spec.make_config({**overrides, **flags})


def cmd_search(args: argparse.Namespace) -> int:
    from tfnas.data import load_corpus
    from tfnas.strategies.registry import get_strategy

    spec = get_strategy(args.strategy)
    config = _search_config(args, spec)
    out = Path(args.out)
    corpus = load_corpus(config.dataset, config.data_dir)
    result = spec.strategy_class(config).search(corpus, out, _callbacks(out, args.quiet))
    print(f"genotype: {result.genotype.to_json()}")
    print(f"search done: {result.metrics.get('steps')} steps | valid ppl "
          f"{result.metrics.get('valid_ppl', float('nan')):.2f} | genotype written to {out / 'genotype.json'}")
    if args.train:
        train_args = argparse.Namespace(
            genotype=str(out / "genotype.json"), out=str(out / "train"), config=args.train, dataset=args.dataset,
            data_dir=args.data_dir, no_test=False, quiet=args.quiet,
            **{name: None for name in TRAIN_FLAGS})
        return cmd_train(train_args)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from tfnas.genotypes.tree import TreeGenotype
    from tfnas.genotypes.files import resolve_genotype

    g = resolve_genotype(args.genotype)
    print(f"genotype: {args.genotype}")
    if isinstance(g, TreeGenotype):
        if args.draw:
            raise ValueError("--draw draws DAG genotypes; this is a tree genotype")
        for line in g.describe():
            print(f"  {line}")
    else:
        print(f"  first node: {g.first_node} ({g.first_activation})")
        for i, (act, pred) in enumerate(g.nodes, start=1):
            print(f"  node {i}: {act}({pred})")
        print(f"  output: {g.output} of nodes {list(g.concat)}")
    print(f"  attention: {g.attention or 'none'}")
    for key, value in g.provenance.items():
        print(f"  {key}: {value}")
    if args.draw:
        from tfnas.viz import draw_genotype

        print(f"drawing: {draw_genotype(g, args.draw)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tfnas.export import export_run

    paths = export_run(args.run_dir, args.out, formats=args.format, weights=args.weights, opset=args.opset,
                       check=not args.no_check, tolerance=args.tolerance)
    for fmt, path in paths.items():
        print(f"{fmt}: {path}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from tfnas.export import load_export, score_file

    model = load_export(args.model)
    r = score_file(model, args.text, batch_size=args.batch_size, bptt=args.bptt, vocab=args.vocab,
                   max_batches=args.max_batches)
    print(f"perplexity {r.perplexity:.4f} | loss {r.loss:.6f} | {r.tokens} tokens | batch size {r.batch_size} | "
          f"bptt {r.bptt} | {model.format} {model.path}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from tfnas.export import generate_text, load_export

    model = load_export(args.model)
    out = generate_text(model, args.prompt, args.max_tokens, temperature=args.temperature,
                        top_k=args.top_k or None, seed=args.seed, start_of_text=not args.no_start)
    print(out.text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfnas", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a language model around a cell")
    train.add_argument("--genotype", required=True,
                       help="genotype JSON, a known cell name (darts_v2, darts_v1, enas) or 'lstm'")
    train.add_argument("--out", required=True, help="run folder; an existing run resumes")
    train.add_argument("--config", help="a preset name from configs/ or a YAML file")
    train.add_argument("--dataset", help="ptb, wikitext2 or a folder with train/valid/test.txt")
    train.add_argument("--data-dir", type=Path, help="where the corpora are (else $TFNAS_DATA, then tfds)")
    train.add_argument("--no-test", action="store_true", help="skip the final test evaluation")
    train.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_train_flags(train, TRAIN_FLAGS)
    train.set_defaults(func=cmd_train)

    search = sub.add_parser("search", help="search a cell (and attention head); --train then trains it")
    search.add_argument("--strategy", required=True, help="darts, nasabn, enas, reinforce, random, ...")
    search.add_argument("--out", required=True, help="search folder; an existing search resumes")
    search.add_argument("--config", help="a preset name from configs/ or a YAML file")
    search.add_argument("--dataset", help="ptb, wikitext2 or a folder with train/valid/test.txt")
    search.add_argument("--data-dir", type=Path, help="where the corpora are (else $TFNAS_DATA, then tfds)")
    search.add_argument("--train", metavar="TRAIN_CONFIG",
                        help="after the search, train the found cell with this preset into OUT/train")
    search.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_train_flags(search, SEARCH_FLAGS, "search settings (override the preset)")
    search.set_defaults(func=cmd_search)

    show = sub.add_parser("show", help="summarise (and draw) a genotype")
    show.add_argument("genotype", help="genotype JSON or a known cell name")
    show.add_argument("--draw", help="write a drawing (.png, .svg or .pdf) with graphviz")
    show.set_defaults(func=cmd_show)

    export = sub.add_parser("export", help="export a trained run as .keras, SavedModel and/or ONNX")
    export.add_argument("run_dir", help="the run folder (tfnas train --out)")
    export.add_argument("--out", required=True, help="export folder: one subfolder per format")
    export.add_argument("--format", default="all", help="keras, savedmodel, onnx or all (default: all)")
    export.add_argument("--weights", default="best", choices=["best", "latest"],
                        help="best/weights.npz (default) or the newest checkpoint")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default 17)")
    export.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    export.add_argument("--tolerance", type=float, default=1e-5,
                        help="largest accepted max |logits| difference onnxruntime vs Keras (default 1e-5)")
    export.set_defaults(func=cmd_export)

    score = sub.add_parser("score", help="perplexity of a text file under an export")
    score.add_argument("--model", required=True, help="export folder (savedmodel, onnx or keras) or model file")
    score.add_argument("--text", required=True, help="text file, one sentence per line")
    score.add_argument("--batch-size", type=int, help="rows (default: the run's test batch size)")
    score.add_argument("--bptt", type=int, help="window length (default: the run's bptt)")
    score.add_argument("--vocab", help="check that the text's vocabulary file is the model's")
    score.add_argument("--max-batches", type=int, help="score only the first windows")
    score.set_defaults(func=cmd_score)

    generate = sub.add_parser("generate", help="sample text from an export")
    generate.add_argument("--model", required=True, help="export folder (savedmodel, onnx or keras) or model file")
    generate.add_argument("--prompt", default="", help="words to continue (default: start a new sentence)")
    generate.add_argument("--max-tokens", type=int, default=50, help="words to generate (default 50)")
    generate.add_argument("--temperature", type=float, default=1.0, help="0 is greedy (default 1.0)")
    generate.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest words (0: all)")
    generate.add_argument("--seed", type=int, help="seed of the sampler (same seed, same text)")
    generate.add_argument("--no-start", action="store_true", help="do not put <eos> before the prompt")
    generate.set_defaults(func=cmd_generate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("tfnas: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        print(f"tfnas: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
