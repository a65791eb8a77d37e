"""Keras' training configuration <-> nnscratch's loss, optimizer and accuracy, as pure dicts (no Keras needed).
Reading is also tested through real Keras files in test_keras_h5.py, writing through Keras' own loader there."""
import pytest

import nnscratch
from nnscratch import optimizers, schedules
from nnscratch.io.keras_training import KERAS_LOSS_KEY, training_from_keras, training_to_keras
from nnscratch.layers import Dense


def _compiled(optimizer, loss="categorical_crossentropy", accuracy=None, metadata=None):
    model = nnscratch.Model([Dense(3, activation="softmax", input_shape=(4,))])
    model.set(loss=loss, optimizer=optimizer, **({"accuracy": accuracy} if accuracy else {}))
    model.finalize()
    model.metadata.update(metadata or {})
    return model


@pytest.mark.parametrize("optimizer, keras", [
    (optimizers.Adam(0.002, beta_1=0.8, epsilon=1e-6),
     {"class_name": "Adam", "config": {"name": "adam", "learning_rate": 0.002, "weight_decay": None,
                                       "beta_1": 0.8, "beta_2": 0.999, "epsilon": 1e-6}}),
    (optimizers.SGD(0.1, momentum=0.9, nesterov=True),
     {"class_name": "SGD", "config": {"name": "sgd", "learning_rate": 0.1, "weight_decay": None,
                                      "momentum": 0.9, "nesterov": True}}),
    (optimizers.RMSprop(0.01, rho=0.8),
     {"class_name": "RMSprop", "config": {"name": "rmsprop", "learning_rate": 0.01, "weight_decay": None,
                                          "rho": 0.8, "epsilon": 1e-7, "momentum": 0.0, "centered": False}}),
    (optimizers.AdamW(0.001, weight_decay=0.05),
     {"class_name": "AdamW", "config": {"name": "adamw", "learning_rate": 0.001, "weight_decay": 0.05,
                                        "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}}),
])
def test_optimizers_are_written_with_their_hyperparameters(optimizer, keras):
    config, why = training_to_keras(_compiled(optimizer))
    assert why is None
    assert config["optimizer"] == keras
    assert config["loss"] == "sparse_categorical_crossentropy" and config["metrics"] == ["accuracy"]


def test_what_is_written_reads_back_as_the_same_training():
    model = _compiled(optimizers.Adam(0.003, beta_2=0.99, convention="keras"))
    config, _ = training_to_keras(model)
    back, why = training_from_keras({**config, "optimizer_config": config.pop("optimizer")})
    assert why is None
    again = nnscratch.Model.from_config(model.get_config(), back)
    assert again.optimizer.get_config() == model.optimizer.get_config()
    assert type(again.loss) is type(model.loss)


def test_the_rate_written_is_the_next_steps_with_its_multiplier():
    model = _compiled(optimizers.SGD(0.1))
    model.optimizer.lr_multiplier = 0.5   # as ReduceLROnPlateau leaves it
    assert training_to_keras(model)[0]["optimizer"]["config"]["learning_rate"] == 0.05


def test_a_model_read_from_keras_keeps_its_kind_of_cross_entropy():
    model = _compiled(optimizers.Adam(), metadata={KERAS_LOSS_KEY: "categorical_crossentropy"})
    assert training_to_keras(model)[0]["loss"] == "categorical_crossentropy"


@pytest.mark.parametrize("optimizer, loss, says", [
    (optimizers.Adam(schedules.CosineDecay(0.01, decay_steps=100)), "categorical_crossentropy",
     "learning-rate schedule CosineDecay"),
    (optimizers.Adam(0.01, weight_decay=0.1), "categorical_crossentropy", "weight decay to the gradient (coupled"),
    (optimizers.Nadam(0.01), "categorical_crossentropy", "momentum_decay 0.004 differs from Keras'"),
    ("sdlm", "mse", "optimizer SDLM has no Keras equivalent"),
    (optimizers.Adam(), "sum_squared_error", "loss SumSquaredError has no Keras equivalent"),
])
def test_what_keras_lacks_leaves_the_file_uncompiled_and_says_why(optimizer, loss, says):
    config, why = training_to_keras(_compiled(optimizer, loss=loss))
    assert config is None and says in why


def test_an_uncompiled_model_has_no_training_configuration():
    model = nnscratch.Model([Dense(3, input_shape=(4,))])
    model.finalize()
    assert training_to_keras(model) == (None, None)
