"""`LanguageModel`: embedding, an RNN over any cell, a tied decoder."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, Mapping, NamedTuple

import keras
import tensorflow as tf

from tfnas.cells.attention import make_attention
from tfnas.cells.search.base import SearchCell, non_architecture_variables
from tfnas.cells.genotype_cell import GenotypeCell
from tfnas.cells.rnn import CellRNN
from tfnas.cells.tree_cell import TreeCell
from tfnas.config import ModelConfig
from tfnas.genotypes.dag import Genotype
from tfnas.lm.regularizers import DroppedEmbedding, LockedDropout
from tfnas.genotypes.tree import TreeGenotype
from tfnas.genotypes.files import as_any_genotype


class LMOutput(NamedTuple):
    """What one forward pass yields (the trainer needs all of it)."""

    logits: tf.Tensor          # [batch, time, vocab]
    states: list               # final recurrent states, to carry to the next segment
    raw_outputs: tf.Tensor     # RNN outputs before the output dropout (for TAR)
    dropped_outputs: tf.Tensor  # after the output dropout (for AR)


def _seed(seed: int | None, offset: int) -> int | None:
    return None if seed is None else seed + offset


def cell_arguments(model: ModelConfig, seed: int | None, layer: int = 0) -> dict[str, Any]:
    """The arguments a cell of recurrent layer ``layer`` takes in a `LanguageModel` of settings ``model`` and seed
    ``seed``: ``units`` (``nhid``), ``dropout_x``, ``dropout_h``, ``init_range`` (``cell_init_range``) and its
    ``seed`` (the model's + ``10 layer + 2``).

    A search cell built with these (``MixedCell(steps, **cell_arguments(m, seed))``) and given to
    ``LanguageModel(..., cell=...)`` is seeded and regularised as the model's own cell would be.
    """
    return {"units": model.nhid, "dropout_x": model.dropoutx, "dropout_h": model.dropouth,
            "init_range": model.cell_init_range, "seed": _seed(seed, 10 * layer + 2)}


def attention_seed(seed: int | None) -> int | None:
    """The seed of the attention head of a `LanguageModel` seeded ``seed`` (the model's + 4)."""
    return _seed(seed, 4)


@keras.saving.register_keras_serializable(package="tfnas")
class LanguageModel(keras.Model):
    """Word-level language model of AWD-LSTM / DARTS around any cell.

    ``logits = decoder(lockdrop_o(att(RNN(lockdrop_i(embdrop(E)[x])))))`` with the
    decoder tied to the embedding matrix (``logits = y E^T + b``, Press &
    Wolf 2017, Inan et al. 2017). The RNN is a `CellRNN` over a
    `GenotypeCell` (DAG genotype), a `TreeCell` (tree genotype, states
    ``[h, c]``) or, with ``genotype=None``, ``keras.layers.LSTM`` (the
    baseline); ``att`` is an optional causal attention head (NASABN, see
    `tfnas.cells.attention`), the identity when ``attention`` is None. The
    recurrent state is an explicit input and output so a
    trainer can carry it across BPTT segments without backpropagating
    through them.

    With ``nlayers = L > 1`` the RNN is L stacked layers of the same cell,
    each with its own weights (the two-layer children of Zoph & Le, ICLR
    2017, section 4.2), as in AWD-LSTM: ``RNN = RNN_L o lockdrop_h o ... o
    lockdrop_h o RNN_1`` (locked dropout ``dropouth`` on the output of every
    layer but the last); every layer has ``nhid`` units. The states are one
    flat list, layer after layer: ``[h]`` per layer for a `GenotypeCell`,
    ``[h, c]`` per layer for a `TreeCell` and the LSTM, so one layer keeps
    the states (and the export names ``hidden_i``) of a single-layer model.

    A search supernet is the same model around a search cell
    (`tfnas.cells.search`): ``LanguageModel(vocab_size, cell=MixedCell(steps,
    **cell_arguments(m, seed)), seed=seed, ...)``, with one recurrent layer.
    Its attention head may be a layer too (a `MixedAttention`, NASABN).
    `arch_variables`, `weight_variables` and `derive` hand on the cell's
    `SearchCell` members (and the head's), so a strategy treats any supernet
    alike.

    Args:
        vocab_size: number of words.
        genotype: a `Genotype` / `TreeGenotype` (or dict) for a `GenotypeCell` / `TreeCell`, or None for LSTM
            (or for ``cell``).
        emsize: see `tfnas.config.ModelConfig`.
        nhid: see `tfnas.config.ModelConfig`.
        dropout: see `tfnas.config.ModelConfig`.
        dropouth: see `tfnas.config.ModelConfig`. With ``cell``, the cell's own (`cell_arguments` builds it
            from it); the model records it.
        dropoutx: see `tfnas.config.ModelConfig`. With ``cell``, the cell's own, as ``dropouth``.
        dropouti: see `tfnas.config.ModelConfig`.
        dropoute: see `tfnas.config.ModelConfig`.
        tie_weights: see `tfnas.config.ModelConfig`.
        cell_init_range: see `tfnas.config.ModelConfig`. With ``cell``, the cell's own, as ``dropouth``.
        emb_init_range: see `tfnas.config.ModelConfig`.
        attention: see `tfnas.config.ModelConfig`. It may also be a Keras layer (a searched head).
        recompute: see `tfnas.config.ModelConfig`. It does not apply to the LSTM baseline.
        nlayers: see `tfnas.config.ModelConfig`.
        seed: seed of all initialisers and dropout masks.
        cell: a recurrent cell run by the model's one recurrent layer (a
            `CellRNN`) instead of the genotype's; ``cell.units`` must be ``nhid``.

    Call arguments:
        inputs: int ids ``[batch, time]``, or ``(ids, states)``.
        training: whether dropout applies.

    Returns ``(logits, states)``.
    """

    def __init__(self, vocab_size: int, genotype: Genotype | Mapping[str, Any] | None = None,
                 emsize: int = 850, nhid: int = 850, dropout: float = 0.75, dropouth: float = 0.25,
                 dropoutx: float = 0.75, dropouti: float = 0.2, dropoute: float = 0.1,
                 tie_weights: bool = True, cell_init_range: float = 0.04, emb_init_range: float = 0.04,
                 attention: str | keras.layers.Layer | None = None, recompute: bool = False, nlayers: int = 1,
                 seed: int | None = None, cell: keras.layers.Layer | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"Argument `vocab_size` must be an integer >= 2; received: {vocab_size!r}")
        if tie_weights and emsize != nhid:
            raise ValueError(
                f"a tied decoder needs emsize == nhid; received emsize={emsize}, nhid={nhid} "
                "(pass tie_weights=False to untie)")
        if isinstance(nlayers, bool) or not isinstance(nlayers, int) or nlayers < 1:
            raise ValueError(f"Argument `nlayers` must be an integer >= 1; received: nlayers={nlayers!r}")
        self.genotype = as_any_genotype(genotype) if genotype is not None else None
        if cell is not None:
            if self.genotype is not None:
                raise ValueError("pass a genotype or a cell, not both: the genotype's cell would be built as well")
            if nlayers > 1:
                raise ValueError(f"a LanguageModel given a cell ({type(cell).__name__}, a search supernet) has one "
                                 f"recurrent layer; received nlayers={nlayers} (model.nlayers > 1 is for trained "
                                 "models)")
            if getattr(cell, "units", nhid) != nhid:
                raise ValueError(f"the cell has {cell.units} units but the model nhid={nhid}")
        self.vocab_size = vocab_size
        head = attention if isinstance(attention, keras.layers.Layer) else None
        # Flags, not the layers: a layer held in an attribute here would be tracked before the embedding and
        # reorder the model's variables (and its checkpoints).
        self.cell_given, self.attention_given = cell is not None, head is not None
        self.hparams = ModelConfig(emsize=emsize, nhid=nhid, dropout=dropout, dropouth=dropouth,
                                   dropoutx=dropoutx, dropouti=dropouti, dropoute=dropoute,
                                   tie_weights=tie_weights, cell_init_range=cell_init_range,
                                   emb_init_range=emb_init_range,
                                   attention=None if head is not None else attention,
                                   recompute=bool(recompute), nlayers=nlayers)
        self.seed = seed
        self.embedding = DroppedEmbedding(vocab_size, emsize, dropoute, emb_init_range, seed=_seed(seed, 0),
                                          name="embedding")
        self.input_dropout = LockedDropout(dropouti, seed=_seed(seed, 1), name="input_dropout")
        self.rnn = self._make_rnn(cell=cell)
        self.upper_rnns = [self._make_rnn(layer) for layer in range(1, nlayers)]
        self.layer_dropouts = [LockedDropout(dropouth, seed=_seed(seed, 10 * layer + 5), name=f"layer_dropout_{layer}")
                               for layer in range(nlayers - 1)]
        self.attention = head if head is not None else self._make_attention()
        self.output_dropout = LockedDropout(dropout, seed=_seed(seed, 3), name="output_dropout")
        if tie_weights:
            self.decoder = None
        else:
            self.decoder = keras.layers.Dense(vocab_size, name="decoder")

    def _make_rnn(self, layer: int = 0, cell: keras.layers.Layer | None = None) -> keras.layers.Layer:
        """The recurrent layer number ``layer``: a `CellRNN` over the given cell, the genotype's cell, or the LSTM.

        Layer 0 keeps the names of a single-layer model (``rnn``/``cell``,
        ``lstm``), so its saved weights and exports are unchanged; layer k
        is ``rnn_k``/``cell_k`` (``lstm_k``), seeded apart.
        """
        h, suffix = self.hparams, f"_{layer}" if layer else ""
        if cell is not None:
            return CellRNN(cell, recompute=h.recompute, name="rnn")
        arguments = cell_arguments(h, self.seed, layer)
        if self.genotype is None:
            return keras.layers.LSTM(h.nhid, return_sequences=True, return_state=True, name=f"lstm{suffix}",
                                     seed=arguments["seed"])
        cell_class = TreeCell if isinstance(self.genotype, TreeGenotype) else GenotypeCell
        cell = cell_class(self.genotype, name=f"cell{suffix}", **arguments)
        return CellRNN(cell, recompute=h.recompute, name=f"rnn{suffix}")

    @property
    def rnns(self) -> list[keras.layers.Layer]:
        """The recurrent layers, bottom first."""
        return [self.rnn, *self.upper_rnns]

    def _make_attention(self) -> keras.layers.Layer | None:
        """The attention head that ``attention`` names on the RNN outputs, or None."""
        name = self.hparams.attention
        return None if name is None else make_attention(name, self.hparams.nhid, seed=attention_seed(self.seed),
                                                          name="attention")

    @property
    def cell(self) -> keras.layers.Layer:
        """The cell of the first recurrent layer."""
        return self.rnn.cell

    @property
    def arch_variables(self) -> list:
        """The architecture parameters: the cell's ``arch_variables``, then the attention head's (none for a
        frozen cell or head)."""
        layers = [self.cell] + ([self.attention] if self.attention is not None else [])
        return [v for layer in layers for v in getattr(layer, "arch_variables", [])]

    @property
    def weight_variables(self) -> list:
        """Every trainable variable that is not an architecture parameter."""
        return non_architecture_variables(self)

    def derive(self) -> Genotype:
        """The genotype the search cell points at (`SearchCell.derive`), with the searched head's choice, if any.

        Raises:
            TypeError: the model's cell is not a search cell (its genotype is ``genotype``).
        """
        if not isinstance(self.cell, SearchCell):
            raise TypeError(f"derive() needs a search cell; this model's cell is a {type(self.cell).__name__} "
                            "(its genotype: model.genotype)")
        if isinstance(self.attention, SearchCell):
            return self.cell.derive(attention=self.attention.derive())
        return self.cell.derive()

    @classmethod
    def from_config_objects(cls, vocab_size: int, genotype: Genotype | None, model: ModelConfig,
                            seed: int | None = None) -> "LanguageModel":
        """Builds the model from a `ModelConfig` and initialises its weights.

        The genotype's attention choice applies unless ``model.attention`` is set.
        """
        settings = asdict(model)
        if settings["attention"] is None and genotype is not None:
            settings["attention"] = genotype.attention
        lm = cls(vocab_size, genotype, seed=seed, **settings)
        lm.build_weights()
        return lm

    @property
    def is_lstm(self) -> bool:
        return self.genotype is None and not self.cell_given

    def build_weights(self) -> None:
        """Creates every weight by running one step on a dummy batch."""
        self(tf.zeros((1, 1), tf.int32))

    def build(self, input_shape=None):
        self.embedding.build(None)
        for layer, rnn in enumerate(self.rnns):
            rnn.build((None, None, self.hparams.emsize if layer == 0 else self.hparams.nhid))
        if self.attention is not None:
            self.attention.build((None, None, self.hparams.nhid))
        if self.decoder is not None:
            self.decoder.build((None, None, self.hparams.nhid))
        if self.hparams.tie_weights:
            self.decoder_bias = self.add_weight(name="decoder_bias", shape=(self.vocab_size,),
                                                initializer="zeros")
        self.built = True

    def initial_state(self, batch_size) -> list[tf.Tensor]:
        """Zero states in the weights' dtype, layer after layer: ``[h, c]`` for the LSTM, else one per state of
        the cell (``[h]``...)."""
        if self.is_lstm:
            zeros = tf.zeros((batch_size, self.hparams.nhid), self.variable_dtype)
            return [zeros, zeros] * self.hparams.nlayers
        return [tf.cast(s, self.variable_dtype) for rnn in self.rnns for s in rnn.initial_state(batch_size)]

    def forward(self, tokens, states=None, training: bool = False) -> LMOutput:
        """The full forward pass used by trainers (logits and regulariser inputs).

        ``raw_outputs`` and ``dropped_outputs`` are those of the last layer
        (AWD-LSTM applies AR and TAR to the last layer only).
        """
        if states is None:
            states = self.initial_state(tf.shape(tokens)[0])
        states = list(states)
        per_layer = len(states) // self.hparams.nlayers
        raw = self.input_dropout(self.embedding(tokens, training=training), training=training)
        new_states = []
        for layer, rnn in enumerate(self.rnns):
            if layer:
                raw = self.layer_dropouts[layer - 1](raw, training=training)
            layer_states = states[layer * per_layer:(layer + 1) * per_layer]
            if self.is_lstm:
                raw, *layer_states = rnn(raw, initial_state=layer_states, training=training)
            else:
                raw, layer_states = rnn(raw, initial_state=layer_states, training=training)
            new_states += list(layer_states)
        attended = raw if self.attention is None else self.attention(raw, training=training)
        dropped = self.output_dropout(attended, training=training)
        full = [tf.cast(t, self.variable_dtype) for t in (raw, dropped, *new_states)]
        return LMOutput(self.decode(dropped), full[2:], full[0], full[1])

    def decode(self, outputs: tf.Tensor) -> tf.Tensor:
        """Logits from RNN outputs (tied: ``outputs @ E^T + b``), in the weights' dtype.

        Under a mixed dtype policy (`tfnas.lm.precision`) the product runs in
        the compute dtype and the logits are cast to the weights' float32,
        for the softmax and the loss; the states, ``raw_outputs`` and
        ``dropped_outputs`` of `forward` are float32 too.
        """
        if self.decoder is not None:
            return tf.cast(self.decoder(outputs), self.variable_dtype)
        dtype = outputs.dtype
        logits = (tf.tensordot(outputs, tf.cast(self.embedding.embeddings, dtype), axes=[[2], [1]])
                  + tf.cast(self.decoder_bias, dtype))
        return tf.cast(logits, self.variable_dtype)

    def call(self, inputs, training=False):
        if isinstance(inputs, (list, tuple)):
            tokens, states = inputs[0], list(inputs[1:])
            states = states[0] if len(states) == 1 and isinstance(states[0], (list, tuple)) else states
        else:
            tokens, states = inputs, None
        out = self.forward(tokens, states or None, training=training)
        return out.logits, out.states

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "genotype": None if self.genotype is None else self.genotype.to_dict(),
            "seed": self.seed,
            **asdict(self.hparams),
        }
        if self.attention_given:
            config["attention"] = keras.saving.serialize_keras_object(self.attention)
        if self.cell_given:
            config["cell"] = keras.saving.serialize_keras_object(self.cell)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LanguageModel":
        config = dict(config)
        for key in ("cell", "attention"):
            if isinstance(config.get(key), Mapping):  # built by the model, as the original was (same paths)
                layer = {k: v for k, v in config[key].items() if k != "build_config"}
                config[key] = keras.saving.deserialize_keras_object(layer)
        return cls(**config)


def supernet(vocab_size: int, cell: keras.layers.Layer, model: ModelConfig, seed: int | None,
             attention: str | keras.layers.Layer | None = None) -> LanguageModel:
    """The `LanguageModel` of settings ``model`` and seed ``seed`` around the search cell ``cell``, its weights built.

    ``cell`` is built from ``cell_arguments(model, seed)``; ``attention`` is
    the head (a name, a searched layer, or None): ``model.attention`` is not
    read, since each search decides whether it uses it.
    """
    lm = LanguageModel(vocab_size, seed=seed, cell=cell, **{**asdict(model), "attention": attention})
    lm.build_weights()
    return lm
