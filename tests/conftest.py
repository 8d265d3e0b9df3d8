"""Shared fixtures: quiet TensorFlow, the shared corpora, known genotypes, tiny trained runs and their exports."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tfnas.config import ModelConfig, TrainConfig  # noqa: E402
from tfnas.genotypes.files import resolve_genotype  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    """No test reaches the internet: a corpus found nowhere is an error (tests/test_download_first_use.py
    lifts this to test downloading from a local server)."""
    monkeypatch.setenv("TFNAS_NO_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "ptb" / "train.txt").exists():
        pytest.skip(f"the shared corpora are not at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def exported_cells() -> Path:
    return REPO / "exported_cells"


@pytest.fixture
def float64():
    """Keras layers built inside the test compute in float64 (floatx and the dtype policy, both restored after)."""
    import keras

    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(policy)


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    """A learnable corpus folder: 30 words (with <unk>) in mostly ascending runs."""
    import numpy as np

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(29)] + ["<unk>"]
    folder = tmp_path / "tiny"
    folder.mkdir()
    for split, lines in (("train", 400), ("valid", 60), ("test", 60)):
        rows = []
        for _ in range(lines):
            start, length = rng.integers(0, 30), rng.integers(3, 12)
            ids = [(start + k) % 30 if rng.random() > 0.1 else rng.integers(0, 30) for k in range(length)]
            rows.append(" ".join(words[i] for i in ids))
        (folder / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    # Every word must occur in train so valid/test need no <unk> mapping.
    with open(folder / "train.txt", "a", encoding="utf-8") as f:
        f.write(" ".join(words) + "\n")
    return folder


# ---------------------------------------------------------------------------------------------------------------
# Tiny trained runs and their exports, made once per session and shared by the export and serving tests.
#
# The runs are trained on the `tiny_corpus` fixture. That fixture is per test (it lives in the test's tmp_path),
# but its content is fixed (seeded), so the first test that asks for a run trains it on its own copy and later
# tests reuse the run and its exports.

#: The models the export tests cover: a genotype cell, an attention LM and the LSTM baseline.
KINDS = ("darts_v2", "attention", "lstm")
#: Two-layer models (``model.nlayers = 2``, the children of Zoph & Le section 4.2): a kind above plus this suffix.
TWO_LAYERS = "_2layers"


def tiny_config(nlayers: int = 1) -> TrainConfig:
    """8 steps of a 16-unit model: enough for weights that are not the initial ones, and fast."""
    return TrainConfig(batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=8, lr=5.0, epochs=50, max_steps=8,
                       log_interval=100, checkpoint_interval=100, seed=7, model=ModelConfig(
                           emsize=16, nhid=16, nlayers=nlayers, dropout=0.2, dropouth=0.1, dropoutx=0.1,
                           dropouti=0.1, dropoute=0.1))


def nlayers_of(kind: str) -> int:
    return 2 if kind.endswith(TWO_LAYERS) else 1


def genotype_of(kind: str):
    kind = kind.removesuffix(TWO_LAYERS)
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
            Trainer(tiny_config(nlayers_of(kind)), genotype_of(kind), out, corpus=load_corpus(self.corpus_dir)).fit()
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
