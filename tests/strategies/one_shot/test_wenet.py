"""WeNet search: Algorithm 2's rounds, the command line end to end, and exact resume mid-pool."""
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from tfnas.callbacks import History
from tfnas.cli import main
from tfnas.config import TrainConfig
from tfnas.data import load_corpus
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import load_genotype
from tfnas.lm.model import LanguageModel
from tfnas.lm.trainer import Trainer
from tfnas.presets import load_preset
from tfnas.spaces import DagSpace
from tfnas.strategies.registry import get_strategy
from tfnas.strategies.one_shot.wenet import WenetConfig, WenetSearch, zero_state_live
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


def algorithm2(pool_size, network_batch, seed_size, train):
    """WeNet's Algorithm 2 (l.118-128) over pool indices; ``train(candidates)`` returns their weights w.

    Returns the candidates of every round and the network of line 11.
    """
    pool = list(range(pool_size))                       # 2: T networks (drawn by Algorithm 1)
    seed = []                                           # 3: seed = {}
    rounds = []
    while pool:                                         # 4: while pool is not empty
        candidates = pool[:network_batch]               # 5: choose B networks from pool
        pool = pool[network_batch:]                     # 6: pool = pool - candidates
        candidates = seed + candidates                  # 7: candidates = candidates u seed (seeds listed first)
        w = np.asarray(train(candidates))               # 8: train the weighted networks of candidates
        seed = [candidates[k] for k in np.argsort(-w, kind="stable")[:seed_size]]   # 9: the K largest w
        rounds.append(candidates)
    return rounds, seed[0]                              # 11: the best network of seed


def test_defaults_are_the_papers_e_two_and_the_darts_first_node():
    c = WenetConfig()
    # §4.1 (l.144): "We train WeNet for two epochs (line 8 in Algorithm 2)".
    assert c.epochs == 2
    # T = 10k, B = 100 (l.142): every round takes B networks of the pool, so 10k/100 rounds, the count in the
    # cost estimate "2 * 2 * 10k/100/60 = 6 hours" (l.144: two epochs of two minutes per round).
    assert c.num_rounds() == 10_000 // 100
    assert c.space() == DagSpace(8, first_node="darts") and c.init_noise == 0.0 and c.norm == "batch"
    assert WenetConfig(steps=2, pool_size=7, network_batch=2, seed_size=2).num_rounds() == 4


def test_config_validation_and_the_wenet_first_node_option():
    assert WenetConfig(first_node="wenet", norm="batch", init_noise=1.0).space().first_node == "wenet"
    assert WenetConfig(first_node="wenet", norm="none").init_noise == 0.0
    with pytest.raises(ValueError, match="first_node 'wenet' with norm 'batch' needs init_noise > 0"):
        WenetConfig(first_node="wenet", norm="batch")
    with pytest.raises(ValueError, match="`first_node` must be one of"):
        WenetConfig(first_node="enas")
    with pytest.raises(ValueError, match="exceeds the 32 distinct"):
        WenetConfig(steps=2, pool_size=33)
    with pytest.raises(ValueError, match="^seed_size must be a positive integer; received: seed_size=0$"):
        WenetConfig(seed_size=0)


