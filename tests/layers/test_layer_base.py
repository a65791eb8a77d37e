"""The layer base class: declared weights and state, layers inside layers, twins, the framework's shape check."""
import re

import numpy as np
import pytest

import nnscratch
from nnscratch.layers import BatchNormalization, Dense, Layer, ReLU
from nnscratch.errors import SecondOrderNotImplemented
from nnscratch.layers import Add, base
from nnscratch.layers import context as _context
from nnscratch.testing import check_layer_contract


class BaseTestResidual(Layer):
    """``x + f(x)`` with ``f = Dense -> BatchNormalization -> ReLU -> Dense`` held in a list: a user's wrapper."""

    check_cases = [({"units": 4}, (4,))]

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.body = [Dense(units, use_bias=False), BatchNormalization(), ReLU(), Dense(units)]

    def build(self, input_shape):
        shape = input_shape
        for layer in self.body:
            shape = layer.initialize(shape, self.dtype, self.rng)

    def forward(self, x, training=False):
        h = x
        for layer in self.body:
            h = layer.forward(h, training=training)
        return x + h

    def backward(self, dout):
        g = dout
        for layer in reversed(self.body):
            g = layer.backward(g)
        return dout + g


def test_a_layer_that_holds_layers_keeps_the_whole_contract():
    # the report behind issue 11: such a wrapper got a numerical gradient of 0 for its inner weights (astype
    # replaced the arrays it pointed at) and, with two threads, updates 4x too large (shallow thread copies)
    report = check_layer_contract(BaseTestResidual, raise_on_failure=False)
    assert report.ok, report.table()
    layer = BaseTestResidual()
    layer.initialize((4,))
    assert [path for path, _ in layer.walk()] == ["", "body.0/", "body.1/", "body.2/", "body.3/"]
    assert sorted(layer.weights()) == ["body.0/kernel", "body.1/beta", "body.1/gamma", "body.1/moving_mean",
                                       "body.1/moving_variance", "body.3/bias", "body.3/kernel"]
    assert layer.count_params() == 16 + 16 + 20 and layer.count_non_trainable_params() == 8


def test_a_model_of_wrappers_trains_saves_and_loads(tmp_path):
    x = nnscratch.Input((4,))
    out = nnscratch.layers.Softmax()(Dense(3)(BaseTestResidual()(BaseTestResidual()(x))))
    model = nnscratch.Model(x, out, seed=0)
    model.set(loss="categorical_crossentropy", optimizer="adam")
    model.finalize()
    assert "base_test_residual_1/body.0/kernel" in model.get_weights()
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((32, 4)).astype(np.float32), rng.integers(0, 3, 32)
    model.fit(xs, ys, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "wrapped.h5")
    again = nnscratch.load_model(tmp_path / "wrapped.h5")
    np.testing.assert_array_equal(again.predict(xs), model.predict(xs))


def test_add_weight_declares_trainable_weights_and_state():
    class Two(Layer, register=False):
        def build(self, input_shape):
            self.add_weight("w", (input_shape[0], 2), "glorot_uniform")
            self.add_weight("count", (), 0.0, trainable=False)

    layer = Two()
    layer.initialize((3,), "float64")
    assert layer.params["w"].shape == (3, 2) and layer.params["w"].dtype == np.float64
    assert layer.state["count"].shape == () and layer.constants is layer.state
    assert set(layer.grads) == {"w"}


@pytest.mark.parametrize("declare, error, pattern", [
    (lambda s: (s.add_weight("w", (2,)), s.add_weight("w", (3,))), ValueError, r"'w' is already declared"),
    (lambda s: s.add_weight("w", "big"), ValueError, r"needs a shape tuple, got 'big'"),
    (lambda s: s.add_weight("w", (2, -1)), ValueError, r"shape of 'w' must be a non-negative integer, got -1"),
    (lambda s: s.add_weight("w", (10**6, 10**6)), ValueError, r"would hold 1,000,000,000,000 values, more than"),
    (lambda s: s.add_weight("w", (2,), "onez"), ValueError, r"unknown initializer 'onez'"),
    (lambda s: s.add_weight("w", (2,), np.ones(3)), ValueError, r"initial value of 'w' has shape \(3,\)"),
    (lambda s: s.add_weight("", (2,)), ValueError, r"non-empty string name"),
])
def test_add_weight_refuses_what_cannot_be_a_weight(declare, error, pattern):
    class Declares(Layer, register=False):
        def build(self, input_shape):
            declare(self)

    with pytest.raises(error, match=pattern):
        Declares().initialize((3,))


