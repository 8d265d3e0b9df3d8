"""The ``tfnas`` command: it parses arguments and calls the library.

The settings flags of ``tfnas train`` and ``tfnas search --strategy S`` are
generated from the fields of `tfnas.config.TrainConfig` and of strategy
``S``'s config class (``--help`` shows each field's help text and default).
A field of the nested ``model`` settings is a flag of its own name
(``--nhid``); one of another nested section is prefixed with the section
(``--child-max-steps``, ``--child-nhid``). Flags override the ``--config`` preset, which
overrides the defaults. Errors the user can fix, a flag's included, print
one line and exit with status 2; anything else is a bug and keeps its
traceback. TensorFlow's start-up lines are hidden unless ``--verbose``
(`tfnas.startup_log`), and an optional package a flag needs is checked
before any work starts.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import typing
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn, Sequence, TextIO

from tfnas.config import CORPUS_SETTINGS
from tfnas.errors import TfnasError, import_optional
from tfnas.presets import preset_names, search_config, train_config
from tfnas.settings import (AT_LEAST_ONE, NON_NEGATIVE, Bound, Check, OneOf, conforms, expected, field_help,
                            nested_class, type_hints)
from tfnas.startup_log import hidden_startup_lines

#: Errors that are the user's to fix: printed on one line, exit status 2. A `ValueError` or `OSError` is not one:
#: a user-caused one is a `TfnasError` where it is raised (`tfnas.errors`), and any other is a bug.
USER_ERRORS: tuple[type[BaseException], ...] = (TfnasError,)
#: Nested settings whose fields are flags without a prefix.
UNPREFIXED_SECTIONS = ("model",)
#: Settings a nested section takes from its parent (a search's children read the search's corpus).
PARENT_SETTINGS = CORPUS_SETTINGS
#: Flags of the commands themselves; a config field of the same name is not turned into a flag.
COMMAND_FLAGS = {"config", "out", "genotype", "strategy", "train", "quiet", "no_test", "help", "verbose"}
#: What ``tfnas --help`` says the command does.
DESCRIPTION = ("Searches recurrent cells (and attention heads) for word-level language models, trains them, and "
               "exports, scores, samples and serves the trained models.")


class UsageError(TfnasError, ValueError):
    """A flag's value that the command cannot use; the message names the flag."""