@pytest.mark.parametrize("vocab, units, published", [
    (10_000, 850, 23),      # PTB (10k words): Table 1 (l.186-187), 23M; §4.2: 850 units
    (33_278, 700, 33),      # WikiText-2 (33,278 words): Table 2 (l.201), 33M; §4.3: 700 units
])
def test_found_cells_have_the_papers_model_sizes_only_with_the_darts_first_node(vocab, units, published):
    """A cell of the default space in the evaluation LM has the paper's size in millions (22.96M / 33.13M);
    the literal node 0 of §3.1 gives one million less (21.52M / 32.15M), so the paper did not use it."""
    genotype = WenetConfig().space().sample(0)
    sizes = {}
    for node in ("darts", "wenet"):
        lm = LanguageModel(vocab, dataclasses.replace(genotype, first_node=node), emsize=units, nhid=units)
        lm.build_weights()
        sizes[node] = lm.count_params() / 1e6
    assert genotype.first_node == "darts"
    assert round(sizes["darts"]) == published and round(sizes["wenet"]) == published - 1


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
    assert len(pool) == len(set(pool)) == 7          # distinct: a tfnas choice (Algorithm 1 has no such rule)
    rounds = state["rounds"]
    recorded = iter(rounds)
    expected, best = algorithm2(7, 2, 2, lambda candidates: next(recorded)["weights"])
    assert [r["networks"] for r in rounds] == expected
    # seed = {} in the first round: B = 2 networks; then the K = 2 seeds + the next B; the last, what is left.
    assert [len(r) for r in expected] == [2, 4, 4, 3]
    space = DagSpace(2, first_node="darts")
    for r in rounds:
        w = np.array(r["weights"])
        assert w.sum() == pytest.approx(1.0, abs=1e-6) and r["steps"] == 4
        assert r["sorted_weights"] == sorted(r["weights"], reverse=True)
        assert w.max() - w.min() > 1e-4              # every round's weights moved apart (w starts at zero)
    assert genotype == space.decode(state["pool"][best])                     # line 11: the best of the seeds
    assert genotype.first_node == "darts" and space.contains(genotype)
    assert result["metrics"]["rounds"] == 4 and result["metrics"]["steps"] == 16
    assert result["metrics"]["networks_trained"] == 13
    assert genotype.provenance["strategy"] == "wenet"
    assert not (out / "rounds" / "round-0000" / "checkpoints").exists()    # finished rounds drop theirs
    images = [v.tag for f in (out / "tensorboard").glob("events.out.tfevents.*") for e in tf.compat.v1.train.summary_iterator(str(f))
              for v in e.summary.value if v.HasField("image") or v.metadata.plugin_data.plugin_name == "images"]
    assert images.count("round/sorted_weights") == 4                         # Figure 4, one per round
    drawn = {e.step: tf.io.decode_png(tf.make_ndarray(v.tensor)[2]).numpy() for f in (out / "tensorboard").glob("events.out.tfevents.*")
             for e in tf.compat.v1.train.summary_iterator(str(f)) for v in e.summary.value
             if v.tag == "round/sorted_weights"}
    for step, r in zip(sorted(drawn), rounds):    # TensorBoardLogger draws the round's weights, the K kept dark
        np.testing.assert_array_equal(drawn[step], sorted_weights_image(r["weights"], keep=2))
    # tfnas train accepts the genotype: a GenotypeCell with the darts first node trains on it.
    config = TrainConfig(dataset=str(tiny_corpus), batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=6,
                         max_steps=3, log_interval=1, eval_interval=3)
    config.model.emsize = config.model.nhid = 8
    trainer = Trainer(config, genotype, tmp_path / "train")
    fit = trainer.fit(evaluate_test=False)
    cell = trainer.model.rnn.cell
    assert cell.genotype == genotype and tuple(cell.W0.shape) == (16, 16)    # [d + units, 2 * units]
    assert fit.steps == 3 and np.isfinite(fit.valid_ppl) and 1 < fit.valid_ppl < 60


def test_every_round_trains_two_epochs_by_default(tiny_corpus, tmp_path):
    """Algorithm 2 line 8 for E epochs; E = 2 (§4.1, l.144): without a step cap each round ends after epoch 2."""
    config = tiny_config(tiny_corpus, pool_size=3, seed_size=1, max_steps=None, batch_size=20, bptt=35,
                         max_eval_batches=1)
    assert config.epochs == WenetConfig().epochs == 2
    result = WenetSearch(config).search(load_corpus(str(tiny_corpus)), tmp_path)
    assert [len(r["networks"]) for r in result.history] == [2, 2]           # B, then K + what is left
    for r in result.history:
        lines = (tmp_path / "rounds" / f"round-{r['round']:04d}" / "history.jsonl").read_text().splitlines()
        epochs = [json.loads(line) for line in lines]
        assert [e["epoch"] for e in epochs] == [1, 2] and epochs[-1]["step"] == r["steps"]
        assert 0 < epochs[0]["step"] < r["steps"]                            # two epochs, each of several steps


def test_killed_search_resumes_mid_pool_to_the_same_result(tiny_corpus, tmp_path):
    corpus = load_corpus(str(tiny_corpus))
    config = tiny_config(tiny_corpus, pool_size=4, max_eval_batches=1)     # rounds of 2 and 2 + 2 networks
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
