"""Keras' legacy HDF5 files: real Keras 3 files loaded here, files written here loaded by Keras, Keras 2 files
built from Keras 2's layout, fine-tuning a loaded model, and damaged or hostile files."""
import json
import warnings

import h5py
import numpy as np
import pytest

import nnscratch
from nnscratch.io import ModelFileError
from nnscratch.io.keras_h5 import HEADER_LIMIT, read_name_list, save_keras_h5
from nnscratch.layers import Add, BatchNormalization, Concatenate, Conv2D, Dense, Dropout, Flatten, MaxPool2D

TOLERANCE = 1e-5


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=TOLERANCE)


# -- Keras' files, read here ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_a_keras_h5_model_predicts_as_in_keras(keras_models, name):
    model = nnscratch.load_model(keras_models.files[name, "h5"])
    x, y = getattr(keras_models, f"{name}_x"), getattr(keras_models, f"{name}_y")
    _close(model.predict(x), y)
    assert [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"] == \
        [layer.name for layer in getattr(keras_models, name).layers if type(layer).__name__ != "InputLayer"]


@pytest.mark.parametrize("ext", ["h5", "keras"])
def test_every_mapped_layer_class_predicts_as_in_keras_both_ways(keras_models, tmp_path, ext):
    """The layers of the mapping table besides the CNN's and the residual network's, in a two-output model."""
    model = nnscratch.load_model(keras_models.files["zoo", ext])
    ours = model.predict(keras_models.zoo_x)
    for a, b in zip(ours, keras_models.zoo_y):
        _close(a, b)
    path = tmp_path / f"zoo.{ext}"
    model.save(path, format="keras_h5" if ext == "h5" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = keras_models.keras.models.load_model(path)
    for a, b in zip(again.predict(keras_models.zoo_x, verbose=0), ours):
        _close(a, b)


def test_batch_normalization_keeps_keras_moving_statistics(keras_models):
    model = nnscratch.load_model(keras_models.files["resnet", "h5"])
    mean, variance = (np.asarray(v) for v in keras_models.resnet.get_layer("bn").weights[2:])
    assert not np.allclose(mean, 0) and not np.allclose(variance, 1), "the fixture should move the statistics"
    bn = next(layer for layer in model.layers if layer.name == "bn")
    np.testing.assert_array_equal(bn.state["moving_mean"], mean)
    np.testing.assert_array_equal(bn.state["moving_variance"], variance)
    assert bn.momentum == 0.5


def test_activations_folded_into_layers_and_training_config_are_carried_over(keras_models):
    model = nnscratch.load_model(keras_models.files["cnn", "h5"])
    conv, dense = model.layers[0], model.layers[-1]
    assert (conv.activation, dense.activation) == ("relu", "softmax")
    assert type(model.loss).__name__ == "CategoricalCrossEntropy"
    optimizer = model.optimizer
    assert (type(optimizer).__name__, optimizer.convention) == ("Adam", "keras")
    assert optimizer.learning_rate == pytest.approx(0.01) and optimizer.epsilon == pytest.approx(1e-7)
    assert type(nnscratch.load_model(keras_models.files["resnet", "h5"]).optimizer).__name__ == "SGD"


def test_load_weights_reads_a_keras_file_into_a_matching_model(keras_models):
    model = nnscratch.Model([Conv2D(4, 3, activation="relu", input_shape=(12, 12, 1), name="conv2d"),
                             MaxPool2D(name="max_pooling2d"), Flatten(name="flatten"), Dropout(0.3, name="dropout"),
                             Dense(5, activation="softmax", name="dense")], seed=1)
    model.finalize()
    model.load_weights(keras_models.files["cnn", "h5"])
    _close(model.predict(keras_models.cnn_x), keras_models.cnn_y)


def test_load_weights_reads_a_legacy_keras_weights_file(keras_models, tmp_path):
    """A weights-only legacy file (Keras 2's ``save_weights("w.h5")``): layer_names at the root, written here by
    Keras' own legacy writer."""
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, keras_models.resnet)
    model = nnscratch.load_model(keras_models.files["resnet", "h5"])
    for layer in model.layers:
        for array in list(layer.params.values()) + list(layer.state.values()):
            array[...] = 0
    model.load_weights(path)
    _close(model.predict(keras_models.resnet_x), keras_models.resnet_y)


def test_load_weights_refuses_a_model_whose_layers_differ(keras_models):
    model = nnscratch.Model([Flatten(input_shape=(12, 12, 1), name="flatten"), Dense(5, name="dense")], seed=1)
    model.finalize()
    before = model.layers[1].params["kernel"].copy()
    with pytest.raises(ModelFileError, match=r"the file lacks weights for nothing and has weights for \['conv2d'\]"):
        model.load_weights(keras_models.files["cnn", "h5"])
    np.testing.assert_array_equal(model.layers[1].params["kernel"], before)


# -- written here, read by Keras -------------------------------------------------------------------------------
def _native_resnet():
    x = nnscratch.Input((8, 8, 3))
    a = Conv2D(3, 3, padding="same", activation="relu", kernel_regularizer="l2")(x)
    b = BatchNormalization()(a)
    s = Add()([x, b])
    m = Concatenate()([s, Conv2D(4, 1)(s)])
    y = Dense(3, activation="softmax")(nnscratch.layers.GlobalAvgPool2D()(m))
    model = nnscratch.Model(inputs=x, outputs=y, seed=3)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    rng = np.random.default_rng(3)
    model.fit(rng.normal(size=(32, 8, 8, 3)).astype(np.float32),
              np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)], epochs=1, batch_size=8, verbose=0)
    return model


