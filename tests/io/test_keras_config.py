"""Keras configurations -> nnscratch configurations, as pure dicts (no Keras needed)."""
import numpy as np
import pytest

import nnscratch
from nnscratch.io.keras_config import (KERAS_TO_NNSCRATCH, KerasConfigError, from_keras, layer_from_keras,
                                       snake_case, weight_keys)
from nnscratch.layers.base import LAYERS


def _sequential(*layers, shape=(8, 8, 1)):
    return {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, *shape], "name": "in"}}, *layers]}}


def _layer(cls, **config):
    return {"class_name": cls, "config": {"name": config.pop("name", cls.lower()), **config}}


def test_every_mapped_keras_class_names_a_registered_nnscratch_layer():
    for keras_class, rule in KERAS_TO_NNSCRATCH.items():
        assert LAYERS.get(rule["class"]), keras_class


def test_keras3_and_keras2_sequential_configs_give_the_same_model():
    conv = {"filters": 4, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "activation": "relu",
            "data_format": "channels_last", "use_bias": True, "dilation_rate": [1, 1], "groups": 1}
    keras3 = _sequential(_layer("Conv2D", name="c", **conv,
                                kernel_initializer={"module": "keras.initializers", "class_name": "GlorotUniform",
                                                    "config": {"seed": None}, "registered_name": None}),
                         _layer("Flatten", data_format="channels_last"), _layer("Dense", units=2))
    keras2 = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Conv2D", "config": {"name": "c", "batch_input_shape": [None, 8, 8, 1], "dtype": "float32",
                                            **conv, "kernel_initializer": {"class_name": "GlorotUniform",
                                                                           "config": {"seed": None}}}},
        _layer("Flatten", data_format="channels_last"), _layer("Dense", units=2)]}}
    assert from_keras(keras3) == from_keras(keras2)
    config, trainable = from_keras(keras3)
    assert config["layers"][0] == {"class_name": "Conv2D", "config": {
        "filters": 4, "kernel_size": (3, 3), "strides": (1, 1), "padding": "valid", "activation": "relu",
        "use_bias": True, "dilation_rate": (1, 1), "groups": 1, "name": "c", "input_shape": (8, 8, 1)}}
    assert trainable == {"c": True, "flatten": True, "dense": True}
    model = nnscratch.Model.from_config(config)
    model.finalize()
    assert model.output_shape == (2,)


def test_keras3_and_keras2_functional_nodes():
    keras3_node = {"args": [[{"class_name": "__keras_tensor__", "config": {"keras_history": ["a", 0, 0]}},
                             {"class_name": "__keras_tensor__", "config": {"keras_history": ["b", 0, 0]}}]],
                   "kwargs": {}}
    keras2_node = [["a", 0, 0, {}], ["b", 0, 0, {}]]
    layers = [{"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "a"}, "name": "a",
               "inbound_nodes": []},
              {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "b"}, "name": "b",
               "inbound_nodes": []}]
    results = []
    for node in (keras3_node, keras2_node):
        config = {"class_name": "Functional", "config": {
            "name": "f", "layers": layers + [{**_layer("Add", name="add"), "name": "add", "inbound_nodes": [node]}],
            "input_layers": [["a", 0, 0], ["b", 0, 0]], "output_layers": [["add", 0, 0]]}}
        results.append(from_keras(config))
    assert results[0] == results[1]
    assert results[0][0]["layers"][2]["inbound_nodes"] == [[["a", 0, 0], ["b", 0, 0], {"list": True}]]
    model = nnscratch.Model.from_config(results[0][0])
    model.finalize()
    out = model.predict([np.ones((1, 4), np.float32), np.full((1, 4), 2, np.float32)])
    np.testing.assert_array_equal(out, np.full((1, 4), 3, np.float32))


@pytest.mark.parametrize("spec, says", [
    (_layer("Conv2D", filters=2, kernel_size=3, data_format="channels_first"),
     "data_format='channels_first' is not supported.*channels-last throughout"),
    (_layer("GRU", units=3), "nnscratch has no layer like Keras' GRU. Layers it reads: "),
    (_layer("Lambda", function="x"), "Lambda layer, which runs Python code stored in the file"),
    (_layer("TFOpLambda", function="math.add"), "TFOpLambda layer, which runs Python code"),
    ({"module": "evil.layers", "class_name": "Dense", "config": {"name": "d", "units": 2}},
     "names 'Dense' from module 'evil.layers', a custom object outside Keras"),
    ({"class_name": "Dense", "registered_name": "Mine>Dense", "config": {"name": "d", "units": 2}},
     "names the custom object 'Mine>Dense'"),
    (_layer("Dense", units=2, kernel_regularizer={"module": "my.regs", "class_name": "Fancy", "config": {}}),
     "custom object outside Keras"),
    (_layer("Dense", units=2, activation={"module": "builtins", "class_name": "function", "config": "eval"}),
     "custom object outside Keras"),
    (_layer("Dense", units=2, activation="gelu"), "activation 'gelu' is not one nnscratch has"),
    (_layer("Dense", units=2, activity_regularizer="l2"), "activity_regularizer='l2' is not supported"),
    (_layer("BatchNormalization", renorm=True), "renorm=True is not supported"),
    (_layer("Dense", units=2, lora_rank=4), "lora_rank=4 is not supported"),
    (_layer("Dense", units=2, some_future_option=3), "option some_future_option=3 has no equivalent in nnscratch"),
    (_layer("ReLU", max_value=6.0), "max_value=6.0 is not supported"),
    (_layer("Dropout", rate=0.5, noise_shape=[None, 1, 1, 4]), "noise_shape=.* is not supported"),
    ({"class_name": "Sequential", "config": {"name": "inner", "layers": []}}, "a model nested inside the model"),
    ({"class_name": "Dense", "config": {"units": 2}}, "every layer needs a name"),
])
def test_what_nnscratch_lacks_or_will_not_run_is_refused_by_name(spec, says):
    with pytest.raises(KerasConfigError, match=says):
        from_keras(_sequential(spec))


