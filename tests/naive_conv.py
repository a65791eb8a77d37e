"""Loop-by-loop reference implementations of convolution and pooling, written for clarity, not speed.

The vectorised kernels in ``nnscratch.ops`` and the layers are compared with these on random shapes.
Everything works on channels-last ``(N, H, W, C)`` arrays and computes in float64.
"""
import numpy as np


def pad(x, pads, value=0.0):
    (t, b), (l, r) = pads
    return np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def out_size(size, k, s, before, after):
    return (size + before + after - k) // s + 1


def conv2d(x, kernel, bias, strides, pads):
    """``out[n, a, b, f] = sum_{i, j, c} xp[n, a*sh + i, b*sw + j, c] * kernel[i, j, c, f] + bias[f]``."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    sh, sw = strides
    xp = pad(x, pads)
    ho = out_size(h, kh, sh, *pads[0])
    wo = out_size(w, kw, sw, *pads[1])
    out = np.zeros((n, ho, wo, f))
    for s in range(n):
        for a in range(ho):
            for b in range(wo):
                for o in range(f):
                    total = 0.0 if bias is None else float(bias[o])
                    for i in range(kh):
                        for j in range(kw):
                            for ch in range(c):
                                total += xp[s, a * sh + i, b * sw + j, ch] * kernel[i, j, ch, o]
                    out[s, a, b, o] = total
    return out


def conv2d_backward(x, kernel, strides, pads, dout):
    """``(dx, dkernel, dbias)`` of :func:`conv2d` by explicit accumulation over every output position."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    sh, sw = strides
    xp = pad(x, pads)
    dxp = np.zeros_like(xp)
    dk = np.zeros(kernel.shape)
    _, ho, wo, _ = dout.shape
    for s in range(n):
        for a in range(ho):
            for b in range(wo):
                for o in range(f):
                    g = dout[s, a, b, o]
                    for i in range(kh):
                        for j in range(kw):
                            for ch in range(c):
                                dxp[s, a * sh + i, b * sw + j, ch] += g * kernel[i, j, ch, o]
                                dk[i, j, ch, o] += g * xp[s, a * sh + i, b * sw + j, ch]
    (t, _), (l, _) = pads
    return dxp[:, t:t + h, l:l + w], dk, dout.sum(axis=(0, 1, 2))


