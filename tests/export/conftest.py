"""Tiny trained runs and their exports, made once per session and shared by the export tests.

The runs are trained on the `tiny_corpus` fixture of tests/conftest.py. That
fixture is per test (it lives in the test's tmp_path), but its content is
fixed (seeded), so the first test that asks for a run trains it on its own
copy and later tests reuse the run and its exports.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tfnas.config import ModelConfig, TrainConfig
from tfnas.genotypes.files import resolve_genotype

#: The models the export tests cover: a genotype cell, an attention LM and the LSTM baseline.
KINDS = ("darts_v2", "attention", "lstm")


def tiny_config() -> TrainConfig:
    """8 steps of a 16-unit model: enough for weights that are not the initial ones, and fast."""
    return TrainConfig(batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=8, lr=5.0, epochs=50, max_steps=8,
                       log_interval=100, checkpoint_interval=100, seed=7, model=ModelConfig(
                           emsize=16, nhid=16, dropout=0.2, dropouth=0.1, dropoutx=0.1, dropouti=0.1,
                           dropoute=0.1))


def genotype_of(kind: str):
    if kind == "lstm":
        return None
    g = resolve_genotype("darts_v2")
    return g.with_attention("general") if kind == "attention" else g


class RunCache:
    """Trains each kind once (`run`), loads it once (`loaded`) and exports it once to all formats (`exports`)."""

    def __init__(self, root: Path):
        self.root = root
        self._loaded: dict = {}
        self._exports: dict = {}
        self.corpus_dir: Path | None = None

    def run(self, kind: str) -> Path:
        from tfnas.data import load_corpus
        from tfnas.lm.trainer import Trainer

        out = self.root / "runs" / kind
        if not (out / "result.json").exists():
            Trainer(tiny_config(), genotype_of(kind), out, corpus=load_corpus(self.corpus_dir)).fit()
        return out

    def loaded(self, kind: str):
        from tfnas.export import load_run

        if kind not in self._loaded:
            self._loaded[kind] = load_run(self.run(kind))
        return self._loaded[kind]

    def exports(self, kind: str) -> Path:
        """The export folder of ``kind`` (subfolders keras/, savedmodel/, onnx/)."""
        from tfnas.export import export_run

        if kind not in self._exports:
            out = self.root / "exports" / kind
            export_run(self.loaded(kind), out, formats="all")
            self._exports[kind] = out
        return self._exports[kind]


@pytest.fixture(scope="session")
def _run_cache(tmp_path_factory) -> RunCache:
    return RunCache(tmp_path_factory.mktemp("export"))


@pytest.fixture
def runs(_run_cache: RunCache, tiny_corpus: Path) -> RunCache:
    if _run_cache.corpus_dir is None:
        _run_cache.corpus_dir = tiny_corpus
    return _run_cache