def test_absurd_output_sizes_are_refused_before_anything_is_allocated():
    with pytest.raises(ValueError, match=r"would output \(1000000, 1000000, 1\) per sample"):
        ReLU().initialize((10**6, 10**6, 1))


def test_a_twin_shares_weights_but_not_gradients_caches_or_scratch():
    layer = BaseTestResidual()
    layer.initialize((4,))
    twin = layer.replicate(own_state=True)
    assert twin.body[0].params["kernel"] is layer.body[0].params["kernel"]
    assert twin.body[0].grads["kernel"] is not layer.body[0].grads["kernel"]
    assert twin.body[1].state["moving_mean"] is not layer.body[1].state["moving_mean"]
    assert layer.replicate().body[1].state["moving_mean"] is layer.body[1].state["moving_mean"]
    twin.forward(np.ones((2, 4)), training=True)
    assert not hasattr(layer.body[0], "_x")


def test_astype_points_a_layers_own_attributes_at_the_new_arrays():
    class Cached(Layer, register=False):
        def build(self, input_shape):
            self.w = self.add_weight("w", input_shape, "ones")

        def forward(self, x, training=False):
            return x * self.w

    layer = Cached()
    layer.initialize((2,))
    layer.astype("float64")
    assert layer.w is layer.params["w"] and layer.w.dtype == np.float64


def test_calling_a_layer_on_arrays_builds_it_and_checks_the_shape():
    dense = Dense(3)
    assert dense(np.ones((2, 4))).shape == (2, 3) and dense.built_input_shape == (4,)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 4\), got \(2, 5\)"):
        dense(np.ones((2, 5)))
    with pytest.raises(TypeError, match=r"expects a symbolic tensor .* got str"):
        dense("not data")


def test_the_limits_can_be_raised(monkeypatch):
    monkeypatch.setattr(base, "MAX_WEIGHT_ELEMENTS", 10)
    with pytest.raises(ValueError, match=r"more than the limit of 10"):
        Dense(4).initialize((3,))


# --- found by mutation testing (issue 21): what the generic contract check cannot see --------------------

class _Declares(Layer, register=False):
    """Declares what ``declare(self, input_shape)`` says: a stand-in for a user's ``build``."""

    def __init__(self, declare=None, **kwargs):
        super().__init__(**kwargs)
        self.declare = declare

    def build(self, input_shape):
        if self.declare is not None:
            self.declare(self, input_shape)


def test_compute_fans_follows_keras_for_scalars_vectors_matrices_and_kernels():
    assert base.compute_fans(()) == (1, 1)
    assert base.compute_fans((7,)) == (7, 7)
    assert base.compute_fans((784, 10)) == (784, 10)
    assert base.compute_fans((3, 5, 2, 6)) == (2 * 15, 6 * 15)
    assert base.compute_fans((4, 2, 6)) == (2 * 4, 6 * 4)


def test_a_weight_shape_error_names_the_layer_the_weight_and_both_shapes():
    error = base.WeightShapeError("d (Dense)", "kernel", [3, 2], [4, 2])
    assert isinstance(error, ValueError)
    assert (error.layer, error.name, error.declared, error.in_file) == ("d (Dense)", "kernel", (3, 2), (4, 2))
    assert str(error) == ("d (Dense) declares weight 'kernel' of shape (3, 2), but the file holds (4, 2); "
                          "its configuration and its weights disagree")


def test_a_weight_whose_shape_differs_from_the_file_being_loaded_is_refused_before_it_is_made():
    layer = _Declares(lambda s, shape: s.add_weight("w", (3, 2), "ones"), name="d")
    layer._expected_shapes = {"w": (4, 2)}
    with pytest.raises(base.WeightShapeError, match=r"^d \(_Declares\) declares weight 'w' of shape \(3, 2\), "
                       r"but the file holds \(4, 2\); its configuration and its weights disagree$"):
        layer.initialize((3,))
    layer._expected_shapes = {"w": [3, 2], "other": (9,)}  # a list from JSON is the same shape
    layer.initialize((3,))
    assert layer.params["w"].shape == (3, 2)


