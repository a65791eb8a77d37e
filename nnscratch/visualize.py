"""Seeing inside a trained model: first-layer kernels, feature maps, class saliency, Grad-CAM, histograms.

The arrays come from functions that need NumPy alone (:func:`kernels`, :func:`feature_maps`,
:func:`saliency`, :func:`grad_cam`, :func:`activations`); the ``plot_*`` functions draw them with
matplotlib (``pip install "nnscratch[plot]"``) on the Agg canvas, without pyplot, and write the image
atomically. ``nnscratch show MODEL.h5 VIEW ...`` runs them from the command line.

Every view runs on a float64 copy of the model (the model itself, its caches and its gradients are left
alone) through :class:`Probe`: a walk over the model's graph in inference mode that keeps the value of
every layer asked for, and that backpropagates from any tensor (a class score) to any other (the input
image, a convolution's output). It skips the plan's training rewrites (softmax fused with the loss, ReLU
after pooling), so every layer's own output exists to be shown. Works on sequential and graph models
alike; layers are named as in ``model.summary()``. Images are model inputs, prepared as for ``predict``
(one ``(H, W, C)`` image, or ``(H, W)`` for one channel).

Example:
    >>> import numpy as np
    >>> from nnscratch.models import lenet5
    >>> model = lenet5("modern", seed=0)
    >>> image = np.random.default_rng(0).random((28, 28, 1)).astype(np.float32)
    >>> cam = grad_cam(model, image)
    >>> cam.layer, cam.heatmap.shape, cam.upsampled.shape
    ('re_lu_2', (10, 10), (28, 28))
    >>> saliency(model, image, class_index=3).map.shape
    (28, 28)
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .layers.activations import Softmax
from .layers.base import Layer
from .layers.context import BatchContext, installed

#: layers whose output Grad-CAM skips when it looks for "the last convolution's output": the map it
#: explains is the activated output of the convolution, before pooling shrinks it
_POOLING = ("MaxPool2D", "AvgPool2D", "Subsampling2D", "GlobalAvgPool2D")


class Probe:
    """A float64 copy of a finalized single-input model that keeps chosen values and backpropagates from
    any tensor.

    Tensors are numbered by step (``probe.step_of[layer_name]`` is the first call of that layer); a
    forward returns ``{step: value}`` for the steps kept.

    Args:
        model: a finalized :class:`~nnscratch.Model` with one input.
    """

    def __init__(self, model):
        from .gradcheck import float64_copy  # gradcheck reaches the model layer; imported when a view is made

        if not getattr(model, "finalized", False):
            raise ValueError("the model is not finalized; call model.finalize() (or load it with load_model) "
                             "before visualizing it")
        if len(model._graph_inputs) != 1:
            raise ValueError(f"the views take models with one image input; this one has "
                             f"{len(model._graph_inputs)} inputs")
        self.source = model
        self.model = float64_copy(model)  # every instance computes dx now; the source is untouched
        plan = self.model.plan
        self.steps = plan.steps
        self.instances = plan.instances
        producer = {id(step.node.output): s for s, step in enumerate(self.steps)}
        # the graph's own edges, not the plan's rewritten ones: a ReLU deferred past its pooling still runs
        self.reads = [[producer[id(t)] for t in step.node.inbound] for step in self.steps]
        self.input_step = plan.input_ids[0]
        self.output_steps = list(plan.output_ids)
        self.step_of = {}
        for s, step in enumerate(self.steps):
            if not step.feed:
                self.step_of.setdefault(step.layer.name, s)
        last = {}
        for s, reads in enumerate(self.reads):
            for t in reads:
                last[t] = s
        self._free_after = [[] for _ in self.steps]
        for t, s in last.items():
            self._free_after[s].append(t)

    # -- names and inputs -----------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple:
        return tuple(self.model._graph_inputs[0].sample_shape)

    def layer_names(self) -> list[str]:
        """The names of the model's layers in the order they run."""
        return list(self.step_of)

    def step(self, name) -> int:
        """The step of layer ``name``'s first call; a clear error for an unknown name."""
        if not isinstance(name, str):
            raise TypeError(f"a layer is named by a string, got {type(name).__name__} ({name!r})")
        if name not in self.step_of:
            raise ValueError(f"the model {self.model.name!r} has no layer named {name!r}; its layers are: "
                             f"{', '.join(self.layer_names())} (see model.summary())")
        return self.step_of[name]

    def output_shape(self, s) -> tuple:
        return tuple(self.steps[s].node.output.sample_shape)

    def image(self, image) -> np.ndarray:
        """``image`` as a float64 batch of one ``(1, H, W, C)``, checked against the model's input."""
        expected = self.input_shape
        if isinstance(image, (list, tuple)):
            image = np.asarray(image)
        if not isinstance(image, np.ndarray) or image.dtype.kind not in "biuf":
            raise TypeError(f"the image must be a numeric NumPy array of shape {expected}, got "
                            f"{type(image).__name__}" + (f" of dtype {image.dtype}" if hasattr(image, "dtype") else ""))
        x = image
        if x.ndim == len(expected) + 1 and x.shape[0] == 1:
            x = x[0]
        if x.ndim == len(expected) - 1 and expected[-1] == 1:
            x = x[..., None]
        if x.shape != expected:
            what = "size" if x.shape[:-1] != expected[:-1] else "channel count"
            hint = ""
            if len(expected) == 3 and x.ndim == 3 and x.shape[:-1] == expected[:-1]:
                hint = (f"; convert it to {expected[-1]} channel(s) first" + (" (grey: x.mean(axis=-1, keepdims=True))"
                                                                              if expected[-1] == 1 else ""))
            elif len(expected) == 3 and x.ndim >= 2:
                hint = (f"; resize it to {expected[0]}x{expected[1]} (the model's preprocessing is in "
                        "model.metadata['preprocess'] for models trained by `nnscratch train`)")
            raise ValueError(f"the model {self.model.name!r} takes one image of shape {expected} (height, width, "
                             f"channels), got an array of shape {image.shape}: wrong {what}{hint}")
        if not np.isfinite(x).all():
            raise ValueError("the image contains NaN or infinite values")
        return np.ascontiguousarray(x, dtype=np.float64)[None]

    # -- running --------------------------------------------------------------------------------------
    def forward(self, x, keep=(), replace=None) -> dict:
        """Runs the graph in inference mode on a prepared float64 batch ``x``.

        Args:
            x: ``(N, *input_shape)``.
            keep: the steps whose values to return (all others are freed after their last use); ``"all"``
                keeps every one (what :meth:`backward` needs to reach the steps it passes through is kept
                inside the layers themselves).
            replace: ``{step: value}``: use ``value`` as that step's output instead of computing it (the
                finite-difference checks perturb an inner tensor this way).

        Returns:
            ``{step: value}`` for the kept steps and the model outputs.
        """
        keep_all = keep == "all"
        keep = set() if keep_all else set(keep) | set(self.output_steps)
        replace = replace or {}
        values = {self.input_step: x}
        with installed(BatchContext(0, len(x), (0, 0, 0))):
            for s, step in enumerate(self.steps):
                if step.feed:
                    continue
                if s in replace:
                    values[s] = replace[s]
                else:
                    args = [values[t] for t in self.reads[s]]
                    values[s] = self.instances[s].forward(args if step.takes_list else args[0], training=False)
                if not keep_all:
                    for t in self._free_after[s]:
                        if t not in keep:
                            values.pop(t, None)
        return values if keep_all else {s: v for s, v in values.items() if s in keep}

    def backward(self, seeds: dict, wanted) -> dict:
        """Backpropagates from ``seeds`` (``{step: gradient of the scalar w.r.t. that step's output}``)
        after a :meth:`forward` on the same input; returns ``{step: gradient}`` for the ``wanted`` steps.
        """
        wanted = set(wanted)
        lowest = min(wanted)
        grads = {s: np.array(g, dtype=np.float64) for s, g in seeds.items()}
        found = {}
        # steps run in topological order: a tensor's gradient is complete once every later step has passed
        # its share back, and nothing before the lowest wanted step can reach a wanted one
        for s in range(max(seeds), lowest - 1, -1):
            g = grads.pop(s, None)
            if g is None:
                continue
            if s in wanted:
                found[s] = g
            step = self.steps[s]
            if s == lowest or step.feed:
                continue
            dx = self.instances[s].backward(g)
            if dx is None:
                continue
            for t, d in (zip(self.reads[s], dx) if step.takes_list else ((self.reads[s][0], dx),)):
                if d is not None:
                    grads[t] = grads[t] + d if t in grads else d  # never in place: d may be shared (Add)
        return found

    # -- class scores ---------------------------------------------------------------------------------
    def score_step(self):
        """``(step, sign, what)``: the tensor whose entry is a class's score, and the sign to apply.

        A final Softmax is skipped (the score is the logit, as in Simonyan et al.: the softmax couples all
        classes); distance outputs (LeNet-5's RBF, where lower is better) are negated.
        """
        if len(self.output_steps) != 1:
            raise ValueError(f"class saliency and Grad-CAM take models with one output; this one has "
                             f"{len(self.output_steps)}")
        s = self.output_steps[0]
        if len(self.output_shape(s)) != 1:
            raise ValueError(f"class saliency and Grad-CAM need a model whose output is a vector of class scores; "
                             f"this one outputs samples of shape {self.output_shape(s)}")
        if type(self.steps[s].layer) is Softmax:
            return self.reads[s][0], 1.0, "logit"
        accuracy = self.model.accuracy
        if accuracy is not None and getattr(accuracy, "lower_is_better", False):
            return s, -1.0, "negative distance"
        return s, 1.0, "output"

    def class_index(self, values, class_index):
        out = values[self.output_steps[0]][0]
        n = out.shape[-1]
        if class_index is None:
            lower = getattr(self.model.accuracy, "lower_is_better", False)
            return int(np.argmin(out) if lower else np.argmax(out))
        if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
            raise TypeError(f"class_index must be an integer class number, got {type(class_index).__name__} "
                            f"({class_index!r})")
        if not 0 <= class_index < n:
            raise ValueError(f"class_index must be in 0..{n - 1} (the model has {n} classes), got {class_index}")
        return int(class_index)


