"""RSWS: the paper's settings, per-node shared weights of DARTS' size, uniform training cells from a resumable
stream, a selection that scores exactly the promised cells with the shared weights, exact resume (in training and
in the selection), stage 2 keeping the best retrained cell, the CLI."""
import dataclasses
import json
import math

import numpy as np
import pytest

from support import Kill, assert_same_checkpoints, write_ascending_corpus
from tfnas.callbacks import Callback
from tfnas.cli import main
from tfnas.config import ModelConfig, TrainConfig
from tfnas.data import batchify, load_corpus
from tfnas.evaluation import WeightSharingEvaluator
from tfnas.genotypes.dag import ACTIVATIONS, Genotype
from tfnas.genotypes.files import load_genotype, resolve_genotype
from tfnas.lm.model import LanguageModel
from tfnas.metrics import perplexity
from tfnas.presets import search_config
from tfnas.spaces.dag import DagSpace
from tfnas.strategies.one_shot.rsws import SELECTION_FILE, RswsConfig, RswsSearch
from tfnas.strategies.one_shot.shared_weights import SharedWeightsSearch

TINY_MODEL = ModelConfig(emsize=12, nhid=12, dropout=0.1, dropouth=0.1, dropoutx=0.1, dropouti=0.1, dropoute=0.0)


def tiny_config(**kw) -> RswsConfig:
    base = dict(steps=3, batch_size=4, eval_batch_size=4, bptt=8, max_steps=8, log_interval=1, checkpoint_interval=4,
                select_rounds=2, round_size=5, score_batch_size=4, score_batches=2, rescore_top=2, preview_cells=3,
                derive_batches=2, seed=1, max_eval_batches=4, model=TINY_MODEL,
                stage2=TrainConfig(batch_size=4, eval_batch_size=4, test_batch_size=4, bptt=8, max_steps=3,
                                   max_eval_batches=2, log_interval=1, checkpoint_interval=2, model=TINY_MODEL))
    base.update(kw)
    return RswsConfig(**base)


class Recording(RswsSearch):
    """Records every cell a training step ran and every `selection_loss` call (genotype, windows)."""

    def build(self, vocab_size):
        super().build(vocab_size)
        self.trained_archs, self.scored = [], []
        train = self._train

        def recording_train(arch, *args):
            self.trained_archs.append((self.step, tuple(int(v) for v in arch.numpy())))
            return train(arch, *args)

        self._train = recording_train

    def selection_loss(self, genotype, batches):
        self.scored.append((genotype, batches))
        return super().selection_loss(genotype, batches)


class KillAfterRound(Callback):
    """Raises (a killed process) on the message that ends selection round ``number``."""

    def __init__(self, number):
        self.prefix = f"selection round {number} of"

    def on_event(self, kind, logs):
        if kind == "message" and logs["text"].startswith(self.prefix):
            raise KeyboardInterrupt(self.prefix)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return load_corpus(write_ascending_corpus(tmp_path_factory.mktemp("rsws") / "tiny"))


@pytest.fixture(scope="module")
def full(corpus, tmp_path_factory):
    """A tiny search of 8 steps, then its selection (2 rounds of 5 cells, the 2 best of each rescored), recorded."""
    out = tmp_path_factory.mktemp("full")
    search = Recording(tiny_config())
    return out, search, search.search(corpus, out)