def test_a_new_layer_starts_unbuilt_trainable_in_float32_and_needing_its_input_gradient():
    layer = Layer(input_shape=[4, 2], name="first")
    assert layer.input_shape == (4, 2) and layer.name == "first"
    assert Layer().input_shape is None and Layer().name is None
    assert layer.trainable is True and layer.input_grad_needed is True and layer.built is False
    assert layer.dtype == np.float32 and isinstance(layer.rng, np.random.Generator)
    assert layer.built_input_shape is None and layer.output_shape is None
    assert layer.params == {} and layer.grads == {} and layer.state == {} and layer.hessian_diagonal == {}
    assert layer.workspace == {} and layer._expected_shapes is None


def test_an_input_shape_argument_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"^input_shape\[1\] must be a positive integer, got 0$"):
        Layer(input_shape=(3, 0))
    with pytest.raises(ValueError, match=r"^input_shape must be a tuple of positive integers \(without the batch "
                       r"axis\), got 'x'$"):
        Layer(input_shape="x")


@pytest.mark.parametrize("name", ["", 3, b"dense"])
def test_a_name_that_is_not_a_non_empty_string_is_refused(name):
    with pytest.raises(ValueError, match=rf"^name must be a non-empty string, got {re.escape(repr(name))}$"):
        Layer(name=name)


def test_the_defaults_of_build_and_compute_output_shape():
    layer = Layer()
    assert layer.compute_output_shape([3, 4]) == (3, 4)
    assert layer.initialize([3, 4], "float64") == (3, 4)
    assert layer.built and layer.built_input_shape == (3, 4) and layer.output_shape == (3, 4)
    assert layer.params == {} and layer.state == {} and layer.dtype == np.float64


@pytest.mark.parametrize("declare, message", [
    (lambda s: s.add_weight("", (2,)), "d (_Declares): add_weight needs a non-empty string name, got ''"),
    (lambda s: s.add_weight(3, (2,)), "d (_Declares): add_weight needs a non-empty string name, got 3"),
    (lambda s: (s.add_weight("w", (2,)), s.add_weight("w", (3,))),
     "d (_Declares): a weight named 'w' is already declared; names must be unique within a layer"),
    (lambda s: (s.add_weight("w", (2,), trainable=False), s.add_weight("w", (3,))),
     "d (_Declares): a weight named 'w' is already declared; names must be unique within a layer"),
    (lambda s: s.add_weight("w", "big"), "d (_Declares): weight 'w' needs a shape tuple, got 'big'"),
    (lambda s: s.add_weight("w", True), "d (_Declares): weight 'w' needs a shape tuple, got True"),
    (lambda s: s.add_weight("w", (2, -1)), "d (_Declares): shape of 'w' must be a non-negative integer, got -1"),
    (lambda s: s.add_weight("w", (2, 2.0)), "d (_Declares): shape of 'w' must be a non-negative integer, got 2.0"),
    (lambda s: s.add_weight("w", (2,), np.ones(3)), "d (_Declares): the initial value of 'w' has shape (3,), "
                                                     "expected (2,)"),
    (lambda s: s.add_weight("w", (10**6, 10**6)),
     "d (_Declares): weight 'w' of shape (1000000, 1000000) would hold 1,000,000,000,000 values, more than the limit "
     "of 2,147,483,648 (nnscratch.layers.base.MAX_WEIGHT_ELEMENTS); check the layer's arguments, or raise the limit "
     "if you really mean it"),
])
def test_add_weight_refusals_word_for_word(declare, message):
    with pytest.raises(ValueError, match=rf"^{re.escape(message)}$"):
        _Declares(lambda s, shape: declare(s), name="d").initialize((3,))


