"""ASHA (Li et al., MLSys 2020, Algorithm 2) in the black-box loop: the rungs, the jobs against a table computed by
hand, observation of rung-0 rounds, exact resume after a kill, children that continue, and the refusals."""
import dataclasses
import json

import numpy as np
import pytest

from support import Kill, computed_record
from tfnas.data import load_corpus
from tfnas.evaluation.evaluators import genotype_key
from tfnas.runs.folder import RunFolderError
from tfnas.settings import SettingsError
from tfnas.spaces.dag import DagSpace
from tfnas.strategies.black_box.asha import AshaScheduler, rung_steps
from tfnas.strategies.black_box.loop import BlackBoxSearch, Trial, TrialStatus, child_config
from tfnas.strategies.black_box.random_search import RandomConfig

NAMES = "ABCDEFGHI"
GENOTYPES = DagSpace(2).sample_unique(len(NAMES), np.random.default_rng(0))
#: Validation perplexity of each child after 10, 30 and 90 steps (only where the table below trains it).
SCORES = {"A": {10: 50.0}, "B": {10: 40.0, 30: 38.0}, "C": {10: 60.0},
          "D": {10: 30.0, 30: 25.0, 90: 22.0}, "E": {10: 45.0}, "F": {10: 70.0},
          "G": {10: 35.0, 30: 33.0}, "H": {10: 55.0}, "I": {10: 20.0, 30: 15.0, 90: 18.0}}
# Algorithm 2 on paper, eta = 3, rungs r_k = 10 * 3^k up to 90 (K = 2), one worker, children proposed A, B, ...
# in rounds of 3; |k| is the size of rung k, "top n" its n = floor(|k| / 3) best, "new" a new child at rung 0:
#   A0 (rung 0: A50)                   top 0 -> new
#   B0 (A50 B40)                       top 0 -> new
#   C0 (A50 B40 C60)                   rung 0 top 1 = B -> promote
#   B1 (rung 1: B38)                   rung 1 top 0; rung 0 top 1 = B, promoted -> new (round 1: D E F)
#   D0 (A B C D30)                     rung 0 top 1 = D -> promote
#   D1 (rung 1: B38 D25)               rung 1 top 0; rung 0 top 1 = D, promoted -> new
#   E0 (5 at rung 0)                   rung 0 top 1 = D -> new
#   F0 (6)                             rung 0 top 2 = D B, both promoted -> new (round 2: G H I)
#   G0 (7: ... G35)                    rung 1 top 0; rung 0 top 2 = D G -> promote G
#   G1 (rung 1: B38 D25 G33)           rung 1 top 1 = D -> promote to rung 2
#   D2 (rung 2: D22)                   rung 1 top 1 = D, promoted; rung 0 top 2 = D G, promoted -> new
#   H0 (8)                             rung 0 top 2 = D G -> new
#   I0 (9: ... I20)                    rung 0 top 3 = I D G -> promote I
#   I1 (rung 1: B38 D25 G33 I15)       rung 1 top 1 = I -> promote to rung 2
#   I2 (rung 2: D22 I18)               every top promoted, 9 children proposed (max_trials): the end
JOBS = [("A", 0), ("B", 0), ("C", 0), ("B", 1), ("D", 0), ("D", 1), ("E", 0), ("F", 0), ("G", 0), ("G", 1),
        ("D", 2), ("H", 0), ("I", 0), ("I", 1), ("I", 2)]


class RungTable:
    """The perplexities of `SCORES`, by ``evaluate_at`` only; records each call as ``(name, steps)``."""

    def __init__(self):
        self.names = {genotype_key(g): name for name, g in zip(NAMES, GENOTYPES)}
        self.calls: list[tuple[str, int]] = []

    def evaluate(self, genotypes):
        raise AssertionError("ASHA trains children to a rung's steps (evaluate_at)")

    def evaluate_at(self, genotypes, steps):
        names = [self.names[genotype_key(g)] for g in genotypes]
        self.calls += [(name, steps) for name in names]
        return [SCORES[name][steps] for name in names]


class Listed(BlackBoxSearch):
    """Proposes `GENOTYPES` in order; records its proposals and observations as ``(kind, round, names)``."""

    name = "listed"

    def build(self):
        self.log = []

    def propose(self, n):
        start = len(self.tried_genotypes())
        new = GENOTYPES[start:start + n]
        self.log.append(("propose", self.round, NAMES[start:start + len(new)]))
        return new

    def observe(self, trials):
        self.log.append(("observe", self.round, "".join(RungTable().names[t.key] for t in trials)))
        return {}


