"""DARTS (Liu et al., ICLR 2019) and NASABN: differentiable search of the cell and the attention head.

Each step first updates the architecture parameters by Adam on a validation
batch (first order: ``grad_a L_val(w, a)``; second order: the unrolled
gradient of `tfnas.strategies.one_shot.bilevel`), then the weights by clipped SGD on
the training batch with the AWD regularisers, as in DARTS'
``train_search.py``. NASABN puts an attention head on the RNN outputs:
its reported experiment fixes it to global dot attention (section IV-B,
l.175) and searches the cell under it; the framework can also search the
head (``search_attention``: a `MixedAttention`, eq. 3-4). NASABN trains
the weights alone for ``warmup_epochs`` (or ``warmup_steps``) before the
architecture moves (phased training, section IV-D, l.242), against the
drift towards parameter-free ops.

R-DARTS (Zela et al., ICLR 2020, section 4): every ``eigenvalue_interval``
steps the search measures the extreme eigenvalues of the validation loss'
Hessian with respect to the architecture parameters
(`tfnas.strategies.one_shot.arch_hessian`), and with ``early_stop:
eigenvalue`` it stops by DARTS-ES (`tfnas.strategies.one_shot.early_stop`)
when the largest grew by more than ``1 / early_stop_ratio`` over
``early_stop_window`` measurements, returning the architecture of that
many measurements earlier.
"""
from __future__ import annotations

from dataclasses import field, replace
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfnas.callbacks import LabelledMatrix
from tfnas.cells.attention import ATTENTION_HEADS
from tfnas.cells.search.mixed_attention import MixedAttention
from tfnas.cells.search.mixed_cell import DARTS_OPS, MixedCell
from tfnas.cells.search.norm import edge_names
from tfnas.config import ModelConfig
from tfnas.genotypes.base import ATTENTIONS
from tfnas.genotypes.dag import Genotype
from tfnas.lm.objective import clipped_sgd_update, cross_entropy, regularized_loss
from tfnas.lm.model import attention_seed, cell_arguments, supernet
from tfnas.settings import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, RATE, Bound, OneOf, SettingsError, setting, settings
from tfnas.strategies.base import STEPS
from tfnas.strategies.one_shot.arch_hessian import ArchitectureHessian
from tfnas.strategies.one_shot.bilevel import ArchitectureGradient, adam_with_l2
from tfnas.strategies.one_shot.early_stop import DARTS_ES_RATIO, DARTS_ES_WINDOW, EigenvalueEarlyStop
from tfnas.strategies.one_shot.loop import Batch, OneShotConfig, OneShotSearch, darts_search_model, valid_segment

#: What ends a DARTS search besides its budget: nothing, or DARTS-ES (`early_stop`).
EARLY_STOPS: tuple[str, ...] = ("none", "eigenvalue")