@pytest.mark.parametrize("source, ext", [("cnn", "h5"), ("resnet", "keras"), ("native", "h5"), ("native", "keras")])
def test_a_model_saved_here_loads_in_keras_and_predicts_the_same(keras_models, tmp_path, source, ext):
    if source == "native":
        model, x = _native_resnet(), keras_models.resnet_x
    else:
        model, x = nnscratch.load_model(keras_models.files[source, "h5"]), getattr(keras_models, f"{source}_x")
    path = tmp_path / f"out.{ext}"
    model.save(path, format="keras_h5" if ext == "h5" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = keras_models.keras.models.load_model(path)
    _close(again.predict(x, verbose=0), model.predict(x))
    if source == "native":  # moving statistics differ from 0 and 1 after fit: Keras must get them
        bn = next(layer for layer in model.layers if type(layer).__name__ == "BatchNormalization")
        np.testing.assert_array_equal(np.asarray(again.get_layer(bn.name).weights[2]), bn.state["moving_mean"])


@pytest.mark.parametrize("source, ext", [("native", "h5"), ("native", "keras"), ("cnn", "keras")])
def test_a_compiled_model_loads_compiled_in_keras_and_trains_there(keras_models, tmp_path, source, ext):
    if source == "native":   # nnscratch's Adam (lr 1e-3, epsilon 1e-8), categorical cross-entropy
        model, x, loss, lr, epsilon = _native_resnet(), keras_models.resnet_x, "sparse_categorical_crossentropy", \
            1e-3, 1e-8
    else:                    # Keras' Adam(0.01) and categorical_crossentropy, through nnscratch
        model, x, loss, lr, epsilon = nnscratch.load_model(keras_models.files["cnn", "h5"]), keras_models.cnn_x, \
            "categorical_crossentropy", 0.01, 1e-7
    path = tmp_path / f"out.{ext}"
    model.save(path, format="keras_h5" if ext == "h5" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = keras_models.keras.models.load_model(path)
    optimizer = again.optimizer
    loaded_loss = getattr(again.loss, "__name__", again.loss)   # the legacy reader gives Keras' function
    assert (type(optimizer).__name__, optimizer.epsilon, loaded_loss) == ("Adam", epsilon, loss)
    np.testing.assert_allclose(float(optimizer.learning_rate), lr, rtol=1e-6)
    classes = model.output_shape[-1]
    labels = np.arange(len(x)) % classes
    targets = labels if loss.startswith("sparse") else np.eye(classes, dtype=np.float32)[labels]
    history = again.fit(x, targets, epochs=2, batch_size=len(x), verbose=0)
    assert np.isfinite(history.history["loss"]).all() and "accuracy" in history.history


def test_a_model_compiled_with_what_keras_lacks_is_written_uncompiled_with_a_warning(tmp_path):
    model = nnscratch.Model([Dense(3, activation="softmax", input_shape=(4,))])
    model.set(loss="categorical_crossentropy", optimizer="sdlm")
    model.finalize()
    path = tmp_path / "m.h5"
    with pytest.warns(UserWarning, match=r"m\.h5: written without a training configuration because its optimizer "
                                         r"SDLM has no Keras equivalent; Keras loads it uncompiled"):
        model.save(path, format="keras_h5")
    with h5py.File(path) as f:
        assert "training_config" not in f.attrs


def _branches_in_another_order():
    """Three convolutions of one shape whose order here (made_first, made_second, deeper) is not Keras' (Keras
    puts the deeper branch's first): weights paired by position would be swapped silently."""
    x = nnscratch.Input((4, 4, 2))
    first, second = Conv2D(2, 1, name="made_first"), Conv2D(2, 1, name="made_second")
    a, b = first(x), second(x)
    y = Dense(3, name="head")(Flatten()(Add()([a, Conv2D(2, 1, name="deeper")(b)])))
    model = nnscratch.Model(inputs=x, outputs=y, seed=0)
    model.finalize()
    return model


@pytest.mark.parametrize("ext", ["h5", "keras"])
def test_layers_are_written_in_keras_order(keras_models, tmp_path, ext):
    model = _branches_in_another_order()
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype(np.float32)
    path = tmp_path / f"branches.{ext}"
    model.save(path, format="keras_h5" if ext == "h5" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = keras_models.keras.models.load_model(path)
    names = [layer.name for layer in again.layers]
    assert names.index("made_second") < names.index("made_first")
    _close(again.predict(x, verbose=0), model.predict(x))
    keras_path = tmp_path / f"by_keras.{ext}"
    again.save(keras_path)  # and Keras' own file of the same graph loads into the nnscratch model
    fresh = _branches_in_another_order()
    fresh.load_weights(keras_path)
    _close(fresh.predict(x), model.predict(x))


def test_a_shared_layer_and_two_inputs_both_ways(keras_models, tmp_path):
    keras, L = keras_models.keras, keras_models.keras.layers
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = L.Dense(3, name="shared")
    original = keras.Model([a, b], L.Add(name="sum")([shared(a), shared(b)]))
    original.save(tmp_path / "shared.keras")
    x = [np.ones((2, 4), np.float32), np.arange(8, dtype=np.float32).reshape(2, 4)]
    model = nnscratch.load_model(tmp_path / "shared.keras")
    _close(model.predict(x), original.predict(x, verbose=0))
    model.save(tmp_path / "back.h5", format="keras_h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = keras.models.load_model(tmp_path / "back.h5")
    _close(again.predict(x, verbose=0), model.predict(x))


def test_a_keras_file_written_here_reads_back_here(tmp_path):
    model = _native_resnet()
    path = tmp_path / "m.h5"
    model.save(path, format="keras_h5")
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(nnscratch.load_model(path).predict(x), model.predict(x))
    assert nnscratch.io.formats.file_format(path) == "keras_h5"


def test_a_layer_keras_lacks_cannot_be_written(tmp_path):
    model = nnscratch.models.lenet5(variant="classic", seed=0)  # Subsampling2D, partial connections, RBF output
    model.finalize()
    with pytest.raises(ValueError, match="has no Keras equivalent"):
        model.save(tmp_path / "m.h5", format="keras_h5")
    assert not (tmp_path / "m.h5").exists()


# -- fine-tuning a Keras model here ------------------------------------------------------------------------------
def test_a_loaded_keras_model_fine_tunes_saves_and_loads(keras_models, tmp_path):
    model = nnscratch.load_model(keras_models.files["cnn", "h5"])
    rng = np.random.default_rng(5)
    x = rng.normal(size=(32, 12, 12, 1)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 32)]
    before = model.predict(keras_models.cnn_x)
    # a loaded Keras file carries no seed, so the model draws one; fix it here or dropout and shuffling
    # make the loss curve differ from run to run
    history = model.fit(x, y, epochs=4, batch_size=8, verbose=0, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    after = model.predict(keras_models.cnn_x)
    assert np.abs(after - before).max() > 1e-3
    path = tmp_path / "tuned.h5"
    model.save(path)
    assert nnscratch.io.formats.file_format(path) == "nnscratch"
    again = nnscratch.load_model(path)
    np.testing.assert_array_equal(again.predict(keras_models.cnn_x), after)
    assert again.metadata["converted_from"] == {"format": "keras_h5", "keras_version": keras_models.keras.__version__,
                                                "backend": "jax"}


# -- Keras 2 files ------------------------------------------------------------------------------------------------
def _keras2_layer(class_name, layer_config):
    """A Keras 3 layer config as Keras 2 (tf.keras 2.x) wrote it: plain dtype, no module/registered_name,
    batch_input_shape, initializers as {"class_name", "config"}, BatchNormalization's axis as a list of
    positive axes (of a 4-d input here)."""
    config = {}
    for key, value in layer_config.items():
        if key == "axis" and class_name == "BatchNormalization":
            value = [3]
        elif key == "dtype":
            value = "float32"
        elif key == "batch_shape":
            key = "batch_input_shape"
        elif isinstance(value, dict) and "class_name" in value:
            value = {"class_name": value["class_name"], "config": {"seed": None} if "Glorot" in
                     value["class_name"] else {}}
        elif key in ("optional", "seed", "quantization_config") or key == "synchronized":
            continue
        config[key] = value
    return config


def _keras2_config(model):
    """Keras 2's model_config of the same network (Keras 2's ``Functional.get_config``/``Sequential``)."""
    config = model.get_config()
    layers = []
    for spec in config["layers"]:
        out = {"class_name": spec["class_name"], "config": _keras2_layer(spec["class_name"], spec["config"])}
        if "inbound_nodes" in spec:
            out["name"] = spec["name"]
            nodes = []
            for node in spec["inbound_nodes"]:
                args = node["args"][0]
                tensors = args if isinstance(args, list) else [args]
                nodes.append([[*t["config"]["keras_history"], {}] for t in tensors])
            out["inbound_nodes"] = nodes
        layers.append(out)
    keras2 = {"name": config["name"], "layers": layers}
    if "input_layers" in config:
        keras2["input_layers"] = [config["input_layers"]]
        keras2["output_layers"] = [config["output_layers"]]
    return {"class_name": "Functional" if "input_layers" in config else "Sequential", "config": keras2}


def _write_keras2_file(model, path, parts=2):
    """A Keras 2 ``model.save("m.h5")``: bytes attributes, weights named ``<layer>/<weight>:0``, and
    ``layer_names`` split over ``parts`` attributes as Keras 2 splits long ones (HDF5_OBJECT_HEADER_LIMIT)."""
    layers = model.layers
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(_keras2_config(model)).encode("utf8")
        f.attrs["training_config"] = json.dumps({
            "loss": "categorical_crossentropy", "metrics": None, "weighted_metrics": None, "loss_weights": None,
            "optimizer_config": {"class_name": "Custom>Adam", "config": {
                "name": "Adam", "weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None, "jit_compile": True,
                "is_legacy_optimizer": False, "learning_rate": 0.0005, "beta_1": 0.9, "beta_2": 0.999,
                "epsilon": 1e-07, "amsgrad": False}}}).encode("utf8")
        group = f.create_group("model_weights")
        names = np.asarray([layer.name.encode("utf8") for layer in layers])
        for i, chunk in enumerate(np.array_split(names, parts)):
            group.attrs[f"layer_names{i}"] = chunk
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.15.0"
        for layer in sorted(layers, key=lambda layer: layer.name):
            g = group.create_group(layer.name)
            weights = layer.trainable_weights + layer.non_trainable_weights
            weight_names = [f"{layer.name}/{w.name}:0".encode("utf8") for w in weights]
            g.attrs["weight_names"] = np.asarray(weight_names) if weight_names else np.asarray([])
            for name, w in zip(weight_names, weights):
                g.create_dataset(name, data=np.asarray(w))


@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_a_keras2_file_loads_and_predicts_the_same(keras_models, tmp_path, name):
    path = tmp_path / "keras2.h5"
    keras_model = getattr(keras_models, name)
    _write_keras2_file(keras_model, path)
    with h5py.File(path, "r") as f:  # the file really has Keras 2's names and split attributes
        assert "layer_names" not in f["model_weights"].attrs and "layer_names1" in f["model_weights"].attrs
        first = next(n for n in read_name_list(path, f["model_weights"], "layer_names")
                     if len(read_name_list(path, f["model_weights"][n], "weight_names")))
        assert read_name_list(path, f["model_weights"][first], "weight_names")[0].endswith("/kernel:0")
    model = nnscratch.load_model(path)
    x = getattr(keras_models, f"{name}_x")
    _close(model.predict(x), getattr(keras_models, f"{name}_y"))
    assert (type(model.optimizer).__name__, model.optimizer.learning_rate) == ("Adam", 0.0005)


def test_keras_own_legacy_reader_accepts_the_keras2_file_built_for_these_tests(keras_models, tmp_path):
    """Checks the test's Keras 2 file against Keras' own reader of Keras 2 files (legacy_h5_format)."""
    path = tmp_path / "keras2.h5"
    _write_keras2_file(keras_models.resnet, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = keras_models.keras.models.load_model(path, compile=False)
    _close(again.predict(keras_models.resnet_x, verbose=0), keras_models.resnet_y)


def test_long_name_lists_are_split_as_keras_splits_them(tmp_path):
    names = [f"dense_{i:05d}_" + "x" * 40 for i in range(2000)]
    path = tmp_path / "names.h5"
    with h5py.File(path, "w") as f:
        nnscratch.io.keras_h5._write_name_list(f, "layer_names", names)
        parts = sorted(k for k in f.attrs)
        assert parts[0] == "layer_names0" and all(f.attrs[k].nbytes <= HEADER_LIMIT for k in parts)
    with h5py.File(path, "r") as f:
        assert read_name_list(path, f, "layer_names") == names


# -- damaged and hostile files ---------------------------------------------------------------------------------
@pytest.fixture
def keras_file(tmp_path):
    model = nnscratch.Model([Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1), name="conv"),
                             Flatten(name="flat"), Dense(3, name="dense")], seed=0)
    model.finalize()
    path = tmp_path / "k.h5"
    save_keras_h5(model, path)
    return path


def _edit_config(path, edit):
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)


def test_a_truncated_keras_file(keras_file):
    data = keras_file.read_bytes()
    keras_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        nnscratch.load_model(keras_file)


def test_a_missing_weight(keras_file):
    with h5py.File(keras_file, "r+") as f:
        del f["model_weights/dense/dense/kernel"]
    with pytest.raises(ModelFileError, match=r"/model_weights/dense/dense/kernel is missing"):
        nnscratch.load_model(keras_file)


def test_a_layer_without_its_weights(keras_file):
    with h5py.File(keras_file, "r+") as f:
        f["model_weights/dense"].attrs["weight_names"] = np.asarray([])
    with pytest.raises(ModelFileError, match=r"the file lacks weights for \['dense'\]"):
        nnscratch.load_model(keras_file)


def test_a_weight_of_the_wrong_shape(keras_file):
    with h5py.File(keras_file, "r+") as f:
        del f["model_weights/dense/dense/kernel"]
        f["model_weights/dense/dense/kernel"] = np.zeros((7, 3), np.float32)
    with pytest.raises(ModelFileError, match=r"weight 'kernel' has shape \(7, 3\) in the file but \(32, 3\)"):
        nnscratch.load_model(keras_file)


def test_a_configuration_asking_for_huge_weights_is_refused_before_allocating(keras_file):
    _edit_config(keras_file, lambda c: c["config"]["layers"][-1]["config"].update(units=10**9))
    with pytest.raises(ModelFileError, match=r"'kernel' has shape \(32, 3\) in the file but \(32, 1000000000\)"):
        nnscratch.load_model(keras_file)


def test_an_unknown_layer_class(keras_file):
    _edit_config(keras_file, lambda c: c["config"]["layers"][2].update(class_name="GRU"))
    with pytest.raises(ModelFileError, match=r"k\.h5: layer 2 'flat' \(GRU\): nnscratch has no layer like Keras' GRU"):
        nnscratch.load_model(keras_file)


def test_a_lambda_layer_is_refused_never_run(keras_file):
    def edit(config):
        config["config"]["layers"][2] = {"class_name": "Lambda", "config": {
            "name": "flat", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAA"}},
            "function_type": "lambda"}}
    _edit_config(keras_file, edit)
    with pytest.raises(ModelFileError, match="Lambda layer, which runs Python code stored in the file"):
        nnscratch.load_model(keras_file)


@pytest.mark.parametrize("field, value, says", [
    ("module", "my_package.layers", "custom object outside Keras"),
    ("registered_name", "MyPackage>Conv", "names the custom object 'MyPackage>Conv'")])
def test_custom_objects_are_refused_never_imported(keras_file, field, value, says):
    _edit_config(keras_file, lambda c: c["config"]["layers"][1].update({field: value}))
    with pytest.raises(ModelFileError, match=says):
        nnscratch.load_model(keras_file)


def test_channels_first_is_refused(keras_file):
    _edit_config(keras_file, lambda c: c["config"]["layers"][1]["config"].update(data_format="channels_first"))
    with pytest.raises(ModelFileError, match="data_format='channels_first' is not supported.*channels-last"):
        nnscratch.load_model(keras_file)


def test_a_model_config_nested_too_deeply(keras_file):
    nested = {}
    for _ in range(5000):  # deeper than JSON text parses (that is refused as unparsable), built as a dict
        nested = {"x": [nested]}
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "kernel_regularizer": nested}}]}}
    with pytest.raises(ModelFileError, match="k.h5: the model configuration is nested too deeply"):
        nnscratch.io.keras_h5.build_model(keras_file, config, {})


