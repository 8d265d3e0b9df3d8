"""Graph-level passes over ONNX models: finding non-standard ops, hoisting loop invariants, retyping a cast
input, a scoring head."""
from __future__ import annotations

from typing import Iterator

import onnx
from onnx import TensorProto, helper

#: Lowest ONNX opset tfnas exports (and the opset of `log_prob_head`).
MIN_OPSET = 17
#: Input and output names of `log_prob_head`.
HEAD_LOGITS, HEAD_TARGETS, HEAD_LOG_PROBS = "logits", "targets", "log_probs"


def all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph`` and of its subgraphs (Loop / If / Scan bodies), depth first."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from all_nodes(attr.g)
            for sub in attr.graphs:
                yield from all_nodes(sub)


def nonstandard_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Nodes (in subgraphs too) whose op is not in the ONNX standard: TensorFlow ops tf2onnx could not map."""
    return [n for n in all_nodes(model.graph) if not onnx.defs.has(n.op_type, n.domain or "")]


def _rename_inputs(nodes, old: str, new: str) -> None:
    for node in nodes:
        for k, name in enumerate(node.input):
            if name == old:
                node.input[k] = new


def _defined_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in graph.input} | {i.name for i in graph.initializer}
    return names | {out for node in all_nodes(graph) for out in node.output}


def hoist_loop_invariants(model: onnx.ModelProto) -> int:
    """Turns the loop-carried values that a ``Loop`` body passes through unchanged into outer-scope reads.

    tf2onnx turns every tensor a ``tf.while_loop`` body captures (here the
    recurrent weight blocks a cell prepares once per sequence) into a
    loop-carried value whose body output is its body input. onnxruntime then
    treats it as a value that changes every iteration: its matmuls cannot
    pre-pack the (constant) weights, and the value is handed from iteration to
    iteration. Reading the outer value directly (ONNX subgraphs may read any
    name of the enclosing scope) gives the same results and lets the
    weights be constant-folded and pre-packed.

    Applies to the ``Loop`` nodes of the main graph, in place.

    Returns:
        The number of loop-carried values removed.
    """
    graph = model.graph
    output_names = {o.name for o in graph.output}
    removed = 0
    for loop in (n for n in graph.node if n.op_type == "Loop"):
        body = next(a.g for a in loop.attribute if a.name == "body")
        inner = _defined_names(body)
        invariant = []
        for k in range(len(body.input) - 2):
            name_in, name_out, outer = body.input[2 + k].name, body.output[1 + k].name, loop.input[2 + k]
            final = loop.output[k] if k < len(loop.output) else ""
            if name_in == name_out and outer and outer not in inner and final not in output_names:
                invariant.append(k)
        for k in reversed(invariant):
            outer, final = loop.input[2 + k], loop.output[k]
            _rename_inputs(all_nodes(body), body.input[2 + k].name, outer)
            if final:
                _rename_inputs(graph.node, final, outer)
            del body.input[2 + k]
            del body.output[1 + k]
            del loop.input[2 + k]
            del loop.output[k]
        removed += len(invariant)
    return removed


def retyped_input(model: onnx.ModelProto, name: str, elem_type: int) -> onnx.ModelProto:
    """A copy of ``model`` whose graph input ``name`` has the element type ``elem_type`` (an ``onnx.TensorProto``
    type, e.g. ``INT32``).

    Only an input whose every consumer is a ``Cast`` can be retyped: the
    graph then computes the same values from either type (a ``Cast`` to the
    type it is given is the identity). tf2onnx gives the ``ids`` input of an
    export such a ``Cast`` (to int32), so the int64 graph and its int32 copy
    are the same model. The copy shares ``model``'s initializers as they are
    stored: once ``model`` has been saved with external data, the copy refers
    to the same data file.

    Raises:
        ValueError: ``model`` has no input ``name``, or a node other than a
            ``Cast`` reads it.
    """
    if not any(value.name == name for value in model.graph.input):
        raise ValueError(f"the ONNX graph has no input {name!r}")
    readers = [node for node in all_nodes(model.graph) if name in node.input]
    others = sorted({node.op_type for node in readers if node.op_type != "Cast"})
    if others:
        raise ValueError(f"input {name!r} is read by {', '.join(others)}, not only by Cast: retyping it would change "
                         "the graph")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    next(value for value in copy.graph.input if value.name == name).type.tensor_type.elem_type = elem_type
    return copy


def log_prob_head(opset: int = MIN_OPSET) -> onnx.ModelProto:
    """``log_probs[b, t] = log_softmax(logits[b, t])[targets[b, t]]`` as a standalone ONNX model.

    Inputs ``logits`` (float32 ``[batch, time, vocab]``) and ``targets``
    (int64 ``[batch, time]``); output ``log_probs`` (float32 ``[batch, time]``).
    Run after an exported model in the same onnxruntime process, it scores
    without copying the logits out of onnxruntime.
    """
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
    nodes = [
        helper.make_node("LogSoftmax", [HEAD_LOGITS], ["log_softmax"], axis=-1),
        helper.make_node("Unsqueeze", [HEAD_TARGETS, "axes"], ["index"]),
        helper.make_node("GatherElements", ["log_softmax", "index"], ["picked"], axis=2),
        helper.make_node("Squeeze", ["picked", "axes"], [HEAD_LOG_PROBS]),
    ]
    graph = helper.make_graph(
        nodes, "tfnas_log_prob_head",
        [helper.make_tensor_value_info(HEAD_LOGITS, TensorProto.FLOAT, ["batch", "time", "vocab"]),
         helper.make_tensor_value_info(HEAD_TARGETS, TensorProto.INT64, ["batch", "time"])],
        [helper.make_tensor_value_info(HEAD_LOG_PROBS, TensorProto.FLOAT, ["batch", "time"])],
        initializer=[axes])
    head = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(head)
    return head