@settings
class DartsConfig(OneShotConfig):
    """DARTS search settings (Liu et al., ICLR 2019, appendix A.1.2; ``rnn/train_search.py`` defaults).

    The shared defaults are `OneShotConfig`'s; here: 8 nodes over none,
    tanh, relu, sigmoid, identity with batch norm on the nodes; the
    architecture by Adam (lr 3e-3, betas 0.9/0.999, weight decay 1e-3, eps
    1e-8: PyTorch's default, used by DARTS' ``architect.py``), first order,
    and the finite-difference radius 0.01 of eq. 8.

    The attention head: ``model.attention`` fixes one (none by default;
    NASABN's experiment: dot), ``search_attention`` searches it among
    ``attention_candidates`` instead (NASABN eq. 3-4); ``none`` (no head) is
    a candidate only when listed there.
    """

    steps: int = setting(8, help="nodes of the cell after node 0", check=STEPS)
    ops: tuple[str, ...] = setting(DARTS_OPS, help="candidate ops of every edge")
    norm: str = setting("batch", help="search-mode normalisation of every node: batch, layer or none")
    search_attention: bool = setting(False, help="search the attention head among attention_candidates (NASABN "
                                                 "eq. 3-4) instead of fixing it with model.attention")
    attention_candidates: tuple[str, ...] = setting(ATTENTIONS, help="heads a search_attention search mixes; list "
                                                                     "none too to let it drop the head (not in "
                                                                     "NASABN)")
    arch_lr: float = setting(3e-3, help="Adam learning rate of the architecture parameters", check=POSITIVE)
    arch_wdecay: float = setting(1e-3, help="L2 weight decay of the architecture parameters", check=NON_NEGATIVE)
    arch_beta1: float = setting(0.9, help="Adam beta_1 of the architecture parameters", check=RATE)
    arch_beta2: float = setting(0.999, help="Adam beta_2 of the architecture parameters", check=RATE)
    arch_epsilon: float = setting(1e-8, help="Adam epsilon of the architecture parameters (PyTorch's default, "
                                             "used by DARTS)", check=POSITIVE)
    order: int = setting(1, help="1: first-order architecture gradient; 2: one-step unrolled (eq. 7-8)",
                         check=Bound(1, 2))
    hvp_r: float = setting(1e-2, help="finite-difference scale r of the Hessian-vector product (eq. 8)",
                           check=POSITIVE)
    clip_hvp_vector: bool = setting(False, help="order 2: clip v = grad_w' L_val to the norm clip before the "
                                                "Hessian-vector product, as DARTS' code (rnn/architect.py); off: "
                                                "the exact unrolled gradient")
    eigenvalue_interval: int = setting(0, help="steps between measurements of the largest eigenvalue of the "
                                               "validation loss' Hessian w.r.t. the architecture (R-DARTS section 4), "
                                               "logged as hessian/eigenvalue; 0: none", check=NON_NEGATIVE)
    eigenvalue_iterations: int = setting(20, help="Lanczos iterations (exact Hessian-vector products) per eigenvalue "
                                                  "measurement, from a start vector seeded by seed",
                                         check=AT_LEAST_ONE)
    early_stop: str = setting("none", help="none, or eigenvalue: DARTS-ES (R-DARTS section 4), stop when the "
                                           "eigenvalue grew more than 1/early_stop_ratio times over "
                                           "early_stop_window measurements and return the architecture of that "
                                           "many measurements earlier", check=OneOf(EARLY_STOPS))
    early_stop_window: int = setting(DARTS_ES_WINDOW, help="k of DARTS-ES, in eigenvalue measurements (R-DARTS: 5 "
                                                           "epochs)", check=AT_LEAST_ONE)
    early_stop_ratio: float = setting(DARTS_ES_RATIO, help="DARTS-ES stops when lambda(i - k) / lambda(i) falls "
                                                           "below this ratio (R-DARTS: 0.75)",
                                      check=Bound(0, 1, open_low=True))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ops = tuple(self.ops)
        candidates = tuple(self.attention_candidates)
        if not candidates or len(set(candidates)) != len(candidates) or not set(candidates) <= set(ATTENTION_HEADS):
            raise SettingsError(f"attention_candidates must be distinct names from {list(ATTENTION_HEADS)}; "
                                f"received: {list(candidates)!r}")
        self.attention_candidates = candidates
        if self.early_stop == "eigenvalue" and not self.eigenvalue_interval:
            raise SettingsError("early_stop eigenvalue (DARTS-ES) needs eigenvalue measurements: set "
                                "eigenvalue_interval to the steps between them")
        if self.search_attention and self.model.attention is not None:
            raise SettingsError(f"search_attention searches the head, model.attention fixes it "
                                f"({self.model.attention!r}): set model.attention to null to search it")

    def attention_heads(self) -> tuple[str, ...]:
        """The heads of the supernet: the candidates, the one fixed head, or none."""
        if self.search_attention:
            return self.attention_candidates
        return () if self.model.attention is None else (self.model.attention,)


