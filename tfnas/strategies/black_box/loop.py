"""The ask/tell loop shared by black-box strategies (random search, REINFORCE, NAO).

As KerasTuner's ``Oracle``, the base class `BlackBoxSearch` owns the loop,
the trial bookkeeping, retries and the saved state; a strategy implements
one decision, `propose` (the next ``n`` genotypes), and may learn from the
results in `observe`. Each round:

1. ``propose(n)`` with ``n = trials_per_round`` (the ``m`` of Zoph & Le);
2. the executor runs the evaluator on them (``inf`` perplexity when an
   evaluation still fails after ``trial_retries`` retries; a genotype seen
   before reuses its score when ``reuse_scores``);
3. rewards ``c / ppl^2`` (``reward: inv_square``, Zoph & Le) or ``c / ppl``
   (``inv``, ENAS) are attached and ``observe(trials)`` is called; a child
   whose ``ppl^2`` overflows (a diverged loss, perplexity near the cap of
   ``exp(700)``) is a failed trial with reward 0, as one that raised;
4. the whole state is checkpointed (trials, RNG, round, history, the
   strategy's variables such as the controller and its optimizer slots), then
   a ``"round"`` event is sent to the callbacks.

Each trial is recorded as a line of ``trials.jsonl`` (rewritten from the
saved state when a search starts or resumes) and sent with its round's
``"round"`` event (`tfnas.hparams.ROUND_TRIALS`), from which the callback
`tfnas.hparams.TrialHParams`, which `search` adds, writes its session of
TensorBoard's HParams dashboard (its genotype's choices and ``valid_ppl``).
A child trained by ``evaluator: short_training`` writes its curves to the
TensorBoard runs ``children/<key>/train`` and ``children/<key>/validation``
(`CHILDREN_LOGDIR`; ``key``, the trial record's, names its genotype).

Calling `search` again on the same folder resumes after the last saved
round (the newest readable checkpoint) and proposes exactly what the
uninterrupted run would have proposed (other settings than the resumable
ones, or other data, are refused: `tfnas.runs.folder`; the folder is
locked while the search runs: `tfnas.runs.lock`). Ctrl-C checkpoints at the
next round boundary, or stops the child being trained at its next step
(`tfnas.runs.interrupt`). The result is the trial with the lowest
validation perplexity.

``scheduler: asha`` trains children in ASHA's rungs (Li et al., MLSys
2020, Algorithm 2; the bookkeeping is `tfnas.strategies.black_box.asha`):
rung ``k`` trains a child to ``r_min * eta^k`` steps in all
(``min_child_steps``, ``reduction_factor``, up to ``max_child_steps``), and
whenever one of ``asha_workers`` is free the best not yet promoted child
among the top ``1 / eta`` of the highest rung that has one is promoted and
continues from its own checkpoint (`ContinuingEvaluator`), else a new child
starts at rung 0. Jobs run asynchronously over the executor (``submit`` /
``next_done``). How a strategy uses the rungs:

* ``propose`` feeds rung 0 only: a round's proposals wait in a queue and
  start as new children when no promotion is possible; the next round is
  proposed when the queue is empty and, for a strategy that learns
  (`BlackBoxSearch.observes_before_proposing`: REINFORCE, NAO), once the
  rounds before it are observed; random search proposes whenever a worker
  would otherwise idle;
* ``observe`` gets a round's rung-0 trials, all of them, in proposal order,
  once the last one is in: every child has one and they were all trained
  alike, so rewards (and NAO's scores and seeds, `scored_trials`) compare
  like with like; a higher rung's score exists only for the children ASHA
  kept and would compare longer training with shorter;
* ``max_trials`` counts proposals (children, a genotype proposed again
  included: it gets its first rung-0 score, ``cached``, and joins no rung);
* the result is the best child of the highest rung that has a result
  (ASHA's), and its metrics add the rung table (``rungs``: children per
  rung, ``rung_steps``), ``children`` and ``child_steps``, the steps trained
  in all.

Each finished job is a `Trial` (with its ``rung`` and ``steps``), a
checkpoint (every ``checkpoint_interval`` jobs: the rungs, the queued and
running jobs, the rounds not yet observed, the RNG and the strategy's
state) and a ``"round"`` event whose step counts jobs. The search ends when
``max_trials`` genotypes were proposed, nothing runs and no promotion is
possible, or when ``budget_s`` is spent or a callback asks to stop (no job
starts after that; the running ones are abandoned and started again by a
resume). A resume starts
the jobs that ran at its checkpoint again, each child from its own
checkpoint; a rung run again on a child trained further since scores from
its history (`tfnas.evaluation.evaluators.ShortTrainingEvaluator`), so with
the local executor the resumed search starts and promotes exactly what the
uninterrupted one would have, with any number of workers (Ray's order of
completion is the cluster's).
"""
from __future__ import annotations

