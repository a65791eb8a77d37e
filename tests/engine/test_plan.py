"""The execution plan: the walk over the graph and the rewrites that keep its numbers."""
import numpy as np
import pytest

import nnscratch
from nnscratch.layers import Dense, Flatten, ReLU, Softmax


def test_fused_softmax_cross_entropy_is_used_and_stable():
    model = nnscratch.Model([Dense(3, input_shape=(2,)), Softmax()], seed=0)
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    assert model.plan.fused == [2]  # the hidden input, the Dense, the Softmax
    model.layers[0].params["kernel"][...] = [[300, -300, 0], [0, 0, 0]]  # saturates the softmax
    x = np.array([[1.0, 0.0]], np.float32)
    loss = model.validate(x, np.array([1]))["loss"]
    assert np.isfinite(loss) and loss == pytest.approx(600, rel=1e-3)



@pytest.mark.parametrize("pool", [{"pool_size": 2}, {"pool_size": 3, "strides": 2}])
def test_a_relu_before_max_pooling_runs_after_it_with_the_same_values_and_gradients(pool):
    from nnscratch.layers import Conv2D, MaxPool2D
    model = nnscratch.Model(seed=0)
    model.add(Conv2D(3, 3, padding="same", input_shape=(8, 8, 2)))
    model.add(ReLU())
    model.add(MaxPool2D(**pool))
    model.add(Flatten())
    model.add(Dense(4))
    model.add(Softmax())
    model.set(loss="categorical_crossentropy", optimizer="sgd")
    model.finalize()
    relu, pool = model.plan.steps[2], model.plan.steps[3]
    assert relu.skip_forward and pool.relu_after == 2 and pool.inputs == relu.inputs
    rng = np.random.default_rng(0)
    # integer-valued inputs: many windows tie, many hold only negatives
    x = rng.integers(-2, 3, (5, 8, 8, 2)).astype(np.float32)
    y = model.loss.check_targets(rng.integers(0, 4, 5), model.output_shape)
    output, logits = model.forward(x, training=True)
    model.backward(output, logits, y)
    got = {f"{l.name}/{k}": g.copy() for l in model.layers for k, g in l.grads.items()}
    # the layers in the order they were added
    h = x
    for layer in model.layers[:-1]:
        h = layer.forward(h, training=True)
    np.testing.assert_array_equal(h, logits)
    grad = model.loss.fused_gradient(model.layers[-1].forward(h), y)
    for layer in reversed(model.layers[:-1]):
        grad = layer.backward(grad)
    for layer in model.layers:
        for k, g in layer.grads.items():
            np.testing.assert_array_equal(got[f"{layer.name}/{k}"], g)
