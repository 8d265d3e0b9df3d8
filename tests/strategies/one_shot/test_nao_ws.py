"""NAO-WS: the pool invariants of a pool phase, training on pool cells only, exact resume, the CLI."""
import dataclasses
import json

import numpy as np
import pytest

from support import Kill, assert_same_checkpoints, write_ascending_corpus
from tfnas.cli import main
from tfnas.config import ModelConfig
from tfnas.data import load_corpus
from tfnas.genotypes.files import load_genotype
from tfnas.spaces.dag import DagSpace
from tfnas.strategies.one_shot.nao_ws import NaoWsConfig, NaoWsSearch


def tiny_config(**kw) -> NaoWsConfig:
    base = dict(steps=3, batch_size=4, eval_batch_size=4, bptt=8, max_steps=8, log_interval=1,
                checkpoint_interval=4, pool_interval=3, pool_size=12, seed_archs=4, new_archs=4, random_archs=2,
                max_step_size=5, derive_samples=4, derive_batches=2, seed=1, max_eval_batches=4,
                epd_embed=8, epd_hidden=16, epd_decoder_hidden=16, epd_mlp=(16,), epd_epochs=5, epd_batch_size=8,
                epd_lr=5e-3,
                model=ModelConfig(emsize=12, nhid=12, dropout=0.1, dropouth=0.1, dropoutx=0.1, dropouti=0.1,
                                  dropoute=0.0, cell_init_range=0.05))
    base.update(kw)
    return NaoWsConfig(**base)


class Recording(NaoWsSearch):
    """Records every pool phase (old pool, its scores, new pool) and every cell a training step ran."""

    def build(self, vocab_size):
        super().build(vocab_size)
        self.phases_seen, self.trained = [], []
        train = self._train

        def recording_train(arch, *args):
            self.trained.append((tuple(int(v) for v in arch.numpy()), list(self.pool)))
            return train(arch, *args)

        self._train = recording_train

    def architecture_phase(self):
        old = list(self.pool)
        logs = super().architecture_phase()
        self.phases_seen.append((old, list(self.scored), list(self.pool), logs))
        return logs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return load_corpus(write_ascending_corpus(tmp_path_factory.mktemp("nao_ws") / "tiny"))


@pytest.fixture(scope="module")
def full(corpus, tmp_path_factory):
    """A tiny search of 8 steps with pool phases after steps 3 and 6, recorded."""
    out = tmp_path_factory.mktemp("full")
    search = Recording(tiny_config())
    return out, search, search.search(corpus, out)


def test_defaults_are_enas_with_the_papers_epd_and_the_authors_pool():
    c = NaoWsConfig()
    assert (c.steps, c.first_node, c.output) == (11, "darts", "mean")
    assert (c.lr, c.clip, c.batch_size, c.epochs, c.model.nhid) == (20.0, 0.25, 64, 150, 1000)    # ENAS, unchanged
    assert (c.epd_embed, c.epd_hidden, c.epd_mlp, c.trade_off, c.epd_lr) == (64, 128, (200,), 0.8, 1e-3)
    assert (c.pool_size, c.seed_archs, c.new_archs, c.random_archs, c.max_step_size) == (1000, 100, 300, 50, 30)
    assert c.pool_interval * 5 == 150 * 415                                 # 5 pool phases in ENAS' 150 epochs
    with pytest.raises(ValueError, match="must not exceed pool_size"):
        NaoWsConfig(pool_size=100)


def test_nao_ws_has_enas_weight_training_but_no_controller_settings():
    """Section 3.4 replaces ENAS' controller: its settings are ENAS' shared-weights training and the EPD's, and a
    controller flag is refused rather than silently ignored."""
    from tfnas.strategies.one_shot.enas import EnasConfig
    from tfnas.strategies.one_shot.shared_weights import SharedWeightsConfig

    names = {f.name for f in dataclasses.fields(NaoWsConfig)}
    controller = {f.name for f in dataclasses.fields(EnasConfig)} - {f.name for f in dataclasses.fields(
        SharedWeightsConfig)}
    assert controller >= {"controller_lr", "controller_units", "entropy_weight", "reward_c", "controller_interval"}
    assert names & controller == {"derive_samples"}     # redeclared: the pool's best cells, not controller samples
    assert {f.name for f in dataclasses.fields(SharedWeightsConfig)} <= names
    with pytest.raises(SystemExit):
        main(["search", "--strategy", "nao_ws", "--out", "x", "--controller-lr", "0.1"])


