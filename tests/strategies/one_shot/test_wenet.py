"""WeNet search: Algorithm 2's rounds, the command line end to end, and exact resume mid-pool."""
import json

import numpy as np
import pytest
import tensorflow as tf

from tfnas.callbacks import History
from tfnas.cli import main
from tfnas.config import TrainConfig, load_preset
from tfnas.data import load_corpus
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import load_genotype
from tfnas.lm.trainer import Trainer
from tfnas.spaces import DagSpace
from tfnas.strategies.registry import get_strategy
from tfnas.strategies.one_shot.wenet import WenetConfig, zero_state_live
from tfnas.viz.weights import sorted_weights_image

from support import Kill

#: A tiny pool on top of the quick preset: T = 7, B = 2, K = 2 -> rounds of 4, 4 and 3 networks.
TINY = {"steps": 2, "pool_size": 7, "network_batch": 2, "seed_size": 2, "max_steps": 4, "batch_size": 4,
        "eval_batch_size": 4, "bptt": 6, "max_eval_batches": 2, "log_interval": 1, "checkpoint_interval": 2,
        "lr": 0.01, "model": {"emsize": 8, "nhid": 8}}
FLAGS = ["--steps", "2", "--pool-size", "7", "--network-batch", "2", "--seed-size", "2", "--max-steps", "4",
         "--batch-size", "4", "--eval-batch-size", "4", "--bptt", "6", "--max-eval-batches", "2",
         "--log-interval", "1", "--checkpoint-interval", "2", "--lr", "0.01", "--emsize", "8", "--nhid", "8"]


def tiny_config(dataset, **overrides):
    preset = load_preset("quick_wenet", "search")
    preset.pop("strategy")
    return get_strategy("wenet").make_config({**preset, **TINY, "dataset": str(dataset), **overrides})


