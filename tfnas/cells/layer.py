"""`FusedRNN`: the drop-in recurrent layer over a tfnas cell, `keras.layers.RNN` with the fused loop."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import keras
from keras import ops

from tfnas.cells.attention import make_attention
from tfnas.cells.genotype_cell import GenotypeCell
from tfnas.cells.tree_cell import TreeCell
from tfnas.genotypes.dag import Genotype
from tfnas.genotypes.files import as_any_genotype, resolve_genotype
from tfnas.genotypes.tree import TreeGenotype

#: Arguments of the cell that `FusedRNN` builds from a genotype (with ``units``).
CELL_ARGUMENTS = ("dropout_x", "dropout_h", "init_range", "seed", "use_bias")
#: What the fused loop needs of a cell (`tfnas.cells.CellRNN`); every frozen tfnas cell has it.
FUSED_PROTOCOL = ("project_inputs", "prepare", "transition")


def make_cell(genotype: Genotype | TreeGenotype | Mapping[str, Any] | str | Path, units: int,
              **kwargs: Any) -> keras.layers.Layer:
    """The frozen cell of ``genotype`` (a genotype, its dict, a JSON path or a known cell's name): a `TreeCell`
    for a `TreeGenotype`, else a `GenotypeCell`; ``kwargs`` are its other arguments."""
    if isinstance(genotype, (str, Path)):
        genotype = resolve_genotype(genotype)
    genotype = as_any_genotype(genotype)
    return (TreeCell if isinstance(genotype, TreeGenotype) else GenotypeCell)(genotype, units, **kwargs)


def last_kept(outputs: Any, mask: Any, zero: bool) -> Any:
    """``outputs [batch, time, units]`` with each masked step replaced by the last unmasked one before it (zeros
    if none, or always with ``zero``): `fused_loop`'s masking rule applied to a finished sequence."""
    mask = ops.cast(mask, "bool")
    if zero:
        return ops.where(mask[:, :, None], outputs, ops.zeros_like(outputs))
    positions = ops.arange(ops.shape(outputs)[1], dtype="int32")
    # source[b, t] = max {s <= t : mask[b, s]}, or -1
    candidates = ops.where(mask[:, None, :] & (positions[None, None, :] <= positions[None, :, None]),
                           positions[None, None, :], -1)
    source = ops.max(candidates, axis=-1)
    gathered = ops.take_along_axis(outputs, ops.maximum(source, 0)[:, :, None], axis=1)
    return ops.where((source >= 0)[:, :, None], gathered, ops.zeros_like(gathered))


@keras.saving.register_keras_serializable(package="tfnas")
class FusedRNN(keras.layers.RNN):
    """`keras.layers.RNN` over a tfnas cell, running the fused loop of `tfnas.cells.CellRNN`.

    The same layer as ``keras.layers.RNN(cell, ...)`` (same arguments,
    outputs, states, masking, statefulness, dropout masks fixed per sequence,
    `Bidirectional`, ``.keras`` files), with only the time loop replaced, as
    `keras.layers.LSTM` replaces it by a fused kernel: on the TensorFlow
    backend, for a cell of the fused protocol (``project_inputs``,
    ``prepare``, ``transition``: every frozen tfnas cell), the input
    projection ``x W`` is computed for all steps at once and the recurrence
    is one loop (`tfnas.cells.rnn.fused_loop`): by default, for a sequence
    length known when the model is traced (at most
    `tfnas.cells.rnn.XLA_MAX_STEPS` steps), the steps unrolled in one
    XLA-compiled function, whose element-wise ops XLA fuses, else a
    ``tf.while_loop``. Elsewhere
    (another backend, another cell, ``unroll=True``) Keras' own loop runs;
    the layer is written in ``keras.ops`` and loads no TensorFlow there.

    The cell is a cell instance, or built from a genotype: a `Genotype` or
    `TreeGenotype`, its dict, a JSON path or a known cell's name
    (``"darts_v2"``, ``"nascell"``), with ``units`` and the cell's arguments
    (``dropout_x``, ``dropout_h``, ``init_range``, ``seed``, ``use_bias`` of
    a `TreeCell`).

    With an attention head (``attention``, or by default the one the
    genotype names, as in `tfnas.lm.LanguageModel`) the layer's output
    sequence is ``Y = head(H)``, ``H`` the RNN's outputs in the order read
    (reversed with ``go_backwards``); the head is causal, so ``y_t`` reads
    ``h_1 .. h_t``. Under a mask, ``Y``'s masked steps repeat the previous
    unmasked step (or are zeros with ``zero_output_for_mask``), as ``H``'s
    are, so ``return_sequences=False`` returns the head's output at the last
    unmasked step, ``y_T`` without a mask. The head attends to every step of
    ``H``, masked ones included (they hold copies or zeros): with padding at
    the end (``padding="post"``) the outputs of the unmasked steps are those
    of the unpadded sequence; with padding in front they are not. The
    returned states are the RNN's.

    Args:
        cell: a cell instance, or a genotype, its dict, a JSON path or a known
            cell's name.
        units: hidden size of a cell built from a genotype (not given with a
            cell instance).
        attention: name of an attention head on the outputs
            (`tfnas.genotypes.ATTENTION_HEADS`; ``"none"`` for no head), or
            None for the genotype's own choice.
        return_sequences: as `keras.layers.RNN`.
        return_state: as `keras.layers.RNN`.
        go_backwards: as `keras.layers.RNN`.
        stateful: as `keras.layers.RNN`.
        unroll: as `keras.layers.RNN`.
        zero_output_for_mask: as `keras.layers.RNN`.
        jit_compile: compile the loop with XLA where the length is known
            (True, the default), or always run the ``tf.while_loop``
            (False: no compilation, which takes a few seconds for each new
            ``[batch, time]`` shape). Only the TensorFlow backend's fused
            loop reads it; a model compiled with ``jit_compile=True`` is
            compiled whole either way.
        **kwargs: ``dropout_x``, ``dropout_h``, ``init_range``, ``seed``
            and ``use_bias``, the arguments of a cell built from a genotype
            (``seed`` also seeds the head, ``seed + 1``); the others go to
            `keras.layers.RNN`.

    Call arguments:
        sequences: ``[batch, time, features]``.
        initial_state: list of state tensors, or None for the cell's.
        mask: ``[batch, time]`` booleans, False for the steps to skip.
        training: whether dropout applies.

    Example:

    >>> layer = FusedRNN("darts_v2", 32, return_sequences=True)
    >>> layer(np.zeros((2, 5, 16), "float32")).shape
    TensorShape([2, 5, 32])
    """

    def __init__(self, cell: keras.layers.Layer | Genotype | TreeGenotype | Mapping[str, Any] | str | Path,
                 units: int | None = None, attention: str | None = None, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 unroll: bool = False, zero_output_for_mask: bool = False, jit_compile: bool = True,
                 **kwargs: Any):
        cell_kwargs = {key: kwargs.pop(key) for key in CELL_ARGUMENTS if key in kwargs}
        if isinstance(cell, keras.layers.Layer):
            given = ["units"] * (units is not None) + sorted(cell_kwargs)
            if given:
                raise ValueError(f"Argument `cell` is a cell instance: its arguments are its own; received "
                                 f"{', '.join(given)} as well")
        else:
            if units is None:
                raise ValueError(f"Argument `units` is needed to build a cell from a genotype; received: "
                                 f"cell={cell!r}, units=None")
            cell = make_cell(cell, units, **cell_kwargs)
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         zero_output_for_mask=zero_output_for_mask, **kwargs)
        if attention is None:
            genotype = getattr(cell, "genotype", None)
            attention = getattr(genotype, "attention", None) or "none"
        if not isinstance(jit_compile, bool):
            raise ValueError(f"Argument `jit_compile` must be True or False; received: jit_compile={jit_compile!r}")
        seed = getattr(cell, "seed", None)
        self.jit_compile = jit_compile
        self.attention = attention
        self.head = None if attention == "none" else make_attention(
            attention, cell.output_size, seed=None if seed is None else seed + 1, name="attention",
            dtype=self.dtype_policy)

    @property
    def fused(self) -> bool:
        """Whether the fused loop runs (TensorFlow backend, a cell of the fused protocol, no unrolling)."""
        return (keras.backend.backend() == "tensorflow" and not self.unroll
                and all(hasattr(self.cell, name) for name in FUSED_PROTOCOL))

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(sequences_shape, initial_state_shape)
        if self.head is not None and not self.head.built:
            self.head.build((sequences_shape[0], sequences_shape[1], self.cell.output_size))

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.fused:
            from tfnas.cells.rnn import fused_loop      # TensorFlow: imported on that backend only

            outputs, states = fused_loop(self.cell, sequences, list(initial_state), training, mask=mask,
                                         go_backwards=self.go_backwards,
                                         zero_output_for_mask=self.zero_output_for_mask,
                                         jit_compile=self.jit_compile)
        else:
            _, outputs, states = self._keras_loop(sequences, initial_state, mask, training)
        if self.head is not None:
            outputs = self.head(outputs, training=training)
            if mask is not None:
                order = ops.flip(mask, axis=1) if self.go_backwards else mask
                outputs = last_kept(outputs, order, self.zero_output_for_mask)
        return outputs[:, -1], outputs, states

    def _keras_loop(self, sequences, initial_state, mask, training):
        """`keras.layers.RNN`'s loop, returning every output when a head reads them."""
        keep = self.return_sequences
        self.return_sequences = keep or self.head is not None
        try:
            return super().inner_loop(sequences, initial_state, mask, training=training)
        finally:
            self.return_sequences = keep

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "attention": self.attention, "jit_compile": self.jit_compile}