def child(max_steps):
    return dataclasses.replace(child_config(), max_steps=max_steps)


def asha_config(**overrides):
    settings = dict(space="dag", steps=2, max_trials=9, trials_per_round=3, scheduler="asha", reduction_factor=3,
                    min_child_steps=10, max_child_steps=90)
    return RandomConfig(**{**settings, **overrides})


def names_and_rungs(search):
    table = RungTable().names
    return [(table[t.key], t.rung) for t in search.trials]


# ------------------------------------------------------------------ the rungs
@pytest.mark.parametrize("low, high, eta, steps", [
    (10, 90, 3, [10, 30, 90]),        # 90 / 10 = 3^2: K = 2
    (10, 89, 3, [10, 30]),            # floor(log_3 8.9) = 1: the top rung stays below max
    (1, 200, 4, [1, 4, 16, 64]),
    (12, 200, 4, [12, 48, 192]),      # the default r of max 200, eta 4: 200 // 16
    (5, 5, 2, [5]),                   # one rung: every child trained alike
])
def test_rungs_are_r_min_times_eta_to_the_k_up_to_r_max(low, high, eta, steps):
    assert rung_steps(low, high, eta) == steps


def test_the_default_lowest_rung_gives_three_rungs():
    config = RandomConfig(scheduler="asha", child=child(200))
    assert config.rung_steps() == [12, 48, 192]
    assert RandomConfig(scheduler="asha", reduction_factor=3, max_child_steps=80).rung_steps() == [8, 24, 72]


def test_a_failed_child_counts_in_its_rung_but_is_never_promoted_and_ties_go_to_the_earlier():
    asha = AshaScheduler([1, 2], eta=2)
    asha.report("x", 0, None)
    asha.report("y", 0, float("inf"))                     # diverged: no score either
    assert asha.promotion() is None                       # top 1 of 2 is a failed child
    asha.report("z", 0, 7.0)
    asha.report("w", 0, 7.0)
    assert asha.table() == [4, 0] and asha.promotable(0) == ["z", "w"]
    saved = json.loads(json.dumps(asha.to_dict()))
    assert asha.promotion() == ("z", 1) and asha.promotion() == ("w", 1) and asha.promotion() is None
    again = AshaScheduler.from_dict(saved)                # the same decisions from the saved state
    assert [again.promotion(), again.promotion(), again.promotion()] == [("z", 1), ("w", 1), None]
    with pytest.raises(ValueError, match="already finished rung 0"):
        asha.report("z", 0, 1.0)


