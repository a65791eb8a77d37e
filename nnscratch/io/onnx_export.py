"""ONNX export of a finalized model (``model.export("m.onnx", format="onnx")``), built with the ``onnx``
package (``pip install "nnscratch[onnx]"``).

* **Opset** :data:`OPSET` (17), stated in the file's ``opset_import``; float32 throughout (a float64 model's
  weights are rounded to float32).
* **Layout**: the exported graph takes the same channels-last ``(N, H, W, C)`` inputs as the model and gives
  the same outputs. Every layer's output is kept channels-last, exactly the array nnscratch computes; the
  layers that ONNX defines on ``(N, C, H, W)`` (Conv, ConvTranspose, MaxPool, AveragePool, Resize,
  BatchNormalization) are wrapped in a ``Transpose`` to NCHW and one back, which onnxruntime's graph
  optimizer cancels between neighbours (LeNet-5's 8 transposes become 1, after the input). So ``Flatten``
  flattens in NHWC order as nnscratch does and Dense kernels keep their row order. The 1-D layers run as
  the 2-D ones on ``(N, 1, L, C)``, as in nnscratch.
* **Names**: a layer's output tensor is named after the layer (a shared layer's later calls get
  ``name_call2``, ...), graph inputs after the model's ``Input`` names (``"input"`` for a sequential
  model), initializers ``layer/weight``; so any layer's value can be asked for by its name
  (:mod:`nnscratch.verify` does).
* **Exporters**: one function per layer class in :data:`EXPORTERS`, keyed by class name (the built-in
  ones in :mod:`nnscratch.io.onnx_layers`); :func:`register_exporter` adds one for a user's own layer. A
  layer without one is refused with :class:`UnsupportedLayerError`, which names it.

Example (needs the onnx package)::

    from nnscratch.models import lenet5
    lenet5("modern", seed=0).export("lenet.onnx", format="onnx")
"""
from __future__ import annotations

from . import onnx_layers  # noqa: F401  (registers the built-in exporters)
from .atomic import atomic_write
from .onnx_graph import (EXPORTERS, INSTALL_HINT, OPSET, GraphBuilder, MissingONNXError, UnsupportedLayerError,
                         exporter_for, register_exporter, require_onnx)

__all__ = ["EXPORTERS", "INSTALL_HINT", "OPSET", "GraphBuilder", "MissingONNXError", "UnsupportedLayerError",
           "call_names", "export_onnx", "exporter_for", "register_exporter", "require_onnx", "to_onnx"]


# -- naming ---------------------------------------------------------------------------------------------
def call_names(model) -> list:
    """Per step of ``model.plan`` the name of its output tensor: the Input's name for a model input, the
    layer's name for its first call, ``name_call2``... for later calls of a shared layer.

    Example:
        >>> from nnscratch.models import lenet5
        >>> call_names(lenet5("modern", seed=0))[:3]
        ['input', 'conv2d_1', 're_lu_1']
    """
    if not getattr(model, "finalized", False):
        raise ValueError("the model is not finalized; call model.finalize() first (load_model returns finalized "
                         "models)")
    names, calls = [], {}
    for step in model.plan.steps:
        layer = step.node.layer
        calls[id(layer)] = calls.get(id(layer), 0) + 1
        names.append(layer.name if calls[id(layer)] == 1 else f"{layer.name}_call{calls[id(layer)]}")
    return names


# -- the model -----------------------------------------------------------------------------------------
def to_onnx(model, producer_version: str | None = None):
    """The ``onnx.ModelProto`` of a finalized model (checked with ``onnx.checker``).

    Args:
        model: a finalized :class:`~nnscratch.Model`.
        producer_version: recorded in the file, default nnscratch's version.

    Returns:
        ``onnx.ModelProto`` with opset :data:`OPSET`; inputs ``(N, *sample_shape)`` float32 named after the
        model's inputs, outputs named after the layers that produce them.

    Raises:
        UnsupportedLayerError: a layer has no exporter (the message names it and its class).
        MissingONNXError: the onnx package is not installed.
    """
    onnx = require_onnx()
    helper = onnx.helper
    names = call_names(model)
    plan = model.plan
    unsupported = [step.node.layer for step in plan.steps if not step.feed and exporter_for(step.node.layer) is None]
    if unsupported:
        layer = unsupported[0]
        raise UnsupportedLayerError(
            f"cannot export layer {layer.name!r} ({type(layer).__name__}) to ONNX: there is no exporter for "
            f"{type(layer).__name__}" + (f" (nor for {', '.join(sorted({type(l).__name__ for l in unsupported[1:]}))})"
                                         if len(unsupported) > 1 else "")
            + f"; supported layers: {', '.join(sorted(n for n in EXPORTERS if not n.startswith('_')))} and every "
            "augmentation layer. Register one with "
            f"nnscratch.io.onnx_export.register_exporter({type(layer).__name__!r})")
    graph = GraphBuilder()
    tensor_name = {}
    inputs = []
    for s, step in enumerate(plan.steps):
        name = graph.claim(names[s])
        tensor_name[id(step.node.output)] = name
        if step.feed:
            inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                        ["N"] + list(step.node.output.sample_shape)))
            continue
        layer = step.node.layer
        args = [tensor_name[id(t)] for t in step.node.inbound]
        exporter_for(layer)(layer, args, name, graph)
    outputs = []
    for t in model._graph_outputs:
        outputs.append(helper.make_tensor_value_info(tensor_name[id(t)], onnx.TensorProto.FLOAT,
                                                     ["N"] + list(t.sample_shape)))
    if producer_version is None:
        from .._version import __version__ as producer_version
    proto = helper.make_model(
        helper.make_graph(graph.nodes, model.name, inputs, outputs, list(graph.initializers.values())),
        producer_name="nnscratch", producer_version=producer_version,
        opset_imports=[helper.make_opsetid("", OPSET)])
    # onnxruntime reads files of this IR version and later; make_model's default may be newer than it knows
    proto.ir_version = min(proto.ir_version, 8)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path) -> str:
    """Writes ``model`` as an ONNX file at ``path`` (atomically); returns the path.

    See :func:`to_onnx` for what the file holds and what is refused.
    """
    proto = to_onnx(model)
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(proto.SerializeToString())
    return str(path)
