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

Calling `search` again on the same folder resumes after the last saved
round (the newest readable checkpoint) and proposes exactly what the
uninterrupted run would have proposed (other settings than the resumable
ones, or other data, are refused: `tfnas.runs.folder`; the folder is
locked while the search runs: `tfnas.runs.lock`). Ctrl-C checkpoints at the
next round boundary, or stops the child being trained at its next step
(`tfnas.runs.interrupt`). The result is the trial with the lowest
validation perplexity.
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
from tfnas.evaluation.evaluators import Evaluator, ShortTrainingEvaluator, WeightSharingEvaluator, genotype_key
from tfnas.evaluation.executors import EXECUTORS, Executor, make_executor
from tfnas.hparams import ROUND_TRIALS, TrialHParams
from tfnas.runs.atomic import append_jsonl, write_jsonl
from tfnas.runs.folder import TRIALS_FILE, corpus_fingerprint
from tfnas.runs.session import RunSession
from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Bound, SettingsError, setting, settings
from tfnas.spaces.dag import DagSpace
from tfnas.genotypes.base import MAX_NODES
from tfnas.genotypes.files import AnyGenotype, genotype_from_dict
from tfnas.spaces.tree import TreeSpace
from tfnas.strategies.base import STEPS, SearchDivergedError, SearchResult, Strategy
from tfnas.policies.reinforce import REWARDS, perplexity_reward, reward_overflows

#: ``--space`` names.
SPACES = ("dag", "tree")
#: ``evaluator`` names.
EVALUATORS = ("short_training", "weight_sharing")


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

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = (("space", SPACES), ("evaluator", EVALUATORS), ("executor", EXECUTORS), ("reward", REWARDS))
        for name, known in checks:
            if getattr(self, name) not in known:
                raise SettingsError(f"{name} must be one of {list(known)}; received: {getattr(self, name)!r}")


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {**dataclasses.asdict(self), "status": self.status.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Trial":
        """Inverse of `to_dict`."""
        return cls(**{**data, "status": TrialStatus(data["status"])})


def _json_ppl(ppl: float) -> float | None:
    return ppl if math.isfinite(ppl) else None


class BlackBoxSearch(Strategy, abc.ABC):
    """Base class of ask/tell strategies; see the module docstring.

    Args:
        config: a `BlackBoxConfig` (or subclass).
        evaluator: overrides the evaluator the config names (tests, custom objectives).
        executor: overrides the executor the config names.
    """

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
        """Learns from the round's finished trials; returns numbers to log."""
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
        return ShortTrainingEvaluator(child, corpus=corpus, workdir=self.out_dir / "children")

    def make_executor(self) -> Executor:
        c = self.config
        return make_executor(c.executor, c.ray_address, num_cpus=c.ray_num_cpus, cpus_per_trial=c.cpus_per_trial,
                             gpus_per_trial=c.gpus_per_trial) if c.executor == "ray" else make_executor("local")

    def reward(self, ppl: float) -> float:
        return perplexity_reward(ppl, self.config.reward_c, self.config.reward)

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
    def _save(self) -> Path:
        state = {"round": self.round, "trials": [t.to_dict() for t in self.trials], "history": self.history,
                 "rng": self.rng.bit_generator.state, "extra": self.extra_state()}
        return self.session.save(self.round, self.state_variables(), state)

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
        self._rewrite_trial_records()
        return restored.path

    def _rewrite_trial_records(self) -> None:
        """``trials.jsonl`` from ``self.trials`` (trials of a killed session past the checkpoint dropped)."""
        write_jsonl(self.out_dir / TRIALS_FILE, [t.to_dict() for t in self.trials])

    @property
    def score_cache(self) -> dict[str, float]:
        return {t.key: (math.inf if t.ppl is None else t.ppl)
                for t in self.trials if t.status is not TrialStatus.FAILED}

    def best_trial(self) -> Trial | None:
        ok = [t for t in self.trials if t.ppl is not None]
        return min(ok, key=lambda t: (t.ppl, t.trial)) if ok else None

    # ----------------------------------------------------------------- loop
    def search(self, corpus: Corpus, out_dir: str | Path, callbacks: Sequence[Callback] = ()) -> SearchResult:
        """Runs or resumes the search in ``out_dir``; see the module docstring."""
        self.out_dir = Path(out_dir)
        # Its errors (a split smaller than the child's batch, no shared weights): before the folder is written.
        self.evaluator = self._evaluator if self._evaluator is not None else self.make_evaluator(corpus)
        self.space = make_space(self.config, self.evaluator)
        callbacks = [TrialHParams(self.out_dir, self.space), *callbacks]  # a round's sessions before it is shown
        with RunSession(self.out_dir, "search", self.name, self.config, corpus_fingerprint(corpus), callbacks,
                        self.config.keep_checkpoints) as session:
            self._start(corpus, session)
            try:
                self._loop()
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
        self.build()
        latest = self._restore()
        if latest is not None:
            self.callbacks.on_event("message", {"text": f"resumed from {latest} (round {self.round}, "
                                                        f"{len(self.trials)} trials)"})
        else:
            self._rewrite_trial_records()
        self.executor = self._executor if self._executor is not None else self.make_executor()

    def _loop(self) -> None:
        c = self.config
        while len(self.trials) < c.max_trials:
            self.session.stop_if_pending(f"at round {self.round}", self._save)
            if self.session.over_budget(c.budget_s):
                self._save()
                break
            proposals = self.propose(min(c.trials_per_round, c.max_trials - len(self.trials)))
            if not proposals:
                self.callbacks.on_event("message", {"text": "the search space is exhausted"})
                break
            new = []
            for g, (ppl, status, error) in zip(proposals, self._evaluate(proposals)):
                if reward_overflows(ppl, c.reward):
                    ppl, status, error = (math.inf, TrialStatus.FAILED,
                                          f"the reward c / ppl^2 overflows at perplexity {ppl:.4g} (the child "
                                          f"diverged)")
                new.append(Trial(trial=len(self.trials) + len(new), round=self.round, key=genotype_key(g),
                                 genotype={k: v for k, v in g.to_dict().items() if k != "provenance"},
                                 choices=[int(x) for x in self.space.encode(g)], ppl=_json_ppl(ppl),
                                 reward=self.reward(ppl), status=status, error=error))
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

    def _finish(self) -> SearchResult:
        best = self.best_trial()
        if best is None:
            raise SearchDivergedError(f"all {len(self.trials)} trials failed; no genotype was written "
                                      f"(see {self.out_dir / TRIALS_FILE})")
        metrics = {"steps": len(self.trials), "trials": len(self.trials), "rounds": self.round,
                   "valid_ppl": best.ppl, "best_trial": best.trial, "strategy": self.name,
                   "failed": sum(t.status is TrialStatus.FAILED for t in self.trials)}
        genotype = genotype_from_dict(best.genotype)
        return self.finish(self.session, genotype, self.history, metrics,
                           {"step": self.round, "trials": len(self.trials), "valid_ppl": best.ppl,
                            "genotype": json.dumps(genotype.to_tokens())})
