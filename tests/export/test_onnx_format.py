"""ONNX export: onnxruntime matches Keras within 1e-5 for a genotype cell, an attention LM and the LSTM."""
import numpy as np
import onnx
import pytest

from tfnas.export import onnx_parity
from tfnas.export.metadata import ExportMetadata
from tfnas.export.parity import ort_session

KINDS = ("darts_v2", "attention", "lstm")  # as in tests/conftest.py


@pytest.mark.parametrize("kind", KINDS)
def test_onnxruntime_matches_keras_across_shapes_and_carried_state(runs, kind):
    path = runs.exports(kind) / "onnx" / "model.onnx"
    model = runs.loaded(kind).model
    # Two batch sizes, two lengths, two consecutive calls each with the final state carried into the next.
    report = onnx_parity(model, path, cases=((2, 5), (3, 17)), calls=2, seed=1)
    assert len(report.cases) == 4
    assert report.max_abs_diff < 1e-5, report.cases
    assert report.max_abs_state_diff < 1e-5, report.cases
    # The state really changes the outputs, so carrying it is tested, not vacuous.
    ids = np.full((1, 4), 3, np.int32)
    zero = model.forward(ids, model.initial_state(1)).logits.numpy()
    carried = model.forward(ids, [np.full(s.shape, 0.5, np.float32) for s in model.initial_state(1)]).logits.numpy()
    assert np.max(np.abs(zero - carried)) > 1e-3
    # The metadata records the check made at export time.
    meta = ExportMetadata.load(path.parent / "tfnas.json")
    assert meta.parity_max_abs_diff is not None and meta.parity_max_abs_diff < 1e-5


@pytest.mark.parametrize("kind", ["darts_v2", "lstm"])
def test_graph_interface_dynamic_axes_and_broadcast_state(runs, kind):
    path = runs.exports(kind) / "onnx" / "model.onnx"
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    n_states = 2 if kind == "lstm" else 1
    assert [i.name for i in proto.graph.input] == ["ids"] + [f"hidden_{i}" for i in range(n_states)]
    assert sorted(o.name for o in proto.graph.output) == sorted(
        ["logits"] + [f"final_hidden_{i}" for i in range(n_states)])
    ids_dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert ids_dims == ["batch", "time"]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64  # as TextVectorization gives
    assert any(p.key == "tfnas" for p in proto.metadata_props)
    # A zero state of batch 1 is broadcast to the batch: same as a full zero state.
    session = ort_session(path)
    ids = np.arange(12, dtype=np.int64).reshape(3, 4)
    full = session.run(["logits"], {"ids": ids, **{f"hidden_{i}": np.zeros((3, 16), np.float32)
                                                   for i in range(n_states)}})[0]
    row = session.run(["logits"], {"ids": ids, **{f"hidden_{i}": np.zeros((1, 16), np.float32)
                                                  for i in range(n_states)}})[0]
    np.testing.assert_array_equal(full, row)
    assert full.shape == (3, 4, 31)
    # The states are optional: a feed of ids only starts from the zero state.
    assert [init.name for init in proto.graph.initializer if init.name.startswith("hidden_")] == [
        f"hidden_{i}" for i in range(n_states)]
    np.testing.assert_array_equal(session.run(["logits"], {"ids": ids})[0], full)


def test_any_cell_exports_tree_cell_with_attention(tmp_path):
    """Only LanguageModel's public interface is used, so a tree cell (states [h, c]) exports as well."""
    from tfnas.genotypes import resolve_genotype
    from tfnas.data import Vocabulary
    from tfnas.export import LoadedRun, export_onnx
    from tfnas.lm import LanguageModel

    model = LanguageModel(20, resolve_genotype("nascell"), emsize=16, nhid=16, seed=0, attention="dot")
    model.build_weights()
    vocab = Vocabulary(["<eos>", "<unk>"] + [f"w{i}" for i in range(18)])
    path = export_onnx(LoadedRun(tmp_path, model, vocab, None, model.genotype, None, tmp_path / "w"), tmp_path / "onnx")
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["ids", "hidden_0", "hidden_1"]
    assert onnx_parity(model, path, cases=((2, 5), (3, 17))).max_abs_diff < 1e-5


def loop_model(carried_weight: bool) -> onnx.ModelProto:
    """``h <- tanh(h @ W)`` for ``n`` steps, scanning out every ``h``; ``W`` loop-carried or not."""
    from onnx import TensorProto, helper

    f = TensorProto.FLOAT
    w_in = "w_in" if carried_weight else "W"
    body_nodes = [helper.make_node("MatMul", ["h_in", w_in], ["hw"]), helper.make_node("Tanh", ["hw"], ["h_out"]),
                  helper.make_node("Identity", ["h_out"], ["scan"]), helper.make_node("Identity", ["cond_in"], ["cond_out"])]
    inputs = [helper.make_tensor_value_info("i", TensorProto.INT64, []),
              helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
              helper.make_tensor_value_info("h_in", f, [2, 4])]
    outputs = [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
               helper.make_tensor_value_info("h_out", f, [2, 4])]
    if carried_weight:
        inputs.append(helper.make_tensor_value_info("w_in", f, [4, 4]))
        outputs.append(helper.make_tensor_value_info("w_in", f, [4, 4]))
    outputs.append(helper.make_tensor_value_info("scan", f, [2, 4]))
    body = helper.make_graph(body_nodes, "body", inputs, outputs)
    loop_inputs = ["n", "", "h0"] + (["W"] if carried_weight else [])
    loop_outputs = ["h_final"] + (["W_final"] if carried_weight else []) + ["hs"]
    rng = np.random.default_rng(0)
    w = helper.make_tensor("W", f, [4, 4], rng.standard_normal(16).astype(np.float32))
    graph = helper.make_graph(
        [helper.make_node("Loop", loop_inputs, loop_outputs, body=body),
         helper.make_node("Identity", ["W_final" if carried_weight else "W"], ["w_out"])], "g",
        [helper.make_tensor_value_info("n", TensorProto.INT64, []), helper.make_tensor_value_info("h0", f, [2, 4])],
        [helper.make_tensor_value_info(name, f, shape) for name, shape in
         (("h_final", [2, 4]), ("hs", ["n", 2, 4]), ("w_out", [4, 4]))], initializer=[w])
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])


