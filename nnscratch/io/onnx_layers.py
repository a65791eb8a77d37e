"""The built-in ONNX exporters, one function per layer class, registered by class name in
:data:`~nnscratch.io.onnx_graph.EXPORTERS`.

An exporter is ``fn(layer, inputs, output, graph)``: ``inputs`` are the names of its input tensors,
channels-last like nnscratch's arrays, ``output`` the name its result must have, ``graph`` a
:class:`~nnscratch.io.onnx_graph.GraphBuilder`. The operators ONNX defines on ``(N, C, H, W)`` are wrapped in
transposes to NCHW and back, so every layer's output is the array nnscratch computes; weights are exported
as the layer computes with them (C3's masked kernel, Subsampling2D's coefficient as a depthwise kernel), and
arithmetic follows the layer's own order where ONNX has no single operator for it.
"""
from __future__ import annotations

import numpy as np

from .onnx_graph import exporter_for, register_exporter


# -- shared pieces ------------------------------------------------------------------------------
def _pads(pads) -> list:
    """nnscratch's ``((top, bottom), (left, right))`` as ONNX's ``[top, left, bottom, right]``."""
    (t, b), (l, r) = pads
    return [int(t), int(l), int(b), int(r)]


def _weight(layer, name):
    return layer.params[name] if name in layer.params else layer.state[name]


def _activation_output(layer, output, graph) -> str:
    """Where a layer with ``activation=`` writes its linear part: ``output`` itself when it has none."""
    return output if getattr(layer, "activation_function", None) is None else graph.fresh(f"{output}/linear")


def _finish_activation(layer, linear, output, graph):
    function = getattr(layer, "activation_function", None)
    if function is not None:
        exporter_for(function)(function, [linear], output, graph, prefix=f"{layer.name}/activation")


def _conv(graph, x_nhwc, kernel_hwio, bias, output, prefix, strides, pads, dilation, groups):
    """An ONNX Conv on a channels-last tensor; ``kernel_hwio`` in nnscratch's ``(kh, kw, c_in/g, c_out)``."""
    kh, kw = kernel_hwio.shape[:2]
    args = [graph.to_nchw(x_nhwc), graph.constant(f"{prefix}/kernel", kernel_hwio.transpose(3, 2, 0, 1))]
    if bias is not None:
        args.append(graph.constant(f"{prefix}/bias", bias))
    y = graph.node("Conv", args, graph.fresh(f"{output}/conv"), kernel_shape=[int(kh), int(kw)],
                   strides=list(map(int, strides)), pads=_pads(pads), dilations=list(map(int, dilation)),
                   group=int(groups))
    return graph.to_nhwc(y, output)


# -- exporters: weight layers ---------------------------------------------------------------------------------
@register_exporter("Conv2D")
def _conv2d(layer, inputs, output, graph):
    kernel = layer.params["kernel"]
    if layer._mask is not None:  # a connection table (LeNet-5's C3) is a convolution with masked weights
        kernel = kernel * layer._mask[None, None]
    linear = _activation_output(layer, output, graph)
    _conv(graph, inputs[0], kernel, layer.params.get("bias"), linear, layer.name, layer._strides, layer._pads,
          layer._dilation, layer.groups)
    _finish_activation(layer, linear, output, graph)


@register_exporter("DepthwiseConv2D")
def _depthwise(layer, inputs, output, graph):
    kh, kw, c, m = layer.params["depthwise_kernel"].shape
    # output channel c * m + j filters input channel c: a convolution with one group per input channel
    kernel = layer.params["depthwise_kernel"].reshape(kh, kw, 1, c * m)
    linear = _activation_output(layer, output, graph)
    _conv(graph, inputs[0], kernel, layer.params.get("bias"), linear, layer.name, layer._strides, layer._pads,
          layer._dilation, c)
    _finish_activation(layer, linear, output, graph)


