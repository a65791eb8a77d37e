import pytest

from nnscratch.layers import LAYERS, Layer
from nnscratch.registry import Registry


def test_user_layer_registers_by_class_name_and_unknown_names_list_known_ones():
    class MyScale(Layer):
        def forward(self, x, training=False):
            return x

    assert LAYERS.get("MyScale") is MyScale
    with pytest.raises(ValueError, match=r"unknown layer 'Dens'\. Known layers: .*Dense.*MyScale"):
        LAYERS.get("Dens")
    with pytest.raises(ValueError, match="unknown layer 'dense'"):
        LAYERS.get("dense")  # layer names are exact class names, no case folding


def test_two_different_classes_cannot_share_a_name():
    reg = Registry("thing")

    def make():
        class Thing:
            pass
        return Thing

    reg.register(make())
    reg.register(make())  # the same definition run again (a re-imported module) replaces the old one

    class Thing:
        pass

    with pytest.raises(TypeError, match="already registered.*registry_name"):
        reg.register(Thing)


def test_registry_name_and_opt_out():
    class Hidden(Layer, register=False):
        pass

    class Renamed(Layer, registry_name="RenamedForTests"):
        pass

    assert "Hidden" not in LAYERS.names()
    assert LAYERS.get("RenamedForTests") is Renamed