def test_a_pool_phase_keeps_the_size_the_best_old_cells_and_adds_only_new_ones(full):
    _, search, _ = full
    c = search.config
    assert len(search.phases_seen) == 2                                     # after steps 3 and 6
    for old, scored, new_pool, logs in search.phases_seen:
        assert len(old) == len(new_pool) == c.pool_size == len(set(new_pool))
        assert sorted(x for x, _ in scored) == sorted(old)
        losses = dict(scored)
        keep = c.pool_size - c.new_archs - c.random_archs
        best_old = sorted(old, key=lambda x: (losses[x], old.index(x)))[:keep]
        assert new_pool[:keep] == best_old
        assert not set(new_pool[keep:]) & set(old)                          # new and random cells are unseen
        assert logs["decoded"] + logs["random_fill"] == c.new_archs
        assert {"epd_loss", "pairwise_acc", "hamming", "pool_best_loss"} <= set(logs)
        space = DagSpace(3)
        assert all(space.contains(search.tokens.decode(x)) for x in new_pool)


def test_every_training_step_runs_a_cell_of_the_current_pool(full):
    _, search, _ = full
    assert len(search.trained) == 8
    for arch, pool in search.trained:
        assert arch in {tuple(search.model.cell.encode(search.tokens.decode(x))) for x in pool}
    assert len({arch for arch, _ in search.trained}) > 1


def test_killed_nao_ws_search_resumes_to_the_same_pool_genotype_and_weights(full, corpus, tmp_path):
    out, full_search, result = full
    with pytest.raises(KeyboardInterrupt):
        NaoWsSearch(tiny_config()).search(corpus, tmp_path / "cut", [Kill("train", step=7)])
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text() == "step-4"
    resumed_search = NaoWsSearch(tiny_config())
    resumed = resumed_search.search(corpus, tmp_path / "cut")
    assert resumed_search.pool == full_search.pool and resumed_search.scored == full_search.scored
    assert resumed.genotype == result.genotype
    assert resumed.metrics["valid_ppl"] == result.metrics["valid_ppl"]
    assert_same_checkpoints(out, tmp_path / "cut")


def test_the_derived_cell_is_the_best_rescored_of_the_last_scored_pool(full):
    _, search, result = full
    candidates = [x for x, _ in search.scored[:search.config.derive_samples]]
    windows = search.reward_windows(search.config.derive_batches, start=0)
    losses = [search.architecture_loss(search.tokens.decode(x), windows) for x in candidates]
    assert result.genotype == search.tokens.decode(candidates[int(np.argmin(losses))])


def test_cli_nao_ws_search_then_train(tmp_path, tiny_corpus):
    out = tmp_path / "search"
    assert main(["search", "--strategy", "nao_ws", "--config", "quick_nao_ws", "--dataset", str(tiny_corpus),
                 "--out", str(out), "--max-steps", "6", "--pool-interval", "3", "--pool-size", "10",
                 "--new-archs", "3", "--random-archs", "2", "--seed-archs", "3", "--batch-size", "4", "--bptt", "8",
                 "--epd-epochs", "2", "--emsize", "8", "--nhid", "8", "--quiet"]) == 0
    g = load_genotype(out / "genotype.json")
    assert g.provenance["strategy"] == "nao_ws" and g.steps == 4
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert history[-1]["architecture"]["pool_phases"] == 2
    assert main(["train", "--genotype", str(out / "genotype.json"), "--dataset", str(tiny_corpus),
                 "--out", str(tmp_path / "train"), "--max-steps", "2", "--batch-size", "4", "--eval-batch-size", "4",
                 "--test-batch-size", "4", "--bptt", "6", "--emsize", "8", "--nhid", "8", "--quiet", "--no-test"]) == 0