def _probe(model) -> Probe:
    return model if isinstance(model, Probe) else Probe(model)


# -- the views as arrays -----------------------------------------------------------------------------------
def kernels(model, layer=None):
    """A convolution's kernels: ``(name, array (kh, kw, c_in, c_out))``; default the first Conv2D.

    Raises:
        ValueError: no such layer, the layer has no 4-D kernel, or the model has no convolution.
    """
    layers = list(model.layers)
    if layer is None:
        if not getattr(model, "finalized", False):
            raise ValueError("the model is not finalized; call model.finalize() (or load it with load_model) "
                             "before visualizing it")
        # the first to run, which in a graph model need not be the first listed
        convs = [s.layer for s in model.plan.steps if not s.feed and type(s.layer).__name__ == "Conv2D"]
        if not convs:
            raise ValueError(f"the model {model.name!r} has no Conv2D layer, so there are no kernels to show; its "
                             f"layers are: {', '.join(l.name for l in layers)}")
        target = convs[0]
    else:
        by_name = {l.name: l for l in layers}
        if layer not in by_name:
            raise ValueError(f"the model {model.name!r} has no layer named {layer!r}; its layers are: "
                             f"{', '.join(by_name)}")
        target = by_name[layer]
    kernel = target.params.get("kernel") if isinstance(target, Layer) else None
    if kernel is None or kernel.ndim != 4:
        raise ValueError(f"layer {target.describe()} has no convolution kernel (kh, kw, c_in, c_out) to show; "
                         "name a Conv2D layer")
    return target.name, np.array(kernel, dtype=np.float64)