def test_a_model_config_that_is_not_json(keras_file):
    with h5py.File(keras_file, "r+") as f:
        f.attrs["model_config"] = '{"class_name": "Sequential", '
    with pytest.raises(ModelFileError, match="attribute 'model_config' should hold JSON text"):
        nnscratch.load_model(keras_file)


@pytest.mark.parametrize("link", ["external", "soft"])
def test_links_in_a_keras_file_are_refused_not_followed(keras_file, tmp_path, link):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["kernel"] = np.zeros((32, 3), np.float32)
    with h5py.File(keras_file, "r+") as f:
        del f["model_weights/dense/dense/kernel"]
        f["model_weights/dense/dense/kernel"] = (h5py.ExternalLink(str(other), "/kernel") if link == "external"
                                                 else h5py.SoftLink("/model_weights/conv/conv/kernel"))
    with pytest.raises(ModelFileError, match=f"/model_weights/dense/dense/kernel is an? {link}"):
        nnscratch.load_model(keras_file)


def test_compressed_weights_are_refused(keras_file):
    with h5py.File(keras_file, "r+") as f:
        del f["model_weights/dense/dense/kernel"]
        f.create_dataset("model_weights/dense/dense/kernel", data=np.zeros((32, 3), np.float32), compression="gzip")
    with pytest.raises(ModelFileError, match="stored through the HDF5 filter deflate"):
        nnscratch.load_model(keras_file)