def test_add_weight_takes_an_int_as_a_vector_zero_sizes_and_broadcasts_an_initial_value():
    def declare(s, shape):
        s.add_weight("v", 3, 2.5)
        s.add_weight("empty", (0, 2))
        s.add_weight("rows", (2, 3), [1.0, 2.0, 3.0], trainable=False)
        s.add_weight("like_list", [2], [4.0, 5.0])

    layer = _Declares(declare)
    layer.initialize((3,), "float64")
    assert layer.params["v"].tolist() == [2.5, 2.5, 2.5] and layer.params["empty"].shape == (0, 2)
    assert layer.state["rows"].tolist() == [[1.0, 2.0, 3.0]] * 2 and layer.state["rows"].flags.writeable
    assert layer.params["like_list"].tolist() == [4.0, 5.0]
    assert all(a.dtype == np.float64 and a.flags.c_contiguous for a in (*layer.params.values(), *layer.state.values()))
    # the array returned is the one stored, in the layer's dtype and C order whatever the initial value was
    def keep(s, shape):
        s.kept = [s.add_weight("w", (2,), "ones"), s.add_weight("listed", (2,), [1.0, 2.0]),
                  s.add_weight("fortran", (2, 3), np.asfortranarray(np.arange(6.0).reshape(2, 3)), trainable=False)]

    layer = _Declares(keep)
    layer.initialize((3,))
    assert [a.dtype for a in layer.kept] == [np.float32] * 3 and layer.kept[2].flags.c_contiguous
    assert layer.kept[0] is layer.params["w"] and layer.kept[1] is layer.params["listed"]
    assert layer.kept[2] is layer.state["fortran"] and layer.kept[2].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_add_weight_hands_the_initialiser_keras_fans_unless_it_is_told_others():
    seen = []

    def initializer(shape, fan_in, fan_out, rng, dtype):
        seen.append((shape, fan_in, fan_out, dtype))
        return np.zeros(shape, dtype)

    def declare(s, shape):
        s.add_weight("k", (3, 3, 2, 4), initializer)
        s.add_weight("b", (4,), initializer, fan_in=10)
        s.add_weight("c", (4,), initializer, fan_out=12)
        s.add_weight("d", (4, 5), initializer, fan_in=7, fan_out=8)

    _Declares(declare).initialize((3,), "float64")
    assert seen == [((3, 3, 2, 4), 18, 36, np.float64), ((4,), 10, 4, np.float64), ((4,), 4, 12, np.float64),
                    ((4, 5), 7, 8, np.float64)]


def test_a_weight_whose_size_overflows_64_bits_is_refused_not_wrapped_around():
    with pytest.raises(base.SizeLimitError, match=r"^_Declares: weight 'w' of shape \(4294967296, 4294967296\) would "
                       r"hold 18,446,744,073,709,551,616 values, more than the limit"):
        _Declares(lambda s, shape: s.add_weight("w", (2**32, 2**32))).initialize((3,))


def test_a_weight_at_the_size_limit_is_declared_and_one_past_it_refused(monkeypatch):
    monkeypatch.setattr(base, "MAX_WEIGHT_ELEMENTS", 6)
    assert _Declares(lambda s, shape: s.add_weight("w", (2, 3))).initialize((3,)) == (3,)
    with pytest.raises(base.SizeLimitError, match=r"^w \(_Declares\): weight 'w' of shape \(7,\) would hold 7 values, "
                       r"more than the limit of 6 \(nnscratch"):
        _Declares(lambda s, shape: s.add_weight("w", (7,)), name="w").initialize((3,))


def test_an_output_at_the_size_limit_is_allowed_and_one_past_it_refused(monkeypatch):
    monkeypatch.setattr(base, "MAX_SAMPLE_ELEMENTS", 6)
    assert ReLU().initialize((2, 3)) == (2, 3)
    with pytest.raises(base.SizeLimitError, match=r"^r \(ReLU\) would output \(7,\) per sample, more than 6 values "
                       r"\(nnscratch\.layers\.base\.MAX_SAMPLE_ELEMENTS\)$"):
        ReLU(name="r").initialize((7,))
    monkeypatch.undo()
    with pytest.raises(base.SizeLimitError, match=r"^ReLU would output \(2147483649,\) per sample, more than "
                       r"2,147,483,648 values \(nnscratch\.layers\.base\.MAX_SAMPLE_ELEMENTS\)$"):
        ReLU().initialize((2**31 + 1,))
    with pytest.raises(base.SizeLimitError, match=r"^ReLU would output \(4294967296, 4294967296\) per sample"):
        ReLU().initialize((2**32, 2**32))  # 2**64 values: 0 in 64-bit integers