def feature_maps(model, image, layers) -> dict:
    """The outputs of the named layers for one image: ``{name: array (H, W, C)}`` (``(units,)`` for a
    flat layer such as Dense).

    Args:
        model: a finalized model (or a :class:`Probe` of one).
        image: ``(H, W, C)`` (or ``(H, W)`` for one channel), prepared as for ``predict``.
        layers: a layer name or a list of names.
    """
    probe = _probe(model)
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("name at least one layer whose feature maps to show")
    steps = [probe.step(n) for n in names]
    values = probe.forward(probe.image(image), keep=steps)
    return {n: values[s][0] for n, s in zip(names, steps)}


def activations(model, images, layers=None) -> dict:
    """Every output value of the named layers (default: all) over a batch of images, for histograms:
    ``{name: 1-D array}``."""
    probe = _probe(model)
    names = probe.layer_names() if layers is None else ([layers] if isinstance(layers, str) else list(layers))
    steps = [probe.step(n) for n in names]
    images = np.asarray(images)
    batch = np.concatenate([probe.image(im) for im in images]) if images.ndim == len(probe.input_shape) + 1 \
        else probe.image(images)
    values = probe.forward(batch, keep=steps)
    return {n: values[s].reshape(-1) for n, s in zip(names, steps)}


@dataclass
class Saliency:
    """A class-saliency map (Simonyan et al. 2014).

    Attributes:
        map: ``(H, W)``: the largest ``|d score / d pixel|`` over the channels.
        gradient: ``(H, W, C)``: ``d score / d image``.
        class_index: the class explained; score: its score; score_kind: ``"logit"``, ``"output"`` or
            ``"negative distance"``.
    """

    map: np.ndarray
    gradient: np.ndarray
    class_index: int
    score: float
    score_kind: str