class CommandParser(argparse.ArgumentParser):
    """argparse's parser with a flag error on one line, as the command's other errors, and where to read more:
    ``tfnas: error: argument --lr: ... (see tfnas train --help)``, exit status 2 (argparse's)."""

    def error(self, message: str, prog: str | None = None) -> NoReturn:
        self.exit(2, f"tfnas: error: {message} (see {prog or self.prog} --help)\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:
        """argparse's, with the help of the subcommand named for flags that it does not know."""
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            command = getattr(parsed, "command", None)
            self.error(f"unrecognized arguments: {' '.join(unknown)}",
                       f"{self.prog} {command}" if command else self.prog)
        return parsed


@dataclasses.dataclass(frozen=True)
class SettingFlag:
    """One generated flag: its name, the dotted path of the field it sets, its type, help, default and check (the
    interval of a number, the names of a string)."""

    name: str
    path: str
    kind: Any
    help: str
    default: Any
    check: Check | None = None


def flag_type(kind: Any, check: Check | None = None) -> Callable[[str], Any]:
    """The argparse ``type`` of a flag holding a ``kind`` (one item of a ``tuple[X, ...]`` flag): it parses the
    text (``none``/``null`` is None when ``kind`` is optional) and refuses what `tfnas.settings.conforms`
    refuses, so that argparse exits 2 with ``argument --lr: must be a number > 0; received: '-1'``."""
    args = typing.get_args(kind)
    optional = type(None) in args
    base = next(a for a in args if a is not type(None)) if optional else kind
    if typing.get_origin(base) is tuple:
        base = kind = typing.get_args(base)[0]
    parse = base if base in (int, float) else str

    def parse_value(text: str) -> Any:
        if optional and text.lower() in ("none", "null"):
            return None
        try:
            value = parse(text)
        except (ValueError, OverflowError):
            value = text
        if not conforms(base, check, value):
            raise argparse.ArgumentTypeError(f"must be {expected(kind, check)}; received: {text!r}")
        return value

    parse_value.__name__ = parse.__name__
    return parse_value


def model_name(text: str) -> str:
    """The argparse ``type`` of ``tfnas serve --name``: the model's name in the URLs, non-empty and without ``/``
    or ``:`` (what `tfnas.serving.ServingApp` accepts), refused before the export is loaded."""
    if not text or "/" in text or ":" in text:
        raise argparse.ArgumentTypeError(f"must be a non-empty name without '/' or ':'; received: {text!r}")
    return text


def setting_flags(config_class: type, prefix: str = "", path: str = "", defaults: Any = None
                  ) -> Iterator[SettingFlag]:
    """The flags of every field of ``config_class`` (nested settings included), in field order.

    ``defaults`` is the instance whose values are shown as defaults (the
    class's own defaults when None; a nested section shows the values its
    parent gives it).
    """
    hints = type_hints(config_class)
    defaults = config_class() if defaults is None else defaults
    for f in dataclasses.fields(config_class):
        sub = nested_class(config_class, f.name)
        if sub is not None:
            inner = prefix if f.name in UNPREFIXED_SECTIONS else f"{prefix}{f.name}_"
            yield from setting_flags(sub, inner, f"{path}{f.name}.", getattr(defaults, f.name))
            continue
        name = f"{prefix}{f.name}"
        if name in COMMAND_FLAGS or (path and f.name in PARENT_SETTINGS):
            continue
        yield SettingFlag(name, f"{path}{f.name}", hints[f.name], field_help(f), getattr(defaults, f.name),
                          f.metadata.get("check"))


def _add_setting_flags(parser: argparse.ArgumentParser, flags: Sequence[SettingFlag], title: str) -> None:
    group = parser.add_argument_group(title)
    for flag in flags:
        option = f"--{flag.name.replace('_', '-')}"
        args = typing.get_args(flag.kind)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), flag.kind) if optional else flag.kind
        default = flag.default if not isinstance(flag.default, tuple) else " ".join(map(str, flag.default))
        text = flag.help if "(default:" in flag.help else f"{flag.help} (default: {default})"
        if base is bool:
            group.add_argument(option, dest=flag.path, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=text)
        else:
            items = typing.get_origin(base) is tuple
            parse = flag_type(flag.kind, flag.check)
            group.add_argument(option, dest=flag.path, type=parse, nargs="+" if items else None,
                               default=argparse.SUPPRESS, help=text,
                               metavar=_metavar(flag, optional, "NAME" if parse.__name__ == "str" and items else
                                                parse.__name__.upper()))


def _metavar(flag: SettingFlag, optional: bool, kind: str) -> str:
    """What a setting flag takes in ``--help``: the names it allows where it has a check of names
    (``{none,dot,...,null}``), else ``kind`` (``INT``, ``FLOAT``, ``STR``; ``NAME`` for several names)."""
    if isinstance(flag.check, OneOf):
        return "{" + ",".join(flag.check.names + (("null",) if optional else ())) + "}"
    return kind


def _set_dotted(overrides: dict[str, Any], path: str, value: Any) -> None:
    """``overrides["a"]["b"] = value`` for ``path`` ``"a.b"``, creating the nested mappings."""
    *parents, leaf = path.split(".")
    target = overrides
    for part in parents:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise UsageError(f"{path}: {part} is set to a value, not to settings with keys")
    target[leaf] = value


def overrides_from_args(args: argparse.Namespace, flags: Sequence[SettingFlag]) -> dict[str, Any]:
    """Nested overrides (``{"model": {"nhid": 200}}``) from the flags that were given (``none`` sets None)."""
    given = vars(args)
    overrides: dict[str, Any] = {}
    for flag in flags:
        if flag.path in given:
            _set_dotted(overrides, flag.path, given[flag.path])
    return overrides


def _data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.dataset:
        out["dataset"] = args.dataset
    if args.data_dir:
        out["data_dir"] = str(args.data_dir)
    return out


def config_from_args(args: argparse.Namespace) -> Any:
    """The settings of ``tfnas train`` or ``tfnas search``: the defaults, then ``--config``, then the flags."""
    overrides = {**overrides_from_args(args, args.setting_flags), **_data_overrides(args)}
    if args.command == "train":
        return train_config(args.config, overrides)
    from tfnas.strategies.registry import get_strategy

    spec = get_strategy(args.strategy)
    return search_config(spec.name, spec.config_class, args.config, overrides)


