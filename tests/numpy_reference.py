"""Convolutions written as explicit loops in NumPy: the independent references the layers are checked against."""

import math

import numpy as np


def _pad_and_size(length, kernel, stride, dilation, padding):
    """(output length, padding before) the way TensorFlow pads ("same" puts the extra pixel after)."""
    span = dilation * (kernel - 1) + 1
    if padding == "valid":
        return (length - span) // stride + 1, 0
    out = math.ceil(length / stride)
    total = max((out - 1) * stride + span - length, 0)
    return out, total // 2


def depthwise_conv(x, kernel, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """x (n, h, w, c), kernel (kh, kw, c, m) -> (n, oh, ow, c * m); output channel c * m + j."""
    n, h, w, channels = x.shape
    kh, kw, _, multiplier = kernel.shape
    out_h, top = _pad_and_size(h, kh, strides[0], dilation[0], padding)
    out_w, left = _pad_and_size(w, kw, strides[1], dilation[1], padding)
    out = np.zeros((n, out_h, out_w, channels * multiplier))
    for i in range(out_h):
        for j in range(out_w):
            for a in range(kh):
                for b in range(kw):
                    row = i * strides[0] + a * dilation[0] - top
                    col = j * strides[1] + b * dilation[1] - left
                    if not (0 <= row < h and 0 <= col < w):
                        continue  # zero padding
                    for c in range(channels):
                        for m in range(multiplier):
                            out[:, i, j, c * multiplier + m] += x[:, row, col, c] * kernel[a, b, c, m]
    return out


def pointwise_conv(x, kernel):
    """x (n, h, w, m), kernel (1, 1, m, f) -> (n, h, w, f), pixel by pixel."""
    n, h, w, channels = x.shape
    filters = kernel.shape[-1]
    out = np.zeros((n, h, w, filters))
    for i in range(h):
        for j in range(w):
            for c in range(channels):
                for f in range(filters):
                    out[:, i, j, f] += x[:, i, j, c] * kernel[0, 0, c, f]
    return out


def batchnorm_inference(x, gamma, beta, mean, variance, epsilon=1e-3):
    return gamma * (x - mean) / np.sqrt(variance + epsilon) + beta


def relu6(x):
    return np.minimum(np.maximum(x, 0.0), 6.0)