def saliency(model, image, class_index=None) -> Saliency:
    """The gradient of a class score w.r.t. the input image (default class: the predicted one)."""
    probe = _probe(model)
    x = probe.image(image)
    s, sign, kind = probe.score_step()
    values = probe.forward(x, keep=[s])
    c = probe.class_index(values, class_index)
    seed = np.zeros_like(values[s])
    seed[0, c] = sign
    grad = probe.backward({s: seed}, [probe.input_step])[probe.input_step][0]
    return Saliency(np.abs(grad).max(axis=-1), grad, c, float(sign * values[s][0, c]), kind)


@dataclass
class GradCAM:
    """Grad-CAM (Selvaraju et al. 2017) for one image and class.

    Attributes:
        layer: the layer whose output is explained.
        heatmap: ``(h, w)`` at that layer's resolution: ``ReLU(sum_k alpha_k A_k)`` scaled to [0, 1] (all
            zeros when no position speaks for the class).
        upsampled: ``(H, W)``: the heatmap resized (bilinear) to the input image, each cell at the centre of
            its receptive field (:func:`centres`).
        activations: ``(h, w, K)``: the layer's output ``A``; gradients: ``d score / d A``; weights: the
            ``alpha_k``, the gradients' spatial means.
        class_index, score, score_kind: as for :class:`Saliency`.
    """

    layer: str
    heatmap: np.ndarray
    upsampled: np.ndarray
    activations: np.ndarray
    gradients: np.ndarray
    weights: np.ndarray
    class_index: int
    score: float
    score_kind: str


def grad_cam_layer(probe: Probe, layer=None) -> int:
    """The step Grad-CAM explains: the named layer, or the activated output of the last convolution whose
    output still has a spatial extent (the last layer after it with an output of the same size that is
    not pooling; for a residual block that is the ReLU after the Add)."""
    if layer is not None:
        s = probe.step(layer)
        shape = probe.output_shape(s)
        if len(shape) != 3:
            raise ValueError(f"Grad-CAM needs a layer with a spatial output (height, width, channels); "
                             f"{probe.steps[s].layer.describe()} outputs {shape}. Name a convolution or the "
                             "activation after it")
        return s
    convs = [s for s, step in enumerate(probe.steps) if not step.feed and type(step.layer).__name__ == "Conv2D"
             and np.prod(probe.output_shape(s)[:2]) > 1]
    if not convs:
        raise ValueError(f"Grad-CAM explains a convolution's output, and the model {probe.model.name!r} has no "
                         f"convolution with a spatial output; use saliency() instead, or name a layer with a "
                         f"(height, width, channels) output with layer=...")
    c = convs[-1]
    size = probe.output_shape(c)[:2]
    best = c
    for s in range(c + 1, len(probe.steps)):
        shape = probe.output_shape(s)
        if len(shape) == 3 and shape[:2] == size and type(probe.steps[s].layer).__name__ not in _POOLING:
            best = s
    return best


def grad_cam(model, image, class_index=None, layer=None) -> GradCAM:
    """Grad-CAM of one image for a class (default: the predicted one) at ``layer`` (default: see
    :func:`grad_cam_layer`)."""
    probe = _probe(model)
    x = probe.image(image)
    target = grad_cam_layer(probe, layer)
    s, sign, kind = probe.score_step()
    values = probe.forward(x, keep=[s, target])
    c = probe.class_index(values, class_index)
    seed = np.zeros_like(values[s])
    seed[0, c] = sign
    grads = probe.backward({s: seed}, [target])
    a = values[target][0]
    g = grads[target][0] if target in grads else np.zeros_like(a)
    weights = g.mean(axis=(0, 1))
    cam = np.maximum((a * weights).sum(axis=-1), 0)
    top = cam.max()
    heat = cam / top if top > 0 else cam
    up = resize(heat, probe.input_shape[:2], centres(probe, target))
    return GradCAM(probe.steps[target].layer.name, heat, up, a, g, weights, c, float(sign * values[s][0, c]), kind)


