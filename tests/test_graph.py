"""Symbolic tensors, layer calls, topological order and the saved form of a graph."""
import numpy as np
import pytest

from nnscratch import Input, InputLayer
from nnscratch.graph import graph_config, graph_from_config, topological_order
from nnscratch.layers import LAYERS, Add, Concatenate, Conv2D, Dense, Multiply, ReLU, Subtract


def test_calls_on_tensors_propagate_shapes_and_record_nodes():
    x = Input((8, 8, 3), name="image")
    y = Conv2D(16, 3, padding="same")(x)
    assert x.shape == (None, 8, 8, 3) and y.shape == (None, 8, 8, 16)
    assert y.node.layer.built is False  # shapes only: weights come at finalize, in the model's dtype and seed
    assert [t.node.layer.name for t in y.node.inbound] == ["image"]
    assert repr(y) == "<SymbolicTensor shape=(None, 8, 8, 16) from Conv2D>"


def test_operators_build_the_merge_layers():
    a, b = Input((4,)), Input((4,))
    assert type((a + b).node.layer) is Add
    assert type((a - b).node.layer) is Subtract
    assert type((a * b).node.layer) is Multiply


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: Dense(3)("hello"), TypeError, r"expects a symbolic tensor .* or a NumPy array.*got str"),
    (lambda: Dense(3)([Input((2,)), np.ones((1, 2))]), TypeError, r"a mix of symbolic tensors and other values"),
    (lambda: Add()(Input((2,))), TypeError, r"merges several tensors: call it on a list"),
    (lambda: Dense(3)([Input((2,)), Input((2,))]), TypeError, r"takes one tensor, got a list of 2"),
    (lambda: Add()([Input((8, 8, 16)), Input((8, 8, 32))]), ValueError,
     r"Add cannot merge shapes \[\(None, 8, 8, 16\), \(None, 8, 8, 32\)\]: axis 3 has sizes \[16, 32\]"),
    (lambda: Concatenate()([Input((4, 4, 3)), Input((5, 4, 3))]), ValueError,
     r"Concatenate\(axis=-1\) needs all other axes equal, but axis 1 has sizes \[4, 5\]"),
    (lambda: Concatenate(axis=4)([Input((4, 4, 3)), Input((4, 4, 3))]), ValueError, r"axis=4 is out of range"),
    (lambda: Add()([Input((4,))]), ValueError, r"Add merges at least 2 tensors, got 1"),
    (lambda: Subtract()([Input((4,))] * 3), ValueError, r"Subtract merges exactly 2 tensors, got 3"),
    (lambda: Dense(3)(Input((2, 2))), ValueError, r"cannot take input of shape \(None, 2, 2\).*add a Flatten"),
    (lambda: InputLayer(shape=(3,))(Input((3,))), TypeError, r"starts a graph and cannot be called on a tensor"),
])
def test_calls_that_cannot_work_are_refused_where_they_are_made(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_a_shared_layer_keeps_its_input_shape():
    dense = Dense(4)
    dense(Input((3,)))
    dense(Input((3,)))  # the same shape: fine, the weights are shared
    with pytest.raises(ValueError, match=r"first called on input of shape \(None, 3\) and now on \(None, 5\)"):
        dense(Input((5,)))


def test_topological_order_follows_the_order_the_graph_was_written_in():
    x = Input((4,), name="x")
    left = Dense(4, name="left")(x)
    right = Dense(4, name="right")(x)
    out = Add(name="sum")([right, ReLU(name="relu")(left)])
    assert [n.layer.name for n in topological_order([x], [out])] == ["x", "left", "right", "relu", "sum"]


def test_an_output_that_needs_an_input_the_model_was_not_given_is_refused():
    a, b = Input((4,), name="a"), Input((4,), name="b")
    out = Add()([a, b])
    with pytest.raises(ValueError, match=r"depends on the input b \(InputLayer\), which is not among the model's inputs"):
        topological_order([a], [out])


def test_an_unused_input_is_reported():
    a, b = Input((4,), name="a"), Input((4,), name="b")
    with pytest.warns(UserWarning, match=r"input\(s\) \['b \(InputLayer\)'\] are not used"):
        order = topological_order([a, b], [Dense(2)(a)])
    assert len(order) == 3


def _saved(nodes, inputs, outputs):
    config = graph_config(nodes, inputs, outputs, lambda layer: layer.name)
    return [{"class_name": LAYERS.name_of(type(s["layer"])), "config": s["layer"].get_config(), "name": s["name"],
             "inbound_nodes": s["inbound_nodes"]} for s in config["layers"]], config


def _make(spec):
    return LAYERS.create(spec)


def test_graph_config_round_trip_keeps_shared_calls_and_lists():
    x = Input((4,), name="x")
    shared = Dense(4, name="shared")
    h1, h2 = shared(x), shared(ReLU(name="relu")(x))
    out = Concatenate(name="cat")([h1, h2, x])
    specs, config = _saved(topological_order([x], [out]), [x], [out])
    shared_spec = next(s for s in specs if s["name"] == "shared")
    assert shared_spec["inbound_nodes"] == [[["x", 0, 0]], [["relu", 0, 0]]]
    assert next(s for s in specs if s["name"] == "cat")["inbound_nodes"] == [
        [["shared", 0, 0], ["shared", 1, 0], ["x", 0, 0], {"list": True}]]
    inputs, outputs = graph_from_config(specs, config["input_layers"], config["output_layers"],
                                        lambda spec: LAYERS.create({"class_name": spec["class_name"],
                                                                    "config": spec["config"]}))
    assert outputs[0].shape == (None, 12)
    again = [n.layer.name for n in topological_order(inputs, outputs)]
    assert again == ["x", "shared", "relu", "shared", "cat"]


@pytest.mark.parametrize("edit, pattern", [
    (lambda specs: specs[1].update(inbound_nodes=[[["dense_b", 0, 0]]]) or specs[2].update(
        inbound_nodes=[[["dense_a", 0, 0]]]), r"wait on each other \(a cycle\)"),
    (lambda specs: specs[1].update(inbound_nodes=[[["nowhere", 0, 0]]]), r"naming a layer of the model"),
    (lambda specs: specs[1].update(inbound_nodes=[]), r"has no inbound calls"),
    (lambda specs: specs[1].update(name="x"), r"unique 'name'"),
])
def test_a_damaged_graph_config_is_refused_clearly(edit, pattern):
    x = Input((4,), name="x")
    out = Dense(2, name="dense_b")(Dense(4, name="dense_a")(x))
    specs, config = _saved(topological_order([x], [out]), [x], [out])
    edit(specs)
    with pytest.raises(ValueError, match=pattern):
        graph_from_config(specs, config["input_layers"], config["output_layers"],
                          lambda spec: LAYERS.create({"class_name": spec["class_name"], "config": spec["config"]}))
