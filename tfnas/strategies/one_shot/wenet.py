"""WeNet (Huang & Xiang, "WeNet: Weighted Networks for Recurrent Network Architecture Search").

Random networks are drawn from the DAG space with ``L`` nodes and the ops
tanh, relu, sigmoid and identity, every node's predecessor and op uniform
(Algorithm 1); tfnas draws the ``T`` networks distinct
(`tfnas.spaces.DagSpace.sample_unique`), a tfnas choice: Algorithm 1 has
no such rule (of the 2.6e9 networks with L = 8, 10k independent draws
hold a repeat with probability about 2%). Node 0 is
DARTS' (``first_node="darts"``, the default)::

    [c, h~] = [x_t, h_{t-1}] W0,   s0 = h_{t-1} + sigmoid(c) (tanh(h~) - h_{t-1})

§3.1 (l.55) writes it as ``c = sigmoid(W_x x_t)``, ``h = tanh(W_h
h_{t-1})``, ``s0 = h_{t-1} + c (h - h_{t-1})``. tfnas reads that as a
loose description of DARTS' node 0, for the reasons given once in
``docs/strategies/wenet.md`` ("The first node": the paper's code and its
model sizes are DARTS'; the literal node cannot leave a zero state, see
below). The literal node is the option ``first_node="wenet"``. A weighted network of ``M`` networks
(`tfnas.cells.WeightedCells`, eq. 4)::

    h_t = sum_{i=1..M} softmax(w)_i N_i(x_t, h_{t-1})

is trained as one language model; the weights ``w`` and every network's
parameters are updated together by Adam on the *training* data (no
bilevel split). Algorithm 2 runs rounds over a pool::

    pool <- T random networks;  seed <- {}                        (lines 2-3)
    while the pool is not empty:                                  (line 4)
        candidates <- the next B networks of the pool             (lines 5-6)
        candidates <- seed + candidates                           (line 7)
        train the weighted network of candidates for E epochs     (line 8)
        seed <- the K candidates with the largest weights         (line 9)
    return the network of seed with the largest weight            (line 11)

so the first round trains ``B`` networks (the seed set is empty) and the
later ones ``B + K``; E = 2 ("We train WeNet for two epochs (line 8 in
Algorithm 2)", §4.1, l.144).

Every round starts from fresh parameters (networks kept as seeds are
re-initialised, so the weights of one round compare networks trained
alike; the paper does not say) and a round seed drawn from the search RNG.
A round is a `OneShotSearch` (`WenetRound`) in ``OUT/rounds/round-NNNN/``:
it owns the BPTT loop, checkpoints, exact resume and NaN recovery. The pool
state (pool, seeds, round index, position in the pool, RNG, the summary of
every finished round) is written atomically to ``OUT/wenet_state.json``
before a round starts and after it ends, so a killed search resumes
mid-pool and mid-round and ends with the same genotype as an uninterrupted
one (Ctrl-C checkpoints the round at its next step, or stops before the next
round). A finished round's checkpoints are deleted (``keep_round_checkpoints``
keeps them): with the paper's settings one holds 120 networks and their
Adam slots (about 1 GB).

The ``first_node="wenet"`` option and the zero state. With the literal
node, ``h_{t-1} = 0`` gives ``s0 = 0`` whatever ``x_t``: the input only
gates ``h - h_{t-1}``. From a zero state such a network leaves zero only
through its sigmoid nodes (``0.5 * sigmoid(0)``), and a per-node batch
norm (the paper's search setting) removes exactly that batch-constant
offset, so the weighted network would output 0 for ever. With this option
and ``norm != "none"`` the search therefore starts every sequence from a
fixed random state (``init_noise`` > 0; the config refuses 0); DARTS' node
reads ``x_t`` from any state, so by default the state starts at zero
(``init_noise = 0``, as DARTS and `tfnas train`). A found cell is trained
by `tfnas train` from a zero state: `zero_state_live` tells whether it can
leave it, and the search warns when its best network cannot.

Each round is logged: its sorted weights (WeNet's Figure 4) go to
``OUT/rounds.jsonl``, to the result history and, as an array with the
number kept (``sorted_weights`` and ``sorted_weights_keep``), to the
``"round"`` callback event, which `tfnas.callbacks.TensorBoardLogger` draws
as a bar chart (TensorBoard ``round/sorted_weights``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import field
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnas.callbacks import KEEP_SUFFIX, Callback, CallbackList
from tfnas.cells.search.norm import NORMS
from tfnas.cells.search.weighted_cells import WeightedCells
from tfnas.config import ModelConfig
from tfnas.data import Corpus
from tfnas.genotypes.dag import ACTIVATIONS, Genotype
from tfnas.hparams import FinalHParams
from tfnas.lm.objective import regularized_loss
from tfnas.lm.model import cell_arguments, supernet
from tfnas.runs.atomic import read_json, write_json, write_jsonl
from tfnas.runs.folder import CHECKPOINTS, RunFolderError, corpus_fingerprint
from tfnas.runs.session import RunSession
from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, RATE, SettingsError, setting, settings
from tfnas.spaces.dag import DagSpace
from tfnas.strategies.base import STEPS, SearchResult, Strategy
from tfnas.strategies.one_shot.loop import Batch, OneShotConfig, OneShotSearch, one_shot_batches

STATE_FORMAT = "tfnas-wenet-state"
STATE_VERSION = 2      # 2: the first round takes B networks (version 1 took B + K)
#: The budget of a round started with the search's budget spent (before any round finished): it stops after its
#: first step boundary.
MIN_ROUND_BUDGET_S = 1e-3

#: Node 0 rules a WeNet search offers: DARTS' (the default) and the literal formula of §3.1 (an option).
WENET_FIRST_NODES = ("darts", "wenet")


def zero_state_live(genotype: Genotype) -> bool:
    """Whether the frozen cell (no normalisation) leaves the zero state ``h = 0``.

    Always true but for the ``first_node="wenet"`` option: with the literal
    node of §3.1, ``h_{t-1} = 0`` gives ``s0 = 0`` whatever
    ``x_t`` (the input only gates ``h~ - h_{t-1}``). A node reading a zero
    state is ``0.5 * act(0)``: zero unless ``act`` is sigmoid. So a cell
    whose output nodes are all zero from ``h = 0`` outputs zero forever and
    never reads its input; with a zero initial state (as `tfnas train`) it
    is a unigram model. This is the generic case: it ignores exact
    cancellations.
    """
    if genotype.first_node != "wenet":
        return True
    nonzero = {0: False}
    for i, (act, pred) in enumerate(genotype.nodes, start=1):
        nonzero[i] = nonzero[pred] or act == "sigmoid"
    return any(nonzero[i] for i in genotype.concat)


def wenet_model() -> ModelConfig:
    """WeNet's PTB search model: emsize = nhid = 200 and DARTS' search dropouts; see `WenetConfig`."""
    return ModelConfig(emsize=200, nhid=200, dropout=0.75, dropouth=0.25, dropoutx=0.75, dropouti=0.2,
                       dropoute=0.0, recompute=True)


@settings
class WenetConfig(OneShotConfig):
    """WeNet search settings; the defaults are the paper's PTB settings where it gives them.

    Algorithm 2 (§3.3.2) with the values of §4.1 (l.142-144):
    ``pool_size`` (T = 10000), ``network_batch`` (B = 100), ``seed_size``
    (K = 20), ``epochs`` (E = 2 per round, "two epochs (line 8 in Algorithm
    2)"); the space: ``steps`` (L = 8) nodes over ``ops`` (tanh, relu,
    sigmoid, identity) after DARTS' node 0 (``first_node``, see the module
    docstring); emsize = nhid = 200, batch 20, BPTT 35, dropouts 0.2 / 0.75
    / 0.25 / 0.75, batch norm on every node, Adam. ``max_steps`` caps the
    training steps of *each round*. Adam (``lr``, ``adam_beta1``,
    ``adam_beta2``, ``adam_epsilon``) updates the weights ``w`` and the
    networks together on clipped gradients (``clip``), with L2 ``wdecay``
    on the network parameters (not on ``w``); ``alpha``/``beta`` are the
    AR/TAR regularisers. tfnas choices, not given by the paper: the Adam
    settings, clip, weight decay (the paper's "weight decay 5" is garbled),
    AR/TAR, distinct networks in the pool and ``init_noise`` (0, a zero
    initial state; only the ``first_node="wenet"`` option needs more).
    """

    model: ModelConfig = field(default_factory=wenet_model)
    batch_size: int = 20
    lr: float = setting(1e-3, help="Adam learning rate of the networks and their weights w (tfnas choice)")
    epochs: int = setting(2, help="E: epochs each round trains its weighted network (Algorithm 2 line 8; "
                                  "two in WeNet §4.1)")
    max_steps: int | None = setting(None, help="caps the training steps of each round", check=AT_LEAST_ONE)
    steps: int = setting(8, help="L: nodes of every network after node 0", check=STEPS)
    ops: tuple[str, ...] = setting(ACTIVATIONS, help="activations a node may take")
    first_node: str = setting("darts", help="node 0: darts ([c, h] = [x, h_prev] W0, the node of the DARTS code "
                                            "WeNet is built on, which its 23M/33M model sizes imply) or wenet (the "
                                            "literal formula of WeNet §3.1, c = sigmoid(W_x x), h = tanh(W_h h_prev): "
                                            "a zero state stays zero, so a norm needs init_noise > 0)")
    norm: str = setting("batch", help="search-mode normalisation of every node: batch, layer or none")
    init_noise: float = setting(0.0, help="tfnas option: standard deviation of a fixed random initial state (0: "
                                          "zeros, as DARTS' code and tfnas train); first_node wenet with a norm "
                                          "needs it > 0, since that node keeps a zero state at zero",
                                 check=NON_NEGATIVE)
    pool_size: int = setting(10_000, help="T: random networks in the pool (Algorithm 1; tfnas draws them distinct)",
                             check=AT_LEAST_ONE)
    network_batch: int = setting(100, help="B: new networks of the pool trained per round", check=AT_LEAST_ONE)
    seed_size: int = setting(20, help="K: networks with the largest weights kept for the next round",
                             check=AT_LEAST_ONE)
    adam_beta1: float = setting(0.9, help="Adam beta_1", check=RATE)
    adam_beta2: float = setting(0.999, help="Adam beta_2", check=RATE)
    adam_epsilon: float = setting(1e-8, help="Adam epsilon", check=POSITIVE)
    keep_round_checkpoints: bool = setting(False, help="keep the checkpoints of finished rounds", resumable=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ops = tuple(self.ops)
        if self.norm not in NORMS:
            raise SettingsError(f"wenet config: `norm` must be one of {list(NORMS)}; received norm={self.norm!r}")
        if self.first_node not in WENET_FIRST_NODES:
            raise SettingsError(f"wenet config: `first_node` must be one of {list(WENET_FIRST_NODES)}; "
                                f"received first_node={self.first_node!r}")
        if self.first_node == "wenet" and self.norm != "none" and self.init_noise == 0:
            raise SettingsError(
                f"wenet config: first_node 'wenet' with norm {self.norm!r} needs init_noise > 0: with the literal "
                "first node a zero state stays zero (x only gates h~ - h), and the normalisation removes the "
                "constant that sigmoid nodes add, so every network would output 0; use init_noise 1.0, norm "
                "'none' or first_node 'darts'")
        space = self.space()  # validates ops (steps is bounded, so counting its cells is quick)
        if self.pool_size > space.size():
            raise SettingsError(f"wenet config: `pool_size` {self.pool_size} exceeds the {space.size()} distinct "
                                f"networks of {space!r}")

    def space(self) -> DagSpace:
        """The search space: ``steps`` nodes over ``ops`` after ``first_node``, mean output (eq. 3)."""
        return DagSpace(self.steps, self.ops, first_node=self.first_node, output="mean")

    def num_rounds(self) -> int:
        """Rounds of Algorithm 2: every round takes ``B`` networks of the pool (lines 4-6), so ``ceil(T / B)``."""
        return math.ceil(self.pool_size / self.network_batch)


class WenetRound(OneShotSearch):
    """One round of Algorithm 2: trains the weighted network of ``genotypes`` jointly.

    Every step is one Adam update of ``w`` and all parameters on a training
    batch (the validation batch of the one-shot loop is unused); `derive`
    is the network with the largest weight.
    """

    name = "wenet"
    logs_hparams = False

    def __init__(self, config: WenetConfig, genotypes: Sequence[Genotype]):
        super().__init__(config)
        self.genotypes = tuple(genotypes)

    def build(self, vocab_size: int) -> None:
        c = self.config
        m = c.model
        cell = WeightedCells(self.genotypes, norm=c.norm, init_noise=c.init_noise, state_seed=c.seed,
                             name="weighted_cells", **cell_arguments(m, c.seed))
        self.model = supernet(vocab_size, cell, m, c.seed)
        self.optimizer = keras.optimizers.Adam(c.lr, beta_1=c.adam_beta1, beta_2=c.adam_beta2,
                                               epsilon=c.adam_epsilon)
        self.variables = list(self.model.trainable_variables)
        self.optimizer.build(self.variables)
        arch = {id(v) for v in self.model.arch_variables}
        self._decayed = [id(v) not in arch for v in self.variables]
        spec = [(tf.TensorSpec((c.batch_size, None), tf.int32), tf.TensorSpec((c.batch_size, None), tf.int32),
                 [tf.TensorSpec((c.batch_size, m.nhid), tf.float32)]),
                tf.TensorSpec((), tf.float32)]
        self._step = tf.function(self._train_step, input_signature=spec, jit_compile=c.jit_compile or None)

    def state_variables(self) -> list[tf.Variable]:
        return list(self.model.variables) + list(self.optimizer.variables)

    def _train_step(self, train: Batch, lr):
        c, model = self.config, self.model
        inputs, targets, states = train
        with tf.GradientTape() as tape:
            out = model.forward(inputs, states, training=True)
            loss, raw = regularized_loss(out, targets, c.alpha, c.beta)
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, self.variables)]
        grads, norm = tf.clip_by_global_norm(grads, c.clip)
        grads = [g + c.wdecay * v if decay and c.wdecay else g
                 for g, v, decay in zip(grads, self.variables, self._decayed)]
        self.optimizer.learning_rate.assign(lr)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return {"loss": raw, "grad_norm": norm}, out.states

    def search_step(self, train: Batch, lr: float, update_arch: bool):
        del update_arch  # WeNet has no separate architecture step
        logs, states = self._step(train, tf.constant(lr, tf.float32))
        logs = {k: float(v) for k, v in logs.items()}
        logs["best_weight"] = float(self.weights().max())
        return logs, list(states)

    def weights(self) -> np.ndarray:
        """``softmax(w)`` of the round's networks, in network order."""
        return self.model.cell.probabilities_numpy()

    def derive(self) -> Genotype:
        return self.model.derive()

    def epoch_logs(self) -> dict[str, Any]:
        w = self.weights()
        return {"sorted_weights": np.sort(w)[::-1], f"sorted_weights{KEEP_SUFFIX}": self.config.seed_size,
                "best_weight": float(w.max())}

    def architecture_snapshot(self) -> dict[str, Any]:
        return {"weights": np.round(self.weights(), 6).tolist()}


class _RoundCallbacks(Callback):
    """Forwards a round's events with the round number and the global step (steps of all rounds)."""

    def __init__(self, callbacks: Callback, round_index: int, step_offset: int):
        self.callbacks, self.round, self.offset = callbacks, round_index, step_offset

    def on_event(self, kind: str, logs: Mapping[str, Any]) -> None:
        logs = dict(logs)
        if "step" in logs:
            logs["round_step"] = logs["step"]
            logs["step"] = self.offset + int(logs["step"])
        logs["round"] = self.round
        self.callbacks.on_event("round_end" if kind == "end" else kind, logs)


class WenetSearch(Strategy):
    """WeNet's Algorithm 2 over a pool of random networks; see the module docstring.

    Args:
        config: a `WenetConfig`.

    Example (a tiny pool; ``corpus`` from `tfnas.data.load_corpus`)::

        config = WenetConfig(steps=2, pool_size=6, network_batch=2, seed_size=2, max_steps=5,
                             model=ModelConfig(emsize=16, nhid=16))
        result = WenetSearch(config).search(corpus, "runs/wenet")
        result.genotype.first_node      # 'darts'
    """

    name = "wenet"

    def __init__(self, config: WenetConfig):
        self.config = config
        self.space = config.space()
        self.state: dict[str, Any] | None = None

    # ------------------------------------------------------------ pool state
    def _new_state(self) -> dict[str, Any]:
        c = self.config
        rng = np.random.default_rng(c.seed)
        pool = self.space.sample_unique(c.pool_size, rng)
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "space": self.space.to_config(),
                "pool": [self.space.encode(g) for g in pool], "position": 0, "seeds": [], "round": 0, "current": None, "global_step": 0,
                "rng": rng.bit_generator.state, "rounds": []}

    def _load_state(self, path: Path) -> dict[str, Any]:
        try:
            state = read_json(path)
        except (OSError, ValueError) as err:
            raise RunFolderError(f"cannot read the WeNet search state {path}: {err}") from None
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise RunFolderError(f"{path} is not a version {STATE_VERSION} WeNet search state")
        return state

    def genotype_of(self, index: int) -> Genotype:
        """Network ``index`` of the pool."""
        return self.space.decode(self.state["pool"][index])

    def _rng(self) -> np.random.Generator:
        rng = np.random.default_rng()
        rng.bit_generator.state = self.state["rng"]
        return rng

    def _start_round(self) -> None:
        """Chooses the round's networks, seeds + the next ``B`` of the pool (Algorithm 2 lines 5-7), and its seed."""
        c, s = self.config, self.state
        new = list(range(s["position"], min(s["position"] + c.network_batch, c.pool_size)))
        rng = self._rng()
        seed = int(rng.integers(1, 2**31 - 1))
        s["rng"] = rng.bit_generator.state
        s["position"] += len(new)
        s["current"] = {"round": s["round"], "networks": list(s["seeds"]) + new, "seed": seed,
                        "spent_s": self.session.spent_s()}

    def _save_state(self) -> None:
        self.state["spent_s"] = self.session.spent_s()
        write_json(self.out_dir / "wenet_state.json", self.state)
        write_jsonl(self.out_dir / "rounds.jsonl", self.state["rounds"])

    def _round_dir(self, index: int) -> Path:
        return self.out_dir / "rounds" / f"round-{index:04d}"

    def _drop_round_checkpoints(self) -> None:
        if self.config.keep_round_checkpoints:
            return
        for r in range(self.state["round"]):
            shutil.rmtree(self._round_dir(r) / CHECKPOINTS, ignore_errors=True)

    # ----------------------------------------------------------------- loop
    def _run_round(self, corpus: Corpus, callbacks: CallbackList) -> None:
        c, s = self.config, self.state
        current = s["current"]
        r = current["round"]
        # The round spends what is left of the budget (at least one step's worth: a budget is positive).
        left = None if c.budget_s is None else max(c.budget_s - current.get("spent_s", 0.0), MIN_ROUND_BUDGET_S)
        round_config = dataclasses.replace(c, seed=current["seed"], budget_s=left)
        networks = current["networks"]
        runner = WenetRound(round_config, [self.genotype_of(i) for i in networks])
        result = runner.search(corpus, self._round_dir(r), [_RoundCallbacks(callbacks, r, s["global_step"])])
        weights = runner.weights().astype(np.float64)
        order = np.argsort(-weights, kind="stable")
        kept = [networks[int(k)] for k in order[: c.seed_size]]
        best = self.genotype_of(kept[0])
        summary = {"round": r, "networks": networks, "weights": weights.tolist(),
                   "sorted_weights": weights[order].tolist(), "order": order.tolist(), "kept": kept,
                   "best": best.to_dict()["nodes"], "best_weight": float(weights[order[0]]),
                   "valid_ppl": result.metrics["valid_ppl"], "steps": result.metrics["steps"],
                   "recoveries": result.metrics["recoveries"], "seed": current["seed"]}
        s["rounds"].append(summary)
        s["seeds"] = kept
        s["global_step"] += int(result.metrics["steps"])
        s["round"] = r + 1
        s["current"] = None
        # The round's seconds include those of its sessions before a resume, which this session never saw.
        self.session.reset_clock(current.get("spent_s", 0.0) + result.seconds)
        self._save_state()
        self._drop_round_checkpoints()
        callbacks.on_event("round", {
            "step": s["global_step"], "round": r, "networks": len(networks), "best_weight": summary["best_weight"],
            "kept_weight": float(weights[order[: c.seed_size]].sum()), "valid_ppl": summary["valid_ppl"],
            "pool_left": c.pool_size - s["position"], "best": json.dumps(summary["best"]),
            "sorted_weights": weights[order], f"sorted_weights{KEEP_SUFFIX}": c.seed_size})

    def search(self, corpus: Corpus, out_dir: str | Path, callbacks: Sequence[Callback] = ()) -> SearchResult:
        """Runs Algorithm 2 in ``out_dir``, or resumes it (mid-pool and mid-round)."""
        self.out_dir = Path(out_dir)
        one_shot_batches(corpus, self.config)  # a split too small for a round is refused before the folder is written
        callbacks = [*callbacks, FinalHParams(self.out_dir, self.name, self.config)]
        with RunSession(self.out_dir, "search", self.name, self.config, corpus_fingerprint(corpus),
                        callbacks) as session:
            return self._search(corpus, session)

    def _search(self, corpus: Corpus, session: RunSession) -> SearchResult:
        c, callbacks = self.config, session.callbacks
        self.session = session
        path = self.out_dir / "wenet_state.json"
        if path.exists():
            self.state = self._load_state(path)
            session.resume_clock(self.state.get("spent_s", 0.0))
            callbacks.on_event("message", {"text": (
                f"resumed WeNet search at round {self.state['round'] + 1}/{c.num_rounds()} "
                f"({c.pool_size - self.state['position']} networks of the pool left)")})
        else:
            self.state = self._new_state()
            self._save_state()
        self._drop_round_checkpoints()
        while self.state["current"] is not None or self.state["position"] < c.pool_size:
            session.stop_if_pending(f"before round {self.state['round'] + 1}")  # the pool state is saved
            if self.state["current"] is None and self.state["rounds"] and session.over_budget(c.budget_s):
                break
            if self.state["current"] is None:
                self._start_round()
                self._save_state()
            self._run_round(corpus, callbacks)
        s = self.state
        last = s["rounds"][-1]
        metrics = {"steps": s["global_step"], "rounds": len(s["rounds"]), "valid_ppl": last["valid_ppl"],
                   "best_weight": last["best_weight"], "pool_size": c.pool_size,
                   "networks_trained": sum(len(r["networks"]) for r in s["rounds"]),
                   "recoveries": sum(r["recoveries"] for r in s["rounds"]), "strategy": self.name}
        best = self.genotype_of(s["seeds"][0])
        metrics["zero_state_live"] = zero_state_live(best)
        if not metrics["zero_state_live"]:
            callbacks.on_event("message", {"text": (
                "warning: the best network has no path from a sigmoid node to its output, so from a zero "
                "state it outputs zero and never reads its input (see tfnas.strategies.one_shot.wenet.zero_state_live)")})
        return self.finish(session, best, s["rounds"], metrics,
                           {"step": s["global_step"], "rounds": len(s["rounds"]), "valid_ppl": last["valid_ppl"],
                            "best_weight": last["best_weight"], "genotype": json.dumps(best.to_dict()["nodes"])})