def centres(probe: Probe, step: int):
    """Where the positions of ``step``'s output sit on the input image: ``(a_y, b_y, a_x, b_x)`` with row
    ``i``'s receptive field centred on input row ``a_y * i + b_y`` (columns alike), or None when a layer on
    the way changes the size in a way not known here.

    Stretching a 10x10 map over a 28x28 image would misplace it: LeNet-5's second convolution is 'valid',
    so its map covers only the middle of the image. The map follows each layer's kernel, stride and
    padding back along the first input of every call.
    """
    a_y = a_x = 1.0
    b_y = b_x = 0.0
    s = step
    while s != probe.input_step:
        layer = probe.steps[s].layer
        before = probe.output_shape(probe.reads[s][0])
        after = probe.output_shape(s)
        if len(before) != 3:
            return None
        if before[:2] != after[:2] or hasattr(layer, "_pads"):
            pads = getattr(layer, "_pads", None)
            kernel = getattr(layer, "_kernel_hw", None) or getattr(layer, "_pool", None) or (1, 1)
            strides = getattr(layer, "_strides", None) or (1, 1)
            if pads is None or isinstance(pads, str):
                return None
            (top, _), (left, _) = pads
            # centre in the layer's input = stride * i + (k - 1) / 2 - padding before; walking back from the
            # target, each earlier layer's map applies to the result of the later ones
            a_y, b_y = strides[0] * a_y, strides[0] * b_y + (kernel[0] - 1) / 2 - top
            a_x, b_x = strides[1] * a_x, strides[1] * b_x + (kernel[1] - 1) / 2 - left
        s = probe.reads[s][0]
    return a_y, b_y, a_x, b_x


def resize(a, size, placement=None) -> np.ndarray:
    """Bilinear resize of a 2-D array to ``size``.

    Args:
        placement: ``(a_y, b_y, a_x, b_x)`` from :func:`centres`: where each cell's centre sits in the
            output; default None spreads the cells evenly over it (pixel centres aligned). Beyond the
            outermost centres the edge values hold.
    """
    h, w = a.shape
    H, W = size
    if placement is None:
        placement = (H / h, (H / h - 1) / 2, W / w, (W / w - 1) / 2)
    a_y, b_y, a_x, b_x = placement
    ys, xs = a_y * np.arange(h) + b_y, a_x * np.arange(w) + b_x
    rows = np.array([np.interp(np.arange(W), xs, row) for row in a])         # (h, W)
    return np.array([np.interp(np.arange(H), ys, col) for col in rows.T]).T  # (H, W)


# -- drawing -------------------------------------------------------------------------------------------------
def _matplotlib():
    from .plot import _require_matplotlib
    return _require_matplotlib()


def _new_figure(width, height, dpi, output_path, layout="constrained"):
    """A figure and the format its path asks for. Grids of many small axes pass ``layout=None`` and space
    themselves: the constrained layout measures every tick label and took seconds for 26 axes."""
    Figure, FigureCanvasAgg = _matplotlib()
    fmt = os.path.splitext(os.fspath(output_path))[1].lstrip(".").lower() or "png"
    fig = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    canvas = FigureCanvasAgg(fig)
    supported = canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"cannot save an image as .{fmt}; use one of: "
                         f"{', '.join('.' + f for f in sorted(supported))}")
    return fig, fmt


def _save(fig, fmt, output_path) -> str:
    from .io.atomic import atomic_open
    output_path = os.fspath(output_path)
    with atomic_open(output_path, "wb") as f:
        fig.savefig(f, format=fmt)
    return output_path