def test_hoisting_loop_invariants_keeps_results_and_drops_the_carried_weight():
    from tfnas.export.onnx_graph import hoist_loop_invariants

    model = loop_model(carried_weight=True)
    feeds = {"n": np.array(5, np.int64), "h0": np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)}
    before = ort_session(model).run(None, feeds)
    assert hoist_loop_invariants(model) == 1
    onnx.checker.check_model(model)
    loop = model.graph.node[0]
    assert list(loop.input) == ["n", "", "h0"] and list(loop.output) == ["h_final", "hs"]
    assert [n.input[1] for n in loop.attribute[0].g.node if n.op_type == "MatMul"] == ["W"]
    # The final value of the weight (read after the loop) is the weight itself.
    assert model.graph.node[1].input[0] == "W"
    after = ort_session(model).run(None, feeds)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    # The recurrent state changes every step, so it stays carried; a second pass finds nothing.
    assert hoist_loop_invariants(model) == 0
    assert hoist_loop_invariants(loop_model(carried_weight=False)) == 0


def test_exported_time_loop_carries_only_what_changes(runs):
    """tf2onnx carries the cell's prepared weights through the loop; the export reads them from outside."""
    from tfnas.export.onnx_graph import hoist_loop_invariants

    proto = onnx.load(str(runs.exports("darts_v2") / "onnx" / "model.onnx"))
    loops = [n for n in proto.graph.node if n.op_type == "Loop"]
    assert len(loops) == 1
    body = loops[0].attribute[0].g
    carried = [(i.name, o.name) for i, o in zip(body.input[2:], body.output[1:])]
    assert carried and all(i != o for i, o in carried)
    outer = {init.name for init in proto.graph.initializer}
    assert sum(name in outer for n in body.node if n.op_type == "MatMul" for name in n.input) >= 1
    assert hoist_loop_invariants(proto) == 0


@pytest.mark.parametrize("kind", ["darts_v2", "lstm"])
def test_int32_graph_beside_the_int64_one_gives_the_same_logits_from_the_same_stored_weights(runs, kind):
    """Issue 27 item 7: the ONNX export takes int32 ids too, through ``model_int32.onnx``; both graphs read one
    weights file."""
    folder = runs.exports(kind) / "onnx"
    int64, int32 = ort_session(folder / "model.onnx"), ort_session(folder / "model_int32.onnx")
    assert [(i.name, i.type) for i in int32.get_inputs()] == [
        ("ids", "tensor(int32)")] + [(i.name, i.type) for i in int64.get_inputs()[1:]]
    assert int64.get_inputs()[0].type == "tensor(int64)"
    ids = np.random.default_rng(3).integers(0, 31, (2, 7))
    state = {i.name: np.full((2, 16), 0.25, np.float32) for i in int64.get_inputs()[1:]}
    names = [o.name for o in int64.get_outputs()]
    for got, want in zip(int32.run(names, {"ids": ids.astype(np.int32), **state}),
                         int64.run(names, {"ids": ids.astype(np.int64), **state})):
        np.testing.assert_array_equal(got, want)
    assert onnx_parity(runs.loaded(kind).model, folder / "model_int32.onnx").max_abs_diff < 1e-5
    # The weights are stored once: every large initializer of both graphs lives in model.onnx.data.
    for name in ("model.onnx", "model_int32.onnx"):
        proto = onnx.load(str(folder / name), load_external_data=False)
        external = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        assert external and all(dict((e.key, e.value) for e in t.external_data)["location"] == "model.onnx.data"
                                for t in external)
        assert all(len(t.raw_data) < 1024 for t in proto.graph.initializer)  # onnx's default external threshold


def test_retyping_an_input_refuses_one_that_a_computing_node_reads():
    """Only an input that is cast before use can change its type without changing the graph."""
    from tfnas.export.onnx_graph import retyped_input

    model = loop_model(carried_weight=False)
    with pytest.raises(ValueError, match=r"^input 'h0' is read by Loop, not only by Cast"):
        retyped_input(model, "h0", onnx.TensorProto.DOUBLE)
    with pytest.raises(ValueError, match=r"^the ONNX graph has no input 'ids'$"):
        retyped_input(model, "ids", onnx.TensorProto.INT32)