# ------------------------------------------------------------------ the loop against the table
def test_promotions_follow_the_hand_computed_table(tmp_path, tiny_corpus):
    evaluator = RungTable()
    search = Listed(asha_config(), evaluator=evaluator)
    result = search.search(load_corpus(tiny_corpus), tmp_path / "s")
    assert names_and_rungs(search) == JOBS
    assert evaluator.calls == [(name, 10 * 3 ** rung) for name, rung in JOBS]
    assert [t.steps for t in search.trials] == [10 * 3 ** rung for _, rung in JOBS]
    assert [t.ppl for t in search.trials] == [SCORES[name][10 * 3 ** rung] for name, rung in JOBS]
    # Rounds of 3 children: each observed once its 3 rung-0 trials are in, the next proposed after that.
    assert search.log == [("propose", 0, "ABC"), ("observe", 0, "ABC"), ("propose", 1, "DEF"),
                          ("observe", 1, "DEF"), ("propose", 2, "GHI"), ("observe", 2, "GHI")]
    assert [t.round for t in search.trials] == [NAMES.index(name) // 3 for name, _ in JOBS]
    # The result: the best child of the highest rung with results (I at 18 beats D at 22; D's 22 > I's 15 at rung 1).
    best = search.trials[-1]
    assert result.genotype == GENOTYPES[NAMES.index("I")] and result.metrics["valid_ppl"] == 18.0
    assert result.metrics["best_trial"] == best.trial == 14 and result.metrics["best_rung"] == 2
    assert result.metrics["rungs"] == [9, 4, 2] and result.metrics["rung_steps"] == [10, 30, 90]
    # Steps trained in all: A C E F H to 10, B G to 30, D I to 90.
    assert result.metrics["child_steps"] == 5 * 10 + 2 * 30 + 2 * 90 == 290
    assert result.metrics["children"] == 9 and result.metrics["trials"] == 15
    lines = [json.loads(line) for line in (tmp_path / "s" / "trials.jsonl").read_text().splitlines()]
    assert [Trial.from_dict(line) for line in lines] == search.trials
    assert [(line["rung"], line["steps"]) for line in lines[:4]] == [(0, 10), (0, 10), (0, 10), (1, 30)]


def test_without_a_scheduler_the_trial_records_are_those_of_before():
    trial = Trial(trial=0, round=0, key="k", genotype={}, choices=[1], ppl=3.0, reward=1.0, status=TrialStatus.OK)
    assert set(trial.to_dict()) == {"trial", "round", "key", "genotype", "choices", "ppl", "reward", "status", "error"}
    assert Trial.from_dict(trial.to_dict()) == trial and trial.rung == 0 and trial.steps is None


def test_a_genotype_proposed_again_reuses_its_rung_0_score(tmp_path, tiny_corpus):
    class Twice(Listed):
        def propose(self, n):
            return [GENOTYPES[0], GENOTYPES[1], GENOTYPES[0]] if self.round == 0 else []

    evaluator = RungTable()
    search = Twice(asha_config(max_trials=3), evaluator=evaluator)
    search.search(load_corpus(tiny_corpus), tmp_path / "s")
    # A, B, then A again (cached, no training, no rung entry): rung 0 has 2 children, top floor(2/3) = 0.
    assert names_and_rungs(search) == [("A", 0), ("B", 0), ("A", 0)]
    assert [t.status for t in search.trials] == [TrialStatus.OK, TrialStatus.OK, TrialStatus.CACHED]
    assert search.trials[2].ppl == 50.0 and evaluator.calls == [("A", 10), ("B", 10)]
    assert search.asha.table() == [2, 0, 0]


@pytest.mark.parametrize("kill_at, checkpoint_interval, workers", [(7, 1, 1), (11, 1, 1), (8, 3, 1), (9, 1, 2)])
def test_a_killed_asha_search_resumes_to_the_same_jobs(tmp_path, tiny_corpus, kill_at, checkpoint_interval, workers):
    corpus = load_corpus(tiny_corpus)
    config = asha_config(checkpoint_interval=checkpoint_interval, asha_workers=workers)
    full = Listed(config, evaluator=RungTable())
    full.search(corpus, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        Listed(config, evaluator=RungTable()).search(corpus, tmp_path / "cut", [Kill("round", step=kill_at)])
    restored_at = kill_at - kill_at % checkpoint_interval
    resumed_evaluator = RungTable()
    resumed = Listed(config, evaluator=resumed_evaluator)
    resumed.search(corpus, tmp_path / "cut")
    assert names_and_rungs(resumed) == names_and_rungs(full)
    if workers == 1:
        assert names_and_rungs(full) == JOBS
        # The resumed search trains exactly the jobs after its checkpoint, no job twice.
        assert resumed_evaluator.calls == [(name, 10 * 3 ** rung) for name, rung in JOBS[restored_at:]]
    assert computed_record(tmp_path / "cut" / "trials.jsonl") == computed_record(tmp_path / "full" / "trials.jsonl")
    results = [json.loads((tmp_path / d / "search_result.json").read_text()) for d in ("full", "cut")]
    assert results[0]["metrics"] == results[1]["metrics"] and results[0]["history"] == results[1]["history"]


def test_two_local_workers_start_a_job_before_the_one_before_is_reported(tmp_path, tiny_corpus):
    evaluator = RungTable()
    search = Listed(asha_config(asha_workers=2), evaluator=evaluator)
    search.search(load_corpus(tiny_corpus), tmp_path / "s")
    # Algorithm 2 with two jobs in flight (the local executor reports them in the order they started, so the
    # jobs are reported in the order they start): a worker frees when the older job is reported, and get_job runs
    # before the younger one is. Running -> reported, then what get_job does:
    #   A0 B0 -> A;  B0 C0 -> B;  C0 (round 1 waits for round 0's C) -> C, B promoted;  B1 D0 -> B1 (rung 1: B);
    #   D0 E0 -> D, D promoted;  E0 D1 -> E;  D1 F0 -> D1 (round 2 waits for F);  F0 -> F;  G0 H0 -> G,
    #   G promoted (top 2 of 7: D G);  H0 G1 -> H;  G1 I0 -> G1, D promoted (top 1 of B38 D25 G33);
    #   I0 D2 -> I, I promoted (top 3 of 9);  D2 I1 -> D2;  I1 -> I1, I promoted;  I2 -> the end.
    jobs = ["A0", "B0", "C0", "B1", "D0", "E0", "D1", "F0", "G0", "H0", "G1", "I0", "D2", "I1", "I2"]
    assert evaluator.calls == [(job[0], 10 * 3 ** int(job[1])) for job in jobs]
    assert [f"{name}{rung}" for name, rung in names_and_rungs(search)] == jobs
    assert search.asha.table() == [9, 4, 2] and search.best_trial().key == genotype_key(GENOTYPES[8])


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("overrides, message", [
    (dict(min_child_steps=100), r"^min_child_steps \(100\) must be at most max_child_steps \(90\)$"),
    (dict(reduction_factor=1), r"^reduction_factor must be an integer >= 2; received: reduction_factor=1$"),
    (dict(evaluator="weight_sharing"), "^scheduler asha continues the training of children; evaluator "
                                       "'weight_sharing' trains none$"),
    (dict(reuse_scores=False), "reuse_scores must be true$"),
    (dict(max_child_steps=None, child=child(None)), "^scheduler asha counts a child's training in steps"),
    (dict(min_child_steps=None, max_child_steps=8), r"^max_child_steps 8 is less than reduction_factor\^2 = 9"),
    (dict(scheduler="hyperband"), r"^scheduler must be one of \['none', 'asha'\]; received: 'hyperband'$"),
])
def test_impossible_asha_settings_are_refused_in_one_line(overrides, message):
    settings = dict(space="dag", steps=2, scheduler="asha", reduction_factor=3, min_child_steps=10,
                    max_child_steps=90)
    with pytest.raises(SettingsError, match=message) as info:
        RandomConfig(**{**settings, **overrides})
    assert "\n" not in str(info.value)


def test_an_evaluator_that_cannot_continue_children_is_refused_before_the_folder_is_written(tmp_path, tiny_corpus):
    from support import SyntheticEvaluator

    space = DagSpace(2)
    with pytest.raises(SettingsError, match="has no evaluate_at"):
        Listed(asha_config(), evaluator=SyntheticEvaluator(space, space.encode(GENOTYPES[0]))).search(
            load_corpus(tiny_corpus), tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_other_rungs_on_resume_are_refused(tmp_path, tiny_corpus):
    """The rungs' settings are not resumable, child.max_steps (the default top rung) included: the child section is
    resumable as a whole or not at all."""
    corpus = load_corpus(tiny_corpus)
    config = asha_config(max_child_steps=None, child=child(90))
    with pytest.raises(KeyboardInterrupt):
        Listed(config, evaluator=RungTable()).search(corpus, tmp_path / "s", [Kill("round", step=2)])
    for changed, listed in ((dict(max_child_steps=None, child=child(30)), "child.max_steps: 90 -> 30"),
                            (dict(max_child_steps=None, child=child(90), reduction_factor=2),
                             "reduction_factor: 3 -> 2")):
        with pytest.raises(RunFolderError, match=f"with another configuration \\({listed}\\)"):
            Listed(asha_config(**changed), evaluator=RungTable()).search(corpus, tmp_path / "s")


# ------------------------------------------------------------------ real children
def real_search(out, corpus_dir, callbacks=(), **overrides):
    from support import tiny_search_config
    from tfnas.strategies.black_box.random_search import RandomSearch

    config = tiny_search_config("random", corpus_dir, scheduler="asha", reduction_factor=2, min_child_steps=2,
                                max_child_steps=8, max_trials=4, **overrides)
    search = RandomSearch(config)
    return search, search.search(load_corpus(corpus_dir), out, callbacks)


def test_real_children_are_trained_to_their_top_rung_once_with_an_evaluation_at_each_rung(tmp_path, tiny_corpus):
    search, result = real_search(tmp_path / "s", tiny_corpus)
    assert result.metrics["rung_steps"] == [2, 4, 8] and result.metrics["children"] == 4
    top: dict[str, int] = {}
    for t in search.trials:
        top[t.key] = max(top.get(t.key, 0), t.steps)
    assert result.metrics["child_steps"] == sum(top.values()) and max(top.values()) > 2   # some child promoted
    for key, steps in top.items():
        child = json.loads((tmp_path / "s" / "children" / key / "result.json").read_text())
        assert child["steps"] == steps                          # trained to its top rung in all, not more
        evaluated = [e["step"] for e in child["history"]]
        assert evaluated == [s for s in (2, 4, 8) if s <= steps]   # one evaluation per rung: a continued run
        for t in (t for t in search.trials if t.key == key):
            assert t.ppl == [e for e in child["history"] if e["step"] == t.steps][0]["best_valid_ppl"]
    best = max(t.rung for t in search.trials)
    assert result.metrics["valid_ppl"] == min(t.ppl for t in search.trials if t.rung == best)


@pytest.mark.slow
def test_a_killed_real_asha_search_resumes_bit_for_bit(tmp_path, tiny_corpus):
    """Killed after 5 jobs and before its first checkpoint: the resumed search runs every job again, on children
    trained as far as the killed one took them (a rung below a child's folder scores from its history)."""
    from support import assert_same_checkpoints

    real_search(tmp_path / "full", tiny_corpus, checkpoint_interval=100)
    with pytest.raises(KeyboardInterrupt):
        real_search(tmp_path / "cut", tiny_corpus, [Kill("round", step=5)], checkpoint_interval=100)
    assert not (tmp_path / "cut" / "checkpoints").exists()
    real_search(tmp_path / "cut", tiny_corpus, checkpoint_interval=100)
    assert (tmp_path / "full" / "trials.jsonl").read_text() == (tmp_path / "cut" / "trials.jsonl").read_text()
    children = sorted(p.name for p in (tmp_path / "full" / "children").iterdir())
    assert children == sorted(p.name for p in (tmp_path / "cut" / "children").iterdir())
    for child in children:
        assert_same_checkpoints(tmp_path / "full" / "children" / child, tmp_path / "cut" / "children" / child)


def test_asha_over_ray_workers(tmp_path, tiny_corpus):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install tfnas[ray])")
    import sys

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])   # workers cannot import this test module
    search = Listed(asha_config(executor="ray", ray_num_cpus=2, asha_workers=2), evaluator=RungTable())
    result = search.search(load_corpus(tiny_corpus), tmp_path / "s")
    assert not ray.is_initialized()                                  # the instance it started is shut down
    seen = names_and_rungs(search)
    assert sorted(name for name, rung in seen if rung == 0) == list(NAMES)     # each child once at rung 0
    for i, (name, rung) in enumerate(seen):                          # a child reaches rung k after rung k - 1
        assert rung == 0 or (name, rung - 1) in seen[:i]
    assert [t.ppl for t in search.trials] == [SCORES[name][10 * 3 ** rung] for name, rung in seen]
    assert result.metrics["rungs"][0] == 9 and result.metrics["valid_ppl"] == search.best_trial().ppl