def _display(image):
    """An input image scaled to [0, 1] for display: grey ``(H, W)`` or colour ``(H, W, 3)``."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    elif x.ndim == 3 and x.shape[-1] != 3:
        x = x.mean(axis=-1)
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _class_label(model, c):
    names = (getattr(model, "metadata", None) or {}).get("class_names")
    return f"{c} ({names[c]})" if names and c < len(names) and names[c] != str(c) else str(c)


def _grid(n, max_cols):
    cols = min(n, max_cols)
    return -(-n // cols), cols


def plot_kernels(model, output_path, layer=None, dpi=100) -> str:
    """Draws a convolution's kernels (default the first Conv2D) as an image grid: one tile per filter
    (in colour for 3 input channels), or a row of tiles per filter, one per input channel, for deeper
    layers. One symmetric grey scale for all tiles: mid-grey is 0, white positive, black negative."""
    name, k = kernels(model, layer)
    kh, kw, cin, cout = k.shape
    colour = cin == 3  # an RGB input: each kernel is a small colour image
    if cin == 1 or colour:
        rows, cols = _grid(cout, 8)
        tiles = [(f, None) for f in range(cout)]
    else:
        cin_shown = min(cin, 16)
        rows, cols = cout, cin_shown
        tiles = [(f, c) for f in range(cout) for c in range(cin_shown)]
    height = max(2, 1.1 * rows + 0.6)
    fig, fmt = _new_figure(max(3, 1.1 * cols), height, dpi, output_path, layout=None)
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.55 / height, wspace=0.15, hspace=0.4)
    limit = float(np.abs(k).max()) or 1.0
    for ax in axes.ravel():
        ax.set_axis_off()
    for i, (f, c) in enumerate(tiles):
        ax = axes.ravel()[i]
        if colour:
            tile = k[:, :, :, f]
            ax.imshow((tile - tile.min()) / (np.ptp(tile) or 1.0), interpolation="nearest")
        else:
            ax.imshow(k[:, :, c or 0, f], cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(f"{f}" if c is None else f"{f}/{c}", fontsize=7)
    shown = "" if colour or cin <= 16 else f" (first 16 of {cin} input channels)"
    fig.suptitle(f"{name}: {cout} kernels {kh}x{kw}x{cin}{shown}")
    return _save(fig, fmt, output_path)


def plot_feature_maps(model, image, layers, output_path, max_channels=32, dpi=100) -> str:
    """Draws the input image and the feature maps of the named layers: one block of tiles per layer,
    one tile per channel (the first ``max_channels``), each on its own scale (viridis)."""
    probe = _probe(model)
    maps = feature_maps(probe, image, layers)
    x = probe.image(image)[0]
    blocks = []
    for name, m in maps.items():
        if m.ndim == 3:
            blocks.append((name, [m[:, :, c] for c in range(min(m.shape[-1], max_channels))], m.shape))
        else:
            blocks.append((name, [m.reshape(1, -1)], m.shape))
    cols = 8
    rows_per = [-(-len(tiles) // cols) for _, tiles, _ in blocks]
    total_rows = 1 + sum(rows_per)
    height = 1.25 * total_rows + 0.4
    fig, fmt = _new_figure(1.2 * cols, height, dpi, output_path, layout=None)
    grid = fig.add_gridspec(total_rows, cols, left=0.02, right=0.98, bottom=0.02, top=1 - 0.45 / height,
                            wspace=0.1, hspace=0.45)
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(_display(x), cmap="gray", interpolation="nearest")
    ax.set_title("input", fontsize=8)
    ax.set_axis_off()
    row = 1
    for (name, tiles, shape), n_rows in zip(blocks, rows_per):
        for i, tile in enumerate(tiles):
            r, c = divmod(i, cols)
            wide = tile.shape[0] == 1
            ax = fig.add_subplot(grid[row + r, :] if wide else grid[row + r, c])
            ax.imshow(tile, cmap="viridis", interpolation="nearest", aspect="auto" if wide else "equal")
            ax.set_axis_off()
            more = f" (first {len(tiles)})" if len(shape) == 3 and shape[-1] > len(tiles) else ""
            label = f"{name} {'x'.join(map(str, shape))}{more}" if i == 0 else ""
            ax.set_title(f"{label}{' ' if label else ''}#{i}" if not wide else label, fontsize=7,
                         loc="left" if i == 0 else "center")
        row += n_rows
    fig.suptitle(f"{probe.model.name}: feature maps")
    return _save(fig, fmt, output_path)


def _overlay_figure(model, image, heat, title, second, second_title, output_path, dpi):
    fig, fmt = _new_figure(10, 3.6, dpi, output_path)
    axes = fig.subplots(1, 3)
    shown = _display(image)
    cmap = "gray" if shown.ndim == 2 else None
    axes[0].imshow(shown, cmap=cmap, interpolation="nearest")
    axes[0].set_title("input")
    im = axes[1].imshow(second, cmap="jet", interpolation="nearest")
    axes[1].set_title(second_title)
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[2].imshow(shown, cmap=cmap, interpolation="nearest")
    axes[2].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
    axes[2].set_title("overlay")
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title)
    return _save(fig, fmt, output_path)


def plot_saliency(model, image, output_path, class_index=None, dpi=100) -> str:
    """Draws the image, its class-saliency map and the map overlaid on it."""
    probe = _probe(model)
    s = saliency(probe, image, class_index)
    top = s.map.max()
    heat = s.map / top if top > 0 else s.map
    title = (f"{probe.model.name}: saliency for class {_class_label(probe.source, s.class_index)} "
             f"({s.score_kind} {s.score:.3g})")
    return _overlay_figure(probe.source, probe.image(image)[0], heat, title, s.map, "|d score / d pixel|",
                           output_path, dpi)


def plot_grad_cam(model, image, output_path, class_index=None, layer=None, dpi=100) -> str:
    """Draws the image, the Grad-CAM heatmap at its layer's resolution, and the heatmap overlaid."""
    probe = _probe(model)
    cam = grad_cam(probe, image, class_index, layer)
    title = (f"{probe.model.name}: Grad-CAM at {cam.layer} for class {_class_label(probe.source, cam.class_index)} "
             f"({cam.score_kind} {cam.score:.3g})")
    return _overlay_figure(probe.source, probe.image(image)[0], cam.upsampled, title, cam.heatmap,
                           f"Grad-CAM {cam.heatmap.shape[0]}x{cam.heatmap.shape[1]}", output_path, dpi)


