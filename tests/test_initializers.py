import numpy as np
import pytest

from nnscratch.initializers import INITIALIZERS, get_initializer


@pytest.mark.parametrize("name, std", [("he_normal", np.sqrt(2 / 400)), ("glorot_uniform", np.sqrt(2 / 500)),
                                        ("lecun_normal", np.sqrt(1 / 400)), ("he_uniform", np.sqrt(2 / 400))])
def test_variance(name, std):
    w = get_initializer(name)((400, 100), 400, 100, np.random.default_rng(0), np.float64)
    assert w.std() == pytest.approx(std, rel=0.03)


def test_every_initializer_respects_shape_and_dtype():
    for name, init in INITIALIZERS.items():
        w = init((3, 4), 3, 4, np.random.default_rng(0), np.float32)
        assert w.shape == (3, 4) and w.dtype == np.float32, name


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown initializer 'he'.*he_normal"):
        get_initializer("he")