# ------------------------------------------------------------------ the paper's settings
def test_defaults_are_the_papers_random_4_setting():
    c = RswsConfig()
    assert (c.model.emsize, c.model.nhid, c.batch_size, c.clip, c.epochs) == (850, 850, 64, 0.1, 50)   # Table 3
    assert (c.model.dropout, c.model.dropouth, c.model.dropoutx, c.model.dropouti, c.model.dropoute) == \
        (0.75, 0.25, 0.75, 0.2, 0.1)                                            # the authors' config 'eval'
    assert (c.lr, c.lr_decay, c.wdecay, c.alpha, c.beta, c.full_bptt_prob, c.bptt) == \
        (20.0, 1.0, 8e-7, 0.0, 1e-3, 0.95, 35)                                  # DARTS' search, kept
    assert (c.steps, c.first_node, c.output) == (8, "darts", "mean")           # DARTS' space
    minibatches = int(c.epochs * 929_589 / c.batch_size / c.bptt)              # random_weight_share.py's B
    assert minibatches == 20_749 and c.select_rounds == max(1, minibatches // 10_000) == 2
    assert (c.round_size, c.score_batch_size, c.score_batches, c.rescore_top) == (1000, 256 * 4, None, 0)
    assert c.stage2_top == 0 and c.stage2.epochs == 300 and c.stage2.model == ModelConfig()       # A.3.2, A.3.3
    preset = search_config("rsws", RswsConfig, "rsws_search_ptb")
    assert preset.stage2_top == 4 and dataclasses.replace(preset, stage2_top=0, dataset=c.dataset) == c
    with pytest.raises(ValueError, match="stage2_top must not exceed the 4 cells the selection ranks"):
        RswsConfig(rescore_top=2, stage2_top=5)


def test_the_shared_weights_are_darts_cell_of_23m_parameters_one_matrix_per_node():
    """Li & Talwalkar, Table 2: 23M. Per-node sharing gives the supernet exactly the size of the frozen DARTS model
    (22.96M: DARTS' README), where ENAS' per-edge sharing would hold 36 node matrices instead of 8."""
    c = RswsConfig()
    search = RswsSearch(c)
    search.build(10_000)
    frozen = LanguageModel(10_000, resolve_genotype("darts_v2"), emsize=850, nhid=850)
    frozen.build_weights()
    assert search.model.cell.sharing == "node" and tuple(search.model.cell.Ws.shape) == (8, 850, 1700)
    trainable = sum(int(np.prod(v.shape)) for v in search.model.trainable_variables)    # not the int `arch`
    assert trainable == frozen.count_params() == 22_960_000
    assert search.space == DagSpace(8, ACTIVATIONS, first_node="darts", output="mean")


# ------------------------------------------------------------------ the training stream
def stream(search, steps, recoveries=0, start=0):
    """The training cells of steps ``start..steps-1`` (``recoveries`` recoveries made)."""
    search.recoveries = recoveries
    out = []
    for step in range(start, steps):
        search.step = step
        out.append(search.training_genotype())
    return out


def test_training_cells_are_uniform_over_darts_space_without_a_zero_op():
    """20,000 draws of the 8-node space: every node's predecessor count is within 5 binomial standard deviations
    of n / i and every activation count within 5 of n / 4 (68 counts: a false failure has probability < 4e-5);
    no other activation (no zero op) appears."""
    search = RswsSearch(tiny_config(steps=8))
    search.build(30)
    n = 20_000
    cells = stream(search, n)
    assert all(search.space.contains(g) for g in cells[:100])
    for i in range(1, 9):
        preds = np.bincount([g.nodes[i - 1][1] for g in cells], minlength=i)
        acts = [sum(g.nodes[i - 1][0] == a for g in cells) for a in ACTIVATIONS]
        assert len(preds) == i and sum(acts) == n                          # only the 4 activations, no "none"
        for counts, p in ((preds, 1 / i), (acts, 1 / 4)):
            bound = 5 * math.sqrt(n * p * (1 - p))
            assert max(abs(k - n * p) for k in counts) <= bound, (i, counts, bound)


def test_the_stream_is_the_seed_and_step_and_a_recovery_draws_other_cells():
    """The cell of a step depends on the seed, the step and the recovery count only (all three checkpointed):
    another search object draws the same cells from any step on."""
    a, b, other = RswsSearch(tiny_config()), RswsSearch(tiny_config()), RswsSearch(tiny_config(seed=2))
    for s in (a, b, other):
        s.build(30)
    first = stream(a, 50)
    assert first == stream(b, 50) and len(set(first)) > 40
    assert stream(b, 50, start=20) == first[20:]
    assert stream(a, 50, recoveries=1) != first
    assert stream(other, 50) != first


def test_every_training_step_runs_the_streams_cell_and_no_architecture_phase(full):
    _, search, _ = full
    assert search.interval_setting is None and search.phase_logs == {}
    assert [step for step, _ in search.trained_archs] == list(range(8))
    space = DagSpace(3, first_node="darts", output="mean")
    for step, arch in search.trained_archs:             # one uniform draw of the generator (seed + 1, step)
        expected = space.sample(np.random.default_rng([search.config.seed + 1, step]))
        assert arch == tuple(search.model.cell.encode(expected))
    assert len({arch for _, arch in search.trained_archs}) > 1


def test_a_method_naming_an_interval_must_define_its_phase():
    with pytest.raises(TypeError, match="names interval_setting 'pool_interval' but defines no architecture_phase"):
        type("Phaseless", (SharedWeightsSearch,), {"interval_setting": "pool_interval"})


# ------------------------------------------------------------------ the selection
def test_the_selection_scores_exactly_the_promised_cells(full):
    _, search, result = full
    c = search.config
    cheap = [g for g, batches in search.scored if batches == c.score_batches]
    whole = [g for g, batches in search.scored if batches is None]
    assert len(search.scored) == len(cheap) + len(whole)
    assert cheap == [g for r in range(c.select_rounds) for g in search.round_cells(r)]      # 2 x 5, in draw order
    assert len(whole) == c.select_rounds * c.rescore_top == 4
    assert (result.metrics["cells_scored"], result.metrics["cells_rescored"]) == (10, 4)
    assert result.metrics["select_rounds"] == 2


WINDOW_S = 1 / 8            # exact in binary: the clock's sums are exact


class ClockedSelection(RswsSearch):
    """Moves the test clock 1/8 s per validation window a `selection_loss` scores."""

    def selection_loss(self, genotype, batches):
        split = math.ceil((self.score_data.shape[1] - 1) / self.config.bptt)
        self.clock[0] += WINDOW_S * (split if batches is None else min(batches, split))
        return super().selection_loss(genotype, batches)


class TrainTick(Callback):
    def __init__(self, clock):
        self.clock = clock

    def on_event(self, kind, logs):
        if kind == "train":
            self.clock[0] += 1.0


def test_under_a_budget_the_training_stops_so_that_the_selection_ends_within_it(corpus, tmp_path, monkeypatch):
    """The clock moves 1 s per training step and 1/8 s per scored window; the selection's cost is measured by a
    probe of two one-window scores (1/4 s) at the first step boundary. Training stops at the first boundary where
    the time spent and the selection's cost reach the budget, and every promised cell is still scored."""
    import tfnas.runs.session as session_module
    clock = [0.0]
    monkeypatch.setattr(session_module, "monotonic", lambda: clock[0])
    search = ClockedSelection(tiny_config(max_steps=None, epochs=100, budget_s=12.0))
    search.clock = clock
    result = search.search(corpus, tmp_path / "run", [TrainTick(clock)])
    c = search.config
    split = math.ceil((search.score_data.shape[1] - 1) / c.bptt)
    windows = c.select_rounds * (c.round_size * c.score_batches + c.rescore_top * split)
    assert search.selection_windows() == windows
    probe, cost = 2 * WINDOW_S, WINDOW_S * windows
    steps = math.ceil(12.0 - probe - cost)               # the first boundary with probe + steps + cost >= 12
    assert 0 < steps < 11 and result.metrics["steps"] == steps
    assert (result.metrics["cells_scored"], result.metrics["cells_rescored"]) == (10, 4)
    assert result.seconds == probe + steps + cost <= 12.0 + 1.0


class Messages(Callback):
    def __init__(self):
        self.lines = []

    def on_event(self, kind, logs):
        if kind == "message":
            self.lines.append(logs["text"])


@pytest.mark.parametrize("share", [0.4, 0.6])
def test_a_selection_that_takes_more_than_half_the_budget_is_warned_about(corpus, tmp_path, monkeypatch, share):
    """On the test clock the selection costs exactly ``WINDOW_S`` per window; a budget it takes more than half of
    gets one warning line naming the cost and the steps trained, a budget it takes less of none."""
    import tfnas.runs.session as session_module
    clock = [0.0]
    monkeypatch.setattr(session_module, "monotonic", lambda: clock[0])
    probe = ClockedSelection(tiny_config())
    probe.score_data = batchify(corpus.valid, probe.config.score_batch_size)
    cost = WINDOW_S * probe.selection_windows()
    search = ClockedSelection(tiny_config(max_steps=None, epochs=100, budget_s=cost / share))
    search.clock, messages = clock, Messages()
    result = search.search(corpus, tmp_path / "run", [TrainTick(clock), messages])
    warnings = [line for line in messages.lines if line.startswith("warning: the selection")]
    if share < 0.5:
        assert warnings == []
    else:
        assert warnings == [f"warning: the selection takes about {cost:.0f} s ({probe.selection_windows()} validation "
                            f"windows), more than half of budget_s={cost / share:g}, so the shared weights trained "
                            f"{result.metrics['steps']} steps; lower round_size, score_batches or rescore_top to "
                            "leave them more"]


def test_the_selection_keeps_the_best_cell_by_the_shared_weights_on_the_validation_split(full, corpus):
    """Recomputed independently: the folder's model and weights (`WeightSharingEvaluator`), the validation split at
    the score batch with states carried across windows; the 2 best of each round by their score on 2 windows are
    rescored on the whole split, and the best of those is the search's cell."""
    out, search, result = full
    c = search.config
    evaluator = WeightSharingEvaluator.from_search(out, corpus=corpus)
    data = batchify(corpus.valid, c.score_batch_size)
    cheap, whole = (WeightSharingEvaluator(evaluator.model, data, c.bptt, batches) for batches in (2, None))
    record = json.loads((out / SELECTION_FILE).read_text())
    assert record["step"] == 8 and len(record["rounds"]) == 2
    finalists = []
    for r, rnd in enumerate(record["rounds"]):
        cells = search.round_cells(r)
        assert [search.space.decode([int(v) for v in s.split()]) for s in rnd["cells"]] == cells
        losses = [cheap.loss(g) for g in cells]
        np.testing.assert_allclose(rnd["losses"], losses, rtol=1e-5)
        best_two = sorted(range(5), key=lambda k: (losses[k], k))[:2]
        assert [k for k, _ in rnd["rescored"]] == best_two
        finalists += [(whole.loss(cells[k]), cells[k]) for k in best_two]
        np.testing.assert_allclose([loss for _, loss in rnd["rescored"]], [f[0] for f in finalists[-2:]], rtol=1e-5)
    assert result.genotype == min(finalists, key=lambda f: f[0])[1]
    assert result.metrics["selection_ppl"] == pytest.approx(perplexity(min(f[0] for f in finalists)), rel=1e-5)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert history[-1]["genotype"]["nodes"] == [list(n) for n in result.genotype.nodes]
    assert history[-1]["architecture"]["selected"]


def test_a_killed_search_resumes_to_the_same_cell_weights_and_selection(full, corpus, tmp_path):
    out, _, result = full
    with pytest.raises(KeyboardInterrupt):
        RswsSearch(tiny_config()).search(corpus, tmp_path / "cut", [Kill("train", step=7)])
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text() == "step-4"
    resumed = RswsSearch(tiny_config()).search(corpus, tmp_path / "cut")
    assert resumed.genotype == result.genotype and resumed.metrics == result.metrics
    assert_same_checkpoints(out, tmp_path / "cut")
    assert (tmp_path / "cut" / SELECTION_FILE).read_text() == (out / SELECTION_FILE).read_text()


def test_a_search_killed_in_the_selection_resumes_with_the_next_round(full, corpus, tmp_path):
    out, _, result = full
    with pytest.raises(KeyboardInterrupt):
        RswsSearch(tiny_config()).search(corpus, tmp_path / "cut", [KillAfterRound(1)])
    assert len(json.loads((tmp_path / "cut" / SELECTION_FILE).read_text())["rounds"]) == 1
    resumed_search = Recording(tiny_config())
    resumed = resumed_search.search(corpus, tmp_path / "cut")
    assert len(resumed_search.scored) == 5 + 2                              # round 2 only
    assert resumed.genotype == result.genotype and resumed.metrics == result.metrics
    assert (tmp_path / "cut" / SELECTION_FILE).read_text() == (out / SELECTION_FILE).read_text()
    assert_same_checkpoints(out, tmp_path / "cut")


def test_an_epoch_before_the_last_records_a_preview_and_the_last_the_selection(corpus, tmp_path):
    """Two epochs (about 25 steps each): epoch 1's cell is the best of the first ``preview_cells`` cells of round 0
    by their loss from zero states on the first ``derive_batches`` validation windows; epoch 2's (the last) is the
    selection's, which runs once."""
    config = tiny_config(batch_size=16, max_steps=None, epochs=2, checkpoint_interval=50)
    search = Recording(config)
    previews = []
    loss_of = search.architecture_loss

    def recording_loss(genotype, windows):
        loss = loss_of(genotype, windows)
        previews.append((genotype, len(windows), loss))
        return loss

    search.architecture_loss = recording_loss
    result = search.search(corpus, tmp_path)
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert [h["architecture"]["selected"] for h in history] == [False, True]
    assert len(search.scored) == 10 + 4                                        # one selection, at the end
    assert [g for g, _, _ in previews] == search.round_cells(0)[:3]            # epoch 1 only
    assert {n for _, n, _ in previews} == {config.derive_batches}
    best = min(previews, key=lambda p: p[2])
    assert Genotype.from_dict(history[0]["genotype"]) == best[0]
    assert history[0]["architecture"]["derived_loss"] == best[2]
    assert Genotype.from_dict(history[1]["genotype"]) == result.genotype


# ------------------------------------------------------------------ stage 2
def test_stage2_retrains_the_best_cells_and_keeps_the_best(full, corpus, tmp_path):
    """Turned on after the search (stage2_top is resumable): no cell is scored again, the 2 best cells of the
    selection are trained from scratch in their own run folders, and the one of lowest validation perplexity is
    the search's cell. A second run retrains nothing."""
    out, _, result = full
    folder = tmp_path / "search"
    RswsSearch(tiny_config()).search(corpus, folder)
    later = Recording(tiny_config(stage2_top=2))
    staged = later.search(corpus, folder)
    assert later.scored == [] and later.trained_archs == []
    top = later.ranked()[:2]
    assert top[0][0] == result.genotype and len({g for g, _ in top}) == 2
    record = staged.metrics["stage2"]
    assert [Genotype.from_dict(cell["genotype"]) for cell in record["cells"]] == [g for g, _ in top]
    ppls = []
    for cell in record["cells"]:
        trained = json.loads((folder / cell["folder"] / "result.json").read_text())
        assert cell["best_valid_ppl"] == trained["best_valid_ppl"] and cell["steps"] == trained["steps"] == 3
        ppls.append(trained["best_valid_ppl"])
    assert len(set(ppls)) == 2 and record["best"] == int(np.argmin(ppls))
    assert staged.genotype == top[record["best"]][0] and staged.metrics["stage2_valid_ppl"] == min(ppls)
    assert load_genotype(folder / "genotype.json") == staged.genotype
    again = RswsSearch(tiny_config(stage2_top=2)).search(corpus, folder)
    assert again.genotype == staged.genotype and again.metrics["stage2"] == record


# ------------------------------------------------------------------ the command line
def test_cli_rsws_search_then_train(tmp_path, tiny_corpus):
    out = tmp_path / "search"
    assert main(["search", "--strategy", "rsws", "--config", "quick_rsws", "--dataset", str(tiny_corpus),
                 "--out", str(out), "--max-steps", "4", "--round-size", "4", "--rescore-top", "1",
                 "--score-batch-size", "8", "--score-batches", "1", "--batch-size", "4", "--bptt", "8",
                 "--emsize", "8", "--nhid", "8", "--quiet"]) == 0
    g = load_genotype(out / "genotype.json")
    assert g.provenance["strategy"] == "rsws" and g.steps == 8 and g.provenance["metrics"]["cells_scored"] == 8
    assert main(["train", "--genotype", str(out / "genotype.json"), "--dataset", str(tiny_corpus),
                 "--out", str(tmp_path / "train"), "--max-steps", "2", "--batch-size", "4", "--eval-batch-size", "4",
                 "--test-batch-size", "4", "--bptt", "6", "--emsize", "8", "--nhid", "8", "--quiet", "--no-test"]) == 0
