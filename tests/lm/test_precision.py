"""Mixed precision (`tfnas.lm.precision`): bfloat16 and loss-scaled float16 training against float32."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from support import latest_checkpoint_arrays, write_ascending_corpus
from tfnas.config import ModelConfig, TrainConfig
from tfnas.data import load_corpus
from tfnas.genotypes.files import load_genotype
from tfnas.lm import precision, trainer as trainer_module
from tfnas.lm.model import LanguageModel
from tfnas.lm.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
#: Largest relative difference from float32 of any validation loss over the short run below (measured:
#: 6% for bfloat16, 9% for float16 at lr 20, where trajectories part quickly).
TOLERANCE = 0.10


def _config(mixed: bool) -> TrainConfig:
    return TrainConfig(batch_size=8, eval_batch_size=4, test_batch_size=4, bptt=8, lr=20.0, epochs=50, max_steps=60,
                       log_interval=10, checkpoint_interval=20, eval_interval=20, seed=7, mixed_precision=mixed,
                       model=ModelConfig(emsize=32, nhid=32, dropout=0.1, dropouth=0.1, dropoutx=0.1, dropouti=0.1,
                                         dropoute=0.1))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Trainer, list[float]]]:
    """The same 60 steps in float32, bfloat16 (the CPU policy) and float16 with loss scaling."""
    root = tmp_path_factory.mktemp("precision")
    corpus = load_corpus(write_ascending_corpus(root / "corpus"))
    genotype = load_genotype(REPO / "exported_cells" / "darts_v2.json")
    out = {}
    for policy in ("float32", "mixed_bfloat16", "mixed_float16"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(trainer_module, "mixed_policy_name", lambda: policy)
            trainer = Trainer(_config(policy != "float32"), genotype, root / policy, corpus=corpus)
            result = trainer.fit(evaluate_test=False)
        out[policy] = trainer, [row["valid_loss"] for row in result.history]
    return out


@pytest.mark.parametrize("policy,dtype", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")])
def test_mixed_training_stays_within_tolerance_of_float32(runs, policy, dtype):
    trainer, losses = runs[policy]
    reference = runs["float32"][1]
    assert trainer.model.compute_dtype == dtype
    assert {v.dtype for v in trainer.model.trainable_variables} == {"float32"}
    assert len(losses) == len(reference) >= 3
    np.testing.assert_allclose(losses, reference, rtol=TOLERANCE)
    assert losses[-1] < math.log(30) - 0.5  # it learned (uniform over 30 words: ln 30)


def test_float16_checkpoints_its_loss_scale(runs):
    trainer, _ = runs["mixed_float16"]
    arrays = latest_checkpoint_arrays(trainer.out_dir)
    assert precision.INITIAL_SCALE in [float(a) for a in arrays.values() if a.shape == ()]
    assert not any(a.shape == () and float(a) == precision.INITIAL_SCALE
                   for a in latest_checkpoint_arrays(runs["mixed_bfloat16"][0].out_dir).values())


def test_mixed_run_records_a_float32_model(runs):
    trainer, _ = runs["mixed_bfloat16"]
    config = json.loads((trainer.out_dir / "model.json").read_text())
    model = LanguageModel.from_config(config)
    assert config["dtype"] == "float32" and model.compute_dtype == "float32"


def test_loss_scale_halves_on_overflow_and_doubles_after_the_growth_interval(monkeypatch):
    monkeypatch.setattr(precision, "GROWTH_INTERVAL", 3)
    scale = precision.DynamicLossScale(True)
    grads, finite = scale.unscaled([tf.constant([65536.0, 2.0 ** 15])])
    np.testing.assert_array_equal(grads[0].numpy(), [2.0, 1.0])
    assert bool(finite)
    _, finite = scale.unscaled([tf.constant([np.inf, 1.0])])
    assert not bool(finite)
    expected = [2.0 ** 14, 2.0 ** 14, 2.0 ** 14, 2.0 ** 15, 2.0 ** 15]
    for ok, want in zip([False, True, True, True, True], expected):
        scale.update(tf.constant(ok))
        assert float(scale.scale.numpy()) == want
    assert int(scale.good_steps.numpy()) == 1
    assert float(precision.DynamicLossScale(False).scaled(tf.constant(3.0))) == 3.0