class DartsSearch(OneShotSearch):
    """Bilevel differentiable search; see the module docstring.

    Attributes:
        compiled_step: after `build`, the whole search step as one
            `tf.function` (traced once for every BPTT length),
            ``compiled_step(train, valid, lr, update_arch) -> (logs, train
            states, valid states)``: ``train`` and ``valid`` are ``(int32
            inputs [batch_size, seq_len], int32 targets, states)``, ``lr`` a
            float32 scalar (the weights' learning rate, also ``xi`` of the
            second-order gradient), ``update_arch`` a bool scalar; ``logs``
            holds the tensors ``loss`` (training cross-entropy),
            ``arch_val_loss`` (NaN without an architecture update) and
            ``grad_norm``. `search_step` calls it; the benchmark times it.
    """

    name = "darts"
    degenerate_advice = ("a short DARTS search drifts to identity: stop it by DARTS-ES (early_stop eigenvalue) or "
                         "search longer (a weight warm-up, warmup_steps, made the cpu_ptb search collapse sooner)")

    def build(self, vocab_size: int) -> None:
        c = self.config
        m = c.model
        heads = c.attention_heads()  # a fixed head is a mixture of one: no architecture parameter
        cell = MixedCell(c.steps, ops=c.ops, norm=c.norm, name="mixed_cell", **cell_arguments(m, c.seed))
        head = MixedAttention(m.nhid, candidates=heads, seed=attention_seed(c.seed),
                              name="mixed_attention") if heads else None
        self.model = supernet(vocab_size, cell, m, c.seed, attention=head)
        model = self.model
        self.hidden_valid = model.initial_state(c.batch_size)
        self.arch_optimizer = keras.optimizers.Adam(c.arch_lr, beta_1=c.arch_beta1, beta_2=c.arch_beta2,
                                                    epsilon=c.arch_epsilon)
        self.arch_optimizer.build(model.arch_variables)
        seeds = [v for v in model.non_trainable_variables if "seed_generator_state" in v.path]

        def search_loss(inputs, targets, states):
            out = model.forward(inputs, states, training=True)
            return cross_entropy(out.logits, targets), out.states

        self.architect = ArchitectureGradient(search_loss, model.weight_variables, model.arch_variables,
                                              seed_states=seeds, clip=c.clip, wdecay=c.wdecay, r=c.hvp_r,
                                              clip_hvp_vector=c.clip_hvp_vector)
        n_states = len(model.initial_state(1))
        spec_batch = lambda: (tf.TensorSpec((c.batch_size, None), tf.int32),  # noqa: E731
                              tf.TensorSpec((c.batch_size, None), tf.int32),
                              [tf.TensorSpec((c.batch_size, m.nhid), tf.float32)] * n_states)
        spec = [spec_batch(), spec_batch(), tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.bool)]
        self.compiled_step = tf.function(self._search_step, input_signature=spec,
                                         jit_compile=c.jit_compile or None, autograph=False)
        self.hessian = self.architecture_hessian() if c.eigenvalue_interval else None
        self.early_stop = (EigenvalueEarlyStop(c.early_stop_window, c.early_stop_ratio)
                           if c.early_stop == "eigenvalue" else None)

    def architecture_hessian(self) -> ArchitectureHessian:
        """R-DARTS' Hessian of the validation cross-entropy w.r.t. the architecture parameters (cell and searched
        head) on a fixed batch: the first ``bptt`` steps of the search's validation batches, from zero states, in
        inference mode (no dropout; the search-mode batch norm is the same in both modes), so that successive
        measurements differ only by the weights and the architecture."""
        c, model = self.config, self.model
        inputs, targets = (tf.constant(a, tf.int32) for a in valid_segment(self.search_data, 0, c.bptt))
        states = model.initial_state(c.batch_size)
        return ArchitectureHessian(lambda: cross_entropy(model.forward(inputs, states, training=False).logits,
                                                         targets), model.arch_variables)

    def eigenvalues(self) -> tuple[float, float]:
        """The smallest and largest eigenvalue of `architecture_hessian` now, by ``eigenvalue_iterations`` steps of
        Lanczos' method (`arch_hessian.lanczos_extremes`) from the same start vector every time (standard normal,
        seeded by ``seed``)."""
        start = np.random.default_rng(self.config.seed).standard_normal(self.hessian.size)
        return self.hessian.extreme_eigenvalues(start, self.config.eigenvalue_iterations)

    def state_variables(self) -> list[tf.Variable]:
        return list(self.model.variables) + list(self.arch_optimizer.variables)

    def arch_gradients(self, train: Batch, valid: Batch, lr: tf.Tensor):
        """The architecture gradient of this step (order 1 or 2; ``xi`` = current weight lr)."""
        if self.config.order == 2:
            return self.architect.second_order(train, valid, lr)
        return self.architect.first_order(valid)

    def _search_step(self, train: Batch, valid: Batch, lr, update_arch):
        c, model = self.config, self.model

        def arch_update():
            grads, val_loss, valid_states = self.arch_gradients(train, valid, lr)
            adam_with_l2(self.arch_optimizer, model.arch_variables, grads, c.arch_wdecay)
            return val_loss, valid_states

        def no_arch_update():
            return tf.constant(float("nan")), list(valid[2])

        val_loss, valid_states = tf.cond(update_arch, arch_update, no_arch_update)
        inputs, targets, states = train
        weights = model.weight_variables
        with tf.GradientTape() as tape:
            out = model.forward(inputs, states, training=True)
            loss, raw = regularized_loss(out, targets, c.alpha, c.beta)
        norm = clipped_sgd_update(weights, tape.gradient(loss, weights), lr, c.clip, c.wdecay)
        return {"loss": raw, "arch_val_loss": val_loss, "grad_norm": norm}, out.states, valid_states

    def search_step(self, train: Batch, lr: float, update_arch: bool):
        """The bilevel step on ``train`` and the validation segment at the same position (`valid_segment`,
        DARTS' ``train_search.py``), whose states this search carries from step to step."""
        v_in, v_tg = valid_segment(self.search_data, self.segment_start, self.config.bptt)
        valid = (tf.constant(v_in, tf.int32), tf.constant(v_tg, tf.int32), self.hidden_valid)
        logs, train_states, valid_states = self.compiled_step(train, valid, tf.constant(lr, tf.float32),
                                                              tf.constant(update_arch))
        self.hidden_valid = list(valid_states)   # a diverged step restores them from the checkpoint
        logs = {k: float(v) for k, v in logs.items()}
        if not update_arch:
            logs.pop("arch_val_loss")
        return logs, list(train_states)

    def on_step_end(self) -> None:
        """Every ``eigenvalue_interval`` steps: the `eigenvalues`, logged as ``hessian/eigenvalue`` (the largest,
        R-DARTS' lambda_max) and ``hessian/eigenvalue_min``. DARTS-ES counts the largest of the measurements taken
        once the architecture has moved (after the warm-up); when it stops, the architecture parameters are set back
        to those of ``early_stop_window`` measurements earlier, which the search returns."""
        c = self.config
        if not c.eigenvalue_interval or self.step % c.eigenvalue_interval:
            return
        smallest, eigenvalue = self.eigenvalues()
        self.callbacks.on_event("hessian", {"step": self.step, "eigenvalue": eigenvalue, "eigenvalue_min": smallest})
        if self.early_stop is None or self.epoch <= c.warmup_epochs or self.step <= c.warmup_steps:
            return
        arch = self.model.arch_variables
        if self.early_stop.observe(self.step, eigenvalue, [v.numpy().tolist() for v in arch]):
            back = self.early_stop.returned
            for v, value in zip(arch, back["architecture"]):
                v.assign(np.asarray(value, v.dtype))
            self._message(f"DARTS-ES: the eigenvalue grew from {back['eigenvalue']:.4g} (step {back['step']}) to "
                          f"{eigenvalue:.4g} (step {self.step}), more than 1/{c.early_stop_ratio:g} times; the "
                          f"search stops with the architecture of step {back['step']}")

    def stops_early(self) -> bool:
        return self.early_stop is not None and self.early_stop.stopped

    def extra_state(self) -> dict[str, Any]:
        return {} if self.early_stop is None else {"early_stop": self.early_stop.state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.early_stop is not None:
            c = self.config
            self.early_stop = EigenvalueEarlyStop(c.early_stop_window, c.early_stop_ratio, state["early_stop"])

    def provenance(self) -> dict[str, Any]:
        """Under DARTS-ES: the eigenvalues it counted (``[step, eigenvalue]``) and, after a stop, the step of the
        stop and the step whose architecture was returned."""
        if self.early_stop is None:
            return {}
        record: dict[str, Any] = {"eigenvalues": self.early_stop.eigenvalues}
        back = self.early_stop.returned
        if back is not None:
            record.update(stopped_step=back["stopped_step"], stopped_eigenvalue=back["stopped_eigenvalue"],
                          returned_step=back["step"], returned_eigenvalue=back["eigenvalue"])
        return {"darts_es": record}

    def extra_arrays(self) -> dict[str, np.ndarray]:
        return {f"valid{i}": s.numpy() for i, s in enumerate(self.hidden_valid)}

    def load_extra_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.hidden_valid = [tf.constant(arrays[f"valid{i}"]) for i in range(len(self.hidden_valid))]

    def derive(self) -> Genotype:
        return self.model.derive()

    def epoch_logs(self) -> dict[str, Any]:
        """The architecture weights: ``alpha_cell`` (softmax(alpha), [edges, ops], rows named ``node3<-1`` and
        columns by op, which TensorBoardLogger draws as a labelled heatmap and writes entry by entry),
        ``weight_<op>`` (each op's weight averaged over the edges) and ``attention_<head>`` (the head's mixture
        weights)."""
        cell = self.model.cell
        probs = cell.probabilities_numpy()
        logs: dict[str, Any] = {"alpha_cell": LabelledMatrix(probs, edge_names(cell.steps), tuple(cell.ops)),
                                **{f"weight_{op}": float(w) for op, w in zip(cell.ops, probs.mean(axis=0))}}
        if self.model.attention is not None:
            weights = self.model.attention.mixture_weights()
            logs.update({f"attention_{k}": float(v) for k, v in weights.items()})
        return logs

    def step_logs(self) -> dict[str, Any]:
        """The architecture weights of `epoch_logs`, every ``log_interval`` steps."""
        return self.epoch_logs()

    def architecture_snapshot(self) -> dict[str, Any]:
        cell = self.model.cell
        out: dict[str, Any] = {"ops": list(cell.ops), "edges": [list(e) for e in cell.edges],
                               "cell_probs": np.round(cell.probabilities_numpy(), 6).tolist()}
        if self.model.attention is not None:
            out["attention_probs"] = {k: float(v) for k, v in self.model.attention.mixture_weights().items()}
        return out


def nasabn_search_model() -> ModelConfig:
    """NASABN's search model: DARTS' (`darts_search_model`) with global dot attention on the RNN (l.175)."""
    return replace(darts_search_model(), attention="dot")


@settings
class NasabnConfig(DartsConfig):
    """NASABN search settings: the reported experiment (section IV-B, l.175-177; Table I, l.194).

    DARTS' search settings (l.177: "the same as DARTS") with a cell of 5
    learned nodes after node 0, tfnas' reading of "N = 9 nodes" (l.175) that
    gives Table I's 18M parameters (the argument, once:
    ``docs/strategies/darts-nasabn.md``, "The cell size"). The head is fixed to global
    dot attention ("the definite attention layer that use global dot
    attention", l.175) and only the cell is searched; ``search_attention``
    searches the head too (the framework's eq. 3-4, section III-A, l.87-95).
    """

    model: ModelConfig = field(default_factory=nasabn_search_model)
    steps: int = 5


class NasabnSearch(DartsSearch):
    """NASABN: DARTS with an attention head on the RNN, fixed or searched (`NasabnConfig`)."""

    name = "nasabn"