@register_exporter("SeparableConv2D")
def _separable(layer, inputs, output, graph):
    kh, kw, c, m = layer.params["depthwise_kernel"].shape
    depthwise = _conv(graph, inputs[0], layer.params["depthwise_kernel"].reshape(kh, kw, 1, c * m), None,
                      graph.fresh(f"{output}/depthwise"), f"{layer.name}/depthwise", layer._strides, layer._pads,
                      layer._dilation, c)
    linear = _activation_output(layer, output, graph)
    _conv(graph, depthwise, layer.params["pointwise_kernel"], layer.params.get("bias"), linear,
          f"{layer.name}/pointwise", (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    _finish_activation(layer, linear, output, graph)


@register_exporter("Dense")
def _dense(layer, inputs, output, graph):
    linear = _activation_output(layer, output, graph)
    kernel = graph.constant(f"{layer.name}/kernel", layer.params["kernel"])
    if layer.use_bias:  # x @ W, then + b: nnscratch's order of rounding
        product = graph.node("MatMul", [inputs[0], kernel], graph.fresh(f"{output}/matmul"))
        graph.node("Add", [product, graph.constant(f"{layer.name}/bias", layer.params["bias"])], linear)
    else:
        graph.node("MatMul", [inputs[0], kernel], linear)
    _finish_activation(layer, linear, output, graph)


@register_exporter("RBFOutput")
def _rbf(layer, inputs, output, graph):
    # |x - w|^2 = |x|^2 - 2 x.w + |w|^2, as the layer computes it
    codes = np.asarray(_weight(layer, "codes"), np.float32)
    x = inputs[0]
    squares = graph.node("ReduceSumSquare", [x], graph.fresh(f"{output}/x2"), axes=[1], keepdims=1)
    product = graph.node("MatMul", [x, graph.constant(f"{layer.name}/codes", codes)], graph.fresh(f"{output}/xw"))
    twice = graph.node("Mul", [product, graph.scalar(f"{layer.name}/two", 2.0)], graph.fresh(f"{output}/2xw"))
    diff = graph.node("Sub", [squares, twice], graph.fresh(f"{output}/x2-2xw"))
    graph.node("Add", [diff, graph.constant(f"{layer.name}/w2", (codes * codes).sum(axis=0))], output)


# -- exporters: pooling and shapes ---------------------------------------------------------------------------
def _pool(graph, op, x_nhwc, layer, output, **options):
    y = graph.node(op, [graph.to_nchw(x_nhwc)], graph.fresh(f"{output}/pool"), kernel_shape=list(layer._pool),
                   strides=list(layer._strides), pads=_pads(layer._pads), **options)
    return graph.to_nhwc(y, output)


@register_exporter("MaxPool2D")
def _max_pool(layer, inputs, output, graph):
    # padding positions never win a maximum (ONNX pads MaxPool with -inf), as nnscratch's windows ignore them
    _pool(graph, "MaxPool", inputs[0], layer, output)


@register_exporter("AvgPool2D")
def _avg_pool(layer, inputs, output, graph):
    # with 'same' padding only the real elements are averaged (Keras): count_include_pad=0
    _pool(graph, "AveragePool", inputs[0], layer, output, count_include_pad=0)


# -- the 1-D layers: the 2-D ones on (N, 1, L, C), as nnscratch computes them ---------------------------------
def _one_d(export_2d):
    def export(layer, inputs, output, graph):
        axis = graph.constant("nnscratch/axis_1", [1], dtype=np.int64)
        image = graph.node("Unsqueeze", [inputs[0], axis], graph.fresh(f"{output}/as_image"))
        result = graph.fresh(f"{output}/image")
        export_2d(layer, [image], result, graph)
        graph.node("Squeeze", [result, axis], output)
    return export


register_exporter("MaxPool1D")(_one_d(_max_pool))
register_exporter("AvgPool1D")(_one_d(_avg_pool))


@register_exporter("Conv1D")
def _conv1d(layer, inputs, output, graph):
    def conv_2d(layer, inputs, output, graph):
        linear = _activation_output(layer, output, graph)
        _conv(graph, inputs[0], layer.params["kernel"][None], layer.params.get("bias"), linear, layer.name,
              (1, layer.strides), layer._pads, (1, layer.dilation_rate), layer.groups)
        _finish_activation(layer, linear, output, graph)
    _one_d(conv_2d)(layer, inputs, output, graph)


@register_exporter("Conv2DTranspose")
def _conv_transpose(layer, inputs, output, graph):
    # ONNX's ConvTranspose is the same scatter: its pads cut the full scatter as nnscratch's top/bottom do and
    # its output_padding appends the rows and columns beyond the scatter (zeros, then the bias)
    kh, kw = layer._kernel_hw
    (top, bottom), (left, right) = layer._pads
    extra = [layer.output_shape[0] - layer._used[0], layer.output_shape[1] - layer._used[1]]
    args = [graph.to_nchw(inputs[0]), graph.constant(f"{layer.name}/kernel",
                                                     layer.params["kernel"].transpose(3, 2, 0, 1))]
    if layer.use_bias:
        args.append(graph.constant(f"{layer.name}/bias", layer.params["bias"]))
    linear = _activation_output(layer, output, graph)
    y = graph.node("ConvTranspose", args, graph.fresh(f"{output}/conv_transpose"), kernel_shape=[kh, kw],
                   strides=list(layer._strides), dilations=list(layer._dilation), pads=[top, left, bottom, right],
                   output_padding=extra)
    graph.to_nhwc(y, linear)
    _finish_activation(layer, linear, output, graph)


@register_exporter("Subsampling2D")
def _subsampling(layer, inputs, output, graph):
    # coefficient[c] * sum(window) + bias[c]: a depthwise convolution whose kernel is the coefficient
    kh, kw = layer._pool
    coefficient = np.asarray(layer.params["coefficient"], np.float64)
    kernel = np.broadcast_to(coefficient, (kh, kw, 1, coefficient.size))
    _conv(graph, inputs[0], kernel, layer.params["bias"], output, layer.name, layer._strides, layer._pads, (1, 1),
          coefficient.size)


@register_exporter("GlobalAvgPool2D")
def _global_avg(layer, inputs, output, graph):
    graph.node("ReduceMean", inputs, output, axes=[1, 2], keepdims=0)


@register_exporter("GlobalMaxPool2D")
def _global_max(layer, inputs, output, graph):
    graph.node("ReduceMax", inputs, output, axes=[1, 2], keepdims=int(layer.keepdims))


@register_exporter("Flatten")
def _flatten(layer, inputs, output, graph):
    graph.node("Flatten", inputs, output, axis=1)  # of the channels-last array: nnscratch's order


@register_exporter("Reshape")
def _reshape(layer, inputs, output, graph):
    shape = graph.constant(f"{layer.name}/shape", [0, *layer.target_shape], dtype=np.int64)  # 0: keep N
    graph.node("Reshape", [inputs[0], shape], output)


@register_exporter("ZeroPad2D")
def _zero_pad(layer, inputs, output, graph):
    (t, b), (l, r) = layer._pads
    pads = graph.constant(f"{layer.name}/pads", [0, t, l, 0, 0, b, r, 0], dtype=np.int64)
    graph.node("Pad", [inputs[0], pads], output, mode="constant")


@register_exporter("Cropping2D")
def _cropping(layer, inputs, output, graph):
    (t, b), (l, r) = layer._crops
    h, w, _ = layer.built_input_shape
    starts = graph.constant(f"{layer.name}/starts", [t, l], dtype=np.int64)
    ends = graph.constant(f"{layer.name}/ends", [h - b, w - r], dtype=np.int64)
    axes = graph.constant(f"{layer.name}/axes", [1, 2], dtype=np.int64)
    graph.node("Slice", [inputs[0], starts, ends, axes], output)


@register_exporter("UpSampling2D")
def _upsampling(layer, inputs, output, graph):
    sh, sw = layer._size
    scales = graph.constant(f"{layer.name}/scales", [1.0, 1.0, sh, sw])
    if layer.interpolation == "nearest":  # output i repeats input floor(i / s)
        options = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    else:  # half-pixel centres, clamped at the borders
        options = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    y = graph.node("Resize", [graph.to_nchw(inputs[0]), "", scales], graph.fresh(f"{output}/resize"), **options)
    graph.to_nhwc(y, output)


def _identity(layer, inputs, output, graph):
    graph.node("Identity", inputs, output)


# inference is the identity for dropout and for every augmentation layer (their base class's contract), the
# built-in ones and those to come, a user's too
register_exporter("Dropout")(_identity)
register_exporter("_Augmentation", subclasses=True)(_identity)
for _name in ("RandomFlip", "RandomContrast", "RandomRotation", "RandomTranslation", "RandomZoom", "ElasticDistortion"):
    register_exporter(_name)(_identity)   # by name too, so the list of supported layers shows them


# -- exporters: normalization ------------------------------------------------------------------------------
def _affine(layer, xhat, output, graph, rank):
    steps = [(op, key) for op, key, on in (("Mul", "gamma", layer.scale), ("Add", "beta", layer.center)) if on]
    if not steps:
        graph.node("Identity", [xhat], output)
    for i, (op, key) in enumerate(steps):
        value = layer._broadcast(layer.params[key], rank)
        target = output if i == len(steps) - 1 else graph.fresh(f"{output}/scaled")
        xhat = graph.node(op, [xhat, graph.constant(f"{layer.name}/{key}", value)], target)


@register_exporter("BatchNormalization")
def _batch_norm(layer, inputs, output, graph):
    """Inference with the moving statistics. Channels-last images and (N, C) batches use ONNX's own
    BatchNormalization (runtimes fold it into the convolution before it); other axes are computed in
    nnscratch's order, ``(x - mean) * inv_std * gamma + beta``."""
    rank = len(layer.built_input_shape)
    mean, variance = layer.state["moving_mean"], layer.state["moving_variance"]
    if layer._feature == (rank - 1,) and rank in (1, 3):
        c = mean.shape[0]
        args = [inputs[0] if rank == 1 else graph.to_nchw(inputs[0]),
                graph.constant(f"{layer.name}/gamma", layer.params["gamma"] if layer.scale else np.ones(c)),
                graph.constant(f"{layer.name}/beta", layer.params["beta"] if layer.center else np.zeros(c)),
                graph.constant(f"{layer.name}/moving_mean", mean),
                graph.constant(f"{layer.name}/moving_variance", variance)]
        if rank == 1:
            graph.node("BatchNormalization", args, output, epsilon=float(layer.epsilon))
        else:
            y = graph.node("BatchNormalization", args, graph.fresh(f"{output}/nchw"), epsilon=float(layer.epsilon))
            graph.to_nhwc(y, output)
        return
    inv_std = layer._broadcast(1.0 / np.sqrt(variance + variance.dtype.type(layer.epsilon)), rank)
    centred = graph.node("Sub", [inputs[0], graph.constant(f"{layer.name}/moving_mean",
                                                           layer._broadcast(mean, rank))],
                         graph.fresh(f"{output}/centred"))
    xhat = graph.node("Mul", [centred, graph.constant(f"{layer.name}/inv_std", inv_std)],
                      graph.fresh(f"{output}/normalized"))
    _affine(layer, xhat, output, graph, rank)


@register_exporter("LayerNormalization")
def _layer_norm(layer, inputs, output, graph):
    rank = len(layer.built_input_shape)
    axes = [a + 1 for a in layer._feature]
    x = inputs[0]
    mean = graph.node("ReduceMean", [x], graph.fresh(f"{output}/mean"), axes=axes, keepdims=1)
    centred = graph.node("Sub", [x, mean], graph.fresh(f"{output}/centred"))
    square = graph.node("Mul", [centred, centred], graph.fresh(f"{output}/square"))
    variance = graph.node("ReduceMean", [square], graph.fresh(f"{output}/variance"), axes=axes, keepdims=1)
    shifted = graph.node("Add", [variance, graph.scalar(f"{layer.name}/epsilon", layer.epsilon)],
                         graph.fresh(f"{output}/variance+eps"))
    root = graph.node("Sqrt", [shifted], graph.fresh(f"{output}/std"))
    inv_std = graph.node("Reciprocal", [root], graph.fresh(f"{output}/inv_std"))
    xhat = graph.node("Mul", [centred, inv_std], graph.fresh(f"{output}/normalized"))
    _affine(layer, xhat, output, graph, rank)


# -- exporters: merges -------------------------------------------------------------------------------------
def _chain(op):
    def export(layer, inputs, output, graph):
        value = inputs[0]
        for i, other in enumerate(inputs[1:], start=2):
            value = graph.node(op, [value, other], output if i == len(inputs) else graph.fresh(f"{output}/{op}{i}"))
    return export


# left to right, as the layers compute (Sum would leave the order of the additions to the runtime)
register_exporter("Add")(_chain("Add"))
register_exporter("Multiply")(_chain("Mul"))
register_exporter("Subtract")(_chain("Sub"))
register_exporter("Maximum")(_chain("Max"))
register_exporter("Minimum")(_chain("Min"))


@register_exporter("Average")
def _average(layer, inputs, output, graph):
    total = graph.fresh(f"{output}/sum")
    _chain("Add")(layer, inputs, total, graph)
    graph.node("Mul", [total, graph.scalar(f"{layer.name}/inverse_count", 1.0 / len(inputs))], output)


@register_exporter("Concatenate")
def _concatenate(layer, inputs, output, graph):
    # the axis counts the batch axis, as in Keras; channels-last tensors, so -1 is the channels here too
    graph.node("Concat", inputs, output, axis=layer._sample_axis(len(layer.built_input_shape[0])) + 1)


# -- exporters: activations ----------------------------------------------------------------------------------
def _activation(op, **fixed):
    def export(layer, inputs, output, graph, prefix=None):
        graph.node(op, inputs, output, **{k: (v(layer) if callable(v) else v) for k, v in fixed.items()})
    return export


register_exporter("ReLU")(_activation("Relu"))
register_exporter("Tanh")(_activation("Tanh"))
register_exporter("Sigmoid")(_activation("Sigmoid"))
register_exporter("LeakyReLU")(_activation("LeakyRelu", alpha=lambda layer: float(layer.alpha)))
register_exporter("Softmax")(_activation("Softmax", axis=-1))


@register_exporter("ScaledTanh")
def _scaled_tanh(layer, inputs, output, graph, prefix=None):
    prefix = prefix or layer.name
    scaled = graph.node("Mul", [inputs[0], graph.scalar(f"{prefix}/slope", layer.slope)], graph.fresh(f"{output}/sx"))
    t = graph.node("Tanh", [scaled], graph.fresh(f"{output}/tanh"))
    graph.node("Mul", [t, graph.scalar(f"{prefix}/amplitude", layer.amplitude)], output)


@register_exporter("Swish")
def _swish(layer, inputs, output, graph, prefix=None):
    prefix = prefix or layer.name
    x = inputs[0]
    z = x if layer.beta == 1 else graph.node("Mul", [x, graph.scalar(f"{prefix}/beta", layer.beta)],
                                             graph.fresh(f"{output}/bx"))
    s = graph.node("Sigmoid", [z], graph.fresh(f"{output}/sigmoid"))
    graph.node("Mul", [x, s], output)


@register_exporter("Activation")
def _named_activation(layer, inputs, output, graph, prefix=None):
    if layer.function is None:  # "linear"
        graph.node("Identity", inputs, output)
    else:
        exporter_for(layer.function)(layer.function, inputs, output, graph, prefix=prefix or layer.name)
