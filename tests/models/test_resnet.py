"""The ready-made ResNet: its shape, parameter counts (He et al.'s ResNet-20), and that it learns."""
import numpy as np
import pytest

from nnscratch.gradcheck import check_model
from nnscratch.models import resnet


def test_resnet20_has_he_et_al_s_shape_and_keras_counts():
    model = resnet(input_shape=(32, 32, 3), blocks_per_stage=3)
    assert model.name == "resnet20" and model.output_shape == (10,)
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert len(convs) == 1 + 3 * 3 * 2 + 2  # stem, two per block, two 1x1 projections
    assert model.count_params() == 274_042  # "0.27M" in He et al. 2016, Table 6, with projection shortcuts
    assert sum(layer.count_non_trainable_params() for layer in model.layers) == 1_568  # moving statistics


def test_a_small_resnet_checks_in_float64_and_learns():
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(int)  # top half brighter?
    # 0.9: with 4 steps an epoch, moving statistics of momentum 0.99 would still be near their start
    model = resnet(input_shape=(8, 8, 1), num_classes=2, filters=(4, 8), bn_momentum=0.9, seed=0)
    report = check_model(model, x[:2], y[:2], max_elements=10, eps=1e-6)  # 1e-6: fewer ReLU kinks crossed
    assert report.ok, report.table()
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert model.validate(x, y)["accuracy"] > 0.9


@pytest.mark.parametrize("kwargs, pattern", [({"filters": ()}, "filters must be a list"),
                                             ({"blocks_per_stage": 0}, "blocks_per_stage must be a positive"),
                                             ({"filters": (8, -1)}, r"filters\[1\] must be a positive")])
def test_bad_arguments_are_named(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        resnet(**kwargs)
