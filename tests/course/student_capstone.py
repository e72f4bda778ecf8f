"""A correct student file for the capstone (the functions a student writes in the course)."""

import math

import numpy as np


def relu_backward(x, gy):
    return np.where(x > 0, gy, 0 * gy)


def prelu_backward(x, a, gy):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    gx = np.where(x > 0, gy, gy * a.reshape(shape))
    axes = tuple(i for i in range(x.ndim) if i != 1)
    return gx, (gy * np.where(x > 0, 0, x)).sum(axis=axes)


def _windows(H, k, s, p):
    return (H + 2 * p - k) // s + 1


def im2col(x, kh, kw, stride, padding):
    N, C, H, W = x.shape
    OH, OW = _windows(H, kh, stride, padding), _windows(W, kw, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((C, kh, kw, N, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            taps = xp[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride]
            out[:, i, j] = np.moveaxis(taps, 1, 0)
    return out.reshape(C * kh * kw, N * OH * OW)


def col2im(cols, shape, kh, kw, stride, padding):
    N, C, H, W = shape
    OH, OW = _windows(H, kh, stride, padding), _windows(W, kw, stride, padding)
    g = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=cols.dtype)
    cols = cols.reshape(C, kh, kw, N, OH, OW)
    for i in range(kh):
        for j in range(kw):
            g[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride] += np.moveaxis(cols[:, i, j], 0, 1)
    return g[:, :, padding:padding + H, padding:padding + W]


def conv2d_forward(x, W, b, stride, padding):
    N, _, H, Wx = x.shape
    D, _, kh, kw = W.shape
    OH, OW = _windows(H, kh, stride, padding), _windows(Wx, kw, stride, padding)
    y = W.reshape(D, -1) @ im2col(x, kh, kw, stride, padding)
    return np.moveaxis(y.reshape(D, N, OH, OW), 0, 1) + b[None, :, None, None]


def conv2d_backward(x, W, gy, stride, padding):
    D, _, kh, kw = W.shape
    g = np.moveaxis(gy, 1, 0).reshape(D, -1)
    gW = (g @ im2col(x, kh, kw, stride, padding).T).reshape(W.shape)
    gx = col2im(W.reshape(D, -1).T @ g, x.shape, kh, kw, stride, padding)
    return gx, gW


def max_pool2d_backward(x, gy, kernel_size, stride):
    k, s = kernel_size, stride
    gx = np.zeros_like(x)
    N, C = x.shape[:2]
    for oh in range(gy.shape[2]):
        for ow in range(gy.shape[3]):
            window = x[:, :, oh * s:oh * s + k, ow * s:ow * s + k].reshape(N, C, -1)
            first = window.argmax(axis=2)
            for n in range(N):
                for c in range(C):
                    i, j = divmod(int(first[n, c]), k)
                    gx[n, c, oh * s + i, ow * s + j] += gy[n, c, oh, ow]
    return gx


def softmax_cross_entropy_backward(logits, labels):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return p / len(labels)


def msra_std(shape, a, mode):
    receptive = math.prod(shape[2:])
    n = shape[1] * receptive if mode == "fan_in" else shape[0] * receptive
    return math.sqrt(2.0 / ((1.0 + a * a) * n))


def sgd_step(W, gW, vW, a, ga, va, lr, momentum, weight_decay):
    vW = momentum * vW + lr * (gW + weight_decay * W)
    va = momentum * va + lr * ga
    return W - vW, vW, a - va, va