# ------------------------------------------------------------------ learning strategies
class Converging:
    """`SyntheticEvaluator`'s landscape, each child's perplexity falling with its steps: ``p(g) * (1 + 8 / steps)``."""

    def __init__(self, space):
        from support import SyntheticEvaluator

        self.synthetic = SyntheticEvaluator(space, space.encode(space.sample(np.random.default_rng(0))))

    def evaluate(self, genotypes):
        raise AssertionError("ASHA trains children to a rung's steps (evaluate_at)")

    def evaluate_at(self, genotypes, steps):
        return [p * (1 + 8 / steps) for p in self.synthetic.evaluate(genotypes)]


@pytest.mark.parametrize("strategy", ["reinforce", "nao"])
def test_learning_strategies_observe_rung_0_rounds_and_resume_exactly(tmp_path, tiny_corpus, strategy):
    from support import assert_same_checkpoints, tiny_search_config
    from tfnas.strategies.registry import get_strategy

    corpus = load_corpus(tiny_corpus)
    config = tiny_search_config(strategy, tiny_corpus, scheduler="asha", reduction_factor=2, min_child_steps=2,
                                max_child_steps=8, asha_workers=2)
    observed = []

    def run(out, callbacks=()):
        search = get_strategy(strategy).strategy_class(config, evaluator=Converging(DagSpace(2)))
        observe = search.observe
        search.observe = lambda trials: observed.append((search.round, [t.trial for t in trials])) or observe(trials)
        search.search(corpus, out, callbacks)
        return search

    full = run(tmp_path / "full")
    # observe gets each round's rung-0 trials, all of them, in the order they were proposed; a round is proposed
    # (its trials' round) only after the round before is observed.
    rounds = [(r, [t.trial for t in full.trials if t.rung == 0 and t.round == r]) for r in range(full.round)]
    assert observed == rounds and len(rounds) == 2 and full.asha.table()[1] >= 1
    first_of_round_1 = min(i for _, trials in rounds[1:] for i in trials)
    assert first_of_round_1 > max(rounds[0][1])
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", [Kill("round", step=3)])
    resumed = run(tmp_path / "cut")
    assert resumed.trials == full.trials
    assert_same_checkpoints(tmp_path / "full", tmp_path / "cut")     # the controller or EPD and its optimizer
