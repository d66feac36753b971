"""Keras 3 layers: MobileNet's depthwise, pointwise and separable convolutions, and Hua et al.'s
point-cloud pointwise convolution. Importing this package registers them for `.keras` loading."""

from mobilenet_sep.layers.pointcloud import PointwiseConv3D, SortPoints
from mobilenet_sep.layers.separable import (
    DepthwiseConv,
    DepthwiseSeparableConv,
    KernelLayer,
    PointwiseConv,
    conv_output_length,
)

__all__ = [
    "DepthwiseConv",
    "DepthwiseSeparableConv",
    "KernelLayer",
    "PointwiseConv",
    "PointwiseConv3D",
    "SortPoints",
    "conv_output_length",
]