@pytest.mark.parametrize("training, compiled", [
    ({"loss": "categorical_crossentropy", "optimizer_config": {"class_name": "RMSprop", "config": {
        "learning_rate": 0.002, "rho": 0.8, "epsilon": 1e-7, "momentum": 0.0, "centered": False}}}, "RMSprop"),
    ({"loss": {"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}},
      "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}}}, "from_logits"),
    ({"loss": "mse", "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001,
                                                                          "clipnorm": 1.0}}}, "clipnorm=1.0"),
    ({"loss": "mse", "optimizer_config": {"class_name": "SGD", "config": {"learning_rate": {
        "class_name": "ExponentialDecay", "config": {}}}}}, "learning-rate schedule"),
    ({"loss": "hinge", "optimizer_config": {"class_name": "SGD", "config": {}}}, "loss 'hinge'"),
])
def test_a_training_configuration_compiles_or_says_how_to(keras_file, training, compiled):
    with h5py.File(keras_file, "r+") as f:
        f.attrs["training_config"] = json.dumps(training)
    if compiled == "RMSprop":
        model = nnscratch.load_model(keras_file)
        assert (type(model.optimizer).__name__, model.optimizer.rho, model.optimizer.convention) == \
            ("RMSprop", 0.8, "keras")
        return
    with pytest.warns(RuntimeWarning, match=f"loaded uncompiled because nnscratch has no equivalent of its .*"
                                            f"{compiled}.*call model.set\\(loss=..., optimizer=...\\)"):
        model = nnscratch.load_model(keras_file)
    assert model.optimizer is None


def test_model_level_weights_outside_layers_are_refused(keras_file):
    with h5py.File(keras_file, "r+") as f:
        f["model_weights/top_level_model_weights"].attrs["weight_names"] = np.asarray([b"scale"])
    with pytest.raises(ModelFileError, match="top_level_model_weights holds weights of the model itself"):
        nnscratch.load_model(keras_file)


def test_a_keras_weights_file_given_to_load_model_says_what_to_do(keras_file):
    with h5py.File(keras_file, "r+") as f:
        del f.attrs["model_config"]
    with pytest.raises(ModelFileError, match=r"no model_config attribute.*model.load_weights\(path\)"):
        nnscratch.load_model(keras_file)