import abc
import dataclasses
import enum
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tfnas.callbacks import Callback
from tfnas.config import ModelConfig, RunConfig, TrainConfig
from tfnas.data import Corpus
from tfnas.evaluation.evaluators import (ContinuingEvaluator, Evaluator, RungEvaluator, ShortTrainingEvaluator,
                                         WeightSharingEvaluator, genotype_key)
from tfnas.evaluation.executors import EXECUTORS, Executor, make_executor
from tfnas.hparams import ROUND_TRIALS, TrialHParams
from tfnas.runs.atomic import append_jsonl, write_jsonl
from tfnas.runs.folder import CHILDREN, TRIALS_FILE, corpus_fingerprint
from tfnas.runs.session import RunSession
from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Bound, SettingsError, setting, settings
from tfnas.spaces.dag import DagSpace
from tfnas.genotypes.base import MAX_NODES
from tfnas.genotypes.files import AnyGenotype, genotype_from_dict
from tfnas.spaces.tree import TreeSpace
from tfnas.strategies.base import STEPS, SearchDivergedError, SearchResult, Strategy
from tfnas.strategies.black_box.asha import AshaScheduler, rung_steps as asha_rung_steps
from tfnas.policies.reinforce import REWARDS, perplexity_reward, reward_overflows

#: The TensorBoard folder of the children's curves, under the search folder.
CHILDREN_LOGDIR = Path("tensorboard", "children")
#: ``--space`` names.
SPACES = ("dag", "tree")
#: ``evaluator`` names.
EVALUATORS = ("short_training", "weight_sharing")
#: ``scheduler`` names.
SCHEDULERS = ("none", "asha")


def child_config() -> TrainConfig:
    """A short child training (a few hundred steps of a small model), for search only."""
    return TrainConfig(model=ModelConfig(emsize=64, nhid=64, dropout=0.2, dropouth=0.1, dropoutx=0.1,
                                         dropouti=0.1, dropoute=0.0),
                       batch_size=32, eval_batch_size=32, test_batch_size=32, bptt=35, lr=20.0, epochs=1000,
                       max_steps=200, log_interval=50, checkpoint_interval=100, max_eval_batches=20)


