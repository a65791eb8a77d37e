"""nnscratch configurations -> Keras configurations, as pure dicts (no Keras needed)."""
import pytest

import nnscratch
from nnscratch.io.keras_config import KerasConfigError, from_keras
from nnscratch.io.keras_config_writer import keras_class_of, keras_layer_order, layer_to_keras


def test_nnscratch_layers_keras_lacks_are_named():
    for name in ("Subsampling2D", "RBFOutput", "ScaledTanh", "RandomFlip"):
        with pytest.raises(KerasConfigError, match=f"nnscratch's {name} has no Keras equivalent"):
            keras_class_of(name)
    with pytest.raises(KerasConfigError, match="Keras' swish has beta 1, this one 2.0"):
        layer_to_keras("Swish", {"beta": 2.0}, "s", True)
    assert layer_to_keras("Swish", {"beta": 1.0}, "s", True)["config"]["activation"] == "swish"
    assert keras_class_of("MaxPool2D") == "MaxPooling2D" and keras_class_of("Tanh") == "Activation"


def test_to_keras_and_back_is_the_same_model():
    x = nnscratch.Input((8, 8, 3))
    a = nnscratch.layers.Conv2D(3, 3, padding="same", activation="relu", kernel_regularizer={"class_name": "L2", "config": {"l2": 0.02}})(x)
    b = nnscratch.layers.BatchNormalization(momentum=0.9)(a)
    c = nnscratch.layers.Concatenate()([x, nnscratch.layers.Add()([x, b])])
    y = nnscratch.layers.Dense(2)(nnscratch.layers.GlobalAvgPool2D()(c))
    model = nnscratch.Model(inputs=x, outputs=y)
    model.finalize()
    from nnscratch.io.keras_h5 import keras_model_config
    keras = keras_model_config(model)
    assert keras["class_name"] == "Functional"
    config, _ = from_keras(keras)
    again = nnscratch.Model.from_config(config)
    again.finalize()
    ours = [(type(layer).__name__, layer.get_config()) for layer in model.layers]
    theirs = [(type(layer).__name__, layer.get_config()) for layer in again.layers]
    assert ours == theirs


def test_keras_layer_order_puts_the_deeper_branch_first_and_an_unused_input_first_among_depth_0():
    config = {"layers": [
        {"name": "x", "inbound_nodes": []},
        {"name": "unused", "inbound_nodes": []},
        {"name": "a", "inbound_nodes": [[["x", 0, 0]]]},
        {"name": "b", "inbound_nodes": [[["x", 0, 0]]]},
        {"name": "deep", "inbound_nodes": [[["b", 0, 0]]]},
        {"name": "add", "inbound_nodes": [[["a", 0, 0], ["deep", 0, 0], {"list": True}]]}],
        "input_layers": [["x", 0, 0], ["unused", 0, 0]], "output_layers": ["add", 0, 0]}
    # Keras (ops.function.map_graph) gives an input no output uses depth 0 and walk index -1
    assert keras_layer_order(config) == ["x", "b", "a", "deep", "unused", "add"]