def check_out(out: Path, flag: str = "--out") -> None:
    """Refuses, on one line and before anything is written, an output folder (``--out``, or ``flag``) that is (or
    lies under) a file or that lies in a folder this user may not write in."""
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{flag} {out} is a file, not a folder" if existing == out else
                         f"{flag} {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {out}: cannot write in {existing} (permission denied)")


def _callbacks(out: Path, quiet: bool = False, settings: Any = None, genotype: Any = None) -> list:
    from tfnas.callbacks import run_callbacks

    return run_callbacks(out, verbose=0 if quiet else 1, settings=settings, genotype=genotype)


def _train(genotype: Any, config: Any, out: Path, quiet: bool, evaluate_test: bool = True, corpus: Any = None
           ) -> int:
    from tfnas.hparams import train_callbacks
    from tfnas.lm.trainer import Trainer

    trainer = Trainer(config, genotype, out, corpus=corpus,
                      callbacks=train_callbacks(out, 0 if quiet else 1, config, genotype))
    result = trainer.fit(evaluate_test=evaluate_test)
    test = f" | test ppl {result.test_ppl:.2f}" if result.test_ppl is not None else ""
    print(f"done: {result.steps} steps | valid ppl {result.valid_ppl:.2f} | "
          f"best valid ppl {result.best_valid_ppl:.2f}{test} | run folder {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from tfnas.data import load_corpus_of
    from tfnas.genotypes import resolve_genotype
    from tfnas.lm.distribute import make_strategy

    config = config_from_args(args)
    out = Path(args.out)
    check_out(out)
    make_strategy(config.distribute)  # first: a multi-worker strategy must exist before TensorFlow runs an op
    genotype = None if args.genotype == "lstm" else resolve_genotype(args.genotype)
    corpus = load_corpus_of(config)  # its errors: before any write
    return _train(genotype, config, out, args.quiet, evaluate_test=not args.no_test, corpus=corpus)


def cmd_search(args: argparse.Namespace) -> int:
    from tfnas.data import load_corpus_of
    from tfnas.strategies.registry import get_strategy

    spec = get_strategy(args.strategy)
    config = config_from_args(args)
    out = Path(args.out)
    check_out(out)
    corpus = load_corpus_of(config)
    result = spec.strategy_class(config).search(corpus, out, _callbacks(out, args.quiet, config))
    if not args.quiet:
        print(f"genotype: {result.genotype.to_json()}")
    print(f"search done: {result.metrics.get('steps')} steps | valid ppl "
          f"{result.metrics.get('valid_ppl', float('nan')):.2f} | genotype written to {out / 'genotype.json'}")
    if args.train:
        trained = train_config(args.train, config.corpus_settings())
        return _train(result.genotype, trained, out / "train", args.quiet, corpus=corpus)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from tfnas.genotypes import Genotype, resolve_genotype

    g = resolve_genotype(args.genotype)
    if args.draw:
        from tfnas.viz import check_drawable

        if not isinstance(g, Genotype):
            raise UsageError("--draw draws DAG genotypes; this is a tree genotype")
        check_drawable(args.draw)
    print(f"genotype: {args.genotype}")
    for line in g.describe():
        print(f"  {line}")
    print(f"  attention: {g.attention or 'none'}")
    for key, value in g.provenance.items():
        print(f"  {key}: {value}")
    if args.draw:
        from tfnas.viz import draw_genotype

        print(f"drawing: {draw_genotype(g, args.draw)}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    import json

    from tfnas.results import read_results

    results = read_results(args.run_dir)
    if args.json:
        print(json.dumps(results.to_dict(args.top), indent=1))
    else:
        print(results.table(args.top), end="")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tfnas.results import trained_trial

    trial = None if args.trial is None else trained_trial(args.run_dir, args.trial)  # before TensorFlow loads
    from tfnas.export import export_run
    from tfnas.export.onnx_graph import MIN_OPSET

    if args.opset < MIN_OPSET:  # now, not after the other formats took minutes
        raise UsageError(f"argument --opset: must be an integer >= {MIN_OPSET}; received: {args.opset}")
    check_out(Path(args.out))
    run_dir = args.run_dir if trial is None else trial.folder
    if trial is not None:
        print(f"trial {trial.name}: {run_dir}")
    paths = export_run(run_dir, args.out, formats=args.format, weights=args.weights, opset=args.opset,
                       check=not args.no_check, tolerance=args.tolerance, progress=not args.quiet,
                       replace=args.replace, tflite_batch=args.tflite_batch, tflite_window=args.tflite_window,
                       quantize=args.quantize)
    for fmt, path in paths.items():
        print(f"{fmt}: {path}{_export_note(fmt, path)}")
    return 0


def _export_note(fmt: str, path: Path) -> str:
    """What the export line adds for ONNX and TFLite: the shapes and weights of a TFLite model and the parity
    measured at export (`ExportMetadata.parity_max_abs_diff`)."""
    from tfnas.export import ExportMetadata
    from tfnas.export.layout import metadata_path

    if fmt not in ("onnx", "tflite"):
        return ""
    meta = ExportMetadata.load(metadata_path(fmt, path.parent))
    notes = []
    if fmt == "tflite":
        notes.append(f"batch {meta.tflite_batch}, window {meta.tflite_window}, {meta.quantize or 'float32'} weights")
    if meta.parity_max_abs_diff is not None:
        runtime = "onnxruntime" if fmt == "onnx" else "TFLite interpreter"
        notes.append(f"parity: max |logits| difference {meta.parity_max_abs_diff:.3g} ({runtime} vs Keras)")
    return f" ({'; '.join(notes)})" if notes else ""


def cmd_score(args: argparse.Namespace) -> int:
    from tfnas.export import load_export, score_file

    model = load_export(args.model)
    r = score_file(model, args.text, batch_size=args.batch_size, bptt=args.bptt, vocab=args.vocab,
                   max_batches=args.max_batches, progress=not args.quiet)
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


def cmd_serve(args: argparse.Namespace) -> int:
    from tfnas.export import detect_format, load_export
    from tfnas.serving import Limits, ServerSettings, serve, served_version

    if detect_format(args.model)[0] == "tflite":
        raise UsageError(f"{args.model} is a TFLite export, which tfnas serve does not serve (it is for devices): "
                         "serve the savedmodel or onnx export of the same model")
    model = load_export(args.model)
    limits = Limits(max_batch=args.max_batch, max_tokens=args.max_tokens, max_reply_values=args.max_reply_values,
                    max_request_bytes=args.max_request_bytes)
    settings = ServerSettings(threads=args.threads, connection_limit=args.connection_limit,
                              channel_timeout=args.channel_timeout, shutdown_grace=args.shutdown_grace)

    def ready(url: str) -> None:
        print(f"serving {model.format} {model.path} as {args.name!r} version {served_version(model.path)} at {url} "
              f"(POST {url}/v1/models/{args.name}:predict, :generate; GET {url}/healthz); Ctrl-C or SIGTERM stops",
              flush=True)

    try:
        serve(model, args.host, args.port, args.name, limits, settings, ready)
    except KeyboardInterrupt:  # before the server's own handler is in place
        pass
    return 0


def _settings_from_sets(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[1, 2]"]`` -> ``{"a": {"b": 1}, "c": [1, 2]}`` (values are YAML, read as presets are)."""
    import yaml

    from tfnas.presets import parse_yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = parse_yaml(text)
        except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as err:
            raise UsageError(f"--set {item!r}: the value is not YAML ({err})".replace("\n", " ")) from None
        _set_dotted(out, key, value)
    return out


def cmd_compare(args: argparse.Namespace) -> int:
    """Exit status 0 when every retraining of the comparison finished, 1 when some failed (the report is written
    and one warning line names them; the same command retries them)."""
    if args.plot:
        import_optional("matplotlib", "compare", "--plot")
    if args.executor == "ray":
        import_optional("ray", "ray", "--executor ray")
    from tfnas.compare import failure_summary, load_compare_config, markdown_table, run_comparison, ship_cells
    from tfnas.evaluation.executors import make_executor

    overrides = {**_settings_from_sets(args.set), **_data_overrides(args)}
    config = load_compare_config(args.config, overrides)
    out = Path(args.out)
    check_out(out)
    if args.ship_cells:
        check_out(args.ship_cells, "--ship-cells")
    executor = make_executor(args.executor, args.ray_address)
    try:
        report = run_comparison(
            config, out, executor,
            search_callbacks=lambda folder: _callbacks(folder, args.quiet),
            message=(lambda text: None) if args.quiet else (lambda text: print(f"compare: {text}", flush=True)),
            plot_path=args.plot, announce=not args.quiet)
    finally:
        executor.close()
    shipped = ship_cells(report, args.ship_cells, args.ship_suffix) if args.ship_cells else []
    if not args.quiet:
        for path in shipped:
            print(f"shipped {path}")
        print(markdown_table(report), end="")
    print(f"report: {out / 'comparison.json'}, {out / 'comparison.md'}")
    failures = failure_summary(report, out)
    if failures:
        print(f"tfnas: warning: {failures}", file=sys.stderr)
        return 1
    return 0


def _strategy_named(argv: Sequence[str]) -> str | None:
    """The value of ``--strategy`` in ``argv`` (needed before parsing: it decides the flags)."""
    for k, arg in enumerate(argv):
        if arg == "--strategy" and k + 1 < len(argv):
            return argv[k + 1]
        if arg.startswith("--strategy="):
            return arg.split("=", 1)[1]
    return None


def _data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="ptb, wikitext2 or a folder with train/valid/test.txt")
    parser.add_argument("--data-dir", type=Path, help="where the corpora are (else $TFNAS_DATA, then tfds)")


#: The help of ``--verbose``, a flag of the command and of each subcommand.
VERBOSE_HELP = "show TensorFlow's start-up log lines (oneDNN, CUDA, CPU features), hidden by default"


def _presets(names: Sequence[str]) -> str:
    return f"a preset ({', '.join(names)}) or a YAML file" if names else "a YAML file"


def _command(sub: Any, name: str, summary: str, **kwargs: Any) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``: ``summary`` is its line in ``tfnas --help`` and, as a sentence, the
    description of ``tfnas NAME --help``; it takes ``--verbose`` as well as the command does. No flag is
    abbreviated (`main` reads ``--verbose`` before parsing)."""
    parser = sub.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}.",
                            allow_abbrev=False, **kwargs)
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; ``argv`` is read for ``--strategy``, whose config decides the search flags."""
    from tfnas import __version__
    from tfnas.config import TrainConfig
    from tfnas.strategies.registry import STRATEGIES, strategy_names

    parser = CommandParser(prog="tfnas", description=DESCRIPTION, allow_abbrev=False,  # --verbose is read whole
                           epilog="Run 'tfnas COMMAND --help' for the flags of a command.")
    parser.add_argument("--version", action="version", version=f"tfnas {__version__}")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = _command(sub, "train", "train a language model around a cell")
    train.add_argument("--genotype", required=True,
                       help="genotype JSON, a known cell name (darts_v2, darts_v1, enas, nascell) or 'lstm'")
    train.add_argument("--out", required=True, help="run folder; an existing run resumes")
    train.add_argument("--config", help=_presets(preset_names("train")))
    train.add_argument("--no-test", action="store_true", help="skip the final test evaluation")
    train.add_argument("--quiet", action="store_true", help="no progress lines: the summary line")
    train_flags = [f for f in setting_flags(TrainConfig) if f.name not in ("dataset", "data_dir")]
    _data_flags(train)
    _add_setting_flags(train, train_flags, "training settings (override the preset)")
    train.set_defaults(func=cmd_train, setting_flags=train_flags)

    name = _strategy_named(argv)
    search = _command(sub, "search", "search a cell (and attention head); --train then trains it",
                      epilog=None if name in STRATEGIES else
                      "Give --strategy NAME with --help to list that strategy's settings and presets.")
    search.add_argument("--strategy", required=True, metavar="NAME", help=f"one of {', '.join(strategy_names())}")
    search.add_argument("--out", required=True, help="search folder; an existing search resumes")
    search.add_argument("--config", help=_presets(STRATEGIES[name].presets if name in STRATEGIES else
                                                  preset_names("search")))
    search.add_argument("--train", metavar="TRAIN_CONFIG",
                        help=f"after the search, train the found cell with this preset into OUT/train "
                             f"({_presets(preset_names('train'))})")
    search.add_argument("--quiet", action="store_true", help="no progress lines and no genotype: the summary line")
    _data_flags(search)
    search_flags: list[SettingFlag] = []
    if name in STRATEGIES:
        search_flags = [f for f in setting_flags(STRATEGIES[name].config_class)
                        if f.name not in ("dataset", "data_dir")]
        _add_setting_flags(search, search_flags, f"{name} settings (override the preset)")
    search.set_defaults(func=cmd_search, setting_flags=search_flags)

    show = _command(sub, "show", "summarise (and draw) a genotype")
    show.add_argument("genotype",
                      help="genotype JSON, a run or search folder (its genotype.json) or a known cell name")
    show.add_argument("--draw", help="write a drawing: .png, .svg or .pdf (graphviz's dot program, or matplotlib "
                                     "where dot is not installed), or the graph's DOT source (.gv, .dot)")
    show.set_defaults(func=cmd_show)

    results = _command(sub, "results", "the best results of a run, search or comparison folder")
    results.add_argument("run_dir", help="a folder of tfnas train, search or compare (--out)")
    results.add_argument("--top", type=flag_type(int, AT_LEAST_ONE), default=10,
                         help="how many results, best first (default 10)")
    results.add_argument("--json", action="store_true", help="the same as JSON on stdout")
    results.set_defaults(func=cmd_results)

    export = _command(sub, "export", "export a trained run as .keras, SavedModel, ONNX and/or TFLite")
    export.add_argument("run_dir", help="the run folder (tfnas train --out), or a black-box search's with --trial")
    export.add_argument("--trial", metavar="TRIAL",
                        help="export a child of the black-box search RUN_DIR: best (the search's result) or a trial's "
                             "number (tfnas results RUN_DIR lists them)")
    export.add_argument("--out", required=True, help="export folder: one subfolder per format, all of one model")
    export.add_argument("--format", default="all", help="keras, savedmodel, onnx, tflite or all (default: all)")
    export.add_argument("--weights", default="best", choices=["best", "latest"],
                        help="best/weights.npz (default) or the newest checkpoint")
    export.add_argument("--opset", type=flag_type(int, AT_LEAST_ONE), default=17,
                        help="ONNX opset, >= 17 (default 17)")
    export.add_argument("--no-check", action="store_true",
                        help="skip the parity checks (onnxruntime, TFLite interpreter)")
    export.add_argument("--tolerance", type=flag_type(float, NON_NEGATIVE),
                        help="largest accepted max |logits| difference of ONNX or TFLite vs Keras (default 1e-5; "
                             "TFLite with --quantize float16: 2e-2, int8: 0.5)")
    export.add_argument("--tflite-batch", type=flag_type(int, AT_LEAST_ONE), default=1,
                        help="TFLite: rows per call of the fixed-shape model (default 1; any batch runs, in groups)")
    export.add_argument("--tflite-window", type=flag_type(int, AT_LEAST_ONE),
                        help="TFLite: tokens per call of the fixed-shape model (default: the run's bptt)")
    export.add_argument("--quantize", choices=["float16", "int8"],
                        help="TFLite weights: float16, or int8 (dynamic range: weights of >= 1024 values in int8, "
                             "no representative data needed); default float32")
    export.add_argument("--replace", action="store_true",
                        help="if --out holds another model's export, replace its formats whole (without it: refused)")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    export.set_defaults(func=cmd_export)

    score = _command(sub, "score", "perplexity of a text file under an export")
    score.add_argument("--model", required=True, help="export folder (savedmodel, onnx, keras or tflite) or model file")
    score.add_argument("--text", required=True, help="text file, one sentence per line")
    score.add_argument("--batch-size", type=flag_type(int, AT_LEAST_ONE), help="rows (default: the run's test batch "
                                                                               "size)")
    score.add_argument("--bptt", type=flag_type(int, AT_LEAST_ONE), help="window length (default: the run's bptt)")
    score.add_argument("--vocab", help="check that the text's vocabulary file is the model's")
    score.add_argument("--max-batches", type=flag_type(int, AT_LEAST_ONE), help="score only the first windows")
    score.add_argument("--quiet", action="store_true", help="no progress bar")
    score.set_defaults(func=cmd_score)

    generate = _command(sub, "generate", "sample text from an export")
    generate.add_argument("--model", required=True,
                          help="export folder (savedmodel, onnx, keras or tflite) or model file")
    generate.add_argument("--prompt", default="", help="words to continue (default: start a new sentence)")
    generate.add_argument("--max-tokens", type=flag_type(int, NON_NEGATIVE), default=50,
                          help="words to generate (default 50)")
    generate.add_argument("--temperature", type=flag_type(float, NON_NEGATIVE), default=1.0,
                          help="0 is greedy (default 1.0)")
    generate.add_argument("--top-k", type=flag_type(int, NON_NEGATIVE), default=0,
                          help="sample among the k likeliest words (0: all)")
    generate.add_argument("--seed", type=flag_type(int, NON_NEGATIVE), help="seed of the sampler (same seed, same "
                                                                             "text)")
    generate.add_argument("--no-start", action="store_true", help="do not put <eos> before the prompt")
    generate.set_defaults(func=cmd_generate)

    serve = _command(sub, "serve", "serve an export over HTTP (TensorFlow Serving's REST API, plus :generate)")
    serve.add_argument("--model", required=True,
                       help="export folder (savedmodel, onnx or keras; not tflite) or model file")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: all)")
    serve.add_argument("--port", type=flag_type(int, Bound(0, 65535)), default=8501,
                       help="port (default 8501, as TensorFlow Serving's REST)")
    serve.add_argument("--name", type=model_name, default="tfnas", help="model name in the URLs (default tfnas)")
    serve.add_argument("--max-batch", type=flag_type(int, AT_LEAST_ONE), default=64,
                       help="rows per request (default 64)")
    serve.add_argument("--max-tokens", type=flag_type(int, AT_LEAST_ONE), default=4096,
                       help="rows x time per request; prompt plus words per generation (default 4096)")
    serve.add_argument("--max-reply-values", type=flag_type(int, AT_LEAST_ONE), default=2 ** 20,
                       help="logits (rows x time x vocabulary) in one serving_default reply, ~21 bytes of JSON "
                            "each (default 1048576)")
    serve.add_argument("--max-request-bytes", type=flag_type(int, AT_LEAST_ONE), default=16 * 2 ** 20,
                       help="bytes of a request body, Content-Length or chunked; over it: 413 (default 16 MiB)")
    serve.add_argument("--threads", type=flag_type(int, AT_LEAST_ONE), default=4,
                       help="requests handled at once; the others queue (default 4)")
    serve.add_argument("--connection-limit", type=flag_type(int, AT_LEAST_ONE), default=100,
                       help="connections open at once; more wait to be accepted (default 100)")
    serve.add_argument("--channel-timeout", type=flag_type(int, AT_LEAST_ONE), default=30,
                       help="seconds before a connection with nothing in progress (an incomplete request, an "
                            "idle keep-alive) is closed (default 30)")
    serve.add_argument("--shutdown-grace", type=flag_type(float, NON_NEGATIVE), default=5.0,
                       help="seconds that requests in flight get to finish on SIGTERM or Ctrl-C (default 5)")
    serve.set_defaults(func=cmd_serve)

    compare = _command(sub, "compare", "every search of a preset against random cells and baselines, each cell "
                                       "retrained alike")
    compare.add_argument("--config", required=True, help=_presets(preset_names("compare")))
    compare.add_argument("--out", required=True, help="comparison folder; an existing comparison resumes (with other "
                                                              "seeds or baselines too)")
    compare.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override a setting (VALUE is YAML; nested keys dotted: train_overrides.max_steps=100)")
    compare.add_argument("--executor", default="local", choices=["local", "ray"],
                         help="where retrainings run (default: local; ray needs the ray package)")
    compare.add_argument("--ray-address", default="local", help="ray: local, auto or HOST:PORT")
    compare.add_argument("--plot", type=Path, help="draw the test perplexities to this PNG (needs matplotlib)")
    compare.add_argument("--ship-cells", type=Path, metavar="DIR",
                         help="write each found cell with its comparison in its provenance to DIR/<label>_SUFFIX.json "
                              "(exported_cells/discovered: loadable as --genotype discovered/<label>_SUFFIX)")
    compare.add_argument("--ship-suffix", default="compare", help="name suffix of shipped cells (e.g. ptb_cpu)")
    compare.add_argument("--quiet", action="store_true", help="no progress lines, table or shipped cells: the report line")
    _data_flags(compare)
    compare.set_defaults(func=cmd_compare)
    return parser


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """A warning on the command line: ``tfnas: warning: <message>``, one line (no source location)."""
    print(f"tfnas: warning: {' '.join(str(message).split())}", file=sys.stderr if file is None else file)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Read before parsing: a strategy's flags (``search --strategy S --help``) import TensorFlow.
    with contextlib.nullcontext() if "--verbose" in argv else hidden_startup_lines():
        return _run(argv)


def _run(argv: list[str]) -> int:
    args = build_parser(argv).parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return func(args)
    except KeyboardInterrupt:
        print("tfnas: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        print(f"tfnas: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