def conv2d_general(x, kernel, bias, strides, pads, dilation=(1, 1), groups=1):
    """A dilated, grouped convolution, one output element at a time: kernel ``(kh, kw, C/groups, F)``,
    ``out[n, a, b, f] = sum_{i, j, c} xp[n, a*sh + i*dh, b*sw + j*dw, g(f)*C/groups + c] * kernel[i, j, c, f]``."""
    n, h, w, c = x.shape
    kh, kw, cg, f = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    xp = pad(x, pads)
    ho = out_size(h, (kh - 1) * dh + 1, sh, *pads[0])
    wo = out_size(w, (kw - 1) * dw + 1, sw, *pads[1])
    fg = f // groups
    out = np.zeros((n, ho, wo, f))
    for s in range(n):
        for a in range(ho):
            for b in range(wo):
                for o in range(f):
                    first = (o // fg) * cg
                    total = 0.0 if bias is None else float(bias[o])
                    for i in range(kh):
                        for j in range(kw):
                            for ch in range(cg):
                                total += xp[s, a * sh + i * dh, b * sw + j * dw, first + ch] * kernel[i, j, ch, o]
                    out[s, a, b, o] = total
    return out


def conv2d_general_backward(x, kernel, strides, pads, dout, dilation=(1, 1), groups=1):
    """``(dx, dkernel, dbias)`` of :func:`conv2d_general`, accumulated output element by output element."""
    n, h, w, c = x.shape
    kh, kw, cg, f = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    xp = pad(x, pads)
    dxp = np.zeros_like(xp)
    dk = np.zeros(kernel.shape)
    _, ho, wo, _ = dout.shape
    fg = f // groups
    for s in range(n):
        for a in range(ho):
            for b in range(wo):
                for o in range(f):
                    first = (o // fg) * cg
                    g = dout[s, a, b, o]
                    for i in range(kh):
                        for j in range(kw):
                            for ch in range(cg):
                                r, q = a * sh + i * dh, b * sw + j * dw
                                dxp[s, r, q, first + ch] += g * kernel[i, j, ch, o]
                                dk[i, j, ch, o] += g * xp[s, r, q, first + ch]
    (t, _), (l, _) = pads
    return dxp[:, t:t + h, l:l + w], dk, dout.sum(axis=(0, 1, 2))


def conv2d_transpose(x, kernel, bias, strides, out_hw, pads, dilation=(1, 1)):
    """A transposed convolution by scattering: every input element adds ``x * kernel`` onto the output
    window it maps to. ``kernel`` ``(kh, kw, F_out, C_in)``, ``pads``: the rows/columns cut from the top/left
    of the full scatter (the padding of the convolution this one transposes), ``out_hw`` the output size."""
    n, h, w, c = x.shape
    kh, kw, f, _ = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    (t, _), (l, _) = pads
    ho, wo = out_hw
    full_h = max(ho + t, (h - 1) * sh + (kh - 1) * dh + 1)
    full_w = max(wo + l, (w - 1) * sw + (kw - 1) * dw + 1)
    full = np.zeros((n, full_h, full_w, f))
    for s in range(n):
        for a in range(h):
            for b in range(w):
                for ch in range(c):
                    for i in range(kh):
                        for j in range(kw):
                            for o in range(f):
                                full[s, a * sh + i * dh, b * sw + j * dw, o] += x[s, a, b, ch] * kernel[i, j, o, ch]
    out = full[:, t:t + ho, l:l + wo]
    return out + (0.0 if bias is None else bias)


def _windows(x, pool, strides, pads, value):
    """Yields ``(s, a, b, ch, [(row, col, value), ...])`` for every window, in row-major window order."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw) = pool, strides
    (t, _), (l, _) = pads
    xp = pad(x, pads, value)
    ho = out_size(h, kh, sh, *pads[0])
    wo = out_size(w, kw, sw, *pads[1])
    for s in range(n):
        for a in range(ho):
            for b in range(wo):
                for ch in range(c):
                    cells = []
                    for i in range(kh):
                        for j in range(kw):
                            row, col = a * sh + i - t, b * sw + j - l
                            real = 0 <= row < h and 0 <= col < w
                            cells.append((row, col, xp[s, a * sh + i, b * sw + j, ch], real))
                    yield s, a, b, ch, cells


def _out_shape(x, pool, strides, pads):
    n, h, w, c = x.shape
    return (n, out_size(h, pool[0], strides[0], *pads[0]), out_size(w, pool[1], strides[1], *pads[1]), c)


def max_pool(x, pool, strides, pads=((0, 0), (0, 0))):
    """``(out, dx_fn)``; ``dx_fn(dout)`` routes each window's gradient to its first maximum (column-major)."""
    out = np.zeros(_out_shape(x, pool, strides, pads))
    winners = {}
    for s, a, b, ch, cells in _windows(x, pool, strides, pads, -np.inf):
        best = None
        for row, col, v, real in sorted(cells, key=lambda cell: (cell[1], cell[0])):  # column-major
            if best is None or v > best[2]:  # strict: the first maximum wins ties
                best = (row, col, v)
        out[s, a, b, ch] = best[2]
        winners[(s, a, b, ch)] = best[:2]

    def backward(dout):
        dx = np.zeros(x.shape)
        for (s, a, b, ch), (row, col) in winners.items():
            dx[s, row, col, ch] += dout[s, a, b, ch]
        return dx

    return out, backward


def sum_pool(x, pool, strides, pads=((0, 0), (0, 0)), average=False):
    """Window sums (or averages over the real, non-padding elements) and their backward."""
    out = np.zeros(_out_shape(x, pool, strides, pads))
    members = {}
    for s, a, b, ch, cells in _windows(x, pool, strides, pads, 0.0):
        real = [(row, col) for row, col, v, is_real in cells if is_real]
        total = sum(v for _, _, v, is_real in cells if is_real)
        out[s, a, b, ch] = total / len(real) if average else total
        members[(s, a, b, ch)] = real

    def backward(dout):
        dx = np.zeros(x.shape)
        for (s, a, b, ch), real in members.items():
            for row, col in real:
                dx[s, row, col, ch] += dout[s, a, b, ch] / (len(real) if average else 1)
        return dx

    return out, backward


#: how an (N, H, W, C) batch can be stored: as is, batch-innermost (what the conv kernels return), or neither
STORAGE_ORDERS = ["nhwc", "chwn", "strided"]


def stored(x, order):
    """The values of ``x`` ``(N, H, W, C)`` in the memory order named by ``order`` (see STORAGE_ORDERS)."""
    if order == "nhwc":
        return np.ascontiguousarray(x)
    if order == "chwn":
        return np.ascontiguousarray(x.transpose(3, 1, 2, 0)).transpose(3, 1, 2, 0)
    wide = np.zeros(x.shape[:3] + (2 * x.shape[3],), x.dtype)
    wide[..., ::2] = x
    return wide[..., ::2]