def plot_histograms(model, output_path, images=None, layers=None, bins=50, dpi=100) -> str:
    """Histograms per layer: each weight array (left) and, with ``images``, the layer's outputs over them
    (right). Default layers: those with weights, and with ``images`` every layer."""
    probe = _probe(model)
    source = probe.source
    if layers is None:
        names = [n for n in probe.layer_names()
                 if images is not None or any(sub.params for _, sub in probe.steps[probe.step(n)].layer.walk())]
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        for n in names:
            probe.step(n)
    if not names:
        raise ValueError("no layer to draw: the model has no weights; pass images to draw activations")
    acts = activations(probe, images, names) if images is not None else {}
    count = 0 if images is None else (len(images) if np.ndim(images) == len(probe.input_shape) + 1 else 1)
    layer_of = {l.name: l for l in source.layers}
    cols = 2 if images is not None else 1
    height = 1.6 * len(names) + 0.6
    fig, fmt = _new_figure(5.5 * cols, height, dpi, output_path, layout=None)
    axes = fig.subplots(len(names), cols, squeeze=False)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.35 / height, top=1 - 0.9 / height, wspace=0.15, hspace=0.55)
    for row, name in enumerate(names):
        layer = layer_of[name]
        ax = axes[row, 0]
        weights = [(f"{path}{k}", v) for path, sub in layer.walk() for k, v in sub.params.items()]
        if weights:
            for key, v in weights:
                ax.hist(np.asarray(v, dtype=np.float64).ravel(), bins=bins, alpha=0.6, label=f"{key} {v.size:,}")
            ax.legend(fontsize=6, loc="upper right")
        else:
            ax.text(0.5, 0.5, "no weights", ha="center", va="center", transform=ax.transAxes, color="gray")
            ax.set_axis_off()
        ax.set_title(f"{layer.describe()}: weights", fontsize=8, loc="left")
        ax.tick_params(labelsize=6)
        if images is not None:
            ax = axes[row, 1]
            a = acts[name]
            ax.hist(a, bins=bins, color="tab:green", alpha=0.8)
            zero = float(np.mean(a == 0))
            ax.set_title(f"{name}: outputs over {count} image(s), mean {a.mean():.3g}, std {a.std():.3g}"
                         + (f", {100 * zero:.0f}% zero" if zero > 0.01 else ""), fontsize=8, loc="left")
            ax.tick_params(labelsize=6)
            ax.set_yscale("log")
    fig.suptitle(f"{probe.model.name}: weight" + (" and activation" if images is not None else "") + " histograms")
    return _save(fig, fmt, output_path)
