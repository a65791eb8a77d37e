"""The pieces exporters share (nnscratch/io/onnx_graph.py): unique tensor names, weights added once, nodes named
after their outputs, the exporter registry, and the error that says how to install onnx."""
import sys

import numpy as np
import pytest

from nnscratch.io.onnx_graph import (EXPORTERS, OPSET, GraphBuilder, MissingONNXError, exporter_for, register_exporter,
                                     require_onnx)

onnx = pytest.importorskip("onnx", reason="the graph is built with the onnx package (pip install 'nnscratch[onnx]')")


def test_fresh_names_never_repeat_and_claimed_names_are_exact():
    graph = GraphBuilder()
    assert graph.claim("conv2d_1") == "conv2d_1"
    assert [graph.fresh("conv2d_1"), graph.fresh("conv2d_1"), graph.fresh("x")] == ["conv2d_1_2", "conv2d_1_3", "x"]
    with pytest.raises(ValueError, match="'x' is used twice"):
        graph.claim("x")


def test_a_constant_is_added_once_per_name_in_the_asked_dtype():
    graph = GraphBuilder()
    first = graph.constant("dense/kernel", np.ones((2, 3)))
    again = graph.constant("dense/kernel", np.zeros((2, 3)))     # a shared layer's second call
    assert first == again == "dense/kernel" and len(graph.initializers) == 1
    value = onnx.numpy_helper.to_array(graph.initializers["dense/kernel"])
    assert value.dtype == np.float32 and value.sum() == 6
    shape = onnx.numpy_helper.to_array(graph.initializers[graph.constant("r/shape", [0, 4], dtype=np.int64)])
    assert shape.dtype == np.int64 and shape.tolist() == [0, 4]


def test_nodes_and_transposes_build_a_graph_onnx_accepts():
    graph = GraphBuilder()
    nchw = graph.to_nchw("x")
    pooled = graph.node("MaxPool", [nchw], kernel_shape=[2, 2], strides=[2, 2])
    graph.to_nhwc(pooled, "y")
    assert nchw == "x/nchw" and pooled == "x/nchw/MaxPool"
    assert [n.op_type for n in graph.nodes] == ["Transpose", "MaxPool", "Transpose"]
    assert [list(n.attribute[0].ints) for n in (graph.nodes[0], graph.nodes[2])] == [[0, 3, 1, 2], [0, 2, 3, 1]]
    helper = onnx.helper
    model = helper.make_model(helper.make_graph(graph.nodes, "g", [
        helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 6, 3])], [
        helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 3, 3])]),
        opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model, full_check=True)


def test_register_exporter_takes_a_class_name():
    with pytest.raises(TypeError, match="layer class name"):
        register_exporter(object)

    @register_exporter("NotALayerYet")
    def export(layer, inputs, output, graph):
        graph.node("Identity", inputs, output)
    try:
        assert EXPORTERS["NotALayerYet"] is export
    finally:
        del EXPORTERS["NotALayerYet"]


def test_without_onnx_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingONNXError, match=r'pip install "nnscratch\[onnx\]"'):
        require_onnx()
    with pytest.raises(ImportError):
        GraphBuilder()


def test_exporter_for_follows_base_classes_only_where_asked():
    class Base:
        pass

    class Child(Base):
        pass

    register_exporter("Base")(len)
    try:
        assert exporter_for(Base()) is len and exporter_for(Child()) is None
        register_exporter("Base", subclasses=True)(len)
        assert exporter_for(Child()) is len
        register_exporter("Base")(len)                    # re-registered without: the rule is withdrawn
        assert exporter_for(Child()) is None
    finally:
        del EXPORTERS["Base"]