def test_config_rounds_and_validation():
    assert WenetConfig().num_rounds() == 1 + -(-(10_000 - 120) // 100) == 100
    assert WenetConfig(steps=2, pool_size=7, network_batch=2, seed_size=2).num_rounds() == 3
    with pytest.raises(ValueError, match="needs init_noise > 0"):
        WenetConfig(norm="batch", init_noise=0.0)
    with pytest.raises(ValueError, match="exceeds the 32 distinct"):
        WenetConfig(steps=2, pool_size=33)
    with pytest.raises(ValueError, match="`seed_size` must be an integer >= 1"):
        WenetConfig(seed_size=0)


def test_zero_state_live_and_weights_image():
    assert zero_state_live(Genotype((("relu", 0), ("sigmoid", 1)), first_node="wenet"))
    assert not zero_state_live(Genotype((("relu", 0), ("tanh", 1)), first_node="wenet"))
    assert zero_state_live(Genotype((("relu", 0), ("tanh", 1))))            # darts node 0 reads x
    assert not zero_state_live(Genotype((("tanh", 0), ("relu", 0)), first_node="wenet", output="loose_ends"))
    assert zero_state_live(Genotype((("sigmoid", 0), ("tanh", 1)), first_node="wenet", output="loose_ends"))
    image = sorted_weights_image([0.1, 0.5, 0.4], keep=1, height=10, bar_px=2)
    assert image.shape == (10, 6, 3) and image.dtype == np.uint8
    heights = (image[:, ::2, 0] < 255).sum(axis=0)
    np.testing.assert_array_equal(heights, [10, 8, 2])                      # sorted, tallest = largest
    assert tuple(image[-1, 0]) != tuple(image[-1, 2])                       # kept bar has its own colour


def test_search_command_end_to_end_then_trainer_accepts_genotype(tiny_corpus, tmp_path):
    out = tmp_path / "search"
    assert main(["search", "--strategy", "wenet", "--config", "quick_wenet", "--dataset", str(tiny_corpus),
                 "--out", str(out), "--quiet", *FLAGS]) == 0
    genotype = load_genotype(out / "genotype.json")
    state = json.loads((out / "wenet_state.json").read_text())
    result = json.loads((out / "search_result.json").read_text())
    pool = [tuple(p) for p in state["pool"]]
    assert len(pool) == len(set(pool)) == 7                                 # Algorithm 1: no duplicates
    rounds = state["rounds"]
    # Algorithm 2: first round B + K fresh networks, then the K seeds + the next B (the last: what is left).
    assert [r["networks"] for r in rounds] == [[0, 1, 2, 3], rounds[0]["kept"] + [4, 5], rounds[1]["kept"] + [6]]
    space = DagSpace(2, first_node="wenet")
    live_rounds = 0
    for r in rounds:
        w = np.array(r["weights"])
        assert w.sum() == pytest.approx(1.0, abs=1e-6) and r["steps"] == 4
        assert r["sorted_weights"] == sorted(r["weights"], reverse=True)
        assert r["kept"] == [r["networks"][k] for k in np.argsort(-w, kind="stable")[:2]]
        if any(zero_state_live(space.decode(state["pool"][i])) for i in r["networks"]):
            live_rounds += 1
            assert w.max() - w.min() > 1e-4                                 # the weights moved apart
        else:   # quick preset: zero state, no norm; networks without a sigmoid node output 0 (no signal)
            np.testing.assert_array_equal(w, 1 / len(w))
    assert live_rounds >= 1
    assert genotype == space.decode(state["pool"][rounds[-1]["kept"][0]])     # the best of the last round
    assert genotype.first_node == "wenet" and space.contains(genotype)
    assert result["metrics"]["rounds"] == 3 and result["metrics"]["steps"] == 12
    assert result["metrics"]["networks_trained"] == 11
    assert genotype.provenance["strategy"] == "wenet"
    assert not (out / "rounds" / "round-0000" / "checkpoints").exists()    # finished rounds drop theirs
    images = [v.tag for f in (out / "tensorboard").iterdir() for e in tf.compat.v1.train.summary_iterator(str(f))
              for v in e.summary.value if v.HasField("image") or v.metadata.plugin_data.plugin_name == "images"]
    assert images.count("round/sorted_weights") == 3                         # Figure 4, one per round
    drawn = {e.step: tf.io.decode_png(tf.make_ndarray(v.tensor)[2]).numpy() for f in (out / "tensorboard").iterdir()
             for e in tf.compat.v1.train.summary_iterator(str(f)) for v in e.summary.value
             if v.tag == "round/sorted_weights"}
    for step, r in zip(sorted(drawn), rounds):    # TensorBoardLogger draws the round's weights, the K kept dark
        np.testing.assert_array_equal(drawn[step], sorted_weights_image(r["weights"], keep=2))
    # tfnas train accepts the genotype: a GenotypeCell with the wenet first node trains on it.
    config = TrainConfig(dataset=str(tiny_corpus), batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=6,
                         max_steps=3, log_interval=1, eval_interval=3)
    config.model.emsize = config.model.nhid = 8
    trainer = Trainer(config, genotype, tmp_path / "train")
    fit = trainer.fit(evaluate_test=False)
    cell = trainer.model.rnn.cell
    assert cell.genotype == genotype and tuple(cell.W0.shape) == (16, 8)     # [d + units, units]
    assert fit.steps == 3 and np.isfinite(fit.valid_ppl) and 1 < fit.valid_ppl < 60


def test_killed_search_resumes_mid_pool_to_the_same_result(tiny_corpus, tmp_path):
    corpus = load_corpus(str(tiny_corpus))
    config = tiny_config(tiny_corpus, pool_size=6, max_eval_batches=1)     # two rounds of 4 networks
    spec = get_strategy("wenet")
    reference = spec.strategy_class(config).search(corpus, tmp_path / "straight")
    out = tmp_path / "killed"
    # Killed after round 0 (between rounds), then in round 1 after step 3 (last checkpoint at step 2).
    for kill in (Kill("round", round=0), Kill("train", round=1, round_step=3)):
        with pytest.raises(KeyboardInterrupt):
            spec.strategy_class(config).search(corpus, out, [kill])
    state = json.loads((out / "wenet_state.json").read_text())
    assert state["round"] == 1 and state["current"]["round"] == 1              # stopped mid-round 1
    history = History()
    resumed = spec.strategy_class(config).search(corpus, out, [history])
    assert "resumed WeNet search at round 2/2" in history.events["message"][0]["text"]
    assert [e["round_step"] for e in history.events["train"]][:2] == [3, 4]    # replays step 3, from step 2
    assert resumed.genotype == reference.genotype
    final, straight = (json.loads((d / "wenet_state.json").read_text()) for d in (out, tmp_path / "straight"))
    for key in ("pool", "position", "seeds", "rng", "global_step"):
        assert final[key] == straight[key], key
    for a, b in zip(final["rounds"], straight["rounds"]):
        assert a["networks"] == b["networks"] and a["kept"] == b["kept"] and a["seed"] == b["seed"]
        np.testing.assert_allclose(a["weights"], b["weights"], rtol=0, atol=1e-7)
        assert a["valid_ppl"] == pytest.approx(b["valid_ppl"], rel=1e-6)