@pytest.mark.parametrize("node", [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["a", 0, 0]}}],
                                   "kwargs": {"training": False}},
                                  [["a", 0, 0, {"training": False}]]])
def test_calls_with_keyword_arguments_are_refused(node):
    config = {"class_name": "Functional", "config": {"name": "f", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "a"}, "name": "a",
         "inbound_nodes": []},
        {**_layer("BatchNormalization", name="bn"), "name": "bn", "inbound_nodes": [node]}],
        "input_layers": ["a", 0, 0], "output_layers": ["bn", 0, 0]}}
    with pytest.raises(KerasConfigError, match=r"layer 'bn' is called with keyword arguments \{'training': False\}.*"
                                               "layer.trainable = False"):
        from_keras(config)


def test_options_off_by_default_in_a_newer_keras_are_accepted():
    spec = layer_from_keras(_layer("Dense", units=2, some_future_flag=False, other=None), "layer 1")
    assert spec == {"class_name": "Dense", "config": {"units": 2, "name": "dense"}}


def test_regularizers_and_constraints_keep_keras_names_and_values():
    spec = layer_from_keras(_layer("Dense", units=2, kernel_regularizer={
        "module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.003}, "registered_name": None},
        kernel_constraint={"module": "keras.constraints", "class_name": "MaxNorm",
                           "config": {"max_value": 2, "axis": 0}, "registered_name": None}), "layer 1")
    layer = LAYERS.create(spec)
    assert layer.get_config()["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.003}}
    assert layer.get_config()["kernel_constraint"] == {"class_name": "MaxNorm", "config": {"max_value": 2, "axis": 0}}


@pytest.mark.parametrize("bad, says", [
    ([1, 2], "expected a Keras model config"),
    ({"class_name": "MyModel", "config": {}}, "found 'MyModel'"),
    ({"class_name": "Sequential", "config": {"layers": []}}, "no 'layers' list"),
    (_sequential(shape=(8,)), "no layers besides its input"),
    ({"class_name": "Sequential", "config": {"layers": [_layer("Dense", units=2)]}}, "declares no input shape"),
    (_sequential(_layer("Dense", units=2), shape=(None, 4)), "unknown sizes besides the batch"),
])
def test_configs_that_are_not_models_nnscratch_builds(bad, says):
    with pytest.raises(KerasConfigError, match=says):
        from_keras(bad)


def test_weight_keys_follow_keras_order():
    assert weight_keys("Dense", {"use_bias": False}) == [("params", "kernel")]
    assert weight_keys("SeparableConv2D", {}) == [("params", "depthwise_kernel"), ("params", "pointwise_kernel"),
                                                  ("params", "bias")]
    assert weight_keys("BatchNormalization", {}) == [("params", "gamma"), ("params", "beta"),
                                                     ("state", "moving_mean"), ("state", "moving_variance")]
    assert weight_keys("LayerNormalization", {"scale": False}) == [("params", "beta")]
    assert weight_keys("Flatten", {}) == []


def test_weight_keys_are_every_array_the_nnscratch_layer_declares():
    for keras_class, rule in KERAS_TO_NNSCRATCH.items():
        if not rule["weights"]:
            continue
        config = {"filters": 2, "units": 2, "kernel_size": 3}
        arguments = {k: v for k, v in config.items() if k in LAYERS.get(rule["class"]).__init__.__code__.co_varnames}
        shape = (6, 2) if rule["class"] == "Conv1D" else (6, 6, 2) if "kernel_size" in arguments else (4,)
        layer = LAYERS.get(rule["class"])(**arguments, input_shape=shape)
        model = nnscratch.Model([layer])
        model.finalize()
        declared = [("params", k) for k in layer.params] + [("state", k) for k in layer.state]
        assert weight_keys(rule["class"], layer.get_config()) == declared, keras_class


def test_snake_case_is_keras():
    assert [snake_case(n) for n in ("Dense", "MaxPooling2D", "Conv2DTranspose", "ZeroPadding2D", "ReLU")] == \
        ["dense", "max_pooling2d", "conv2d_transpose", "zero_padding2d", "re_lu"]