@settings
class BlackBoxConfig(RunConfig):
    """Settings shared by black-box strategies (random search, REINFORCE).

    Defaults: Zoph & Le's space (a base-8 tree, section 3.2) and reward
    ``c / ppl^2`` with c = 80 (section 4.2); each child trained briefly by
    `child_config` (a tfnas choice: the paper trains each child 35 epochs on
    a GPU cluster); the search state is checkpointed after every round.
    ``scheduler: asha`` (module docstring): ``reduction_factor`` 4, the
    value of ASHA's experiments (Li et al., MLSys 2020); the
    lowest rung ``max_child_steps / 16`` by default (three rungs) and the
    top ``child.max_steps``, tfnas choices; one child trained at a time.
    """

    seed: int = 0
    checkpoint_interval: int = setting(1, help="rounds between checkpoints", resumable=True)
    space: str = setting("tree", help="search space: tree (Zoph & Le) or dag (DARTS/ENAS)")
    steps: int = setting(8, help="nodes of a dag cell after node 0", check=STEPS)
    base: int = setting(8, help="leaves of a tree cell (a power of two)", check=Bound(2, (MAX_NODES + 1) // 2))
    first_node: str = setting("darts", help="node 0 of a dag cell: darts, wenet or enas")
    output: str = setting("mean", help="output rule of a dag cell: mean or loose_ends")
    max_trials: int = setting(100, help="genotypes evaluated in all", resumable=True, check=AT_LEAST_ONE)
    trials_per_round: int = setting(1, help="genotypes proposed and evaluated per round (m)", check=AT_LEAST_ONE)
    evaluator: str = setting("short_training", help="how a genotype is scored: short_training or weight_sharing")
    child: TrainConfig = setting(help="the short training of each child (evaluator short_training)",
                                 factory=child_config)
    shared_weights: str | None = setting(None, help="folder of an ENAS search (evaluator weight_sharing)")
    eval_batches: int | None = setting(10, help="validation windows per weight-sharing evaluation",
                                       check=AT_LEAST_ONE)
    executor: str = setting("local", help="where children run: local or ray", resumable=True)
    ray_address: str = setting("local", help="ray: local, auto or HOST:PORT", resumable=True)
    ray_num_cpus: int | None = setting(None, help="CPUs of a local Ray instance", resumable=True,
                                       check=AT_LEAST_ONE)
    cpus_per_trial: float = setting(1.0, help="CPUs per Ray task", resumable=True, check=NON_NEGATIVE)
    gpus_per_trial: float = setting(0.0, help="GPUs per Ray task", resumable=True, check=NON_NEGATIVE)
    trial_retries: int = setting(2, help="retries of a failed evaluation", resumable=True, check=NON_NEGATIVE)
    reuse_scores: bool = setting(True, help="a genotype seen before reuses its score")
    reward: str = setting("inv_square", help="reward of a validation perplexity: inv_square (c / ppl^2) or inv "
                                             "(c / ppl)")
    reward_c: float = setting(80.0, help="the constant c of the reward", check=POSITIVE)
    scheduler: str = setting("none", help="none: every child trained by child; asha: ASHA's rungs of growing "
                                          "training, the best 1/reduction_factor of each rung continued")
    reduction_factor: int = setting(4, help="asha: eta, rungs eta times longer and the best 1/eta promoted "
                                            "(ASHA's experiments: 4)", check=Bound(2))
    min_child_steps: int | None = setting(None, help="asha: steps of the lowest rung (r); null: max_child_steps "
                                                     "/ reduction_factor^2 rounded down (three rungs)",
                                          check=AT_LEAST_ONE)
    max_child_steps: int | None = setting(None, help="asha: steps a child trains at most (R); null: child.max_steps",
                                          check=AT_LEAST_ONE)
    asha_workers: int = setting(1, help="asha: children in training at once (Ray tasks; local: run in turn)",
                                resumable=True, check=AT_LEAST_ONE)

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = (("space", SPACES), ("evaluator", EVALUATORS), ("executor", EXECUTORS), ("reward", REWARDS),
                  ("scheduler", SCHEDULERS))
        for name, known in checks:
            if getattr(self, name) not in known:
                raise SettingsError(f"{name} must be one of {list(known)}; received: {getattr(self, name)!r}")
        if self.scheduler == "asha":
            self.rung_steps()

    def rung_steps(self) -> list[int]:
        """ASHA's rungs (`tfnas.strategies.black_box.asha.rung_steps`) from ``min_child_steps``,
        ``max_child_steps`` (null: ``child.max_steps``) and ``reduction_factor``.

        Raises:
            SettingsError: settings that give no rungs, or that ASHA cannot run with.
        """
        eta = self.reduction_factor
        top = self.max_child_steps if self.max_child_steps is not None else self.child.max_steps
        refusal = None
        if self.evaluator != "short_training":
            refusal = f"scheduler asha continues the training of children; evaluator {self.evaluator!r} trains none"
        elif not self.reuse_scores:
            refusal = ("scheduler asha gives a genotype proposed again the rung-0 score of its child, whose folder "
                       "trains on; reuse_scores must be true")
        elif top is None:
            refusal = "scheduler asha counts a child's training in steps: set max_child_steps or child.max_steps"
        elif self.min_child_steps is None and top < eta ** 2:
            refusal = (f"max_child_steps {top} is less than reduction_factor^2 = {eta ** 2}: set min_child_steps "
                       f"or a larger max_child_steps")
        elif self.min_child_steps is not None and self.min_child_steps > top:
            refusal = f"min_child_steps ({self.min_child_steps}) must be at most max_child_steps ({top})"
        if refusal is not None:
            raise SettingsError(refusal)
        return asha_rung_steps(self.min_child_steps if self.min_child_steps is not None else top // eta ** 2,
                               top, eta)


def make_space(config: Any, evaluator: Evaluator | None = None) -> DagSpace | TreeSpace:
    """The search space a config names (``space``: ``dag`` with ``steps``, ``tree`` with ``base``).

    With a `WeightSharingEvaluator` the DAG space is the one of its shared
    weights (their ``steps``, ``first_node`` and ``output``).
    """
    if isinstance(evaluator, WeightSharingEvaluator):
        return evaluator.space
    if config.space == "tree":
        return TreeSpace(config.base)
    return DagSpace(config.steps, first_node=config.first_node, output=config.output)


class TrialStatus(str, enum.Enum):
    """How a trial got its score."""

    OK = "ok"            #: evaluated
    CACHED = "cached"    #: a genotype tried before: its score was reused (``reuse_scores``)
    FAILED = "failed"    #: every attempt raised; no perplexity, reward 0


@dataclass(frozen=True)
class Trial:
    """One evaluated genotype: a line of ``trials.jsonl`` and of the saved state.

    Attributes:
        trial: its index in the search.
        round: the round that proposed it.
        key: `genotype_key` of the genotype.
        genotype: the genotype's JSON object, without provenance.
        choices: its token choices in the search space (`SearchSpace.encode`).
        ppl: validation perplexity, or None when it failed or diverged.
        reward: the reward of that perplexity (0 when it failed).
        status: a `TrialStatus`.
        error: the last error of a failed trial.
        rung: ASHA's rung the child was trained to (0 without ASHA).
        steps: the child's steps in all at that rung (None without ASHA).
    """

    trial: int
    round: int
    key: str
    genotype: dict[str, Any]
    choices: list[int]
    ppl: float | None
    reward: float
    status: TrialStatus
    error: str | None = None
    rung: int = 0
    steps: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (without ``rung`` and ``steps`` when there are no rungs: the records of before)."""
        data = {**dataclasses.asdict(self), "status": self.status.value}
        if self.steps is None:
            del data["rung"], data["steps"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Trial":
        """Inverse of `to_dict`."""
        return cls(**{**data, "status": TrialStatus(data["status"])})


def _json_ppl(ppl: float) -> float | None:
    return ppl if math.isfinite(ppl) else None


def _plain_genotype(genotype: AnyGenotype) -> dict[str, Any]:
    """A genotype's JSON object without provenance (what a `Trial` and a `Job` hold)."""
    return {k: v for k, v in genotype.to_dict().items() if k != "provenance"}


@dataclass
class Job:
    """A child's training to an ASHA rung: what the asynchronous loop runs, saved while it waits or runs.

    Attributes:
        key: `genotype_key` of the child.
        genotype: its JSON object, without provenance.
        rung: the rung it is trained to.
        round: the round (the `BlackBoxSearch.propose` call) that proposed the child.
        proposal: the child's position among all proposals (a new child at rung 0), or None (a promotion).
        attempt: failed attempts so far (``trial_retries``).
    """

    key: str
    genotype: dict[str, Any]
    rung: int
    round: int
    proposal: int | None = None
    attempt: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Job":
        """Inverse of `to_dict`."""
        return cls(**data)


class BlackBoxSearch(Strategy, abc.ABC):
    """Base class of ask/tell strategies; see the module docstring.

    Args:
        config: a `BlackBoxConfig` (or subclass).
        evaluator: overrides the evaluator the config names (tests, custom objectives).
        executor: overrides the executor the config names.
    """

    #: With ASHA: a round is proposed only once the rung-0 results of the rounds before it are observed (REINFORCE
    #: and NAO propose from what they learned); a strategy that learns nothing sets it False.
    observes_before_proposing: bool = True

    def __init__(self, config: BlackBoxConfig, evaluator: Evaluator | None = None,
                 executor: Executor | None = None):
        self.config = config
        self._evaluator = evaluator
        self._executor = executor

    # ------------------------------------------------------------- subclass
    def build(self) -> None:
        """Creates the strategy's state (e.g. the controller) once ``self.space`` exists."""

    @abc.abstractmethod
    def propose(self, n: int) -> list[AnyGenotype]:
        """The next ``n`` genotypes to evaluate (fewer only when the space is exhausted)."""

    def observe(self, trials: list[Trial]) -> dict[str, float]:
        """Learns from the round's finished trials (with ASHA: their rung-0 trials); returns numbers to log."""
        return {}

    def state_variables(self) -> list:
        """TensorFlow variables to checkpoint (a controller and its optimizer)."""
        return []

    def extra_state(self) -> dict[str, Any]:
        """JSON state of a subclass, saved in checkpoints."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restores what `extra_state` returned."""

    # ---------------------------------------------------------- evaluation
    def make_evaluator(self, corpus: Corpus) -> Evaluator:
        """The evaluator the config names."""
        c = self.config
        if c.evaluator == "weight_sharing":
            if not c.shared_weights:
                raise SettingsError("evaluator 'weight_sharing' needs shared_weights: the folder of an ENAS search "
                                    "(tfnas search --strategy enas --out FOLDER)")
            if c.space != "dag":
                raise SettingsError("evaluator 'weight_sharing' scores DAG genotypes; use --space dag")
            return WeightSharingEvaluator.from_search(c.shared_weights, corpus=corpus, max_batches=c.eval_batches)
        child = dataclasses.replace(c.child, **c.corpus_settings())
        return ShortTrainingEvaluator(child, corpus=corpus, workdir=self.out_dir / CHILDREN,
                                      logdir=self.out_dir / CHILDREN_LOGDIR)

    def make_executor(self) -> Executor:
        c = self.config
        return make_executor(c.executor, c.ray_address, num_cpus=c.ray_num_cpus, cpus_per_trial=c.cpus_per_trial,
                             gpus_per_trial=c.gpus_per_trial) if c.executor == "ray" else make_executor("local")

    def reward(self, ppl: float) -> float:
        return perplexity_reward(ppl, self.config.reward_c, self.config.reward)

    def _diverged(self, ppl: float, status: TrialStatus, error: str | None
                  ) -> tuple[float, TrialStatus, str | None]:
        """``(ppl, status, error)``, or a failed trial's when the reward of ``ppl`` overflows (the child diverged)."""
        if reward_overflows(ppl, self.config.reward):
            return (math.inf, TrialStatus.FAILED,
                    f"the reward c / ppl^2 overflows at perplexity {ppl:.4g} (the child diverged)")
        return ppl, status, error

    def _evaluate(self, proposals: list[AnyGenotype]) -> list[tuple[float, TrialStatus, str | None]]:
        """``(ppl, status, error)`` per proposal, with score reuse and retries."""
        c = self.config
        results: list[tuple[float, TrialStatus, str | None] | None] = [None] * len(proposals)
        pending = []
        for i, g in enumerate(proposals):
            key = genotype_key(g)
            if c.reuse_scores and key in self.score_cache:
                results[i] = (self.score_cache[key], TrialStatus.CACHED, None)
            else:
                pending.append(i)
        errors: dict[int, str] = {}
        for attempt in range(c.trial_retries + 1):
            if not pending:
                break
            if attempt:
                self.callbacks.on_event("message", {"text": f"retrying {len(pending)} failed evaluation(s) "
                                                            f"(attempt {attempt + 1}): {errors[pending[0]]}"})
            outcomes = self.executor.map(self.evaluator, [proposals[i] for i in pending])
            failed = []
            for i, outcome in zip(pending, outcomes):
                if isinstance(outcome, BaseException):
                    errors[i] = f"{type(outcome).__name__}: {outcome}"
                    failed.append(i)
                else:
                    results[i] = (float(outcome), TrialStatus.OK, None)
            pending = failed
        for i in pending:
            results[i] = (math.inf, TrialStatus.FAILED, errors[i])
        return results  # type: ignore[return-value]

    # ----------------------------------------------------------- run state
    @property
    def _step(self) -> int:
        """The step of checkpoints and events: rounds, or with ASHA finished jobs."""
        return self.round if self.asha is None else self.jobs_done

    def _save(self) -> Path:
        state = {"round": self.round, "trials": [t.to_dict() for t in self.trials], "history": self.history,
                 "rng": self.rng.bit_generator.state, "extra": self.extra_state()}
        if self.asha is not None:
            state["asha"] = {"scheduler": self.asha.to_dict(), "jobs_done": self.jobs_done,
                             "queue": [j.to_dict() for j in self.queue],
                             "running": [j.to_dict() for j in self.running], "round_sizes": self.round_sizes,
                             "waiting": [[r, p, t] for r, batch in self.waiting.items() for p, t in batch.items()],
                             "exhausted": self.exhausted}
        self._saved_at = self._step
        return self.session.save(self._step, self.state_variables(), state)

    def _restore(self) -> Path | None:
        """Restores the newest readable checkpoint (warning about skipped ones); returns it, None if none."""
        restored = self.session.restore(self.state_variables())
        if restored is None:
            return None
        state = restored.state
        self.round, self.history = state["round"], state["history"]
        self.trials = [Trial.from_dict(t) for t in state["trials"]]
        self.rng.bit_generator.state = state["rng"]
        self.load_extra_state(state["extra"])
        if self.asha is not None:
            self._restore_asha(state["asha"])
        self._saved_at = self._step
        self._rewrite_trial_records()
        return restored.path

    def _restore_asha(self, state: dict[str, Any]) -> None:
        """The rungs, the queued and running jobs and the rounds not yet observed of a checkpoint."""
        self.asha = AshaScheduler.from_dict(state["scheduler"])   # the same rungs: their settings are not resumable
        self.jobs_done, self.exhausted = state["jobs_done"], state["exhausted"]
        self.queue = [Job.from_dict(j) for j in state["queue"]]
        self.running = [Job.from_dict(j) for j in state["running"]]
        self.round_sizes = list(state["round_sizes"])
        self.waiting = {}
        for r, p, t in state["waiting"]:
            self.waiting.setdefault(r, {})[p] = t
        for t in self.trials:
            if t.rung == 0:
                self._rung0.setdefault(t.key, t)

    def _rewrite_trial_records(self) -> None:
        """``trials.jsonl`` from ``self.trials`` (trials of a killed session past the checkpoint dropped)."""
        write_jsonl(self.out_dir / TRIALS_FILE, [t.to_dict() for t in self.trials])

    @property
    def score_cache(self) -> dict[str, float]:
        return {t.key: (math.inf if t.ppl is None else t.ppl)
                for t in self.trials if t.status is not TrialStatus.FAILED}

    def scored_trials(self) -> list[Trial]:
        """The trials a strategy learns from: one per proposed genotype (with ASHA its rung-0 trial, all children
        trained alike), in the order they were recorded."""
        return [t for t in self.trials if t.rung == 0]

    def tried_genotypes(self) -> list[AnyGenotype]:
        """Every genotype proposed so far: those of `scored_trials`, then (ASHA) those waiting for or in their
        rung-0 training."""
        waiting = [j.genotype for j in [*self.queue, *self.running] if j.rung == 0]
        return [genotype_from_dict(g) for g in [*(t.genotype for t in self.scored_trials()), *waiting]]

    def best_trial(self) -> Trial | None:
        """The trial of lowest validation perplexity at the highest rung that has one (ASHA's result; without
        rungs, of all trials); ties go to the earlier trial."""
        ok = [t for t in self.trials if t.ppl is not None]
        if not ok:
            return None
        top = max(t.rung for t in ok)
        return min((t for t in ok if t.rung == top), key=lambda t: (t.ppl, t.trial))

    # ----------------------------------------------------------------- loop
    def search(self, corpus: Corpus, out_dir: str | Path, callbacks: Sequence[Callback] = ()) -> SearchResult:
        """Runs or resumes the search in ``out_dir``; see the module docstring."""
        self.out_dir = Path(out_dir)
        # Its errors (a split smaller than the child's batch, no shared weights): before the folder is written.
        self.evaluator = self._evaluator if self._evaluator is not None else self.make_evaluator(corpus)
        if self.config.scheduler == "asha" and not isinstance(self.evaluator, ContinuingEvaluator):
            raise SettingsError(f"scheduler asha continues children's training; the evaluator "
                                f"{type(self.evaluator).__name__} has no evaluate_at(genotypes, steps)")
        self.space = make_space(self.config, self.evaluator)
        callbacks = [TrialHParams(self.out_dir, self.space), *callbacks]  # a round's sessions before it is shown
        with RunSession(self.out_dir, "search", self.name, self.config, corpus_fingerprint(corpus), callbacks,
                        self.config.keep_checkpoints) as session:
            self._start(corpus, session)
            try:
                if self.asha is None:
                    self._loop()
                else:
                    self._asha_loop()
            finally:
                if self._executor is None:
                    self.executor.close()
            return self._finish()

    def _start(self, corpus: Corpus, session: RunSession) -> None:
        """The space, the strategy's state and the executor, restored from the newest checkpoint."""
        c = self.config
        self.session = session
        self.callbacks = session.callbacks
        self.corpus = corpus
        if self.space != make_space(c):
            self.callbacks.on_event("message", {"text": f"searching {self.space!r}, the space of the shared weights"})
        self.rng = np.random.default_rng(c.seed)
        self.round, self.trials, self.history = 0, [], []
        self.asha = AshaScheduler(c.rung_steps(), c.reduction_factor) if c.scheduler == "asha" else None
        self.jobs_done, self.exhausted, self.round_sizes = 0, False, []
        self.queue: list[Job] = []
        self.running: list[Job] = []
        self.waiting: dict[int, dict[int, int]] = {}
        self._rung0: dict[str, Trial] = {}
        self._saved_at: int | None = None
        self.build()
        latest = self._restore()
        if latest is not None:
            self.callbacks.on_event("message", {"text": f"resumed from {latest} (round {self.round}, "
                                                        f"{len(self.trials)} trials)"})
        else:
            self._rewrite_trial_records()
        self.executor = self._executor if self._executor is not None else self.make_executor()

    def _stops(self) -> bool:
        """Whether the search ends at this boundary before its trials are done: ``budget_s`` spent, or a callback's
        stop (`tfnas.callbacks.Callback.stop_requested`, not recorded: a resume goes on)."""
        return self.session.over_budget(self.config.budget_s) or self.callbacks.stop_requested

    def _loop(self) -> None:
        c = self.config
        while len(self.trials) < c.max_trials:
            self.session.stop_if_pending(f"at round {self.round}", self._save)
            if self._stops():
                self._save()
                break
            proposals = self.propose(min(c.trials_per_round, c.max_trials - len(self.trials)))
            if not proposals:
                self.callbacks.on_event("message", {"text": "the search space is exhausted"})
                break
            new = []
            for g, outcome in zip(proposals, self._evaluate(proposals)):
                ppl, status, error = self._diverged(*outcome)
                new.append(Trial(trial=len(self.trials) + len(new), round=self.round, key=genotype_key(g),
                                 genotype=_plain_genotype(g), choices=[int(x) for x in self.space.encode(g)],
                                 ppl=_json_ppl(ppl), reward=self.reward(ppl), status=status, error=error))
            self.trials += new
            for trial in new:
                append_jsonl(self.out_dir / TRIALS_FILE, trial.to_dict())
            logs = self.observe(new)
            self.round += 1
            best = self.best_trial()
            ppls = [t.ppl for t in new if t.ppl is not None]
            round_logs = {"step": self.round, "trials": len(self.trials),
                          "reward": float(np.mean([t.reward for t in new])),
                          "round_best_ppl": min(ppls) if ppls else math.inf,
                          "best_ppl": best.ppl if best else math.inf,
                          "failed": sum(t.status is TrialStatus.FAILED for t in new), **logs}
            self.history.append({k: (_json_ppl(v) if isinstance(v, float) else v) for k, v in round_logs.items()})
            if self.round % c.checkpoint_interval == 0 or len(self.trials) >= c.max_trials:
                self._save()
            self.callbacks.on_event("round", {**round_logs, ROUND_TRIALS: [t.to_dict() for t in new]})

    # ------------------------------------------------------------------ ASHA
    def _asha_loop(self) -> None:
        """ASHA (Algorithm 2) over the executor: while fewer than ``asha_workers`` jobs run, `_next_job` starts
        one; each finished job is recorded (`_record`). The jobs running at the restored checkpoint start first,
        each child continuing from its own checkpoint. It ends when nothing runs and nothing can start, or when
        ``budget_s`` is spent (the running jobs are then abandoned: a resume starts them again)."""
        c = self.config
        self._tickets: dict[int, Job] = {}
        restarted, self.running = self.running, []
        for job in restarted:
            self._start_job(job)
        while True:
            self.session.stop_if_pending(f"after {self.jobs_done} jobs", self._save)
            if self._stops():
                break
            job = self._next_job() if len(self.running) < c.asha_workers else None
            if job is not None:
                first = self._rung0.get(job.key) if job.rung == 0 else None
                if first is None:
                    self._start_job(job)
                elif first.ppl is None:
                    self._record(job, math.inf, TrialStatus.FAILED,
                                 f"trial {first.trial} of this genotype failed: {first.error}")
                else:
                    self._record(job, first.ppl, TrialStatus.CACHED, None)
                continue
            if not self.running:
                break
            ticket, outcome = self.executor.next_done()
            job = self._tickets.pop(ticket)
            self.running = [j for j in self.running if j is not job]
            if not isinstance(outcome, BaseException):
                self._record(job, float(outcome), TrialStatus.OK, None)
                continue
            error = f"{type(outcome).__name__}: {outcome}"
            if job.attempt < c.trial_retries:
                self.callbacks.on_event("message", {"text": f"retrying a failed evaluation (attempt "
                                                            f"{job.attempt + 2}): {error}"})
                self._start_job(dataclasses.replace(job, attempt=job.attempt + 1))
            else:
                self._record(job, math.inf, TrialStatus.FAILED, error)
        if self._saved_at != self._step:
            self._save()

    def _start_job(self, job: Job) -> None:
        """Submits ``job``: the child trained to its rung's steps (`RungEvaluator`)."""
        rung = RungEvaluator(self.evaluator, self.asha.steps[job.rung])
        self._tickets[self.executor.submit(rung, genotype_from_dict(job.genotype))] = job
        self.running.append(job)

    def _next_job(self) -> Job | None:
        """Algorithm 2's ``get_job``: the best promotable child of the highest rung (`AshaScheduler.promotion`),
        else the next proposal not already training at rung 0 (a round proposed first when none waits:
        `_propose_round`); None when nothing can start now."""
        promotion = self.asha.promotion()
        if promotion is not None:
            key, rung = promotion
            child = self._rung0[key]
            return Job(key, child.genotype, rung, child.round)
        if not self.queue:
            self._propose_round()
        training = {j.key for j in self.running if j.rung == 0}
        for i, job in enumerate(self.queue):
            if job.key not in training:
                return self.queue.pop(i)
        return None

    def _propose_round(self) -> None:
        """Queues the next round's proposals as rung-0 jobs, while fewer than ``max_trials`` genotypes were
        proposed and (`observes_before_proposing`) every round before was observed."""
        c = self.config
        proposed = sum(self.round_sizes)
        if self.exhausted or proposed >= c.max_trials or (
                self.observes_before_proposing and self.round < len(self.round_sizes)):
            return
        proposals = self.propose(min(c.trials_per_round, c.max_trials - proposed))
        if not proposals:
            self.exhausted = True
            self.callbacks.on_event("message", {"text": "the search space is exhausted"})
            return
        round_ = len(self.round_sizes)
        self.round_sizes.append(len(proposals))
        self.queue += [Job(genotype_key(g), _plain_genotype(g), 0, round_, proposed + i)
                       for i, g in enumerate(proposals)]

    def _record(self, job: Job, ppl: float, status: TrialStatus, error: str | None) -> None:
        """A finished job: its `Trial`, its rung result, the observation of the rounds whose rung-0 trials are all
        in (in proposal order), a checkpoint every ``checkpoint_interval`` jobs, and its ``"round"`` event."""
        c = self.config
        ppl, status, error = self._diverged(ppl, status, error)
        trial = Trial(trial=len(self.trials), round=job.round, key=job.key, genotype=job.genotype,
                      choices=[int(x) for x in self.space.encode(genotype_from_dict(job.genotype))],
                      ppl=_json_ppl(ppl), reward=self.reward(ppl), status=status, error=error, rung=job.rung,
                      steps=self.asha.steps[job.rung])
        self.trials.append(trial)
        append_jsonl(self.out_dir / TRIALS_FILE, trial.to_dict())
        if job.rung > 0 or job.key not in self._rung0:          # a repeated proposal joins no rung
            self.asha.report(job.key, job.rung, trial.ppl)
        logs: dict[str, float] = {}
        if job.rung == 0:
            self._rung0.setdefault(job.key, trial)
            self.waiting.setdefault(job.round, {})[job.proposal] = trial.trial
            while self.round < len(self.round_sizes) and \
                    len(self.waiting.get(self.round, {})) == self.round_sizes[self.round]:
                batch = self.waiting.pop(self.round)
                logs = self.observe([self.trials[batch[p]] for p in sorted(batch)])
                self.round += 1
        self.jobs_done += 1
        best = self.best_trial()
        job_logs = {"step": self.jobs_done, "trials": len(self.trials), "children": len(self._rung0),
                    "rung": job.rung, "child_steps": trial.steps, "reward": trial.reward, "ppl": ppl,
                    "best_ppl": best.ppl if best else math.inf, "failed": int(status is TrialStatus.FAILED), **logs}
        self.history.append({k: (_json_ppl(v) if isinstance(v, float) else v) for k, v in job_logs.items()})
        if self.jobs_done % c.checkpoint_interval == 0:
            self._save()
        self.callbacks.on_event("round", {**job_logs, ROUND_TRIALS: [trial.to_dict()]})

    def _finish(self) -> SearchResult:
        best = self.best_trial()
        if best is None:
            raise SearchDivergedError(f"all {len(self.trials)} trials failed; no genotype was written "
                                      f"(see {self.out_dir / TRIALS_FILE})")
        metrics = {"steps": len(self.trials), "trials": len(self.trials), "rounds": self.round,
                   "valid_ppl": best.ppl, "best_trial": best.trial, "strategy": self.name,
                   "failed": sum(t.status is TrialStatus.FAILED for t in self.trials)}
        if self.asha is not None:
            top = {}
            for t in self.trials:
                top[t.key] = max(top.get(t.key, 0), t.rung)
            metrics.update(rung_steps=self.asha.steps, rungs=self.asha.table(), children=len(self._rung0),
                           child_steps=sum(self.asha.steps[rung] for rung in top.values()), best_rung=best.rung)
        genotype = genotype_from_dict(best.genotype)
        return self.finish(self.session, genotype, self.history, metrics,
                           {"step": self._step, "trials": len(self.trials), "valid_ppl": best.ppl,
                            "genotype": json.dumps(genotype.to_tokens())})