def test_initialize_builds_afresh_in_the_dtype_asked_with_the_generator_given():
    class Filled(Layer, register=False):
        """Fills its dicts directly instead of through add_weight, as older layer code does."""

        def build(self, input_shape):
            self.params["w"] = [[1, 2], [3, 4]]
            self.params["f"] = np.asfortranarray(np.arange(6.0).reshape(2, 3))
            self.state["s"] = np.ones((2, 2), order="F")

        def compute_output_shape(self, input_shape):
            return (np.int64(2), 2.0)

    layer = Filled()
    assert layer.initialize((3,), "float64") == (2, 2)
    assert type(layer.output_shape[0]) is int and type(layer.output_shape[1]) is int
    assert layer.params["w"].dtype == np.float64 and layer.state["s"].flags.c_contiguous
    assert layer.params["f"].flags.c_contiguous and layer.params["f"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert layer.state["s"].dtype == np.float64
    assert set(layer.grads) == {"w", "f"} and layer.grads["w"].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert layer.grads["w"].dtype == np.float64
    layer.grads["w"] += 1
    layer.initialize((3,), "float32")
    assert layer.params["w"].dtype == np.float32 and layer.grads["w"].sum() == 0
    assert layer.state["s"].dtype == np.float32 and layer.params["f"].dtype == np.float32

    rng = np.random.default_rng(5)
    dense = Dense(3)
    dense.initialize((4,), rng=rng)
    assert dense.rng is rng
    again = Dense(3)
    again.initialize((4,), rng=np.random.default_rng(5))
    np.testing.assert_array_equal(dense.params["kernel"], again.params["kernel"])
    kept = again.rng
    again.initialize((4,))
    assert again.rng is kept  # no generator given: the layer keeps its own


def test_a_rebuild_forgets_the_weights_of_the_last_build():
    def declare(s, shape):
        s.add_weight("w" if shape == (3,) else "v", shape)
        s.add_weight("m", shape, trainable=False)

    layer = _Declares(declare)
    layer.initialize((3,))
    layer.grads["w"] += 1
    layer.initialize((4,))
    assert set(layer.params) == {"v"} and set(layer.state) == {"m"} and set(layer.grads) == {"v"}


def test_multiple_input_shapes_refused_word_for_word():
    for shape in [(3,), [], [(3,), 3]]:
        with pytest.raises(ValueError, match=rf"^a \(Add\) takes a list of inputs, so its input shape is a list of "
                           rf"shapes, got {re.escape(repr(shape))}$"):
            Add(name="a").initialize(shape)
    with pytest.raises(ValueError, match=r"^input shape 1 of a \(Add\)\[0\] must be a positive integer, got 0$"):
        Add(name="a").initialize([(3,), (0,)])
    with pytest.raises(ValueError, match=r"^input shape of r \(ReLU\)\[1\] must be a positive integer, got 0$"):
        ReLU(name="r").initialize((3, 0))
    assert Add().initialize([[3], (3,)]) == (3,)

    class Gate(Layer, register=False):
        """Takes a list of one input or more."""
        multiple_inputs = True

        def compute_output_shape(self, input_shape):
            return input_shape[0]

    assert Gate().initialize([(3,)]) == (3,)  # a list of one shape is a list of shapes


def test_astype_casts_the_sublayers_too_and_refuses_other_dtypes():
    layer = BaseTestResidual()
    layer.initialize((4,))
    assert layer.astype("float64") is layer
    assert all(sub.dtype == np.float64 for _, sub in layer.walk())
    assert all(a.dtype == np.float64 for a in layer.weights().values())
    assert all(g.dtype == np.float64 for _, sub in layer.walk() for g in sub.grads.values())
    with pytest.raises(ValueError, match=r"^dtype must be 'float32' or 'float64', got 'int32'$"):
        layer.astype("int32")


@pytest.mark.parametrize("dtype", ["flaot32", "FLOAT32", "int32", object])
def test_a_dtype_numpy_cannot_read_or_that_is_not_a_float_is_refused_not_built_with_none(dtype):
    # found by mutating initialize's default "float32": a name NumPy cannot read became dtype None
    with pytest.raises(ValueError, match=rf"^dtype must be 'float32' or 'float64', got {re.escape(repr(dtype))}$"):
        Dense(2).initialize((3,), dtype)


def test_astype_leaves_every_array_c_ordered():
    dense = Dense(3)
    dense.initialize((4,))
    dense.params["kernel"] = np.asfortranarray(dense.params["kernel"])
    dense.grads["kernel"] = np.asfortranarray(dense.grads["kernel"])
    dense.astype("float64")
    assert dense.params["kernel"].flags.c_contiguous and dense.grads["kernel"].flags.c_contiguous


def test_counts_of_frozen_layers_and_of_layers_inside_a_frozen_one():
    layer = BaseTestResidual()
    layer.initialize((4,))
    trainable, non_trainable = layer.count_trainable_params(), layer.count_non_trainable_params()
    assert (trainable, non_trainable) == (16 + 8 + 20, 8)
    layer.body[3].trainable = False
    assert layer.count_trainable_params() == 16 + 8 and layer.count_non_trainable_params() == 8 + 20
    layer.body[3].trainable = True
    layer.trainable = False  # a frozen wrapper freezes what it holds
    assert layer.count_trainable_params() == 0 and layer.count_non_trainable_params() == 16 + 8 + 20 + 8
    assert layer.count_params() == 16 + 8 + 20 + 8


def test_weight_count_is_what_the_counts_add_up():
    class Linked(Layer, register=False):
        def build(self, input_shape):
            self.add_weight("table", (4,))
            self.add_weight("bias", (2,))
            self.add_weight("s", (3,), trainable=False)

        def weight_count(self, name, array):
            return 1 if name == "table" else super().weight_count(name, array)  # only linked weights count

    layer = Linked()
    layer.initialize((2,))
    assert Layer.weight_count(layer, "table", layer.params["table"]) == 4
    assert layer.count_trainable_params() == 1 + 2 and layer.count_non_trainable_params() == 3
    layer.trainable = False
    assert layer.count_trainable_params() == 0 and layer.count_non_trainable_params() == 1 + 2 + 3


def test_the_multiply_adds_of_a_wrapper_are_those_of_its_sublayers():
    class Dense6(Layer, register=False):
        def count_macs(self):
            return 6

    class Wrapper(Layer, register=False):
        def __init__(self):
            super().__init__()
            self.first, self.more = Dense6(), {"a": Dense6(), "b": Dense6()}

    assert Layer().count_macs() == 0 and Wrapper().count_macs() == 18


def test_sublayers_are_found_in_attributes_lists_tuples_and_dicts_but_not_in_the_weight_dicts():
    class Holder(Layer, register=False):
        def __init__(self):
            super().__init__()
            self.single = ReLU()
            self.pair = (ReLU(), 3, ReLU())
            self.named = {"x": ReLU(), "n": 1}
            self.workspace = {"w": ReLU()}
            self.params = {"p": ReLU()}
            self.grads = {"g": ReLU()}
            self.state = {"s": ReLU()}

    holder = Holder()
    assert [path for path, _ in holder.sublayers()] == ["single", "pair.0", "pair.2", "named.x"]
    assert [path for path, _ in holder.walk("top/")] == ["top/", "top/single/", "top/pair.0/", "top/pair.2/",
                                                         "top/named.x/"]
    twin = holder.replicate()
    assert type(twin.pair) is tuple and twin.pair[1] == 3 and twin.pair[0] is not holder.pair[0]
    assert twin.named["n"] == 1 and twin.named["x"] is not holder.named["x"]
    assert twin.single is not holder.single


def test_a_twins_sublayers_in_a_dict_get_their_own_state_when_asked():
    class Holder(Layer, register=False):
        def __init__(self):
            super().__init__()
            self.direct = BatchNormalization()
            self.named = {"bn": BatchNormalization()}

    holder = Holder()
    holder.direct.initialize((3,))
    holder.named["bn"].initialize((3,))
    holder.workspace["scratch"] = np.ones(3)
    twin = holder.replicate(own_state=True)
    shared = holder.replicate()
    assert twin.workspace == {} and shared.workspace == {} and holder.workspace["scratch"].shape == (3,)
    for own, other, original in ((twin.direct, shared.direct, holder.direct),
                                 (twin.named["bn"], shared.named["bn"], holder.named["bn"])):
        assert own.state["moving_mean"] is not original.state["moving_mean"]
        np.testing.assert_array_equal(own.state["moving_mean"], original.state["moving_mean"])
        assert other.state["moving_mean"] is original.state["moving_mean"]
        assert own.grads["gamma"] is not original.grads["gamma"]


def test_the_defaults_of_forward_backward_and_the_second_order_backward_say_what_to_implement():
    with pytest.raises(NotImplementedError, match=r"^Layer must implement forward\(x, training=False\)$"):
        Layer().forward(np.ones((1, 2)))
    with pytest.raises(NotImplementedError, match=r"^Layer must implement backward\(dout\)$"):
        Layer().backward(np.ones((1, 2)))
    with pytest.raises(SecondOrderNotImplemented, match=(
            r"^x \(Layer\) has no second-order backward \(backward_second_order\), which SDLM needs for every layer "
            r"it trains through; train this model with another optimizer, or implement it \(see "
            r"docs/writing-a-layer\.md\)$")):
        Layer(name="x").backward_second_order(np.ones((1, 2)), np.ones((1, 2)))


def test_calling_a_layer_refuses_word_for_word_what_it_cannot_take():
    cases = [
        (ReLU(name="r"), [np.ones((2, 3)), np.ones((2, 3))], TypeError,
         "r (ReLU) takes one input, got a list of 2; merge them first (e.g. Concatenate()) or call it on one"),
        (ReLU(), (np.ones((2, 3)),), TypeError,
         "ReLU takes one input, got a tuple of 1; merge them first (e.g. Concatenate()) or call it on one"),
        (Add(name="a"), np.ones((2, 3)), TypeError, "a (Add) takes a list of inputs, got ndarray"),
        (Add(name="a"), [], TypeError, "a (Add) takes a list of inputs, got list"),
        (ReLU(), np.array(3.0), ValueError, "ReLU expects an array with a batch axis, got a scalar"),
        (ReLU(), 3.0, TypeError, "ReLU expects a symbolic tensor (from nnscratch.Input(...) or another layer) or a "
                                 "NumPy array with a batch axis, got float (3.0)"),
        (ReLU(), "not data", TypeError, "ReLU expects a symbolic tensor (from nnscratch.Input(...) or another layer) "
                                        "or a NumPy array with a batch axis, got str ('not data')"),
        (ReLU(), [[1, 2], [3]], TypeError, "ReLU takes one input, got a list of 2; merge them first (e.g. "
                                           "Concatenate()) or call it on one"),
        (Add(), [np.ones((2, 3)), [[1, 2], [3]]], TypeError,
         "Add expects a symbolic tensor (from nnscratch.Input(...) or another layer) or a NumPy array with a batch "
         "axis, got list ([[1, 2], [3]])"),
        (Add(), [np.ones((2, 3)), "ab" * 40], TypeError,
         "Add expects a symbolic tensor (from nnscratch.Input(...) or another layer) or a NumPy array with a batch "
         f"axis, got str ({('ab' * 40)!r:.60})"),
    ]
    for layer, inputs, error, message in cases:
        with pytest.raises(error, match=rf"^{re.escape(message)}$"):
            layer(inputs)
    x = nnscratch.Input((3,))
    with pytest.raises(TypeError, match=r"^a \(Add\) was called on a mix of symbolic tensors and other values "
                       r"\(SymbolicTensor, ndarray\); call it on the outputs of nnscratch\.Input\(\.\.\.\) or of "
                       r"other layers only$"):
        Add(name="a")([x, np.ones((2, 3))])


def test_calling_a_layer_on_arrays_builds_it_in_their_float_dtype_or_float32():
    relu = ReLU()
    assert relu(np.ones((2, 3), np.float64)).dtype == np.float64 and relu.dtype == np.float64
    relu = ReLU()
    relu(np.ones((2, 3), np.int64))
    assert relu.dtype == np.float32 and relu.built_input_shape == (3,)
    assert Add()([[[1.0, 2.0]], [[3.0, 4.0]]]).tolist() == [[4.0, 6.0]]  # a list of nested lists is data
    relu = ReLU(name="r")
    relu.initialize((3,))
    with pytest.raises(ValueError, match=r"^r \(ReLU\) expects input of shape \(batch, 3\), got \(2,\); reshape"):
        relu(np.array([1.0, 2.0]))  # a vector is a batch of scalars, not one sample
    add = Add()
    out = add([np.ones((2, 3), np.float64), np.full((2, 3), 2.0)])
    assert add.built_input_shape == [(3,), (3,)] and add.dtype == np.float64 and out.tolist() == [[3.0] * 3] * 2
    first_decides = Add()
    first_decides([np.ones((2, 3), np.float64), np.ones((2, 3), np.float32)])
    assert first_decides.dtype == np.float64  # the first input's dtype, as for one input
    with pytest.raises(ValueError, match=r"^Add expects inputs of shapes \[\(None, 3\), \(None, 3\)\], "
                       r"got \[\(2, 3\), \(2, 4\)\]$"):
        add([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match=r"^Add expects inputs of shapes \[\(None, 3\), \(None, 3\)\], "
                       r"got \[\(2, 3\)\]$"):
        add([np.ones((2, 3))])


def test_training_reaches_forward_when_a_layer_is_called_on_arrays():
    seen = []

    class Spy(Layer, register=False):
        def forward(self, x, training=False):
            seen.append(training)
            return x

    Spy()(np.ones((1, 2)))
    Spy()(np.ones((1, 2)), training=True)
    assert seen == [False, True]


def test_the_input_shape_check_words_and_check_input():
    relu = ReLU(name="d")
    relu.initialize((4, 2))
    with pytest.raises(ValueError, match=r"^d \(ReLU\) expects input of shape \(batch, 4, 2\), got \(5, 4\); "
                       r"reshape the data or rebuild the model for this input shape$"):
        relu.check_input_shape(np.ones((5, 4)))
    assert Layer().check_input_shape(np.ones((5, 4))) is None  # not built: nothing to check against
    x = base.check_input(relu, [[[1.0, 2.0]] * 4])
    assert isinstance(x, np.ndarray) and x.shape == (1, 4, 2)
    same = np.ones((2, 4, 2))
    assert base.check_input(relu, same) is same
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, 4, 2\), got \(1, 4\)"):
        base.check_input(relu, [[1.0] * 4])


def test_the_default_gradcheck_input_is_standard_normal_of_the_shape_asked():
    got = Layer().gradcheck_input((2, 3), np.random.default_rng(1))
    np.testing.assert_array_equal(got, np.random.default_rng(1).standard_normal((2, 3)))
    pair = Add().gradcheck_input([(2, 3), (2, 3)], np.random.default_rng(1))
    rng = np.random.default_rng(1)
    expected = [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]
    assert len(pair) == 2
    for a, b in zip(pair, expected):
        np.testing.assert_array_equal(a, b)


def test_the_batch_helpers_see_the_whole_batch_through_the_context():
    layer = Layer()
    parts = [np.array([1.0]), np.array([2.0])]
    with _context.installed(_context.BatchContext(0, 2, exchange=lambda a: [a, a + 1])):
        gathered = layer.batch_gather(parts[1])
        assert gathered[0] is parts[1] and gathered[1].tolist() == [3.0]
    with _context.installed(_context.BatchContext(0, 2, exchange=lambda a: parts)):
        assert layer.batch_sum(parts[0]).tolist() == [3.0]
    layer.rng = np.random.default_rng(3)
    np.testing.assert_array_equal(layer.batch_uniform((2, 2)), np.random.default_rng(3).random((2, 2)))
    with _context.installed(_context.BatchContext(1, 3, seed=(1, 2, 3))):
        part = layer.batch_uniform((2, 2))
    with _context.installed(_context.BatchContext(0, 3, seed=(1, 2, 3))):
        whole = _context.uniform(None, (3, 2))
    np.testing.assert_array_equal(part, whole[1:])


def test_get_config_reads_the_init_arguments_as_plain_values_and_from_config_rebuilds():
    class Configured(Layer, register=False):
        def __init__(self, size=(2, 3), table=None, missing=7, *args, **kwargs):
            super().__init__(**kwargs)
            self.size = tuple(size)
            self.table = np.asarray(table if table is not None else [[1, 0]])

    layer = Configured(name="c", input_shape=(5,))
    assert layer.get_config() == {"size": [2, 3], "table": [[1, 0]], "missing": 7, "input_shape": [5], "name": "c"}
    assert Configured().get_config() == {"size": [2, 3], "table": [[1, 0]], "missing": 7, "input_shape": None,
                                         "name": None}
    again = Configured.from_config(layer.get_config())
    assert type(again) is Configured and again.get_config() == layer.get_config()


def test_describe_and_repr():
    assert Layer().describe() == "Layer" and Layer(name="x").describe() == "x (Layer)"
    assert repr(Dense(3, name="d")) == "Dense(units=3, use_bias=True, bias_initializer='zeros', name='d')"
    assert repr(ReLU()) == "ReLU()"
